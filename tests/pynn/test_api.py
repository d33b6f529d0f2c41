"""The PyNN front end's API: segments, recording, connectors, cell types,
errors that name the chip's range.  Expected values come from PyNN's
definitions and the LIF formula, not from the code under test."""
import math
import warnings

import numpy as np
import pytest
from pyNN import errors
from pyNN.parameters import Sequence


def test_setup_queries(sim):
    assert sim.get_current_time() == 0.0
    assert sim.get_time_step() == 0.1
    assert sim.get_chip_step() == pytest.approx(0.096)          # 12 ticks x 8 ns x 1000
    assert sim.get_min_delay() == pytest.approx(0.096)
    assert sim.get_max_delay() == pytest.approx(0.192)
    assert "IF_curr_exp" in sim.list_standard_models()


def test_segments_per_reset_and_block(sim, tmp_path):
    stim = sim.Population(2, sim.SpikeSourceArray(spike_times=[Sequence([5.0, 30.0]), Sequence([7.0])]))
    cells = sim.Population(2, sim.IF_curr_exp(cm=0.25, tau_m=10.0, v_thresh=-55.0))
    sim.Projection(stim, cells, sim.OneToOneConnector(), sim.StaticSynapse(weight=1.15))
    cells.record("spikes")
    stim.record("spikes")
    sim.run(20.0)
    assert sim.get_current_time() == 20.0
    sim.run(30.0)                                 # same segment, continued
    sim.reset()
    assert sim.get_current_time() == 0.0
    sim.run(20.0)
    block = cells.get_data()
    assert len(block.segments) == 2
    first, second = block.segments
    assert float(first.spiketrains[0].t_stop) == 50.0 and float(second.spiketrains[0].t_stop) == 20.0
    # 1.15 nA into 0.25 nF (tau_m 10, tau_syn 5 ms): a PSP of 11.5 mV at its peak (10 mV per nA,
    # test_psp_fires_where_the_formula_says), threshold 10 mV above rest: one spike per input spike near
    # the peak; the current left after the reset climbs to 8.5 mV above rest (pyNN.brian2: the same counts)
    n0 = [len(st) for st in first.spiketrains]
    n1 = [len(st) for st in second.spiketrains]
    assert n0 == [2, 1] and n1 == [1, 1]
    assert stim.get_data().segments[0].spiketrains[0].magnitude.tolist() == [5.0, 30.0]
    assert cells.get_spike_counts() == {cells[0]: 1, cells[1]: 1}
    assert cells.mean_spike_count() == 1.0
    path = tmp_path / "cells.pkl"
    cells.write_data(str(path))
    import neo
    back = neo.io.PickleIO(str(path)).read_block()
    assert len(back.segments) == 2


def test_psp_fires_where_the_formula_says(sim):
    """Peak of an exponential-current PSP: w/cm * tau_m tau_s/(tau_m - tau_s) (e^(-t*/tau_m) - e^(-t*/tau_s)),
    t* = ln(tau_m/tau_s) tau_m tau_s/(tau_m - tau_s).  Weights 10 % below and above what reaches a
    threshold 5 mV above rest: only the second neuron fires."""
    tm, ts, cm, dv = 10.0, 5.0, 0.5, 5.0
    tp = math.log(tm / ts) * tm * ts / (tm - ts)
    peak_per_na = 1 / cm * tm * ts / (tm - ts) * (math.exp(-tp / tm) - math.exp(-tp / ts))
    w = dv / peak_per_na
    stim = sim.Population(1, sim.SpikeSourceArray(spike_times=Sequence([10.0])))
    cells = sim.Population(2, sim.IF_curr_exp(cm=cm, tau_m=tm, tau_syn_E=ts, v_rest=-65.0, v_thresh=-60.0))
    sim.Projection(stim, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=np.array([[0.9 * w, 1.1 * w]])))
    cells.record("spikes")
    sim.run(50.0)
    counts = [len(s) for s in cells.get_data().segments[0].spiketrains]
    assert counts == [0, 1]


