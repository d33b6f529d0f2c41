"""The correlation-sensor characterisation (tools/experiments/correlation.py)
recovers what the sensor model documents (docs/model.md, "Correlation
sensors"): on an ideal chip the transfer functions exactly, on a chip with
fixed-pattern noise the configured spreads."""
from __future__ import annotations

import numpy as np
import pytest

import host
from isa.profiles import PROFILES
from tools.experiments import correlation as C

P = PROFILES["dls"]


def test_ideal_chip_gives_the_documented_amplitude_and_time_constant():
    with host.connect("twin:dls?serial=2&mismatch=0") as conn:
        r = C.characterise_chip(conn, bias=170)
    # tau = 5 us * i_max / I(bias) and eta = 0.2 V * V(store) / v_max, both cells exact on an ideal chip
    tau = P.analog.corr_tau_full_scale * 1022 / 170
    eta = P.analog.corr_eta_full_scale * C.STORE_DEFAULT / 1022
    for side in ("causal", "acausal"):
        amp, t = getattr(r, f"amp_{side}"), getattr(r, f"tau_{side}")
        assert np.isfinite(amp).all() and np.isfinite(t).all()
        assert np.median(t) == pytest.approx(tau, rel=0.03)
        assert np.median(amp) == pytest.approx(eta, rel=0.05)
        assert np.std(np.log(t)) < 0.03 and np.std(amp) / np.mean(amp) < 0.04


def test_fixed_pattern_spread_is_recovered():
    with host.connect("twin:dls?serial=7") as conn:
        r = C.characterise_chip(conn)
    s, m = r.stats(), P.mismatch
    for side in ("causal", "acausal"):
        assert s[side]["fitted"] >= 0.95 * s[side]["of"]
        assert s[side]["amp_cv"] == pytest.approx(m.corr_amp, rel=0.2)        # stated tolerance: 20 %
        assert s[side]["tau_log_sd"] == pytest.approx(m.corr_tau, rel=0.2)
    ratio = s["acausal"]["amp_mean"] / s["causal"]["amp_mean"]
    assert ratio == pytest.approx(1 + m.corr_asymmetry, abs=0.04)


def test_bias_reaches_tens_to_hundreds_of_microseconds():
    with host.connect("twin:dls?serial=3") as conn:
        slow = C.characterise_chip(conn, bias=20)
        fast = C.characterise_chip(conn, bias=340)
    assert np.nanmedian(slow.tau_causal) > 100e-6 and np.nanmedian(fast.tau_causal) < 30e-6
