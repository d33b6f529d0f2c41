"""Hostile programs against `bss-twin serve`: what they cost the server and what they get back.

    .venv/bin/python -m tools.bench.limits                       # every scenario on dls (about 3 min)
    .venv/bin/python -m tools.bench.limits --only spam,trickle
    .venv/bin/python -m tools.bench.limits --tree /path/to/checkout --as-limit-gb 4
                                    # the same against another tree's server (e.g. before the limits),
                                    # its address space capped so that it fails instead of eating the machine

The server runs as a subprocess (`python -m tools.cli serve --tcp 0` in the tree's
folder); its memory is read from /proc/PID/status: the peak resident set during a
scenario (VmHWM, reset through /proc/PID/clear_refs before it; a 20 ms sampler of VmRSS
as well, for kernels that refuse the reset) and the resident set after it.  Clients are
this tree's host library, or raw sockets speaking isa.frame where a client must not
hold the output itself.

Scenarios (each ends with a register read that must be answered: the chip stays usable):

  wait_firing  all neurons fire (leak above threshold, refractory 0), one wait of 2**32 - 1 ticks
  madc         the membrane ADC samples every tick, one wait of 2**32 - 1 ticks
  madc_stream  the same through a raw client that only counts the words, the server's output
               limit raised to 2**26 words (512 MiB streamed): the server's memory must not grow
               with the recording (skipped for a tree without --max-output-words)
  read_10M     one program of 10 M register reads
  spikes_3M    3 M input spikes (one every 2 ticks) with the crossbar loopback on
  trickle      4 clients each send frames of 65 536 words (512 KiB) without an END frame, one
               every 0.05 s, for 15 s
  spam         4 MiB of start markers (0xB5 0x5A repeated): the answer's size and the server's
               CPU time
  share        a server with one chip for all clients (--shared): while one client's program
               waits 2**32 - 1 ticks with every neuron firing (asking for 8 s of wall time), a
               second client runs 20 register reads: their latency (median, max)

Nothing is asserted; the figures go to docs/performance.md ("Limits").
"""
from __future__ import annotations

import argparse
import os
import resource
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from isa import frame, wire  # noqa: E402
from tools.rawclient import NoAnswer, RawClient, ServerClosed  # noqa: E402

LONG_WAIT = (1 << 32) - 1
SCENARIOS = ("wait_firing", "madc", "madc_stream", "read_10M", "spikes_3M", "trickle", "spam", "share")


# --------------------------------------------------------------------------- the server
class Server:
    def __init__(self, tree: Path, chip: str, extra: list[str], as_limit_gb: float | None):
        def cap():
            if as_limit_gb:
                n = int(as_limit_gb * (1 << 30))
                resource.setrlimit(resource.RLIMIT_AS, (n, n))

        where = [] if "--pty" in extra else ["--tcp", "0"]
        self.proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "serve", "--chip", chip, *where,
                                      *extra], cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, preexec_fn=cap)
        r, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline().strip() if r else ""
        if not line.startswith(("listening on ", "pty ")):
            self.proc.kill()
            raise SystemExit(f"the server printed no address: {line!r} {self.proc.stderr.read()}")
        self.url = line.split()[-1]
        if line.startswith("pty "):               # `--pty`: the slave path is the address
            self.address = self.url
        else:
            host, port = self.url[len("tcp://"):].rsplit(":", 1)
            self.address = (host, int(port))
        self.log: list[str] = []
        threading.Thread(target=self._drain_log, daemon=True).start()
        self._peak = 0
        self._sampling = False

    def _drain_log(self) -> None:
        for line in self.proc.stderr:
            self.log.append(line.rstrip())

    def status(self, key: str) -> int:
        """A /proc/PID/status figure in bytes (0 when the server is gone)."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def cpu_seconds(self) -> float:
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def begin(self) -> None:
        """Start measuring a scenario's peak."""
        try:
            Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
        except OSError:
            pass
        self._peak = self.status("VmRSS")
        self._sampling = True

        def sample():
            while self._sampling:
                self._peak = max(self._peak, self.status("VmRSS"))
                time.sleep(0.02)

        self._sampler = threading.Thread(target=sample, daemon=True)
        self._sampler.start()

    def end(self) -> tuple[int, int]:
        """(peak, now) resident bytes of the scenario."""
        self._sampling = False
        self._sampler.join()
        return max(self._peak, self.status("VmHWM")), self.status("VmRSS")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------------------- raw clients
def Raw(address) -> RawClient:
    """Frames over a socket; answers counted by message kind, not kept."""
    return RawClient.tcp(address, connect_timeout=10, keep=False)


def _until_echo(raw: RawClient, timeout: float) -> bool:
    try:
        raw.until_echo(timeout=timeout)
        return True
    except (NoAnswer, ServerClosed):
        return False


def _summaries(raw: RawClient) -> int:
    return sum(1 for n in raw.notices if n[:2] == ("error", wire.ErrorReason.NOTICES_DROPPED))


def _halt(tag: int) -> int:
    return wire.encode("loopback", halt=1, tag=tag)


