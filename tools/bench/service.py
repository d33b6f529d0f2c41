"""Many clients on one `bss-twin serve`: concurrency, hostile programs among simple ones, a killed client.

    .venv/bin/python -m tools.bench.service                      # all three parts (about 3 min)
    .venv/bin/python -m tools.bench.service --only concurrency --programs 100

The server runs as a subprocess (`python -m tools.cli serve --tcp 0`, as tools/bench/limits.py
starts it: its memory from /proc/PID/status); clients use this tree's host library
(tcp:// URLs: the reliable link layer on), as threads of this process unless said otherwise.

concurrency  8 clients x `--programs` programs, each program: read one synapse-weight word
             (the same word for every client), write a value distinct per client and program
             to it, read it back.  "mixed": a read-back that is not the program's own value;
             "foreign": the first read not the value this client wrote last (0 at first):
             another client's write seen.  On the default server (a chip per client) both
             must be 0; on a `--shared` server "foreign" shows that the check sees sharing
             (mixed must still be 0: programs run whole).  Throughput: programs/s of 1 client
             alone and of the 8 together (the ratio 8 vs 1; the clients share this process's
             interpreter, the server one process).
hostile      8 clients loop a simple program (write + read back, as above) while one more
             client runs, one after the other: the interrupt-loop PPU image
             (tests/data/ppu_hostile), an endless PPU loop under 4 waits of 2**32 - 1 ticks, a
             2**32 - 1 tick wait with every neuron firing, a 10 M-word read, 3 M input spikes
             on the crossbar loopback; the server's wall-time limit is `--max-seconds`.
             Each must end with its typed error (host.ProgramLimit, host.PPUFault) within
             the server's wall-time limit; the 8 clients' latency (median, p99, max) while
             it runs against the same clients' latency before any hostile program (the
             reference, same run); the server's peak resident set per scenario (VmHWM).
kill         a client subprocess writes a value, starts a PPU bus loop and a long wait, and
             is killed (SIGKILL) in the middle of it: the time until the server logs the
             program cancelled, a new client served (its latency), the value and the PPU
             not seen by it (no state of the killed session leaks), and 4 other clients,
             connected before, served throughout.

Nothing is asserted; the figures go to docs/performance.md ("Service").
"""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import host  # noqa: E402
from tools.bench.limits import LONG_WAIT, Server, fire_all, loopback, read_program, spikes_program  # noqa: E402

HOSTILE_IMAGE = ROOT / "tests" / "data" / "ppu_hostile" / "illegal_vector.bin"
PARTS = ("concurrency", "hostile", "kill")


def warm_up(url: str) -> None:
    """One PPU program and one wait on a fresh connection: the server's first use
    of its kernels (compiled, or loaded from numba's cache) is not measured."""
    from isa.ppu.asm import assemble
    with host.connect(url, timeout=600) as conn:
        ppu = host.PPU(conn)
        ppu.load(assemble("li r5, 42\nwait\n").image())
        ppu.start()
        ppu.run_until_sleep(1e-3)
        fire_all(conn, readout=1)
        prog = conn.program()
        prog.timer_reset()
        prog.wait_until(10_000)
        conn.run(prog)
        prog = conn.program()
        prog.reset()                      # a shared chip is left as it was found
        conn.run(prog)


def _word(conn) -> np.ndarray:
    return np.array(conn.regmap.addresses("synapse", "weights")[:1], np.uint64)


def _value(client: int, k: int) -> int:
    return (client << 24) | (k << 8) | 0x5A


class Writer:
    """One client's loop of write + read-back programs (module docstring)."""

    def __init__(self, url: str, index: int):
        self.conn = host.connect(url, timeout=600)
        self.index = index
        self.addr = _word(self.conn)
        self.last = 0
        self.k = 0
        self.mixed = self.foreign = self.errors = 0
        self.latencies: list[tuple[float, float]] = []       # (start, seconds)
        self.problems: list[str] = []

    def one(self) -> None:
        value = _value(self.index, self.k % 0x10000)
        self.k += 1
        prog = self.conn.program()
        before = prog.read_words(self.addr)
        prog.write_words(self.addr, np.array([value], np.uint64))
        after = prog.read_words(self.addr)
        t0 = time.monotonic()
        try:
            self.conn.run(prog)
        except host.BssError as exc:
            self.errors += 1
            self.problems.append(f"{type(exc).__name__}: {exc}"[:200])
            return
        self.latencies.append((t0, time.monotonic() - t0))
        self.foreign += int(int(before.values[0]) != self.last)
        self.mixed += int(int(after.values[0]) != value)
        self.last = value

    def close(self) -> None:
        self.conn.close()


