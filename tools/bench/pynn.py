"""The PyNN front end end to end: a user's script on the twin against the same
script on pyNN.brian2, in one process.

    .venv/bin/python -m tools.bench.pynn             # about 1-2 min
    .venv/bin/python -m tools.bench.pynn --quick     # one repeat, 1 s of network

Part 1, static network: the `bss-twin demo pynn` network (tools/experiments/pynn.py:
80 excitatory and 20 inhibitory IF_curr_exp neurons, 32 Poisson sources at 40 Hz,
recurrent FixedProbabilityConnector(0.1), v of one neuron) for DURATION ms on
`twin:hx` (uncalibrated: the calibration is a one-off, cached) and on pyNN.brian2
(PyNN's reference backend, dt 0.1 ms, Brian2's numpy code generation: its default
cython target compiles every new network again, 50 s a network in one process here),
each from setup() to end() as a script runs it.  The twin's time is split into what the
network layer's `Network.run` took (the chip program: configuration, playback,
readout over the in-process link) and the rest (PyNN objects, mapping, neo).

Part 2, plasticity: the test network of tests/pynn/test_plasticity.py (one neuron,
a driven static input, 8 plastic inputs with stdp_mult every 200 ms) for DURATION
ms on `twin:dls`, with PlasticSynapse against the same network with StaticSynapse
(the reference): what the offsets, the rule on the PPU (co-simulated with the
analog core) and the read-back cost.

Part 3, membranes: the static network with v of one excitatory neuron (the membrane
ADC: the reference) against v of 10 through the column ADCs, sampled every 1 ms and
every 0.25 ms (at most 4000 samples a run, host.network.SAMPLES_PER_RUN).

Medians of the repeats, the setups interleaved; wall clock.  Timings are never
asserted.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np


def _static(sim, url, duration, phases, v_neurons=1, interval=None):
    from tools.experiments.pynn import network
    t0 = time.perf_counter()
    sim.setup(timestep=0.1, **({"url": url} if url else {}))
    exc, inh = network(sim, duration, v_neurons=v_neurons, v_interval=interval)
    sim.end()
    phases.setdefault("total", []).append(time.perf_counter() - t0)
    return sum(len(t) for t in exc.spiketrains) / len(exc.spiketrains) / duration * 1e3


def _plastic(sim, url, duration, plastic):
    t0 = time.perf_counter()
    sim.setup(timestep=0.1, url=url)
    period = 200.0
    T = (np.array([40.0, 65.0, 90.0, 115.0, 140.0]) + period * np.arange(int(duration / period))[:, None]).ravel()
    drive = sim.Population(3, sim.SpikeSourceArray(spike_times=T))
    pre = sim.Population(8, sim.SpikeSourceArray(spike_times=np.sort(np.concatenate([T - 3.0, T + 3.0]))))
    cell = sim.Population(1, sim.IF_curr_exp(tau_m=10.0, tau_refrac=10.0))
    sim.Projection(drive, cell, sim.AllToAllConnector(), sim.StaticSynapse(weight=2.0))
    if plastic:
        rule = sim.FirmwareRule("stdp_mult", period=period, w_max=2.0, theta=2, lambda_pos=64, lambda_neg=64)
        syn = sim.PlasticSynapse(weight=0.4, plasticity_rule=rule)
    else:
        syn = sim.StaticSynapse(weight=0.4)
    proj = sim.Projection(pre, cell, sim.AllToAllConnector(), syn)
    cell.record("spikes")
    sim.run(duration)
    w = np.asarray(proj.get("weight", format="array")).ravel()
    sim.end()
    return time.perf_counter() - t0, w


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench.pynn", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one repeat, 1 s of network")
    ap.add_argument("--duration", type=float, default=None, help="biological ms (default 5000, --quick 1000)")
    args = ap.parse_args(argv)
    duration = args.duration or (1000.0 if args.quick else 5000.0)
    repeats = 1 if args.quick else 3
    warnings.simplefilter("ignore")
    import host.network
    import host.pynn as twin
    import pyNN.brian2 as brian2
    import brian2 as b2
    b2.prefs.codegen.target = "numpy"
    b2.BrianLogger.log_level_warn()

    inner = []
    run = host.network.Network.run

    def timed_run(self, *a, **kw):
        t0 = time.perf_counter()
        try:
            return run(self, *a, **kw)
        finally:
            inner.append(time.perf_counter() - t0)

    host.network.Network.run = timed_run
    print(f"PyNN end to end, {duration:g} ms of network, median of {repeats} (wall clock, after one warm-up each)")
    _static(twin, "twin:hx", 200.0, {})                 # numba caches, imports
    _static(brian2, None, 200.0, {})                     # Brian2's code generation
    t_twin, t_ref, t_inner, rates = {}, {}, [], []
    for _ in range(repeats):
        inner.clear()
        rates.append(_static(twin, "twin:hx", duration, t_twin))
        t_inner.append(sum(inner))
        _static(brian2, None, duration, t_ref)
    a, b, c = (statistics.median(x) for x in (t_twin["total"], t_ref["total"], t_inner))
    per = 1e3 / duration
    print(f"  Brunel network on twin:hx      {a * per:6.2f} s per s of network  (Network.run {c * per:.2f} s, "
          f"the rest {(a - c) * per:.2f} s); exc rate {statistics.median(rates):.1f} Hz")
    print(f"  the same on pyNN.brian2        {b * per:6.2f} s per s of network  (the reference)")
    print(f"  twin / brian2                  {a / b:6.2f}")
    host.network.Network.run = run
    _plastic(twin, "twin:dls", 400.0, True)
    tp, ts, learned = [], [], None
    for _ in range(repeats):
        t, learned = _plastic(twin, "twin:dls", duration, True)
        tp.append(t)
        ts.append(_plastic(twin, "twin:dls", duration, False)[0])
    a, b = statistics.median(tp), statistics.median(ts)
    print(f"  plastic (stdp_mult, twin:dls)  {a * per:6.2f} s per s of network; weights 0.40 -> "
          f"{learned.min():.2f} .. {learned.max():.2f} nA")
    print(f"  the same, StaticSynapse        {b * per:6.2f} s per s of network  (the reference)")
    print(f"  plastic / static               {a / b:6.2f}")
    times = {k: [] for k in ("one", "1", "0.25")}
    for _ in range(repeats):
        for key, n, dt in (("one", 1, None), ("1", 10, 1.0), ("0.25", 10, 0.25)):
            ph = {}
            _static(twin, "twin:hx", duration, ph, v_neurons=n, interval=dt)
            times[key].append(ph["total"][0])
    ref = statistics.median(times["one"])
    print(f"  v of 1 neuron (membrane ADC)   {ref * per:6.2f} s per s of network  (the reference)")
    for key in ("1", "0.25"):
        m = statistics.median(times[key])
        print(f"  v of 10 (column ADCs, {key:>4} ms) {m * per:6.2f} s per s of network  {m / ref:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
