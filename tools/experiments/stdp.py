"""Learning with multiplicative STDP computed by the PPU (the hybrid-plasticity
seed, Friedmann et al. 2017, IEEE TBioCAS 11(1)), on a dls chip.

Every neuron receives the same inputs: a correlated group of rows (each row
a copy of one Poisson "mother" train, every spike jittered independently)
and an uncorrelated group (independent Poisson trains at the same rate).
The `stdp_mult` firmware (firmware/rules/stdp_mult.s) updates every synapse
from its correlation sensors periodically while the network runs; per-synapse
offsets are measured first (sensor readings with no activity, read by the
`corr_read` firmware).  Coincident input makes the neurons fire right after
the correlated group's spikes, so those synapses see causal pairs and grow
toward w_max; the uncorrelated ones see causal and acausal pairs alike and
settle where potentiation and depression balance, w* = w_max lambda_pos /
(lambda_pos + lambda_neg), below where they started.  The host reads the
weights between chunks of the run for the trajectories.  A control run with
both learning rates 0 must leave the groups where they started.

Times are biological (the chip runs 1000 times faster): 20 Hz inputs, a rule
update every second, 60 s of learning.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from isa.wire import FPGA_TICK_S

from ._setup import configure_array, row_label, serial_list

TICK_S = FPGA_TICK_S
PARAMS = dict(theta=2, lambda_pos=32, lambda_neg=127)
GM = 15
CORR_BIAS = 340             # sensor time constant about 15 us (15 ms biological): narrower than the input ISIs
CORR_STORE = 200


@dataclass
class Trial:
    serial: int
    times: np.ndarray            # biological seconds at each weight read
    weights: np.ndarray          # (reads, rows, columns) weights (6-bit field)
    correlated: np.ndarray       # boolean mask of the correlated rows
    updates: int
    overruns: int
    out_rate: float              # mean output rate, Hz biological
    hw_seconds: float

    def group_means(self, k: int = -1) -> tuple[float, float]:
        w = self.weights[k]
        return float(w[self.correlated].mean()), float(w[~self.correlated].mean())

    def separation(self) -> float:
        """d': difference of the group means over the pooled sd of the final weights."""
        w = self.weights[-1]
        a, b = w[self.correlated].ravel(), w[~self.correlated].ravel()
        sd = np.sqrt(0.5 * (a.var() + b.var()))
        return float((a.mean() - b.mean()) / sd) if sd > 0 else float("inf") * np.sign(a.mean() - b.mean())


def configure(conn, w0: np.ndarray) -> None:
    configure_array(conn, w0, np.zeros_like(w0), tau_syn=5e-6, gm=GM, gm_inh=GM, driver_gain=8, refractory=40,
                    corr_bias=CORR_BIAS, corr_store=CORR_STORE)


def inputs(rng, correlated: np.ndarray, rate_hw: float, duration_hw: float, jitter_hw: float):
    """(ticks, rows) of the input, sorted: correlated rows copy one mother
    train with independent Gaussian jitter, the others are independent."""
    ticks, rows = [], []
    mother = np.sort(rng.uniform(0, duration_hw, rng.poisson(rate_hw * duration_hw)))
    for r, corr in enumerate(correlated):
        if corr:
            t = mother + rng.normal(0, jitter_hw, len(mother))
        else:
            t = rng.uniform(0, duration_hw, rng.poisson(rate_hw * duration_hw))
        t = np.unique(np.round(t[(t >= 0) & (t < duration_hw)] / TICK_S).astype(np.int64))
        ticks.append(t)
        rows.append(np.full(len(t), r))
    ticks, rows = np.concatenate(ticks), np.concatenate(rows)
    order = np.argsort(ticks, kind="stable")
    return ticks[order], rows[order]


def _weights(conn) -> np.ndarray:
    import host
    p = conn.profile
    prog = conn.program()
    tw = prog.read_words(conn.regmap.addresses("synapse", "weights"))
    tl = prog.read_words(conn.regmap.addresses("synapse", "labels"))
    conn.run(prog)
    w, _ = host.synapse_values(conn.regmap, tw.values.reshape(p.synapse_arrays * p.rows, -1),
                               tl.values.reshape(p.synapse_arrays * p.rows, -1))
    return w[:p.rows]


