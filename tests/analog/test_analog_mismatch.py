"""Fixed-pattern and temporal noise against the profile's Mismatch record.

Expected spreads come from the magnitudes in isa/profiles.py and the
transfer functions of docs/model.md: a voltage cell at V spreads by
sqrt(offset^2 + (gain * V)^2), a current cell at I by sqrt(offset^2 + (gain * I)^2),
a time constant set by a current by the same relative amount (to first order).
Sample standard deviations of 512 neurons carry about 3 % statistical error;
the tolerances below are 15 %.
"""
from __future__ import annotations

import numpy as np
import pytest

from _analog_helpers import Bench, amps, lsb_for_tau, lsb_for_volts, volts
from isa.profiles import PROFILES
from twin.analog import kernel as K

HX = PROFILES["hx"]
CELLS = dict(v_leak=lsb_for_volts(HX, 0.4), v_threshold=lsb_for_volts(HX, 0.6), v_reset=lsb_for_volts(HX, 0.35),
             i_bias_leak=lsb_for_tau(HX, 10e-6), i_bias_syn_exc_gm=100, i_bias_syn_exc_tau=lsb_for_tau(HX, 5e-6))


def configured(serial, seed=0, profile="hx", **opts):
    b = Bench(profile, serial=serial, seed=seed, **opts)
    n = np.arange(b.p.neurons)
    b.cells(n, **({k: v for k, v in CELLS.items()} if profile != "hicann" else {}))
    b.neurons(n, enable=1)
    b.advance(12 * 1000)
    return b


def spread_v(p, v):
    m = p.mismatch
    return np.hypot(m.cell_v_offset, m.cell_v_gain * v)


def spread_rel_i(p, i):
    m = p.mismatch
    return np.hypot(m.cell_i_offset, m.cell_i_gain * i) / i


@pytest.fixture(scope="module")
def hx11():
    return configured(11)


def test_leak_potential_spread_measured_with_the_membrane_adc(hx11):
    """Each neuron at rest, sampled by the membrane ADC (20 samples averaged)."""
    b = hx11
    rest = np.zeros(b.p.neurons)
    for n in range(b.p.neurons):
        b.write("madc", "config", [0], b.field_words("madc", "config", enable=1, source=0, neuron=n, period=12))
        act = b.advance(b.chip.now + 12 * 20)
        rest[n] = act.madc_values.mean() * b.p.analog.adc_v_max / 1024
    v = volts(b.p, CELLS["v_leak"])
    temporal = b.p.mismatch.cell_temporal * b.p.analog.v_max / 1022
    want = np.hypot(spread_v(b.p, v), temporal)
    assert abs(rest.std() - want) < 0.15 * want
    assert abs(rest.mean() - v) < 3 * want / np.sqrt(b.p.neurons) + 0.0015    # no bias beyond half an ADC step


def test_threshold_time_constant_and_gain_spread(hx11):
    """The effective model parameters of the configured neurons (the network's
    cell outputs)."""
    b = hx11
    net = b.chip.core.net
    cells, _ = net.cell_outputs(b.chip.now, True)
    col = lambda name: cells[:, b.p.neuron_cells.index(name)]
    vth = volts(b.p, CELLS["v_threshold"])
    assert abs(col("v_threshold").std() - spread_v(b.p, vth)) < 0.15 * spread_v(b.p, vth)
    P, _ = net.neuron_params(cells, np.zeros(b.p.neurons, np.int64))
    tau_m = -b.p.step_seconds / np.log(P[K.PLEAK])
    want = spread_rel_i(b.p, amps(b.p, CELLS["i_bias_leak"]))
    assert abs(tau_m.std() / tau_m.mean() - want) < 0.15 * want
    gain = P[K.GEXC]
    want = spread_rel_i(b.p, amps(b.p, CELLS["i_bias_syn_exc_gm"]))
    assert abs(gain.std() / gain.mean() - want) < 0.15 * want
    syn = net.fp.synapse                                      # per-synapse amplitude factors
    assert abs(syn.std() - b.p.mismatch.synapse_amp) < 0.05 * b.p.mismatch.synapse_amp
    assert abs(syn.mean() - 1) < 0.01