# =========================================================================== concurrency
def concurrency(url: str, clients: int, programs: int) -> dict:
    writers = [Writer(url, i) for i in range(clients)]          # connected before the clock starts
    go = threading.Barrier(clients + 1)

    def loop(w: Writer) -> None:
        go.wait()
        for _ in range(programs):
            w.one()

    threads = [threading.Thread(target=loop, args=(w,), daemon=True) for w in writers]
    for t in threads:
        t.start()
    go.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    out = dict(clients=clients, programs=clients * programs, seconds=seconds, rate=clients * programs / seconds,
               mixed=sum(w.mixed for w in writers), foreign=sum(w.foreign for w in writers),
               errors=sum(w.errors for w in writers), problems=[p for w in writers for p in w.problems][:3])
    for w in writers:
        w.close()
    return out


def part_concurrency(args) -> None:
    print(f"== concurrency: {args.clients} clients x {args.programs} programs (read, write, read back), "
          f"{args.repeats} runs each: the median rate (lowest..highest); counts over all runs")
    print(f"{'server':<18} {'clients':>7} {'programs':>8} {'prog/s':>8} {'range':>11} {'n vs 1':>7} {'mixed':>5} "
          f"{'foreign':>7} {'errors':>6}")
    for shared in (False, True):
        srv = Server(ROOT, "dls", ["--shared"] if shared else [], None)
        try:
            warm_up(srv.url)
            ones, manys = [], []
            for _ in range(args.repeats):          # interleaved: drifts of a busy machine hit both alike
                ones.append(concurrency(srv.url, 1, args.programs))
                manys.append(concurrency(srv.url, args.clients, args.programs))
        finally:
            srv.stop()
        name = "--shared" if shared else "a chip per client"
        one, many = (_merge(ones), _merge(manys))
        for r in (one, many):
            ratio = f"{r['rate'] / one['rate']:.2f}" if r is many else "1"
            print(f"{name:<18} {r['clients']:>7} {r['programs']:>8} {r['rate']:>8.0f} "
                  f"{r['low']:>5.0f}..{r['high']:<5.0f} {ratio:>7} {r['mixed']:>5} "
                  f"{r['foreign']:>7} {r['errors']:>6}  {'; '.join(r['problems'])}")


def _merge(runs: list[dict]) -> dict:
    """The median rate of the runs (and the lowest, highest), their counts summed."""
    out = dict(runs[0])
    rates = sorted(r["rate"] for r in runs)
    out.update(rate=float(np.median(rates)), low=rates[0], high=rates[-1],
               **{k: sum(r[k] for r in runs) for k in ("programs", "mixed", "foreign", "errors")},
               problems=[p for r in runs for p in r["problems"]][:3])
    return out


# =========================================================================== hostile programs
def _outcome(fn) -> tuple[str, float]:
    t0 = time.monotonic()
    try:
        fn()
        what = "ran to its end (no limit reached)"
    except host.ProgramLimit as exc:
        what = f"ProgramLimit {exc.limit.name} {exc.value}"
    except host.PPUFault as exc:
        what = f"PPUFault reason {exc.reason} at {exc.address:#x}"
    except host.BssError as exc:
        what = f"{type(exc).__name__}: {str(exc)[:120]}"
    return what, time.monotonic() - t0


# Each prepares its client's chip and returns the hostile program's run (the part timed).
def hostile_interrupt_loop(conn):
    ppu = host.PPU(conn)
    ppu.load(HOSTILE_IMAGE.read_bytes())
    ppu.start()
    return lambda: ppu.run_until_sleep(1.0)


