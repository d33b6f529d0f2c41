"""In-the-loop training (host/itl.py) on the twin: the software network, the
mapping on an ideal chip, and training that recovers what the distortions of
a hicann chip cost (a control without updates does not)."""
from __future__ import annotations

import numpy as np
import pytest

import host
from host import itl


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
        assert itl.accuracy(mapped.predict(x_te[:200]), y_te[:200]) >= 0.80


def test_training_in_the_loop_recovers_what_the_chip_costs(trained):
    mlp, x_tr, y_tr, x_te, y_te = trained
    kw = dict(iterations=15, batch=100, x_test=x_te[:200], y_test=y_te[:200], eval_every=15)
    with host.connect("twin:hicann?serial=2") as conn:
        mapped = itl.map_network(conn, mlp, x_tr[:100])
        trained_run = itl.train_in_the_loop(mapped, mlp, x_tr, y_tr, **kw)
    with host.connect("twin:hicann?serial=2") as conn:
        mapped = itl.map_network(conn, mlp, x_tr[:100])
        control = itl.train_in_the_loop(mapped, mlp, x_tr, y_tr, update=False, **kw)
    software = itl.accuracy(mlp.predict(x_te[:200]), y_te[:200])
    before, after = trained_run["test"][0], trained_run["test"][-1]
    assert before < software - 0.15                       # the distortions cost a lot
    assert after > before + 0.15 and after > 0.8
    assert abs(control["test"][-1] - control["test"][0]) < 0.1
