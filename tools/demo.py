"""`bss-twin demo`: a first neuron experiment on a chip, by default the
in-process `dls` twin (serial 3).

All through the wire protocol:
  1. identifies the chip (profile, serial, model version);
  2. configures the neurons (parameter cells: leak 0.4 V, threshold 0.6 V,
     reset 0.35 V, tau_mem 10 us, tau_syn 5 us hardware), a synapse matrix
     (random weights from SOURCES input rows, a quarter of them inhibitory) and
     the synapse drivers with containers, reads the configuration back and
     checks it;
  3. plays Poisson spike trains (RATE Hz biological per source) into the
     rows, records the neurons' output spikes with chip timestamps and the
     membrane of one neuron with the membrane ADC, and reads the spike
     counters;
  4. prints a summary and writes a PNG: input/output raster and the membrane.

With --scope, an oscilloscope on the readout pad (readout multiplexer on the
recorded neuron) captures the membrane during the run through pyvisa
(host.instruments); its trace goes into the PNG beside the ADC's.  Without a
resource the demo serves its own twin chip with a virtual scope
(docs/instruments.md) and connects to both over loopback.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from isa.regmap import LABEL_ROW_SHIFT
from isa.wire import FPGA_TICK_S

HELP = __doc__
#: Output label of neuron n: _OUTPUT_LABEL_BASE + n (event addresses from 1008 up, which no driver row
#: takes), so a recorded spike's label names its neuron.
_OUTPUT_LABEL_BASE = 0xFC00


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("url", nargs="?", default=None,
                    help="chip to use (default: $BSS_CONNECTION, else the in-process twin twin:dls?serial=3)")
    ap.add_argument("--rate", type=float, default=40.0, help="input rate per source in Hz, biological (default 40)")
    ap.add_argument("--duration", type=float, default=0.5, help="biological seconds to play (default 0.5)")
    ap.add_argument("--sources", type=int, default=16, help="input rows, each a Poisson source (default 16)")
    ap.add_argument("--neuron", type=int, default=0, help="neuron whose membrane the ADC records (default 0)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the random input and weights (default 1)")
    ap.add_argument("--png", default="demo.png", help="where to write the plot (default demo.png; '' to skip)")
    ap.add_argument("--scope", nargs="?", const="", default=None, metavar="RESOURCE",
                    help="also capture the membrane with an oscilloscope on the readout pad: a VISA resource "
                         "(TCPIP0::HOST::PORT::SOCKET; with URL: the scope of that chip), or none for a twin "
                         "served by the demo with its own virtual scope")


#: The demo's neuron parameters (host.network units: volts, biological seconds, gm cells).
NEURON = dict(v_leak=0.40, v_threshold=0.60, v_reset=0.35, tau_mem=10e-3, tau_syn_exc=5e-3, tau_syn_inh=5e-3,
              tau_refrac=2e-3, gm_exc=60, gm_inh=60)


def _cells(p) -> dict[str, int]:
    """Cell values (LSB) for the demo's neuron parameters, through the
    network layer's nominal resolver: the transfer functions of docs/model.md
    (no calibration: mismatch stays)."""
    from host.network import CellResolver
    return {name: int(v[0]) for name, v in CellResolver().cells(p, np.zeros(1, np.int64), NEURON).items()}


def run(args: argparse.Namespace) -> int:
    for name, value, ok, need in (("--sources", args.sources, args.sources >= 1, "at least 1"),
                                  ("--duration", args.duration, args.duration > 0, "positive (biological seconds)"),
                                  ("--rate", args.rate, args.rate >= 0, "zero or more (Hz)")):
        if not ok:
            print(f"bss-twin demo: {name} {value:g} must be {need}", file=sys.stderr)
            return 2
    url = args.url
    if url is None:
        import os
        url = os.environ.get("BSS_CONNECTION") or "twin:dls?serial=3"
    t0 = time.perf_counter()
    served = None
    if args.scope == "":
        if args.url is not None:
            print("bss-twin demo: --scope needs the scope's VISA resource when a URL is given", file=sys.stderr)
            return 2
        served = _serve_twin_with_scope()
        url, args.scope = served[0].url, served[1].resource
    try:
        return _run(args, url, t0)
    finally:
        if served is not None:
            served[1].stop()
            served[0].stop()


def _serve_twin_with_scope():
    """The demo's chip (dls, serial 3) on a loopback server, with a virtual scope."""
    from twin.chip import Chip
    from twin.scope import ScopeServer
    from twin.server import TwinServer

    chip = Chip("dls", 3)
    return TwinServer(chip, shared=True).start(), ScopeServer(chip).start()