def measure_offsets(conn, reads: int = 8) -> np.ndarray:
    """Per synapse, the rule's d = acausal/2 - causal/2 with no activity (mean of reads)."""
    import firmware
    p = conn.profile
    rule = firmware.RuleOnChip(conn, "corr_read", ppus=[0])
    d = []
    for k in range(reads):
        rule.start("once", first_row=0, rows=p.rows, reset=1, load=k == 0)
        rule.wait(timeout_hw_seconds=1e-3, step_hw_seconds=50e-6)
        raw = rule.data(2 * p.rows * p.columns).astype(np.int64)
        c, a = raw[:p.rows * p.columns], raw[p.rows * p.columns:]
        d.append((a >> 1) - (c >> 1))
    return np.round(np.mean(d, axis=0)).astype(np.int64).reshape(p.rows, p.columns)


def run_chip(url: str, serial: int, *, lambda_pos: int = PARAMS["lambda_pos"],
             lambda_neg: int = PARAMS["lambda_neg"], theta: int = PARAMS["theta"], duration_bio: float = 60.0,
             period_bio: float = 1.0, rate_bio: float = 20.0, jitter_bio: float = 1e-3, reads: int = 30,
             seed: int = 1, progress=None) -> Trial:
    import firmware
    import host
    sep = "&" if "?" in url else "?"
    with host.connect(f"{url}{sep}serial={serial}") as conn:
        p = conn.profile
        rng = np.random.default_rng([seed, serial])
        correlated = np.arange(p.rows) < p.rows // 2
        w0 = np.zeros((p.synapse_arrays * p.rows, p.columns), np.int64)
        w0[:p.rows] = rng.integers(24, 41, (p.rows, p.columns))
        configure(conn, w0)
        offsets = measure_offsets(conn)
        rule = firmware.RuleOnChip(conn, "stdp_mult", ppus=[0])
        period_us = int(round(p.bio_to_hw(period_bio) * 1e6))
        rule.start("periodic", period_us=period_us, data=offsets.astype(np.int8).view(np.uint8),
                   theta=theta, lambda_pos=lambda_pos, lambda_neg=lambda_neg, w_max=63,
                   offset_stride=2 * 16 * p.ppu_slices)
        chunk_hw = p.bio_to_hw(duration_bio) / reads
        times, weights = [0.0], [_weights(conn)]
        spikes_out = 0
        for k in range(reads):
            ticks, rows = inputs(rng, correlated, 1 / p.bio_to_hw(1 / rate_bio), chunk_hw, p.bio_to_hw(jitter_bio))
            prog = conn.program()
            prog.timer_reset()
            prog.spikes(row_label(rows), ticks)
            prog.wait_until(int(round(chunk_hw / TICK_S)))
            res = conn.run(prog)
            spikes_out += len(res.spikes)
            times.append((k + 1) * duration_bio / reads)
            weights.append(_weights(conn))
            if progress is not None:
                progress()
        updates, overruns = rule.updates()[0], rule.overruns()[0]
        rule.stop(timeout_hw_seconds=10e-3)
    return Trial(serial, np.array(times), np.array(weights), correlated, updates, overruns,
                 spikes_out / p.columns / duration_bio, p.bio_to_hw(duration_bio))


# --------------------------------------------------------------------------- the experiment
@dataclass
class Learning:
    trials: list[Trial]
    controls: list[Trial]
    params: dict


def run(url: str = "twin:dls", serials=(1, 2, 3, 4, 5), duration_bio: float = 60.0, control: bool = True,
        show_progress: bool = True, **kw) -> Learning:
    """The learning run on each chip, and (control) the same with both learning rates 0."""
    from tqdm import tqdm
    reads = kw.pop("reads", 30)
    params = dict(PARAMS, **{k: kw.pop(k) for k in list(kw) if k in PARAMS})
    runs = [(s, params) for s in serials] + ([(s, dict(params, lambda_pos=0, lambda_neg=0)) for s in serials]
                                             if control else [])
    bar = tqdm(total=len(runs) * reads, desc="STDP learning", unit="read", disable=not show_progress, leave=False)
    out = Learning([], [], params)
    try:
        for k, (s, prm) in enumerate(runs):
            bar.set_postfix_str(f"serial {s}" + (" (control)" if k >= len(serials) else ""))
            tr = run_chip(url, s, duration_bio=duration_bio, reads=reads, progress=bar.update, **prm, **kw)
            (out.trials if k < len(serials) else out.controls).append(tr)
    finally:
        bar.close()
    return out


