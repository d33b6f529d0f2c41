"""Plasticity from PyNN: PlasticSynapse with a FirmwareRule (host/pynn/plasticity.py).

The learned weights are checked against a host-side model written from the
documented equations, not from the twin's code: the correlation sensors of
docs/model.md ("Correlation sensors": nearest-neighbour pairs, the trace step
eta exp(-dt/tau) (1 - c/c_sat), readings baseline minus trace through the 8-bit
column ADC) fed with the recorded postsynaptic spikes and the known input
times, and the rule's update by firmware.rules.stdp_mult_reference (the
vector unit's semantics in integer NumPy), applied at every period."""
from __future__ import annotations

import numpy as np
import pytest

from pyNN import errors

import host.pynn as sim
from firmware.rules import stdp_add_reference, stdp_mult_reference
from host.pynn.plasticity import ETA_DEFAULT
from isa.profiles import PROFILES

URL = "twin:dls?mismatch=0"
PERIOD = 200.0                       # ms between updates
# The post neuron is driven to fire 1-2 ms after each T: five pairings per period, none in the 60 ms after an
# update starts, because an update reads the sensors row by row (hx: 400 PPU cycles a row half, 25 ms of
# biological time for 8 rows), where the model reads them at one instant.
T = (np.array([40.0, 65.0, 90.0, 115.0, 140.0]) + PERIOD * np.arange(10)[:, None]).ravel()
LAG = 3.0                            # causal inputs LAG before T, acausal ones LAG after
RULE = dict(theta=2, lambda_pos=64, lambda_neg=64)
W_MAX, W0, TAU = 2.0, 0.4, 15.0     # nA, nA, ms


def _network(w0=W0, lambda_pos=64, lambda_neg=64, rule=None, url=URL):
    sim.setup(timestep=0.1, url=url)
    if "hx" in url:
        sim.Population(PROFILES["hx"].columns, sim.IF_curr_exp())     # the cell on array 1: PPU 1 runs the rule
    drive = sim.Population(3, sim.SpikeSourceArray(spike_times=T))
    causal = sim.Population(4, sim.SpikeSourceArray(spike_times=T - LAG))
    acausal = sim.Population(4, sim.SpikeSourceArray(spike_times=T + LAG))
    cell = sim.Population(1, sim.IF_curr_exp(tau_m=10.0, tau_refrac=10.0))
    sim.Projection(drive, cell, sim.AllToAllConnector(), sim.StaticSynapse(weight=W_MAX))
    rule = rule or sim.FirmwareRule("stdp_mult", period=PERIOD, w_max=W_MAX, tau_corr=TAU, theta=2,
                                    lambda_pos=lambda_pos, lambda_neg=lambda_neg)
    pc = sim.Projection(causal, cell, sim.AllToAllConnector(), sim.PlasticSynapse(weight=w0, plasticity_rule=rule))
    pa = sim.Projection(acausal, cell, sim.AllToAllConnector(), sim.PlasticSynapse(weight=w0, plasticity_rule=rule))
    cell.record("spikes")
    return cell, pc, pa


def _model(post, pre, w_int, t_end, reference=stdp_mult_reference, chip="dls", **params):
    """The weight (of the weight field) of a synapse with presynaptic times `pre`
    and postsynaptic spikes `post`, by the documented sensor equations and the
    rule's reference (default stdp_mult with RULE), updated every PERIOD ms from the start."""
    params = params or dict(RULE, w_max=63)
    p = PROFILES[chip]
    a = p.analog
    step = p.hw_to_bio(p.step_seconds) * 1e3
    pre = (np.floor(pre / step) + 1) * step               # an input acts at the end of its step
    tau = p.hw_to_bio(a.corr_tau_full_scale * p.cell_max / round(a.corr_tau_full_scale * p.cell_max /
                                                                  p.bio_to_hw(TAU * 1e-3))) * 1e3
    eta = a.corr_eta_full_scale * round(ETA_DEFAULT * p.cell_max) / p.cell_max
    baseline = round(0.5 * (a.corr_saturation + a.v_max) / a.v_max * p.cell_max) / p.cell_max * a.v_max
    full = 1 << 8

    def reading(trace):
        return np.uint8(min(max(np.rint((baseline - trace) / a.v_max * full), 0), full - 1))

    events = sorted([(t, "post") for t in post] + [(t, "pre") for t in pre])
    c = ac = 0.0
    last_pre = last_post = None
    w = w_int
    k = 0
    for u in np.arange(PERIOD, t_end + PERIOD / 2, PERIOD):
        while k < len(events) and events[k][0] < u:
            t, kind = events[k]
            k += 1
            if kind == "post":
                if last_pre is not None and last_pre < t:
                    c += eta * np.exp(-(t - last_pre) / tau) * (1 - c / a.corr_saturation)
                last_post = t
            else:
                if last_post is not None and last_post <= t:
                    ac += eta * np.exp(-(t - last_post) / tau) * (1 - ac / a.corr_saturation)
                last_pre = t
        new, reset = reference(np.array([[reading(c)]]), np.array([[reading(ac)]]), np.array([[w]], np.uint8),
                               np.zeros((1, 1), np.int64), **params)
        w = int(new[0, 0])
        if reset[0, 0]:
            c = ac = 0.0
    return w


