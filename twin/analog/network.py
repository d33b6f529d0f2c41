"""Kernel inputs from the register views, and the analog state of a chip.

`neuron_matrix` turns physical neuron parameters into the kernel's per-neuron
parameter matrix (exact propagators for one step).  `AnalogNetwork` owns the
analog state of one chip instance (membranes, currents, correlation traces,
parameter cells) and rebuilds the kernel inputs from the registers before it
runs the kernel.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isa.profiles import Profile
from isa.regmap import RegisterMap
from isa.wire import FPGA_TICK_S

from . import kernel as K
from . import physics

TICK_S = FPGA_TICK_S


def _inv(tau) -> np.ndarray:
    tau = np.asarray(tau, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(np.isfinite(tau) & (tau > 0), 1.0 / np.where(tau > 0, tau, 1.0), 0.0)


def _psp_coefficient(dt: float, inv_tm: np.ndarray, inv_ts: np.ndarray) -> np.ndarray:
    """Integral over one step of exp(-(dt-s)/tau_m) exp(-s/tau_s) ds: the
    membrane response (times 1/C) to a synaptic current of 1 A at the step start."""
    x = dt * (inv_tm - inv_ts)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(np.abs(x) > 1e-12, np.expm1(x) / np.where(x != 0, x, 1.0), 1.0)
    return np.exp(-dt * inv_tm) * dt * ratio


def neuron_matrix(dt: float, c_mem, e_l, v_reset, v_th, v_t, delta_t, tau_m, tau_exc, tau_inh,
                  a, b, tau_w, g_exc=1.0, g_inh=1.0, v_clip=10.0) -> np.ndarray:
    """Per-neuron kernel parameters (shape (NPAR, n)) from physical values:
    volts, seconds, farads, siemens (a), amperes (b); tau = inf means no decay.
    g_exc/g_inh scale the synaptic amplitudes (amperes per unit amplitude)."""
    arrs = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in
                                 (c_mem, e_l, v_reset, v_th, v_t, delta_t, tau_m, tau_exc, tau_inh,
                                  a, b, tau_w, g_exc, g_inh, v_clip)))
    c_mem, e_l, v_reset, v_th, v_t, delta_t, tau_m, tau_exc, tau_inh, a, b, tau_w, g_exc, g_inh, v_clip = \
        (np.atleast_1d(x) for x in arrs)
    n = len(c_mem)
    P = np.zeros((K.NPAR, n))
    inv_tm, inv_te, inv_ti, inv_tw = _inv(tau_m), _inv(tau_exc), _inv(tau_inh), _inv(tau_w)
    P[K.EL], P[K.VRESET], P[K.VTH], P[K.VT] = e_l, v_reset, v_th, v_t
    P[K.DELTA_T] = np.maximum(delta_t, 1e-6)
    P[K.GL] = c_mem * inv_tm
    P[K.PLEAK] = np.exp(-dt * inv_tm)
    P[K.QDRIVE] = _psp_coefficient(dt, inv_tm, np.zeros(n)) / c_mem
    P[K.PEXC] = _psp_coefficient(dt, inv_tm, inv_te) / c_mem
    P[K.PINH] = _psp_coefficient(dt, inv_tm, inv_ti) / c_mem
    # decay factors below 1e-4 (tau_syn < dt / 9) are 0: the current lasts one step
    P[K.FEXC], P[K.FINH] = (np.where(f < 1e-4, 0.0, f) for f in (np.exp(-dt * inv_te), np.exp(-dt * inv_ti)))
    P[K.ADAPT_A], P[K.ADAPT_B], P[K.WFAC] = a, b, np.exp(-dt * inv_tw)
    P[K.VCLIP], P[K.GEXC], P[K.GINH] = v_clip, g_exc, g_inh
    return P


def apply_flags(P: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Fold the neuron enable bits into the parameters: a disabled synaptic
    input has no coupling; a disabled neuron sits at E_l and never fires."""
    P = P.copy()
    off = (flags & K.F_ENABLE) == 0
    P[K.PEXC, (flags & K.F_EXC) == 0] = 0.0
    P[K.PINH, (flags & K.F_INH) == 0] = 0.0
    for row in (K.PLEAK, K.PEXC, K.PINH, K.QDRIVE):
        P[row, off] = 0.0
    P[K.VTH, off] = np.inf
    return P


