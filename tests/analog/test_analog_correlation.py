"""Correlation sensors through their registers (ideal `dls` twin, mismatch off):
one spike pair per measurement, read through the column ADC.

Expected reading (docs/model.md): baseline minus trace, with the trace of one
pair eta * exp(-delay / tau) (causal: post after pre; acausal: pre after post),
eta = corr_eta_full_scale * V(v_correlation_store) / v_max and
tau = corr_tau_full_scale * i_max / I(i_bias_correlation); a presynaptic event
counts at the end of its 96 ns step, a postsynaptic spike at its timestamp.
"""
from __future__ import annotations

import numpy as np
import pytest

from _analog_helpers import Bench, lsb_for_tau, lsb_for_volts, pair_bench, volts

STEP = 12
PRE, TEACH = (0 << 6) | 5, (1 << 6) | 0       # row 0 label 5: measured synapse; row 1 label 0: forces a spike


def lsb(b):
    return b.p.analog.adc_v_max / (1 << b.p.analog.cadc_bits)


@pytest.fixture(scope="module")
def bench():
    return pair_bench(serial=9)


def pair(b, pre_first: bool, gap_steps: int):
    """One pre/post pair; returns (delay in s, causal reading, acausal reading)."""
    t0 = (b.chip.now // STEP + 3000) * STEP               # 290 us after everything before: old pairs are gone
    b.write("correlation", "reset_row", [0], b.field_words("correlation", "reset_row", all=1))
    if pre_first:
        act = b.advance(t0 + STEP * (gap_steps + 200), [t0, t0 + gap_steps * STEP], [PRE, TEACH])
        t_post = act.spike_times[act.spike_labels == 0x3FF]
        assert len(t_post) == 1
        delay = int(t_post[0]) - (t0 + STEP)               # pre counts at the end of its step
    else:
        act = b.advance(t0 + STEP, [t0], [TEACH])
        t_post = act.spike_times[act.spike_labels == 0x3FF]
        while not len(t_post):                              # step by step until the spike leaves
            act = b.advance(b.chip.now + STEP)
            t_post = act.spike_times[act.spike_labels == 0x3FF]
            assert b.chip.now < t0 + 20 * STEP
        t_pre = int(t_post[0]) + gap_steps * STEP
        b.advance(t_pre + STEP * 10, [t_pre - STEP], [PRE])    # acts at the end of its step, t_pre
        delay = t_pre - int(t_post[0])
    c = int(b.read("correlation", "causal", [0])[0]) & 0xFF
    a = int(b.read("correlation", "acausal", [0])[0]) & 0xFF
    return delay * 8e-9, c, a


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "acausal"])
def test_trace_is_exponential_in_the_pair_delay(bench, causal):
    """Every reading within 1 LSB of baseline - eta exp(-delay/tau); the fitted
    tau within 10 %; the other trace stays at the baseline."""
    b = bench
    tau = 5e-6 * 1022 / 1022                                # corr_tau_full_scale * i_max / I(1022)
    eta = 0.2 * volts(b.p, 1022) / b.p.analog.v_max
    base = volts(b.p, lsb_for_volts(b.p, 1.0)) / lsb(b)
    delays, traces = [], []
    for gap in (1, 3, 6, 12, 25, 50, 80, 110):
        d, c, a = pair(b, causal, gap)
        got, other = (c, a) if causal else (a, c)
        want = base - eta * np.exp(-d / tau) / lsb(b)
        assert abs(got - want) <= 1.0, (gap, got, want)
        assert abs(other - base) <= 1.0
        delays.append(d)
        traces.append((base - got) * lsb(b))
    d, tr = np.array(delays), np.array(traces)
    sel = tr > 4 * lsb(b)
    slope, icept = np.polyfit(d[sel], np.log(tr[sel]), 1)
    assert abs(-1 / slope - tau) < 0.1 * tau
    assert abs(np.exp(icept) - eta) < 0.05 * eta


def test_reset_quad_clears_only_the_masked_synapses(bench):
    b = bench
    _, c, _ = pair(b, True, 3)
    base = volts(b.p, lsb_for_volts(b.p, 1.0)) / lsb(b)
    assert c < base - 10
    b.write("correlation", "reset_quad", [0], b.field_words("correlation", "reset_quad", row=0, quad=0, mask=0b0010))
    assert int(b.read("correlation", "causal", [0])[0]) & 0xFF == c          # synapse 0 kept
    b.write("correlation", "reset_quad", [0], b.field_words("correlation", "reset_quad", row=0, quad=0, mask=0b0001))
    assert abs((int(b.read("correlation", "causal", [0])[0]) & 0xFF) - base) <= 1


def test_traces_saturate():
    """Many pairs: the trace approaches the saturation voltage and never exceeds it."""
    b = Bench("dls", serial=9, mismatch=False)
    b.write(b.pm, "config", [0], b.field_words(b.pm, "config", enable=1, settle=0))
    b.cells([0], v_leak=lsb_for_volts(b.p, 0.3), v_threshold=lsb_for_volts(b.p, 0.5),
            v_reset=lsb_for_volts(b.p, 0.3), i_bias_leak=lsb_for_tau(b.p, 10e-6),
            i_bias_syn_exc_tau=lsb_for_tau(b.p, 2e-6), i_bias_syn_exc_gm=1022)
    b.neurons([0], enable=1, refractory=10, refractory_clock=4)
    W, L = np.zeros((32, 32), int), np.zeros((32, 32), int)
    W[1, 0] = 63
    L[0, 0] = 5
    b.synapses(W, L)
    b.drivers([0, 1], enable=1, gain=15)
    b.global_cells(i_bias_correlation=1022, v_correlation_store=1022, v_correlation_baseline=1022)
    t = np.arange(200) * STEP * 100 + 1200
    times = np.concatenate([t, t + STEP])
    labels = np.concatenate([np.full(200, PRE), np.full(200, TEACH)])
    o = np.argsort(times, kind="stable")
    b.advance(int(times.max()) + STEP * 100, times[o], labels[o])
    causal, _ = b.chip.core.net.traces()
    sat = b.p.analog.corr_saturation
    assert sat * 0.95 < causal[0, 0] <= sat