def test_i_offset_regular_firing_matches_the_lif_period(sim):
    """i_offset = 2 nA, tau_m 10 ms, cm 1 nF: V_inf = -65 + 20 = -45 mV; from reset -65 to threshold -50 the
    period is tau_refrac + tau_m ln((V_inf - V_reset)/(V_inf - V_th)) = 2 + 10 ln 4 = 15.86 ms."""
    cells = sim.Population(1, sim.IF_curr_exp(i_offset=2.0, tau_m=10.0, cm=1.0, v_rest=-65.0, v_reset=-65.0,
                                              v_thresh=-50.0, tau_refrac=2.0))
    cells.record("spikes")
    sim.run(200.0)
    t = cells.get_data().segments[0].spiketrains[0].magnitude
    period = 2.0 + 10.0 * math.log(4.0)
    isi = np.diff(t)
    # tolerance: the spike is stamped at the end of its step and the refractory time rounded up to whole
    # steps (each up to 0.096 ms), tau_m lands on cell 51 (10.02 ms): 0.25 ms
    assert len(isi) >= 10
    assert np.all(np.abs(isi - period) < 0.25), (isi, period)


def test_connectors_reach_the_right_neurons(sim):
    stim = sim.Population(3, sim.SpikeSourceArray(spike_times=[Sequence([10.0]), Sequence([30.0]),
                                                               Sequence([50.0])]))
    cells = sim.Population(4, sim.IF_curr_exp(cm=0.25, v_thresh=-60.0))
    sim.Projection(stim, cells, sim.FromListConnector([(0, 1, 2.0, 0.1), (1, 3, 2.0, 0.1), (2, 0, 2.0, 0.1)]),
                   sim.StaticSynapse())
    cells.record("spikes")
    sim.run(70.0)
    first = [s.magnitude[0] if len(s) else None for s in cells.get_data().segments[0].spiketrains]
    assert first[2] is None
    assert 50.0 < first[0] < 55.0 and 10.0 < first[1] < 15.0 and 30.0 < first[3] < 35.0


def test_fixed_probability_and_views(sim):
    stim = sim.Population(20, sim.SpikeSourcePoisson(rate=20.0))
    cells = sim.Population(10, sim.IF_curr_exp())
    prj = sim.Projection(stim, cells[2:8], sim.FixedProbabilityConnector(0.5, rng=sim.NumpyRNG(seed=3)),
                         sim.StaticSynapse(weight=0.5))
    w = prj.get("weight", format="array")
    assert w.shape == (20, 6)
    n = np.isfinite(w).sum()
    assert 0.3 * 120 < n < 0.7 * 120
    both = cells[0:2] + cells[5:6]
    assert isinstance(both, sim.Assembly) or hasattr(both, "populations") or both.size == 3
    cells.record("spikes")
    sim.run(100.0)
    counts = cells.get_spike_counts()
    assert all(counts[c] == 0 for c in cells[[0, 1, 8, 9]])    # no input: no spikes
    assert sum(counts.values()) > 0


def test_membrane_of_one_neuron(sim):
    cells = sim.Population(3, sim.IF_curr_exp(v_rest=-70.0, v_thresh=-50.0))
    cells[1:2].record("v")
    sim.run(30.0)
    sig = cells.get_data().segments[0].analogsignals[0]
    assert str(sig.units.dimensionality) == "mV"
    assert sig.shape == (301, 1)
    # at rest: -70 mV through the map and back, within the membrane ADC's step (1.17 mV on the chip = 0.12 mV)
    assert abs(float(np.median(sig.magnitude[50:])) + 70.0) < 0.5


def test_v_of_several_neurons_through_their_column_adcs(sim):
    """More than one membrane: the column ADCs (8 bit, 1.2 V / 256 = 0.47 mV of the model);
    at rest each reads its own v_rest, across populations."""
    rest = [-70.0, -65.0, -60.0]
    cells = sim.Population(3, sim.IF_curr_exp(v_rest=rest, v_reset=-75.0, v_thresh=-50.0))
    other = sim.Population(1, sim.IF_curr_exp(v_rest=-55.0, v_thresh=-50.0))
    cells.record("v", sampling_interval=1.0)
    other.record("v", sampling_interval=1.0)
    sim.run(50.0)
    v = cells.get_data().segments[0].analogsignals[0]
    w = other.get_data().segments[0].analogsignals[0]
    assert v.shape == (51, 3) and w.shape == (51, 1) and float(v.sampling_period) == 1.0
    lsb = 1.2 / 256 / sim.V_SCALE                       # mV of the model per column-ADC code
    settled = np.asarray(v)[5:]                          # cells settle over the first ms (docs/model.md)
    np.testing.assert_allclose(settled, np.broadcast_to(rest, settled.shape), atol=lsb / 2 + 0.13)
    np.testing.assert_allclose(np.asarray(w)[5:], -55.0, atol=lsb / 2 + 0.13)


