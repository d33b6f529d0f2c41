"""Parameter cells and fixed-pattern noise.

* Fixed-pattern noise of a chip instance is drawn from numpy Generators seeded
  with (serial, profile code, stream): the same serial is the same chip, and
  each kind of mismatch has its own stream so that one option (synapse loss)
  does not reshuffle the others.
* Temporal noise comes from a Generator seeded with (serial, seed, run counter).
* A parameter cell holds a 10-bit value; its analog output is
      voltage cell: V = value / 1022 * v_max * (1 + gain) + offset        (volts)
      current cell: I = value / 1022 * i_max * (1 + gain) + offset        (amperes)
  clipped at zero, with per-cell gain and offset from the fixed pattern.
* After a write a cell settles exponentially to its new value (time constant
  from capmem.config.settle); a capacitive-memory cell written with 1023 is no
  longer refreshed and decays towards zero (Analog.refresh_off_tau).  A floating
  gate lands on its new value plus a write-to-write error (Mismatch.cell_write).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isa.profiles import Profile
from isa.wire import FPGA_TICK_S

#: Global cells with a model role (capmem generations only).
GLOBAL_ROLES = dict(corr_tau="i_bias_correlation", corr_eta="v_correlation_store",
                    corr_baseline="v_correlation_baseline")

# Fixed-pattern streams.
_CELLS_NEURON, _CELLS_GLOBAL, _SYNAPSE, _SYN_LOSS, _CORR, _CADC = range(6)


def is_current_cell(name: str) -> bool:
    return name.startswith("i_")


def cell_max(profile: Profile) -> int:
    return profile.cell_max


def _rng(serial: int, profile: Profile, stream: int) -> np.random.Generator:
    return np.random.default_rng([serial, profile.code, stream, 0x5EED])


@dataclass
class FixedPattern:
    """Everything that makes one chip instance differ from another."""

    cell_gain: np.ndarray         # (neurons, cells) relative gain error of each per-neuron cell
    cell_offset: np.ndarray       # (neurons, cells) offset in V or A
    global_gain: np.ndarray       # (global cells,)
    global_offset: np.ndarray
    synapse: np.ndarray           # (arrays * rows, columns) float32 amplitude factor (1 = ideal)
    synapse_lost: np.ndarray      # (arrays * rows, columns) bool
    corr_eta_c: np.ndarray        # (neurons, rows) relative amplitude of the causal trace (neuron-major)
    corr_eta_a: np.ndarray        # (arrays * rows, columns) relative amplitude of the acausal trace
                                  # (includes the asymmetry)
    corr_itau_c: np.ndarray       # (neurons, rows) relative inverse time constant, causal
    corr_itau_a: np.ndarray       # (arrays * rows, columns) relative inverse time constant, acausal
    cadc_offset: np.ndarray       # (neurons,) column ADC offset, LSB


def fixed_pattern(profile: Profile, serial: int, mismatch: bool = True,
                  synapse_loss: float | None = None) -> FixedPattern:
    m = profile.mismatch
    N, K, G = profile.neurons, len(profile.neuron_cells), len(profile.global_cells)
    R, C = profile.synapse_arrays * profile.rows, profile.columns
    on = 1.0 if mismatch else 0.0
    cur_n = np.array([is_current_cell(c) for c in profile.neuron_cells])
    cur_g = np.array([is_current_cell(c) for c in profile.global_cells])
    r = _rng(serial, profile, _CELLS_NEURON)
    gain_sd = np.where(cur_n, m.cell_i_gain, m.cell_v_gain) * on
    off_sd = np.where(cur_n, m.cell_i_offset, m.cell_v_offset) * on
    cell_gain = r.standard_normal((N, K)) * gain_sd
    cell_offset = r.standard_normal((N, K)) * off_sd
    r = _rng(serial, profile, _CELLS_GLOBAL)
    global_gain = r.standard_normal(G) * np.where(cur_g, m.cell_i_gain, m.cell_v_gain) * on
    global_offset = r.standard_normal(G) * np.where(cur_g, m.cell_i_offset, m.cell_v_offset) * on
    r = _rng(serial, profile, _SYNAPSE)
    synapse = np.maximum(1.0 + m.synapse_amp * on * r.standard_normal((R, C)), 0.0).astype(np.float32)
    loss = m.synapse_loss if synapse_loss is None else synapse_loss
    lost = _rng(serial, profile, _SYN_LOSS).random((R, C)) < loss if loss > 0 else np.zeros((R, C), bool)
    if profile.correlation:
        r = _rng(serial, profile, _CORR)
        f32 = lambda x: x.astype(np.float32)
        eta_c = f32(np.maximum(1.0 + m.corr_amp * on * r.standard_normal((R, C)), 0.0))
        eta_a = f32(np.maximum((1.0 + m.corr_asymmetry * on) * (1.0 + m.corr_amp * on * r.standard_normal((R, C))),
                               0.0))
        itau_c = f32(np.exp(-m.corr_tau * on * r.standard_normal((R, C))))
        eta_c, itau_c = neuron_major(eta_c, profile), neuron_major(itau_c, profile)
        itau_a = f32(np.exp(-m.corr_tau * on * r.standard_normal((R, C))))
        cadc = _rng(serial, profile, _CADC).standard_normal(N) * m.cadc_offset * on
    else:
        eta_c = eta_a = itau_c = itau_a = np.zeros((1, 1), np.float32)
        cadc = np.zeros(N)
    return FixedPattern(cell_gain, cell_offset, global_gain, global_offset, synapse, lost,
                        eta_c, eta_a, itau_c, itau_a, cadc)


def neuron_major(x: np.ndarray, profile: Profile) -> np.ndarray:
    """(arrays * rows, columns) synapse layout -> (neurons, rows): element
    [array * columns + c, r] is synapse (array * rows + r, c)."""
    A, R, C = profile.synapse_arrays, profile.rows, profile.columns
    return np.ascontiguousarray(x.reshape(A, R, C).transpose(0, 2, 1).reshape(A * C, R))


def synapse_major(x: np.ndarray, profile: Profile) -> np.ndarray:
    """Inverse of neuron_major."""
    A, R, C = profile.synapse_arrays, profile.rows, profile.columns
    return np.ascontiguousarray(x.reshape(A, C, R).transpose(0, 2, 1).reshape(A * R, C))


def cell_output(values: np.ndarray, current: np.ndarray, gain: np.ndarray, offset: np.ndarray,
                profile: Profile) -> np.ndarray:
    """Analog output (V or A) of cells holding `values` (LSB, float)."""
    frac = np.asarray(values, dtype=np.float64) / cell_max(profile)
    full = np.where(current, profile.analog.i_max, profile.analog.v_max)
    return np.maximum(frac * full * (1.0 + gain) + offset, 0.0)


def tau_from_current(i: np.ndarray, profile: Profile, full_scale: float | None = None) -> np.ndarray:
    """Time constant set by a bias current: tau = tau_full_scale * i_max / I
    (infinite at zero current)."""
    fs = profile.analog.tau_full_scale if full_scale is None else full_scale
    with np.errstate(divide="ignore"):
        return np.where(i > 0, fs * profile.analog.i_max / np.maximum(i, 1e-300), np.inf)


#: exp(-x) is exactly 0.0 in float64 for x above this (the smallest subnormal is exp(-744.4)).
_EXP_ZERO = 746.0


class CellBank:
    """Effective values (LSB, float) of a set of cells over time: settling after
    writes, refresh switched off by 1023, floating-gate write errors."""

    def __init__(self, n: int, profile: Profile):
        self.profile = profile
        self.floating = profile.param_memory == "floating_gate"
        self.n = n
        self.reset()

    def reset(self) -> None:
        self.start = np.zeros(self.n)          # value when the current transition began
        self.target = np.zeros(self.n)
        self.t0 = np.zeros(self.n, np.int64)   # tick of the write
        self.tau = np.ones(self.n)             # ticks
        self.settled_after = 0                 # tick after which no cell changes noticeably
        self.exact_after = 0                   # tick after which every cell is exactly at its target

    def write(self, idx: np.ndarray, values: np.ndarray, now: int, settle_s: float,
              noise: np.random.Generator | None, write_sd: float) -> None:
        idx = np.asarray(idx, np.int64)
        values = np.asarray(values, np.float64)
        cur = self.at(now)[idx]
        target = values.copy()
        tau = np.full(len(idx), settle_s / FPGA_TICK_S)
        if self.floating:
            if noise is not None and write_sd > 0:
                target = target + noise.standard_normal(len(idx)) * write_sd
        else:
            off = values >= cell_max(self.profile) + 1
            target[off] = 0.0
            tau[off] = self.profile.analog.refresh_off_tau / FPGA_TICK_S
        # Repeated writes to one cell in one access run: the last one wins.
        self.start[idx], self.target[idx], self.t0[idx], self.tau[idx] = cur, target, now, tau
        span = np.abs(cur - target)
        need = np.where(span > 1e-3, tau * np.log(np.maximum(span, 1e-3) / 1e-3), 0.0)
        if len(need):
            self.settled_after = max(self.settled_after, int(now + need.max()) + 1)
            self.exact_after = max(self.exact_after, int(now + _EXP_ZERO * tau.max()) + 1)

    def at(self, t: int) -> np.ndarray:
        if t >= self.exact_after:
            # exp(-dt / tau) is exactly 0.0 for every cell: the formula below gives
            # the targets bit for bit (the shortcut saves its exp over every cell per run)
            return self.target.copy()
        dt = np.maximum(t - self.t0, 0).astype(np.float64)
        return self.target + (self.start - self.target) * np.exp(-dt / self.tau)

    def settling(self, t: int) -> bool:
        return t < self.settled_after
