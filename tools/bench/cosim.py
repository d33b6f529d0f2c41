"""Co-simulation benchmark: chips whose PPUs run firmware while the analog core runs.

    .venv/bin/python -m tools.bench.cosim                  # default run (a few minutes)
    .venv/bin/python -m tools.bench.cosim --quick --no-cold
    .venv/bin/python -m tools.bench.cosim --parts cold     # only the cold start

Everything goes through the paths a user takes: `host.connect`, `host.PPU`,
`conn.program()` / `conn.run`, the `bss-twin` command line (`ppu-run`) and the
project's assembler (`isa.ppu.asm`, what `bss-twin asm` runs), so the benchmark
keeps working when the chip's internals change.

Parts (each figure is printed beside a reference measured in the same run;
targets are printed as PASS/MISS and never asserted):

  sweep  `dls` (PPU 0) and `hx` (PPUs 0 and 1) run firmware/bench/sweep.s, which
         sweeps the whole synapse array of its PPU forever (fxvinx causal, acausal
         and weights, an additive STDP-like update, fxvoutx weights and a
         correlation reset per row half), while a 10 Hz (biological) Poisson train
         plays into every synapse row (network as in tools/bench/analog.py:
         every neuron, weights 0..15, labels 0, even rows excitatory, correlation
         sensors on).  Figure: wall time of `conn.run(program)` per hardware time
         for a program spanning SPAN of hardware time (1 ms = 1 biological
         second; shortened when the first, short run says that a repeat would
         exceed the time budget; the span used is printed).  Reference: the same
         chip and input with the PPUs stopped.  Targets: dls <= 5x, hx <= 50x
         real time.
  idle   the same chips with the PPUs asleep (firmware that executes `wait`
         first) and stopped (never started), 1 ms of hardware time.  Target:
         asleep and stopped within 10 % of each other; reference: the stopped
         chip is the analog-only figure (and tools/bench/analog.py's own
         analog-only figure for hx, `twin_run`, is printed beside it).
  mix    firmware/bench/mix.c (CRC-32, sorting, matrix multiply, a bytecode
         interpreter, calls) compiled with powerpc-linux-gnu-gcc, run end to end
         by `bss-twin ppu-run IMAGE --chip hx` (a subprocess: Python start-up
         included) and, in the same run, as a Linux binary of the same C under
         qemu-ppc-static.  Startup is subtracted by timing two iteration counts
         (rate = extra work / extra seconds); the twin's counts are chosen from
         two short probes so that the long run fits the time budget.  Both must return the same checksum
         (checked: a mismatch is an error).  Targets: twin rate >= 0.25 of qemu's;
         twin wall <= cycles / 250 MHz (the real hx PPU), end to end and
         startup-subtracted.  The translated code (twin.ppu.jit) is cached on disk:
         the repeats load it, and one more long run with an empty translation
         cache shows what a firmware's first run costs.
  cold   a fresh process with NUMBA_CACHE_DIR pointed at an empty folder that
         connects to twin:dls, loads a tiny program into host.PPU and runs it to
         sleep: wall time including Python start-up (target <= 15 s); reference:
         the same process with the cache filled.  Then the same for a PPU that
         loops while a configured chip plays input (the co-simulation loop with
         the analog step body compiles too).

Figures are medians over the repeats.  Progress goes to stderr.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from isa.wire import FPGA_TICK_S  # noqa: E402  (after the path set-up: run as a script too)

FIRMWARE = ROOT / "firmware"
CRT0 = FIRMWARE / "crt0.s"
SWEEP = FIRMWARE / "bench" / "sweep.s"
MIX = FIRMWARE / "bench" / "mix.c"

TICK = FPGA_TICK_S
STEP = 12                            # ticks per analog step (96 ns), one input spike per row and step at most
RATE_HZ = 10.0                       # biological Poisson rate per row
TARGET_SWEEP = {"dls": 5.0, "hx": 50.0}      # x real time
TARGET_IDLE = 0.10                   # relative difference
TARGET_QEMU_FRACTION = 0.25
HX_PPU_HZ = 250e6
TARGET_COLD_S = 15.0

# The network of tools/bench/analog.py (volts, seconds, LSB), applied through host containers.
CELLS = dict(v_leak=0.40, v_threshold=0.60, v_reset=0.35)
TAUS = dict(i_bias_leak=10e-6, i_bias_syn_exc_tau=5e-6, i_bias_syn_inh_tau=5e-6)
GM = 100
CORRELATION_CELLS = dict(i_bias_correlation=170, v_correlation_store=100, v_correlation_baseline=900)

SLEEP_SOURCE = "_start:\n    wait\n    b _start\n"

# ---------------------------------------------------------------------------- output helpers
_T0 = time.perf_counter()
_PROGRESS = True


def progress(msg: str) -> None:
    if _PROGRESS:
        sys.stderr.write(f"[cosim {time.perf_counter() - _T0:6.1f} s] {msg}\n")
        sys.stderr.flush()


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("PASS" if ok else "MISS")


def fmt_s(x: float | None) -> str:
    if x is None or x != x:
        return "n/a"
    if x >= 1:
        return f"{x:.2f} s"
    if x >= 1e-3:
        return f"{x * 1e3:.1f} ms"
    return f"{x * 1e6:.1f} us"


def fmt_x(x: float | None) -> str:
    if x is None or x != x:
        return "n/a"
    return f"{x:,.0f}x" if x >= 100 else f"{x:.3g}x"


def fmt_rate(x: float | None, unit: str = "") -> str:
    if x is None or x != x:
        return "n/a"
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def table(header: list[str], rows: list[list[str]], align: str | None = None) -> None:
    align = align or "l" * len(header)
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" if a == "r" else "---" for a in align) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()


# ---------------------------------------------------------------------------- firmware
def sweep_image(profile) -> bytes:
    """The chip's include file, crt0 and sweep.s for `profile` (a Profile or
    its name) as a flat image from 0."""
    from isa.ppu.asm import assemble_file
    name = profile if isinstance(profile, str) else profile.name
    return assemble_file([str(FIRMWARE / "include" / f"{name}.inc"), str(CRT0), str(SWEEP)]).image()


def sleep_image() -> bytes:
    from isa.ppu.asm import assemble
    return assemble(SLEEP_SOURCE).image()


# ---------------------------------------------------------------------------- mix.c builds
GNU_PREFIX = "powerpc-linux-gnu-"
MIX_CFLAGS = ["-O2", "-ffreestanding", "-nostdlib", "-static", "-mcpu=powerpc", "-msoft-float",
              "-mno-altivec", "-msdata=none", "-G", "0", "-fno-pic", "-fno-stack-protector",
              "-fno-tree-loop-distribute-patterns", "-fno-reorder-functions",
              "-fno-asynchronous-unwind-tables", "-Wall", "-Wextra", "-Werror",
              "-Wl,--build-id=none", "-Wl,-z,noexecstack", "-Wl,--no-warn-rwx-segments"]
# The PPU image: crt0 first at address 0, text and data contiguous (-N), entry _start = 0.
MIX_PPU_LDFLAGS = ["-Wl,-N", "-Wl,-Ttext=0", "-Wl,-e,_start"]


def gnu_tools() -> dict[str, str] | None:
    """Paths of the cross gcc, as and qemu-ppc-static, or None when one is missing."""
    found = {"gcc": shutil.which(GNU_PREFIX + "gcc"), "as": shutil.which(GNU_PREFIX + "as"),
             "qemu": shutil.which("qemu-ppc-static") or shutil.which("qemu-ppc")}
    return found if all(found.values()) else None


def missing_gnu_tools() -> list[str]:
    return [n for n, p in (("powerpc-linux-gnu-gcc", shutil.which(GNU_PREFIX + "gcc")),
                           ("powerpc-linux-gnu-as", shutil.which(GNU_PREFIX + "as")),
                           ("qemu-ppc-static", shutil.which("qemu-ppc-static") or shutil.which("qemu-ppc")))
            if p is None]


def build_mix(tmp: Path, iterations: int, kind: str, tools: dict[str, str] | None = None) -> Path:
    """Compile firmware/bench/mix.c with MIX_ITERATIONS=`iterations`.
    kind "ppu": an ELF linked at 0 behind firmware/crt0.s (for `bss-twin ppu-run`);
    kind "linux": a Linux user-mode binary of the same C (for qemu-ppc-static)."""
    tools = tools or gnu_tools()
    if tools is None:
        raise RuntimeError("missing: " + ", ".join(missing_gnu_tools()))
    tmp = Path(tmp)
    out = tmp / f"mix_{kind}_{iterations}{'.elf' if kind == 'ppu' else ''}"
    define = f"-DMIX_ITERATIONS={iterations}"
    if kind == "ppu":
        crt0 = tmp / "crt0.o"
        if not crt0.exists():
            subprocess.run([tools["as"], "-me500mc", "-mregnames", "-I", str(FIRMWARE), str(CRT0), "-o", str(crt0)],
                           check=True, capture_output=True, text=True)
        cmd = [tools["gcc"], *MIX_CFLAGS, *MIX_PPU_LDFLAGS, define, str(crt0), str(MIX), "-o", str(out)]
    elif kind == "linux":
        cmd = [tools["gcc"], *MIX_CFLAGS, "-DMIX_LINUX", define, str(MIX), "-o", str(out)]
    else:
        raise ValueError(kind)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return out


def bss_twin_command() -> list[str]:
    """The `bss-twin` command of this tree: `python -m tools.cli` run in ROOT (the installed
    `bss-twin` entry point is the same module, but may belong to another checkout)."""
    return [sys.executable, "-m", "tools.cli"]


@dataclass
class PPURunResult:
    wall: float
    cycles: int
    return_code: int          # as printed (signed 32 bit)
    stdout: str

    @property
    def checksum(self) -> int:
        return self.return_code & 0xFFFFFFFF


def ppu_run(image: Path, chip: str = "hx", max_cycles: int = 10**10, regs: bool = False,
            translation_cache: Path | None = None) -> PPURunResult:
    """`bss-twin ppu-run IMAGE --chip CHIP --max-cycles N` as a subprocess (wall time from
    spawn to exit); `translation_cache`: BSS_TWIN_CACHE_DIR for it (twin.ppu.jit)."""
    cmd = [*bss_twin_command(), "ppu-run", str(image), "--chip", chip, "--max-cycles", str(max_cycles)]
    if regs:
        cmd.append("--regs")
    env = dict(os.environ)
    if translation_cache is not None:
        env["BSS_TWIN_CACHE_DIR"] = str(translation_cache)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited with {r.returncode}:\n{r.stdout}\n{r.stderr}")
    cycles = re.search(r"^cycles (\d+)$", r.stdout, re.M)
    rc = re.search(r"^return code (-?\d+)$", r.stdout, re.M)
    if not (cycles and rc):
        raise RuntimeError(f"unexpected ppu-run output:\n{r.stdout}")
    return PPURunResult(wall, int(cycles.group(1)), int(rc.group(1)), r.stdout)


def qemu_run(exe: Path, qemu: str | None = None) -> tuple[float, int]:
    """(wall seconds, checksum printed) of the Linux build under qemu-ppc-static."""
    qemu = qemu or (gnu_tools() or {}).get("qemu")
    t0 = time.perf_counter()
    r = subprocess.run([qemu, str(exe)], capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    if r.returncode:
        raise RuntimeError(f"qemu {exe} exited with {r.returncode}: {r.stderr}")
    return wall, int(r.stdout.strip(), 16)


# ---------------------------------------------------------------------------- the network
def network(profile, span_ticks: int, seed: int = 1):
    """Weights (rows x columns over all arrays), excitatory rows, and a 10 Hz (biological)
    Poisson input into every row over `span_ticks`: (W, exc, times, labels)."""
    rng = np.random.default_rng(seed)
    rows = profile.synapse_arrays * profile.rows
    W = rng.integers(0, 16, (rows, profile.columns))
    exc = np.arange(rows) % 2 == 0
    bio_seconds = span_ticks * TICK * profile.speedup
    n = rng.poisson(RATE_HZ * bio_seconds, rows)
    steps = max(1, span_ticks // STEP)
    per_row = [np.unique(rng.integers(0, steps, k)) for k in n]
    t = np.concatenate(per_row).astype(np.int64) * STEP
    src = np.repeat(np.arange(rows), [len(x) for x in per_row])
    order = np.argsort(t, kind="stable")
    return W, exc, t[order], (src[order] << 6).astype(np.int64)   # label: row in bits [15:6], address 0


def configure(conn, W, exc) -> None:
    """Neurons, parameter cells, synapses (labels 0), drivers and correlation operating
    point through host containers in one program."""
    import host
    p, rm = conn.profile, conn.regmap
    a = p.analog
    prog = conn.program()
    for n in range(p.neurons):
        for name, v in CELLS.items():
            prog.write(host.CapMemCellOnChip(n, name), host.CapMemCell(round(v / a.v_max * p.cell_max)))
        for name, t in TAUS.items():
            prog.write(host.CapMemCellOnChip(n, name), host.CapMemCell(round(a.tau_full_scale / t * p.cell_max)))
        prog.write(host.CapMemCellOnChip(n, "i_bias_syn_exc_gm"), host.CapMemCell(GM))
        prog.write(host.CapMemCellOnChip(n, "i_bias_syn_inh_gm"), host.CapMemCell(GM))
        prog.write(host.NeuronOnChip(n), host.NeuronConfig(enable=1, refractory=20, refractory_clock=4))
    for cell, v in CORRELATION_CELLS.items():
        prog.write(host.CapMemGlobalCellOnChip(cell), host.CapMemGlobalCell(v))
    words = host.synapse_words(rm, W, np.zeros_like(W))
    prog.write_words(rm.addresses("synapse", "weights"), words[0].ravel())
    prog.write_words(rm.addresses("synapse", "labels"), words[1].ravel())
    for r, e in enumerate(exc):
        prog.write(host.SynapseDriverOnChip(r % p.rows, r // p.rows),
                   host.SynapseDriverConfig(enable=1, inhibitory=int(not e)))
    prog.write(host.ChipOnly(), host.CorrelationConfig(enable=1))
    prog.timer_reset()
    prog.wait_until(STEP * 200)              # let the parameter cells settle
    conn.run(prog)


def input_program(conn, span_ticks: int, seed: int = 2):
    _, _, t, lab = network(conn.profile, span_ticks, seed)
    prog = conn.program()
    prog.timer_reset()
    prog.spikes(lab, t)
    prog.wait_until(span_ticks)
    return prog, len(t)


def timed_run(conn, span_ticks: int, seed: int = 2) -> float:
    prog, _ = input_program(conn, span_ticks, seed)
    t0 = time.perf_counter()
    conn.run(prog)
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------- parts sweep + idle
CHIPS = {"dls": (0,), "hx": (0, 1)}


@dataclass
class ChipFigures:
    name: str
    ppus: tuple[int, ...]
    idle_span: int = 0
    stopped_idle: list[float] = field(default_factory=list)      # wall per hardware second
    asleep: list[float] = field(default_factory=list)
    sweep_span: int = 0
    sweep: list[float] = field(default_factory=list)
    stopped_at_sweep_span: list[float] = field(default_factory=list)
    sweeps_done: dict[int, int] = field(default_factory=dict)
    cycles: dict[int, int] = field(default_factory=dict)
    inputs: int = 0
    notes: list[str] = field(default_factory=list)


def measure_chip(name: str, repeats: int, idle_span: int, max_span: int, min_span: int,
                 budget_s: float, seed: int = 1) -> ChipFigures:
    """Stopped (never started), asleep and sweeping figures of one chip over one connection."""
    import host
    fig = ChipFigures(name, CHIPS[name])
    with host.connect(f"twin:{name}?serial=1", timeout=3600.0) as conn:
        p = conn.profile
        W, exc, _, _ = network(p, 0, seed)
        progress(f"{name}: configuring {p.neurons} neurons, {W.size} synapses")
        configure(conn, W, exc)
        per_hw = lambda wall, span: wall / (span * TICK)

        # stopped (never started): the analog-only reference
        fig.idle_span = idle_span
        timed_run(conn, idle_span)                                   # first-call costs
        for _ in range(repeats):
            fig.stopped_idle.append(per_hw(timed_run(conn, idle_span), idle_span))
        progress(f"{name}: PPUs stopped {fmt_x(statistics.median(fig.stopped_idle))} real time")

        # asleep: firmware whose first instruction is `wait`
        ppus = [host.PPU(conn, k) for k in fig.ppus]
        for ppu in ppus:
            ppu.load(sleep_image())
            ppu.start()
        for ppu in ppus:
            ppu.run_until_sleep(1e-3, poll_interval=1e-6)
        timed_run(conn, idle_span)
        for _ in range(repeats):
            fig.asleep.append(per_hw(timed_run(conn, idle_span), idle_span))
        progress(f"{name}: PPUs asleep {fmt_x(statistics.median(fig.asleep))} real time")
        for ppu in ppus:
            ppu.stop()

        # sweeping: probe with a short span, then pick the span from the budget
        image = sweep_image(p)
        for ppu in ppus:
            ppu.load(image)
            ppu.start()
        probe = min(min_span, max_span)
        t_probe = timed_run(conn, probe)                               # includes first-call costs
        t_probe = min(t_probe, timed_run(conn, probe))
        rate = t_probe / probe                                         # wall seconds per tick
        span = max_span if rate * max_span <= budget_s else max(min_span, int(budget_s / rate))
        span = max(STEP, span // STEP * STEP)
        fig.sweep_span = span
        progress(f"{name}: sweeping, probe {fmt_x(per_hw(t_probe, probe))} real time; "
                 f"span {span * TICK * 1e6:.0f} us x {repeats} repeats (~{rate * span * repeats:.0f} s)")
        first = {k: int.from_bytes(ppu.mailbox(4), "big") for k, ppu in zip(fig.ppus, ppus)}
        c0 = {k: ppu.status().cycles for k, ppu in zip(fig.ppus, ppus)}
        for r in range(repeats):
            fig.sweep.append(per_hw(timed_run(conn, span), span))
            progress(f"{name}: sweeping repeat {r + 1}/{repeats}: {fmt_x(fig.sweep[-1])} real time")
        for k, ppu in zip(fig.ppus, ppus):
            s = ppu.status()
            if s.fault or not s.running or s.sleeping:
                fig.notes.append(f"PPU {k} not sweeping at the end: {s}")
            fig.sweeps_done[k] = int.from_bytes(ppu.mailbox(4), "big") - first[k]
            fig.cycles[k] = s.cycles - c0[k]
        for ppu in ppus:
            ppu.stop()
        # reference at the same span: the PPUs stopped
        for _ in range(repeats):
            fig.stopped_at_sweep_span.append(per_hw(timed_run(conn, span), span))
        fig.inputs = input_program(conn, span)[1]
    return fig


def analog_reference(repeats: int) -> float | None:
    """tools/bench/analog.py's warm analog-only figure for hx (its own network, chip as
    configured, 1 biological second = 1 ms hardware): wall seconds per hardware second."""
    try:
        from tools.bench import analog
        res = analog.twin_run(repeats + 1, True, True)
        return statistics.median(res["times"][1:]) / 1e-3
    except Exception as exc:                      # the analog bench is not this benchmark's contract
        progress(f"tools.bench.analog.twin_run unavailable: {exc!r}")
        return None


def report_chips(figs: list[ChipFigures], analog_hx: float | None) -> None:
    print("## a. PPUs sweeping the synapse array under 10 Hz Poisson input\n")
    print("Wall time of `conn.run(program)` per hardware time (x real time); reference: the same "
          "chip and input with the PPUs stopped, same span.\n")
    rows = []
    for f in figs:
        med, ref = statistics.median(f.sweep), statistics.median(f.stopped_at_sweep_span)
        target = TARGET_SWEEP[f.name]
        sweeps = ", ".join(f"PPU {k}: {f.sweeps_done[k]}" for k in f.ppus)
        cyc = ", ".join(f"{f.cycles[k]:,}" for k in f.ppus)
        rows.append([f.name, ", ".join(map(str, f.ppus)), f"{f.sweep_span * TICK * 1e6:.0f} us",
                     f"{f.inputs}", fmt_x(med), fmt_x(ref), f"{med / ref:.3g}", sweeps, cyc,
                     f"<= {target:g}x", verdict(med <= target)])
    table(["chip", "PPUs", "span (hw)", "input spikes per span", "sweeping", "PPUs stopped",
           "sweeping / stopped", "sweeps done (all repeats)", "PPU cycles (all repeats)", "target",
           "verdict"], rows, "lllrrrrllll")
    for f in figs:
        for n in f.notes:
            print(f"note ({f.name}): {n}\n")

    print("## b. PPUs asleep and stopped (1 ms hardware = 1 biological second)\n")
    rows = []
    for f in figs:
        st, sl = statistics.median(f.stopped_idle), statistics.median(f.asleep)
        rel = abs(sl - st) / st
        rows.append([f.name, f"{f.idle_span * TICK * 1e6:.0f} us", fmt_x(st), fmt_x(sl), f"{rel * 100:.1f} %",
                     f"<= {TARGET_IDLE * 100:g} %", verdict(rel <= TARGET_IDLE)])
    table(["chip", "span (hw)", "PPUs stopped (analog only)", "PPUs asleep", "asleep vs stopped",
           "target", "verdict"], rows, "llrrrll")
    hx = [f for f in figs if f.name == "hx"]
    if hx:
        st = statistics.median(hx[0].stopped_idle)
        if analog_hx is None:
            print("tools/bench/analog.py's analog-only figure: unavailable\n")
        else:
            rel = abs(st - analog_hx) / analog_hx
            sl = statistics.median(hx[0].asleep)
            rel2 = abs(sl - analog_hx) / analog_hx
            table(["hx analog-only figure", "x real time", "vs analog.py", "target", "verdict"],
                  [["tools/bench/analog.py `twin_run` (Chip.advance, its network, sensors on)",
                    fmt_x(analog_hx), "", "", ""],
                   ["this benchmark, PPUs stopped (over the wire)", fmt_x(st), f"{rel * 100:.1f} %",
                    f"<= {TARGET_IDLE * 100:g} %", verdict(rel <= TARGET_IDLE)],
                   ["this benchmark, PPUs asleep (over the wire)", fmt_x(sl), f"{rel2 * 100:.1f} %",
                    f"<= {TARGET_IDLE * 100:g} %", verdict(rel2 <= TARGET_IDLE)]], "lrrll")


# ---------------------------------------------------------------------------- part mix
def mix_counts(slope: float, budget_s: float, quick: bool) -> tuple[int, int]:
    """Short and long iteration counts for the twin: the long run should take about
    `budget_s` beyond start-up (at `slope` seconds per iteration), within limits."""
    # The slope of two probes a few iterations apart is mostly start-up noise
    # (tens of ms against 0.1 ms per iteration): take the full count unless the
    # probes say that the twin is slower than the real PPU by orders of magnitude.
    cap = 1000 if quick else 5000
    n2 = cap if slope < 0.1 else int(max(4, budget_s / slope))
    n1 = max(1, min(n2 // 20, 20))
    return n1, n2


def part_mix(repeats: int, quick: bool, budget_s: float) -> int:
    print("## c. mix.c: `bss-twin ppu-run --chip hx` against qemu-ppc-static\n")
    tools = gnu_tools()
    if tools is None:
        print(f"skipped: {', '.join(missing_gnu_tools())} missing\n")
        return 0
    q1, q2 = (1_000, 10_000) if quick else (1_000, 30_000)
    max_cycles = lambda n: 2_000_000 * n + 10_000_000
    with tempfile.TemporaryDirectory(prefix="bss_cosim_") as tmp:
        tmp = Path(tmp)
        progress("mix: building")
        # size the twin's runs from two short probes (1 and 4 iterations)
        probe = {n: build_mix(tmp, n, "ppu", tools) for n in (1, 4)}
        # each probe twice: the first run compiles its hot code (twin.ppu.jit), the
        # second loads it from the translation cache, as the timed runs below do
        p1 = min((ppu_run(probe[1], "hx", max_cycles(1)) for _ in range(2)), key=lambda r: r.wall)
        p4 = min((ppu_run(probe[4], "hx", max_cycles(4)) for _ in range(2)), key=lambda r: r.wall)
        slope = max(1e-6, (p4.wall - p1.wall) / 3)
        n1, n2 = mix_counts(slope, budget_s, quick)
        progress(f"mix: probes 1 / 4 iterations {p1.wall:.2f} / {p4.wall:.2f} s: "
                 f"{n1} / {n2} iterations x {repeats} repeats (~{(p1.wall + slope * (n1 + n2)) * repeats:.0f} s)")
        imgs = {n: build_mix(tmp, n, "ppu", tools) for n in (n1, n2)}
        exes = {n: build_mix(tmp, n, "linux", tools) for n in (n1, n2, q1, q2)}
        elf_bytes = os.path.getsize(imgs[n1])
        from isa.ppu.elf import read_elf
        elf = read_elf(imgs[n1].read_bytes())
        image_bytes = len(elf.image())
        twin: dict[int, list[PPURunResult]] = {n: [] for n in (n1, n2)}
        for n, res in ((1, p1), (4, p4)):          # a probe of the same count is a repeat
            if n in twin:
                twin[n].append(res)
        for r in range(repeats):
            for n in (n1, n2):
                if len(twin[n]) > r:
                    continue
                progress(f"mix: ppu-run {n} iterations ({r + 1}/{repeats})")
                twin[n].append(ppu_run(imgs[n], "hx", max_cycles(n)))
        # The same long run once more with an empty translation cache: what the
        # first run of a new firmware costs (its hot code is compiled on the way).
        progress(f"mix: ppu-run {n2} iterations, empty translation cache")
        fresh = ppu_run(imgs[n2], "hx", max_cycles(n2), translation_cache=tmp / "fresh-jit-cache")
        qemu: dict[int, list[tuple[float, int]]] = {n: [] for n in (n1, n2, q1, q2)}
        progress("mix: qemu")
        for r in range(repeats):
            for n in qemu:
                qemu[n].append(qemu_run(exes[n], tools["qemu"]))
    # checksums: twin and qemu on the same iteration counts
    bad = []
    for n in (n1, n2):
        tw = {x.checksum for x in twin[n]}
        qm = {c for _, c in qemu[n]}
        if len(tw) != 1 or tw != qm:
            bad.append(f"{n} iterations: twin {sorted(hex(c) for c in tw)}, qemu {sorted(hex(c) for c in qm)}")
    t1, t2 = (statistics.median(x.wall for x in twin[n]) for n in (n1, n2))
    c1, c2 = twin[n1][0].cycles, twin[n2][0].cycles
    tq1, tq2 = (statistics.median(w for w, _ in qemu[n]) for n in (q1, q2))
    tqn1, tqn2 = (statistics.median(w for w, _ in qemu[n]) for n in (n1, n2))
    twin_iter_rate = (n2 - n1) / (t2 - t1)
    twin_cycle_rate = (c2 - c1) / (t2 - t1)
    cyc_per_iter = (c2 - c1) / (n2 - n1)
    qemu_iter_rate = (q2 - q1) / (tq2 - tq1)
    ratio = twin_iter_rate / qemu_iter_rate
    print(f"PPU image {image_bytes:,} bytes in memory (ELF file {elf_bytes:,} bytes), "
          f"{cyc_per_iter:,.0f} PPU cycles per iteration; median of {repeats} runs each. "
          "The twin prints cycles, not instructions (no instruction counter on the wire).\n")
    rows = [["twin `bss-twin ppu-run --chip hx` (end to end)", f"{n1} / {n2}", f"{c1:,} / {c2:,}",
             f"{fmt_s(t1)} / {fmt_s(t2)}", fmt_rate(twin_iter_rate, "it/s"), fmt_rate(twin_cycle_rate, "cycles/s")],
            ["qemu-ppc-static, same C (Linux build)", f"{q1} / {q2}", "",
             f"{fmt_s(tq1)} / {fmt_s(tq2)}", fmt_rate(qemu_iter_rate, "it/s"),
             fmt_rate(qemu_iter_rate * cyc_per_iter, "cycles/s") + " (twin cycles per iteration x rate)"],
            ["qemu-ppc-static at the twin's iteration counts", f"{n1} / {n2}", "",
             f"{fmt_s(tqn1)} / {fmt_s(tqn2)}", "", ""]]
    table(["runner", "iterations (short / long)", "PPU cycles", "wall (short / long)",
           "rate (startup subtracted)", "cycle rate"], rows, "llrrrr")
    hw1, hw2 = c1 / HX_PPU_HZ, c2 / HX_PPU_HZ
    hw_d = (c2 - c1) / HX_PPU_HZ
    table(["figure", "twin", "reference", "ratio", "target", "verdict"],
          [["twin rate / qemu rate (iterations per second, startup subtracted)", fmt_rate(twin_iter_rate, "it/s"),
            fmt_rate(qemu_iter_rate, "it/s"), f"{ratio:.3g}", f">= {TARGET_QEMU_FRACTION}",
            verdict(ratio >= TARGET_QEMU_FRACTION)],
           [f"twin wall end to end, {n2} iterations, vs real hx PPU (cycles / 250 MHz)", fmt_s(t2), fmt_s(hw2),
            f"{t2 / hw2:.3g}", "<= 1", verdict(t2 <= hw2)],
           [f"twin wall end to end, {n1} iteration{'s' if n1 != 1 else ''}, vs real hx PPU", fmt_s(t1), fmt_s(hw1),
            f"{t1 / hw1:.3g}", "<= 1", verdict(t1 <= hw1)],
           ["twin wall startup-subtracted (long - short) vs real hx PPU", fmt_s(t2 - t1), fmt_s(hw_d),
            f"{(t2 - t1) / hw_d:.3g}", "<= 1", verdict(t2 - t1 <= hw_d)],
           [f"the same {n2} iterations, first run of the firmware (empty translation cache)", fmt_s(fresh.wall),
            fmt_s(hw2), f"{fresh.wall / hw2:.3g}", "<= 1", verdict(fresh.wall <= hw2)]], "lrrrll")
    if fresh.checksum != twin[n2][0].checksum:
        bad.append(f"{n2} iterations with an empty translation cache: 0x{fresh.checksum:08x}")
    if bad:
        print("**checksum mismatch between the twin and qemu**: " + "; ".join(bad) + "\n")
        return 1
    print(f"checksums: twin = qemu for {n1} and {n2} iterations "
          f"(0x{twin[n1][0].checksum:08x}, 0x{twin[n2][0].checksum:08x})\n")
    return 0


# ---------------------------------------------------------------------------- part cold
COLD_SCRIPT = r'''
import sys, time
sys.path.insert(0, {root!r})
import host
from isa.ppu.asm import assemble
with host.connect("twin:dls") as conn:
    ppu = host.PPU(conn)
    ppu.load(assemble("li 3, 42\n stw 3, 0x2ffc(0)\n wait\n").image())
    ppu.start()
    ppu.run_until_sleep(1e-3)
    assert ppu.return_code() == 42, ppu.return_code()
print("ok")
'''


# The first co-simulation with the network running (the analog step body compiles too).
COLD_NET_SCRIPT = r'''
import sys
sys.path.insert(0, {root!r})
import host
from isa.ppu.asm import assemble
from tools.bench.cosim import configure, input_program, network
with host.connect("twin:dls") as conn:
    W, exc, _, _ = network(conn.profile, 0, 1)
    configure(conn, W, exc)
    ppu = host.PPU(conn)
    ppu.load(assemble("1: addi 3, 3, 1\n b 1b\n").image())
    ppu.start()
    prog, n = input_program(conn, 12_500)
    conn.run(prog)
    assert ppu.status().running and n > 0
print("ok")
'''


def cold_run(empty_cache: bool, script: str = COLD_SCRIPT) -> float:
    env = dict(os.environ)
    tmp = tempfile.mkdtemp(prefix="bss_numba_") if empty_cache else None
    if tmp:
        env["NUMBA_CACHE_DIR"] = tmp
    try:
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", script.format(root=str(ROOT))], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - t0
        if r.returncode or "ok" not in r.stdout:
            raise RuntimeError(f"cold-start process failed ({r.returncode}):\n{r.stderr[-3000:]}")
        return wall
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def part_cold() -> None:
    print("## d. cold start of the first PPU use (fresh process, twin:dls, tiny program to sleep)\n")
    progress("cold: empty numba cache (this takes long today)")
    cold = cold_run(True)
    progress(f"cold: {cold:.1f} s; now with the cache")
    warm = cold_run(False)
    progress("cold: the first co-simulation with the network running, empty numba cache")
    cold_net = cold_run(True, COLD_NET_SCRIPT)
    warm_net = cold_run(False, COLD_NET_SCRIPT)
    table(["process", "wall (incl. Python start-up)", "target", "verdict"],
          [["empty numba cache (NUMBA_CACHE_DIR = a fresh folder)", fmt_s(cold), f"<= {TARGET_COLD_S:g} s",
            verdict(cold <= TARGET_COLD_S)],
           ["reference: numba cache filled", fmt_s(warm), "", ""],
           ["a PPU looping on a configured dls chip with input (the co-simulation loop with the analog "
            "step body), empty numba cache", fmt_s(cold_net), f"<= {TARGET_COLD_S:g} s",
            verdict(cold_net <= TARGET_COLD_S)],
           ["reference: the same, numba cache filled", fmt_s(warm_net), "", ""]], "lrll")
    print("The first PPU use on an idle chip compiles the interpreter and its PPU loop (twin.cosim.run_ppus); "
          "the first one with the network running compiles the loop with the analog step body "
          "(run_span) as well.\n")


# ---------------------------------------------------------------------------- main
PARTS = ("sweep", "idle", "mix", "cold")


def main(argv: list[str] | None = None) -> int:
    global _PROGRESS
    ap = argparse.ArgumentParser(prog="python -m tools.bench.cosim", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="shorter spans and loops, 2 repeats, smaller time budget per repeat")
    ap.add_argument("--repeats", type=int, default=None, metavar="N", help="repeats per figure (default 3)")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold start (about a minute today)")
    ap.add_argument("--parts", default=",".join(PARTS),
                    help=f"comma-separated parts to run (default {','.join(PARTS)}); sweep and idle share "
                         "their set-up, so either one runs both")
    ap.add_argument("--chips", default="dls,hx", help="chips for the sweep/idle parts (default dls,hx)")
    ap.add_argument("--span-us", type=float, default=None,
                    help="longest hardware span of a sweeping run in us (default 1000)")
    ap.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                    help="wall-time budget of one sweeping repeat and of one long mix run; spans and "
                         "iteration counts are cut to fit (default 8, --quick 3)")
    ap.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    args = ap.parse_args(argv)
    _PROGRESS = not args.no_progress
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - set(PARTS)
    if unknown:
        ap.error(f"unknown part(s) {', '.join(sorted(unknown))}; parts: {', '.join(PARTS)}")
    if args.no_cold:
        parts.discard("cold")
    repeats = args.repeats or (2 if args.quick else 3)
    max_span = int(round((args.span_us or 1000.0) * 1e-6 / TICK))
    budget = args.budget or (3.0 if args.quick else 8.0)
    idle_span = int(round(1e-3 / TICK))
    min_span = int(round(10e-6 / TICK))

    print(f"# Co-simulation benchmark ({platform.python_implementation()} {platform.python_version()}, "
          f"NumPy {np.__version__}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())})\n")
    print(f"repeats {repeats}; parts: {', '.join(p for p in PARTS if p in parts)}\n")
    status = 0
    if parts & {"sweep", "idle"}:
        figs = []
        for chip in [c.strip() for c in args.chips.split(",") if c.strip()]:
            figs.append(measure_chip(chip, repeats, idle_span, max_span, min_span, budget))
        analog_hx = None
        if any(f.name == "hx" for f in figs):
            progress("tools.bench.analog twin_run (hx analog-only reference)")
            analog_hx = analog_reference(repeats)
        report_chips(figs, analog_hx)
    if "mix" in parts:
        status |= part_mix(repeats, args.quick, budget)
    if "cold" in parts:
        part_cold()
    progress("done")
    return status


if __name__ == "__main__":
    sys.exit(main())