@pytest.mark.parametrize("chip", ["dls", "hx"])
def test_causal_pairs_potentiate_and_acausal_ones_depress_as_the_sensor_model_says(chip):
    cell, pc, pa = _network(url=f"twin:{chip}?mismatch=0")
    sim.run(2000.0)
    post = cell.get_data().segments[0].spiketrains[0].magnitude
    unit = W_MAX / 63                                    # the weight field spans 0 .. w_max (the drive's weight)
    got_c = np.asarray(pc.get("weight", format="array")).ravel() / unit
    got_a = np.asarray(pa.get("weight", format="array")).ravel() / unit
    updates = sim.simulator.state.rule_updates
    sim.end()
    assert len(post) == len(T) and np.all((post - T > 0) & (post - T < 3))   # one spike per drive, just after it
    assert updates == [11]           # one PPU (dls; hx: PPU 1): at the start, then every period to the end
    w0 = round(W0 / unit)
    want_c = _model(post, T - LAG, w0, 2000.0, chip=chip)
    want_a = _model(post, T + LAG, w0, 2000.0, chip=chip)
    assert want_c > w0 + 10 and want_a < w0          # the model: strong potentiation, weak depression
    np.testing.assert_allclose(got_c, want_c, atol=1.01)
    np.testing.assert_allclose(got_a, want_a, atol=1.01)


def test_additive_rule_with_its_bounds():
    """stdp_add: steps of eta/128 per unit of the eligibility, clamped to w_min .. w_max (nA -> the field)."""
    rule = sim.FirmwareRule("stdp_add", period=PERIOD, w_max=1.0, w_min=0.3, tau_corr=TAU, theta=2, eta_pos=40,
                            eta_neg=40)
    cell, pc, pa = _network(rule=rule)
    sim.run(2000.0)
    post = cell.get_data().segments[0].spiketrains[0].magnitude
    unit = W_MAX / 63
    got_c = np.asarray(pc.get("weight", format="array")).ravel() / unit
    got_a = np.asarray(pa.get("weight", format="array")).ravel() / unit
    sim.end()
    w0, lo, hi = round(W0 / unit), int(np.ceil(0.3 / unit)), int(np.floor(1.0 / unit))
    params = dict(theta=2, eta_pos=40, eta_neg=40, w_min=lo, w_max=hi)
    want_c = _model(post, T - LAG, w0, 2000.0, stdp_add_reference, **params)
    want_a = _model(post, T + LAG, w0, 2000.0, stdp_add_reference, **params)
    assert want_c == hi and want_a == lo                 # the model: driven to the bounds
    np.testing.assert_allclose(got_c, want_c, atol=1.01)
    np.testing.assert_allclose(got_a, want_a, atol=1.01)


def test_zero_rates_leave_the_weights_and_reset_restores_them():
    cell, pc, pa = _network(lambda_pos=0, lambda_neg=0)
    sim.run(500.0)
    unit = W_MAX / 63
    np.testing.assert_allclose(pc.get("weight", format="array"), round(W0 / unit) * unit, rtol=0.01)  # unchanged
    sim.end()
    cell, pc, pa = _network()
    sim.run(500.0)
    learned = np.asarray(pc.get("weight", format="array")).ravel()
    assert (learned > W0 + 0.1).all()
    sim.reset()                                          # PyNN: weights back to their initial values
    np.testing.assert_array_equal(pc.get("weight", format="array").ravel(), W0)
    sim.run(500.0)                                       # the new segment learns from the start again
    np.testing.assert_allclose(pc.get("weight", format="array").ravel(), learned)
    sim.end()


def test_a_plastic_synapse_may_start_at_zero():
    cell, pc, pa = _network(w0=0.0)
    sim.run(1000.0)
    assert (np.asarray(pc.get("weight", format="array")) > 0).all()     # grew from 0: its synapse exists
    sim.end()


