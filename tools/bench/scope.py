"""Cost of the virtual oscilloscope (twin.scope) on chip advances.

    .venv/bin/python -m tools.bench.scope            # about 10 s

A `dls` chip with neuron 0's membrane on the readout pad (readout_mux source 1,
its readout bit set, the neuron enabled) advances 1 ms of hardware time in
pieces of 10 us (100 advances, 10 417 analog steps), repeated; wall time
(median of the repeats, the setups interleaved) without a scope (the reference, measured in
the same run), with a
stopped scope, a running AUTO scope (1 us/div, 1200 points: a record per 12 us
of chip time), and a SINGle scope waiting for a trigger that never comes
(1 ms/div, 12 000 points: the longest record).  Printed as ratios to the
reference.  Timings are never asserted.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from twin.chip import Chip
from twin.scope import Scope

PIECE = 1250            # ticks: 10 us
PIECES = 100
REPEATS = 9


def _chip() -> Chip:
    chip = Chip("dls", 1)
    rm = chip.regmap
    chip.bus.view("madc", "readout_mux")[0] = rm.register("madc", "readout_mux").encode(source=1, neuron=0, cell=0)
    cfg = chip.bus.view("neuron", "config")
    f = rm.register("neuron", "config")
    cfg[0] = int(cfg[0]) | f.field("readout").mask | f.field("enable").mask
    return chip


def _once(chip: Chip) -> float:
    none_t, none_l = np.zeros(0, np.int64), np.zeros(0, np.uint16)
    t0 = time.perf_counter()
    for _ in range(PIECES):
        chip.advance(chip.now + PIECE, none_t, none_l)
    return time.perf_counter() - t0


SETUPS = (("no scope (reference)", None),
          ("scope stopped", ":STOP"),
          ("scope running, AUTO, 1 us/div, 1200 points", "*RST;:TIM:SCAL 1e-6;:ACQ:MDEP 1200;:RUN"),
          ("scope SINGle waiting, 1 ms/div, 12000 points", "*RST;:TIM:SCAL 1e-3;:ACQ:MDEP 12000;:TRIG:EDG:LEV 4.9;:SING"))


def main() -> int:
    chip = _chip()
    _once(chip)                                  # compile / load the kernels
    scope = Scope(chip)
    times = {name: [] for name, _ in SETUPS}
    for _ in range(REPEATS):                     # the setups interleaved, so that drift hits all alike
        for name, setup in SETUPS:
            if setup is None:
                scope.detach()
            else:
                scope.attach()
                scope.execute(setup)
            times[name].append(_once(chip))
    scope.detach()
    ref = statistics.median(times[SETUPS[0][0]])
    print(f"dls chip, {PIECES} advances of {PIECE} ticks (1 ms hardware) per run, median of {REPEATS}")
    for name, _ in SETUPS:
        t = statistics.median(times[name])
        print(f"  {name:48s} {t * 1e3:8.1f} ms   x{t / ref:5.2f}")
    print(f"  records made by the AUTO scope: {scope.records}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
