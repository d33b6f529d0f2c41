"""Numerics of the calibration (host/calibration_fit.py): the PSP model against
its closed form, the fits on synthetic data with known parameters, and the
transfer line's priors."""
from __future__ import annotations

import numpy as np
import pytest

from host.calibration_fit import (TransferLine, fit_decay, fit_psp, fit_relaxation, psp_kernel,
                                  psp_peak_factor)


def test_psp_kernel_is_the_difference_of_exponentials_and_its_limit():
    t = np.linspace(0, 50e-6, 501)
    tau_m, tau_s = 10e-6, 4e-6
    closed = tau_m * tau_s / (tau_m - tau_s) * (np.exp(-t / tau_m) - np.exp(-t / tau_s))
    np.testing.assert_allclose(psp_kernel(t, tau_m, tau_s), closed, rtol=1e-9, atol=1e-18)
    # equal time constants: t exp(-t / tau)
    np.testing.assert_allclose(psp_kernel(t, 5e-6, 5e-6), t * np.exp(-t / 5e-6), rtol=1e-9, atol=1e-18)
    assert psp_kernel(-1e-6, tau_m, tau_s) == 0.0


@pytest.mark.parametrize("tau_m, tau_s", [(10e-6, 5e-6), (1e-6, 0.5e-6), (5e-6, 5e-6), (3e-6, 9e-6)])
def test_peak_factor_is_the_kernels_maximum(tau_m, tau_s):
    t = np.linspace(0, 20 * max(tau_m, tau_s), 200001)
    assert psp_peak_factor(tau_m, tau_s) == pytest.approx(psp_kernel(t, tau_m, tau_s).max(), rel=1e-6)


def test_fits_recover_known_parameters_from_noisy_traces():
    rng = np.random.default_rng(5)
    n = 40
    tau_m = rng.uniform(8e-6, 12e-6, n)
    tau_s = rng.uniform(3e-6, 7e-6, n)
    b = rng.uniform(2e4, 4e4, n)                                # V/s
    t = np.arange(1, 200) * 0.1e-6
    dv = b[:, None] * psp_kernel(t[None, :], tau_m[:, None], tau_s[:, None]) + rng.normal(0, 1e-3, (n, len(t)))
    fb, fs = fit_psp(t, dv, tau_m, 5e-6)
    np.testing.assert_allclose(fs, tau_s, rtol=0.03)
    np.testing.assert_allclose(fb, b, rtol=0.03)
    rest, start = rng.uniform(0.35, 0.45, n), np.full(n, 0.3)
    v = rest[:, None] + (start - rest)[:, None] * np.exp(-t[None, :] / tau_m[:, None]) + rng.normal(0, 1e-3, (n, len(t)))
    fr, ft = fit_relaxation(np.broadcast_to(t, v.shape), v, start, 10e-6)
    np.testing.assert_allclose(ft, tau_m, rtol=0.03)
    np.testing.assert_allclose(fr, rest, atol=2e-3)
    np.testing.assert_allclose(fit_decay(t, v, rest, start), tau_m, rtol=0.03)


def test_psp_fit_refuses_a_time_constant_outside_its_range():
    t = np.arange(1, 100) * 0.1e-6
    dv = 3e4 * psp_kernel(t, 10e-6, 0.2e-6)[None, :]           # 25 times below the guess
    b, tau_s = fit_psp(t, dv, np.array([10e-6]), 5e-6)
    assert np.isnan(b[0]) and np.isnan(tau_s[0])


def test_transfer_line_splits_one_measurement_as_the_priors_say():
    """One point 10 % above the nominal line: a cell far from zero with a large
    gain and a small offset uncertainty is scaled (the solution divides by 1.1);
    with a large offset and a small gain uncertainty it is shifted."""
    slope0, x0 = 1.0, 200.0
    scaled = TransferLine(1, slope0, slope_sd=0.2, offset_sd=1.0, y_sd=0.01)
    scaled.add(np.array([x0]), np.array([1.1 * x0]), np.array([True]))
    assert scaled.solve(x0)[0] == pytest.approx(x0 / 1.1, rel=0.01)
    shifted = TransferLine(1, slope0, slope_sd=0.001, offset_sd=100.0, y_sd=0.01)
    shifted.add(np.array([x0]), np.array([1.1 * x0]), np.array([True]))
    assert shifted.solve(x0)[0] == pytest.approx(x0 - 0.1 * x0, rel=0.01)


def test_transfer_line_averages_repeated_measurements_of_one_write():
    line = TransferLine(2, 1.0, 0.1, 1.0, 1.0)
    line.add(np.array([100.0, 100.0]), np.array([104.0, 98.0]), np.array([True, True]))
    line.add(np.array([100.0, 100.0]), np.array([102.0, np.nan]), np.array([False, False]))
    np.testing.assert_allclose(line.current(), [103.0, 98.0])
    # a new write without a valid measurement: no current value for that neuron
    line.add(np.array([90.0, 100.0]), np.array([np.nan, 99.0]), np.array([True, False]))
    assert np.isnan(line.current()[0]) and line.current()[1] == pytest.approx(98.5)
