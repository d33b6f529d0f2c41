"""The chip's time-driven part behind the registers.

The event path (crossbar loopback, background generators, recurrent routing,
output FIFO), the analog network (twin.analog: neurons, synapses, parameter
cells, correlation sensors) and the readout (membrane ADC, analog readout
multiplexer, column ADC).  `advance(start, until, ...)` runs the chip from tick
`start` to `until`; the analog core integrates in steps of
`profile.analog.step_ticks` FPGA ticks, and a step runs when the clock has
passed its end, so input at tick t acts at the end of the step holding t.
docs/model.md describes the model and its limits.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .analog import kernel as K
from .compile_note import announce
from .cosim import SPAN_DONE, SPAN_PYTHON
from .analog.network import AnalogNetwork, Events, apply_flags

if TYPE_CHECKING:  # pragma: no cover
    from .chip import Activity, Chip

#: Crossbar latency from an input event to its loopback output, in FPGA ticks.
LOOPBACK_LATENCY_TICKS = 2
#: Generator period field unit, FPGA ticks.
GENERATOR_PERIOD_TICKS = 16
#: Kernel output buffer: spikes per neuron per call before the kernel returns early.
_OUT_PER_NEURON = 64
#: An idle chip runs the steps holding input events one by one up to this many.
IDLE_EVENT_STEPS = 16
#: Readout-pad samples kept for a virtual oscilloscope.
READOUT_KEEP = 1 << 20


class Generators:
    """Background spike generators (regular or Poisson), one event stream each."""

    def __init__(self, count: int):
        self.count = count
        self.reset()

    def reset(self) -> None:
        self.next = np.full(self.count, -1, np.int64)      # tick of the next event; -1 = stopped
        self.rngs: list[np.random.Generator | None] = [None] * self.count
        self.seed = None

    def events(self, regs: dict, seed: int, start: int, until: int) -> Events:
        """Events of every running generator in [start, until]."""
        if seed != self.seed:
            self.seed = seed
            self.rngs = [np.random.default_rng([seed, g]) for g in range(self.count)]
        ticks, labels = [], []
        for g in range(self.count):
            period = int(regs["period"][g]) * GENERATOR_PERIOD_TICKS
            if not regs["enable"][g] or period == 0:
                self.next[g] = -1
                continue
            poisson = bool(regs["poisson"][g])
            rng = self.rngs[g]
            if self.next[g] < 0:
                self.next[g] = start + (self._intervals(rng, period, 1)[0] if poisson else 0)
            out = []
            t = int(self.next[g])
            while t <= until:
                if poisson:
                    n = int(1.2 * (until - t) / period) + 16
                    tt = t + np.concatenate([[0], np.cumsum(self._intervals(rng, period, n))])
                else:
                    tt = t + period * np.arange((until - t) // period + 2, dtype=np.int64)
                inside = tt <= until
                out.append(tt[inside])
                if inside.all():
                    t = int(tt[-1]) + (int(self._intervals(rng, period, 1)[0]) if poisson else period)
                else:
                    t = int(tt[~inside][0])
            self.next[g] = t
            if out:
                e = np.concatenate(out)
                ticks.append(e)
                labels.append(np.full(len(e), int(regs["label"][g]), np.int32))
        if not ticks:
            return Events.empty()
        t = np.concatenate(ticks)
        return Events.merge(Events(t, np.concatenate(labels), np.full(len(t), K.SRC_BACKGROUND, np.int32)))

    @staticmethod
    def _intervals(rng, period: int, n: int) -> np.ndarray:
        return np.maximum(np.rint(rng.exponential(period, n)), 1).astype(np.int64)


class EventCore:
    def __init__(self, chip: "Chip", mismatch: bool = True, spike_loss: float | None = None,
                 synapse_loss: float | None = None):
        self.chip = chip
        p = self.p = chip.profile
        bus = self.bus = chip.bus
        rm = chip.regmap
        self.net = AnalogNetwork(p, rm, chip.serial, chip.seed, mismatch, spike_loss, synapse_loss)
        self.crossbar = bus.view("routing", "crossbar")
        self.madc_config = bus.view("madc", "config")
        self.counters = bus.view("neuron", "spike_counter")
        self.synapse_weights = bus.view("synapse", "weights")      # (arrays, rows, quads): what PPUs reach
        self.synapse_labels = bus.view("synapse", "labels")
        self.fifo_status = bus.view("routing", "fifo_status")
        self.step = p.analog.step_ticks
        bus.on_write("neuron", "spike_counter_reset", self._reset_counters)
        pm = self.net.pm_block
        bus.on_write(pm, "neuron", lambda i, v: self._write_cells(i, v, False))
        bus.on_write(pm, "global", lambda i, v: self._write_cells(i, v, True))
        for block, reg in (("synapse", "weights"), ("synapse", "labels"), ("synapse_driver", "config")):
            bus.on_write(block, reg, self._synapses_changed)
        if p.correlation:
            bus.on_write("correlation", "reset_row", self._reset_row)
            bus.on_write("correlation", "reset_quad", self._reset_quad)
            bus.on_read("correlation", "causal", lambda i: self._read_traces(i, self.net.traces()[0]))
            bus.on_read("correlation", "acausal", lambda i: self._read_traces(i, self.net.traces()[1]))
            bus.on_read("correlation", "membrane", self._read_membrane)
        self.generators = Generators(p.background_generators)
        self.k_next = 0                                # next analog step to run
        #: Callables given (boundary ticks, pad volts) of each advance's readout-pad
        #: steps as they are recorded (twin.scope: a virtual oscilloscope); kept over resets.
        self.readout_listeners: list = []
        self.reset()

    # ------------------------------------------------------------------ reset and hooks
    def reset(self) -> None:
        self._madc_next = 0                          # absolute tick of the next membrane-ADC sample
        self._madc_count = 0                         # samples taken since the ADC was enabled
        self._madc_was_on = False
        self._pending_t = np.zeros(0, np.int64)      # looped-back events still in flight
        self._pending_l = np.zeros(0, np.uint16)
        self._inputs = Events.empty()                # input events of steps not yet run
        self._fifo_free = np.zeros(1, np.int64)
        self._fifo_level = np.zeros(1, np.int64)
        self._dropped = 0
        self.net.reset()
        self._was_enabled = np.zeros(self.p.neurons, bool)
        self.generators.reset()
        self.readout_times = np.zeros(0, np.int64)   # the analog readout pad (virtual scope input)
        self.readout_volts = np.zeros(0, np.float32)
        self._update_status()

    def _reset_counters(self, idx: np.ndarray, values: np.ndarray) -> None:
        self.counters[idx[(values & 1) == 1]] = 0

    def _pm_config(self) -> dict:
        reg = self.chip.regmap.register(self.net.pm_block, "config")
        return reg.decode(int(self.bus.view(self.net.pm_block, "config")[0]))

    def _write_cells(self, idx: np.ndarray, values: np.ndarray, global_cells: bool) -> None:
        self.net.write_cells(idx, values & 0x3FF, self.chip.now, self._pm_config()["settle"], global_cells)

    def _synapses_changed(self, idx, values) -> None:
        self.net.syn_dirty = True

    def _reset_row(self, idx, values) -> None:
        reg = self.chip.regmap.register("correlation", "reset_row")
        for word in values.tolist():
            f = reg.decode(word)
            self.net.reset_traces(None if f["all"] else f["array"] * self.p.rows + f["row"])

    def _reset_quad(self, idx, values) -> None:
        reg = self.chip.regmap.register("correlation", "reset_quad")
        for word in values.tolist():
            f = reg.decode(word)
            row = f["array"] * self.p.rows + f["row"]
            cols = [4 * f["quad"] + k for k in range(4) if f["mask"] >> k & 1]
            self.net.reset_traces(row, cols)

    # ------------------------------------------------------------------ column ADC
    def _cadc(self, volts: np.ndarray, columns: np.ndarray) -> np.ndarray:
        a, m = self.p.analog, self.p.mismatch
        full = 1 << a.cadc_bits
        volts = np.asarray(volts, np.float64)
        offset = np.broadcast_to(self.net.fp.cadc_offset[columns], volts.shape).astype(np.float64)
        noise = (self.net.noise.standard_normal(volts.shape) * m.cadc_noise
                 if self.net.mismatch and m.cadc_noise > 0 else np.zeros(volts.shape))
        return K.cadc_codes(volts, offset, noise, float(a.adc_v_max), float(full))

    def _trace_codes(self, rows: np.ndarray, cols: np.ndarray, traces: np.ndarray) -> np.ndarray:
        """Column-ADC codes of sensors (global rows (n, 1), columns (n, k)):
        baseline minus trace, through the ADC with its offsets and noise."""
        p = self.p
        cfg = self.chip.regmap.register("correlation", "config").decode(
            int(self.bus.view("correlation", "config")[0]))
        _, gcells = self.net.cell_outputs(self.chip.now, bool(self._pm_config()["enable"]))
        baseline = gcells[self.net.grole["corr_baseline"]]
        neurons = (rows // p.rows) * p.columns + cols
        code = self._cadc(baseline - traces[rows, cols], neurons).astype(np.int64) + cfg["adc_offset"]
        return np.clip(code, 0, (1 << p.analog.cadc_bits) - 1).astype(np.uint32)

    def _read_traces(self, idx: np.ndarray, traces: np.ndarray) -> np.ndarray:
        """Quads (flat (array, row, quad) indices) of a trace array as ADC words:
        one byte per synapse."""
        p = self.p
        q = np.asarray(idx, np.int64)
        rows = (q // p.quads_per_row)[:, None]
        cols = (q % p.quads_per_row)[:, None] * 4 + np.arange(4)
        code = self._trace_codes(rows, cols, traces)
        return self.chip.regmap.register("correlation", "causal").pack_lanes("causal", code)[:, 0]

    def correlation_readings(self, array: int) -> tuple[np.ndarray, np.ndarray]:
        """Column-ADC readings (uint8, rows x columns) of one synapse array's causal
        and acausal sensors, as the PPU's vector unit reads them."""
        p = self.p
        rows = np.arange(array * p.rows, (array + 1) * p.rows)[:, None]
        cols = np.arange(p.columns)[None, :]
        causal, acausal = self.net.traces()
        return (self._trace_codes(rows, cols, causal).astype(np.uint8),
                self._trace_codes(rows, cols, acausal).astype(np.uint8))

    def apply_correlation_resets(self, array: int, resets: np.ndarray) -> None:
        """Reset requests of the PPU (uint8 rows x columns; bit 0 causal, bit 1
        acausal).  The sensors reset causal and acausal traces together (as a
        `reset_quad` write does), so either bit resets both."""
        for row in np.flatnonzero(resets.any(axis=1)):
            self.net.reset_traces(array * self.p.rows + int(row), np.flatnonzero(resets[row]))

    def _read_membrane(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, np.int64)
        return self._cadc(self.net.S[K.V, idx], idx)

    # ------------------------------------------------------------------ advance
    def advance(self, start: int, until: int, in_times: np.ndarray, in_labels: np.ndarray,
                cosim=None, new_run: bool = True) -> "Activity":
        """Run from tick `start` to `until`.  With `cosim` (twin.cosim.CoSim)
        the executing PPUs run along; the run may then end early, at the tick
        where a PPU needs Python (`self.reached`; input events not consumed
        yet stay queued).  `new_run=False` keeps the temporal noise of the
        previous call (a wait continued in pieces)."""
        from .chip import Activity

        act = Activity()
        rm = self.chip.regmap
        xbar = rm.register("routing", "crossbar").decode(int(self.crossbar[0]))
        in_times = np.asarray(in_times, dtype=np.int64)
        in_labels = np.asarray(in_labels, dtype=np.int64)
        # Crossbar loopback: input events straight back to the host output.
        if xbar["loopback"] and len(in_times):
            self._pending_t = np.concatenate([self._pending_t, in_times + LOOPBACK_LATENCY_TICKS])
            self._pending_l = np.concatenate([self._pending_l, in_labels.astype(np.uint16)])
        # Inputs of the analog core: playback events and background generators.
        gen = rm.register("routing", "generator")
        gregs = gen.decode(self.bus.view("routing", "generator"))
        seed = int(self.bus.view("routing", "generator_seed")[0])
        bg = self.generators.events(gregs, seed, start, until) if self.p.background_generators else Events.empty()
        ext = Events(in_times, in_labels.astype(np.int32), np.full(len(in_times), K.SRC_EXTERNAL, np.int32))
        self._inputs = Events.merge(self._inputs, ext, bg)
        # The analog network, one run (or the next piece of one).
        if new_run:
            self.net.next_run()
            self.net.draw_temporal()
        k_end = until // self.step
        spikes_t, spikes_n, trace, until = self._run_network(k_end, until, cosim)
        self.reached = until
        act.neuron_spikes = len(spikes_t)
        t, lab = self._pending_t, self._pending_l
        due = t <= until
        loop_t, loop_l = t[due], lab[due]
        self._pending_t, self._pending_l = t[~due], lab[~due]
        # Spikes to the host: recorded if the neuron emits and the crossbar records.
        out_t, out_l = np.zeros(0, np.int64), np.zeros(0, np.uint16)
        if len(spikes_t) and xbar["record"]:
            emit = self._emitting()
            sel = emit[spikes_n]
            out_t = spikes_t[sel]
            out_l = self._labels()[spikes_n[sel]].astype(np.uint16)
        # Output FIFO.
        if len(loop_t) or len(out_t):
            t = np.concatenate([loop_t, out_t])
            lab = np.concatenate([loop_l, out_l])
            order = np.argsort(t, kind="stable")
            t, lab = t[order], lab[order]
            keep = K.fifo(t, self.p.fifo_depth, self.p.analog.fifo_drain_ticks, self._fifo_free, self._fifo_level)
            if not keep.all():
                dropped = int((~keep).sum())
                self._dropped += dropped
                act.events_dropped = dropped
                act.drop_time = int(t[~keep][-1])
            act.spike_times, act.spike_labels = t[keep], lab[keep]
        drain = self.p.analog.fifo_drain_ticks
        self._fifo_level[0] = max(0, -(-(int(self._fifo_free[0]) - until) // drain))   # events waiting at `until`
        act.madc_times, act.madc_values = self._sample_madc(start, until, trace)
        self._update_status()
        return act

    def quiet(self) -> bool:
        """An advance from here collects nothing that grows with its length: no
        neuron enabled (or spike in flight between them), no membrane-ADC
        samples or readout traces, no background generator (twin.executor.Pieces
        then runs a wait in one call, whatever its length)."""
        rm, bus = self.chip.regmap, self.bus
        if self.net.carry_n[0] or rm.register("neuron", "config").field("enable").extract(
                bus.view("neuron", "config")).any():
            return False
        if (self._probes() >= 0).any() or rm.register("madc", "config").decode(int(self.madc_config[0]))["enable"]:
            return False
        if self.p.background_generators and np.any(
                rm.register("routing", "generator").field("enable").extract(bus.view("routing", "generator"))):
            return False
        return True

    def _emitting(self) -> np.ndarray:
        rm = self.chip.regmap
        cfg = self.bus.view("neuron", "config")
        lab = self.bus.view("routing", "neuron_label")
        return ((rm.register("neuron", "config").field("spike_out").extract(cfg) == 1)
                & (rm.register("routing", "neuron_label").field("enable").extract(lab) == 1))

    def _labels(self) -> np.ndarray:
        lab = self.bus.view("routing", "neuron_label")
        return self.chip.regmap.register("routing", "neuron_label").field("label").extract(lab)

    def _probes(self) -> np.ndarray:
        """Neurons recorded per step: [membrane-ADC neuron, readout-mux neuron] (-1 = none)."""
        rm = self.chip.regmap
        madc = rm.register("madc", "config").decode(int(self.madc_config[0]))
        mux = rm.register("madc", "readout_mux").decode(int(self.bus.view("madc", "readout_mux")[0]))
        probe = np.array([-1, -1], np.int32)
        if madc["enable"] and madc["source"] == 0:
            probe[0] = madc["neuron"]
        if mux["source"] in (1, 2):
            probe[1] = mux["neuron"]
        return probe

    def _run_network(self, k_end: int, until: int, cosim=None):
        """Run analog steps self.k_next .. k_end-1 (and, with `cosim`, the
        executing PPUs up to tick `until`); returns spike ticks, spike neurons,
        the probe trace (rows = steps, with the state before the first step in
        row 0) and the tick reached: `until`, or earlier when a PPU needs Python."""
        net, p, bus, rm = self.net, self.p, self.bus, self.chip.regmap
        k0 = self.k_next
        n_total = max(k_end - k0, 0)
        probe = self._probes()
        active = probe >= 0
        trace = np.zeros((n_total + 1 if active.any() else 0, 4), np.float32)
        if active.any():
            for q in range(2):
                if probe[q] >= 0:
                    trace[0, 2 * q] = net.S[K.V, probe[q]]
                    trace[0, 2 * q + 1] = net.S[K.IEXC, probe[q]] - net.S[K.IINH, probe[q]]
        no_spikes = np.zeros(0, np.int64), np.zeros(0, np.int64)
        if n_total == 0 and cosim is None:
            return *no_spikes, trace, until
        # Kernel inputs that stay fixed during this run.
        ncfg_reg = rm.register("neuron", "config")
        ncfg = ncfg_reg.decode(bus.view("neuron", "config"))
        flags = (ncfg["enable"] | ncfg["exc_enable"] << 1 | ncfg["inh_enable"] << 2 | ncfg["exp_enable"] << 3
                 | ncfg["adapt_enable"] << 4 | self._emitting().astype(np.uint32) << 5).astype(np.uint8)
        ref_ticks = ncfg["refractory"].astype(np.int64) << ncfg["refractory_clock"].astype(np.int64)
        nlabel = np.where(self._emitting(), self._labels(), -1).astype(np.int32)
        xbar = rm.register("routing", "crossbar").decode(int(self.crossbar[0]))
        corr_on = bool(p.correlation) and bool(rm.register("correlation", "config").field("enable").extract(
            int(bus.view("correlation", "config")[0])))
        net.synapse_inputs(bus)
        pm_enabled = bool(self._pm_config()["enable"])
        newly = ((flags & K.F_ENABLE) != 0) & ~self._was_enabled
        if newly.any():             # a neuron switched on starts at rest
            cells, _ = net.cell_outputs(k0 * self.step, pm_enabled)
            net.S[:, newly] = 0.0
            net.S[K.V, newly] = cells[newly, net.role["e_l"]]
            net.refc[newly] = 0
        self._was_enabled = (flags & K.F_ENABLE) != 0
        slow = np.flatnonzero(self._was_enabled & ((flags & (K.F_EXP | K.F_ADAPT)) != 0)).astype(np.int64)
        fp = net.fp
        spikes_t, spikes_n = [], []
        counts = np.zeros(net.N, np.int64)
        ev_pos = np.zeros(1, np.int64)
        inputs, self._inputs = self._inputs.split(k_end * self.step)
        idle = not self._was_enabled.any() and net.carry_n[0] == 0
        skip = idle and (not len(inputs.tick) or (not corr_on and net.spike_loss == 0))
        if skip and cosim is None:
            # Idle chip: every membrane sits at its leak potential and no event can
            # change anything that outlives the neurons' next switch-on: skip the steps.
            self._idle_until(k_end, pm_enabled, probe, trace)
            return *no_spikes, trace, until
        # With PPUs: an idle chip whose steps can be skipped runs the PPUs alone.
        ppu_only = skip and cosim is not None
        idle = idle and cosim is None
        cap = _OUT_PER_NEURON * net.N
        out_step = np.empty(cap, np.int64)
        out_neuron = np.empty(cap, np.int32)
        cadc = self._cadc_constants(pm_enabled) if cosim is not None else None
        k = k0
        reached = until
        # An idle chip with a few events for its correlation sensors (or spike loss)
        # runs only the steps that hold events; with many, one kernel call is cheaper.
        event_steps = np.unique(inputs.tick // self.step) if idle else None
        if idle and len(event_steps) > IDLE_EVENT_STEPS:
            idle, event_steps = False, None
        while k < k_end or (cosim is not None and k == k_end):
            if idle:
                if not len(event_steps):
                    break
                k, event_steps = int(event_steps[0]), event_steps[1:]
            t_tick = k * self.step
            # Parameters are held for a chunk; while cells settle, chunks are short.
            n = 1 if idle else (0 if ppu_only else k_end - k)
            if net.settling(t_tick) and not idle and n > 0:
                n = min(n, max(1, int(self._settle_chunk(t_tick) // self.step)))
            if ppu_only:            # no analog step runs: the kernel parameters are not read
                P = np.zeros((K.NPAR, net.N), np.float32)
                ref_steps, corr_scale = np.zeros(net.N, np.int32), np.zeros(2)
            else:
                cells, gcells = net.cell_outputs(t_tick + (n * self.step) // 2, pm_enabled)
                P, ref_steps = net.neuron_params(cells, ref_ticks)
                P = apply_flags(P, flags).astype(np.float32)
                corr_scale = net.correlation_scales(gcells)
            args = (self.step, p.rows, p.columns, net.label_mask,
                    P, net.S, flags, slow, net.refc, ref_steps, counts, nlabel, bool(xbar["recurrent"]),
                    net.syn_label, net.syn_amp, net.row_flags, net.routes,
                    inputs.tick, inputs.label, inputs.src, ev_pos,
                    net.carry, net.carry_n,
                    float(net.spike_loss), net.rng_state, net.lost,
                    corr_on, p.analog.corr_saturation, corr_scale, net.row_last, net.lab_t, net.last_post,
                    net.causal, net.acausal, fp.corr_eta_c, fp.corr_eta_a, fp.corr_itau_c, fp.corr_itau_a,
                    probe)
            done = 0
            stopped = False
            t_stop = until if (k + n >= k_end or ppu_only) else (k + n) * self.step
            while True:
                probe_out = trace[1 + k - k0 + done:] if len(trace) else np.zeros((1, 4), np.float32)
                if cosim is None:
                    announce(K.run_steps, "the analog core", "a few seconds")
                    s_done, n_out = K.run_steps(k + done, n - done, *args, probe_out, out_step, out_neuron)
                    finished = done + s_done >= n
                else:
                    why, s_done, n_out = cosim.run(self, k + done, n - done, t_stop, args, probe_out,
                                                   out_step, out_neuron, cadc, ppu_only)
                    finished = why == SPAN_DONE
                    stopped = why == SPAN_PYTHON
                if n_out:
                    spikes_t.append((out_step[:n_out] + 1) * self.step)
                    spikes_n.append(out_neuron[:n_out].astype(np.int64))
                done += s_done
                if finished or stopped:
                    break
            k += done
            if ppu_only:
                k_stop = min(int(cosim.reached) // self.step, k_end) if stopped else k_end
                self._idle_until(k_stop, pm_enabled, probe, trace)
                if stopped:
                    reached = min(max(int(cosim.reached), self.chip.now), until)
                    trace = trace[:k_stop - k0 + 1] if len(trace) else trace
                    later = inputs.split(k_stop * self.step)[1]      # steps not run yet keep their events
                    self._inputs = Events.merge(later, self._inputs)
                break
            if stopped:
                # A PPU needs Python at its tick: the network has run the steps that end by then.
                reached = min(max(int(cosim.reached), k * self.step, self.chip.now), until)
                rest = int(ev_pos[0])
                self._inputs = Events.merge(Events(inputs.tick[rest:], inputs.label[rest:], inputs.src[rest:]),
                                            self._inputs)
                if len(trace):
                    trace = trace[:k - k0 + 1]
                break
            if k >= k_end and (cosim is None or t_stop == until):
                break
        if idle:
            self._idle_until(k_end, pm_enabled, probe, trace)
        self.k_next = max(k, self.k_next) if cosim is not None else k_end
        self._add_counts(counts)
        if spikes_t:
            return np.concatenate(spikes_t), np.concatenate(spikes_n), trace, reached
        return *no_spikes, trace, reached

    def _cadc_constants(self, pm_enabled: bool) -> tuple:
        """Column-ADC inputs of twin.cosim: ([baseline, full-scale volts], per-neuron
        offsets, noise sigma, the correlation config's adc_offset, code count)."""
        p, m = self.p, self.p.mismatch
        cfg = self.chip.regmap.register("correlation", "config").decode(
            int(self.bus.view("correlation", "config")[0]))
        _, gcells = self.net.cell_outputs(self.chip.now, pm_enabled)
        baseline = float(gcells[self.net.grole["corr_baseline"]])
        sd = float(m.cadc_noise) if self.net.mismatch and m.cadc_noise > 0 else 0.0
        return (np.array([baseline, p.analog.adc_v_max]), self.net.fp.cadc_offset.astype(np.float64), sd,
                float(cfg["adc_offset"]), float(1 << p.analog.cadc_bits))

    def _idle_until(self, k_end: int, pm_enabled: bool, probe: np.ndarray, trace: np.ndarray) -> None:
        """No neuron enabled: membranes at their leak potential up to step k_end."""
        net = self.net
        cells, _ = net.cell_outputs(k_end * self.step, pm_enabled)
        net.S[:] = 0.0
        net.S[K.V] = cells[:, net.role["e_l"]]
        for q in range(2):
            if probe[q] >= 0:
                trace[1:, 2 * q] = net.S[K.V, probe[q]]
                trace[1:, 2 * q + 1] = 0.0
        self.k_next = k_end

    def _settle_chunk(self, t: int) -> float:
        """Ticks over which the settling cells change little (a quarter of the
        shortest active time constant)."""
        taus = []
        for bank in (self.net.cells, self.net.gcells):
            moving = np.abs(bank.at(t) - bank.target) > 1e-3
            if moving.any():
                taus.append(bank.tau[moving].min())
        return max(min(taus) / 4 if taus else self.step, self.step)

    def _add_counts(self, counts: np.ndarray) -> None:
        reg = self.chip.regmap.register("neuron", "spike_counter")
        K.add_spike_counts(self.counters, counts, reg.field("count").width, reg.field("overflow").lsb)

    def _update_status(self) -> None:
        reg = self.chip.regmap.register("routing", "fifo_status")
        level = int(self._fifo_level[0]) * 255 // self.p.fifo_depth
        self.fifo_status[0] = reg.encode(dropped=min(self._dropped, (1 << 24) - 1), level=min(level, 255))
        self.bus.view("routing", "spike_loss")[0] = min(int(self.net.lost[0]), 0xFFFFFFFF)
        self.bus.view("routing", "synapse_loss")[0] = int(self.net.fp.synapse_lost.sum())

    # ------------------------------------------------------------------ membrane ADC and readout pad
    def _signal_at(self, ticks: np.ndarray, trace: np.ndarray, column: int) -> np.ndarray:
        """A probe signal at sample ticks: the value at the last step boundary."""
        idx = ticks // self.step - (self.k_next - (len(trace) - 1))
        return trace[np.clip(idx, 0, len(trace) - 1), column].astype(np.float64)

    def _readout_pad(self, ticks: np.ndarray, trace: np.ndarray) -> np.ndarray:
        rm = self.chip.regmap
        mux = rm.register("madc", "readout_mux").decode(int(self.bus.view("madc", "readout_mux")[0]))
        n = mux["neuron"]
        if mux["source"] == 0:
            return np.zeros(len(ticks))
        if mux["source"] == 3:
            cells, _ = self.net.cell_outputs(self.chip.now, bool(self._pm_config()["enable"]))
            v = cells[n, mux["cell"]]
            if self.net.current_n[mux["cell"]]:
                v = v * 1e6                                   # 1 V per uA
            return np.full(len(ticks), v)
        readout = rm.register("neuron", "config").field("readout").extract(int(self.bus.view("neuron", "config")[n]))
        if not readout or not len(trace):
            return np.zeros(len(ticks))
        if mux["source"] == 1:
            return self._signal_at(ticks, trace, 2)
        return self._signal_at(ticks, trace, 3) * 1e6       # synaptic input current, 1 V per uA

    def _sample_madc(self, start: int, until: int, trace: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # The readout pad (what an oscilloscope on the readout pin sees), one value per step.
        if len(trace) > 1:          # the boundaries after each step of this advance
            steps = np.arange(self.k_next - (len(trace) - 2), self.k_next + 1, dtype=np.int64) * self.step
            pad = self._readout_pad(steps, trace).astype(np.float32)
            self.readout_times = np.concatenate([self.readout_times, steps])[-READOUT_KEEP:]
            self.readout_volts = np.concatenate([self.readout_volts, pad])[-READOUT_KEEP:]
            for listen in self.readout_listeners:
                listen(steps, pad)
        reg = self.chip.regmap.register("madc", "config")
        cfg = reg.decode(int(self.madc_config[0]))
        if not cfg["enable"]:
            self._madc_was_on = False
            return np.zeros(0, np.int64), np.zeros(0, np.uint16)
        period = max(cfg["period"], 1)
        if not self._madc_was_on:
            self._madc_was_on = True
            self._madc_next = start
            self._madc_count = 0
        if self._madc_next > until:
            return np.zeros(0, np.int64), np.zeros(0, np.uint16)
        n = (until - self._madc_next) // period + 1
        times = self._madc_next + period * np.arange(n, dtype=np.int64)
        if cfg["source"] == 2:      # test ramp
            values = ((self._madc_count + np.arange(n)) % 1024).astype(np.uint16)
        else:
            if cfg["source"] == 0:
                volts = (self._signal_at(times, trace, 0) if len(trace)
                         else np.full(n, self.net.S[K.V, cfg["neuron"]]))
            else:
                volts = self._readout_pad(times, trace)
            a, m = self.p.analog, self.p.mismatch
            full = 1 << a.madc_bits
            code = volts / a.adc_v_max * full
            if self.net.mismatch and m.madc_noise > 0:
                code = code + self.net.noise.standard_normal(n) * m.madc_noise
            values = np.clip(np.rint(code), 0, full - 1).astype(np.uint16)
        self._madc_next += n * period
        self._madc_count += n
        return times, values
