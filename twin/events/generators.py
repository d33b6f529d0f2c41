"""Background spike generators (routing.generator registers): regular or Poisson, one event stream each."""
from __future__ import annotations

import numpy as np

from ..analog import kernel as K
from ..analog.network import Events

#: Generator period field unit, FPGA ticks.
GENERATOR_PERIOD_TICKS = 16


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