def hostile_ppu_loop(conn):
    from isa.ppu.asm import assemble
    ppu = host.PPU(conn)
    ppu.load(assemble("1:  addi r3, r3, 1\n    b 1b\n").image())
    ppu.start()
    prog = conn.program()
    for _ in range(4):                      # 4 x 2**32 - 1 ticks (137 s of chip time) of an endless loop
        prog.timer_reset()
        prog.wait_until(LONG_WAIT)
    return lambda: conn.run(prog)


def hostile_wait_firing(conn):
    fire_all(conn, readout=1)
    prog = conn.program()
    prog.timer_reset()
    prog.wait_until(LONG_WAIT)
    return lambda: conn.run(prog)


def hostile_read_10M(conn):
    prog = read_program(conn)
    return lambda: conn.run(prog)


def hostile_spikes_3M(conn):
    loopback(conn, True)
    prog = spikes_program(conn)
    return lambda: conn.run(prog)


HOSTILE = ("interrupt_loop", "ppu_loop", "wait_firing", "read_10M", "spikes_3M")


def _lat(values: list[float]) -> str:
    if not values:
        return "none completed"
    a = np.array(values) * 1e3
    return f"{len(a):>5} programs, median {np.median(a):6.1f} ms, p99 {np.percentile(a, 99):7.1f} ms, max {a.max():7.1f} ms"


def part_hostile(args) -> None:
    srv = Server(ROOT, "dls", ["--max-program-seconds", str(args.max_seconds)], None)
    print(f"== hostile programs among {args.clients} simple clients (server wall-time limit {args.max_seconds} s)")
    try:
        warm_up(srv.url)
        writers = [Writer(srv.url, i) for i in range(args.clients)]
        stop = threading.Event()

        def loop(w: Writer) -> None:
            while not stop.is_set():
                w.one()

        threads = [threading.Thread(target=loop, args=(w,), daemon=True) for w in writers]
        srv.begin()
        for t in threads:
            t.start()
        windows = []
        peak_all = 0
        t_ref = time.monotonic()
        time.sleep(args.reference)
        windows.append(("reference", t_ref, time.monotonic(), "-", 0.0, srv.end()[0]))
        for name in HOSTILE:
            with host.connect(srv.url, timeout=600) as conn:
                hostile = globals()[f"hostile_{name}"](conn)
                srv.begin()
                t_a = time.monotonic()
                what, seconds = _outcome(hostile)
                t_b = time.monotonic()
                peak = srv.end()[0]
                # The hostile client's chip is usable afterwards.
                prog = conn.program()
                t = prog.read(host.ChipOnly(), host.ChipId)
                try:
                    conn.run(prog)
                    usable = bool(t.value.profile)
                except host.BssError:
                    usable = False
            windows.append((name, t_a, t_b, what + ("" if usable else "; chip NOT usable after"), seconds, peak))
            time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(600)
        lat = [(s, d) for w in writers for s, d in w.latencies]
        for name, a, b, what, seconds, peak in windows:
            peak_all = max(peak_all, peak)
            during = [d for s, d in lat if a <= s <= b]
            print(f"{name:<15} {what:<34} {seconds:6.1f} s  RSS peak {peak / 2**20:5.0f} MiB | {_lat(during)}")
        print(f"simple clients: {sum(w.mixed for w in writers)} mixed, {sum(w.foreign for w in writers)} foreign, "
              f"{sum(w.errors for w in writers)} errors, {len(lat)} programs in all")
        for w in writers:
            w.close()
        errs = [line for line in srv.log if "internal error" in line or "MemoryError" in line]
        print(f"server alive: {srv.proc.poll() is None}; internal errors logged: {len(errs)}; "
              f"server RSS peak over all scenarios {peak_all / 2**20:.0f} MiB")
    finally:
        srv.stop()


