"""Analytic checks of the neuron model (mismatch off), each with its tolerance.

Kernel-level checks feed physical parameters straight into the compiled step
loop and compare with closed-form solutions.  Register-level checks program an
ideal `dls` twin (Chip(mismatch=False)) through its register bus and measure
with its membrane ADC or spike output; their expectations use the transfer
functions of docs/model.md, written out in _analog_helpers.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from _analog_helpers import Bench, amps, lsb_for_tau, lsb_for_volts, tau_of, volts
from twin.analog import kernel as K
from twin.analog.network import neuron_matrix

DT = 12 * 8e-9
C = 2e-12


def simulate(P, n_steps, events=(), S0=None, flags=None, ref_steps=0):
    """One neuron (row 0 -> neuron 0, label 0), excitatory events at ticks."""
    N = P.shape[1]
    S = np.zeros((K.NSTATE, N)) if S0 is None else S0
    if S0 is None:
        S[K.V] = P[K.EL]
    flags = np.full(N, K.F_ENABLE | K.F_EXC | K.F_INH, np.uint8) if flags is None else flags
    slow = np.flatnonzero((flags & (K.F_EXP | K.F_ADAPT)) != 0).astype(np.int64)
    ticks = np.asarray(sorted(events), np.int64)
    probe_out = np.zeros((n_steps, 4), np.float32)
    out_step, out_neuron = np.zeros(N * n_steps + N, np.int64), np.zeros(N * n_steps + N, np.int32)
    trace = np.zeros(n_steps + 1)
    trace[0] = S[K.V, 0]
    w_trace = np.zeros(n_steps + 1)
    w_trace[0] = S[K.W, 0]
    ev_pos = np.zeros(1, np.int64)
    refc = np.zeros(N, np.int32)
    spikes = []
    for k in range(n_steps):            # one step per call: exact float64 traces of V and w
        done, n_out = K.run_steps(
            k, 1, K.Layout(12, 1, N, 63),
            K.Neurons(P, S, flags, slow, refc, np.full(N, ref_steps, np.int32), np.zeros(N, np.int64),
                      np.full(N, -1, np.int32)),
            K.Synapses(np.zeros((1, N), np.int16), np.ones((1, N), np.float32),
                       np.array([K.R_ENABLE | 0b11100], np.uint8), K.event_routes(np.zeros(1))),
            K.EventInput(ticks, np.zeros(len(ticks), np.int32), np.zeros(len(ticks), np.int32), ev_pos,
                         np.zeros(N, np.int32), np.zeros(1, np.int64), False, 0.0, np.ones(1, np.uint64),
                         np.zeros(1, np.int64)),
            K.Correlation(False, 1.0, np.zeros(2), np.zeros((1, 1)), np.zeros((1, 1), np.int16), np.zeros(N),
                          *(np.zeros((1, 1), np.float32) for _ in range(6))),
            K.Observed(np.array([-1, -1], np.int32), probe_out, out_step, out_neuron))
        spikes += out_step[:n_out].tolist()
        trace[k + 1] = S[K.V, 0]
        w_trace[k + 1] = S[K.W, 0]
    return trace, w_trace, spikes


def lif(tau_m=10e-6, tau_s=5e-6, e_l=0.4, v_th=10.0, v_reset=0.3, g=1.0, **kw):
    args = dict(v_t=10.0, delta_t=0.01, a=0.0, b=0.0, tau_w=np.inf)
    args.update(kw)
    return neuron_matrix(DT, C, e_l, v_reset, v_th, args["v_t"], args["delta_t"], tau_m, tau_s, tau_s,
                         args["a"], args["b"], args["tau_w"], g, g, 1.8)


def test_membrane_relaxes_to_the_leak_potential_with_tau_m():
    """Step response: V(t) = E_l + (V0 - E_l) exp(-t / tau_m) at every step, relative error < 1e-9."""
    P = lif(tau_m=10e-6)
    S = np.zeros((K.NSTATE, 1))
    S[K.V] = 0.6
    trace, _, _ = simulate(P, 500, S0=S)
    t = np.arange(501) * DT
    want = 0.4 + 0.2 * np.exp(-t / 10e-6)
    np.testing.assert_allclose(trace, want, rtol=1e-9)


@pytest.mark.parametrize("tau_m, tau_s", [(10e-6, 5e-6), (10e-6, 10e-6), (3e-6, 20e-6)])
def test_psp_is_the_difference_of_exponentials(tau_m, tau_s):
    """A single event of amplitude I0 (acting at the end of its step) gives
    V - E_l = I0 / C * tau_m tau_s / (tau_m - tau_s) (exp(-t/tau_m) - exp(-t/tau_s))
    (I0 / C * t * exp(-t / tau) for equal constants); error < 1e-9 of the peak."""
    I0 = 2e-8
    P = lif(tau_m=tau_m, tau_s=tau_s, g=I0)
    trace, _, _ = simulate(P, 800, events=[10 * 12])           # event in step 10: current from t = 11 dt
    t = (np.arange(801) - 11) * DT
    if tau_m == tau_s:
        want = I0 / C * t * np.exp(-t / tau_m)
    else:
        want = I0 / C * tau_m * tau_s / (tau_m - tau_s) * (np.exp(-t / tau_m) - np.exp(-t / tau_s))
    want = np.where(t > 0, want, 0.0)
    psp = trace - 0.4
    assert abs(psp - want).max() < 1e-9 * want.max()
    assert want.max() > 1e-3                                    # a real PSP of millivolts


def test_adaptation_current_sums_spike_triggered_increments():
    """a = 0: w(t) = sum over spikes b exp(-(t - t_spike)/tau_w); relative error < 1e-12.
    And the adaptation slows firing: the inter-spike intervals grow."""
    b, tau_w = 2e-9, 30e-6
    P = lif(tau_m=10e-6, e_l=0.8, v_th=0.6, v_reset=0.3, a=0.0, b=b, tau_w=tau_w)
    flags = np.array([K.F_ENABLE | K.F_EXC | K.F_INH | K.F_ADAPT], np.uint8)
    _, w, spikes = simulate(P, 2000, flags=flags)
    assert len(spikes) >= 5
    k = np.arange(2001)
    want = np.zeros(2001)
    for s in spikes:                 # w jumps at the end of the spike step s, i.e. at index s + 1
        want += np.where(k >= s + 1, b * np.exp(-(k - s - 1) * DT / tau_w), 0.0)
    np.testing.assert_allclose(w, want, rtol=1e-12, atol=1e-24)
    isi = np.diff(spikes)
    assert isi[-1] > isi[0]


def test_subthreshold_adaptation_follows_the_linear_system():
    """a > 0, no spikes: (V, w) follow the 2-d linear ODE
    C dV/dt = -g_L (V - E_l) - w,  tau_w dw/dt = a (V - E_l) - w.
    The twin holds w over a step (first order): tolerance 1 % of the initial deviation."""
    tau_m, tau_w, a = 10e-6, 20e-6, 1e-7
    g_l = C / tau_m
    P = lif(tau_m=tau_m, a=a, tau_w=tau_w)
    flags = np.array([K.F_ENABLE | K.F_ADAPT], np.uint8)
    S = np.zeros((K.NSTATE, 1))
    S[K.V] = 0.5
    v, w, _ = simulate(P, 1500, S0=S, flags=flags)
    A = np.array([[-g_l / C, -1 / C], [a / tau_w, -1 / tau_w]])
    lam, vec = np.linalg.eig(A)
    coef = np.linalg.solve(vec, np.array([0.1, 0.0]))
    t = np.arange(1501) * DT
    sol = (vec @ (coef[:, None] * np.exp(lam[:, None] * t[None, :]))).real
    assert abs((v - 0.4) - sol[0]).max() < 0.01 * 0.1
    assert abs(w - sol[1]).max() < 0.01 * abs(sol[1]).max()
    assert abs(sol[1]).max() > 1e-9                            # the adaptation current matters


# ---------------------------------------------------------------------------- through registers
def ideal_dls():
    b = Bench("dls", serial=5, mismatch=False)
    b.write(b.pm, "config", [0], b.field_words(b.pm, "config", enable=1, settle=0))
    return b


def madc_trace(b, neuron, until, period=12):
    b.write("madc", "config", [0], b.field_words("madc", "config", enable=1, source=0, neuron=neuron, period=period))
    act = b.advance(until)
    return act.madc_times, act.madc_values.astype(float) * b.p.analog.adc_v_max / 1024


def test_membrane_time_constant_through_registers():
    """A leak-potential step, measured with the membrane ADC: the membrane
    relaxes with tau = tau_full_scale * i_max / I(i_bias_leak) (docs/model.md);
    the fitted time constant is within 3 % (ADC quantisation, 0.25 us cell settling)."""
    b = ideal_dls()
    leak = lsb_for_tau(b.p, 10e-6)
    b.cells([0], v_leak=lsb_for_volts(b.p, 0.3), v_threshold=1000, i_bias_leak=leak)
    b.neurons([0], enable=1)
    b.advance(12 * 2000)                                       # settle at 0.3 V
    start = b.chip.now
    b.cells([0], v_leak=lsb_for_volts(b.p, 0.5))
    t, v = madc_trace(b, 0, start + 12 * 1500)
    e_new = volts(b.p, lsb_for_volts(b.p, 0.5))
    tau_want = tau_of(b.p, leak)
    sel = ((t - start) * 8e-9 > 2e-6) & (e_new - v > 0.03)
    slope = np.polyfit((t[sel] - start) * 8e-9, np.log(e_new - v[sel]), 1)[0]
    assert abs(-1 / slope - tau_want) < 0.03 * tau_want
    assert abs(v[-1] - e_new) < 3 * b.p.analog.adc_v_max / 1024


def test_psp_amplitude_through_registers():
    """One event, weight w on a row with gain g: I0 = w/63 * g/8 * I(i_bias_syn_exc_gm);
    the PSP peak from the membrane ADC matches the double-exponential peak within 3 %,
    its time within 4 steps (the middle of the ADC's flat top)."""
    b = ideal_dls()
    tau_m, tau_s = 10e-6, 5e-6
    gm = 100
    b.cells([3], v_leak=lsb_for_volts(b.p, 0.3), v_threshold=1000, i_bias_leak=lsb_for_tau(b.p, tau_m),
            i_bias_syn_exc_tau=lsb_for_tau(b.p, tau_s), i_bias_syn_exc_gm=gm)
    b.neurons([3], enable=1)
    W = np.zeros((32, 32), int)
    W[7, 3] = 40
    b.synapses(W, np.zeros((32, 32), int))
    b.drivers([7], enable=1, gain=12)
    b.advance(12 * 1000)
    t0 = (b.chip.now // 12 + 10) * 12
    b.advance(t0, [t0], [7 << 6])
    t, v = madc_trace(b, 3, t0 + 12 * 800)
    tm, ts = tau_of(b.p, lsb_for_tau(b.p, tau_m)), tau_of(b.p, lsb_for_tau(b.p, tau_s))
    I0 = 40 / 63 * 12 / 8 * amps(b.p, gm)
    t_peak = tm * ts / (tm - ts) * math.log(tm / ts)
    peak = I0 / C * tm * ts / (tm - ts) * (math.exp(-t_peak / tm) - math.exp(-t_peak / ts))
    psp = v - volts(b.p, lsb_for_volts(b.p, 0.3))
    assert abs(psp.max() - peak) < 0.03 * peak
    at_top = np.flatnonzero(psp == psp.max())                  # the flat top of the quantised peak
    t_meas = ((t[at_top[0]] + t[at_top[-1]]) / 2 - t0) * 8e-9
    assert abs(t_meas - (t_peak + DT)) < 4 * DT                  # the current starts at the end of the event's step


@pytest.mark.parametrize("refractory, clock", [(10, 4), (20, 4), (40, 4), (5, 6)])
def test_refractory_period_through_registers(refractory, clock):
    """A leak potential above threshold makes the neuron fire regularly: each
    interval is the refractory time (refractory * 2**clock ticks, rounded up to
    whole 96 ns steps) plus the steps the membrane needs from reset to threshold,
    the first j with E + (V_r - E) exp(-j dt / tau) >= V_th.  Exact to the tick."""
    b = ideal_dls()
    leak = lsb_for_tau(b.p, 8e-6)
    e, vth, vr = (lsb_for_volts(b.p, x) for x in (0.7, 0.5, 0.3))
    b.cells([1], v_leak=e, v_threshold=vth, v_reset=vr, i_bias_leak=leak)
    b.neurons([1], enable=1, refractory=refractory, refractory_clock=clock)
    b.write("routing", "neuron_label", [1], b.field_words("routing", "neuron_label", label=1, enable=1))
    act = b.advance(12 * 3000)
    times = act.spike_times[act.spike_labels == 1]
    assert len(times) > 5
    E, Vth, Vr = volts(b.p, e), volts(b.p, vth), volts(b.p, vr)
    tau = tau_of(b.p, leak)
    j = 1
    while E + (Vr - E) * math.exp(-j * DT / tau) < Vth:
        j += 1
    ref_steps = -(-(refractory << clock) // 12)
    assert set(np.diff(times).tolist()) == {(ref_steps + j) * 12}
