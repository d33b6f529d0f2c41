"""The chip's time-driven part behind the registers.

This is the event path of the chip: the crossbar (input events looped back to
the host output), the membrane ADC stream, spike-counter resets.  The analog
network (neurons, synapses, correlation sensors) plugs in here; until it does,
a neuron sits at rest, which is what the membrane ADC reports: the neuron's
leak-potential cell value.  docs/model.md lists this limit.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .chip import Activity, Chip

#: Crossbar latency from an input event to its loopback output, in FPGA ticks.
LOOPBACK_LATENCY_TICKS = 2


class EventCore:
    def __init__(self, chip: "Chip"):
        self.chip = chip
        bus = chip.bus
        self.crossbar = bus.view("routing", "crossbar")
        self.madc_config = bus.view("madc", "config")
        self.counters = bus.view("neuron", "spike_counter")
        bus.on_write("neuron", "spike_counter_reset", self._reset_counters)
        self.reset()

    def reset(self) -> None:
        self._madc_next = 0                          # absolute tick of the next membrane-ADC sample
        self._madc_count = 0                         # samples taken since the ADC was enabled
        self._madc_was_on = False
        self._pending_t = np.zeros(0, np.int64)      # looped-back events still in flight
        self._pending_l = np.zeros(0, np.uint16)

    def _reset_counters(self, idx: np.ndarray, values: np.ndarray) -> None:
        self.counters[idx[(values & 1) == 1]] = 0

    def advance(self, start: int, until: int, in_times: np.ndarray, in_labels: np.ndarray) -> "Activity":
        from .chip import Activity

        act = Activity()
        reg = self.chip.regmap.register("routing", "crossbar")
        if reg.field("loopback").extract(int(self.crossbar[0])) and len(in_times):
            t = np.concatenate([self._pending_t, np.asarray(in_times, dtype=np.int64) + LOOPBACK_LATENCY_TICKS])
            lab = np.concatenate([self._pending_l, np.asarray(in_labels, dtype=np.uint16)])
        else:
            t, lab = self._pending_t, self._pending_l
        due = t <= until  # later ones leave the chip in the next advance
        act.spike_times, act.spike_labels = t[due], lab[due]
        self._pending_t, self._pending_l = t[~due], lab[~due]
        act.madc_times, act.madc_values = self._sample_madc(start, until)
        return act

    def _sample_madc(self, start: int, until: int) -> tuple[np.ndarray, np.ndarray]:
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
        else:                        # neuron at rest: its leak potential cell
            cell = self.chip.profile.neuron_cells.index(
                "v_leak" if "v_leak" in self.chip.profile.neuron_cells else self.chip.profile.neuron_cells[0])
            neuron = cfg["neuron"] if cfg["source"] == 0 else 0
            pm = "capmem" if self.chip.profile.param_memory == "capmem" else "floating_gate"
            v = int(self.chip.bus.view(pm, "neuron")[neuron, cell])
            values = np.full(n, min(v, 1023), dtype=np.uint16)
        self._madc_next += n * period
        self._madc_count += n
        return times, values
