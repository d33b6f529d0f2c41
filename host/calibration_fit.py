"""Numerics of the neuron calibration (host.calibration): the documented
transfer functions of the parameter cells, the PSP model, the fits that turn
membrane readings into neuron parameters, and the per-neuron transfer line
the search steps on.  Pure NumPy; arrays run over neurons on their first axis.

Transfer functions (docs/model.md, "Parameter cells"): a cell holding `value`
drives value / 1022 * full_scale * (1 + gain) + offset, so every calibrated
quantity is linear in its cell once expressed as

    potentials (leak, reset, threshold)      the voltage itself
    time constants (tau_mem, tau_syn_*)      the rate 1 / tau  (tau = tau_full_scale * i_max / I)
    PSP heights (psp_*)                      the height itself (proportional to the gm current)

`linearised` and `from_linearised` convert; `nominal_slope` is the ideal
(mismatch-free) slope per cell LSB.
"""
from __future__ import annotations

import numpy as np

from isa.profiles import PROFILES

#: The largest refreshed cell value (isa.profiles.Profile.cell_max, the same on every
#: generation; one more switches capmem refresh off).
(CELL_MAX,) = {p.cell_max for p in PROFILES.values()}

POTENTIALS = ("leak", "reset", "threshold")
TIME_CONSTANTS = ("tau_mem", "tau_syn_exc", "tau_syn_inh")
PSP_HEIGHTS = ("psp_exc", "psp_inh")
QUANTITIES = POTENTIALS + TIME_CONSTANTS + PSP_HEIGHTS

#: The model role (isa.profiles.Profile.cell_for) of the cell that sets each quantity.
ROLE = {"leak": "e_l", "reset": "v_reset", "threshold": "v_th", "tau_mem": "i_leak",
        "tau_syn_exc": "i_tau_exc", "tau_syn_inh": "i_tau_inh", "psp_exc": "i_gm_exc", "psp_inh": "i_gm_inh"}


# --------------------------------------------------------------------------- the PSP model
def psp_kernel(t, tau_m, tau_s):
    """Membrane response (s) to a synaptic current I0 exp(-t / tau_s) switched on
    at t = 0, per unit I0 / C:  tau_m tau_s / (tau_m - tau_s) (exp(-t/tau_m) - exp(-t/tau_s)),
    written so that tau_s -> tau_m stays finite (t exp(-t / tau)).  Zero for t < 0."""
    t = np.asarray(t, np.float64)
    tau_m, tau_s = np.asarray(tau_m, np.float64), np.asarray(tau_s, np.float64)
    k = 1.0 / tau_s - 1.0 / tau_m
    x = t * k
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(np.abs(x) > 1e-9, -np.expm1(-x) / np.where(x == 0, 1.0, x), 1.0)
    return np.where(t >= 0, t * np.exp(-t / tau_m) * ratio, 0.0)


def psp_peak_factor(tau_m, tau_s):
    """The PSP kernel at its peak, t_peak = ln(tau_m / tau_s) tau_m tau_s / (tau_m - tau_s) (s):
    a PSP of a current step I0 peaks at I0 / C times this."""
    tau_m, tau_s = np.asarray(tau_m, np.float64), np.asarray(tau_s, np.float64)
    k = 1.0 / tau_s - 1.0 / tau_m
    with np.errstate(invalid="ignore", divide="ignore"):
        t_peak = np.where(np.abs(k * tau_m) > 1e-9, np.log(tau_m / tau_s) / np.where(k == 0, 1.0, k), tau_m)
    return psp_kernel(t_peak, tau_m, tau_s)


# --------------------------------------------------------------------------- transfer functions
def linearised(name: str, value):
    """The quantity in the form that is linear in its cell (module docstring)."""
    v = np.asarray(value, np.float64)
    if name in TIME_CONSTANTS:
        with np.errstate(divide="ignore"):
            return 1.0 / v
    return v