def test_v_of_two_neurons_on_a_chip_without_column_adcs_names_the_membrane_adc():
    import host.pynn as sim
    sim.setup(url="twin:hicann")
    cells = sim.Population(3, sim.IF_curr_exp())
    with pytest.raises(errors.RecordingError, match="one membrane ADC and no column ADCs"):
        cells.record("v")
    sim.end()


@pytest.mark.parametrize("param, value, message", [
    ("v_thresh", 30.0, r"-105 \.\. 15 mV"),
    ("v_rest", -120.0, r"-105 \.\. 15 mV"),
    ("tau_m", 0.2, r"0\.5 \.\. 511 ms"),
    ("tau_syn_E", 600.0, r"0\.5 \.\. 511 ms"),
])
def test_out_of_range_parameters_name_the_range(sim, param, value, message):
    cells = sim.Population(1, sim.IF_curr_exp(**{param: value}))
    cells.record("spikes")
    with pytest.raises(errors.InvalidParameterValueError, match=message):
        sim.run(10.0)


def test_i_offset_beyond_the_leak_range(sim):
    sim.Population(1, sim.IF_curr_exp(i_offset=20.0, tau_m=10.0, cm=1.0))   # -65 + 200 mV
    with pytest.raises(errors.InvalidParameterValueError, match=r"v_rest \+ i_offset \* tau_m / cm.*-105 \.\. 15"):
        sim.run(10.0)


def test_weight_beyond_the_chip(sim):
    stim = sim.Population(1, sim.SpikeSourceArray(spike_times=Sequence([1.0])))
    cells = sim.Population(1, sim.IF_curr_exp(cm=1.0))
    sim.Projection(stim, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=80.0))
    # 1 uA full scale / (2 pF x 10 x 1000) per nF: 50 nA
    with pytest.raises(errors.ConnectionError, match=r"0 \.\. 50 nA"):
        sim.run(10.0)


def test_delays_other_than_the_chip_latency_refused(sim):
    stim = sim.Population(1, sim.SpikeSourceArray(spike_times=Sequence([1.0])))
    cells = sim.Population(1, sim.IF_curr_exp())
    sim.Projection(stim, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0, delay=1.5))
    with pytest.raises(errors.ConnectionError, match="no programmable delays"):
        sim.run(10.0)


def test_plastic_synapses_not_there_yet(sim):
    from pyNN.standardmodels.synapses import TsodyksMarkramSynapse
    stim = sim.Population(1, sim.SpikeSourceArray(spike_times=Sequence([1.0])))
    cells = sim.Population(1, sim.IF_curr_exp())
    with pytest.raises(Exception):
        sim.Projection(stim, cells, sim.AllToAllConnector(), TsodyksMarkramSynapse())


def test_twin_neuron_takes_cells_and_integer_weights(sim):
    stim = sim.Population(1, sim.SpikeSourceArray(spike_times=Sequence([10.0, 40.0])))
    hw = sim.Population(2, sim.TwinNeuron(i_bias_syn_exc_gm=500))
    sim.Projection(stim, hw, sim.AllToAllConnector(), sim.StaticSynapse(weight=np.array([[63, 1]])))
    hw.record("spikes")
    sim.run(60.0)
    counts = [len(s) for s in hw.get_data().segments[0].spiketrains]
    # 63/63 x 500/1022 uA for 5 ms (5 us on the chip) into 2 pF dwarfs the 0.2 V to threshold; 1/63 of it
    # is 3.9 mV of PSP at most
    assert counts[0] >= 2 and counts[1] == 0
    bad = sim.Population(1, sim.TwinNeuron(v_leak=1500))
    with pytest.raises(errors.InvalidParameterValueError, match=r"integers 0 \.\. 1022"):
        sim.run(10.0)
    del bad