# --------------------------------------------------------------------------- scenarios
def _outcome(fn) -> str:
    import host
    t0 = time.perf_counter()
    try:
        res = fn()
        what = f"ran: {len(res.spikes)} spikes, {len(res.madc)} MADC samples, {res.words_received} words"
    except host.ProgramLimit as exc:
        what = f"ProgramLimit: {exc.limit.name} {exc.value} at word {exc.index}"
    except host.BssError as exc:
        what = f"{type(exc).__name__}: {str(exc)[:160]}"
    return f"{what} ({time.perf_counter() - t0:.1f} s)"


def fire_all(conn, readout: int = 0) -> None:
    """Every neuron's leak above its threshold, refractory time 0: they fire every
    step (the hostile network of the limits tests and benchmarks)."""
    import host
    p = conn.profile
    v = lambda volts: int(round(volts / p.analog.v_max * p.cell_max))
    prog = conn.program()
    prog.write(host.ChipOnly(), host.CapMemConfig(enable=1, settle=0))
    for n in range(p.neurons):
        for name, value in (("v_leak", v(1.1)), ("v_threshold", v(0.5)), ("v_reset", v(0.5)), ("i_bias_leak", p.cell_max)):
            prog.write(host.CapMemCellOnChip(n, name), host.CapMemCell(value))
        prog.write(host.NeuronOnChip(n),
                   host.NeuronConfig(enable=1, refractory=0, refractory_clock=0, readout=readout))
        prog.write(host.NeuronOnChip(n), host.NeuronLabel(label=n, enable=1))
    conn.run(prog)


def _quiet(conn) -> None:
    import host
    prog = conn.program()
    prog.reset()
    conn.run(prog)
    del host


def scenario_wait_firing(srv: Server, conn) -> str:
    fire_all(conn, readout=1)
    prog = conn.program()
    prog.timer_reset()
    prog.wait_until(LONG_WAIT)
    srv.begin()
    return _outcome(lambda: conn.run(prog))


def _madc_program(conn):
    import host
    prog = conn.program()
    prog.write(host.ChipOnly(), host.MADCConfig(enable=1, source=0, neuron=3, period=1))
    prog.timer_reset()
    prog.wait_until(LONG_WAIT)
    return prog


def scenario_madc(srv: Server, conn) -> str:
    prog = _madc_program(conn)
    srv.begin()
    return _outcome(lambda: conn.run(prog))


def scenario_madc_stream(srv: Server, conn) -> str:
    words = _madc_program(conn)
    words.done(tag=77)
    raw = Raw(srv.address)
    srv.begin()
    t0 = time.perf_counter()
    raw.send(raw.frame(words.words()))
    ok = _until_echo(raw, 600)
    dt = time.perf_counter() - t0
    raw.close()
    got = raw.counts.get(wire.H["madc_sample"], 0)
    end = [f"{n[0]} {n[1].name} {n[2]}" for n in raw.notices if n[0] == "limit_reached" or
           n[:2] == ("error", wire.ErrorReason.PROGRAM_LIMIT)][:2]
    return (f"{'echo' if ok else 'NO ECHO'}: {got} MADC samples ({raw.bytes_in / 2**20:.0f} MiB) in {dt:.1f} s"
            + (f"; {', '.join(end)}" if end else ""))


def read_program(conn, n: int = 10_000_000):
    """One program of `n` register reads."""
    prog = conn.program()
    prog.read_words(np.full(n, conn.regmap.address("chip_id", "serial"), np.uint64))
    return prog


def loopback(conn, on: bool) -> None:
    """The crossbar's loopback on or off (input spikes come back as output)."""
    import host
    prog = conn.program()
    prog.write(host.ChipOnly(), host.CrossbarConfig(loopback=int(on)))
    conn.run(prog)


def spikes_program(conn, n: int = 3_000_000):
    """`n` input spikes, one every 2 ticks, and a wait until after the last."""
    prog = conn.program()
    prog.timer_reset()
    prog.spikes(np.arange(n) % 1024, 100 + 2 * np.arange(n))
    prog.wait_until(100 + 2 * n + 1000)
    return prog


def scenario_read_10M(srv: Server, conn) -> str:
    prog = read_program(conn)
    srv.begin()
    return _outcome(lambda: conn.run(prog))


def scenario_spikes_3M(srv: Server, conn) -> str:
    loopback(conn, True)
    prog = spikes_program(conn)
    srv.begin()
    out = _outcome(lambda: conn.run(prog))
    loopback(conn, False)
    return out


def scenario_trickle(srv: Server, conn, clients: int = 4, seconds: float = 15.0, every: float = 0.05) -> str:
    raws = [Raw(srv.address) for _ in range(clients)]
    chunk = np.zeros(frame.MAX_FRAME_WORDS, np.uint64)
    srv.begin()
    sent = [0] * clients
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        t0 = time.monotonic()
        for i, r in enumerate(raws):
            r.send(r.frame(chunk, end=False, cont=sent[i] > 0))
            sent[i] += 1
            r.poll()
        time.sleep(max(0.0, every - (time.monotonic() - t0)))
    time.sleep(0.3)
    kinds: dict[str, int] = {}
    for r in raws:
        r.poll()
        for note in r.notices:
            key = note[1].name
            kinds[key] = kinds.get(key, 0) + 1
        r.close()
    return (f"{sum(sent)} frames ({sum(sent) * 8 * frame.MAX_FRAME_WORDS / 2**20:.0f} MiB) sent by {clients} "
            f"clients; notices by reason code: {dict(sorted(kinds.items()))}")


