"""Firmware that never sleeps: how long the twin takes to answer others, to stop, to report.

    .venv/bin/python -m tools.bench.busy                 # dls and hx (about 1 min)
    .venv/bin/python -m tools.bench.busy --chips dls --reads 10

Everything goes through the paths a user takes: `bss-twin serve` and `bss-twin
ppu-run` as subprocesses, `host.connect` / `host.PPU` as clients.  Three kinds of
firmware keep PPU 0 busy, each in a program that waits 2**32 - 1 ticks (34 s of
hardware time; the client repeats it):

  bus_loop   reads a chip register in a loop: every access leaves the compiled loop
             for Python, so the twin runs it thousands of times slower than real time
  spin       `1: b 1b`, translated to machine code: 2**20 instructions per return
  hostile    tests/data/ppu_hostile/illegal_vector.bin: stuck in interrupt entry

Figures (medians and maxima; targets are printed as PASS/MISS, never asserted):

  serve      a second client's `PPU.status()` (one register-read program) while the
             busy program runs: target <= 0.1 s (the chip changes hands every
             twin.session.SLICE_SECONDS); then SIGTERM to the server: time until
             it has exited (target <= 1 s)
  sigint     `bss-twin ppu-run IMAGE --max-cycles 10**12` and SIGINT after 3 s:
             time until the process has exited with status 130 (target <= 1 s);
             and the same in-process (KeyboardInterrupt after SIGINT in a loop of
             `run_until_sleep`)
  report     `bss-twin ppu-run --max-cycles 5` of the hostile image: wall time of the
             process (Python start-up included) and its message
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HOSTILE = ROOT / "tests" / "data" / "ppu_hostile" / "illegal_vector.bin"
TARGET_READ_S = 0.1
TARGET_STOP_S = 1.0


def images(chip: str) -> dict[str, bytes]:
    from isa.ppu.asm import assemble
    from isa.ppu.iomap import REGISTER_BUS_BIT
    from isa.regmap import register_map
    ea = REGISTER_BUS_BIT | register_map(chip).address("chip_id", "serial") << 2
    return {"bus_loop": assemble(f"lis r4, {ea >> 16}\nori r4, r4, {ea & 0xFFFF}\n1: lwz r5, 0(r4)\nb 1b\n").image(),
            "spin": assemble("1: b 1b\n").image(),
            "hostile": HOSTILE.read_bytes()}


def _keep_busy(url: str, image: bytes, started: threading.Event) -> None:
    import host
    try:
        with host.connect(url, timeout=3600) as conn:
            ppu = host.PPU(conn)
            ppu.load(image)
            ppu.start()
            started.set()
            while True:
                prog = conn.program()
                prog.timer_reset()
                prog.wait_until((1 << 32) - 1)
                conn.run(prog)
    except Exception:           # the server stops under it: expected
        started.set()


def serve(chip: str, kind: str, image: bytes, reads: int) -> list[str]:
    import host
    proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "serve", "--chip", chip, "--tcp", "0", "--shared"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split()[-1]
        started = threading.Event()
        threading.Thread(target=_keep_busy, args=(url, image, started), daemon=True).start()
        started.wait(60)
        time.sleep(1.0)                         # well inside the busy program
        lat = []
        with host.connect(url, timeout=600) as conn:
            ppu = host.PPU(conn)
            for _ in range(reads):
                t = time.perf_counter()
                ppu.status()
                lat.append(time.perf_counter() - t)
        t = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        stop = time.perf_counter() - t
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    med, worst = statistics.median(lat), max(lat)
    return [chip, kind, f"{med * 1e3:.1f} ms", f"{worst * 1e3:.1f} ms",
            "PASS" if worst <= TARGET_READ_S else "MISS", f"{stop:.2f} s (status {proc.returncode})",
            "PASS" if stop <= TARGET_STOP_S and proc.returncode == 0 else "MISS"]


def sigint(chip: str, kind: str, image: bytes, repeats: int = 5) -> list[str]:
    """SIGINT to `bss-twin ppu-run` (not for the hostile image: it is reported at
    once) and in-process; one row."""
    cli, ok = "(reported at once)", True
    if kind != "hostile":
        with tempfile.NamedTemporaryFile(suffix=".bin") as f:
            f.write(image)
            f.flush()
            proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "ppu-run", f.name, "--chip", chip,
                                     "--max-cycles", str(10 ** 12)], cwd=ROOT,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(3.0)
            if proc.poll() is not None:
                return [chip, kind, f"ended by itself (status {proc.returncode})", "", "MISS"]
            t = time.perf_counter()
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=60)
            dt = time.perf_counter() - t
        cli, ok = f"{dt:.2f} s (status {proc.returncode})", dt <= TARGET_STOP_S and proc.returncode == 130
    import host
    waits = []
    with host.connect(f"twin:{chip}") as conn:
        ppu = host.PPU(conn)
        ppu.load(image)
        ppu.start()
        for k in range(repeats + 1):
            sent = []
            timer = threading.Timer(0.3, lambda: (sent.append(time.perf_counter()),
                                                  os.kill(os.getpid(), signal.SIGINT)))
            timer.start()
            try:
                while True:
                    prog = conn.program()
                    prog.timer_reset()
                    prog.wait_until((1 << 32) - 1)
                    conn.run(prog)
            except KeyboardInterrupt:
                if k:                       # the first includes translating hot code
                    waits.append(time.perf_counter() - sent[0])
            finally:
                timer.join()
    ok = ok and max(waits) <= TARGET_STOP_S
    return [chip, kind, cli, f"{statistics.median(waits) * 1e3:.1f} ms (max {max(waits) * 1e3:.1f} ms)",
            "PASS" if ok else "MISS"]


def report() -> list[str]:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "tools.cli", "ppu-run", str(HOSTILE), "--max-cycles", "5"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    return [f"{time.perf_counter() - t:.2f} s", str(r.returncode), r.stderr.strip().splitlines()[-1]]


def table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench.busy", description=__doc__.splitlines()[0])
    ap.add_argument("--chips", default="dls,hx", help="comma-separated profiles (default dls,hx)")
    ap.add_argument("--reads", type=int, default=30, help="status reads of the second client (default 30)")
    args = ap.parse_args(argv)
    chips = args.chips.split(",")
    print(f"# Busy firmware (CPython {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())})\n")
    rows = [serve(c, k, img, args.reads) for c in chips for k, img in images(c).items()]
    print("## A second client of `bss-twin serve` while a program keeps PPU 0 busy\n")
    table(["chip", "firmware", "status read, median", "max", f"target <= {TARGET_READ_S:g} s",
           "SIGTERM -> exited", f"target <= {TARGET_STOP_S:g} s"], rows)
    rows = [sigint(c, k, img) for c in chips for k, img in images(c).items()]
    print("## SIGINT during a run that never ends\n")
    table(["chip", "firmware", "`bss-twin ppu-run`: SIGINT -> exited", "in-process: SIGINT -> KeyboardInterrupt",
           f"target <= {TARGET_STOP_S:g} s"], rows)
    print("## `bss-twin ppu-run --max-cycles 5` of the hostile image\n")
    table(["wall (process)", "status", "message"], [report()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
