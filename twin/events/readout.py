"""The analog readout (madc.readout_mux, neuron.config.readout): which
neurons the step loop probes, and the readout pad, what an oscilloscope on
the chip's readout pin sees (a membrane, a synaptic input current, or a
parameter cell)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from isa.profiles import Profile
from isa.regmap import RegisterMap

from ..analog.network import AnalogNetwork
from ..regbus import RegisterBus

#: Readout-pad samples kept for a virtual oscilloscope.
READOUT_KEEP = 1 << 20
#: The pad shows currents as voltages: 1 V per uA.
VOLTS_PER_AMPERE = 1e6


class ReadoutPad:
    def __init__(self, p: Profile, rm: RegisterMap, bus: RegisterBus, net: AnalogNetwork, clock: Callable[[], int]):
        self.p, self.rm, self.bus, self.net, self.clock = p, rm, bus, net, clock
        self.step = p.analog.step_ticks
        #: Callables given (boundary ticks, pad volts) of each advance's steps as they are
        #: recorded (twin.scope: a virtual oscilloscope); kept over resets.
        self.listeners: list[Callable[[np.ndarray, np.ndarray], None]] = []
        self.reset()

    def reset(self) -> None:
        self.times = np.zeros(0, np.int64)           # the pad's trace (virtual scope input)
        self.volts = np.zeros(0, np.float32)

    def _mux(self) -> dict:
        return self.rm.register("madc", "readout_mux").decode(int(self.bus.view("madc", "readout_mux")[0]))

    def probes(self) -> np.ndarray:
        """Neurons recorded per step: [membrane-ADC neuron, readout-mux neuron] (-1 = none)."""
        madc = self.rm.register("madc", "config").decode(int(self.bus.view("madc", "config")[0]))
        mux = self._mux()
        probe = np.array([-1, -1], np.int32)
        if madc["enable"] and madc["source"] == 0:
            probe[0] = madc["neuron"]
        if mux["source"] in (1, 2):
            probe[1] = mux["neuron"]
        return probe

    def signal_at(self, ticks: np.ndarray, trace: np.ndarray, column: int, k_next: int) -> np.ndarray:
        """A probe signal at sample ticks: the value at the last step boundary
        (`trace` holds the steps up to step `k_next`)."""
        idx = ticks // self.step - (k_next - (len(trace) - 1))
        return trace[np.clip(idx, 0, len(trace) - 1), column].astype(np.float64)

    def value(self, ticks: np.ndarray, trace: np.ndarray, k_next: int) -> np.ndarray:
        """The pad's voltage at `ticks`."""
        mux = self._mux()
        n = mux["neuron"]
        if mux["source"] == 0:
            return np.zeros(len(ticks))
        if mux["source"] == 3:
            cells, _ = self.net.cell_outputs(self.clock(), bool(self.net.pm_config(self.bus)["enable"]))
            v = cells[n, mux["cell"]]
            if self.net.current_n[mux["cell"]]:
                v = v * VOLTS_PER_AMPERE
            return np.full(len(ticks), v)
        readout = self.rm.register("neuron", "config").field("readout").extract(
            int(self.bus.view("neuron", "config")[n]))
        if not readout or not len(trace):
            return np.zeros(len(ticks))
        if mux["source"] == 1:
            return self.signal_at(ticks, trace, 2, k_next)
        return self.signal_at(ticks, trace, 3, k_next) * VOLTS_PER_AMPERE    # synaptic input current

    def record(self, trace: np.ndarray, k_next: int) -> None:
        """Keep the pad's value at the boundaries after each step of an advance."""
        if len(trace) > 1:
            steps = np.arange(k_next - (len(trace) - 2), k_next + 1, dtype=np.int64) * self.step
            pad = self.value(steps, trace, k_next).astype(np.float32)
            self.times = np.concatenate([self.times, steps])[-READOUT_KEEP:]
            self.volts = np.concatenate([self.volts, pad])[-READOUT_KEEP:]
            for listen in self.listeners:
                listen(steps, pad)
