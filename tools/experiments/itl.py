"""In-the-loop training of a converted deep network on a chip (the wafer
seed, Schmitt et al. 2017): a 64-32-32-10 network trained in software on
scikit-learn's 8x8 digits, mapped onto a BrainScaleS-1 `hicann` twin with
its distortions (fixed-pattern noise, 4-bit weights; add spike and synapse
loss with --loss) after calibrating the neurons it uses (cached per chip:
a chip is calibrated once), then trained in the loop: each iteration runs a batch on
the chip, counts every layer's spikes, and backpropagates through the ideal
network at the measured activations (host/itl.py).

Prints the test accuracy of the software network, of the mapped network
before training, and every few iterations after, with a control run that
does the same without updates; writes a PNG of the curves.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from ._setup import serial_list


def run(url: str = "twin:hicann", serials=(1,), iterations: int = 40, batch: int = 100, control: bool = True,
        loss: bool = False, calibrated: bool = True, hidden: int = 32, seed: int = 0,
        show_progress: bool = True) -> dict:
    import host
    from host import itl
    from tqdm import tqdm
    x_tr, y_tr, x_te, y_te = itl.digits(seed=seed)
    mlp = itl.train_software(x_tr, y_tr, hidden=hidden, seed=seed)
    shape = "-".join(str(n) for n in [mlp.weights[0].shape[0]] + [w.shape[1] for w in mlp.weights])
    out = {"software": itl.accuracy(mlp.predict(x_te), y_te), "url": url, "shape": shape, "runs": []}
    opts = "&spike_loss=0.05&synapse_loss=0.05" if loss else ""
    sep = "&" if "?" in url else "?"
    plan = [(s, True) for s in serials] + ([(s, False) for s in serials] if control else [])
    bar = tqdm(total=len(plan) * iterations, desc="in-the-loop training", unit="iteration",
               disable=not show_progress, leave=False)
    try:
        for s, update in plan:
            bar.set_postfix_str(f"serial {s}" + ("" if update else " (control)"))
            with host.connect(f"{url}{sep}serial={s}{opts}") as conn:
                cal = None
                if calibrated:
                    bar.set_postfix_str(f"serial {s}: calibrating")
                    cal = itl.calibrate_for(conn, mlp, progress=False)
                    bar.set_postfix_str(f"serial {s}" + ("" if update else " (control)"))
                mapped = itl.map_network(conn, mlp, x_tr[:100], calibration=cal)
                h = itl.train_in_the_loop(mapped, mlp, x_tr, y_tr, iterations=iterations, batch=batch,
                                          update=update, x_test=x_te, y_test=y_te, seed=seed, progress=bar.update)
            out["runs"].append(dict(serial=s, update=update, iteration=h["iteration"], test=h["test"],
                                    usable=None if cal is None else int(cal.usable.sum()),
                                    calibrated=None if cal is None else len(cal.neurons)))
    finally:
        bar.close()
    return out


def summary(res: dict) -> str:
    """A table: per serial and run, the mapped network before training, after
    the last iteration and the best evaluation; then mean and spread over serials."""
    lines = [f"software network: test accuracy {res['software']:.3f}", "",
             "| serial | run | mapped, before | after training | best |", "|---:|---|---:|---:|---:|"]
    for r in res["runs"]:
        lines.append(f"| {r['serial']} | {'in the loop' if r['update'] else 'control (no updates)'} | "
                     f"{r['test'][0]:.3f} | {r['test'][-1]:.3f} | {max(r['test']):.3f} |")
    for update in (True, False):
        runs = [r for r in res["runs"] if r["update"] == update]
        if len(runs) > 1:
            col = lambda f: np.array([f(r["test"]) for r in runs])
            cells = " | ".join(f"{v.mean():.3f} ± {v.std():.3f}" for v in
                               (col(lambda t: t[0]), col(lambda t: t[-1]), col(max)))
            lines.append(f"| mean ± sd | {'in the loop' if update else 'control (no updates)'} | {cells} |")
    return "\n".join(lines)


def plot(res: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, a = plt.subplots(figsize=(7, 4.5))
    a.axhline(res["software"], color="k", lw=1, label="software network")
    serials = sorted({r["serial"] for r in res["runs"]})
    for r in res["runs"]:                          # a serial's control in its training run's colour
        a.plot(r["iteration"], r["test"], "o-" if r["update"] else "x--", color=f"C{serials.index(r['serial']) % 10}",
               label=f"serial {r['serial']}" + ("" if r["update"] else ", control"))
    a.set_xlabel("in-the-loop iteration")
    a.set_ylabel("test accuracy")
    a.set_ylim(0, 1)
    a.set_title(f"digits {res['shape']} on {res['url']}")
    a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bss-twin demo itl", formatter_class=argparse.RawDescriptionHelpFormatter,
                                 description=__doc__)
    ap.add_argument("--url", default="twin:hicann", help="chip without its serial (default twin:hicann)")
    ap.add_argument("--serials", type=serial_list, default=[1], help="chips (default 1)")
    ap.add_argument("--iterations", type=int, default=40, help="in-the-loop iterations (default 40)")
    ap.add_argument("--batch", type=int, default=100, help="samples per iteration (default 100)")
    ap.add_argument("--no-control", action="store_true", help="skip the control runs without updates")
    ap.add_argument("--loss", action="store_true", help="also lose 5 %% of the spikes and synapses (BrainScaleS-1)")
    ap.add_argument("--no-calibration", action="store_true",
                    help="map through the nominal cells instead of calibrating the neurons first")
    ap.add_argument("--png", default="itl.png", help="plot file (default itl.png; '' to skip)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    res = run(args.url, args.serials, args.iterations, args.batch, not args.no_control, args.loss,
              not args.no_calibration)
    print(summary(res))
    print(f"{time.perf_counter() - t0:.1f} s wall")
    if args.png:
        plot(res, args.png)
        print(f"wrote {args.png}")
    return 0
