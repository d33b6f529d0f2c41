"""Wire benchmarks: the message codec and a full synapse write + read-back.

    .venv/bin/python -m tools.bench.wire            # full run (about 15 s)
    .venv/bin/python -m tools.bench.wire --quick    # smaller sizes, fewer repeats

Part 1, codec: messages per second through `isa.wire` for omnibus_address,
omnibus_data and spike messages, encode and decode measured separately, on
the single-message path (encode / decode, one Python call per message) and the
bulk path (encode_bulk / fields_bulk over arrays).  Same-run reference: np.copy
of the same number of bytes (8 per message), i.e. what memory bandwidth alone
allows on this machine; the ratio codec / np.copy says how close a path gets.

Part 2, synapses: write and read back every synapse word of an `hx` chip
(2 x 256 x 256 synapses = 32768 weight words + 32768 label words) through the
host library, over each transport: in-process `twin:hx`, pyserial `twin://hx`,
TCP (`python -m tools.cli serve --tcp 0` as a subprocess) and the pty server
(`--pty`).  Same-run reference: the bytes this run actually put on the link
(frames included), and the time the real system's 125 MB/s link needs for them.

Figures are medians over the repeats.  Targets (reported, not asserted): bulk
codec >= 5 million messages/s each way; hx synapse write + read-back over the
in-process twin < 100 ms.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import select
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from isa import wire  # noqa: E402

LINK_BYTES_PER_S = 125e6            # the real system's host link (HostARQ over 1 GbE UDP)
TARGET_BULK_MSGS_PER_S = 5e6
TARGET_SYNAPSE_S = 0.100
CODEC_KINDS = ("omnibus_address", "omnibus_data", "spike")
TRANSPORTS = ("inproc", "pyserial", "tcp", "pty")
SERVER_START_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------- small helpers
class Progress:
    """One status line on stderr (rewritten in place on a terminal)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self._last = ""

    def __call__(self, text: str, step: str = "") -> None:
        """Show `text` (+ `step`, e.g. "(2/7)"); off a terminal, one line per text."""
        if not self.enabled:
            return
        if self.tty:
            sys.stderr.write("\r\033[K" + text + (f" {step}" if step else ""))
        elif text != self._last:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()
        self._last = text

    def done(self) -> None:
        if self.enabled and self.tty and self._last:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
        self._last = ""


def median_time(fn: Callable[[], object], repeats: int, progress: Progress | None = None,
                label: str = "") -> float:
    times = []
    for i in range(repeats):
        if progress is not None:
            progress(label, f"({i + 1}/{repeats})")
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def si(x: float) -> str:
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:7.2f} {unit}"
    return f"{x:7.2f}  "


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:9.2f} ms"


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": str(os.cpu_count()), "cpu": model, "python": platform.python_version(),
            "numpy": np.__version__, "platform": platform.platform()}


