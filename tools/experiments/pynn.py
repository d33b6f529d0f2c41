"""`bss-twin demo pynn`: a PyNN script on the chip (host.pynn, docs/pynn.md).

A small balanced network after Brunel (2000, J. Comput. Neurosci. 8:183): an
excitatory and an inhibitory population of IF_curr_exp neurons with sparse
random recurrent connections (FixedProbabilityConnector), inhibition g times
stronger than excitation, driven by Poisson sources.  Written against the
PyNN API only: the same function runs on pyNN.brian2 (`--reference`).
Prints rates, the irregularity of the firing (CV of the inter-spike
intervals) and the balance of the input; writes a raster and the membrane of
one excitatory neuron (default pynn.png).

The chip's neurons are calibrated first (host.calibration, cached per chip)
and the network runs through that calibration; --uncalibrated runs through
the nominal cells.  Default chip: twin:hx (a recurrent network needs a synapse row per projecting
neuron: dls has 32 rows, hx 256 per array).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

N_EXC, N_INH, N_EXT = 80, 20, 32
CELL = dict(tau_m=10.0, cm=0.25, v_rest=-65.0, v_reset=-65.0, v_thresh=-50.0, tau_refrac=2.0, tau_syn_E=5.0,
            tau_syn_I=5.0)


def network(sim, duration: float, g: float = 6.0, w_exc: float = 0.12, w_ext: float = 0.12, rate: float = 40.0,
            seed: int = 1, v_neurons: int = 1, v_interval: float | None = None):
    """Build and run the network with the PyNN module `sim` (set up by the caller);
    v of the first `v_neurons` excitatory neurons (every `v_interval` ms, default the timestep)."""
    rng = sim.NumpyRNG(seed=seed)
    ext = sim.Population(N_EXT, sim.SpikeSourcePoisson(rate=rate), label="ext")
    exc = sim.Population(N_EXC, sim.IF_curr_exp(**CELL), label="exc")
    inh = sim.Population(N_INH, sim.IF_curr_exp(**CELL), label="inh")
    conn = sim.FixedProbabilityConnector(0.1, rng=rng)
    for post in (exc, inh):
        sim.Projection(ext, post, sim.FixedProbabilityConnector(0.5, rng=rng), sim.StaticSynapse(weight=w_ext),
                       receptor_type="excitatory")
        sim.Projection(exc, post, conn, sim.StaticSynapse(weight=w_exc), receptor_type="excitatory")
        sim.Projection(inh, post, conn, sim.StaticSynapse(weight=-g * w_exc), receptor_type="inhibitory")
    exc.record("spikes")
    inh.record("spikes")
    exc[0:v_neurons].record("v", sampling_interval=v_interval)
    sim.run(duration)
    return exc.get_data().segments[-1], inh.get_data().segments[-1]


def _cv(trains) -> float:
    cvs = [np.std(np.diff(t)) / np.mean(np.diff(t)) for t in trains if len(t) > 2]
    return float(np.mean(cvs)) if cvs else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bss-twin demo pynn", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url", nargs="?", default="twin:hx", help="chip (default twin:hx)")
    ap.add_argument("--duration", type=float, default=1000.0, help="biological ms (default 1000)")
    ap.add_argument("--png", default="pynn.png", help="the raster and membrane figure (default pynn.png; '' to skip)")
    ap.add_argument("--reference", action="store_true", help="run the same network on pyNN.brian2 as well")
    ap.add_argument("--uncalibrated", action="store_true",
                    help="skip the calibration (host.calibration, cached per chip; about 9 s on hx the first "
                         "time): the neurons then land off by the chip's fixed-pattern noise")
    args = ap.parse_args(argv)
    import host.pynn as sim
    t0 = time.time()
    cal = None
    if not args.uncalibrated:
        import host
        from host.calibration import calibrate
        with host.connect(args.url) as conn:
            cal = calibrate(conn, progress=False)
        print(f"calibrated {len(cal.neurons)} neurons ({int(cal.usable.sum())} usable) in {time.time() - t0:.1f} s")
    sim.setup(timestep=0.1, url=args.url, calibration=cal)
    exc, inh = network(sim, args.duration)
    name = sim.state.profile.name
    sim.end()
    wall = time.time() - t0
    runs = [("chip " + args.url + (" calibrated" if cal is not None else " uncalibrated"), exc, inh)]
    if args.reference:
        import pyNN.brian2 as ref
        ref.setup(timestep=0.1)
        runs.append(("pyNN.brian2",) + network(ref, args.duration))
        ref.end()
    for label, e, i in runs:
        te = [s.magnitude for s in e.spiketrains]
        ti = [s.magnitude for s in i.spiketrains]
        re = sum(map(len, te)) / N_EXC / args.duration * 1e3
        ri = sum(map(len, ti)) / N_INH / args.duration * 1e3
        print(f"{label}: exc {re:.1f} Hz, inh {ri:.1f} Hz, CV of ISIs exc {_cv(te):.2f} inh {_cv(ti):.2f}")
    print(f"{N_EXC}+{N_INH} IF_curr_exp neurons, {N_EXT} Poisson sources, {args.duration:g} ms on {name} "
          f"in {wall:.1f} s wall clock")
    if args.png:
        _plot(args.png, runs, args.duration)
        print(f"wrote {args.png}")
    return 0


def _plot(path, runs, duration) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, len(runs), figsize=(6 * len(runs), 6), squeeze=False, sharex=True)
    for k, (label, e, i) in enumerate(runs):
        ax = axes[0, k]
        for n, st in enumerate(e.spiketrains):
            ax.plot(st.magnitude, np.full(len(st), n), "|", color="tab:red", ms=3)
        for n, st in enumerate(i.spiketrains):
            ax.plot(st.magnitude, np.full(len(st), N_EXC + n), "|", color="tab:blue", ms=3)
        ax.set_ylabel("neuron (red exc, blue inh)")
        ax.set_title(label)
        v = e.analogsignals[0]
        axes[1, k].plot(v.times.rescale("ms").magnitude, v.magnitude[:, 0], lw=0.7)
        axes[1, k].axhline(CELL["v_thresh"], color="grey", ls=":")
        axes[1, k].set_xlabel("time (ms)")
        axes[1, k].set_ylabel("v of exc[0] (mV)")
        axes[1, k].set_xlim(0, duration)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
