"""Differential test: the twin against Brian2, an independent simulator.

A small AdEx network (8 neurons, exponential term and adaptation on, 12
excitatory and 4 inhibitory input rows, Poisson input, mismatch off) runs on an
ideal `dls` twin, configured through its registers, and in Brian2 with the
parameters the documented transfer functions (docs/model.md) give for the same
cell values, and the same input spikes.  Brian2 integrates with RK4 at the
twin's step (96 ns); the twin integrates the linear part exactly and holds the
exponential and adaptation terms over a step.

Time conventions (docs/model.md): an input event in step k acts from the end
of step k, as a Brian2 spike at k*dt acts after that step's state update; the
twin stamps a spike with the end of its step, Brian2 with its start, so twin
times are Brian2 times + dt; the twin clamps a refractory membrane for
`ref_steps` steps after the spike step, which Brian2 does for
refractory = (ref_steps + 1) * dt.

Stated agreement (AGREEMENT below): for AdEx at least 92 % of the twin's
spikes have a Brian2 spike of the same neuron within one step and the counts
differ by at most 3 %; the membrane traces sampled by the membrane ADC agree
within 6 mV (5 ADC steps) for 99 % of the samples, median below 1 mV.  The
same network with the exponential term off (LIF with adaptation): 97 %, 2 %,
99.5 %.  A spike a step early or late changes the adaptation current, so
misses come in short runs.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from _analog_helpers import Bench, amps, lsb_for_tau, lsb_for_volts, tau_of, volts

if os.environ.get("CI"):
    import brian2 as b2          # noqa: F401  in CI a missing brian2 is a failure, not a skip
else:
    b2 = pytest.importorskip("brian2")

STEP = 12
DT = STEP * 8e-9
C = 2e-12
N, ROWS_EXC, ROWS_INH = 8, 12, 4
DURATION_STEPS = 4000                       # 384 us hardware = 384 ms biological


def network(seed=3):
    rng = np.random.default_rng(seed)
    cells = dict(
        v_leak=rng.integers(lsb_for_volts("dls", 0.36), lsb_for_volts("dls", 0.42), N),
        v_reset=np.full(N, lsb_for_volts("dls", 0.33)),
        v_threshold=np.full(N, lsb_for_volts("dls", 0.62)),
        v_exp=rng.integers(lsb_for_volts("dls", 0.52), lsb_for_volts("dls", 0.56), N),
        i_bias_leak=rng.integers(lsb_for_tau("dls", 14e-6), lsb_for_tau("dls", 8e-6), N),
        i_bias_syn_exc_tau=np.full(N, lsb_for_tau("dls", 5e-6)),
        i_bias_syn_inh_tau=np.full(N, lsb_for_tau("dls", 8e-6)),
        i_bias_syn_exc_gm=np.full(N, 120),
        i_bias_syn_inh_gm=np.full(N, 40),
        i_bias_exp=np.full(N, 200),                       # Delta_T = 0.1 V * 200/1022 = 19.6 mV
        i_bias_adapt_a=np.full(N, 12),
        i_bias_adapt_b=np.full(N, 15),
        i_bias_adapt_tau=np.full(N, lsb_for_tau("dls", 40e-6)),
    )
    W = np.zeros((ROWS_EXC + ROWS_INH, N), int)
    mask = rng.random(W.shape) < 0.6
    W[mask] = rng.integers(20, 64, mask.sum())
    rate = 40e3                                            # events per second per row (hardware)
    times, rows = [], []
    for r in range(ROWS_EXC + ROWS_INH):
        n = rng.poisson(rate * DURATION_STEPS * DT)
        steps = np.unique(rng.integers(50, DURATION_STEPS - 50, n))
        times.append(steps * STEP)
        rows.append(np.full(len(steps), r))
    t, r = np.concatenate(times), np.concatenate(rows)
    o = np.argsort(t, kind="stable")
    return cells, W, t[o], r[o]


def run_twin(cells, W, t, rows, madc_neuron, ref=(20, 4), exp_flag=1):
    b = Bench("dls", serial=2, mismatch=False)
    b.write(b.pm, "config", [0], b.field_words(b.pm, "config", enable=1, settle=0))
    for name, v in cells.items():
        b.cells(np.arange(N), **{name: v})
    b.neurons(np.arange(N), enable=1, exp_enable=exp_flag, adapt_enable=1, refractory=ref[0], refractory_clock=ref[1])
    for n in range(N):
        b.write("routing", "neuron_label", [n], b.field_words("routing", "neuron_label", label=n, enable=1))
    full = np.zeros((32, 32), int)
    full[:ROWS_EXC + ROWS_INH, :N] = W
    b.synapses(full, np.zeros((32, 32), int))
    b.drivers(np.arange(ROWS_EXC), enable=1, gain=8)
    b.drivers(np.arange(ROWS_EXC, ROWS_EXC + ROWS_INH), enable=1, gain=8, inhibitory=1)
    b.advance(STEP * 2000)                                     # cells settle, neurons rest
    t0 = b.chip.now
    b.write("madc", "config", [0], b.field_words("madc", "config", enable=1, source=0, neuron=madc_neuron,
                                                 period=STEP))
    act = b.advance(t0 + STEP * DURATION_STEPS, t + t0, rows << 6)
    spk = act.spike_labels < N
    madc = act.madc_values.astype(float) * b.p.analog.adc_v_max / 1024
    return act.spike_times[spk] - t0, act.spike_labels[spk].astype(int), act.madc_times - t0, madc


def run_brian(cells, W, t, rows, record, ref_steps, exp_flag=1):
    from brian2 import (NeuronGroup, Network, SpikeGeneratorGroup, SpikeMonitor, StateMonitor, Synapses,
                        amp, defaultclock, farad, second, siemens, volt)
    b2.prefs.codegen.target = "numpy"
    defaultclock.dt = DT * second
    V = lambda name: volts("dls", cells[name]) * volt
    tau = lambda name: tau_of("dls", cells[name]) * second
    eqs = """
    dv/dt = (g_l * (E_l - v) + I_exp - w + I_e - I_i) / Cm : volt (unless refractory)
    I_exp = exp_on * g_l * DeltaT * exp((v - V_T) / DeltaT) : amp
    dI_e/dt = -I_e / tau_e : amp
    dI_i/dt = -I_i / tau_i : amp
    dw/dt = (a * (v - E_l) - w) / tau_w : amp
    E_l : volt
    V_T : volt
    V_th : volt
    V_r : volt
    DeltaT : volt
    g_l : siemens
    a : siemens
    b : amp
    tau_e : second
    tau_i : second
    tau_w : second
    Cm : farad
    exp_on : 1
    """
    G = NeuronGroup(N, eqs, threshold="v >= V_th", reset="v = V_r; w += b",
                    refractory=(ref_steps + 1) * DT * second, method="rk4")
    G.Cm = C * farad
    G.exp_on = exp_flag
    G.E_l, G.V_T, G.V_th, G.V_r = V("v_leak"), V("v_exp"), V("v_threshold"), V("v_reset")
    G.g_l = C / tau_of("dls", cells["i_bias_leak"]) * siemens
    G.DeltaT = 0.1 * amps("dls", cells["i_bias_exp"]) / 1e-6 * volt
    G.a = C / (0.5e-6 * 1e-6) * amps("dls", cells["i_bias_adapt_a"]) * siemens
    G.b = amps("dls", cells["i_bias_adapt_b"]) * amp                 # adapt_b_full_scale = i_max
    G.tau_e, G.tau_i, G.tau_w = tau("i_bias_syn_exc_tau"), tau("i_bias_syn_inh_tau"), tau("i_bias_adapt_tau")
    G.v = G.E_l
    inp = SpikeGeneratorGroup(ROWS_EXC + ROWS_INH, rows, t * 8e-9 * second)
    gain = 8 / 8
    se = Synapses(inp, G, "w_syn : amp", on_pre="I_e_post += w_syn")
    si = Synapses(inp, G, "w_syn : amp", on_pre="I_i_post += w_syn")
    src, dst = np.nonzero(W)
    exc = src < ROWS_EXC
    se.connect(i=src[exc], j=dst[exc])
    si.connect(i=src[~exc], j=dst[~exc])
    se.w_syn = W[src[exc], dst[exc]] / 63 * gain * amps("dls", cells["i_bias_syn_exc_gm"][dst[exc]]) * amp
    si.w_syn = W[src[~exc], dst[~exc]] / 63 * gain * amps("dls", cells["i_bias_syn_inh_gm"][dst[~exc]]) * amp
    sm = SpikeMonitor(G)
    vm = StateMonitor(G, "v", record=record)
    net = Network(G, inp, se, si, sm, vm)
    net.run(DURATION_STEPS * DT * second)
    # spike ticks stamped like the twin: end of the step
    ticks = (np.floor(np.asarray(sm.t / second) / DT + 1e-6).astype(np.int64) + 1) * STEP
    return ticks, np.asarray(sm.i), np.asarray(vm.v / volt)


MODELS = {"adex": 1, "lif_adaptation": 0}
#: Stated agreement per model: (spikes within one step, |count difference|, traces within 6 mV, median |dV|).
#: Measured (seed 3): AdEx 95.4 % of 197 spikes, traces 99.7 %, median 0.40 mV;
#: LIF with adaptation 98.8 % of 164 spikes, traces 100 %, median 0.35 mV.
AGREEMENT = {"adex": (0.92, 0.03, 0.99, 0.001), "lif_adaptation": (0.97, 0.02, 0.995, 0.001)}


@pytest.fixture(scope="module", params=list(MODELS))
def both(request):
    cells, W, t, rows = network()
    ref_steps = -(-(20 << 4) // STEP)
    record = [0, 5]
    flag = MODELS[request.param]
    twin = {n: run_twin(cells, W, t, rows, n, exp_flag=flag) for n in record}
    brian = run_brian(cells, W, t, rows, record, ref_steps, exp_flag=flag)
    return twin, brian, record, AGREEMENT[request.param]


def test_spike_times_agree_within_one_step(both):
    twin, (b_ticks, b_idx, _), _, (want_frac, want_count, _, _) = both
    t_ticks, t_idx, _, _ = twin[0]
    assert len(t_ticks) > 100                                 # the network is active
    assert set(t_idx.tolist()) == set(range(N))               # every neuron fires
    matched = 0
    for tt, n in zip(t_ticks, t_idx):
        other = b_ticks[b_idx == n]
        if len(other) and np.abs(other - tt).min() <= STEP:
            matched += 1
    frac = matched / len(t_ticks)
    print(f"twin spikes {len(t_ticks)}, Brian2 spikes {len(b_ticks)}, within one step: {frac:.3f}")
    assert frac >= want_frac
    assert abs(len(t_ticks) - len(b_ticks)) <= want_count * len(b_ticks)


def test_membrane_traces_agree(both):
    twin, (_, _, b_v), record, (_, _, want_frac, want_median) = both
    for k, n in enumerate(record):
        _, _, m_t, m_v = twin[n]
        idx = m_t // STEP                                     # Brian2 records at each step start
        ok = idx < b_v.shape[1]
        diff = np.abs(m_v[ok] - b_v[k][idx[ok]])
        frac = (diff < 0.006).mean()
        print(f"neuron {n}: median |dV| {np.median(diff) * 1e3:.2f} mV, within 6 mV: {frac:.4f}")
        assert frac >= want_frac
        assert np.median(diff) < want_median
        assert b_v[k].min() > 0.05                            # the test stays off the twin's 0 V rail
