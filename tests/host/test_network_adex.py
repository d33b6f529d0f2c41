"""The AdEx terms in the network layer (host/network.py): the cells and the
NeuronConfig switches written for v_exp, delta_t, a, b, tau_w (expected cells
by hand from the transfers of docs/model.md "Parameter cells"), the range
errors, and the LIF left as it was."""
from __future__ import annotations

import numpy as np
import pytest

import host
from host.network import Network, PlacementError


def _read(conn, neuron):
    p, rm = conn.profile, conn.regmap
    memory = "capmem" if p.param_memory == "capmem" else "floating_gate"
    table = rm.addresses(memory, "neuron").reshape(p.neurons, len(p.neuron_cells))
    value = rm.register(memory, "neuron").field("value")
    prog = conn.program()
    cells = prog.read_words(table[neuron])
    cfg = prog.read(host.NeuronOnChip(neuron), host.NeuronConfig)
    conn.run(prog)
    held = dict(zip(p.neuron_cells, value.extract(cells.values.astype(np.int64)).tolist()))
    return held, cfg.value


def test_adex_cells_and_switches_written():
    # dls: V_T 0.55 V -> 0.55 / 1.2 x 1022 = 468.4; Delta_T 0.02 V -> 0.02 / 0.1 x 1022 = 204.4;
    # a 40 nS -> 40e-9 / (2 pF / 0.5 us = 4 uS) x 1022 = 10.2; b 20 nA -> 20e-9 / 1 uA x 1022 = 20.4;
    # tau_w 20 ms biological = 20 us hardware -> 0.5 us x 1022 / 20 us = 25.55
    net = Network()
    lif = net.population(2, label="lif")
    adex = net.population(2, label="adex", v_exp=0.55, delta_t=0.02, a=40e-9, b=20e-9, tau_w=20e-3)
    only_exp = net.population(1, label="exp", v_exp=0.5, delta_t=0.01)
    with host.connect("twin:dls?mismatch=0") as conn:
        pl = net.configure(conn)
        held, cfg = _read(conn, int(pl.neurons[adex][1]))
        assert (held["v_exp"], held["i_bias_exp"], held["i_bias_adapt_a"], held["i_bias_adapt_b"],
                held["i_bias_adapt_tau"]) == (468, 204, 10, 20, 26)
        assert (cfg.exp_enable, cfg.adapt_enable) == (1, 1)
        held_lif, cfg_lif = _read(conn, int(pl.neurons[lif][0]))
        assert (cfg_lif.exp_enable, cfg_lif.adapt_enable) == (0, 0)
        assert held_lif["i_bias_adapt_b"] == 0 and held_lif["i_bias_exp"] == 0
        held_e, cfg_e = _read(conn, int(pl.neurons[only_exp][0]))
        assert (cfg_e.exp_enable, cfg_e.adapt_enable) == (1, 0)
        assert (held_e["v_exp"], held_e["i_bias_exp"]) == (426, 102)     # 0.5 / 1.2 x 1022, 0.01 / 0.1 x 1022
        # switching adaptation on later rewrites the configuration
        net.set_params(conn, lif, tau_w=50e-3, b=10e-9)
        held_lif, cfg_lif = _read(conn, int(pl.neurons[lif][0]))
        assert cfg_lif.adapt_enable == 1 and held_lif["i_bias_adapt_b"] == 10 and held_lif["i_bias_adapt_tau"] == 10


def test_adaptation_slows_a_driven_neuron():
    """Leak above threshold: the LIF fires regularly; with b > 0 every spike
    adds to w and the intervals grow from the first to the last.  The AdEx
    neuron starts the run at rest (it is switched on after the settling wait):
    its first spike comes in the first steps (rest above threshold)."""
    net = Network()
    lif = net.population(1, label="lif", v_leak=0.8, v_threshold=0.6, tau_refrac=0.5e-3)
    ada = net.population(1, label="ada", v_leak=0.8, v_threshold=0.6, tau_refrac=0.5e-3, b=5e-9, tau_w=100e-3)
    lif.record("spikes"), ada.record("spikes")
    with host.connect("twin:dls?mismatch=0") as conn:
        res = net.run(conn, 0.3)
    t_lif, t_ada = res.spikes(lif)[0], res.spikes(ada)[0]
    isi_lif, isi_ada = np.diff(t_lif), np.diff(t_ada)
    assert np.ptp(isi_lif) < 0.2e-3                      # regular: one step of jitter at most
    assert len(t_ada) < len(t_lif)
    assert t_ada[0] < 0.2e-3
    assert np.all(np.diff(isi_ada) > -0.2e-3) and isi_ada[-1] > 1.5 * isi_ada[0]


