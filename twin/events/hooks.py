"""Register-bus hooks of the analog core: what writing or reading a register
does beyond storing the word (spike-counter resets, parameter-cell writes,
synapse changes, correlation-sensor resets and reads)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from isa.profiles import Profile
from isa.regmap import RegisterMap

from ..analog.network import AnalogNetwork
from ..regbus import RegisterBus
from .adc import ColumnADC


class RegisterHooks:
    """Installs the hooks on `bus` at construction."""

    def __init__(self, p: Profile, rm: RegisterMap, bus: RegisterBus, net: AnalogNetwork, cadc: ColumnADC,
                 clock: Callable[[], int]):
        self.p, self.rm, self.bus, self.net, self.cadc, self.clock = p, rm, bus, net, cadc, clock
        self.counters = bus.view("neuron", "spike_counter")
        bus.on_write("neuron", "spike_counter_reset", self._reset_counters)
        pm = net.pm_block
        bus.on_write(pm, "neuron", lambda i, v: self._write_cells(i, v, False))
        bus.on_write(pm, "global", lambda i, v: self._write_cells(i, v, True))
        for block, reg in (("synapse", "weights"), ("synapse", "labels"), ("synapse_driver", "config")):
            bus.on_write(block, reg, self._synapses_changed)
        if p.correlation:
            bus.on_write("correlation", "reset_row", self._reset_row)
            bus.on_write("correlation", "reset_quad", self._reset_quad)
            bus.on_read("correlation", "causal", lambda i: cadc.read_traces(i, net.traces()[0]))
            bus.on_read("correlation", "acausal", lambda i: cadc.read_traces(i, net.traces()[1]))
            bus.on_read("correlation", "membrane", cadc.read_membrane)

    def _reset_counters(self, idx: np.ndarray, values: np.ndarray) -> None:
        reg = self.rm.register("neuron", "spike_counter_reset")
        self.counters[idx[reg.field("reset").extract(values) == 1]] = 0

    def _write_cells(self, idx: np.ndarray, values: np.ndarray, global_cells: bool) -> None:
        reg = self.rm.register(self.net.pm_block, "global" if global_cells else "neuron")
        self.net.write_cells(idx, reg.field("value").extract(values), self.clock(),
                             self.net.pm_config(self.bus)["settle"], global_cells)

    def _synapses_changed(self, idx, values) -> None:
        self.net.syn_dirty = True

    def _reset_row(self, idx, values) -> None:
        reg = self.rm.register("correlation", "reset_row")
        for word in values.tolist():
            f = reg.decode(word)
            self.net.reset_traces(None if f["all"] else f["array"] * self.p.rows + f["row"])

    def _reset_quad(self, idx, values) -> None:
        reg = self.rm.register("correlation", "reset_quad")
        for word in values.tolist():
            f = reg.decode(word)
            row = f["array"] * self.p.rows + f["row"]
            cols = [4 * f["quad"] + k for k in range(4) if f["mask"] >> k & 1]
            self.net.reset_traces(row, cols)

    def apply_correlation_resets(self, array: int, resets: np.ndarray) -> None:
        """Reset requests of the PPU (uint8 rows x columns; bit 0 causal, bit 1
        acausal).  The sensors reset causal and acausal traces together (as a
        `reset_quad` write does), so either bit resets both."""
        for row in np.flatnonzero(resets.any(axis=1)):
            self.net.reset_traces(array * self.p.rows + int(row), np.flatnonzero(resets[row]))