def test_correlation_fixed_pattern(hx11):
    fp = hx11.chip.core.net.fp
    m = hx11.p.mismatch
    assert abs(fp.corr_eta_c.std() - m.corr_amp) < 0.05 * m.corr_amp
    assert abs(np.log(fp.corr_itau_c).std() - m.corr_tau) < 0.05 * m.corr_tau
    ratio = fp.corr_eta_a.mean() / fp.corr_eta_c.mean()                # causal/acausal asymmetry
    assert abs(ratio - (1 + m.corr_asymmetry)) < 0.01


def run_experiment(b):
    """Poisson input into every neuron through row 0..31; returns spikes and a membrane trace."""
    rng = np.random.default_rng(0)
    W = rng.integers(0, 64, (2 * b.p.rows, b.p.columns))
    b.synapses(W, np.zeros_like(W))
    b.drivers(np.arange(32), enable=1)
    t = np.sort(rng.integers(b.chip.now, b.chip.now + 12 * 3000, 400))
    b.write("madc", "config", [0], b.field_words("madc", "config", enable=1, source=0, neuron=3, period=24))
    act = b.advance(b.chip.now + 12 * 3100, t, rng.integers(0, 32, len(t)) << 6)
    return act.spike_times, act.spike_labels, act.madc_values


def test_one_serial_repeats_exactly_and_another_is_another_chip():
    a = run_experiment(configured(21))
    again = run_experiment(configured(21))
    other = run_experiment(configured(22))
    assert len(a[0]) > 50
    for x, y in zip(a, again):
        assert np.array_equal(x, y)                       # bit-identical
    assert not np.array_equal(a[2], other[2])
    assert not (len(a[0]) == len(other[0]) and np.array_equal(a[0], other[0]))


def test_seed_changes_only_the_temporal_noise():
    """Same serial, another seed: the same fixed pattern; the parameters of a run
    differ by the temporal noise (Mismatch.cell_temporal LSB per cell and run:
    the difference of two runs spreads by sqrt(2) times that, within 15 %)."""
    b1, b2 = configured(21, seed=1), configured(21, seed=2)
    n1, n2 = b1.chip.core.net, b2.chip.core.net
    assert np.array_equal(n1.fp.cell_offset, n2.fp.cell_offset)
    c1, _ = n1.cell_outputs(b1.chip.now, True)
    c2, _ = n2.cell_outputs(b2.chip.now, True)
    k = HX.neuron_cells.index("v_leak")
    d = c1[:, k] - c2[:, k]
    want = np.sqrt(2) * HX.mismatch.cell_temporal * HX.analog.v_max / 1022 * (1 + 0.0)
    assert abs(d.std() - want) < 0.15 * want
    b1.advance(b1.chip.now + 12)                          # the next run draws new temporal noise
    c1b, _ = n1.cell_outputs(b1.chip.now, True)
    assert not np.array_equal(c1b, c1)


def test_mismatch_off_gives_identical_neurons():
    b = configured(21, mismatch=False)
    cells, _ = b.chip.core.net.cell_outputs(b.chip.now, True)
    assert np.ptp(cells[:, b.p.neuron_cells.index("v_leak")]) == 0
    assert np.ptp(b.chip.core.net.fp.synapse) == 0


def test_floating_gates_vary_from_write_to_write_and_capmem_does_not():
    """hicann: rewriting a floating gate with the same value lands each time
    somewhere else (standard deviation Mismatch.cell_write LSB, within 35 %
    for 40 writes); a capacitive-memory cell lands on the same value."""
    for name, want in (("hicann", PROFILES["hicann"].mismatch.cell_write), ("dls", 0.0)):
        b = Bench(name, serial=4)
        cell = 3
        landed = []
        for _ in range(40):
            b.write(b.pm, "neuron", [cell], 500)
            b.advance(b.chip.now + 12 * 200)                   # settle
            landed.append(b.chip.core.net.cells.at(b.chip.now)[cell])
        sd = np.std(landed)
        if want:
            assert abs(sd - want) < 0.35 * want
        else:
            assert sd < 1e-3                                   # settled to 1e-3 LSB
