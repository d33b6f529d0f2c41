"""The network layer (host/network.py): placement, its errors, weights written
and read back, and an analytic check of a driven population's rate."""
from __future__ import annotations

import math

import numpy as np
import pytest

import host
from host.network import (AllToAll, FixedProbability, FromMatrix, Network, OneToOne, PlacementError)
from isa.profiles import PROFILES


def small_net(wmax=63):
    net = Network()
    stim = net.poisson_source(8, rate=40.0, label="stim")
    exc = net.population(16, label="exc")
    inh = net.population(4, label="inh")
    net.project(stim, exc, FixedProbability(0.5, seed=2), weight=wmax * 2 // 5)
    net.project(exc, inh, AllToAll(), weight=wmax // 2)
    net.project(inh, exc, AllToAll(), weight=-(wmax // 3))
    return net, stim, exc, inh


def test_placement_neurons_rows_and_signs():
    net, stim, exc, inh = small_net()
    pl = net.place(PROFILES["dls"])
    assert pl.neurons[exc].tolist() == list(range(16)) and pl.neurons[inh].tolist() == list(range(16, 20))
    # one row per source channel and sign: 8 stim + 16 exc (excitatory), 4 inh (inhibitory)
    assert len(pl.drivers) == 28
    inh_rows = [r for r, (_, i, _) in pl.drivers.items() if i]
    assert len(inh_rows) == 4
    sources = {src for (_, _, src) in pl.drivers.values()}
    assert sources == {0, 2}                                 # external and recurrent rows
    assert len({a for (a, _, _) in pl.drivers.values()}) == 28   # every source channel its own address


def test_plastic_rows_come_first_in_each_array_and_zero_weights_keep_their_synapse():
    """A firmware rule given rows = plastic_rows[array] updates exactly the plastic synapses."""
    net = Network()
    static_src = net.poisson_source(3, rate=10.0, label="static")      # placed first by order, not by plasticity
    plastic_src = net.poisson_source(4, rate=10.0, label="plastic")
    pop = net.population(8, label="pop")
    net.project(static_src, pop, AllToAll(), weight=20)
    w = np.zeros((4, 8), np.int64)
    w[0] = -5
    mask = np.ones((4, 8), bool)
    net.project(plastic_src, pop, FromMatrix(w), plastic=True, mask=mask, inhibitory=True)
    pl = net.place(PROFILES["dls"])
    assert pl.plastic_rows.tolist() == [4]
    plastic_rows = sorted(r for (src, _, _, _), r in pl.rows.items() if src is plastic_src)
    assert plastic_rows == [0, 1, 2, 3]                                 # rows 0 .. 3, weight 0 included
    assert all(pl.drivers[r][1] == 1 for r in plastic_rows)            # the inhibitory rows the mask asked for
    assert pl.weights[0, :8].tolist() == [5] * 8 and not pl.weights[1:4].any()
    assert sorted(r for (src, _, _, _), r in pl.rows.items() if src is static_src) == [4, 5, 6]
    with pytest.raises(ValueError, match="mask"):
        net.project(plastic_src, pop, FromMatrix(w), plastic=True, mask=np.zeros((4, 8), bool))
    net2 = Network()
    src = net2.poisson_source(1, rate=10.0)
    a, b = net2.population(2), net2.population(2)
    net2.project(src, a, AllToAll(), weight=3, plastic=True)
    net2.project(src, b, AllToAll(), weight=3)
    with pytest.raises(PlacementError, match="plastic and static synapses of one sign in array 0"):
        net2.place(PROFILES["dls"])


def test_signed_projection_from_one_source_gets_both_rows():
    net = Network()
    src = net.spike_source([[0.01]], label="s")
    pop = net.population(2)
    net.project(src, pop, FromMatrix(np.array([[10, -10]])))
    pl = net.place(PROFILES["dls"])
    assert sorted(i for (_, i, _) in pl.drivers.values()) == [0, 1]
    assert len({a for (a, _, _) in pl.drivers.values()}) == 1     # both rows take the source's address


@pytest.mark.parametrize("build, message", [
    (lambda n: n.population(33), "33 neurons, the dls chip 32 \\(1 too many\\)"),
    (lambda n: n.project(n.poisson_source(40, 10.0), n.population(2), AllToAll(), weight=5),
     "synapse array 0 needs 40 rows .* has 32 \\(8 too many\\)"),
    (lambda n: n.project(n.poisson_source(2, 10.0), n.population(2), OneToOne(), weight=64),
     "weight 64 beyond the 6-bit weight field"),
    (lambda n: (n.population(2).record("v"), n.population(2).record("v", 1)),
     "2 membrane recordings.*one membrane ADC \\(1 too many\\)"),
])
def test_what_does_not_fit_names_the_resource(build, message):
    net = Network()
    build(net)
    with pytest.raises(PlacementError, match=message):
        net.place(PROFILES["dls"])


def test_populations_pinned_to_an_array():
    net = Network()
    a = net.population(10, label="a")
    b = net.population(20, label="b", array=1)
    pl = net.place(PROFILES["hx"])
    assert pl.neurons[b].tolist() == list(range(256, 276)) and pl.neurons[a].tolist() == list(range(10))
    net.population(240, label="c", array=1)
    with pytest.raises(PlacementError, match="c: 240 neurons on array 1, 236 left there \\(4 too many\\)"):
        net.place(PROFILES["hx"])


def test_unknown_parameters_and_bad_connectors_are_refused():
    net = Network()
    with pytest.raises(ValueError, match="unknown neuron parameter.*tau_m\\b"):
        net.population(2, tau_m=1e-3)
    with pytest.raises(ValueError, match="OneToOne needs equal sizes"):
        net.project(net.poisson_source(3, 1.0), net.population(2), OneToOne(), weight=1)


@pytest.mark.parametrize("url", ["twin:dls?serial=4", "twin:hx?serial=4", "twin:hicann?serial=4"])
def test_weights_written_and_read_back(url):
    with host.connect(url) as conn:
        net, stim, exc, inh = small_net((1 << conn.profile.weight_bits) - 1)
        net.configure(conn)
        for proj in net.projections:
            assert (net.read_weights(conn, proj) == proj.weights).all()
        proj = net.projections[2]                             # inh -> exc, negative
        wmax = (1 << conn.profile.weight_bits) - 1
        new = -np.minimum(np.arange(proj.weights.size).reshape(proj.weights.shape) % (wmax + 1), wmax)
        new[proj.weights == 0] = 0
        new[(new == 0) & (proj.weights != 0)] = -1
        net.write_weights(conn, proj, new)
        assert (net.read_weights(conn, proj) == new).all()
        with pytest.raises(PlacementError, match="no excitatory row in array 0"):
            net.write_weights(conn, proj, -new)           # inh sources have no excitatory rows
        proj0 = net.projections[0]                        # stim -> exc: flips need rows the sources lack too
        flipped = proj0.weights.copy()
        flipped[0, np.flatnonzero(flipped[0])[0]] *= -1
        with pytest.raises(PlacementError, match="no inhibitory row"):
            net.write_weights(conn, proj0, flipped)


def test_weights_change_sign_where_both_rows_exist():
    net = Network()
    src = net.spike_source([[0.01], [0.02]], label="s")
    pop = net.population(3)
    proj = net.project(src, pop, FromMatrix(np.array([[5, -5, 0], [7, 0, -7]])))
    with host.connect("twin:dls?serial=1") as conn:
        net.configure(conn)
        new = np.array([[-4, 6, 3], [0, -2, 7]])
        net.write_weights(conn, proj, new)                # flips, a new synapse, a removed one
        assert (net.read_weights(conn, proj) == new).all()


def test_spikes_come_back_per_population_in_biological_time():
    net = Network()
    t = [[0.010, 0.020], [0.015]]
    src = net.spike_source(t, label="s")
    pop = net.population(2, v_threshold=0.45, tau_syn_exc=1e-3, tau_refrac=4e-3, gm_exc=600)
    net.project(src, pop, OneToOne(), weight=63)
    pop.record("spikes")
    with host.connect("twin:dls?serial=1&mismatch=0") as conn:
        res = net.run(conn, duration=0.05)
    times, idx = res.spikes(pop)
    assert res.counts(pop).tolist() == [2, 1]
    for tt, i in zip(times, idx):                              # each output spike follows its input within 2 ms
        assert any(0 <= tt - s < 2e-3 for s in t[i])


def test_driven_population_reaches_the_predicted_rate():
    """Ideal chip: N Poisson inputs at rate r, weight w: mean current N r I0 tau_syn
    with I0 = w / w_max x gain / 8 x I_gm (docs/model.md, "Synapses"), I_gm = gm /
    1022 x i_max; the LIF rate 1 / (t_ref + tau_m ln((V_inf - V_reset) / (V_inf - V_th)))
    at V_inf = E_l + I / g_L.  Many small inputs: within 10 %."""
    p = PROFILES["dls"]
    a = p.analog
    n_in, rate, w, gm = 30, 400.0, 6, 60
    params = dict(v_leak=0.40, v_reset=0.35, v_threshold=0.50, tau_mem=10e-3, tau_syn_exc=5e-3,
                  tau_refrac=2e-3, gm_exc=gm)
    net = Network()
    src = net.poisson_source(n_in, rate, seed=3)
    pop = net.population(16, **params)
    net.project(src, pop, AllToAll(), weight=w)
    with host.connect("twin:dls?serial=1&mismatch=0") as conn:
        res = net.run(conn, duration=2.0)
    cell = lambda v: round(v / a.v_max * 1022) / 1022 * a.v_max          # what the cells hold
    tau_cell = lambda t: a.tau_full_scale * 1022 / round(a.tau_full_scale / p.bio_to_hw(t) * 1022)
    tau_m, tau_s = tau_cell(params["tau_mem"]), tau_cell(params["tau_syn_exc"])
    i0 = w / 63 * 8 / 8 * gm / 1022 * a.i_max
    mean_i = n_in * rate * p.speedup * i0 * tau_s
    g_l = a.c_mem / tau_m
    v_inf = cell(params["v_leak"]) + mean_i / g_l
    e_l, v_r, v_th = cell(params["v_leak"]), cell(params["v_reset"]), cell(params["v_threshold"])
    assert v_inf > v_th + 0.02                                          # mean-driven regime
    t_ref = math.ceil(p.bio_to_hw(params["tau_refrac"]) / 8e-9 / p.analog.step_ticks) * p.analog.step_ticks * 8e-9
    period_hw = t_ref + tau_m * math.log((v_inf - v_r) / (v_inf - v_th))
    predicted = 1 / (period_hw * p.speedup)
    assert res.rates(pop).mean() == pytest.approx(predicted, rel=0.10)
    assert e_l < v_th


# --------------------------------------------------------------------------- with a calibration
def _calibrated(url, neurons):
    from host.calibration import calibrate
    conn = host.connect(url)
    return conn, calibrate(conn, neurons=np.arange(neurons), cache=False, progress=False)


def test_calibrated_population_fires_as_predicted_and_alike():
    """The analytic check on a chip with mismatch: through its calibration every
    neuron sits at the targets, so the population's rate is what the same
    formula predicts for an ideal neuron (within 5 %), and the neuron-to-neuron
    spread of rates is below 0.4 of the uncalibrated chip's."""
    from host.calibration_fit import nominal_cell
    p = PROFILES["dls"]
    a = p.analog
    conn, cal = _calibrated("twin:dls?serial=2", 32)
    t = cal.targets
    gm = int(nominal_cell("psp_exc", t.psp_exc, p, t))     # the cell an ideal neuron needs for the PSP target
    params = dict(v_leak=t.leak, v_reset=t.reset, v_threshold=0.50, tau_mem=p.hw_to_bio(t.tau_mem),
                  tau_syn_exc=p.hw_to_bio(t.tau_syn_exc), tau_refrac=2e-3, gm_exc=gm)
    n_in, rate, w = 30, 400.0, 2
    rates = {}
    with conn:
        for name, kwargs in (("calibrated", dict(calibration=cal)), ("nominal", {})):
            net = Network(**kwargs)
            src = net.poisson_source(n_in, rate, seed=3)
            pop = net.population(32, **params)
            net.project(src, pop, AllToAll(), weight=w)
            rates[name] = net.run(conn, duration=2.0).rates(pop)
    tau_m, tau_s = t.tau_mem, t.tau_syn_exc                 # hardware s, as calibrated
    i0 = w / 63 * gm / 1022 * a.i_max
    v_inf = t.leak + n_in * rate * p.speedup * i0 * tau_s * tau_m / a.c_mem
    t_ref = math.ceil(p.bio_to_hw(2e-3) / 8e-9 / a.step_ticks) * a.step_ticks * 8e-9
    predicted = 1 / ((t_ref + tau_m * math.log((v_inf - t.reset) / (v_inf - 0.50))) * p.speedup)
    assert v_inf > 0.52
    assert rates["calibrated"].mean() == pytest.approx(predicted, rel=0.05)
    spread = {k: np.std(r) / np.mean(r) for k, r in rates.items()}
    assert spread["calibrated"] < 0.4 * spread["nominal"], spread


def test_calibrated_resolver_reaches_parameters_beside_the_targets():
    """Parameters other than the calibration's targets go through each neuron's
    transfer line: judged by the twin's truth, their spread stays at most 0.3 of
    the uncalibrated one and the mean on the value (capacitive memory, hx)."""
    from _truth import deviation, true_quantities
    conn, cal = _calibrated("twin:hx?serial=3", 48)
    p = conn.profile
    t = cal.targets
    params = dict(v_leak=0.45, v_reset=0.35, v_threshold=0.65, tau_mem=p.hw_to_bio(t.tau_mem) * 1.5,
                  tau_syn_exc=p.hw_to_bio(t.tau_syn_exc) * 0.7, tau_syn_inh=p.hw_to_bio(t.tau_syn_inh) * 1.3)
    want = dict(leak=0.45, reset=0.35, threshold=0.65, tau_mem=t.tau_mem * 1.5, tau_syn_exc=t.tau_syn_exc * 0.7,
                tau_syn_inh=t.tau_syn_inh * 1.3)
    with conn:
        truth = {}
        for name, kwargs in (("calibrated", dict(calibration=cal)), ("nominal", {})):
            net = Network(**kwargs)
            pop = net.population(40, **params)
            pl = net.configure(conn)
            truth[name] = true_quantities(conn, t, pl.neurons[pop])
    for q, v in want.items():
        sd = {k: np.std(deviation(q, truth[k][q], v)) for k in truth}
        mean = np.mean(deviation(q, truth["calibrated"][q], v))
        assert sd["calibrated"] <= 0.3 * sd["nominal"], (q, sd)
        assert abs(mean) <= (2e-3 if q in ("leak", "reset", "threshold") else 0.02), (q, mean)


def test_floating_gates_keep_what_the_calibration_landed():
    """On hicann every write of a floating gate lands anew: configuring a
    network at the calibration's targets writes none of the calibrated cells
    again, so each neuron keeps the landed values the calibration measured."""
    from _truth import _chip
    from host.calibration_fit import nominal_cell
    conn, cal = _calibrated("twin:hicann?serial=2", 24)
    p = conn.profile
    t = cal.targets
    with conn:
        held = _chip(conn).core.net.cells.target.copy()
        net = Network(calibration=cal)
        gm = int(nominal_cell("psp_exc", t.psp_exc, p, t))
        pop = net.population(20, v_leak=t.leak, v_reset=t.reset, v_threshold=t.threshold,
                             tau_mem=p.hw_to_bio(t.tau_mem), tau_syn_exc=p.hw_to_bio(t.tau_syn_exc),
                             tau_syn_inh=p.hw_to_bio(t.tau_syn_inh), gm_exc=gm,
                             gm_inh=int(nominal_cell("psp_inh", t.psp_inh, p, t)))
        pl = net.configure(conn)
        after = _chip(conn).core.net.cells.target
        np.testing.assert_array_equal(after, held)
        # a parameter off the target is written (and lands with its own error)
        net.set_params(conn, pop, v_leak=t.leak + 0.05)
        k = p.neuron_cells.index(p.cell_for("e_l"))
        moved = _chip(conn).core.net.cells.target.reshape(p.neurons, -1)[pl.neurons[pop], k]
        assert np.all(moved > held.reshape(p.neurons, -1)[pl.neurons[pop], k] + 10)


def test_placement_leaves_out_neurons_the_calibration_cannot_use():
    conn, cal = _calibrated("twin:dls?serial=4", 32)
    conn.close()
    # make neurons 3 and 7 unusable: their leak far outside its band
    cal.measured["leak"] = cal.measured["leak"].copy()
    cal.measured["leak"][[3, 7]] += 0.1
    net = Network(calibration=cal)
    pop = net.population(30)
    pl = net.place(PROFILES["dls"])
    assert 3 not in pl.neurons[pop] and 7 not in pl.neurons[pop] and len(set(pl.neurons[pop])) == 30
    net.population(1)
    with pytest.raises(PlacementError, match="31 neurons, the dls chip 30 usable ones .*1 too many"):
        net.place(PROFILES["dls"])
    with host.connect("twin:dls?serial=5") as other:
        with pytest.raises(ValueError, match="calibration is of dls serial 4.*serial 5"):
            Network(calibration=cal).configure(other)


def test_membranes_of_several_neurons_through_the_column_adcs():
    """'v_column': every recorded neuron's membrane at each sample; against the membrane ADC on
    the same neuron (subthreshold input, an ideal chip) within the column ADC's 8-bit step."""
    with host.connect("twin:dls?mismatch=0") as conn:
        net = Network()
        stim = net.poisson_source(8, rate=40.0, seed=3)
        pop = net.population(6, v_threshold=1.1)                 # no spikes: the membrane moves smoothly
        net.project(stim, pop, AllToAll(), weight=20)
        pop.record("v_column", neurons=[0, 2, 5])
        pop.record("v", neuron=2)
        res = net.run(conn, 0.5, column_period=1e-3)
        t, v = res.column_membranes(pop)
        tm, vm = res.membrane()
    a = PROFILES["dls"].analog
    assert v.shape == (500, 3) and np.allclose(np.diff(t), 1e-3)
    assert v[5:].std(axis=0).min() > 0.005                        # the input moves every membrane
    diff = v[5:, 1] - np.interp(t[5:], tm, vm)
    assert np.abs(diff).max() <= a.cadc_lsb + 3 * a.madc_lsb, np.abs(diff).max()
    with host.connect("twin:hicann") as conn:
        net = Network()
        pop = net.population(2)
        pop.record("v_column")
        with pytest.raises(PlacementError, match="the hicann chip has none"):
            net.run(conn, 0.01)
