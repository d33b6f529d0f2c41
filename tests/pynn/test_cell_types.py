"""EIF_cond_exp_isfa_ista's ranges and synapse checks, SpikeSourceGamma's
statistics (expected values from PyNN's definition: intervals Gamma(alpha,
rate beta), mean rate beta / alpha, CV 1 / sqrt(alpha))."""
import warnings

import numpy as np
import pytest
from pyNN import errors


def test_listed(sim):
    assert {"EIF_cond_exp_isfa_ista", "SpikeSourceGamma"} <= set(sim.list_standard_models())


@pytest.mark.parametrize("params, message", [
    # a: cm / (tau_full_scale x speedup) = 0.281 nF / 0.5 ms = 562 nS
    (dict(a=600.0), r"a = 600 nS is outside the chip's range 0 \.\. 562 nS"),
    (dict(a=-1.0), r"a = -1 nS is outside the chip's range 0 \.\. 562 nS"),
    # b: 1 uA / (2 pF x 10 x 1000 / 0.281 nF) = 14.05 nA
    (dict(b=20.0), r"b = 20 nA is outside the chip's range 0 \.\. 14.05 nA"),
    (dict(delta_T=12.0), r"delta_T = 12 mV is outside the chip's range 0.00978474 \.\. 10 mV"),
    (dict(delta_T=0.001), r"delta_T = 0.001 mV is outside the chip's range 0.00978474 \.\. 10 mV"),
    (dict(tau_w=600.0), r"tau_w = 600 ms is outside the chip's range 0.5 \.\. 511 ms"),
    (dict(v_spike=20.0), r"v_spike = 20 mV is outside the chip's range -105 \.\. 15 mV"),
    # -70.6 + 5 nA / (0.281 / 9.3667 + 0.004 uS) = 76.46 mV
    (dict(i_offset=5.0), r"v_rest \+ i_offset / \(cm / tau_m \+ a\) = 76.459\d* mV is outside the chip's range"),
])
def test_eif_ranges_name_parameter_value_and_range(sim, params, message):
    sim.Population(1, sim.EIF_cond_exp_isfa_ista(**params), label="eif")
    with pytest.raises(errors.InvalidParameterValueError, match=r"eif\[0\]: " + message):
        sim.run(1.0)


def test_eif_inhibitory_reversal_above_rest_is_refused(sim):
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))
    cell = sim.Population(1, sim.EIF_cond_exp_isfa_ista(e_rev_I=-60.0), label="eif")
    sim.Projection(src, cell, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.01), receptor_type="inhibitory")
    with pytest.raises(errors.InvalidParameterValueError, match=r"eif\[0\]: e_rev_I = -60 mV with v_rest = "
                                                                r"-70.6 mV.*must be negative"):
        sim.run(5.0)


def test_eif_records_v_and_spikes_only(sim):
    cell = sim.Population(1, sim.EIF_cond_exp_isfa_ista())
    with pytest.raises(errors.RecordingError):
        cell.record("w")


def _isis(trains):
    return np.concatenate([np.diff(np.asarray(t)) for t in trains])


def test_gamma_rate_and_cv(sim):
    alpha, beta, n, T = 4.0, 200.0, 40, 2000.0          # 50 Hz, CV 0.5
    src = sim.Population(n, sim.SpikeSourceGamma(alpha=alpha, beta=beta))
    src.record("spikes")
    sim.run(T)
    trains = [s.magnitude for s in src.get_data().segments[0].spiketrains]
    count = sum(len(t) for t in trains)
    expect = n * T * 1e-3 * beta / alpha                 # 4000 spikes
    # a renewal process: Var(N) ~ T / mean^3 x var(ISI) = expect x CV^2
    assert abs(count - expect) < 4 * np.sqrt(expect * 0.25), (count, expect)
    isi = _isis(trains)
    cv = isi.std() / isi.mean()
    # the CV of ~4000 intervals: its standard error is about CV / sqrt(2 N) (x 1.2 for alpha 4) ~ 0.007
    assert abs(cv - 1 / np.sqrt(alpha)) < 0.04, cv
    assert all(np.all(np.diff(t) > 0) for t in trains)