def _run(args: argparse.Namespace, url: str, t0: float) -> int:
    import host
    from host import units

    conn = host.connect(url)
    p = conn.profile
    print(f"chip: {p.chip} (profile {p.name}), serial {conn.serial}, model version {conn.version}, via {conn.url}")
    if not 0 <= args.neuron < p.neurons:
        print(f"--neuron must lie in 0..{p.neurons - 1}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    rows_total = p.synapse_arrays * p.rows
    sources = min(args.sources, p.rows)
    n_inh = sources // 4
    # ---------------------------------------------------------------- configuration over the wire
    wmax = conn.regmap.register("synapse", "weights").field("weight0").limit
    weights = np.zeros((rows_total, p.columns), np.int64)
    for a in range(p.synapse_arrays):
        block = rng.integers(0, wmax + 1, (sources, p.columns))
        block[rng.random(block.shape) < 0.4] = 0
        weights[a * p.rows:a * p.rows + sources] = block
    labels = np.zeros_like(weights)
    words = host.synapse_words(conn.regmap, weights, labels)
    cells = _cells(p)
    prog = conn.program()
    prog.write(host.ChipOnly(), host.CapMemConfig(enable=1))
    prog.write_words(conn.regmap.addresses("synapse", "weights"), words[0].ravel())
    prog.write_words(conn.regmap.addresses("synapse", "labels"), words[1].ravel())
    for a in range(p.synapse_arrays):
        for r in range(sources):
            prog.write(host.SynapseDriverOnChip(r, a),
                       host.SynapseDriverConfig(enable=1, inhibitory=int(r >= sources - n_inh), gain=8, source=0))
    for n in range(p.neurons):
        for name, value in cells.items():
            prog.write(host.CapMemCellOnChip(n, name), host.CapMemCell(value))
        prog.write(host.NeuronOnChip(n), host.NeuronConfig(enable=1, refractory=40, refractory_clock=4,
                                                           readout=int(n == args.neuron)))
        prog.write(host.NeuronOnChip(n), host.NeuronLabel(label=_OUTPUT_LABEL_BASE + n, enable=1))   # row 1008+: no driver
        prog.write(host.NeuronOnChip(n), host.SpikeCounterReset())
    prog.write(host.ChipOnly(), host.CrossbarConfig(loopback=0, recurrent=0, record=1))
    if args.scope:
        prog.write(host.ChipOnly(), host.ReadoutMuxConfig(source=1, neuron=args.neuron))
    tw = prog.read_words(conn.regmap.addresses("synapse", "weights"))
    tl = prog.read_words(conn.regmap.addresses("synapse", "labels"))
    tn = prog.read(host.NeuronOnChip(args.neuron), host.NeuronConfig)
    tc = prog.read(host.CapMemCellOnChip(args.neuron, p.cell_for("e_l")), host.CapMemCell)
    res = conn.run(prog)
    w_back, l_back = host.synapse_values(conn.regmap, tw.values.reshape(rows_total, -1),
                                         tl.values.reshape(rows_total, -1))
    ok = (np.array_equal(w_back, weights) and np.array_equal(l_back, labels) and tn.value.enable == 1
          and tc.value.value == cells[p.cell_for("e_l")])
    print(f"configured {p.neurons} neurons, {int((weights > 0).sum())} synapses from {sources} input rows "
          f"per array ({n_inh} inhibitory) in {res.words_sent} words ({res.wall_seconds * 1e3:.1f} ms); "
          f"read-back {'matches' if ok else 'DIFFERS'}")
    if not ok:
        return 1
    # ---------------------------------------------------------------- the experiment
    hw_duration = p.bio_to_hw(args.duration)
    settle = units.us(50 * 1000 / p.speedup).ticks()          # membranes settle at rest first
    dur_ticks = units.seconds_to_ticks(hw_duration)
    n_spikes = rng.poisson(args.rate * args.duration, sources * p.synapse_arrays)
    in_ticks = np.concatenate([np.sort(rng.integers(0, dur_ticks, k)) for k in n_spikes]) + settle
    src = np.repeat(np.arange(sources * p.synapse_arrays), n_spikes)
    in_rows = (src // sources) * p.rows + src % sources
    period = max(1, dur_ticks // 4000)
    prog = conn.program()
    prog.timer_reset()
    prog.write(host.ChipOnly(), host.MADCConfig(enable=1, source=0, neuron=args.neuron, period=period))
    prog.spikes(in_rows << LABEL_ROW_SHIFT, in_ticks)
    prog.wait_until(settle + dur_ticks)
    prog.write(host.ChipOnly(), host.MADCConfig(enable=0))
    counters = [prog.read(host.NeuronOnChip(n), host.SpikeCounter) for n in range(p.neurons)]
    trace = None
    if args.scope:
        trace, res = _capture(args.scope, conn, prog, hw_duration)
    else:
        res = conn.run(prog)
    out = res.spikes[res.spikes["time"] >= settle]
    neuron_of = out["label"].astype(np.int64) - _OUTPUT_LABEL_BASE
    counted = sum(c.value.count for c in counters)
    rates = np.bincount(neuron_of, minlength=p.neurons) / args.duration
    madc = res.madc[res.madc["time"] >= settle]
    mv = p.analog.madc_volts(madc["value"]) * 1e3
    print(f"played {len(in_ticks)} input spikes over {args.duration:g} s biological "
          f"({hw_duration * 1e3:.2f} ms hardware)")
    print(f"output: {len(out)} spikes from {int((rates > 0).sum())} of {p.neurons} neurons, "
          f"rate {rates.mean():.1f} Hz mean, {rates.max():.1f} Hz max (biological); "
          f"spike counters {counted}" + (f"; {res.events_dropped} events dropped by the FIFO"
                                         if res.events_dropped else ""))
    if len(mv):
        print(f"membrane of neuron {args.neuron}: {len(mv)} ADC samples every {period} ticks, "
              f"{mv.min():.0f}..{mv.max():.0f} mV, mean {mv.mean():.0f} mV")
    if trace is not None:
        print(f"scope: {len(trace.volts)} points every {trace.x_increment * 1e9:.1f} ns, "
              f"{trace.volts.min() * 1e3:.0f}..{trace.volts.max() * 1e3:.0f} mV, triggered on the membrane "
              f"rising through {SCOPE_LEVEL * 1e3:.0f} mV")
    if args.png:
        _plot(args.png, in_ticks - settle, in_rows, out, madc, mv, settle, p, args.neuron, trace)
        print(f"wrote {args.png}")
    print(f"done in {time.perf_counter() - t0:.2f} s wall")
    conn.close()
    return 0 if counted == len(res.spikes) + res.events_dropped else 1


#: The scope's trigger: the membrane rising through this (the demo's leak is 0.4 V, threshold 0.6 V).
SCOPE_LEVEL = 0.45


def _capture(resource: str, conn, prog, hw_duration: float):
    """Run `prog` with the scope armed on the membrane: a record of half the
    run from shortly before the trigger, so that it ends within the run (the
    chip's time passes only while programs run)."""
    from host.instruments import Oscilloscope

    with Oscilloscope(resource) as scope:
        per_div = hw_duration / 24
        scope.configure(volts_per_div=0.05, offset=-0.45, seconds_per_div=per_div, position=5 * per_div,
                        points=12000)
        trace, res = scope.capture(lambda: conn.run(prog), level=SCOPE_LEVEL, slope="positive",
                                   speedup=conn.profile.speedup)
    return trace, res


def _plot(path, in_ticks, in_rows, out, madc, mv, settle, profile, neuron, trace=None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    to_ms = lambda t: np.asarray(t) * FPGA_TICK_S * profile.speedup * 1e3     # ticks -> biological ms
    rows = 3 if trace is None else 4
    fig, axes = plt.subplots(rows, 1, figsize=(9, 7 if trace is None else 9),
                             gridspec_kw=dict(height_ratios=[1, 2, 2, 2][:rows]))
    a, b, c = axes[:3]
    a.sharex(c)
    b.sharex(c)
    a.scatter(to_ms(in_ticks), in_rows, s=4, marker="|", color="C0")
    a.set_ylabel("input row")
    a.set_title(f"{profile.chip} twin: Poisson input, output spikes, membrane")
    b.scatter(to_ms(out["time"] - settle), out["label"].astype(int) - _OUTPUT_LABEL_BASE, s=6, marker="|", color="C3")
    b.set_ylabel("neuron")
    c.plot(to_ms(madc["time"] - settle), mv, lw=0.7)
    c.set_ylabel(f"membrane {neuron} (mV)")
    c.set_xlabel("biological time (ms)")
    if trace is not None:
        d = axes[3]
        d.plot(trace.bio_times * 1e3, trace.volts * 1e3, lw=0.7, color="C2")
        d.axvline(0, color="0.6", lw=0.6, ls=":")
        d.set_ylabel("scope, readout pad (mV)")
        d.set_xlabel(f"biological time from the scope's trigger (ms; {SCOPE_LEVEL * 1e3:.0f} mV rising)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


EXPERIMENTS = {"correlation": "tools.experiments.correlation", "stdp": "tools.experiments.stdp",
               "itl": "tools.experiments.itl", "pynn": "tools.experiments.pynn"}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in EXPERIMENTS:
        import importlib
        return importlib.import_module(EXPERIMENTS[argv[0]]).main(argv[1:])
    ap = argparse.ArgumentParser(prog="bss-twin demo", description=HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Experiments of the hybrid-plasticity seed: `bss-twin demo correlation` "
                                        "(sensor characterisation), `bss-twin demo stdp` (learning with "
                                        "multiplicative STDP); of the wafer seed: `bss-twin demo itl` (in-the-loop "
                                        "training of a converted deep network); each takes --help.")
    add_arguments(ap)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
