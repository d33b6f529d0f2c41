"""Programs over a damaged link: what the reliable link layer delivers, and at what cost.

    .venv/bin/python -m tools.bench.link                       # 2000 programs at 1e-3, 300 at 1e-2 (a few minutes)
    .venv/bin/python -m tools.bench.link --programs 500 --heavy 100

The path a user takes: `bss-twin serve --tcp` as a subprocess, `host.connect`
on `fault+tcp://...` (host/fault.py) with the layer on, write+read programs
of 4 parameter cells with values distinct per program.  For each link: how many
programs were lost (LinkError / LinkTimeout), came back wrong, or ran twice
(the chip's `link.programs` counter against the programs sent), programs per
second, and the layer's counters.  Reference in the same run: the same programs
over a clean `tcp://` link with the layer.  Targets (printed as PASS/MISS,
never asserted): 0 lost, 0 duplicated, 0 wrong on every link.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np


def _serve():
    proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "serve", "--chip", "dls", "--serial", "1",
                             "--tcp", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    url = line.split("listening on", 1)[1].strip().split()[0]
    return proc, url


def run_link(url: str, programs: int) -> dict:
    import host
    from host.errors import LinkError
    conn = host.connect(url, timeout=60)
    rm = conn.regmap
    field = rm.register("capmem", "neuron").field("value")
    addr = rm.addresses("capmem", "neuron")[:4]
    block = rm.block("link")
    counter = next(r for r in block.registers if r.name == "programs")
    counter_addr = np.array([block.base + counter.offset], np.uint64)

    def executed() -> int:
        prog = conn.program()
        t = prog.read_words(counter_addr)
        conn.run(prog)
        return int(t.values[0])

    before = executed()
    lost = wrong = 0
    t0 = time.perf_counter()
    for i in range(programs):
        vals = (np.arange(4) * 7 + i) % 1000
        prog = conn.program()
        prog.write_words(addr, vals << field.lsb)
        t = prog.read_words(addr)
        try:
            conn.run(prog)
        except LinkError:                  # LinkTimeout is one
            lost += 1
            continue
        wrong += int(not np.array_equal(field.extract(t.values.astype(np.int64)), vals))
    seconds = time.perf_counter() - t0
    ran = executed() - before - 1          # the counting program itself counts once
    stats = conn.transport.stats() if hasattr(conn.transport, "stats") else {}
    conn.close()
    return dict(url=url, programs=programs, lost=lost, wrong=wrong, duplicated=max(0, ran - programs),
                not_run=max(0, programs - ran), seconds=seconds, rate=programs / seconds, stats=stats)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench.link", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--programs", type=int, default=2000, help="programs at 1e-3 flips + 1e-4 drops (default 2000)")
    ap.add_argument("--heavy", type=int, default=300, help="programs at 1e-2 flips + 1e-4 drops (default 300)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    proc, url = _serve()
    try:
        links = [(url, args.programs),
                 (f"fault+{url}?flip=1e-3&drop=1e-4&seed={args.seed}", args.programs),
                 (f"fault+{url}?flip=1e-2&drop=1e-4&seed={args.seed}", args.heavy)]
        results = [run_link(u, n) for u, n in links]
    finally:
        proc.terminate()
        proc.wait(10)
    ref = results[0]["rate"]
    print(f"{'link':<34} {'programs':>8} {'lost':>5} {'dup':>4} {'wrong':>5} {'prog/s':>8} {'vs clean':>8} "
          f"{'retrans':>8} {'timeouts':>8} {'bad pkts':>8}  verdict")
    for r in results:
        s = r["stats"]
        ok = r["lost"] == r["wrong"] == r["duplicated"] == r["not_run"] == 0
        name = r["url"].split("?", 1)[1].rsplit("&seed", 1)[0] if "?" in r["url"] else "clean tcp"
        print(f"{name:<34} {r['programs']:>8} {r['lost']:>5} {r['duplicated']:>4} {r['wrong']:>5} "
              f"{r['rate']:>8.0f} {r['rate'] / ref:>8.3f} {s.get('retransmissions', 0):>8} {s.get('timeouts', 0):>8} "
              f"{s.get('bad_packets', 0):>8}  {'PASS' if ok else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
