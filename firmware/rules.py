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
    hi: int | str          # an int, or the name of a chip constant ("weight_max", "rows", "rows_minus_1")
    doc: str


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
    x = np.where(x < 0, 0, x)
    return np.where(_sat8(x - hi) > 0, hi, x)


# --------------------------------------------------------------------------- rules
def stdp_mult_reference(causal, acausal, weights, offsets, *, theta, lambda_pos, lambda_neg, w_max,
                        weight_bits=6):
    """One update of firmware/rules/stdp_mult.s.

    causal, acausal: the column-ADC readings (uint8, any shape); weights: the
    synapse bytes (weight field + calibration bits); offsets: signed bytes,
    broadcast to that shape.  Returns (new synapse bytes as uint8, the
    boolean mask of the sensors the rule resets)."""
    d = _trace_difference(causal, acausal)
    a = _sat8(d - _wrap8(offsets))
    pos = np.where(_sat8(a - theta) < 0, 0, a)
    neg = np.where(_sat8(a + theta) > 0, 0, a)
    wb = np.asarray(weights, np.int64) & 0xFF
    w = wb & ((1 << weight_bits) - 1)
    cal = _wrap8(wb - w)
    inc = _fmul(_fmul(pos, lambda_pos), _wrap8(2 * _wrap8(w_max - w)))
    dec = _fmul(_fmul(_sat8(-neg), lambda_neg), _wrap8(2 * w))
    new = _clamp(_sat8(_sat8(w + inc) - dec), w_max)
    return (_wrap8(new + cal) & 0xFF).astype(np.uint8), _wrap8(pos + neg) != 0


def corr_read_reference(causal, acausal, *, first_row, rows, reset):
    """What firmware/rules/corr_read.s leaves in MB_DATA (bytes) and the reset mask."""
    c = np.asarray(causal, np.uint8)[first_row:first_row + rows]
    a = np.asarray(acausal, np.uint8)[first_row:first_row + rows]
    mask = np.zeros(np.shape(causal), bool)
    if reset:
        mask[first_row:first_row + rows] = True
    return np.concatenate([c.ravel(), a.ravel()]), mask


RULES: dict[str, Rule] = {
    "stdp_mult": Rule(
        "stdp_mult",
        "multiplicative STDP from the correlation sensors (Friedmann et al. 2017)",
        (Param("theta", 0, 127, "dead zone: |a| < theta changes nothing"),
         Param("lambda_pos", 0, 127, "potentiation rate, a fraction of 128"),
         Param("lambda_neg", 0, 127, "depression rate (lambda * alpha), a fraction of 128"),
         Param("w_max", 0, "weight_max", "largest weight the rule sets"),
         Param("offset_stride", 0, 0xFFFF, "bytes from one row's offsets to the next in MB_DATA: "
                                           "0 (the same for every row) or 2 * VECTOR_BYTES (per synapse)")),
        stdp_mult_reference),
    "corr_read": Rule(
        "corr_read",
        "correlation readout: causal and acausal readings of a block of rows into MB_DATA",
        (Param("first_row", 0, "rows_minus_1", "first row read"),
         Param("rows", 1, "rows", "rows read (2 x rows x columns bytes must fit MB_DATA)"),
         Param("reset", 0, 1, "1: reset the sensors of each row after reading it")),
        corr_read_reference),
}
