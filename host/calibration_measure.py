"""Measurement protocols of the neuron calibration (host.calibration), over the
wire only: every number comes from register reads, recorded spikes and
membrane-ADC samples, so the same code runs on a board.

Two benches, one per readout:

* `ColumnADCBench` (dls, hx): the column ADC reads every neuron's membrane at
  once (`correlation.membrane`); its per-column offsets and gains are measured
  first against the membrane ADC.  Capacitive-memory cells can be rewritten
  freely, so each protocol sets the cells it needs and puts them back.
* `MembraneADCBench` (hicann): only the membrane ADC, one neuron at a time.  A
  round sweeps it over the neurons, one trace per neuron that holds every
  quantity, with every cell at its calibration value: a floating gate lands
  with a fresh write error on every write, so a protocol must not rewrite the
  cells it does not measure.

Both return, per neuron, leak, reset and threshold potentials (V), tau_mem and
the synaptic time constants (s), and the PSP heights of a full-weight
synapse at driver gain 8 with the target time constants (V; see
host.calibration for the definitions).  docs/calibration.md describes the
protocols; the comments here say why each step is there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from isa.regmap import LABEL_ROW_SHIFT
from isa.wire import FPGA_TICK_S

from .calibration_fit import CELL_MAX, ROLE, fit_decay, fit_psp, fit_relaxation, psp_kernel, psp_peak_factor
from .containers import CapMemConfig, CrossbarConfig, MADCConfig, synapse_words
from .coords import ChipOnly

TICK = FPGA_TICK_S
#: Parameter-memory settling: `settle` = 0 gives a time constant of 0.25 us; protocols
#: wait 12 time constants after a write (exp(-12) of a full-scale step is below 0.01 LSB).
SETTLE_FIELD = 0
SETTLE_S = 3e-6
#: Cell offsets (LSB) over which static potentials are dithered on the column ADC.  One
#: cell LSB is a quarter of a column-ADC LSB (10-bit cells, 8-bit ADC over about the
#: same range): symmetric offsets over two ADC LSBs average the ADC's rounding away
#: on a chip without read noise too.
DITHER = np.array([-4, -3, -2, -1, 1, 2, 3, 4])
#: Rows of each synapse array the calibration uses (weights and drivers are
#: overwritten; docs/calibration.md): excitatory and inhibitory PSP volleys, and the
#: drive that makes floating-gate neurons cross threshold.
EXC_ROWS, INH_ROWS, DRIVE_ROWS = np.arange(0, 8), np.arange(8, 16), np.arange(16, 24)
#: Labels that reach no synapse-driver row (bits [15:6] beyond every chip's rows): the
#: neurons' spikes are recorded but never routed back.
SPIKE_LABEL_BASE = 0xFC00


@dataclass(frozen=True)
class Volley:
    """A stimulus: one event into each row of a group, in every array at once.
    `factor` is its strength in full-weight synapses at driver gain 8."""

    rows: np.ndarray
    weight: int
    gain: int
    inhibitory: bool
    factor: float


def choose_volley(rows: np.ndarray, wmax: int, want_factor: float, inhibitory: bool,
                  all_rows: bool = True) -> Volley:
    """Rows, weight and driver gain for a volley of about `want_factor` full-weight
    synapses at gain 8 (factor = rows * weight / wmax * gain / 8).  A PSP volley
    keeps all its rows (its height is the mean over their synapses); a drive
    (`all_rows` False) may use fewer to reach weaker volleys."""
    best, best_err = None, np.inf
    for r in ([len(rows)] if all_rows else range(len(rows), 0, -1)):
        for g in range(1, 16):
            w = int(np.clip(round(want_factor * 8 * wmax / (r * g)), 1, wmax))
            f = r * w / wmax * g / 8
            err = abs(math.log(f / want_factor))
            if err < best_err - 1e-9:
                best, best_err = Volley(rows[:r], w, g, inhibitory, f), err
    return best


class Bench:
    """Chip set-up shared by both benches: a chip reset, the parameter memory,
    recorded spike labels, the calibration's synapse rows and drivers."""

    def __init__(self, conn, neurons: np.ndarray, targets):
        self.conn, self.p, self.rm = conn, conn.profile, conn.regmap
        self.neurons = np.asarray(neurons, np.int64)
        self.targets = targets
        p = self.p
        self.step = p.analog.step_ticks
        self.pm = "capmem" if p.param_memory == "capmem" else "floating_gate"
        self.cell = {q: p.cell_for(r) for q, r in ROLE.items()}
        self.wmax = self.rm.register("synapse", "weights").field("weight0").limit
        self._cell_addr = self.rm.addresses(self.pm, "neuron").reshape(p.neurons, len(p.neuron_cells))
        self._value_lsb = self.rm.register(self.pm, "neuron").field("value").lsb
        self._config = self.rm.register("neuron", "config")
        self._counter = self.rm.register("neuron", "spike_counter").field("count")
        self.cells: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ register helpers
    def write_cell(self, prog, name: str, values, neurons=None) -> None:
        """Write per-neuron cell `name` (a cell name) of `neurons` (default: all calibrated)."""
        neurons = self.neurons if neurons is None else np.asarray(neurons, np.int64)
        values = np.broadcast_to(np.asarray(values, np.int64), neurons.shape)
        k = self.p.neuron_cells.index(name)
        prog.write_words(self._cell_addr[neurons, k], values << self._value_lsb)

    def write_config(self, prog, neurons=None, **fields) -> None:
        neurons = self.neurons if neurons is None else neurons
        prog.write_words(self.rm.addresses("neuron", "config", neurons),
                         self._config.encode(**{**self.neuron_fields, **fields}))

    def read_counters(self, prog):
        return prog.read_words(self.rm.addresses("neuron", "spike_counter", self.neurons))

    def reset_counters(self, prog) -> None:
        prog.write_words(self.rm.addresses("neuron", "spike_counter_reset", self.neurons), 1)

    def counts(self, ticket) -> np.ndarray:
        return self._counter.extract(ticket.values.astype(np.int64))

    def spike_times(self, spikes) -> list[np.ndarray]:
        """Recorded spike times (ticks since the program's timer reset) per calibrated neuron."""
        neuron = spikes["label"].astype(np.int64) - SPIKE_LABEL_BASE
        order = np.argsort(neuron, kind="stable")          # stable: each neuron's spikes stay in time order
        neuron, t = neuron[order], spikes["time"].astype(np.int64)[order]
        first = np.searchsorted(neuron, self.neurons, side="left")
        last = np.searchsorted(neuron, self.neurons, side="right")
        return [t[a:b] for a, b in zip(first, last)]

    def volley_labels(self, v: Volley) -> np.ndarray:
        p = self.p
        rows = (np.arange(p.synapse_arrays)[:, None] * p.rows + v.rows[None, :]).ravel()
        return rows << LABEL_ROW_SHIFT

    # ------------------------------------------------------------------ set-up
    def setup(self, refractory: int, refractory_clock: int, volleys: list[Volley]) -> None:
        """Reset the chip and configure what every protocol shares.  Neurons stay
        disabled; spikes are recorded with labels SPIKE_LABEL_BASE + neuron."""
        p, rm = self.p, self.rm
        self.neuron_fields = dict(refractory=refractory, refractory_clock=refractory_clock, enable=0)
        prog = self.conn.program()
        prog.reset()
        prog.write(ChipOnly(), CapMemConfig(enable=1, settle=SETTLE_FIELD))
        labels = rm.register("routing", "neuron_label")
        prog.write_words(rm.addresses("routing", "neuron_label", self.neurons),
                         [labels.encode(label=SPIKE_LABEL_BASE + int(n), enable=1) for n in self.neurons])
        self.write_config(prog)
        prog.write(ChipOnly(), CrossbarConfig(loopback=0, recurrent=0, record=1))
        for v in volleys:
            self.write_volley(prog, v)
        self.conn.run(prog)

    def write_volley(self, prog, v: Volley) -> None:
        """The synapses (weight, label 0) and drivers of a volley's rows in every array."""
        p, rm = self.p, self.rm
        driver = rm.register("synapse_driver", "config")
        quads = p.quads_per_row
        w = np.full((len(v.rows), p.columns), v.weight)
        words = synapse_words(rm, w, np.zeros_like(w))
        for a in range(p.synapse_arrays):
            flat = ((a * p.rows + v.rows)[:, None] * quads + np.arange(quads)).ravel()
            prog.write_words(rm.addresses("synapse", "weights", flat), words[0].ravel())
            prog.write_words(rm.addresses("synapse", "labels", flat), words[1].ravel())
            prog.write_words(rm.addresses("synapse_driver", "config", a * p.rows + v.rows),
                             driver.encode(enable=1, inhibitory=int(v.inhibitory), gain=v.gain, source=0))

    def teardown(self) -> None:
        """Put back what the set-up changed, except the cells: synapse rows, drivers,
        neuron configuration and labels, crossbar and membrane ADC at their reset values."""
        p, rm = self.p, self.rm
        prog = self.conn.program()
        rows = np.concatenate([EXC_ROWS, INH_ROWS, DRIVE_ROWS])
        quads = p.quads_per_row
        for a in range(p.synapse_arrays):
            flat = ((a * p.rows + rows)[:, None] * quads + np.arange(quads)).ravel()
            for block, reg, index in (("synapse", "weights", flat), ("synapse", "labels", flat),
                                      ("synapse_driver", "config", a * p.rows + rows)):
                prog.write_words(rm.addresses(block, reg, index), rm.register(block, reg).reset)
        prog.write_words(rm.addresses("neuron", "config", self.neurons), self._config.reset)
        prog.write_words(rm.addresses("routing", "neuron_label", self.neurons),
                         rm.register("routing", "neuron_label").reset)
        prog.write(ChipOnly(), CrossbarConfig())
        prog.write(ChipOnly(), MADCConfig())
        self.conn.run(prog)

    def refractory_steps(self) -> int:
        """Refractory period in analog steps: refractory * 2**clock ticks rounded up to
        whole steps (docs/model.md, "Neurons")."""
        ticks = self.neuron_fields["refractory"] << self.neuron_fields["refractory_clock"]
        return -(-ticks // self.step)


def _ticks(seconds: float) -> int:
    return int(round(seconds / TICK))


def _refractory_fields(seconds: float) -> tuple[int, int]:
    """(refractory, refractory_clock) for a period of at least `seconds` (the
    period is refractory * 2**clock ticks, refractory at most 255)."""
    ticks = math.ceil(seconds / TICK)
    clock = 0
    while -(-ticks // (1 << clock)) > 255:
        clock += 1
    return -(-ticks // (1 << clock)), clock


class _Clock:
    """Program time (ticks since the program's timer reset), only ever forward."""

    def __init__(self, prog):
        self.prog, self.t = prog, 0
        prog.timer_reset()

    def wait(self, ticks: int) -> int:
        self.t += max(int(ticks), 1)
        self.prog.wait_until(self.t)
        return self.t

    def until(self, t: int) -> int:
        if t > self.t:
            self.t = int(t)
            self.prog.wait_until(self.t)
        return self.t


# =========================================================================== column ADC (dls, hx)
class ColumnADCBench(Bench):
    """Measurements of all neurons at once through the column ADC.

    reference()     per column, the ADC's line code = gain * V + offset, and per
                    neuron the leak cell's line V = slope * cell + offset, both
                    against the membrane ADC (the absolute reference) at two
                    leak levels;
    measure()       one round: every quantity of every neuron at the present cells.
    """

    #: Repeated conversions per reading (the ADC's read noise averages out; each
    #: conversion draws its own noise).
    READS = 32
    #: Leak cell levels of the reference (nominal volts): they bracket every target.
    REF_LEVELS = (0.25, 0.95)
    #: Membrane-ADC samples per neuron in a reference sweep.
    SWEEP_SAMPLES = 16
    #: Delays of the tau_mem readings after the clamp ends, in target tau_mem.
    DECAY_DELAYS = (0.3, 0.6, 0.9, 1.2, 1.6, 2.1)

    def __init__(self, conn, neurons, targets):
        super().__init__(conn, neurons, targets)
        p, t = self.p, targets
        a = p.analog
        self._cadc = self.rm.addresses("correlation", "membrane", self.neurons)
        self._cadc_field = self.rm.register("correlation", "membrane").field("value")
        self.high = CELL_MAX          # a threshold above every membrane: no spikes
        # reset / tau_mem: the clamp must outlast the threshold cell's rise back to high
        ref, clock = _refractory_fields(4e-6)
        # the membrane relaxes from the reset towards a leak level far from it
        self.tau_level = 0.95 if t.reset < 0.55 else 0.15
        budget_up = min(0.25, 0.8 * (1.05 - t.leak))
        budget_down = min(0.25, 0.8 * (t.leak - 0.1))
        self.volleys = {
            "exc": choose_volley(EXC_ROWS, self.wmax, budget_up / t.psp_exc, False),
            "inh": choose_volley(INH_ROWS, self.wmax, budget_down / t.psp_inh, True),
        }
        self.setup(ref, clock, list(self.volleys.values()))
        self.cadc_gain = np.full(len(self.neurons), 1.0 / a.cadc_lsb)
        self.cadc_offset = np.zeros(len(self.neurons))
        self.leak_slope = np.full(len(self.neurons), a.v_max / CELL_MAX)
        self.leak_offset = np.zeros(len(self.neurons))

    # ------------------------------------------------------------------ readings
    def _read(self, prog, reads: int | None = None):
        reads = self.READS if reads is None else reads
        return prog.read_words(np.tile(self._cadc, reads))

    def _codes(self, ticket) -> np.ndarray:
        """(conversions, neurons) codes of a reading."""
        return self._cadc_field.extract(ticket.values.astype(np.int64)).reshape(-1, len(self.neurons))

    def volts(self, codes) -> np.ndarray:
        """Column-ADC codes (.., neurons) in volts through each column's measured line;
        NaN where the ADC clipped (code 0 or full scale)."""
        c = np.asarray(codes, np.float64)
        full = (1 << self.p.analog.cadc_bits) - 1
        return np.where((c > 0) & (c < full), (c - self.cadc_offset) / self.cadc_gain, np.nan)

    def _mean_volts(self, ticket) -> np.ndarray:
        """Mean over a reading's conversions, clipped ones left out (NaN if all clipped)."""
        v = self.volts(self._codes(ticket))
        ok = np.isfinite(v)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ok, v, 0.0).sum(axis=0) / ok.sum(axis=0)

    def leak_cell(self, volts) -> np.ndarray:
        """Leak cells for potentials `volts` (per neuron) by the measured leak line."""
        return np.clip(np.rint((np.asarray(volts) - self.leak_offset) / self.leak_slope), 0, CELL_MAX).astype(np.int64)

    def leak_volts(self, cells) -> np.ndarray:
        return self.leak_slope * np.asarray(cells, np.float64) + self.leak_offset

    # ------------------------------------------------------------------ protocols
    def _write_cells(self, prog, cells: dict) -> None:
        for q, values in cells.items():
            self.write_cell(prog, self.cell[q], values)

    def _dithered_rest(self, prog, clock, base_cells) -> list:
        """The resting membranes at leak cells base + each DITHER offset: a neuron
        switched on starts at its leak potential, so no relaxation is waited for."""
        tickets = []
        el = self.cell["leak"]
        for d in DITHER:
            self.write_config(prog, enable=0)
            self.write_cell(prog, el, np.clip(base_cells + d, 0, CELL_MAX))
            clock.wait(_ticks(SETTLE_S))
            self.write_config(prog, enable=1)
            clock.wait(self.step * 2)
            tickets.append(self._read(prog))
        return tickets

    def _dither_mean(self, tickets, base_cells) -> np.ndarray:
        """Mean of dithered readings, corrected to the undithered cell by the nominal slope."""
        v = np.mean([self._mean_volts(t) for t in tickets], axis=0)
        eff = np.mean([np.clip(base_cells + d, 0, CELL_MAX) - base_cells for d in DITHER], axis=0)
        return v - eff * self.p.analog.v_max / CELL_MAX

    def reference(self, progress=None) -> None:
        """Column-ADC lines and leak lines from two leak levels, each read by the
        membrane ADC (one neuron after another, SWEEP_SAMPLES samples each) and by
        the column ADC (dithered, all at once)."""
        p = self.p
        period = self.step
        madc_v, cadc_v, levels = [], [], []
        for level in self.REF_LEVELS:
            base = np.full(len(self.neurons), int(round(level / p.analog.v_max * CELL_MAX)))
            prog = self.conn.program()
            clock = _Clock(prog)
            self._write_cells(prog, self.cells)
            self.write_cell(prog, self.cell["threshold"], self.high)
            self.write_cell(prog, self.cell["leak"], base)
            self.write_config(prog, enable=0)
            clock.wait(_ticks(SETTLE_S))
            self.write_config(prog, enable=1)
            clock.wait(self.step * 2)
            starts = []
            for n in self.neurons:
                prog.write(ChipOnly(), MADCConfig(enable=1, source=0, neuron=int(n), period=period))
                starts.append(clock.t)
                clock.wait(period * self.SWEEP_SAMPLES)
            prog.write(ChipOnly(), MADCConfig(enable=0))
            ends = starts[1:] + [clock.t]
            tickets = self._dithered_rest(prog, clock, base)
            res = self.conn.run(prog)
            madc_v.append(_madc_means(res.madc, starts, ends, p))
            cadc_v.append(self._dither_mean_codes(tickets, base))
            levels.append(base)
            if progress:
                progress.update(1)
        (v0, v1), (c0, c1), (x0, x1) = madc_v, cadc_v, levels
        self.cadc_gain = (c1 - c0) / (v1 - v0)
        self.cadc_offset = c0 - self.cadc_gain * v0
        self.leak_slope = (v1 - v0) / (x1 - x0)
        self.leak_offset = v0 - self.leak_slope * x0

    def _dither_mean_codes(self, tickets, base) -> np.ndarray:
        """Mean code at the undithered cell (the ADC line is not known yet: codes, nominal gain)."""
        a = self.p.analog
        code = np.mean([np.mean(self._codes(t), axis=0) for t in tickets], axis=0)
        eff = np.mean([np.clip(base + d, 0, CELL_MAX) - base for d in DITHER], axis=0)
        return code - eff * (a.v_max / CELL_MAX) / a.cadc_lsb

    def set_cells(self, name: str, values, which=None) -> None:
        """The cells of quantity `name` for the next measurements (written by them:
        capacitive memory holds what it is given, so rewriting costs nothing)."""
        values = np.asarray(values, np.int64)
        keep = self.cells.get(name, values)
        self.cells[name] = values.copy() if which is None else np.where(which, values, keep)

    def adapt(self, measured: dict, last: dict, active: np.ndarray) -> None:
        """Nothing to adapt: the protocols' stimuli do not depend on the chip."""

    def readout(self) -> dict:
        return {"cadc_gain": self.cadc_gain.copy(), "cadc_offset": self.cadc_offset.copy()}

    def teardown(self) -> None:
        """The protocols leave cells at their own levels: write the calibration's."""
        prog = self.conn.program()
        self._write_cells(prog, self.cells)
        self.conn.run(prog)
        super().teardown()

    def measure(self, quantities, active=None, progress=None) -> dict:
        """One round at the present cells: every neuron is measured (the column ADC
        reads them all at once, so `active` changes nothing); the threshold only
        when it is among `quantities` (its bisection takes a dozen runs), else NaN."""
        out = self._round(self.cells)
        out["threshold"] = (self.threshold(self.cells["threshold"]) if "threshold" in quantities
                            else np.full(len(self.neurons), np.nan))
        if progress:
            progress.update(1)
        return out

    def _round(self, cells: dict) -> dict:
        """Leak, reset, tau_mem and both PSPs in one program (the PSP timing needs
        the step alignment the reset protocol's spikes give)."""
        p, t = self.p, self.targets
        c = self.cell
        prog = self.conn.program()
        clock = _Clock(prog)
        self._write_cells(prog, cells)
        self.write_cell(prog, c["threshold"], self.high)
        # ---- leak: dithered resting potential
        rest = self._dithered_rest(prog, clock, cells["leak"])
        # ---- reset and tau_mem: a spike, the clamp, the relaxation towards a distant leak level
        self.write_cell(prog, c["leak"], self.leak_cell(np.full(len(self.neurons), self.tau_level)))
        ref_ticks = self.refractory_steps() * self.step
        delays = (np.array(self.DECAY_DELAYS) * t.tau_mem / TICK).astype(np.int64)
        tail = _ticks(10 * t.tau_mem)
        enables, clamp, decay, settled = [], [], [], []
        for d in DITHER:
            self.write_config(prog, enable=0)
            self.write_cell(prog, c["threshold"], 0)
            self.write_cell(prog, c["reset"], np.clip(cells["reset"] + d, 0, CELL_MAX))
            clock.wait(_ticks(SETTLE_S))
            self.write_config(prog, enable=1)          # starts at its leak level, above threshold: fires
            enables.append(clock.t)
            clock.wait(self.step)
            self.write_cell(prog, c["threshold"], self.high)
            clock.wait(ref_ticks // 2)
            clamp.append(self._read(prog))
            start = enables[-1] + self.step + ref_ticks
            row = []
            for dt in delays:
                clock.until(start + dt)
                row.append((clock.t, self._read(prog, 4)))
            decay.append(row)
            clock.until(start + tail)
            settled.append(self._read(prog, 4))
        # ---- PSPs from the leak potential
        self.write_config(prog, enable=0)
        self.write_cell(prog, c["leak"], cells["leak"])
        psp_delays = _psp_delays(t)
        psp = {}
        for side, volley in self.volleys.items():
            labels = self.volley_labels(volley)
            reps = []
            for d in DITHER:        # dithered leak: the readings of each repetition round differently
                self.write_config(prog, enable=0)
                self.write_cell(prog, c["leak"], np.clip(cells["leak"] + d, 0, CELL_MAX))
                clock.wait(_ticks(SETTLE_S))
                self.write_config(prog, enable=1)       # at rest, no synaptic current
                clock.wait(self.step * 2)
                base = self._read(prog)
                t_in = clock.wait(self.step * 2)
                prog.spikes(labels, np.full(len(labels), t_in))
                row = []
                for dt in psp_delays:
                    clock.until(t_in + _ticks(dt))
                    row.append((clock.t, self._read(prog, 4)))
                reps.append((t_in, base, row))
            psp[side] = reps
        self.write_config(prog, enable=0)
        res = self.conn.run(prog)
        out = {"leak": self._dither_mean(rest, cells["leak"])}
        # reset: clamp readings, dithered over the repetitions
        v_clamp = np.array([self._mean_volts(k) for k in clamp])             # (reps, neurons)
        eff = np.array([np.clip(cells["reset"] + d, 0, CELL_MAX) - cells["reset"] for d in DITHER])
        out["reset"] = np.mean(v_clamp - eff * p.analog.v_max / CELL_MAX, axis=0)
        # tau_mem: each repetition relaxes from its clamp level to the same leak level
        spikes = self.spike_times(res.spikes)
        v_rest = np.mean([self._mean_volts(k) for k in settled], axis=0)
        ts, vs = [], []
        for r, row in enumerate(decay):
            t_spike = np.array([_first_after(s, enables[r]) for s in spikes], np.float64)
            t0 = t_spike + ref_ticks                  # the clamp ends a refractory period after the spike
            for when, ticket in row:
                ts.append(self._boundary(when, t0) - t0)
                vs.append(self._mean_volts(ticket))
        ts = np.array(ts).T * TICK                    # (neurons, obs)
        vs = np.array(vs).T
        start = np.repeat(v_clamp.T, len(delays), axis=1)      # each repetition's own clamp level
        out["tau_mem"] = fit_decay(ts, vs, v_rest, start)
        # PSPs: the volley acts from the first step boundary after its events
        ref_boundary = _any_boundary(spikes)
        for side, reps in psp.items():
            dv = []
            for t_in, base, row in reps:
                onset = self._next_boundary(t_in, ref_boundary)
                tt = np.array([self._boundary(w, onset) - onset for w, _ in row]) * TICK
                b = self._mean_volts(base)
                dv.append(np.array([self._mean_volts(k) for _, k in row]).T - b[:, None])
            dv = np.mean(dv, axis=0)
            sign = -1.0 if side == "inh" else 1.0
            tau_s_t = t.tau_syn_exc if side == "exc" else t.tau_syn_inh
            b, tau_s = fit_psp(tt, sign * dv, out["tau_mem"], tau_s_t)
            out[f"tau_syn_{side}"] = tau_s
            out[f"psp_{side}"] = b / self.volleys[side].factor * psp_peak_factor(t.tau_mem, tau_s_t)
        return out

    def _boundary(self, when, ref) -> np.ndarray:
        """The last step boundary at or before `when` (ticks), given a boundary `ref`:
        what a reading at `when` sees (docs/model.md, "Time step")."""
        ref = np.asarray(ref, np.float64)
        return ref + np.floor((when - ref) / self.step) * self.step

    def _next_boundary(self, when, ref) -> float:
        """First step boundary after tick `when`: when an input event at `when` acts."""
        return ref + math.ceil((when + 1 - ref) / self.step) * self.step

    # ------------------------------------------------------------------ threshold
    def threshold(self, vth_cells) -> np.ndarray:
        """Threshold potentials at `vth_cells`: per neuron the leak cell at which the
        neuron starts to fire, found by bisection.  A neuron switched on starts at
        its leak potential and fires in its first step exactly when that potential is
        at or above threshold, so one short run answers the comparison for all
        neurons at once; the leak line (membrane-ADC reference) turns the onset
        cell into volts.  The estimate is the midpoint between the highest
        silent and the lowest firing leak potential."""
        nominal = np.asarray(vth_cells) * self.p.analog.v_max / CELL_MAX
        lo = self.leak_cell(nominal - 0.08)
        hi = self.leak_cell(nominal + 0.08)
        for attempt in range(4):                               # widen brackets that miss the onset
            f_lo, f_hi = self._fires(vth_cells, lo), self._fires(vth_cells, hi)
            bad = f_lo | ~f_hi
            if not bad.any() or attempt == 3:
                break
            lo = np.where(f_lo, np.maximum(lo - 100, 0), lo)
            hi = np.where(f_hi, hi, np.minimum(hi + 100, CELL_MAX))
        while (hi - lo > 1).any():
            mid = (lo + hi) // 2
            f = self._fires(vth_cells, mid)
            hi, lo = np.where(f, mid, hi), np.where(f, lo, mid)
        v = 0.5 * (self.leak_volts(lo) + self.leak_volts(hi))
        return np.where(bad, np.nan, v)

    def _fires(self, vth_cells, leak_cells) -> np.ndarray:
        """Which neurons fire in their first step when switched on at these leak cells."""
        prog = self.conn.program()
        clock = _Clock(prog)
        self.write_config(prog, enable=0)
        self.write_cell(prog, self.cell["threshold"], vth_cells)
        self.write_cell(prog, self.cell["leak"], leak_cells)
        clock.wait(_ticks(SETTLE_S))
        self.reset_counters(prog)
        self.write_config(prog, enable=1)
        clock.wait(self.step * 3)
        ticket = self.read_counters(prog)
        self.write_config(prog, enable=0)
        self.conn.run(prog)
        return self.counts(ticket) > 0


def _psp_delays(t) -> np.ndarray:
    """Reading delays (s) of a PSP: its rise (in tau_syn) and its decay (in tau_mem)."""
    tau_s = min(t.tau_syn_exc, t.tau_syn_inh)
    return np.unique(np.concatenate([tau_s * np.array([0.25, 0.5, 1.0, 1.5]),
                                     t.tau_mem * np.array([1.0, 1.5, 2.2, 3.0])]))


def _first_after(times: np.ndarray, t: int) -> float:
    later = times[times >= t]
    return float(later[0]) if len(later) else np.nan


def _any_boundary(spikes: list[np.ndarray]) -> int:
    """A step boundary: spikes are stamped at the end of a step."""
    for s in spikes:
        if len(s):
            return int(s[0])
    raise RuntimeError("no neuron fired in the reset protocol: the chip does not answer like a "
                       "neuron chip (check the connection and that the parameter memory is enabled)")


def _madc_means(madc, starts, ends, profile) -> np.ndarray:
    """Mean membrane-ADC sample (volts) within each (start, end) window, borders excluded."""
    a = profile.analog
    t = madc["time"].astype(np.int64)
    v = a.madc_volts(madc["value"])
    out = np.empty(len(starts))
    for k, (s, e) in enumerate(zip(starts, ends)):
        sel = (t > s) & (t < e)
        out[k] = v[sel].mean() if sel.any() else np.nan
    return out


# =========================================================================== membrane ADC (hicann)
class MembraneADCBench(Bench):
    """Measurements through the membrane ADC, one neuron at a time, every cell at
    its calibration value (floating gates: no protocol rewrites a cell).

    A round sweeps the ADC over the neurons to measure; meanwhile every neuron
    runs the same schedule, and the trace of the one the ADC follows gives all
    its quantities:

      EPSP, IPSP  one volley each from rest: the synaptic time constants and
                  amplitudes (fit_psp, with this trace's tau_mem);
      drive       an event train of rising rate on the drive rows ramps the
                  membrane over threshold: the threshold is the membrane
                  extrapolated to the spike (a parabola through the last
                  readings before it);
      clamp       a long refractory period holds the membrane at the reset
                  potential while the drive's current dies away;
      relaxation  from the reset to rest: leak potential and tau_mem
                  (fit_relaxation).

    The stimuli follow the chip: after each round the volleys are scaled to the
    strongest neurons (no EPSP reaches threshold, no IPSP the ground) and the
    drive to the weakest (each of them fires).
    """

    #: Membrane-ADC sample period (ticks, 16 ns): fine enough that the last readings
    #: before a spike pin down the membrane's approach to threshold.
    PERIOD = 2
    #: The schedule's windows are sized for time constants this factor above their
    #: targets: uncalibrated ones reach it (cell gain mismatch 20 % and the write
    #: error); later rounds shrink it to what they measured (at least SLOW_MIN).
    SLOW, SLOW_MIN = 1.4, 1.1

    def __init__(self, conn, neurons, targets):
        super().__init__(conn, neurons, targets)
        t = targets
        self.slow = self.SLOW
        self.drive_window = 3 * t.tau_mem
        ref, clock = self._refractory()
        # the ramp ends with one event per 1/16 tau_syn: its current is smooth
        self.drive_events = max(8, int(self.drive_window / (2 * min(t.tau_syn_exc, t.tau_syn_inh) / 16)))
        self.drive_boost = 1.0          # raised while neurons do not fire under the drive
        self._pending: list = []        # cell writes for the next program
        self.exc_goal = 0.4 * (t.threshold - t.leak)
        self.inh_goal = min(0.25, 0.8 * (t.leak - 0.1))
        nominal = {"psp_exc": np.full(len(self.neurons), t.psp_exc),
                   "psp_inh": np.full(len(self.neurons), t.psp_inh)}
        self._scale(nominal, 1.5)          # the first round allows for the uncalibrated spread
        self.setup(ref, clock, [self.volleys["exc"], self.volleys["inh"], self.drive])
        prog = self.conn.program()
        self.write_config(prog, enable=1)
        self.conn.run(prog)
        self._labels = self.rm.register("routing", "neuron_label")

    def _refractory(self) -> tuple[int, int]:
        """The clamp outlasts the drive and eight (slow) synaptic time constants of the
        decay of its current (exp(-8): no trace of it in the relaxation)."""
        t = self.targets
        return _refractory_fields(self.drive_window + 8 * self.slow * max(t.tau_syn_exc, t.tau_syn_inh))

    def _scale(self, measured: dict, spread: float) -> None:
        """Volleys and drive for PSP heights `measured` (their 90th and 5th
        percentiles: one odd neuron does not set them; `spread` widens the nominal
        heights where none is measured yet)."""
        t = self.targets
        def pct(q, k, nominal):
            v = measured[q][np.isfinite(measured[q])]
            return float(np.percentile(v, k)) if len(v) else nominal
        strong_e = pct("psp_exc", 90, t.psp_exc * spread)
        strong_i = pct("psp_inh", 90, t.psp_inh * spread)
        weak_e = pct("psp_exc", 5, t.psp_exc / spread)
        self.volleys = {"exc": choose_volley(EXC_ROWS, self.wmax, self.exc_goal / strong_e, False),
                        "inh": choose_volley(INH_ROWS, self.wmax, self.inh_goal / strong_i, True)}
        # drive: at the ramp's end its mean current would hold the weak membranes three
        # times as far above the leak as the threshold (rate 2 events / window at the end);
        # no stronger than needed: the steeper the crossing, the coarser the threshold
        b = max(weak_e, 0.3 * t.psp_exc) / float(psp_peak_factor(t.tau_mem, t.tau_syn_exc))   # I0 / C, V/s
        lift = 3 * (t.threshold - t.leak) * self.drive_boost
        rate = 2 * self.drive_events / self.drive_window
        want = lift / (b * t.tau_syn_exc * t.tau_mem * rate)
        self.drive = choose_volley(DRIVE_ROWS, self.wmax, want, False, all_rows=False)

    def adapt(self, measured: dict, last: dict, active: np.ndarray) -> None:
        """Stimuli for the next round (class docstring) from every neuron's latest
        `measured` values; `last` is the round just measured (of the `active`
        neurons).  The drive grows by half (up to four times) after a round in
        which more than one neuron and 2 % of those measured did not fire under it,
        and shrinks back after one in which all fired."""
        missed = int(np.isnan(last["threshold"][active]).sum())
        if missed > max(1, 0.02 * active.sum()):
            self.drive_boost = min(4.0, 1.5 * self.drive_boost)
        elif missed == 0:
            self.drive_boost = max(1.0, self.drive_boost / 1.5)
        self._scale(measured, 1.0)
        t = self.targets
        ratios = [measured[q] / getattr(t, q) for q in ("tau_mem", "tau_syn_exc", "tau_syn_inh")]
        slowest = np.nanmax(ratios) if np.isfinite(ratios).any() else self.SLOW
        self.slow = float(np.clip(1.05 * slowest, self.SLOW_MIN, self.SLOW))
        ref, clock = self._refractory()
        self.neuron_fields.update(refractory=ref, refractory_clock=clock)
        prog = self.conn.program()
        self.write_config(prog, enable=1)
        for v in (self.volleys["exc"], self.volleys["inh"]):
            self.write_volley(prog, v)
        self._clear_rows(prog, DRIVE_ROWS)
        self.write_volley(prog, self.drive)
        self.conn.run(prog)

    def _clear_rows(self, prog, rows) -> None:
        p, rm = self.p, self.rm
        for a in range(p.synapse_arrays):
            prog.write_words(rm.addresses("synapse_driver", "config", a * p.rows + rows),
                             rm.register("synapse_driver", "config").reset)

    def readout(self) -> dict:
        return {}

    def set_cells(self, name: str, values, which=None) -> None:
        """Write the cells of quantity `name` of the neurons in `which` (default:
        all), with the next measurement (or teardown): each write of a floating
        gate lands with its own error, so only the neurons named are written,
        even where the value is unchanged."""
        values = np.asarray(values, np.int64)
        which = np.ones(len(self.neurons), bool) if which is None else np.asarray(which, bool)
        self.cells[name] = np.where(which, values, self.cells.get(name, values))
        if which.any():
            self._pending.append((self.cell[name], values[which], self.neurons[which]))

    def _flush(self, prog, clock) -> None:
        """The pending cell writes, and their settling."""
        for name, values, neurons in self._pending:
            self.write_cell(prog, name, values, neurons)
        if self._pending:
            clock.wait(_ticks(SETTLE_S))
        self._pending = []

    def teardown(self) -> None:
        prog = self.conn.program()
        self._flush(prog, _Clock(prog))
        self.conn.run(prog)
        super().teardown()

    def _schedule(self):
        """The per-neuron schedule: segment length, input labels and ticks, phase
        starts; ticks from the segment's start.  Each phase lasts until its
        response has decayed to a few per cent; what remains is modelled (the
        PSPs are fitted on the relaxation's and the EPSP's remainders)."""
        t = self.targets
        slow_m = self.slow * t.tau_mem
        epsp = _ticks(slow_m)
        ipsp = epsp + _ticks(4 * slow_m)
        drive = ipsp + _ticks(4 * slow_m)
        drive_end = drive + _ticks(self.drive_window)
        ref_ticks = self.refractory_steps() * self.step
        end = drive_end + ref_ticks + _ticks(4 * slow_m)
        end += (-end) % self.PERIOD                     # every segment samples at the same phases
        # events at drive + W sqrt(k / N): the rate rises linearly over the window W
        k = np.arange(self.drive_events)
        drive_t = drive + np.rint(_ticks(self.drive_window) * np.sqrt((k + 0.5) / self.drive_events)).astype(np.int64)
        dl = self.volley_labels(self.drive)
        el, il = self.volley_labels(self.volleys["exc"]), self.volley_labels(self.volleys["inh"])
        labels = np.concatenate([el, il, np.tile(dl, len(drive_t))])
        ticks = np.concatenate([np.full(len(el), epsp), np.full(len(il), ipsp), np.repeat(drive_t, len(dl))])
        return end, labels, ticks, dict(epsp=epsp, ipsp=ipsp, drive=drive, drive_end=drive_end, ref=ref_ticks,
                                        end=end)

    def measure(self, quantities, active=None, progress=None) -> dict:
        """Sweep the membrane ADC over the `active` neurons (default: all); the
        others get NaN."""
        p = self.p
        active = np.ones(len(self.neurons), bool) if active is None else np.asarray(active, bool)
        idx = np.flatnonzero(active)
        out = {q: np.full(len(self.neurons), np.nan) for q in ROLE}
        if not len(idx):
            return out
        length, in_labels, in_ticks, ph = self._schedule()
        label_addr = self.rm.addresses("routing", "neuron_label", self.neurons)
        label = lambda n, on: int(self._labels.encode(label=SPIKE_LABEL_BASE + int(n), enable=on))
        prog = self.conn.program()
        clock = _Clock(prog)
        self._flush(prog, clock)
        prog.write_words(label_addr, [label(n, 0) for n in self.neurons])   # record only the followed neuron
        # a first segment that no one follows: every neuron's membrane then enters each
        # followed segment from the end of the one before (what the PSP fits model)
        prog.spikes(in_labels, in_ticks + clock.t + self.PERIOD)
        clock.until(clock.t + self.PERIOD + length)
        starts = []
        for i in idx:
            n = int(self.neurons[i])
            prog.write_words(label_addr[i:i + 1], label(n, 1))
            prog.write(ChipOnly(), MADCConfig(enable=1, source=0, neuron=n, period=self.PERIOD))
            s = clock.t + self.PERIOD
            starts.append(s)
            prog.spikes(in_labels, in_ticks + s)
            clock.until(s + length)
            prog.write_words(label_addr[i:i + 1], label(n, 0))
        prog.write(ChipOnly(), MADCConfig(enable=0))
        res = self.conn.run(prog)
        a = p.analog
        times = res.madc["time"].astype(np.int64)
        volts = a.madc_volts(res.madc["value"])
        nobs = length // self.PERIOD
        rel = np.arange(nobs) * self.PERIOD
        trace = np.full((len(idx), nobs), np.nan)
        first = np.searchsorted(times, np.array(starts))
        for j, s in enumerate(starts):
            k = first[j] + np.arange(nobs)
            k = k[k < len(times)]
            ok = (times[k] - s) == rel[:len(k)]
            trace[j, :len(k)][ok] = volts[k][ok]
        spikes = self.spike_times(res.spikes)
        rel_spikes = [spikes[i] - s for i, s in zip(idx, starts)]
        for q, v in self._analyse(trace, rel, rel_spikes, ph).items():
            out[q][idx] = v
        if progress:
            progress.update(1)
        return out

    def _analyse(self, trace, rel, spikes, ph) -> dict:
        """Quantities from traces (neurons, obs) sampled at `rel` ticks of their
        segment; spikes: each neuron's spike ticks in its segment."""
        t = self.targets
        # the one spike expected: under the drive, or while its current lasts (the clamp
        # then ends later, the relaxation has 3 instead of 4 slow tau_mem)
        latest = ph["drive_end"] + _ticks(self.slow * t.tau_mem)
        first = np.array([float(s[0]) if len(s) else np.nan for s in spikes])
        fired = (first >= ph["drive"]) & (first < latest)
        clean = fired & np.array([len(s) == 1 for s in spikes])     # no spike in a PSP or the relaxation
        ts = np.where(fired, first, 0.0)[:, None]
        out = {}
        # threshold: a parabola through the last 12 readings before the spike (the ramp
        # bends the membrane upwards), taken half a tick before its stamp (a spike is
        # stamped at the end of the step that crossed threshold)
        before = (rel[None, :] < ts) & (rel[None, :] >= ts - 12 * self.PERIOD) & np.isfinite(trace) & fired[:, None]
        x = np.where(before, rel[None, :] - ts + 0.5, 0.0) / (12 * self.PERIOD)       # 0 half a tick before
        y = np.where(before, trace, 0.0)
        powers = np.stack([np.where(before, x ** k, 0.0) for k in range(3)], axis=2)  # (n, obs, 3)
        gram = np.einsum("noi,noj->nij", powers, powers) + np.eye(3) * 1e-12
        rhs = np.einsum("noi,no->ni", powers, y)
        coef = np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]
        out["threshold"] = np.where(fired & (before.sum(axis=1) >= 6), coef[:, 0], np.nan)
        # reset: the clamp, from a tick after the spike to its end
        clamp = (rel[None, :] > ts + 1) & (rel[None, :] < ts + ph["ref"])
        reset = np.where(fired, _masked_mean(trace, clamp), np.nan)
        out["reset"] = reset
        # leak and tau_mem: the relaxation from the clamp level
        t0 = ts + ph["ref"]
        relax = (rel[None, :] >= t0) & fired[:, None]
        tt = np.where(relax, rel[None, :] - t0, np.nan) * TICK
        leak, tau_m = fit_relaxation(tt, np.where(relax, trace, np.nan), reset, t.tau_mem)
        tau_m = np.where(clean, tau_m, np.nan)
        out["leak"] = np.where(clean, leak, np.nan)
        out["tau_mem"] = tau_m
        # PSPs on what the membrane does without them: the rest of the previous
        # segment's relaxation (this neuron went through it too), and for the IPSP
        # the rest of the EPSP as fitted
        since = (rel[None, :] + ph["end"] - t0) * TICK
        with np.errstate(invalid="ignore", over="ignore"):
            background = leak[:, None] + (reset - leak)[:, None] * np.exp(-since / tau_m[:, None])
        for side, onset, stop in (("exc", ph["epsp"], ph["ipsp"]), ("inh", ph["ipsp"], ph["drive"])):
            win = (rel > onset) & (rel < stop)
            sign = -1.0 if side == "inh" else 1.0
            tau_s_t = t.tau_syn_exc if side == "exc" else t.tau_syn_inh
            # the volley's events act from the end of their step on (docs/model.md)
            delay = (rel - (onset + self.step)) * TICK
            b, tau_s = fit_psp(delay[win], sign * (trace[:, win] - background[:, win]), tau_m, tau_s_t)
            b, tau_s = np.where(clean, b, np.nan), np.where(clean, tau_s, np.nan)
            with np.errstate(invalid="ignore"):
                background = background + sign * b[:, None] * psp_kernel(
                    delay[None, :], np.nan_to_num(tau_m, nan=1.0)[:, None], np.nan_to_num(tau_s, nan=1.0)[:, None])
            out[f"tau_syn_{side}"] = tau_s
            out[f"psp_{side}"] = b / self.volleys[side].factor * psp_peak_factor(t.tau_mem, tau_s_t)
        return out


def _masked_mean(v, mask) -> np.ndarray:
    w = mask & np.isfinite(v)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(w, v, 0.0).sum(axis=1) / w.sum(axis=1)