# =========================================================================== a killed client
#: A client (run with `python -c VICTIM URL` in the repository) that writes 0xDEADBEEF to the
#: first synapse-weight word, starts a PPU bus loop, prints "running" and sends a program
#: waiting 2**32 - 1 ticks (the loop makes it last minutes of wall time).
VICTIM = r"""
import sys, numpy as np, host
from isa.ppu.asm import assemble
from isa.ppu.iomap import REGISTER_BUS_BIT
conn = host.connect(sys.argv[1], timeout=600)
ea = REGISTER_BUS_BIT | conn.regmap.address("chip_id", "serial") << 2      # a register read in a loop
loop = assemble(f"lis r4, {ea >> 16}\nori r4, r4, {ea & 0xFFFF}\n1: lwz r5, 0(r4)\naddi r6, r6, 1\nb 1b\n").image()
addr = np.array(conn.regmap.addresses("synapse", "weights")[:1], np.uint64)
prog = conn.program()
prog.write_words(addr, np.array([0xDEADBEEF], np.uint64))
conn.run(prog)
ppu = host.PPU(conn)
ppu.load(loop)
ppu.start()
prog = conn.program()
prog.timer_reset()
prog.wait_until((1 << 32) - 1)
print("running", flush=True)
conn.run(prog)
print("ended", flush=True)
"""


def part_kill(args) -> None:
    srv = Server(ROOT, "dls", [], None)
    print("== a client killed in the middle of its program")
    try:
        warm_up(srv.url)
        others = [Writer(srv.url, i) for i in range(4)]
        stop = threading.Event()

        def loop(w: Writer) -> None:
            while not stop.is_set():
                w.one()

        threads = [threading.Thread(target=loop, args=(w,), daemon=True) for w in others]
        for t in threads:
            t.start()
        victim = subprocess.Popen([sys.executable, "-c", VICTIM, srv.url], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        line = victim.stdout.readline().strip()
        time.sleep(1.0)                                        # the program is on the chip
        log_before = len(srv.log)
        alive_before = victim.poll() is None
        t_kill = time.monotonic()
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        cancelled = None
        while time.monotonic() - t_kill < 30 and cancelled is None:
            for entry in srv.log[log_before:]:
                if "program cancelled" in entry and "the client disconnected" in entry:
                    cancelled = (time.monotonic() - t_kill, entry)
                    break
            time.sleep(0.01)
        t0 = time.monotonic()
        with host.connect(srv.url, timeout=60) as conn:
            prog = conn.program()
            t = prog.read_words(_word(conn))
            conn.run(prog)
            served = time.monotonic() - t0
            seen = int(t.values[0])
            ppu = host.PPU(conn).status()
        stop.set()
        for t_ in threads:
            t_.join(60)
        print(f"victim printed {line!r}, still running when killed: {alive_before}")
        if cancelled:
            print(f"cancelled {cancelled[0] * 1e3:.0f} ms after the kill: {cancelled[1]}")
        else:
            print(f"NOT cancelled within 30 s; log: {srv.log[log_before:][-5:]}")
        print(f"next client served {served * 1e3:.0f} ms after connecting (connect included); it reads "
              f"{seen:#x} (the victim wrote 0xdeadbeef), its PPU {'running' if ppu.running else 'in reset'}")
        print(f"4 other clients meanwhile: {sum(len(w.latencies) for w in others)} programs, "
              f"{sum(w.errors for w in others)} errors, {sum(w.mixed for w in others)} mixed, "
              f"{sum(w.foreign for w in others)} foreign; "
              f"latency {_lat([d for w in others for s, d in w.latencies if s >= t_kill - 1.0])} (from 1 s before the kill)")
        for w in others:
            w.close()
    finally:
        srv.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench.service", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--programs", type=int, default=100, help="programs per client in the concurrency part")
    ap.add_argument("--repeats", type=int, default=5, help="runs of each concurrency measurement (median)")
    ap.add_argument("--max-seconds", type=float, default=10.0, help="the server's wall-time limit (hostile part)")
    ap.add_argument("--reference", type=float, default=5.0, help="seconds of reference latency before the hostile programs")
    args = ap.parse_args(argv)
    only = [p for p in args.only.split(",") if p]
    bad = set(only) - set(PARTS)
    if bad:
        ap.error(f"unknown part(s) {', '.join(sorted(bad))}; known: {', '.join(PARTS)}")
    for part in only:
        globals()[f"part_{part}"](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
