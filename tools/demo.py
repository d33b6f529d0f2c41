"""`bss-twin demo`: a first experiment on a chip, by default the in-process twin.

What it does, all through the wire protocol:
  1. identifies the chip (profile, serial, model version);
  2. writes a random synapse matrix and neuron configuration with containers,
     reads everything back and checks it;
  3. plays a Poisson spike train into the chip with the event crossbar in
     loopback, records the events coming back and a membrane-ADC stream;
  4. prints a summary and writes a PNG (input/output raster + ADC trace).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

HELP = __doc__


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("url", nargs="?", default=None,
                    help="chip to use (default: $BSS_CONNECTION, else the in-process twin twin:dls?serial=3)")
    ap.add_argument("--rate", type=float, default=20.0, help="input rate per source in Hz, biological (default 20)")
    ap.add_argument("--duration", type=float, default=1.0, help="biological seconds to play (default 1)")
    ap.add_argument("--sources", type=int, default=16, help="number of input spike sources (default 16)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the random input and weights")
    ap.add_argument("--png", default="demo.png", help="where to write the plot (default demo.png; '' to skip)")


def run(args: argparse.Namespace) -> int:
    import host
    from host import units

    url = args.url
    if url is None:
        import os
        url = os.environ.get("BSS_CONNECTION") or "twin:dls?serial=3"
    t0 = time.perf_counter()
    conn = host.connect(url)
    p = conn.profile
    print(f"chip: {p.chip} (profile {p.name}), serial {conn.serial}, model version {conn.version}, via {conn.url}")
    rng = np.random.default_rng(args.seed)

    # -- configuration: synapse matrix and neurons, then read back
    rows = p.synapse_arrays * p.rows
    wmax = conn.regmap.register("synapse", "weights").field("weight0").limit
    lmax = conn.regmap.register("synapse", "labels").field("label0").limit
    weights = rng.integers(0, wmax + 1, (rows, p.columns))
    labels = rng.integers(0, lmax + 1, (rows, p.columns))
    words = host.synapse_words(conn.regmap, weights, labels)           # (2, rows, quads)
    prog = conn.program()
    prog.write_words(conn.regmap.addresses("synapse", "weights"), words[0].ravel())
    prog.write_words(conn.regmap.addresses("synapse", "labels"), words[1].ravel())
    for n in range(p.neurons):
        prog.write(host.NeuronOnChip(n), host.NeuronConfig(enable=1, refractory=10))
    tw = prog.read_words(conn.regmap.addresses("synapse", "weights"))
    tl = prog.read_words(conn.regmap.addresses("synapse", "labels"))
    tn = prog.read(host.NeuronOnChip(p.neurons - 1), host.NeuronConfig)
    res = conn.run(prog)
    w_back, l_back = host.synapse_values(conn.regmap, tw.values.reshape(rows, -1), tl.values.reshape(rows, -1))
    ok = np.array_equal(w_back, weights) and np.array_equal(l_back, labels) and tn.value.enable == 1
    print(f"configured {p.synapses} synapses and {p.neurons} neurons in {res.words_sent} words "
          f"({res.wall_seconds * 1e3:.1f} ms); read-back {'matches' if ok else 'DIFFERS'}")
    if not ok:
        return 1

    # -- experiment: Poisson input through the crossbar, ADC stream
    hw_duration = p.bio_to_hw(args.duration)
    n_spikes = rng.poisson(args.rate * args.duration, args.sources)
    times = np.concatenate([np.sort(rng.uniform(0, hw_duration, k)) for k in n_spikes])
    sources = np.repeat(np.arange(args.sources), n_spikes)
    ticks = np.round(times * 125e6).astype(np.int64) + 1000
    prog = conn.program()
    prog.write(host.ChipOnly(), host.CrossbarConfig(loopback=1))
    period = max(1, units.seconds_to_ticks(hw_duration / 500))
    prog.write(host.ChipOnly(), host.MADCConfig(enable=1, source=2, period=period))
    prog.timer_reset()
    prog.spikes(sources, ticks)
    end = int(ticks.max(initial=0)) + units.us(10).ticks()
    prog.wait_until(end)
    prog.write(host.ChipOnly(), host.MADCConfig(enable=0))
    res = conn.run(prog)
    out = res.spikes
    lat = (np.sort(out["time"]) - np.sort(ticks)) if len(out) == len(ticks) else None
    print(f"played {len(ticks)} input spikes from {args.sources} sources over {args.duration:g} s biological "
          f"({hw_duration * 1e3:.2f} ms hardware); {len(out)} events came back"
          + (f", crossbar latency {int(lat.min())}..{int(lat.max())} ticks" if lat is not None and len(lat) else ""))
    print(f"membrane ADC: {len(res.madc)} samples (test-ramp source), every {period} ticks")
    if args.png:
        _plot(args.png, ticks, sources, out, res.madc, p)
        print(f"wrote {args.png}")
    print(f"done in {time.perf_counter() - t0:.2f} s wall")
    conn.close()
    return 0 if len(out) == len(ticks) else 1


def _plot(path, ticks, sources, out, madc, profile) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    to_ms = lambda t: np.asarray(t) * 8e-9 * profile.speedup * 1e3     # ticks -> biological ms
    fig, (a, b) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    a.scatter(to_ms(ticks), sources, s=6, marker="|", label="sent")
    a.scatter(to_ms(out["time"]), out["label"] + 0.3, s=6, marker="|", color="C3", label="returned")
    a.set_ylabel("label")
    a.legend(loc="upper right", fontsize=8)
    a.set_title(f"{profile.chip}: crossbar loopback")
    b.plot(to_ms(madc["time"]), madc["value"], lw=0.8)
    b.set_ylabel("MADC (test ramp)")
    b.set_xlabel("biological time (ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bss-twin demo", description=HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