# --------------------------------------------------------------------------- part 1: codec
def random_fields(name: str, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {f: rng.integers(0, 1 << w, n, dtype=np.int64) for f, w in wire.message(name).fields}


@dataclass
class CodecRow:
    kind: str
    path: str           # single / bulk
    way: str            # encode / decode
    n: int
    seconds: float      # median time for n messages
    copy_seconds: float  # median np.copy time for the same bytes

    @property
    def rate(self) -> float:
        return self.n / self.seconds

    @property
    def copy_rate(self) -> float:
        return self.n / self.copy_seconds


def bench_codec(n_bulk: int, n_single: int, repeats: int, progress: Progress) -> list[CodecRow]:
    rng = np.random.default_rng(1)
    rows = []
    copy_cache: dict[int, float] = {}

    def copy_time(n: int) -> float:
        if n not in copy_cache:
            src = rng.integers(0, 1 << 62, n).astype(np.uint64)
            np.copy(src)   # warm
            copy_cache[n] = median_time(lambda: np.copy(src), max(repeats, 5), progress,
                                        f"codec: np.copy of {n * 8 / 1e6:.1f} MB (reference)")
        return copy_cache[n]

    for kind in CODEC_KINDS:
        # bulk
        fields = random_fields(kind, n_bulk, rng)
        words = wire.encode_bulk(kind, **fields)
        back = wire.fields_bulk(kind, words)
        if any(not np.array_equal(back[f], fields[f]) for f in fields):
            raise SystemExit(f"bulk codec round trip failed for {kind}")
        wire.encode_bulk(kind, **fields)  # warm
        t_enc = median_time(lambda: wire.encode_bulk(kind, **fields), repeats, progress,
                            f"codec: {kind} bulk encode of {n_bulk:,}")
        t_dec = median_time(lambda: wire.fields_bulk(kind, words), repeats, progress,
                            f"codec: {kind} bulk decode of {n_bulk:,}")
        tc = copy_time(n_bulk)
        rows += [CodecRow(kind, "bulk", "encode", n_bulk, t_enc, tc),
                 CodecRow(kind, "bulk", "decode", n_bulk, t_dec, tc)]
        # single
        sf = {f: v[:n_single].tolist() for f, v in fields.items()}
        names = list(sf)
        dicts = [dict(zip(names, vals)) for vals in zip(*(sf[f] for f in names))]
        single_words = [int(w) for w in words[:n_single]]
        encode, decode = wire.encode, wire.decode

        def enc():
            for d in dicts:
                encode(kind, **d)

        def dec():
            for w in single_words:
                decode(w)

        if [encode(kind, **d) for d in dicts[:100]] != single_words[:100]:
            raise SystemExit(f"single and bulk encoders disagree for {kind}")
        t_enc = median_time(enc, repeats, progress, f"codec: {kind} single encode of {n_single:,}")
        t_dec = median_time(dec, repeats, progress, f"codec: {kind} single decode of {n_single:,}")
        tc = copy_time(n_single)
        rows += [CodecRow(kind, "single", "encode", n_single, t_enc, tc),
                 CodecRow(kind, "single", "decode", n_single, t_dec, tc)]
    progress.done()
    return rows


def report_codec(rows: list[CodecRow]) -> list[str]:
    out = ["Part 1: wire codec, messages per second (median), beside np.copy of the same bytes (8 per message)",
           "",
           f"{'message':<16} {'path':<6} {'way':<6} {'messages':>10} {'msg/s':>10} "
           f"{'np.copy msg/s':>14} {'codec/copy':>11}  target",
           "-" * 92]
    for r in rows:
        target = (f"{verdict(r.rate >= TARGET_BULK_MSGS_PER_S)} (>= {TARGET_BULK_MSGS_PER_S / 1e6:g} M/s)"
                  if r.path == "bulk" else "")
        out.append(f"{r.kind:<16} {r.path:<6} {r.way:<6} {r.n:>10,} {si(r.rate):>10} "
                   f"{si(r.copy_rate):>14} {r.rate / r.copy_rate:>11.3g}  {target}")
    return out


# --------------------------------------------------------------------------- part 2: synapses
class CountingTransport:
    """Wraps a host transport and counts the bytes that cross it."""

    def __init__(self, inner):
        self.inner = inner
        self.url = inner.url
        self.tx = 0
        self.rx = 0

    def write(self, data: bytes) -> None:
        self.tx += len(data)
        self.inner.write(data)

    def read(self, timeout: float) -> bytes:
        data = self.inner.read(timeout)
        self.rx += len(data)
        return data

    def close(self) -> None:
        self.inner.close()


@dataclass
class SynapseResult:
    transport: str
    url: str
    seconds: float | None = None        # median wall time: build program + run + check
    run_seconds: float | None = None    # median of Connection.run alone
    tx_bytes: int = 0
    rx_bytes: int = 0
    words: int = 0
    repeats: int = 0
    note: str = ""

    @property
    def link_seconds(self) -> float:
        return (self.tx_bytes + self.rx_bytes) / LINK_BYTES_PER_S


def synapse_roundtrip(conn, repeats: int, progress: Progress, label: str) -> tuple[float, float, int, int, int]:
    import host

    rm = conn.regmap
    p = conn.profile
    addrs = np.concatenate([rm.addresses("synapse", "weights"), rm.addresses("synapse", "labels")])
    rows = p.synapse_arrays * p.rows
    counting = CountingTransport(conn.transport)
    conn.transport = counting
    walls, runs = [], []
    tx = rx = 0
    for i in range(repeats):
        progress(f"synapses over {label}", f"({i + 1}/{repeats})")
        rng = np.random.default_rng(100 + i)
        values = host.synapse_words(rm, rng.integers(0, 1 << p.weight_bits, (rows, p.columns)),
                                    rng.integers(0, 1 << p.label_bits, (rows, p.columns))).ravel()
        counting.tx = counting.rx = 0
        t0 = time.perf_counter()
        prog = conn.program()
        prog.write_words(addrs, values)
        ticket = prog.read_words(addrs)
        t1 = time.perf_counter()
        conn.run(prog)
        t2 = time.perf_counter()
        ok = np.array_equal(ticket.values, values)
        t3 = time.perf_counter()
        if not ok:
            raise SystemExit(f"{label}: synapse read-back differs from what was written")
        walls.append(t3 - t0)
        runs.append(t2 - t1)
        tx, rx = counting.tx, counting.rx
    progress.done()
    return statistics.median(walls), statistics.median(runs), tx, rx, len(addrs)


def _start_server(mode: str, progress: Progress) -> tuple[subprocess.Popen | None, str | None, str]:
    """Start `tools.cli serve` as a subprocess; returns (process, address, problem)."""
    args = [sys.executable, "-m", "tools.cli", "serve", "--chip", "hx", "--serial", "1"]
    args += ["--tcp", "0"] if mode == "tcp" else ["--pty"]
    pattern = re.compile(r"listening on (tcp://\S+)" if mode == "tcp" else r"pty (/dev/\S+)")
    progress(f"starting `{' '.join(args[1:])}`")
    try:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as exc:
        return None, None, f"cannot start the CLI: {exc}"
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    buf = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            buf += line
            m = pattern.search(line)
            if m:
                return proc, m.group(1), ""
        elif proc.poll() is not None:
            break
    err = ""
    if proc.poll() is not None:
        err = (proc.stderr.read() or "").strip().splitlines()
        err = err[-1] if err else f"exit status {proc.returncode}"
    _stop_process(proc)
    return None, None, f"the CLI did not announce its address ({err or 'timeout'}; stdout: {buf.strip()!r})"


def _stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()


def _in_process_server(mode: str):
    """Fallback when the CLI is not available: twin.server in this process."""
    from twin.chip import Chip
    from twin import server

    srv = (server.TwinServer(Chip("hx", 1), port=0) if mode == "tcp" else server.PtyServer(Chip("hx", 1)))
    srv.start()
    return srv, srv.url


def bench_synapses(transports: list[str], repeats: int, progress: Progress) -> list[SynapseResult]:
    import host

    results = []
    for name in transports:
        proc = srv = None
        note, url = "", "-"
        try:
            if name == "inproc":
                url = "twin:hx?serial=1"
            elif name == "pyserial":
                url = "twin://hx?serial=1"
            else:
                proc, url, problem = _start_server(name, progress)
                if url is None:
                    try:
                        srv, url = _in_process_server(name)
                        note = f"server thread in this process ({problem})"
                    except Exception as exc:  # noqa: BLE001 - reported, not raised
                        results.append(SynapseResult(name, "-", note=f"not measured: {problem}; "
                                                                     f"twin.server fallback failed: {exc}"))
                        continue
                else:
                    note = "server: `python -m tools.cli serve` subprocess"
            progress(f"connecting to {url}")
            with host.connect(url, timeout=120) as conn:
                wall, run, tx, rx, words = synapse_roundtrip(conn, repeats, progress, name)
            results.append(SynapseResult(name, url, wall, run, tx, rx, words, repeats, note))
        except Exception as exc:  # noqa: BLE001 - one transport failing must not hide the others
            results.append(SynapseResult(name, url or "-",
                                         note=f"not measured: {type(exc).__name__}: {exc}"))
        finally:
            if proc is not None:
                _stop_process(proc)
            if srv is not None:
                srv.stop()
    progress.done()
    return results


def report_synapses(results: list[SynapseResult]) -> list[str]:
    out = ["Part 2: hx synapse array, write + read-back of every synapse word (median wall time)",
           "",
           f"{'transport':<9} {'words':>6} {'total':>12} {'run()':>12} {'bytes tx+rx':>12} "
           f"{'125 MB/s link':>13} {'twin/link':>9}  target",
           "-" * 92]
    for r in results:
        if r.seconds is None:
            out.append(f"{r.transport:<9} {r.note}")
            continue
        target = (f"{verdict(r.seconds < TARGET_SYNAPSE_S)} (< {TARGET_SYNAPSE_S * 1e3:g} ms)"
                  if r.transport == "inproc" else "")
        out.append(f"{r.transport:<9} {r.words:>6} {ms(r.seconds):>12} {ms(r.run_seconds):>12} "
                   f"{r.tx_bytes + r.rx_bytes:>12,} {ms(r.link_seconds):>13} "
                   f"{r.seconds / r.link_seconds:>9.2f}  {target}")
    out.append("")
    for r in results:
        if r.seconds is not None:
            out.append(f"  {r.transport}: {r.url}, {r.repeats} repeat(s); sent {r.tx_bytes:,} bytes, "
                       f"received {r.rx_bytes:,} bytes" + (f"; {r.note}" if r.note else ""))
    out += ["  words = synapse words written and read (weights + labels); each costs an address and a data",
            "  word to write and an address word to read, plus one read_data word back.",
            "  total = build the program + Connection.run + compare the read-back; run() = Connection.run alone.",
            "  125 MB/s link = (bytes sent + bytes received, frames included) / 125e6 B/s: the time the real",
            "  system's host link needs just to carry the same bytes; twin/link = total / that time."]
    return out


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench.wire",
                                 description="Benchmark the wire codec and an hx synapse write + read-back "
                                             "over every transport.",
                                 epilog="Targets are reported (PASS/MISS), not asserted. The machine is shared "
                                        "and noisy: compare figures from one run with each other.")
    ap.add_argument("--quick", action="store_true", help="smaller codec sizes and 3 repeats (a few seconds)")
    ap.add_argument("--repeats", type=int, default=None, metavar="N",
                    help="repeats per figure (default 7, quick 3); the median is reported")
    ap.add_argument("--transports", default=",".join(TRANSPORTS), metavar="LIST",
                    help=f"comma-separated subset of {','.join(TRANSPORTS)} (default all)")
    ap.add_argument("--skip-codec", action="store_true", help="only the synapse part")
    ap.add_argument("--skip-synapses", action="store_true", help="only the codec part")
    ap.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    args = ap.parse_args(argv)
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    unknown = set(transports) - set(TRANSPORTS)
    if unknown:
        ap.error(f"unknown transport(s) {', '.join(sorted(unknown))}; choose from {', '.join(TRANSPORTS)}")
    repeats = args.repeats or (3 if args.quick else 7)
    if repeats < 1:
        ap.error("--repeats must be at least 1")
    n_bulk = 200_000 if args.quick else 2_000_000
    n_single = 5_000 if args.quick else 50_000
    progress = Progress(not args.no_progress)

    m = machine()
    print(f"bss-twin wire benchmark ({'quick' if args.quick else 'full'}), {repeats} repeats, medians")
    print(f"machine: {m['cpus']} CPUs, {m['cpu']}; Python {m['python']}, NumPy {m['numpy']}; {m['platform']}")
    print()
    if not args.skip_codec:
        for line in report_codec(bench_codec(n_bulk, n_single, repeats, progress)):
            print(line)
        print()
    if not args.skip_synapses:
        for line in report_synapses(bench_synapses(transports, repeats, progress)):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
