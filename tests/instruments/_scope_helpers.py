"""Signals for feeding the virtual scope by hand."""
import numpy as np


def step_signal(edge_tick: int, low: float, high: float, end_tick: int, step: int = 12):
    """Pad values at step boundaries 0, step, ...: `low` before `edge_tick`, `high` from it."""
    ticks = np.arange(0, end_tick + 1, step, dtype=np.int64)
    return ticks, np.where(ticks >= edge_tick, high, low).astype(np.float32)