def from_linearised(name: str, y):
    return linearised(name, y) if name in TIME_CONSTANTS else np.asarray(y, np.float64)


def nominal_slope(name: str, profile, targets) -> float:
    """d(linearised quantity) / d(cell value) of an ideal cell (docs/model.md)."""
    a = profile.analog
    if name in POTENTIALS:
        return a.v_max / CELL_MAX
    if name in TIME_CONSTANTS:
        return 1.0 / (a.tau_full_scale * CELL_MAX)
    # PSP height of a full-weight synapse at driver gain 8: (I0 / C) * peak factor at the target taus
    tau_s = targets.tau_syn_exc if name == "psp_exc" else targets.tau_syn_inh
    return a.i_max / CELL_MAX / a.c_mem * float(psp_peak_factor(targets.tau_mem, tau_s))


def nominal_cell(name: str, value, profile, targets) -> np.ndarray:
    """The cell an ideal chip needs for `value` (rounded, clipped to 0..1022)."""
    y = linearised(name, value) / nominal_slope(name, profile, targets)
    return np.clip(np.rint(y), 0, CELL_MAX).astype(np.int64)


# --------------------------------------------------------------------------- fits
def fit_decay(t, v, rest, start) -> np.ndarray:
    """Time constant of a relaxation v(t) = rest + (start - rest) exp(-t / tau),
    per neuron: weighted least squares of log((v - rest) / (start - rest)) = -t / tau
    through the origin (weights (v - rest)^2, the inverse variance of the
    logarithm for a constant read noise).  t: (neurons, obs) or (obs,) seconds,
    v: (neurons, obs) with NaN for missing readings; rest: (neurons,); start:
    (neurons,) or, when repetitions start from different levels, (neurons, obs).
    Readings within 4 % of the rest level or beyond the start level carry too
    little or no information and are left out.  NaN where fewer than two remain."""
    v = np.asarray(v, np.float64)
    t = np.broadcast_to(np.asarray(t, np.float64), v.shape)
    rest = np.asarray(rest, np.float64)[:, None]
    start = np.asarray(start, np.float64)
    amp = (start if start.ndim == 2 else start[:, None]) - rest
    with np.errstate(invalid="ignore", divide="ignore"):
        y = (v - rest) / amp
        ok = np.isfinite(y) & (y > 0.04) & (y < 1.0) & (t > 0)
        t = np.where(ok, t, 0.0)
        w = np.where(ok, (v - rest) ** 2, 0.0)
        ly = np.where(ok, np.log(np.where(ok, y, 1.0)), 0.0)
        num = (w * t * t).sum(axis=1)
        den = -(w * t * ly).sum(axis=1)
        tau = num / den
    return np.where((ok.sum(axis=1) >= 2) & (den > 0), tau, np.nan)


