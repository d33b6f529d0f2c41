"""Plasticity rules of the firmware library: their parameters and NumPy reference models.

Each rule is a PPU assembly file, firmware/rules/<name>.s, built with the
runtime by `firmware.build(name, chip)`.  Its parameters are 32-bit words
at MB_PARAMS in the order of `Rule.params` (the build defines P_<NAME> for
each); `reference` computes one update on the same inputs, bit for bit,
from the vector unit's semantics (docs/ppu.md, "Vector unit") written out
in integer NumPy, not from the twin's interpreter.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Param:
    name: str
    lo: int
    hi: int | str          # an int, or a key of CHIP_LIMITS
    doc: str
    default: int | str | None = None     # used when a mailbox leaves it out: an int or a key of CHIP_LIMITS


#: Upper limits that depend on the chip: (the symbol docs show, value for an isa.profiles.Profile).
CHIP_LIMITS = {"weight_max": ("WEIGHT_MAX", lambda p: (1 << p.weight_bits) - 1),
               "last_ppu": ("PPUS - 1", lambda p: p.ppus - 1),
               "rows": ("SYNAPSE_ROWS", lambda p: p.rows),
               "rows_minus_1": ("SYNAPSE_ROWS - 1", lambda p: p.rows - 1)}


@dataclass(frozen=True)
class Rule:
    name: str
    doc: str
    params: tuple[Param, ...]
    reference: Callable


# --------------------------------------------------------------------------- byte-vector semantics
def _wrap8(x):
    """The low 8 bits as a signed byte (the `m` forms)."""
    return ((np.asarray(x, np.int64) + 128) & 0xFF) - 128


def _sat8(x):
    """Saturation to a signed byte (the `fs` forms)."""
    return np.clip(np.asarray(x, np.int64), -128, 127)


def _fmul(a, b):
    """fxvmulbfs: the upper byte of sat16(2 a b), i.e. floor(a b / 128) saturated."""
    return np.clip(2 * np.asarray(a, np.int64) * np.asarray(b, np.int64), -32768, 32767) >> 8


def _trace_difference(causal, acausal):
    """corr_diff: acausal/2 - causal/2 of the unsigned readings (-127..127)."""
    return _wrap8((np.asarray(acausal, np.int64) & 0xFF) >> 1) - ((np.asarray(causal, np.int64) & 0xFF) >> 1)


def _clamp(x, hi):
    """clamp: x to 0..hi."""
    x = np.where(x < 0, 0, x)
    return np.where(_sat8(x - hi) > 0, hi, x)


def _clamp_range(x, lo, hi):
    """clamp_range: x to lo..hi."""
    x = np.where(_sat8(x - lo) < 0, lo, x)
    return np.where(_sat8(x - hi) > 0, hi, x)


def _eligibility(causal, acausal, offsets, theta):
    """a = sat(d - offset) split by split_sign: (pos, neg), a' = pos + neg."""
    a = _sat8(_trace_difference(causal, acausal) - _wrap8(offsets))
    return np.where(_sat8(a - theta) < 0, 0, a), np.where(_sat8(a + theta) > 0, 0, a)


def _weight_split(weights, weight_bits):
    """weight_split of the synapse bytes: (weight field, calibration bits as a signed byte)."""
    wb = np.asarray(weights, np.int64) & 0xFF
    w = wb & ((1 << weight_bits) - 1)
    return w, _wrap8(wb - w)


def _synapse_bytes(w, cal):
    return (_wrap8(w + cal) & 0xFF).astype(np.uint8)


# --------------------------------------------------------------------------- rules
def _rows_only(rows, weights, new, mask):
    """Rows 0 .. rows - 1 updated (None: all); the others keep their bytes and sensors."""
    if rows is None:
        return new, mask
    keep = np.arange(np.shape(weights)[0]) >= rows
    new = np.where(keep[:, None], (np.asarray(weights, np.int64) & 0xFF).astype(np.uint8), new)
    return new, np.where(keep[:, None], False, mask)


def stdp_mult_reference(causal, acausal, weights, offsets, *, theta, lambda_pos, lambda_neg, w_max,
                        weight_bits=6, rows=None):
    """One update of firmware/rules/stdp_mult.s.

    causal, acausal: the column-ADC readings (uint8, any shape); weights: the
    synapse bytes (weight field + calibration bits); offsets: signed bytes,
    broadcast to that shape.  Returns (new synapse bytes as uint8, the
    boolean mask of the sensors the rule resets)."""
    pos, neg = _eligibility(causal, acausal, offsets, theta)
    w, cal = _weight_split(weights, weight_bits)
    inc = _fmul(_fmul(pos, lambda_pos), _wrap8(2 * _wrap8(w_max - w)))
    dec = _fmul(_fmul(_sat8(-neg), lambda_neg), _wrap8(2 * w))
    new = _clamp(_sat8(_sat8(w + inc) - dec), w_max)
    return _rows_only(rows, weights, _synapse_bytes(new, cal), _wrap8(pos + neg) != 0)


def corr_read_reference(causal, acausal, *, first_row, rows, reset):
    """What firmware/rules/corr_read.s leaves in MB_DATA (bytes) and the reset mask."""
    c = np.asarray(causal, np.uint8)[first_row:first_row + rows]
    a = np.asarray(acausal, np.uint8)[first_row:first_row + rows]
    mask = np.zeros(np.shape(causal), bool)
    if reset:
        mask[first_row:first_row + rows] = True
    return np.concatenate([c.ravel(), a.ravel()]), mask


