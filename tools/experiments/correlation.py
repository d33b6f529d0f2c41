"""Characterisation of the correlation sensors, as in the hybrid-plasticity
experiments on HICANN-DLS (Friedmann et al. 2017, IEEE TBioCAS 11(1)): the
sensors' amplitudes and time constants per synapse, their spread across the
array and from chip to chip, and the range of time constants the bias reaches.

Method, per chip (over any connection; the default is the in-process twin):
  * every row but the last carries presynaptic events (weight 0: they drive no
    neuron, label 0); the last row (label 1, full weight) makes every neuron fire
    once per event: a postsynaptic spike a fixed latency after it;
  * for each delay dt (both signs, a grid scaled to the nominal time constant
    of the bias), K pre/post pairs, spaced far enough apart (10 time constants)
    that neighbouring pairs do not interact; dt per synapse from the recorded
    output spike times;
  * after each delay the PPU runs the `corr_read` firmware: causal and
    acausal readings of the whole array into its mailbox, sensors reset; the
    host reads them over the wire.  Baselines come from readings with no pairs;
  * per synapse and side, the trace of K pairs is turned into the charge of one
    pair (undoing the saturation c_sat (1 - (1 - T/c_sat)^(1/K))), and
    log(charge) against |dt| is fitted by weighted least squares: amplitude
    (charge at dt = 0, volts) and time constant.
The column ADC reads baseline minus trace, 8 bit over 0..1.2 V, and c_sat is
0.9 V (docs/model.md, "Correlation sensors"); the fitted spreads are compared
with the mismatch the profile documents (isa/profiles.py, `Mismatch`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from isa.wire import FPGA_TICK_S

from ._setup import configure_array, neuron_of, row_label, serial_list

TICK_S = FPGA_TICK_S
DRIVER_LABEL = 1
BIAS_DEFAULT = 170            # i_bias_correlation cell: tau = 5 us * 1022 / 170, about 30 us nominal
STORE_DEFAULT = 100           # v_correlation_store cell: charge per pair (eta)
BASELINE_DEFAULT = 900        # v_correlation_baseline cell (1.06 V: readings near 225 of 255)
DELAY_GRID = (0.1, 0.25, 0.5, 0.8, 1.2, 1.7, 2.4)   # x nominal tau, each with both signs


@dataclass
class ChipResult:
    """Fitted sensor parameters of one chip: arrays (rows - 1, columns); NaN where a fit failed."""

    serial: int
    bias: int
    amp_causal: np.ndarray
    tau_causal: np.ndarray
    amp_acausal: np.ndarray
    tau_acausal: np.ndarray
    delays: np.ndarray                 # (n_delays, columns): measured dt per delay and neuron, s
    charge_causal: np.ndarray          # (n_delays, rows - 1, columns): charge of one pair, V
    charge_acausal: np.ndarray
    hw_seconds: float = 0.0

    def stats(self) -> dict:
        out = {}
        for side in ("causal", "acausal"):
            amp, tau = getattr(self, f"amp_{side}"), getattr(self, f"tau_{side}")
            ok = np.isfinite(amp) & np.isfinite(tau)
            out[side] = dict(fitted=int(ok.sum()), of=int(ok.size), amp_mean=float(np.mean(amp[ok])),
                             amp_cv=float(np.std(amp[ok]) / np.mean(amp[ok])),
                             tau_median=float(np.median(tau[ok])), tau_log_sd=float(np.std(np.log(tau[ok]))))
        return out


# --------------------------------------------------------------------------- chip set-up
def nominal_tau(profile, bias: int) -> float:
    """The time constant the bias cell gives by the sensor's documented transfer
    (docs/model.md): tau = corr_tau_full_scale * 1022 / value."""
    return profile.analog.corr_tau_full_scale * profile.cell_max / bias


def configure(conn, bias: int = BIAS_DEFAULT, store: int = STORE_DEFAULT, baseline: int = BASELINE_DEFAULT):
    """Neurons that fire once per driver event, the synapse array, the sensors."""
    p, rm = conn.profile, conn.regmap
    rows = p.synapse_arrays * p.rows
    driver = p.rows - 1
    wmax = rm.register("synapse", "weights").field("weight0").limit
    weights = np.zeros((rows, p.columns), np.int64)
    labels = np.zeros_like(weights)
    weights[driver], labels[driver] = wmax, DRIVER_LABEL
    # refractory 160 x 16 ticks = 20 us: one spike per driver event; strong, fast synapses
    configure_array(conn, weights, labels, tau_syn=2e-6, gm=1000, gm_inh=100, driver_gain=15, refractory=160,
                    corr_bias=bias, corr_store=store, corr_baseline=baseline)


class _Reader:
    """The corr_read firmware on PPU 0: readings of the whole array (rows x columns), sensors reset."""

    def __init__(self, conn):
        import firmware
        self.conn, self.p = conn, conn.profile
        self.rule = firmware.RuleOnChip(conn, "corr_read", ppus=[0])
        self.loaded = False

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.p
        self.rule.start("once", first_row=0, rows=p.rows, reset=1, load=not self.loaded)
        self.loaded = True
        self.rule.wait(timeout_hw_seconds=1e-3, step_hw_seconds=50e-6)
        n = p.rows * p.columns
        data = self.rule.data(2 * n)
        return data[:n].reshape(p.rows, p.columns), data[n:].reshape(p.rows, p.columns)


def _play_pairs(conn, dt: float, pairs: int, spacing: float, latency: float):
    """K pairs: pre in every row but the driver's at t_k, driver event at
    t_k + dt - latency; returns (pre times in ticks, output spikes)."""
    p = conn.profile
    driver = p.rows - 1
    lead = max(0.0, latency - dt) + 5e-6
    t = lead + spacing * np.arange(pairs)
    pre_ticks = np.round(t / TICK_S).astype(np.int64)
    drv_ticks = np.round((t + dt - latency) / TICK_S).astype(np.int64)
    rows = np.arange(driver)
    labels = np.concatenate([np.repeat(row_label(rows)[None, :], pairs, 0).ravel(),
                             np.full(pairs, row_label(driver, DRIVER_LABEL))])
    ticks = np.concatenate([np.repeat(pre_ticks, len(rows)), drv_ticks])
    order = np.argsort(ticks, kind="stable")
    prog = conn.program()
    prog.timer_reset()
    prog.spikes(labels[order], ticks[order])
    prog.wait_until(int(pre_ticks[-1] + round(spacing / TICK_S)))
    res = conn.run(prog)
    return pre_ticks, res.spikes, float(pre_ticks[-1] * TICK_S + spacing)


def _post_delays(pre_ticks, spikes, columns: int, dt_hint: float, spacing: float) -> np.ndarray:
    """Per neuron, the mean of (post spike - its pair's pre) over the pairs (s)."""
    neuron = neuron_of(spikes["label"])
    t = spikes["time"].astype(np.int64)
    out = np.full(columns, np.nan)
    for n in range(columns):
        tn = t[neuron == n]
        if not len(tn):
            continue
        # the pair each spike belongs to: nearest expected post time
        k = np.clip(np.round((tn * TICK_S - dt_hint - pre_ticks[0] * TICK_S) / spacing).astype(int),
                    0, len(pre_ticks) - 1)
        out[n] = np.mean((tn - pre_ticks[k]) * TICK_S)
    return out


def measure_latency(conn, spacing: float = 100e-6, events: int = 8) -> float:
    """Median delay from a driver event to the neurons' spikes (s); raises when
    a neuron does not fire exactly once per event."""
    p = conn.profile
    driver = p.rows - 1
    ticks = np.round((5e-6 + spacing * np.arange(events)) / TICK_S).astype(np.int64)
    prog = conn.program()
    prog.timer_reset()
    prog.spikes(np.full(events, row_label(driver, DRIVER_LABEL)), ticks)
    prog.wait_until(int(ticks[-1] + round(spacing / TICK_S)))
    res = conn.run(prog)
    neuron = neuron_of(res.spikes["label"])
    counts = np.bincount(neuron, minlength=p.neurons)[:p.columns]
    if not (counts == events).all():
        bad = np.flatnonzero(counts != events)
        raise RuntimeError(f"neurons {bad.tolist()[:8]} fired {counts[bad].tolist()[:8]} times for {events} driver "
                           "events (need exactly one spike each): adjust the neuron parameters in configure()")
    t = res.spikes["time"].astype(np.int64)
    k = np.clip(np.searchsorted(ticks, t, side="right") - 1, 0, events - 1)
    return float(np.median((t - ticks[k]) * TICK_S))


def _charge(reading, baseline, pairs: int, profile) -> np.ndarray:
    """Charge of one pair (V) from K pairs' reading: trace = (baseline - reading)
    x LSB, saturation undone; readings at or above the baseline give 0."""
    a = profile.analog
    lsb = a.cadc_lsb
    trace = np.clip((baseline - reading.astype(float)) * lsb, 0.0, a.corr_saturation * 0.999)
    return a.corr_saturation * (1.0 - (1.0 - trace / a.corr_saturation) ** (1.0 / pairs))


def fit_exponential(dt: np.ndarray, charge: np.ndarray, floor: float, min_points: int = 3):
    """Amplitude and time constant of charge = A exp(-|dt| / tau) per synapse.

    dt: (n,) or (n, S), charge (n, S); points below `floor` (V) are left out;
    weighted least squares on log(charge) with weights charge^2 (the variance
    of log(charge) goes as 1 / charge^2).  Returns (A, tau), NaN where fewer
    than `min_points` points remain or the slope is not negative."""
    dt = np.broadcast_to(np.abs(dt).reshape(len(charge), -1), charge.shape)
    ok = charge >= floor
    w = np.where(ok, charge ** 2, 0.0)
    y = np.log(np.where(ok, charge, 1.0))
    sw, sx, sy = w.sum(0), (w * dt).sum(0), (w * y).sum(0)
    sxx, sxy = (w * dt * dt).sum(0), (w * dt * y).sum(0)
    den = sw * sxx - sx * sx
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (sw * sxy - sx * sy) / den
        icpt = (sy - slope * sx) / sw
        good = (ok.sum(0) >= min_points) & (slope < 0) & (den > 0)
        return np.where(good, np.exp(icpt), np.nan), np.where(good, -1.0 / slope, np.nan)


def characterise_chip(conn, bias: int = BIAS_DEFAULT, pairs: int = 12, grid=DELAY_GRID,
                      progress=None) -> ChipResult:
    """Measure and fit every synapse of PPU 0's array but the driver row (see the module docstring)."""
    p = conn.profile
    configure(conn, bias)
    tau0 = nominal_tau(p, bias)
    spacing = 10 * 2.5 * tau0                         # 10 time constants of a synapse at +2.5 sigma
    latency = measure_latency(conn)
    reader = _Reader(conn)
    base = np.mean([np.stack(reader.read()) for _ in range(4)], axis=0)     # (2, rows, columns)
    delays = [s * g * tau0 for g in grid for s in (1, -1)]
    meas = np.zeros((len(delays), p.columns))
    charge = np.zeros((2, len(delays), p.rows - 1, p.columns))
    hw = 0.0
    for i, dt in enumerate(delays):
        pre, spikes, span = _play_pairs(conn, dt, pairs, spacing, latency)
        hw += span
        meas[i] = _post_delays(pre, spikes, p.columns, dt, spacing)
        c, a = reader.read()
        charge[0, i] = _charge(c, base[0], pairs, p)[:-1]
        charge[1, i] = _charge(a, base[1], pairs, p)[:-1]
        if progress is not None:
            progress()
    lsb = p.analog.cadc_lsb
    floor = 3 * lsb / pairs                           # 3 LSB of the K-pair trace
    causal = meas > 0
    results = {}
    for side, k, sel in (("causal", 0, causal), ("acausal", 1, ~causal)):
        rows = np.flatnonzero(sel.all(1))
        d = np.abs(meas[rows])                        # (n, columns)
        q = charge[k][rows]                           # (n, rows - 1, columns)
        amp, tau = fit_exponential(np.repeat(d[:, None, :], p.rows - 1, 1).reshape(len(rows), -1),
                                   q.reshape(len(rows), -1), floor)
        results[side] = (amp.reshape(p.rows - 1, p.columns), tau.reshape(p.rows - 1, p.columns))
    return ChipResult(conn.serial, bias, *results["causal"], *results["acausal"], meas, charge[0], charge[1], hw)


# --------------------------------------------------------------------------- the experiment
BIAS_SWEEP = (10, 20, 40, 85, 170, 340, 680)


@dataclass
class Characterisation:
    chips: list[ChipResult]
    sweep: list[ChipResult] = field(default_factory=list)     # one chip over BIAS_SWEEP
    profile: object = None

    def table(self) -> list[dict]:
        rows = []
        for r in self.chips:
            s = r.stats()
            rows.append(dict(serial=r.serial, **{f"{side}_{k}": v for side in ("causal", "acausal")
                                                 for k, v in s[side].items()}))
        return rows

    def chip_to_chip(self) -> dict:
        """Spread of the per-chip means across chips (relative sd)."""
        t = self.table()
        out = {}
        for key in ("causal_amp_mean", "causal_tau_median", "acausal_amp_mean", "acausal_tau_median"):
            v = np.array([row[key] for row in t])
            out[key] = float(np.std(v) / np.mean(v)) if len(v) > 1 else float("nan")
        return out

    def sweep_range(self) -> tuple[float, float]:
        taus = [np.nanmedian(r.tau_causal) for r in self.sweep]
        return (float(min(taus)), float(max(taus))) if taus else (math.nan, math.nan)


def run(url: str = "twin:dls", serials=(1, 2, 3, 4, 5), sweep_serial: int | None = 1, pairs: int = 12,
        show_progress: bool = True) -> Characterisation:
    """Characterise the sensors of `serials` (at BIAS_DEFAULT), and sweep the
    bias on `sweep_serial` (None: no sweep).  `url` without a serial; each chip
    is `url?serial=N` (the in-process twin makes that chip)."""
    import host
    from tqdm import tqdm
    n_delay = 2 * len(DELAY_GRID)
    total = n_delay * (len(serials) + (len(BIAS_SWEEP) if sweep_serial is not None else 0))
    bar = tqdm(total=total, desc="correlation sensors", unit="delay", disable=not show_progress, leave=False)
    sep = "&" if "?" in url else "?"
    out = Characterisation([])
    try:
        for s in serials:
            bar.set_postfix_str(f"chip serial {s}")
            with host.connect(f"{url}{sep}serial={s}") as conn:
                out.profile = conn.profile
                out.chips.append(characterise_chip(conn, BIAS_DEFAULT, pairs, progress=bar.update))
        if sweep_serial is not None:
            with host.connect(f"{url}{sep}serial={sweep_serial}") as conn:
                for b in BIAS_SWEEP:
                    bar.set_postfix_str(f"bias sweep, i_bias_correlation = {b}")
                    out.sweep.append(characterise_chip(conn, b, pairs, progress=bar.update))
    finally:
        bar.close()
    return out


def expected_spread(profile) -> dict:
    """The per-synapse mismatch the profile configures (isa/profiles.py)."""
    m = profile.mismatch
    return dict(amp_cv=m.corr_amp, tau_log_sd=m.corr_tau, acausal_over_causal=1.0 + m.corr_asymmetry)


def summary(res: Characterisation) -> str:
    exp = expected_spread(res.profile)
    lines = ["| serial | causal amp (mV/pair) | CV | causal tau median (us) | sd log tau | acausal amp | CV "
             "| acausal tau median (us) | sd log tau | fitted |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in res.table():
        lines.append(f"| {row['serial']} | {row['causal_amp_mean'] * 1e3:.2f} | {row['causal_amp_cv']:.3f} | "
                     f"{row['causal_tau_median'] * 1e6:.1f} | {row['causal_tau_log_sd']:.3f} | "
                     f"{row['acausal_amp_mean'] * 1e3:.2f} | {row['acausal_amp_cv']:.3f} | "
                     f"{row['acausal_tau_median'] * 1e6:.1f} | {row['acausal_tau_log_sd']:.3f} | "
                     f"{row['causal_fitted'] + row['acausal_fitted']}/{row['causal_of'] + row['acausal_of']} |")
    c2c = res.chip_to_chip()
    t = res.table()
    ratio = np.mean([r["acausal_amp_mean"] / r["causal_amp_mean"] for r in t])
    lines += ["", f"configured per-synapse mismatch: amplitude CV {exp['amp_cv']:.2f}, sd of log tau "
                  f"{exp['tau_log_sd']:.2f}, acausal/causal amplitude {exp['acausal_over_causal']:.2f}; "
                  f"measured (mean over chips): CV {np.mean([r['causal_amp_cv'] for r in t]):.3f} / "
                  f"{np.mean([r['acausal_amp_cv'] for r in t]):.3f}, sd log tau "
                  f"{np.mean([r['causal_tau_log_sd'] for r in t]):.3f} / "
                  f"{np.mean([r['acausal_tau_log_sd'] for r in t]):.3f}, acausal/causal {ratio:.3f}",
              "chip to chip (relative sd of the chip means): " + ", ".join(
                  f"{k.replace('_', ' ')} {v:.3f}" for k, v in c2c.items())]
    if res.sweep:
        lo, hi = res.sweep_range()
        lines.append("bias sweep (serial %d): " % res.sweep[0].serial + ", ".join(
            f"{r.bias} -> {np.nanmedian(r.tau_causal) * 1e6:.0f} us" for r in res.sweep)
            + f"; range {lo * 1e6:.0f}..{hi * 1e6:.0f} us")
    return "\n".join(lines)


def plot(res: Characterisation, path: str, row: int = 3, column: int = 5) -> None:
    """STDP window of one synapse with its fit, histograms across the array,
    per-chip means, and the bias sweep, in one PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r0 = res.chips[0]
    fig, ax = plt.subplots(2, 3, figsize=(14, 8))
    a = ax[0, 0]
    d = r0.delays[:, column] * 1e6
    q = np.where(d > 0, r0.charge_causal[:, row, column], -r0.charge_acausal[:, row, column]) * 1e3
    a.plot(d, q, "o", label="measured (charge per pair)")
    xs = np.linspace(0.5, np.abs(d).max(), 200)
    a.plot(xs, r0.amp_causal[row, column] * 1e3 * np.exp(-xs * 1e-6 / r0.tau_causal[row, column]), "C1",
           label=f"fit: {r0.amp_causal[row, column] * 1e3:.1f} mV, tau {r0.tau_causal[row, column] * 1e6:.0f} us")
    a.plot(-xs, -r0.amp_acausal[row, column] * 1e3 * np.exp(-xs * 1e-6 / r0.tau_acausal[row, column]), "C2",
           label=f"fit: {r0.amp_acausal[row, column] * 1e3:.1f} mV, tau {r0.tau_acausal[row, column] * 1e6:.0f} us")
    a.axhline(0, color="k", lw=0.5)
    a.set_xlabel("t_post - t_pre (us, hardware)")
    a.set_ylabel("causal (+) / acausal (-) charge (mV)")
    a.set_title(f"STDP window, synapse row {row} column {column}, serial {r0.serial}")
    a.legend(fontsize=7)
    for a, key, scale, unit in ((ax[0, 1], "amp", 1e3, "mV per pair"), (ax[0, 2], "tau", 1e6, "us")):
        for side, col in (("causal", "C1"), ("acausal", "C2")):
            v = getattr(r0, f"{key}_{side}").ravel() * scale
            a.hist(v[np.isfinite(v)], bins=40, alpha=0.6, color=col, label=side)
        a.set_xlabel(f"{'amplitude' if key == 'amp' else 'time constant'} ({unit})")
        a.set_title(f"across the array, serial {r0.serial}")
        a.legend(fontsize=8)
    t = res.table()
    serials = [row_["serial"] for row_ in t]
    for a, key, scale, unit in ((ax[1, 0], "amp", 1e3, "mV per pair"), (ax[1, 1], "tau", 1e6, "us")):
        for k, (side, col) in enumerate((("causal", "C1"), ("acausal", "C2"))):
            means, sds = [], []
            for r in res.chips:
                v = getattr(r, f"{key}_{side}")
                v = v[np.isfinite(v)] * scale
                means.append(np.mean(v) if key == "amp" else np.median(v))
                sds.append(np.std(v))
            a.errorbar(np.arange(len(serials)) + 0.1 * (k - 0.5), means, yerr=sds, fmt="o", color=col, label=side,
                       capsize=3)
        a.set_xticks(range(len(serials)), [str(s) for s in serials])
        a.set_xlabel("chip serial")
        a.set_ylabel(f"{'mean amplitude' if key == 'amp' else 'median tau'} ({unit}) +- sd across synapses")
        a.set_title("per chip")
        a.legend(fontsize=8)
    a = ax[1, 2]
    if res.sweep:
        bias = np.array([r.bias for r in res.sweep])
        med = np.array([np.nanmedian(r.tau_causal) for r in res.sweep]) * 1e6
        q1 = np.array([np.nanpercentile(r.tau_causal, 10) for r in res.sweep]) * 1e6
        q9 = np.array([np.nanpercentile(r.tau_causal, 90) for r in res.sweep]) * 1e6
        a.fill_between(bias, q1, q9, alpha=0.3, label="10-90 % of the synapses")
        a.loglog(bias, med, "o-", label="median (causal)")
        a.minorticks_off()
        a.set_xticks(bias, [str(b) for b in bias])
        a.set_xlabel("i_bias_correlation cell value (LSB)")
        a.set_ylabel("time constant (us, hardware)")
        a.set_title(f"bias sweep, serial {res.sweep[0].serial}")
        a.legend(fontsize=8)
    else:
        a.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    import argparse
    import time
    ap = argparse.ArgumentParser(
        prog="bss-twin demo correlation", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__, epilog="Writes a PNG (STDP window of one synapse with its fit, histograms across "
                                    "the array, per-chip means, bias sweep) and prints a table per chip.")
    ap.add_argument("--url", default="twin:dls",
                    help="chip without its serial (default twin:dls); each chip is URL?serial=N")
    ap.add_argument("--serials", type=serial_list, default=[1, 2, 3, 4, 5], help="chips to characterise (default 1,2,3,4,5)")
    ap.add_argument("--sweep-serial", type=int, default=1, help="chip of the bias sweep (default 1; -1: none)")
    ap.add_argument("--pairs", type=int, default=12, help="pre/post pairs per delay (default 12)")
    ap.add_argument("--png", default="correlation.png", help="plot file (default correlation.png; '' to skip)")
    args = ap.parse_args(argv)
    serials = args.serials
    t0 = time.perf_counter()
    res = run(args.url, serials, None if args.sweep_serial < 0 else args.sweep_serial, args.pairs)
    wall = time.perf_counter() - t0
    hw = sum(r.hw_seconds for r in res.chips + res.sweep)
    print(summary(res))
    print(f"{len(res.chips)} chips + {len(res.sweep)} bias points, {hw * 1e3:.0f} ms of hardware time "
          f"({hw * res.profile.speedup:.0f} s biological), {wall:.1f} s wall")
    if args.png:
        plot(res, args.png)
        print(f"wrote {args.png}")
    return 0
