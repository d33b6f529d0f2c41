"""Measurements through an oscilloscope on the readout pad, an alternative to
the ADC paths of host.calibration_measure (docs/instruments.md).

`membrane_tau` steps a neuron's leak potential and fits the membrane's
relaxation as the scope records it: after the parameter cell has settled,
V(t) = E_l + A exp(-t / tau_mem), a straight line in log(V - E_l).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from isa.wire import FPGA_TICK_S

from .. import containers as C
from ..coords import CapMemCellOnChip, ChipOnly, NeuronOnChip
from .scope import Oscilloscope, Trace

@dataclasses.dataclass
class TauMeasurement:
    tau: float                  # s, hardware time
    rest: float                 # V, the level relaxed to (E_l)
    points: int                 # points used in the fit
    trace: Trace


def membrane_tau(conn, scope: Oscilloscope, neuron: int, *, low: float = 0.3, high: float = 0.6,
                 tau_guess: float = 5e-6, points: int = 6000) -> TauMeasurement:
    """tau_mem of `neuron` (hardware seconds) from a scope capture of its
    membrane relaxing after its leak potential steps from `low` to `high`
    volts (nominal cell values).  The cells settle at their fastest
    (capmem settle 0) meanwhile; the fit starts 5 settling time constants
    after the trigger.  The scope records about 12 x `tau_guess`; the
    neuron's configuration, its leak cell, the readout multiplexer and the
    capmem configuration are restored afterwards.  The
    threshold has to lie above `high` (a spike would spoil the relaxation)."""
    p = conn.profile
    leak = p.cell_for("e_l")
    prog = conn.program()
    t_cfg = prog.read(NeuronOnChip(neuron), C.NeuronConfig)
    t_leak = prog.read(CapMemCellOnChip(neuron, leak), C.CapMemCell)
    t_mux = prog.read(ChipOnly(), C.ReadoutMuxConfig)
    t_cap = prog.read(ChipOnly(), C.CapMemConfig)
    conn.run(prog)
    cfg, leak_before, mux_before, cap_before = t_cfg.value, t_leak.value, t_mux.value, t_cap.value
    settle = p.analog.settle_tau                  # the cells' settling with settle=0 (docs/model.md)
    cell = lambda v: C.CapMemCell(int(np.clip(round(v / p.analog.v_max * p.cell_max), 0, p.cell_max)))
    tick = FPGA_TICK_S
    prog = conn.program()
    prog.write(ChipOnly(), dataclasses.replace(cap_before, settle=0))   # the leak step settles fastest
    prog.write(NeuronOnChip(neuron), dataclasses.replace(cfg, enable=1, readout=1))
    prog.write(ChipOnly(), C.ReadoutMuxConfig(source=1, neuron=neuron))
    prog.write(CapMemCellOnChip(neuron, leak), cell(low))
    prog.timer_reset()
    prog.wait_until(int((10 * tau_guess + 10 * settle) / tick))     # at rest at `low`
    conn.run(prog)
    per_div = tau_guess
    span = high - low
    scope.configure(volts_per_div=span / 6, offset=-(low + high) / 2, seconds_per_div=per_div,
                    position=5 * per_div, points=points)
    step = conn.program()
    step.timer_reset()
    step.wait_until(int(2 * per_div / tick))                        # the scope's pre-trigger part fills
    step.write(CapMemCellOnChip(neuron, leak), cell(high))
    step.wait_until(int(15 * per_div / tick))                       # past the record's end
    try:
        trace, _ = scope.capture(lambda: conn.run(step), level=low + 0.1 * span, slope="positive",
                                 speedup=p.speedup)
    finally:
        back = conn.program()
        back.write(CapMemCellOnChip(neuron, leak), leak_before)
        back.write(NeuronOnChip(neuron), cfg)
        back.write(ChipOnly(), mux_before)
        back.write(ChipOnly(), cap_before)
        conn.run(back)
    t, v = trace.times, trace.volts
    rest = float(np.median(v[t > t[-1] - 2 * per_div]))
    y = rest - v                                   # rising towards rest: y > 0, decaying
    ok = (t > 5 * settle) & (y > 0.05 * span) & (y < 0.8 * span)
    if ok.sum() < 10:
        raise ValueError(f"neuron {neuron}: {int(ok.sum())} points of the relaxation to fit; "
                         f"tau_guess {tau_guess:g} s too far from tau_mem?")
    slope, _ = np.polyfit(t[ok], np.log(y[ok]), 1)
    return TauMeasurement(-1.0 / slope, rest, int(ok.sum()), trace)