def scenario_spam(srv: Server, conn, mib: int = 4) -> str:
    raw = Raw(srv.address)
    spam = frame.MAGIC * (1 << 15)                       # 64 KiB
    cpu0 = srv.cpu_seconds()
    srv.begin()
    t0 = time.perf_counter()
    for _ in range(mib * 16):
        raw.sock.sendall(spam)
        raw.poll()
    raw.send(raw.frame([_halt(5)]))                      # answered after all of the spam
    ok = _until_echo(raw, 600)
    dt = time.perf_counter() - t0
    cpu = srv.cpu_seconds() - cpu0
    raw.close()
    return (f"{'echo' if ok else 'NO ECHO'}: {mib} MiB in, {raw.bytes_in} bytes answered "
            f"({raw.bytes_in / (mib << 20):.4f} of the input; {raw.counts.get(wire.H['error'], 0)} error words, "
            f"{_summaries(raw)} NOTICES_DROPPED summaries) in {dt:.1f} s, server CPU {cpu:.1f} s "
            f"({mib / max(cpu, 1e-9):.2f} MiB per CPU second)")


def scenario_share(srv: Server, conn) -> str:
    import host
    fire_all(conn, readout=1)
    srv.begin()
    out = {}

    def long_wait():
        prog = conn.program()
        if hasattr(prog, "limit"):
            prog.limit(seconds=8)
        prog.timer_reset()
        prog.wait_until(LONG_WAIT)
        out["a"] = _outcome(lambda: conn.run(prog))

    other = host.connect(srv.url, timeout=600)          # connected before: its reads are all it waits for
    t = threading.Thread(target=long_wait, daemon=True)
    t.start()
    time.sleep(1.0)
    lat = []
    with other:
        for _ in range(20):
            prog = other.program()
            prog.read(host.ChipOnly(), host.ChipId)
            t0 = time.perf_counter()
            other.run(prog)
            lat.append(time.perf_counter() - t0)
    t.join(600)
    return (f"second client's reads: median {np.median(lat) * 1e3:.0f} ms, max {max(lat) * 1e3:.0f} ms; "
            f"the waiting program: {out.get('a', 'still running')}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chip", default="dls")
    ap.add_argument("--tree", type=Path, default=ROOT, help="checkout whose server to run (default: this one)")
    ap.add_argument("--as-limit-gb", type=float, default=None, help="address-space cap of the server (GiB)")
    ap.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {', '.join(SCENARIOS)}")
    args = ap.parse_args(argv)
    import host

    only = [s for s in args.only.split(",") if s]
    bad = set(only) - set(SCENARIOS)
    if bad:
        ap.error(f"unknown scenario(s) {', '.join(sorted(bad))}; known: {', '.join(SCENARIOS)}")
    helptext = subprocess.run([sys.executable, "-m", "tools.cli", "serve", "--help"], cwd=args.tree,
                              capture_output=True, text=True).stdout
    has_limits = "--max-output-words" in helptext
    print(f"server: {args.tree} ({'with' if has_limits else 'without'} limits), chip {args.chip}, "
          f"address-space cap {args.as_limit_gb or 'none'} GiB")
    print(f"{'scenario':<12} {'peak RSS':>9} {'RSS after':>9}  outcome")
    for name in only:
        extra = ["--shared"] if name == "share" and "--shared" in helptext else []
        if name == "madc_stream":
            if not has_limits:
                print(f"{name:<12} {'-':>9} {'-':>9}  skipped (no --max-output-words)")
                continue
            extra = ["--max-output-words", str(1 << 26), "--max-program-seconds", "600"]
        srv = Server(args.tree, args.chip, extra, args.as_limit_gb)
        try:
            base = srv.status("VmRSS")
            with host.connect(srv.url, timeout=600) as conn:
                outcome = globals()[f"scenario_{name}"](srv, conn)
            peak, after = srv.end()
            try:
                with host.connect(srv.url, timeout=60) as conn:
                    p = conn.program()
                    t = p.read(host.ChipOnly(), host.ChipId)
                    conn.run(p)
                    alive = "chip answers" if t.value.profile else "?"
            except host.BssError as exc:
                alive = f"chip does not answer ({type(exc).__name__})"
            print(f"{name:<12} {peak / 2**20:>7.0f} M {after / 2**20:>7.0f} M  {outcome}; {alive} "
                  f"(idle server {base / 2**20:.0f} M)", flush=True)
        finally:
            srv.stop()
            errs = [line for line in srv.log if "MemoryError" in line or "internal error" in line]
            if errs:
                print(f"{'':<12} server log: {errs[0][:200]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
