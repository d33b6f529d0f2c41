"""The chip's time-driven part behind the registers.

EventCore composes the event path (twin.events: crossbar loopback and
routing, background generators, output FIFO), the analog network
(twin.analog: neurons, synapses, parameter cells, correlation sensors; its
steps run by twin.analog.steps) and the readout (twin.events.adc: membrane
ADC and column ADC; twin.events.readout: the analog readout multiplexer),
with the register hooks of twin.events.hooks.  `advance(start, until, ...)`
runs the chip from tick `start` to `until`; the analog core integrates in
steps of `profile.analog.step_ticks` FPGA ticks, and a step runs when the
clock has passed its end, so input at tick t acts at the end of the step
holding t.  docs/model.md describes the model and its limits.

The core knows nothing of twin.chip: it is given the chip's profile,
register map, register bus, serial, seed and clock.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from isa.profiles import Profile
from isa.regmap import RegisterMap

from .activity import Activity
from .analog.network import AnalogNetwork
from .analog.steps import StepRunner
from .events.adc import ColumnADC, MembraneADC
from .events.fifo import OutputFifo
from .events.hooks import RegisterHooks
from .events.readout import ReadoutPad
from .events.routing import LOOPBACK_LATENCY_TICKS, Routing
from .regbus import RegisterBus

__all__ = ["EventCore", "LOOPBACK_LATENCY_TICKS"]


class EventCore:
    def __init__(self, profile: Profile, regmap: RegisterMap, bus: RegisterBus, serial: int, seed: int,
                 clock: Callable[[], int], mismatch: bool = True, spike_loss: float | None = None,
                 synapse_loss: float | None = None):
        self.p = p = profile
        self.regmap, self.bus, self.clock = regmap, bus, clock
        self.net = net = AnalogNetwork(p, regmap, serial, seed, mismatch, spike_loss, synapse_loss)
        self.routing = Routing(p, regmap, bus)
        self.generators = self.routing.generators
        self.fifo = OutputFifo(p, regmap, bus)
        self.cadc = ColumnADC(p, regmap, bus, net, clock)
        self.readout = ReadoutPad(p, regmap, bus, net, clock)
        self.madc = MembraneADC(p, regmap, bus, net, self.readout)
        self.hooks = RegisterHooks(p, regmap, bus, net, self.cadc, clock)
        self.steps = StepRunner(p, regmap, bus, net, self.routing, self.cadc, clock)
        self.reached = 0
        self.reset()

    # What other parts read (the PPU co-simulation, tests).
    counters = property(lambda self: self.steps.counters)
    synapse_weights = property(lambda self: self.steps.synapse_weights)
    synapse_labels = property(lambda self: self.steps.synapse_labels)
    k_next = property(lambda self: self.steps.k_next)
    readout_times = property(lambda self: self.readout.times)
    readout_volts = property(lambda self: self.readout.volts)

    def reset(self) -> None:
        self.madc.reset()
        self.routing.reset()
        self.fifo.reset()
        self.net.reset()
        self.steps.reset()
        self.readout.reset()
        self._update_status()

    def correlation_readings(self, array: int) -> tuple[np.ndarray, np.ndarray]:
        return self.cadc.correlation_readings(array)

    def apply_correlation_resets(self, array: int, resets: np.ndarray) -> None:
        self.hooks.apply_correlation_resets(array, resets)

    # ------------------------------------------------------------------ advance
    def advance(self, start: int, until: int, in_times: np.ndarray, in_labels: np.ndarray,
                cosim=None, new_run: bool = True) -> Activity:
        """Run from tick `start` to `until`.  With `cosim` (twin.cosim.CoSim)
        the executing PPUs run along; the run may then end early, at the tick
        where a PPU needs Python (`self.reached`; input events not consumed
        yet stay queued).  `new_run=False` keeps the temporal noise of the
        previous call (a wait continued in pieces)."""
        act = Activity()
        routing = self.routing
        xbar = routing.crossbar_config()
        in_times = np.asarray(in_times, dtype=np.int64)
        in_labels = np.asarray(in_labels, dtype=np.int64)
        # Inputs of the analog core: playback events and background generators (and the loopback).
        routing.take_input(start, until, in_times, in_labels, xbar)
        # The analog network, one run (or the next piece of one).
        if new_run:
            self.net.next_run()
            self.net.draw_temporal()
        k_end = until // self.p.analog.step_ticks
        spikes_t, spikes_n, trace, until = self.steps.run(k_end, until, self.readout.probes(), cosim)
        self.reached = until
        act.neuron_spikes = len(spikes_t)
        loop_t, loop_l = routing.looped_back(until)
        # Spikes to the host: recorded if the neuron emits and the crossbar records.
        out_t, out_l = routing.recorded(spikes_t, spikes_n, xbar)
        self.fifo.push(np.concatenate([loop_t, out_t]), np.concatenate([loop_l, out_l]), act)
        self.fifo.settle(until)
        k_next = self.steps.k_next
        self.readout.record(trace, k_next)
        act.madc_times, act.madc_values = self.madc.sample(start, until, trace, k_next)
        self._update_status()
        return act

    def quiet(self) -> bool:
        """An advance from here collects nothing that grows with its length: no
        neuron enabled (or spike in flight between them), no membrane-ADC
        samples or readout traces, no background generator (twin.executor.Pieces
        then runs a wait in one call, whatever its length)."""
        rm, bus = self.regmap, self.bus
        if self.net.carry_n[0] or rm.register("neuron", "config").field("enable").extract(
                bus.view("neuron", "config")).any():
            return False
        if (self.readout.probes() >= 0).any() or self.madc.decoded()["enable"]:
            return False
        return not self.routing.generators_on()

    def _update_status(self) -> None:
        self.fifo.update_status()
        self.routing.update_loss_counters(int(self.net.lost[0]), int(self.net.fp.synapse_lost.sum()))
