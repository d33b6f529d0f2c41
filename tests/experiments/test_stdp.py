"""The STDP learning experiment (tools/experiments/stdp.py): the firmware rule
separates correlated from uncorrelated inputs; with rates 0 nothing moves."""
from __future__ import annotations

import numpy as np

from tools.experiments import stdp as S


def test_correlated_inputs_grow_and_uncorrelated_shrink():
    t = S.run_chip("twin:dls", 6, duration_bio=30.0, reads=6)
    (c0, u0), (c1, u1) = t.group_means(0), t.group_means(-1)
    assert t.updates == 30 and t.overruns == 0
    assert c1 > c0 + 10 and u1 < u0 - 5
    assert t.separation() > 1.5


def test_control_with_rates_zero_leaves_every_weight_unchanged():
    t = S.run_chip("twin:dls", 6, duration_bio=10.0, reads=2, lambda_pos=0, lambda_neg=0)
    assert t.updates == 10
    assert (t.weights[-1] == t.weights[0]).all()
    assert abs(t.separation()) < 0.3