def _one_term_fit(basis, d, ok, tau_guess, span, n_obs):
    """Least squares of d ~ c * basis(tau) over c (linear) and tau: the residual
    R(tau) after the best c is minimised on a logarithmic grid (tau_guess / span
    .. tau_guess * span, refined once, on at most 64 of the readings), then by
    three parabolic steps on all of them.  basis(log_tau (n, G), sub) -> (n, G,
    obs).  Returns (c, tau, on_edge): on_edge where the grid's optimum is its
    first or last point (tau outside the range)."""
    n = d.shape[0]

    def fit(u, sub=slice(None)):
        k = np.where(ok[:, None, sub], basis(u, sub), 0.0)
        kk, kd = (k * k).sum(axis=2), (k * d[:, None, sub]).sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(kk > 0, -(kd * kd) / kk, np.inf), kd / kk

    sub = slice(None, None, max(1, -(-n_obs // 64)))
    centre = np.full(n, np.log(tau_guess))
    width = np.log(span)
    edge = np.zeros(n, bool)
    for level in range(2):
        grid = centre[:, None] + np.linspace(-width, width, 41)[None, :]
        best = np.argmin(fit(grid, sub)[0], axis=1)
        if level == 0:
            edge = (best == 0) | (best == grid.shape[1] - 1)
        centre = grid[np.arange(n), best]
        width /= 20
    h = 0.01
    for _ in range(3):
        r = fit(centre[:, None] + np.array([-h, 0.0, h])[None, :])[0]
        with np.errstate(invalid="ignore", divide="ignore"):
            curv = r[:, 2] - 2 * r[:, 1] + r[:, 0]
            step = np.where(curv > 0, -0.5 * h * (r[:, 2] - r[:, 0]) / curv, 0.0)
        centre = centre + np.clip(np.nan_to_num(step), -2 * h, 2 * h)
    return fit(centre[:, None])[1][:, 0], np.exp(centre), edge


def fit_psp(t, dv, tau_m, tau_guess, span: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Synaptic time constant and current amplitude of PSPs, per neuron.

    dv (neurons, obs): membrane minus what it would do without the PSP, at
    delays t (obs,) after the current step (seconds); the model is
    dv = B * psp_kernel(t, tau_m, tau_s) with B = I0 / C (V/s) and tau_m known
    (measured beforehand); B and tau_s by _one_term_fit.  Returns (B, tau_s);
    NaN where a neuron has fewer than three readings, tau_m is unknown or tau_s
    lies outside tau_guess / span .. tau_guess * span."""
    dv = np.asarray(dv, np.float64)
    t = np.asarray(t, np.float64)
    tau_m = np.asarray(tau_m, np.float64)
    ok = np.isfinite(dv)
    tm = np.where(np.isfinite(tau_m), tau_m, tau_guess)
    basis = lambda u, sub: psp_kernel(t[sub][None, None, :], tm[:, None, None], np.exp(u)[:, :, None])
    b, tau_s, edge = _one_term_fit(basis, np.where(ok, dv, 0.0), ok, tau_guess, span, len(t))
    bad = edge | (ok.sum(axis=1) < 3) | ~np.isfinite(tau_m)
    return np.where(bad, np.nan, b), np.where(bad, np.nan, tau_s)


def fit_relaxation(t, v, start, tau_guess, span: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Rest level and time constant of relaxations v(t) = rest + (start - rest)
    exp(-t / tau) from a known start (the reset clamp), per neuron: v - start =
    (rest - start) (1 - exp(-t / tau)), by _one_term_fit.  t, v: (neurons, obs),
    NaN where there is no reading.  Returns (rest, tau); NaN where fewer than
    three readings or tau lies outside tau_guess / span .. tau_guess * span."""
    v = np.asarray(v, np.float64)
    t = np.asarray(t, np.float64)
    start = np.asarray(start, np.float64)
    ok = np.isfinite(v) & np.isfinite(t) & np.isfinite(start)[:, None]
    tt = np.where(ok, t, 0.0)
    basis = lambda u, sub: -np.expm1(-tt[:, None, sub] / np.exp(u)[:, :, None])
    amp, tau, edge = _one_term_fit(basis, np.where(ok, v - start[:, None], 0.0), ok, tau_guess, span, v.shape[1])
    bad = edge | (ok.sum(axis=1) < 3)
    return np.where(bad, np.nan, start + amp), np.where(bad, np.nan, tau)


# --------------------------------------------------------------------------- the search
class TransferLine:
    """Per-neuron straight line y = a * cell + b through the points measured so
    far, with priors from the documented transfer (slope a0, intercept 0) and the
    chip's mismatch magnitudes (relative gain, offset): maximum a posteriori,

        minimise  sum_k (y_k - a x_k - b)^2 / sd_y^2 + (a - a0)^2 / sd_a^2 + b^2 / sd_b^2.

    With one point, the error is shared between gain and offset as the mismatch
    makes them likely: a current cell far from zero is mostly off in its gain
    (scaled), a voltage cell mostly in its offset (shifted); more points pull
    the line towards the data.  One point per write of the cell: measurements of
    the same write (a floating gate re-read without rewriting it) are averaged
    into that point, since its write error is common to them."""

    def __init__(self, neurons: int, slope0: float, slope_sd: float, offset_sd: float, y_sd: float):
        self.slope0 = slope0
        self.w_a, self.w_b, self.w_y = slope_sd ** -2, offset_sd ** -2, y_sd ** -2
        self.x: list[np.ndarray] = []
        self.y_sum: list[np.ndarray] = []
        self.count: list[np.ndarray] = []
        self.n = neurons
        self.unmeasured = np.zeros(neurons, bool)     # latest write without a valid measurement yet

    def add(self, cells: np.ndarray, y: np.ndarray, new_write: np.ndarray) -> None:
        """Measurements y at `cells`; new_write marks neurons whose cell was written
        since their last point (the others add to their last point)."""
        cells, y = np.asarray(cells, np.float64), np.asarray(y, np.float64)
        valid = np.isfinite(y)
        new_write = np.asarray(new_write, bool) | (len(self.x) == 0)
        self.unmeasured = np.where(new_write, ~valid, self.unmeasured & ~valid)
        fresh = valid & new_write
        if self.x:
            # repeat measurement of the last write: into the most recent point that neuron has
            last = self._last_point()
            again = valid & ~fresh & (last >= 0)
            for k in np.unique(last[again]):
                sel = again & (last == k)
                self.y_sum[k][sel] += y[sel]
                self.count[k][sel] += 1
            fresh |= valid & ~fresh & (last < 0)
        if fresh.any():
            self.x.append(np.where(fresh, cells, np.nan))
            self.y_sum.append(np.where(fresh, y, 0.0))
            self.count.append(fresh.astype(np.float64))

    def _last_point(self) -> np.ndarray:
        last = np.full(self.n, -1)
        for k, c in enumerate(self.count):
            last[c > 0] = k
        return last

    def current(self) -> np.ndarray:
        """Each neuron's mean measurement of its latest write (NaN while it has none)."""
        out = np.full(self.n, np.nan)
        for x, y, c in zip(self.x, self.y_sum, self.count):
            out = np.where(c > 0, y / np.maximum(c, 1), out)
        return np.where(self.unmeasured, np.nan, out)

    def coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """Each neuron's line (slope a, intercept b: y = a * cell + b); a neuron
        without a point has the prior's (the documented transfer)."""
        n = self.n
        if not self.x:
            return np.full(n, float(self.slope0)), np.zeros(n)
        cnt = np.array(self.count)
        use = cnt > 0
        y = np.where(use, np.array(self.y_sum) / np.maximum(cnt, 1), 0.0)
        x = np.where(use, np.array(self.x), 0.0)
        wy = self.w_y * use
        # normal equations of the MAP line, per neuron
        sxx = (wy * x * x).sum(axis=0) + self.w_a
        sx = (wy * x).sum(axis=0)
        s1 = wy.sum(axis=0) + self.w_b
        sxy = (wy * x * y).sum(axis=0) + self.w_a * self.slope0
        sy = (wy * y).sum(axis=0)
        det = sxx * s1 - sx * sx
        a = (sxy * s1 - sx * sy) / det
        b = (sxx * sy - sx * sxy) / det
        return np.where(a > 0.2 * self.slope0, a, self.slope0), b     # a line must rise with its cell

    def solve(self, y_target) -> np.ndarray:
        """The (real-valued) cell at which each neuron's line reaches y_target;
        NaN for neurons without a point."""
        if not self.x:
            return np.full(self.n, np.nan)
        a, b = self.coefficients()
        has_point = (np.array(self.count) > 0).any(axis=0)
        with np.errstate(invalid="ignore"):
            return np.where(has_point, (np.asarray(y_target, np.float64) - b) / a, np.nan)
