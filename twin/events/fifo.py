"""The output event FIFO (routing.fifo_status): events to the host enter
while fewer than `fifo_depth` wait, one leaves every `fifo_drain_ticks`;
what does not fit is dropped and counted (twin.analog.kernel.fifo)."""
from __future__ import annotations

import numpy as np

from isa.profiles import Profile
from isa.regmap import RegisterMap

from ..activity import Activity
from ..analog import kernel as K
from ..regbus import RegisterBus


class OutputFifo:
    def __init__(self, p: Profile, rm: RegisterMap, bus: RegisterBus):
        self.p, self.rm = p, rm
        self.status = bus.view("routing", "fifo_status")
        self.reset()

    def reset(self) -> None:
        self._free = np.zeros(1, np.int64)           # tick at which the last accepted event leaves
        self._level = np.zeros(1, np.int64)
        self.dropped = 0

    def push(self, t: np.ndarray, lab: np.ndarray, act: Activity) -> None:
        """Events (unsorted ticks, labels) into the FIFO; what passes becomes
        `act`'s spikes, drops are counted in `act` and in the status register."""
        if not len(t):
            return
        order = np.argsort(t, kind="stable")
        t, lab = t[order], lab[order]
        keep = K.fifo(t, self.p.fifo_depth, self.p.analog.fifo_drain_ticks, self._free, self._level)
        if not keep.all():
            dropped = int((~keep).sum())
            self.dropped += dropped
            act.events_dropped = dropped
            act.drop_time = int(t[~keep][-1])
        act.spike_times, act.spike_labels = t[keep], lab[keep]

    def settle(self, until: int) -> None:
        """The fill level at tick `until` (events still waiting then)."""
        drain = self.p.analog.fifo_drain_ticks
        self._level[0] = max(0, -(-(int(self._free[0]) - until) // drain))

    def update_status(self) -> None:
        reg = self.rm.register("routing", "fifo_status")
        full = reg.field("level").limit
        level = int(self._level[0]) * full // self.p.fifo_depth   # fill / depth, full scale
        self.status[0] = reg.encode(dropped=min(self.dropped, reg.field("dropped").limit), level=min(level, full))
