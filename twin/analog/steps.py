"""The analog core's run: the steps of an advance in chunks over which the
parameters are held, each through the compiled step loop
(twin.analog.kernel.run_steps, with its records built here) or, while PPUs
execute, the co-simulation loop (twin.cosim); idle stretches (no neuron
enabled) are skipped, membranes set to their leak potential."""
from __future__ import annotations

from typing import Callable

import numpy as np

from isa.profiles import Profile
from isa.regmap import RegisterMap

from ..compile_note import announce
from ..cosim import SPAN_DONE, SPAN_PYTHON
from ..regbus import RegisterBus
from . import kernel as K
from .network import AnalogNetwork, Events, apply_flags

#: Kernel output buffer: spikes per neuron per call before the kernel returns early.
_OUT_PER_NEURON = 64
#: An idle chip runs the steps holding input events one by one up to this many.
IDLE_EVENT_STEPS = 16


class StepRunner:
    """Runs the analog steps of one chip.  `routing` (twin.events.routing.Routing)
    holds the input queue and the neurons' output labels; `cadc`
    (twin.events.adc.ColumnADC) gives the co-simulation its column-ADC
    constants."""

    def __init__(self, p: Profile, rm: RegisterMap, bus: RegisterBus, net: AnalogNetwork, routing, cadc,
                 clock: Callable[[], int]):
        self.p, self.rm, self.bus, self.net, self.routing, self.cadc, self.clock = p, rm, bus, net, routing, cadc, clock
        self.step = p.analog.step_ticks
        # What twin.cosim.CoSim.run reads besides the kernel records.
        self.counters = bus.view("neuron", "spike_counter")
        self.synapse_weights = bus.view("synapse", "weights")      # (arrays, rows, quads): what PPUs reach
        self.synapse_labels = bus.view("synapse", "labels")
        self.k_next = 0                                # next analog step to run
        self.reset()

    def reset(self) -> None:
        self._was_enabled = np.zeros(self.p.neurons, bool)

    def run(self, k_end: int, until: int, probe: np.ndarray, cosim=None):
        """Run analog steps self.k_next .. k_end-1 (and, with `cosim`, the
        executing PPUs up to tick `until`), with `probe` (twin.events.readout.ReadoutPad.probes)
        recorded per step; returns spike ticks, spike neurons,
        the probe trace (rows = steps, with the state before the first step in
        row 0) and the tick reached: `until`, or earlier when a PPU needs Python."""
        net, p, bus, rm = self.net, self.p, self.bus, self.rm
        k0 = self.k_next
        n_total = max(k_end - k0, 0)
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
        flags = (ncfg["enable"] * K.F_ENABLE | ncfg["exc_enable"] * K.F_EXC | ncfg["inh_enable"] * K.F_INH
                 | ncfg["exp_enable"] * K.F_EXP | ncfg["adapt_enable"] * K.F_ADAPT
                 | self.routing.emitting().astype(np.uint32) * K.F_EMIT).astype(np.uint8)
        ref_ticks = ncfg["refractory"].astype(np.int64) << ncfg["refractory_clock"].astype(np.int64)
        nlabel = np.where(self.routing.emitting(), self.routing.labels(), -1).astype(np.int32)
        xbar = self.routing.crossbar_config()
        corr_on = bool(p.correlation) and bool(rm.register("correlation", "config").field("enable").extract(
            int(bus.view("correlation", "config")[0])))
        net.synapse_inputs(bus)
        pm_enabled = bool(net.pm_config(bus)["enable"])
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
        inputs, self.routing.inputs = self.routing.inputs.split(k_end * self.step)
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
        cadc = self.cadc.constants(pm_enabled) if cosim is not None else None
        # The kernel's records (twin.analog.kernel): those fixed during this run.
        lay = K.Layout(self.step, p.rows, p.columns, net.label_mask)
        syn = K.Synapses(net.syn_label, net.syn_amp, net.row_flags, net.routes)
        ev = K.EventInput(inputs.tick, inputs.label, inputs.src, ev_pos, net.carry, net.carry_n,
                          bool(xbar["recurrent"]), float(net.spike_loss), net.rng_state, net.lost)
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
            nrn = K.Neurons(P, net.S, flags, slow, net.refc, ref_steps, counts, nlabel)
            corr = K.Correlation(corr_on, p.analog.corr_saturation, corr_scale, net.row_last, net.lab_t,
                                 net.last_post, net.causal, net.acausal, fp.corr_eta_c, fp.corr_eta_a,
                                 fp.corr_itau_c, fp.corr_itau_a)
            done = 0
            stopped = False
            t_stop = until if (k + n >= k_end or ppu_only) else (k + n) * self.step
            while True:
                probe_out = trace[1 + k - k0 + done:] if len(trace) else np.zeros((1, 4), np.float32)
                obs = K.Observed(probe, probe_out, out_step, out_neuron)
                if cosim is None:
                    announce(K._run_steps, "the analog core", "a few seconds")
                    s_done, n_out = K.run_steps(k + done, n - done, lay, nrn, syn, ev, corr, obs)
                    finished = done + s_done >= n
                else:
                    why, s_done, n_out = cosim.run(self, k + done, n - done, t_stop, (lay, nrn, syn, ev, corr, obs),
                                                   cadc, ppu_only)
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
                    reached = min(max(int(cosim.reached), self.clock()), until)
                    trace = trace[:k_stop - k0 + 1] if len(trace) else trace
                    later = inputs.split(k_stop * self.step)[1]      # steps not run yet keep their events
                    self.routing.inputs = Events.merge(later, self.routing.inputs)
                break
            if stopped:
                # A PPU needs Python at its tick: the network has run the steps that end by then.
                reached = min(max(int(cosim.reached), k * self.step, self.clock()), until)
                rest = int(ev_pos[0])
                self.routing.inputs = Events.merge(Events(inputs.tick[rest:], inputs.label[rest:], inputs.src[rest:]),
                                                   self.routing.inputs)
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
        reg = self.rm.register("neuron", "spike_counter")
        K.add_spike_counts(self.counters, counts, reg.field("count").width, reg.field("overflow").lsb)
