"""In-the-loop training (host/itl.py) on the twin: the software network, the
mapping on an ideal chip, calibration of the neurons it uses, and training
that recovers what the distortions of a hicann chip cost (a control without
updates does not).  Calibrations go to a temporary cache (conftest)."""
from __future__ import annotations

import numpy as np
import pytest

import host
from host import itl


@pytest.fixture(scope="module", autouse=True)
def calibration_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BSS_TWIN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def trained():
    x_tr, y_tr, x_te, y_te = itl.digits(seed=0)
    mlp = itl.train_software(x_tr, y_tr, seed=0)
    return mlp, x_tr, y_tr, x_te, y_te


def test_software_network_learns_the_digits(trained):
    mlp, _, _, x_te, y_te = trained
    assert itl.accuracy(mlp.predict(x_te), y_te) >= 0.95


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    mlp = itl.MLP.random([5, 4, 3], seed=2)
    x, y = rng.random((6, 5)), rng.integers(0, 3, 6)

    def loss(m):
        z = m.forward(x)[-1]
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(6), y]))

    g = mlp.gradients(mlp.forward(x), y)
    for k in range(2):
        i, j = 1, 2
        w = [v.copy() for v in mlp.weights]
        w[k][i, j] += 1e-6
        assert (loss(itl.MLP(w)) - loss(mlp)) / 1e-6 == pytest.approx(g[k][i, j], rel=1e-3, abs=1e-7)


def test_the_mapping_itself_is_right_on_an_ideal_chip(trained):
    mlp, x_tr, _, x_te, y_te = trained
    with host.connect("twin:hicann?serial=1&mismatch=0") as conn:
        mapped = itl.map_network(conn, mlp, x_tr[:100])
        assert itl.accuracy(mapped.predict(x_te[:200]), y_te[:200]) >= 0.85


def test_calibration_targets_are_the_network_parameters():
    from isa.profiles import PROFILES
    p = PROFILES["hicann"]
    t = itl.calibration_targets(p)
    n = itl.NEURON
    assert (t.leak, t.reset, t.threshold) == (n["v_leak"], n["v_reset"], n["v_threshold"])
    assert t.tau_mem == pytest.approx(n["tau_mem"] / p.speedup)
    from host.calibration_fit import nominal_cell
    assert int(nominal_cell("psp_exc", t.psp_exc, p, t)) == n["gm_exc"]      # the calibrated cells at gm_exc
    neurons = itl.neurons_to_calibrate(p, [64, 32, 32, 10])
    assert neurons.tolist() == list(range(63)) + list(range(256, 304))        # 42 and 32 placed, half again


@pytest.fixture(scope="module")
def serial2(trained):
    """Serial 2 of hicann: calibrated, mapped, trained 15 iterations, and a control."""
    mlp, x_tr, y_tr, x_te, y_te = trained
    kw = dict(iterations=15, batch=100, x_test=x_te[:200], y_test=y_te[:200], eval_every=15)
    out = {}
    with host.connect("twin:hicann?serial=2") as conn:
        out["uncalibrated"] = itl.accuracy(itl.map_network(conn, mlp, x_tr[:100]).predict(x_te[:200]), y_te[:200])
        cal = itl.calibrate_for(conn, mlp, progress=False)
        mapped = itl.map_network(conn, mlp, x_tr[:100], calibration=cal)
        out["trained"] = itl.train_in_the_loop(mapped, mlp, x_tr, y_tr, **kw)
    with host.connect("twin:hicann?serial=2") as conn:
        cal = itl.calibrate_for(conn, mlp, progress=False)                     # from the cache, applied
        mapped = itl.map_network(conn, mlp, x_tr[:100], calibration=cal)
        out["control"] = itl.train_in_the_loop(mapped, mlp, x_tr, y_tr, update=False, **kw)
    out["software"] = itl.accuracy(mlp.predict(x_te[:200]), y_te[:200])
    return out


def test_calibration_lifts_the_mapped_network(serial2):
    assert serial2["trained"]["test"][0] > serial2["uncalibrated"] + 0.15


def test_training_in_the_loop_recovers_what_the_chip_costs(serial2):
    trained_run, control = serial2["trained"], serial2["control"]
    before, after = trained_run["test"][0], trained_run["test"][-1]
    assert before < serial2["software"] - 0.1                # the distortions cost a lot, calibrated or not
    assert after > before + 0.1 and after > 0.9
    assert abs(control["test"][-1] - control["test"][0]) < 0.06