def test_twin_neuron_weights_are_integers(sim):
    stim = sim.Population(1, sim.SpikeSourceArray(spike_times=Sequence([10.0])))
    hw = sim.Population(1, sim.TwinNeuron())
    sim.Projection(stim, hw, sim.AllToAllConnector(), sim.StaticSynapse(weight=2.5))
    with pytest.raises(errors.ConnectionError, match=r"integers of the weight field, 0 \.\. 63"):
        sim.run(10.0)


def test_poisson_rate_and_continuation(sim):
    stim = sim.Population(50, sim.SpikeSourcePoisson(rate=40.0, start=100.0))
    stim.record("spikes")
    sim.run(100.0)
    early = stim.get_data().segments[0].spiketrains
    assert sum(len(s) for s in early) == 0                 # start = 100 ms
    sim.run(1000.0)
    trains = stim.get_data().segments[0].spiketrains
    n = sum(len(s) for s in trains)
    expected = 50 * 40.0 * 1.0                               # 1 s after start
    assert abs(n - expected) < 4 * math.sqrt(expected)


def test_projections_from_and_to_an_assembly(sim):
    """An Assembly as pre and as post: each connection reaches the neuron it
    names (the assembly's index order: its populations one after the other)."""
    a = sim.Population(2, sim.SpikeSourceArray(spike_times=[[5.0], [25.0]]), label="a")
    b = sim.Population(1, sim.SpikeSourceArray(spike_times=[[45.0]]), label="b")
    p = sim.Population(2, sim.IF_curr_exp(tau_m=10.0, v_thresh=-55.0, cm=0.25), label="p")
    q = sim.Population(3, sim.IF_curr_exp(tau_m=20.0, v_thresh=-56.0, cm=0.25), label="q")
    pre, post = a + b, p + q[1:3]                 # 3 sources; 4 neurons: p[0], p[1], q[1], q[2]
    # source k drives post neuron k (weights enough for a spike each); post neuron 3 from source 0 too
    conns = [(0, 0, 3.0, 0.1), (1, 1, 3.0, 0.1), (2, 2, 3.0, 0.1), (0, 3, 3.0, 0.1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prj = sim.Projection(pre, post, sim.FromListConnector(conns), sim.StaticSynapse())
        assert prj.size() == 4 and prj.receptor_type == "excitatory"      # positive weights: the first receptor
        for pop in (p, q):
            pop.record("spikes")
        sim.run(60.0)
    sp = [s.magnitude for s in p.get_data().segments[0].spiketrains]
    sq = [s.magnitude for s in q.get_data().segments[0].spiketrains]

    def fires_after(t, at):                     # a burst within 15 ms of the input, nothing else
        return len(t) >= 1 and at < t[0] < at + 3.0 and t[-1] < at + 15.0

    assert fires_after(sp[0], 5.0) and fires_after(sp[1], 25.0)     # a[0] -> p[0], a[1] -> p[1]
    assert len(sq[0]) == 0                                          # q[0] is not in the assembly
    assert fires_after(sq[1], 45.0) and fires_after(sq[2], 5.0)     # b[0] -> q[1], a[0] -> q[2]


def test_recording_several_membranes_leaves_an_ideal_chips_spikes_alone():
    """The column-ADC reads split the run into pieces of chip advance: on an ideal chip the
    spikes are the same as with one membrane recorded (docs/pynn.md, Recording)."""
    import host.pynn as sim
    trains = []
    for n in (1, 4):
        sim.setup(timestep=0.1, url="twin:dls?mismatch=0")
        stim = sim.Population(8, sim.SpikeSourcePoisson(rate=80.0))
        cells = sim.Population(8, sim.IF_curr_exp(tau_m=10.0))
        sim.Projection(stim, cells, sim.FixedProbabilityConnector(0.5, rng=sim.NumpyRNG(seed=2)),
                       sim.StaticSynapse(weight=0.6))
        cells.record("spikes")
        cells[0:n].record("v", sampling_interval=0.5)
        sim.run(300.0)
        trains.append([np.asarray(t) for t in cells.get_data().segments[0].spiketrains])
        sim.end()
    assert sum(len(t) for t in trains[0]) > 20
    for a, b in zip(*trains):
        np.testing.assert_array_equal(a, b)