def test_bad_rules_and_chips_are_refused_with_the_reason():
    with pytest.raises(errors.InvalidParameterValueError, match="unknown firmware rule 'nope'"):
        sim.FirmwareRule("nope")
    with pytest.raises(errors.InvalidParameterValueError, match="reward while the network runs"):
        sim.FirmwareRule("stdp_reward", w_max=1.0, theta=1, eta=1, reward=1)
    with pytest.raises(errors.InvalidParameterValueError, match="missing parameter.*lambda_neg"):
        sim.FirmwareRule("stdp_mult", theta=2, lambda_pos=3)
    with pytest.raises(errors.InvalidParameterValueError, match="theta = 300 outside 0 .. 127"):
        sim.FirmwareRule("stdp_mult", theta=300, lambda_pos=3, lambda_neg=3)
    with pytest.raises(errors.InvalidParameterValueError, match="plasticity_rule=FirmwareRule"):
        sim.PlasticSynapse(weight=1.0)
    sim.setup(url=URL)
    src = sim.Population(2, sim.SpikeSourceArray(spike_times=[1.0]))
    cell = sim.Population(2, sim.IF_curr_exp())
    rule = sim.FirmwareRule("stdp_mult", w_max=1.0, tau_corr=1e5, **RULE)
    sim.Projection(src, cell, sim.AllToAllConnector(), sim.PlasticSynapse(weight=0.5, plasticity_rule=rule))
    with pytest.raises(errors.InvalidParameterValueError, match=r"tau_corr = 100000 ms is outside the chip's 5 \.\. "):
        sim.run(10.0)
    sim.end()
    sim.setup(url=URL)
    src = sim.Population(2, sim.SpikeSourceArray(spike_times=[1.0]))
    cell = sim.Population(2, sim.IF_curr_exp())
    rule = sim.FirmwareRule("stdp_mult", w_max=1.0, period=0.0001, **RULE)
    sim.Projection(src, cell, sim.AllToAllConnector(), sim.PlasticSynapse(weight=0.5, plasticity_rule=rule))
    with pytest.raises(errors.InvalidParameterValueError, match=r"period = 0.0001 ms is outside the chip's 1 \.\. "):
        sim.run(10.0)
    sim.end()
    sim.setup(url=URL)
    a = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))
    b = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))
    cell = sim.Population(2, sim.IF_curr_exp())
    for src, lam in ((a, 3), (b, 4)):
        rule = sim.FirmwareRule("stdp_mult", w_max=1.0, theta=2, lambda_pos=lam, lambda_neg=3)
        sim.Projection(src, cell, sim.AllToAllConnector(), sim.PlasticSynapse(weight=0.5, plasticity_rule=rule))
    with pytest.raises(errors.InvalidParameterValueError, match="another rule"):
        sim.run(10.0)
    sim.end()
    sim.setup(url="twin:hicann")
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))
    cell = sim.Population(1, sim.IF_curr_exp())
    sim.Projection(src, cell, sim.AllToAllConnector(),
                   sim.PlasticSynapse(weight=0.5, plasticity_rule=sim.FirmwareRule("stdp_mult", w_max=1.0, **RULE)))
    with pytest.raises(errors.NoModelAvailableError, match="no plasticity processor"):
        sim.run(10.0)
    sim.end()


def test_pynn_stdp_mechanism_is_refused_with_the_reason():
    sim.setup(url=URL)
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))
    cell = sim.Population(1, sim.IF_curr_exp())
    with pytest.raises(errors.NoModelAvailableError, match="PlasticSynapse with a firmware rule"):
        stdp = sim.STDPMechanism(timing_dependence=sim.SpikePairRule(),
                                 weight_dependence=sim.AdditiveWeightDependence(), weight=0.5)
        sim.Projection(src, cell, sim.AllToAllConnector(), stdp)
    with pytest.raises(errors.NoModelAvailableError, match="no short-term plasticity"):
        sim.TsodyksMarkramSynapse(U=0.5)
    sim.end()


def test_weights_over_time_through_pyNN_callbacks():
    """PyNN's run(t, callbacks=[...]) (simple_STDP's WeightRecorder): each chunk replays
    the segment, so the trajectory ends where one run of the whole time ends."""
    cell, pc, pa = _network()
    seen = []

    def recorder(t):
        seen.append(float(np.mean(pc.get("weight", format="array"))))
        return t + 400.0

    sim.run(2000.0, callbacks=[recorder])
    chunked = np.asarray(pc.get("weight", format="array")).ravel()
    sim.end()
    cell, pc, pa = _network()
    sim.run(2000.0)
    np.testing.assert_array_equal(chunked, np.asarray(pc.get("weight", format="array")).ravel())
    sim.end()
    assert len(seen) == 6 and seen[0] == W0 and np.all(np.diff(seen) >= 0) and seen[-1] > seen[1] > W0