def test_gamma_start_duration_and_continued_runs(sim):
    src = sim.Population(3, sim.SpikeSourceGamma(alpha=2.0, beta=400.0, start=50.0, duration=100.0))
    src.record("spikes")
    sim.run(120.0)
    sim.run(80.0)
    first = [s.magnitude.copy() for s in src.get_data().segments[0].spiketrains]
    for t in first:
        assert len(t) > 5 and t.min() >= 50.0 and t.max() < 150.0
    sim.reset()
    src.record("spikes")
    sim.run(200.0)
    # a new segment draws anew; the same seed and segment would give the same: run again from a fresh setup
    second = [s.magnitude.copy() for s in src.get_data().segments[1].spiketrains]
    assert any(len(a) != len(b) or np.any(a != b) for a, b in zip(first, second))


def test_gamma_continued_run_equals_one_run():
    import host.pynn as sim
    out = []
    for parts in ([300.0], [120.0, 180.0]):
        sim.setup(timestep=0.1, url="twin:dls?mismatch=0", seed=5)
        src = sim.Population(2, sim.SpikeSourceGamma(alpha=3.0, beta=300.0))
        src.record("spikes")
        for t in parts:
            sim.run(t)
        out.append([s.magnitude.copy() for s in src.get_data().segments[0].spiketrains])
        sim.end()
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


def test_gamma_bad_parameters(sim):
    sim.Population(1, sim.SpikeSourceGamma(alpha=0.0, beta=10.0), label="g")
    with pytest.raises(errors.InvalidParameterValueError, match="g: alpha = 0; the shape must be > 0"):
        sim.run(10.0)


def test_eif_without_exponential_spikes_at_v_thresh(sim):
    """delta_T = 0 (PyNN scenario issue367, NEST's and NEURON's limit): no
    exponential term, the spike at v_thresh: the membrane peaks there."""
    cell = sim.Population(1, sim.EIF_cond_exp_isfa_ista(delta_T=0.0, i_offset=1.0, v_thresh=-50.0, v_spike=-45.0))
    cell.record(["spikes", "v"])
    sim.run(100.0)
    seg = cell.get_data().segments[0]
    v = seg.analogsignals[0].magnitude[:, 0][10:]    # from 1 ms: it starts at its rest with i_offset, -41.2 mV
    assert len(seg.spiketrains[0]) >= 3
    assert -50.4 < v.max() < -49.7, v.max()          # the ADC step is 0.12 mV, a step's rise below 0.3 mV


def test_point_neuron_refuses_what_the_chip_lacks(sim):
    from pyNN.standardmodels.receptors import CondExpPostSynapticResponse
    with pytest.raises(errors.NoModelAvailableError, match="receptor AMPA=CurrExpPostSynapticResponse"):
        sim.PointNeuron(sim.LIF(), AMPA=sim.CurrExpPostSynapticResponse())
    with pytest.raises(errors.NoModelAvailableError, match="CurrExpPostSynapticResponse named 'excitatory'"):
        sim.PointNeuron(sim.LIF(), excitatory=CondExpPostSynapticResponse())
    from pyNN.standardmodels.cells import Izhikevich
    with pytest.raises(errors.NoModelAvailableError, match="LIF or AdExp"):
        sim.PointNeuron(Izhikevich())