@dataclass
class Events:
    """Input events for the kernel, sorted by tick."""

    tick: np.ndarray     # int64
    label: np.ndarray    # int32
    src: np.ndarray      # int32 (0 external, 1 background, 2 recurrent)

    @staticmethod
    def empty() -> "Events":
        return Events(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32))

    @staticmethod
    def merge(*parts: "Events") -> "Events":
        parts = [p for p in parts if len(p.tick)]
        if not parts:
            return Events.empty()
        t = np.concatenate([p.tick for p in parts])
        order = np.argsort(t, kind="stable")
        return Events(t[order], np.concatenate([p.label for p in parts])[order].astype(np.int32),
                      np.concatenate([p.src for p in parts])[order].astype(np.int32))

    def split(self, tick: int) -> tuple["Events", "Events"]:
        i = int(np.searchsorted(self.tick, tick, side="left"))
        return (Events(self.tick[:i], self.label[:i], self.src[:i]),
                Events(self.tick[i:], self.label[i:], self.src[i:]))


class AnalogNetwork:
    """Analog state and kernel inputs of one chip instance."""

    def __init__(self, profile: Profile, regmap: RegisterMap, serial: int, seed: int = 0,
                 mismatch: bool = True, spike_loss: float | None = None, synapse_loss: float | None = None):
        self.p = p = profile
        self.regmap = regmap
        self.serial, self.seed, self.mismatch = serial, seed, mismatch
        self.fp = physics.fixed_pattern(p, serial, mismatch, synapse_loss)
        self.spike_loss = p.mismatch.spike_loss if spike_loss is None else spike_loss
        self.N, self.R, self.C = p.neurons, p.synapse_arrays * p.rows, p.columns
        self.pm_block = "capmem" if p.param_memory == "capmem" else "floating_gate"
        self.ncells = len(p.neuron_cells)
        self.cells = physics.CellBank(self.N * self.ncells, p)
        self.gcells = physics.CellBank(len(p.global_cells), p)
        self.current_n = np.array([physics.is_current_cell(c) for c in p.neuron_cells])
        self.current_g = np.array([physics.is_current_cell(c) for c in p.global_cells])
        self.role = {k: p.neuron_cells.index(v) for k, v in p.cell_roles}
        self.grole = {k: p.global_cells.index(v) for k, v in physics.GLOBAL_ROLES.items()
                      if v in p.global_cells}
        self.label_mask = (1 << p.label_bits) - 1
        self.wmax = (1 << p.weight_bits) - 1
        self.run_counter = 0
        self.noise = self._noise_rng()
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        N, R, C = self.N, self.R, self.C
        self.S = np.zeros((K.NSTATE, N), np.float32)        # float32: see kernel.run_steps
        self.refc = np.zeros(N, np.int32)
        self.carry = np.zeros(N, np.int32)
        self.carry_n = np.zeros(1, np.int64)
        self.lost = np.zeros(1, np.int64)
        self.rng_state = np.array([np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(self.serial + 1)], np.uint64)
        corr = self.p.correlation
        self.row_last = np.full((1 << self.p.label_bits, R) if corr else (1, 1), K.NEVER)   # [label, row]
        self.last_post = np.full(N, K.NEVER)
        self.causal = np.zeros((N, self.p.rows) if corr else (1, 1), np.float32)     # neuron-major
        self.acausal = np.zeros((R, C) if corr else (1, 1), np.float32)
        self.cells.reset()
        self.gcells.reset()
        self.syn_dirty = True
        self.draw_temporal()

    def _noise_rng(self) -> np.random.Generator:
        return np.random.default_rng([self.serial, self.seed, self.run_counter, 0x7E3])

    def next_run(self) -> None:
        """Temporal noise of a new run (one chip advance)."""
        self.run_counter += 1
        self.noise = self._noise_rng()

    # ------------------------------------------------------------------ cells
    def write_cells(self, idx, values, now: int, settle_field: int, global_cells: bool = False) -> None:
        bank = self.gcells if global_cells else self.cells
        settle_s = (2 ** settle_field) * self.p.analog.settle_tau
        write_sd = self.p.mismatch.cell_write if self.mismatch else 0.0
        bank.write(idx, values, now, settle_s, self.noise, write_sd)

    def settling(self, t: int) -> bool:
        return self.cells.settling(t) or self.gcells.settling(t)

    def cell_outputs(self, t: int, enabled: bool) -> tuple[np.ndarray, np.ndarray]:
        """Per-neuron (neurons, cells) and global cell outputs (V or A) at tick t."""
        vals = self.cells.at(t).reshape(self.N, self.ncells)
        gvals = self.gcells.at(t)
        if self.mismatch and self.p.mismatch.cell_temporal > 0 and self.p.param_memory == "capmem":
            sd = self.p.mismatch.cell_temporal
            vals = vals + self._temporal_n * sd
            gvals = gvals + self._temporal_g * sd
        out = physics.cell_output(vals, self.current_n[None, :], self.fp.cell_gain, self.fp.cell_offset, self.p)
        gout = physics.cell_output(gvals, self.current_g, self.fp.global_gain, self.fp.global_offset, self.p)
        if not enabled:
            out, gout = np.zeros_like(out), np.zeros_like(gout)
        return out, gout

    def draw_temporal(self) -> None:
        self._temporal_n = self.noise.standard_normal((self.N, self.ncells))
        self._temporal_g = self.noise.standard_normal(len(self.p.global_cells))

    # ------------------------------------------------------------------ kernel inputs
    def neuron_params(self, cells: np.ndarray, refractory_ticks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Kernel parameter matrix and refractory steps from cell outputs."""
        a = self.p.analog
        r = self.role
        col = lambda name: cells[:, r[name]]
        tau = lambda name: physics.tau_from_current(col(name), self.p)
        k_g = a.c_mem / (a.tau_full_scale * a.i_max)          # siemens per ampere of bias
        P = neuron_matrix(
            self.p.step_seconds, a.c_mem, col("e_l"), col("v_reset"), col("v_th"), col("v_t"),
            a.delta_t_full_scale * col("i_exp") / a.i_max, tau("i_leak"), tau("i_tau_exc"), tau("i_tau_inh"),
            k_g * col("i_a"), a.adapt_b_full_scale * col("i_b") / a.i_max, tau("i_tau_w"),
            col("i_gm_exc"), col("i_gm_inh"), 1.5 * a.v_max)
        steps = -(-np.asarray(refractory_ticks, np.int64) // a.step_ticks)
        return P, steps.astype(np.int32)

    def pm_config(self, bus) -> dict:
        """The parameter memory's config register (enable, settle), decoded."""
        reg = self.regmap.register(self.pm_block, "config")
        return reg.decode(int(bus.view(self.pm_block, "config")[0]))

    def synapse_inputs(self, bus) -> None:
        """syn_label, syn_amp and row_flags from the synapse and driver registers."""
        if not self.syn_dirty:
            return
        p = self.p
        wreg, lreg = self.regmap.register("synapse", "weights"), self.regmap.register("synapse", "labels")
        w = wreg.unpack_lanes("weight", bus.view("synapse", "weights").reshape(self.R, -1)).astype(np.float32)
        lab = lreg.unpack_lanes("label", bus.view("synapse", "labels").reshape(self.R, -1)).astype(np.int16)
        lab[self.fp.synapse_lost] = -1
        drv = bus.view("synapse_driver", "config").reshape(self.R)
        dreg = self.regmap.register("synapse_driver", "config")
        enable = dreg.field("enable").extract(drv)
        inh = dreg.field("inhibitory").extract(drv)
        gain = dreg.field("gain").extract(drv).astype(np.float32)
        src = dreg.field("source").extract(drv)
        accept = np.where(src == 3, 0b111, 1 << src)
        self.row_flags = (enable | (inh << 1) | (accept << 2)).astype(np.uint8)
        address = np.where(dreg.field("use_address").extract(drv) == 1, dreg.field("address").extract(drv),
                           np.arange(self.R))
        self.routes = K.event_routes(address)
        self.syn_gain8 = gain / np.float32(8.0)           # per row; twin.cosim rebuilds rows with it
        self.syn_amp = (w / np.float32(self.wmax)) * self.syn_gain8[:, None] * self.fp.synapse
        self.syn_label = lab
        self.lab_t = physics.neuron_major(lab, p) if p.correlation else np.zeros((1, 1), np.int16)
        self.syn_dirty = False

    def traces(self) -> tuple[np.ndarray, np.ndarray]:
        """Causal and acausal traces (V) in synapse layout (arrays * rows, columns)."""
        return physics.synapse_major(self.causal, self.p), self.acausal

    def reset_traces(self, row: int | None = None, columns=slice(None)) -> None:
        """Zero the traces of one row (or of all with row=None), or of some of its columns."""
        if row is None:
            self.causal[:] = 0.0
            self.acausal[:] = 0.0
            return
        a, rr = divmod(row, self.p.rows)
        cols = np.arange(self.C)[columns]
        self.causal[a * self.C + cols, rr] = 0.0
        self.acausal[row, cols] = 0.0

    def correlation_scales(self, gcells: np.ndarray) -> np.ndarray:
        """(eta in V, 1/tau in 1/s) of the correlation sensors from the global cells."""
        if not self.p.correlation:
            return np.zeros(2)
        a = self.p.analog
        tau = physics.tau_from_current(gcells[self.grole["corr_tau"]], self.p, a.corr_tau_full_scale)
        eta = a.corr_eta_full_scale * gcells[self.grole["corr_eta"]] / a.v_max
        return np.array([eta, float(_inv(tau))])
