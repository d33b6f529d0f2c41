"""Analog-core benchmark: a full `hx` chip against Brian2 on the same network.

    .venv/bin/python -m tools.bench.analog              # full run (about 1 min with Brian2 C++)
    .venv/bin/python -m tools.bench.analog --quick      # 3 repeats, no run over the wire

Network: every neuron of an `hx` twin (512, tau_mem 10 us, tau_syn 5 us
hardware, refractory 2.6 us), every synapse (2 x 256 rows x 256 columns =
131 072, weights 0..15, all labels 0, even rows excitatory, odd rows
inhibitory), a 10 Hz (biological) Poisson spike train into every row,
recurrent routing off, 1 s of biological time (1 ms hardware, 10 417 steps of
96 ns).  The chip keeps its fixed-pattern noise; its correlation sensors run
(the chip's default) unless --no-correlation.

Twin figures, wall time per biological second, for the chip as configured
(fixed-pattern noise, correlation sensors on), with the correlation sensors
off, and for an ideal chip (mismatch off, sensors off), which is exactly
Brian2's network (both give the same spike count):
  * cold, empty numba cache: a fresh process whose first advance compiles
    every kernel (NUMBA_CACHE_DIR pointed at an empty folder);
  * cold, cached: a fresh process, kernels loaded from numba's cache;
  * warm: later runs of the same process (median of the repeats);
  * wire: the same warm run as a playback program through the host library
    (in-process transport: input spikes encoded, sent, results decoded).
Brian2 (same run): the same neurons, synapses and input spike times, exact
integration at the same 0.096 ms step, C++ standalone when a compiler works
(simulation time reported by the standalone binary, and wall time including
code generation and compilation), and the numpy runtime target with --numpy.

Targets (reported as PASS/MISS, never asserted): warm <= 20 ms per biological
second, at least 2x faster than Brian2 C++ standalone, cold start <= 10 s.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from isa.wire import FPGA_TICK_S

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_WARM_S = 0.020
TARGET_COLD_S = 10.0
TARGET_RATIO = 2.0
STEP = 12
DT = STEP * FPGA_TICK_S                     # hardware step
BIO_SECONDS = 1.0
RATE_HZ = 10.0


def network(seed: int = 1):
    """Weights (512 rows x 256 columns), excitatory mask of rows, input (ticks, rows)."""
    from isa.profiles import PROFILES
    p = PROFILES["hx"]
    rng = np.random.default_rng(seed)
    rows = p.synapse_arrays * p.rows
    W = rng.integers(0, 16, (rows, p.columns))
    exc = np.arange(rows) % 2 == 0
    ticks_total = int(round(p.bio_to_hw(BIO_SECONDS) / FPGA_TICK_S))
    n = rng.poisson(RATE_HZ * BIO_SECONDS, rows)
    per_row = [np.unique(rng.integers(0, ticks_total // STEP, k)) for k in n]   # one spike per step at most
    steps = np.concatenate(per_row)
    src = np.repeat(np.arange(rows), [len(x) for x in per_row])
    order = np.argsort(steps, kind="stable")
    return W, exc, steps[order] * STEP, src[order], ticks_total


CELLS = dict(v_leak=0.40, v_threshold=0.60, v_reset=0.35)          # volts
TAUS = dict(i_bias_leak=10e-6, i_bias_syn_exc_tau=5e-6, i_bias_syn_inh_tau=5e-6)   # seconds
GM = 100                                                            # LSB of i_bias_syn_*_gm


def configure(chip, W, exc, correlation: bool):
    """Program the twin through its register bus (the executor's path)."""
    p, rm, bus = chip.profile, chip.regmap, chip.bus
    a = p.analog

    def write(block, reg, idx, words):
        addr = rm.addresses(block, reg, np.atleast_1d(idx))
        words = np.broadcast_to(np.asarray(words, np.int64), addr.shape).astype(np.uint32)
        res = bus.write(addr, words, np.full(len(addr), 0xF, np.uint8))
        assert (res.reason == 0).all()

    K = len(p.neuron_cells)
    n = np.arange(p.neurons)
    for name, v in CELLS.items():
        write("capmem", "neuron", n * K + p.neuron_cells.index(name), round(v / a.v_max * p.cell_max))
    for name, t in TAUS.items():
        write("capmem", "neuron", n * K + p.neuron_cells.index(name), round(a.tau_full_scale / t * p.cell_max))
    for name in ("i_bias_syn_exc_gm", "i_bias_syn_inh_gm"):
        write("capmem", "neuron", n * K + p.neuron_cells.index(name), GM)
    g = lambda name: p.global_cells.index(name)
    write("capmem", "global", [g("i_bias_correlation"), g("v_correlation_store"), g("v_correlation_baseline")],
          [170, 100, 900])                                   # tau 30 us, realistic operating point
    write("neuron", "config", n, rm.register("neuron", "config").encode(enable=1, refractory=20, refractory_clock=4))
    write("synapse", "weights", np.arange(W.size // 4), rm.register("synapse", "weights").pack_lanes("weight", W.ravel()))
    write("synapse", "labels", np.arange(W.size // 4), 0)
    dreg = rm.register("synapse_driver", "config")
    write("synapse_driver", "config", np.arange(len(exc)),
          [dreg.encode(enable=1, inhibitory=int(not e)) for e in exc])
    write("correlation", "config", [0], rm.register("correlation", "config").encode(enable=int(correlation)))


def twin_run(repeats: int, correlation: bool, mismatch: bool = True) -> dict:
    """Times of successive 1-s (biological) runs in this process."""
    from twin.chip import Chip
    W, exc, ticks, src, total = network()
    chip = Chip("hx", serial=1, mismatch=mismatch)
    configure(chip, W, exc, correlation)
    chip.advance(STEP * 2000, np.zeros(0, np.int64), np.zeros(0, np.int64))     # settle (compiles)
    times, spikes = [], []
    first = None
    for r in range(repeats):
        base = chip.now
        t0 = time.perf_counter()
        act = chip.advance(base + total, ticks + base, src << 6)
        times.append(time.perf_counter() - t0)
        spikes.append(len(act.spike_times))
    return dict(times=times, spikes=spikes, first=first)


def cold_subprocess(empty_cache: bool) -> float:
    """Wall time of the first 1-s run (including the settle run that compiles) in a fresh process."""
    env = dict(os.environ)
    tmp = None
    if empty_cache:
        tmp = tempfile.mkdtemp(prefix="bss_numba_")
        env["NUMBA_CACHE_DIR"] = tmp
    code = ("import time, sys; sys.path.insert(0, %r); t0 = time.perf_counter(); "
            "from tools.bench.analog import cold_body; cold_body(t0)") % str(ROOT)
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
        if out.returncode:
            raise RuntimeError(out.stderr)
        return float(out.stdout.strip().splitlines()[-1])
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def cold_body(t0: float) -> None:
    """Import, build and run one biological second; prints the wall seconds since t0
    (interpreter start excluded, imports included)."""
    from twin.chip import Chip
    W, exc, ticks, src, total = network()
    chip = Chip("hx", serial=1)
    configure(chip, W, exc, True)
    chip.advance(total, ticks, src << 6)
    print(time.perf_counter() - t0)


def wire_run(repeats: int) -> list[float]:
    """The same experiment as playback programs through the host library."""
    import host
    W, exc, ticks, src, total = network()
    times = []
    with host.connect("twin:hx?serial=1") as conn:
        # configuration through the twin's register bus would be the same words; use containers
        p = conn.profile
        prog = conn.program()
        a = p.analog
        for name, v in CELLS.items():
            for n in range(p.neurons):
                prog.write(host.CapMemCellOnChip(n, name), host.CapMemCell(round(v / a.v_max * p.cell_max)))
        for name, t in TAUS.items():
            for n in range(p.neurons):
                prog.write(host.CapMemCellOnChip(n, name), host.CapMemCell(round(a.tau_full_scale / t * p.cell_max)))
        for n in range(p.neurons):
            prog.write(host.CapMemCellOnChip(n, "i_bias_syn_exc_gm"), host.CapMemCell(GM))
            prog.write(host.CapMemCellOnChip(n, "i_bias_syn_inh_gm"), host.CapMemCell(GM))
            prog.write(host.NeuronOnChip(n), host.NeuronConfig(enable=1, refractory=20, refractory_clock=4))
        words = host.synapse_words(conn.regmap, W, np.zeros_like(W))
        prog.write_words(conn.regmap.addresses("synapse", "weights"), words[0].ravel())
        prog.write_words(conn.regmap.addresses("synapse", "labels"), words[1].ravel())
        for r, e in enumerate(exc):
            prog.write(host.SynapseDriverOnChip(r % p.rows, r // p.rows),
                       host.SynapseDriverConfig(enable=1, inhibitory=int(not e)))
        prog.timer_reset()
        prog.wait_until(STEP * 2000)
        conn.run(prog)
        for _ in range(repeats):
            prog = conn.program()
            prog.timer_reset()
            prog.spikes(src << 6, ticks)
            prog.wait_until(total)
            t0 = time.perf_counter()
            conn.run(prog)
            times.append(time.perf_counter() - t0)
    return times


BRIAN_SCRIPT = r'''
import json, sys, time
import numpy as np
sys.path.insert(0, {root!r})
t_start = time.perf_counter()
import brian2 as b2
from tools.bench.analog import network, CELLS, TAUS, GM, BIO_SECONDS, STEP
from isa.profiles import PROFILES
from isa.wire import FPGA_TICK_S
mode = {mode!r}
p = PROFILES["hx"]
W, exc, ticks, src, total = network()
if mode == "cpp":
    b2.set_device("cpp_standalone", directory={directory!r})
else:
    b2.prefs.codegen.target = "numpy"
dt_bio = STEP * FPGA_TICK_S * p.speedup
b2.defaultclock.dt = dt_bio * b2.second
ms, mV, nA, pF = b2.ms, b2.mV, b2.nA, b2.pF
C = 2.0 * pF
a = p.analog
tau = lambda name: a.tau_full_scale * a.i_max / (round(a.tau_full_scale / TAUS[name] * p.cell_max) / p.cell_max * a.i_max)
volt = lambda name: round(CELLS[name] / a.v_max * p.cell_max) / p.cell_max * a.v_max
tau_m, tau_e, tau_i = (tau(n) * p.speedup * b2.second
                       for n in ("i_bias_leak", "i_bias_syn_exc_tau", "i_bias_syn_inh_tau"))
E_l, V_th, V_r = (volt(n) * b2.volt for n in ("v_leak", "v_threshold", "v_reset"))
eqs = """
dv/dt = (E_l - v) / tau_m + (I_e - I_i) / (C * 1000) : volt (unless refractory)
dI_e/dt = -I_e / tau_e : amp
dI_i/dt = -I_i / tau_i : amp
"""
G = b2.NeuronGroup(p.neurons, eqs, threshold="v >= V_th", reset="v = V_r",
                   refractory=(27 + 1) * dt_bio * b2.second, method="exact")
G.v = E_l
inp = b2.SpikeGeneratorGroup(len(exc), src, ticks * FPGA_TICK_S * p.speedup * b2.second)
rows = np.arange(len(exc))
unit = GM / p.cell_max * a.i_max / 15 * b2.amp
se = b2.Synapses(inp, G, "w : amp", on_pre="I_e_post += w")
si = b2.Synapses(inp, G, "w : amp", on_pre="I_i_post += w")
arr = rows // p.rows
pre = np.repeat(rows, p.columns)
post = (np.repeat(arr, p.columns) * p.columns + np.tile(np.arange(p.columns), len(rows)))
wv = W.ravel() * unit * (15 / 63)
is_exc = np.repeat(exc, p.columns)
se.connect(i=pre[is_exc], j=post[is_exc]); se.w = wv[is_exc]
si.connect(i=pre[~is_exc], j=post[~is_exc]); si.w = wv[~is_exc]
sm = b2.SpikeMonitor(G)
t_build = time.perf_counter()
b2.run(BIO_SECONDS * b2.second)
t_end = time.perf_counter()
if mode == "cpp":
    sim = float(b2.device._last_run_time)
else:
    sim = t_end - t_build
print(json.dumps(dict(sim=sim, wall=t_end - t_start, spikes=int(sm.num_spikes), synapses=int(len(se) + len(si)))))
'''


def brian_run(mode: str) -> dict | None:
    directory = tempfile.mkdtemp(prefix="bss_brian_")
    script = BRIAN_SCRIPT.format(root=str(ROOT), mode=mode, directory=directory)
    try:
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=1800)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if out.returncode:
        sys.stderr.write(f"Brian2 {mode} failed:\n{out.stderr[-2000:]}\n")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench.analog", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 repeats, no wire run")
    ap.add_argument("--repeats", type=int, default=7, help="warm repeats (default 7)")
    ap.add_argument("--numpy", action="store_true", help="also run Brian2's numpy target (slow: minutes)")
    ap.add_argument("--no-brian", action="store_true", help="skip Brian2")
    ap.add_argument("--no-correlation", action="store_true", help="correlation sensors off")
    args = ap.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"Python {platform.python_version()}, NumPy {np.__version__}")
    W, exc, ticks, src, total = network()
    print(f"network: hx, 512 neurons, {W.size} synapses, {len(ticks)} input spikes "
          f"({RATE_HZ:g} Hz x {len(exc)} rows x {BIO_SECONDS:g} s biological), {total // STEP} steps of 96 ns")
    cold_empty = cold_subprocess(True)
    cold_cached = cold_subprocess(False)
    rows = [("twin cold, empty numba cache (imports + JIT + run)", cold_empty, TARGET_COLD_S, None),
            ("twin cold, numba cache (imports + run)", cold_cached, TARGET_COLD_S, None)]
    variants = [("chip as configured: fixed-pattern noise, correlation sensors on", True, True),
                ("correlation sensors off", False, True),
                ("ideal chip (mismatch off), correlation sensors off: Brian2's network", False, False)]
    if args.no_correlation:
        variants = variants[1:]
    warm = {}
    for name, corr, mm in variants:
        res = twin_run(repeats + 1, corr, mm)
        warm[name] = statistics.median(res["times"][1:])
        rows.append((f"twin warm, Chip.advance, {name} (median of {repeats})", warm[name], TARGET_WARM_S,
                     res["spikes"][-1]))
    if not args.quick:
        wire = statistics.median(wire_run(repeats)[1:] or [float("nan")])
        rows.append(("twin warm, over the wire (host library, in-process transport; chip as configured)",
                     wire, None, None))
    brian = {}
    if not args.no_brian:
        for mode in (("cpp", "numpy") if args.numpy else ("cpp",)):
            r = brian_run(mode)
            if r:
                brian[mode] = r
                print(f"Brian2 {mode}: {r['spikes']} spikes, {r['synapses']} synapses")
    print()
    print("| what | wall s per biological s | output spikes | target | verdict |")
    print("|---|---:|---:|---|---|")
    for name, t, target, n_spikes in rows:
        verdict = "" if target is None else ("PASS" if t <= target else "MISS")
        tgt = "" if target is None else f"<= {target * 1e3:g} ms" if target < 1 else f"<= {target:g} s"
        shown = f"{t:.2f} s" if t >= 1 else f"{t * 1e3:.1f} ms"
        print(f"| {name} | {shown} | {'' if n_spikes is None else n_spikes} | {tgt} | {verdict} |")
    for mode, r in brian.items():
        label = "C++ standalone" if mode == "cpp" else "numpy runtime"
        print(f"| Brian2 {label}: simulation (reported by Brian2) | {r['sim'] * 1e3:.1f} ms | {r['spikes']} | | |")
        print(f"| Brian2 {label}: wall incl. code generation{' and compilation' if mode == 'cpp' else ''} "
              f"| {r['wall']:.2f} s | | | |")
    if "cpp" in brian:
        for name, t in warm.items():
            ratio = brian["cpp"]["sim"] / t
            print(f"| Brian2 C++ simulation / twin warm ({name}) | {ratio:.2f}x | | >= {TARGET_RATIO:g}x | "
                  f"{'PASS' if ratio >= TARGET_RATIO else 'MISS'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