def test_composed_lif_is_if_curr_exp(sim):
    """PointNeuron(LIF, CurrExp, CurrExp) is IF_curr_exp's model: with the same
    parameters the chip gets the same cells and gives the same spikes."""
    params = dict(tau_m=12.0, v_rest=-62.0, v_thresh=-55.0, tau_refrac=2.0, cm=0.5)
    mono = sim.Population(2, sim.IF_curr_exp(tau_syn_E=2.0, tau_syn_I=4.0, **params))
    comp = sim.Population(2, sim.PointNeuron(sim.LIF(**params), excitatory=sim.CurrExpPostSynapticResponse(tau_syn=2.0),
                                             inhibitory=sim.CurrExpPostSynapticResponse(tau_syn=4.0)))
    src = sim.Population(4, sim.SpikeSourcePoisson(rate=80.0))
    for pop in (mono, comp):
        sim.Projection(src, pop, sim.AllToAllConnector(), sim.StaticSynapse(weight=1.2))
        sim.Projection(src[0:1], pop, sim.AllToAllConnector(), sim.StaticSynapse(weight=-0.6),
                       receptor_type="inhibitory")
        pop.record("spikes")
    comp.set(**{"inhibitory.tau_syn": 4.0})
    assert comp.get("inhibitory.tau_syn") == 4.0 and comp.get("cm") == 0.5
    sim.run(300.0)
    a = [s.magnitude for s in mono.get_data().segments[0].spiketrains]
    b = [s.magnitude for s in comp.get_data().segments[0].spiketrains]
    assert sum(len(x) for x in a) > 10
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_initial_w_is_warned_about(sim):
    cell = sim.Population(1, sim.EIF_cond_exp_isfa_ista())
    with pytest.warns(UserWarning, match="initial values of w are not available"):
        cell.initialize(w=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cell.initialize(w=0.0)


def test_poisson_refractory_rate_dead_time_and_cv(sim):
    """Intervals d + Exp(1000 / rate - d): mean 1000 / rate ms, none shorter than
    d, CV = (1000 / rate - d) / (1000 / rate) = 0.5 at 100 Hz and d = 5 ms."""
    n, T = 20, 2000.0
    src = sim.Population(n, sim.SpikeSourcePoissonRefractory(rate=100.0, tau_refrac=5.0))
    src.record("spikes")
    sim.run(T)
    trains = [s.magnitude for s in src.get_data().segments[0].spiketrains]
    count, expect = sum(len(t) for t in trains), n * T * 1e-3 * 100.0
    assert abs(count - expect) < 4 * np.sqrt(expect * 0.25), (count, expect)
    isi = _isis(trains)
    assert isi.min() >= 5.0 - 1e-9
    assert abs(isi.std() / isi.mean() - 0.5) < 0.04


def test_poisson_refractory_needs_intervals_longer_than_the_dead_time(sim):
    sim.Population(1, sim.SpikeSourcePoissonRefractory(rate=250.0, tau_refrac=4.0), label="s")
    with pytest.raises(errors.InvalidParameterValueError, match=r"s\[0\]: rate 250 Hz with tau_refrac 4 ms"):
        sim.run(10.0)


def test_plastic_synapses_onto_eif_learn_in_microsiemens(sim):
    """The rule's bounds and the learned weights go through the same driving-force map as the
    static weights: uS in, uS out; a plastic projection onto an Assembly learns per member."""
    times = np.arange(40.0, 1000.0, 25.0)
    drive = sim.Population(3, sim.SpikeSourceArray(spike_times=times))
    early = sim.Population(4, sim.SpikeSourceArray(spike_times=times - 3.0))
    eif = sim.Population(1, sim.EIF_cond_exp_isfa_ista(tau_refrac=10.0, a=0.0, b=0.0))
    other = sim.Population(1, sim.EIF_cond_exp_isfa_ista(tau_refrac=10.0, a=0.0, b=0.0))
    sim.Projection(drive, eif, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.03))
    rule = sim.FirmwareRule("stdp_mult", period=200.0, w_max=0.03, theta=2, lambda_pos=64, lambda_neg=64)
    learn = sim.Projection(early, eif + other, sim.AllToAllConnector(),
                           sim.PlasticSynapse(weight=0.006, plasticity_rule=rule))
    eif.record("spikes")
    sim.run(1000.0)
    assert eif.get_spike_counts()[eif[0]] >= len(times)
    w = np.asarray(learn.get("weight", format="array"))                  # (4 inputs, eif and other)
    assert (w[:, 0] > 0.012).all() and (w[:, 0] <= 0.03 + 1e-12).all()   # grew toward w_max, within it
    np.testing.assert_allclose(w[:, 1], 0.006, atol=0.03 / 63)          # no post spikes: kept
    sim.reset()
    np.testing.assert_array_equal(learn.get("weight", format="array"), 0.006)   # reset: the initial weights