@pytest.mark.parametrize("params, message", [
    (dict(v_exp=1.3, delta_t=0.02), r"adex: v_exp = 1.3 V is outside the dls chip's range 0 \.\. 1.2 V"),
    (dict(v_exp=0.5, delta_t=0.2), r"delta_t = 0.2 V is outside the dls chip's range 9.78474e-05 \.\. 0.1 V"),
    (dict(v_exp=0.5, delta_t=0.0), r"delta_t = 0 V is outside the dls chip's range 9.78474e-05 \.\. 0.1 V"),
    (dict(a=5e-6, tau_w=0.1), r"a = 5e-06 S is outside the dls chip's range 0 \.\. 4e-06 S"),
    (dict(b=-1e-9, tau_w=0.1), r"b = -1e-09 A is outside the dls chip's range 0 \.\. 1e-06 A"),
    (dict(b=1e-9, tau_w=1.0), r"tau_w = 1 s is outside the dls chip's range 0.0005 \.\. 0.511 s"),
])
def test_adex_ranges_name_parameter_value_and_range(params, message):
    net = Network()
    net.population(1, label="adex", **params)
    with host.connect("twin:dls?mismatch=0") as conn:
        with pytest.raises(PlacementError, match=message):
            net.configure(conn)


def test_adex_parameters_must_come_in_pairs():
    with pytest.raises(ValueError, match="p: the exponential term needs v_exp and delta_t; delta_t not given"):
        Network().population(1, label="p", v_exp=0.5)
    with pytest.raises(ValueError, match=r"adaptation \(a, b\) needs tau_w"):
        Network().population(1, b=1e-9)


def test_calibrated_network_gives_adex_parameters_their_nominal_cells():
    """A calibration has no AdEx quantities: under CalibratedResolver the AdEx
    cells are the nominal ones (the same numbers as above), the LIF cells the
    calibration's own per neuron."""
    from host.calibration import calibrate
    conn = host.connect("twin:dls?serial=2")
    with conn:
        cal = calibrate(conn, neurons=np.arange(4), cache=False, progress=False)
        net = Network(calibration=cal)
        pop = net.population(4, label="adex", v_exp=0.55, delta_t=0.02, a=40e-9, b=20e-9, tau_w=20e-3)
        pl = net.configure(conn)
        leaks = set()
        for n in pl.neurons[pop]:
            held, cfg = _read(conn, int(n))
            assert (held["v_exp"], held["i_bias_exp"], held["i_bias_adapt_a"], held["i_bias_adapt_b"],
                    held["i_bias_adapt_tau"]) == (468, 204, 10, 20, 26)
            assert (cfg.exp_enable, cfg.adapt_enable) == (1, 1)
            leaks.add(held["v_leak"])
        assert len(leaks) > 1                 # the calibrated leak differs from neuron to neuron


def test_adex_cells_on_hicann_by_their_roles():
    """The same parameters on hicann's floating gates, through its scales: V_T
    0.9 V -> 0.9 / 1.8 x 1022 = 511; Delta_T 0.02 V -> 204.4; a 40 nS -> 40e-9 /
    (0.2 pF / 0.1 us = 2 uS) x 1022 = 20.4; b 20 nA -> 20.4; tau_w 20 ms biological
    = 2 us at 10 000x -> 0.1 us x 1022 / 2 us = 51.1."""
    net = Network()
    pop = net.population(1, v_exp=0.9, delta_t=0.02, a=40e-9, b=20e-9, tau_w=20e-3)
    with host.connect("twin:hicann?mismatch=0") as conn:
        pl = net.configure(conn)
        held, cfg = _read(conn, int(pl.neurons[pop][0]))
    assert (held["v_exp"], held["i_rexp"], held["i_gladapt"], held["i_fire"], held["i_radapt"]) == (511, 204, 20, 20, 51)
    assert (cfg.exp_enable, cfg.adapt_enable) == (1, 1)