def stdp_add_reference(causal, acausal, weights, offsets, *, theta, eta_pos, eta_neg, w_min, w_max,
                       weight_bits=6, rows=None):
    """One update of firmware/rules/stdp_add.s; inputs and result as for
    stdp_mult_reference."""
    pos, neg = _eligibility(causal, acausal, offsets, theta)
    w, cal = _weight_split(weights, weight_bits)
    new = _sat8(_sat8(w + _fmul(pos, eta_pos)) - _fmul(_sat8(-neg), eta_neg))
    return _rows_only(rows, weights, _synapse_bytes(_clamp_range(new, w_min, w_max), cal), _wrap8(pos + neg) != 0)


def stdp_reward_reference(causal, acausal, weights, offsets, *, reward, theta, eta, w_min, w_max, weight_bits=6,
                          rows=None):
    """One update of firmware/rules/stdp_reward.s (the reward word's low byte
    as the firmware reads it); inputs and result as for stdp_mult_reference."""
    r = int(_wrap8(reward))
    if r == 0:
        return (np.asarray(weights, np.int64) & 0xFF).astype(np.uint8), np.zeros(np.shape(weights), bool)
    pos, neg = _eligibility(causal, acausal, offsets, theta)
    w, cal = _weight_split(weights, weight_bits)
    size = _sat8(abs(r))
    change = _fmul(_fmul(pos, eta), size) - _fmul(_fmul(_sat8(-neg), eta), size)
    new = _sat8(w + _wrap8(change * (1 if r > 0 else -1)))
    return _rows_only(rows, weights, _synapse_bytes(_clamp_range(new, w_min, w_max), cal), _wrap8(pos + neg) != 0)


def homeostasis_reference(counters, weights, *, target, tolerance, step, w_min, w_max, weight_bits=6):
    """One update of firmware/rules/homeostasis.s: counters are the spike-counter
    words of this PPU's neurons (one per column), weights its synapse bytes
    (rows, columns).  Returns the new synapse bytes (uint8); the rule resets
    every one of those counters."""
    n = np.asarray(counters, np.int64) & 0x1FFFFFF        # count and overflow bit
    steps = np.where(n < target - tolerance, step, np.where(n > target + tolerance, -step, 0))
    w, cal = _weight_split(weights, weight_bits)
    return _synapse_bytes(_clamp_range(_sat8(w + steps), w_min, w_max), cal)


_OFFSET_STRIDE = Param("offset_stride", 0, 0xFFFF, "bytes from one row's offsets to the next in MB_DATA: "
                                                   "0 (the same for every row) or 2 * VECTOR_BYTES (per synapse)")
_ROWS = Param("rows", 1, "rows", "rows 0 .. rows - 1 are updated, the others and their sensors left alone "
                                 "(default: all)", default="rows")

RULES: dict[str, Rule] = {
    "stdp_mult": Rule(
        "stdp_mult",
        "multiplicative STDP from the correlation sensors (Friedmann et al. 2017)",
        (Param("theta", 0, 127, "dead zone: |a| < theta changes nothing"),
         Param("lambda_pos", 0, 127, "potentiation rate, a fraction of 128"),
         Param("lambda_neg", 0, 127, "depression rate (lambda * alpha), a fraction of 128"),
         Param("w_max", 0, "weight_max", "largest weight the rule sets"),
         _OFFSET_STRIDE, _ROWS),
        stdp_mult_reference),
    "corr_read": Rule(
        "corr_read",
        "correlation readout: causal and acausal readings of a block of rows into MB_DATA",
        (Param("first_row", 0, "rows_minus_1", "first row read"),
         Param("rows", 1, "rows", "rows read (2 x rows x columns bytes must fit MB_DATA)"),
         Param("reset", 0, 1, "1: reset the sensors of each row after reading it")),
        corr_read_reference),
    "stdp_add": Rule(
        "stdp_add",
        "additive STDP with weight bounds, from the correlation sensors",
        (Param("theta", 0, 127, "dead zone: |a| < theta changes nothing"),
         Param("eta_pos", 0, 127, "potentiation step per unit of a, a fraction of 128"),
         Param("eta_neg", 0, 127, "depression step per unit of |a|, a fraction of 128"),
         Param("w_min", 0, "weight_max", "smallest weight the rule sets"),
         Param("w_max", 0, "weight_max", "largest weight the rule sets (w_min <= w_max)"),
         _OFFSET_STRIDE, _ROWS),
        stdp_add_reference),
    "stdp_reward": Rule(
        "stdp_reward",
        "reward-modulated STDP: the correlation sensors hold the eligibility, the host's reward applies it",
        (Param("reward", -128, 127, "signed reward, a fraction of 128, read at every update: the host may "
                                    "rewrite it while the rule runs; 0 changes nothing and keeps the sensors"),
         Param("theta", 0, 127, "dead zone: |a| < theta is no eligibility"),
         Param("eta", 0, 127, "learning rate, a fraction of 128"),
         Param("w_min", 0, "weight_max", "smallest weight the rule sets"),
         Param("w_max", 0, "weight_max", "largest weight the rule sets (w_min <= w_max)"),
         _OFFSET_STRIDE, _ROWS),
        stdp_reward_reference),
    "homeostasis": Rule(
        "homeostasis",
        "homeostatic weight adjustment: each neuron's incoming weights move its spike count toward a target",
        (Param("target", 0, 0xFFFFFF, "spikes per update period the rule aims at"),
         Param("tolerance", 0, 0xFFFFFF, "counts within target +- tolerance change nothing"),
         Param("step", 0, "weight_max", "weight change per update of a neuron off target"),
         Param("w_min", 0, "weight_max", "smallest weight the rule sets"),
         Param("w_max", 0, "weight_max", "largest weight the rule sets (w_min <= w_max)"),
         Param("ppu", 0, "last_ppu", "which PPU this is: its neurons are ppu * NEURONS_PER_PPU + column "
                                     "(RuleOnChip sets it)")),
        homeostasis_reference),
}