def summary(res: Learning) -> str:
    lines = ["| serial | run | correlated: start -> end | uncorrelated: start -> end | separation d' | "
             "output rate (Hz) | updates |", "|---:|---|---:|---:|---:|---:|---:|"]
    for name, trials in (("learning", res.trials), ("control (rates 0)", res.controls)):
        for t in trials:
            (c0, u0), (c1, u1) = t.group_means(0), t.group_means(-1)
            lines.append(f"| {t.serial} | {name} | {c0:.1f} -> {c1:.1f} | {u0:.1f} -> {u1:.1f} | "
                         f"{t.separation():.2f} | {t.out_rate:.1f} | {t.updates} ({t.overruns} late) |")
    lines.append("")
    lines.append(f"rule: stdp_mult, theta {res.params['theta']}, lambda_pos {res.params['lambda_pos']}/128, "
                 f"lambda_neg {res.params['lambda_neg']}/128; d' = (mean correlated - mean uncorrelated) / "
                 "pooled sd of the final weights")
    return "\n".join(lines)


def plot(res: Learning, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = res.trials[0]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.5))
    a = ax[0]
    for r in range(t0.weights.shape[1]):
        col = "C3" if t0.correlated[r] else "C0"
        for c in range(0, t0.weights.shape[2], 8):
            a.plot(t0.times, t0.weights[:, r, c], color=col, lw=0.4, alpha=0.5)
    a.plot(t0.times, t0.weights[:, t0.correlated].mean(axis=(1, 2)), "C3", lw=2.5, label="correlated (mean)")
    a.plot(t0.times, t0.weights[:, ~t0.correlated].mean(axis=(1, 2)), "C0", lw=2.5, label="uncorrelated (mean)")
    a.set_xlabel("biological time (s)")
    a.set_ylabel("weight (6 bit)")
    a.set_title(f"weight trajectories, serial {t0.serial} (thin: every 8th column)")
    a.legend(fontsize=8)
    a = ax[1]
    bins = np.arange(-0.5, 64.5, 2)
    a.hist(t0.weights[-1][t0.correlated].ravel(), bins, alpha=0.6, color="C3", label="correlated")
    a.hist(t0.weights[-1][~t0.correlated].ravel(), bins, alpha=0.6, color="C0", label="uncorrelated")
    a.hist(t0.weights[0].ravel(), bins, histtype="step", color="k", label="all, at the start")
    a.set_xlabel("final weight")
    a.set_title(f"final weights, serial {t0.serial}")
    a.legend(fontsize=8)
    a = ax[2]
    x = np.arange(len(res.trials))
    for k, (trials, mark, name) in enumerate(((res.trials, "o", "learning"), (res.controls, "x", "control"))):
        if not trials:
            continue
        c = [t.group_means()[0] for t in trials]
        u = [t.group_means()[1] for t in trials]
        a.plot(x[:len(c)] + 0.1 * k, c, mark, color="C3", label=f"correlated, {name}")
        a.plot(x[:len(u)] + 0.1 * k, u, mark, color="C0", label=f"uncorrelated, {name}")
    a.set_xticks(x, [str(t.serial) for t in res.trials])
    a.set_xlabel("chip serial")
    a.set_ylabel("mean final weight")
    a.set_title("per chip")
    a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    import argparse
    import time
    ap = argparse.ArgumentParser(prog="bss-twin demo stdp", formatter_class=argparse.RawDescriptionHelpFormatter,
                                 description=__doc__,
                                 epilog="Writes a PNG (weight trajectories, final weights per group, per-chip "
                                        "means) and prints a table per chip.")
    ap.add_argument("--url", default="twin:dls", help="chip without its serial (default twin:dls)")
    ap.add_argument("--serials", type=serial_list, default=[1, 2, 3, 4, 5], help="chips (default 1,2,3,4,5)")
    ap.add_argument("--duration", type=float, default=60.0, help="biological seconds of learning (default 60)")
    ap.add_argument("--no-control", action="store_true", help="skip the control runs with learning rates 0")
    ap.add_argument("--png", default="stdp.png", help="plot file (default stdp.png; '' to skip)")
    args = ap.parse_args(argv)
    serials = args.serials
    t0 = time.perf_counter()
    res = run(args.url, serials, args.duration, not args.no_control)
    wall = time.perf_counter() - t0
    print(summary(res))
    hw = sum(t.hw_seconds for t in res.trials + res.controls)
    print(f"{len(res.trials) + len(res.controls)} runs, {hw * 1e3:.0f} ms of hardware time "
          f"({args.duration:g} s biological each), {wall:.1f} s wall")
    if args.png:
        plot(res, args.png)
        print(f"wrote {args.png}")
    return 0
