"""What the chip produced while advancing (twin.chip.Chip.advance, twin.core.EventCore.advance)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Activity:
    """What the chip produced while advancing: times are absolute hardware
    ticks (8 ns) of the chip's clock."""

    spike_times: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    spike_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint16))
    madc_times: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    madc_values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint16))
    events_dropped: int = 0          # output events lost to a full FIFO during this advance
    drop_time: int = 0               # tick of the last dropped event
    neuron_spikes: int = 0           # spikes of every neuron (recorded or not) during this advance

    @staticmethod
    def merge(parts: list["Activity"]) -> "Activity":
        """One Activity from consecutive ones (in time order)."""
        if len(parts) == 1:
            return parts[0]
        cat = lambda name: np.concatenate([getattr(a, name) for a in parts])
        return Activity(cat("spike_times"), cat("spike_labels"), cat("madc_times"), cat("madc_values"),
                        sum(a.events_dropped for a in parts), max(a.drop_time for a in parts),
                        sum(a.neuron_spikes for a in parts))
