"""Soak: a million mutated frames against `bss-twin serve`, interleaved with good programs.

    .venv/bin/python -m tools.bench.soak                          # 1 M mutated frames, 8 TCP clients + the pty
    .venv/bin/python -m tools.bench.soak --frames 100000 --pty-frames 10000

Servers: `python -m tools.cli serve --tcp 0` (a chip per client, the default) and
`serve --pty`, as subprocesses, both with `--receive-timeout` (default 0.05 s).
Clients (tools/rawclient.py, threads of this process): `--clients` on TCP, of which
every fourth speaks the reliable link layer (isa/arq.py), and one on the pty path
(plain frames).  Each sends batches of mutated frames (a random 20..150 per batch),
then a good program on the same connection (START frame: write a value drawn for it,
read it back, read the serial number), and waits for that program's answer.  A
connection lasts `--segment` mutated frames; then its link counters are read and
compared, and the client connects again (a new chip instance on TCP).

A mutated frame is a valid frame (isa.frame around barriers, register reads and
writes) that is then: left intact (in order, or with any sequence number), flagged
TO_HOST, a bit flipped anywhere, cut short, given inserted bytes, its header doubled,
replaced by garbage (sometimes with a start marker in it), or left partial (the first
bytes of a 100-word frame: the receive timeout must resynchronise).

Figures:
  frames/s     mutated frames sent / wall time (the good programs not counted)
  crashes      the server process died, logged an internal error, or took no new client
  stalls       a good program not answered within its resync bound: (valid frame headers
               in its batch + 1) x the quiet time (the receive timeout, plus the layer's
               longest retransmission interval on the layer) + 1 s
  wrong        a good program's answer not its value and the serial number, a fuzzed
               program's read not the serial number, or any other answer
  notices      per connection: frame faults the chip counted (link block crc_errors,
               truncated, oversized, bad_version, wrong_direction) against the fault notices
               the client received and the notices summed up in NOTICES_DROPPED; "silent"
               counts the faults neither reported nor summed up (must be 0), and the
               summed-up counts must equal the chip's notices_dropped counter
  RSS          the servers' peak resident set (/proc/PID/status VmHWM)

Nothing is asserted; the figures go to docs/performance.md ("Soak").
"""
from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from isa import arq, frame, wire  # noqa: E402
from isa.frame import FLAG_CONT, FLAG_END, FLAG_START, FLAG_TO_HOST, HEADER_SIZE, MAGIC  # noqa: E402
from isa.regmap import register_map  # noqa: E402
from isa.wire import ErrorReason as ER  # noqa: E402
from tools.bench.limits import Server  # noqa: E402
from tools.rawclient import NoAnswer, RawClient, ServerClosed  # noqa: E402

RM = register_map("dls")
SERIAL = 0x50AC
SERIAL_ADDR = RM.address("chip_id", "serial")
WEIGHTS = [int(a) for a in RM.addresses("synapse", "weights")[:16]]
FAULTS = {ER.FRAME_CRC: "crc_errors", ER.FRAME_TRUNCATED: "truncated", ER.FRAME_OVERSIZED: "oversized",
          ER.FRAME_VERSION: "bad_version", ER.FRAME_DIRECTION: "wrong_direction"}
KINDS = ("intact", "any_seq", "to_host", "flip", "truncate", "insert", "double_header", "garbage", "partial")
WEIGHT_OF = (20, 5, 4, 20, 12, 10, 10, 15, 4)


def _read(address: int) -> int:
    return wire.encode("omnibus_address", is_read=1, byte_enables=0xF, address=address)


_READ_SERIAL = _read(SERIAL_ADDR)
_BARRIER = wire.encode("barrier", mask=0)


def _write(address: int, value: int) -> list[int]:
    return [wire.encode("omnibus_address", is_read=0, byte_enables=0xF, address=address),
            wire.encode("omnibus_data", data=value)]


class Mutator:
    """Mutated frames from one seeded random sequence (module docstring)."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.kinds: dict[str, int] = dict.fromkeys(KINDS, 0)
        self._long = frame.encode_frame(np.full(100, _READ_SERIAL, np.uint64), 0, FLAG_END)

    def _valid(self, seq: int, flags: int) -> bytes:
        r = self.rng
        words: list[int] = []
        for _ in range(r.randint(0, 5)):
            k = r.random()
            if k < 0.4:
                words.append(_BARRIER)
            elif k < 0.7:
                words.append(_READ_SERIAL)
            else:
                words += _write(r.choice(WEIGHTS), r.getrandbits(32))
        return frame.encode_frame(np.array(words, np.uint64), seq, flags)

    def piece(self, client: RawClient) -> tuple[bytes, int]:
        """(bytes, valid frame headers in them) of one mutated frame."""
        r = self.rng
        kind = r.choices(KINDS, WEIGHT_OF)[0]
        self.kinds[kind] += 1
        flags = r.choice((0, FLAG_END, FLAG_END, FLAG_CONT, FLAG_CONT | FLAG_END))
        if kind == "intact":                           # in order: it joins or begins a program
            f = self._valid(client.seq, flags)
            client.seq = (client.seq + 1) & 0xFFFFFFFF
            return f, 1
        f = self._valid(r.getrandbits(32), flags | (FLAG_TO_HOST if kind == "to_host" else 0))
        if kind in ("any_seq", "to_host"):
            return f, 1
        if kind == "flip":
            bit = r.randrange(8 * len(f))
            return f[:bit // 8] + bytes([f[bit // 8] ^ 1 << bit % 8]) + f[bit // 8 + 1:], 1
        if kind == "truncate":
            return f[:r.randint(1, len(f) - 1)], 1
        if kind == "insert":
            at = r.randint(0, len(f))
            return f[:at] + r.randbytes(r.randint(1, 24)) + f[at:], 1
        if kind == "double_header":
            return f[:HEADER_SIZE] + f, 2
        if kind == "garbage":
            junk = r.randbytes(r.randint(1, 120))
            return (junk + MAGIC + junk[:r.randint(0, len(junk))], 0) if r.random() < 0.3 else (junk, 0)
        return self._long[:r.randint(2, 60)], 1          # partial


@dataclass
class Tally:
    frames: int = 0            # mutated frames sent
    programs: int = 0          # good programs answered
    fuzz_reads: int = 0        # reads of fuzzed programs that ran (all must be the serial number)
    stalls: int = 0
    wrong: int = 0
    closed: int = 0            # connections the server closed
    faults_counted: int = 0
    faults_reported: int = 0
    summed_up: int = 0
    notices_dropped: int = 0
    silent: int = 0
    segments: int = 0
    unchecked: int = 0         # segments whose counters could not be read (after a stall)
    frame_counter: int = 0     # the chips' `frames` counters, summed
    worst_answer: float = 0.0  # the slowest good program (s)
    problems: list = field(default_factory=list)

    def add(self, other: "Tally") -> None:
        for k, v in vars(other).items():
            if k == "problems":
                self.problems += v
            elif k == "worst_answer":
                self.worst_answer = max(self.worst_answer, v)
            else:
                setattr(self, k, getattr(self, k) + v)


def client_loop(connect, frames: int, segment: int, quiet: float, seed: int, tally: Tally, mut: Mutator) -> None:
    rng = random.Random(seed ^ 0x5EED)
    sent = 0
    while sent < frames:
        try:
            c = connect()
        except Exception as exc:
            tally.problems.append(f"connect: {type(exc).__name__}: {exc}")
            tally.closed += 1
            time.sleep(0.2)
            continue
        ok = True
        try:
            before = c.counters(tag=1, strict=False)
            seg = 0
            summed = reported = 0
            while seg < segment and sent + seg < frames:
                n = rng.randint(20, 150)
                pieces = [mut.piece(c) for _ in range(n)]
                headers = sum(h for _, h in pieces)
                value = rng.getrandbits(32)
                c.send(b"".join(p for p, _ in pieces))
                seg += n
                t0 = time.monotonic()
                try:
                    data, notes = c.run(_write(WEIGHTS[0], value) + [_read(WEIGHTS[0]), _READ_SERIAL],
                                        tag=2 + tally.programs % 1000, start=True, timeout=(headers + 1) * quiet + 1.0)
                except NoAnswer as exc:
                    tally.stalls += 1
                    tally.problems.append(f"stall: {str(exc)[:300]}")
                    ok = False
                    break
                except AssertionError as exc:              # an answer that is no read, notice or echo
                    tally.wrong += 1
                    tally.problems.append(f"wrong: {str(exc)[:300]}")
                    continue
                tally.worst_answer = max(tally.worst_answer, time.monotonic() - t0)
                tally.programs += 1
                c.data.clear()
                if data[-2:] != [value, SERIAL] or any(d != SERIAL for d in data[:-2]):
                    tally.wrong += 1
                    tally.problems.append(f"wrong: wrote {value:#x}, read {data[-2:]}")
                tally.fuzz_reads += max(0, len(data) - 2)
                for n_ in notes:
                    if n_[0] == "error" and n_[1] in FAULTS:
                        reported += 1
                    elif n_[:2] == ("error", ER.NOTICES_DROPPED):
                        summed += n_[2]
            sent += seg
            tally.frames += seg
            tally.segments += 1
            if not ok:
                tally.unchecked += 1
                continue
            after = c.counters(tag=3, strict=False)
            summed += sum(n_[2] for n_ in c.counter_notices if n_[:2] == ("error", ER.NOTICES_DROPPED))
            counted = sum(after[k] - before[k] for k in FAULTS.values())
            tally.faults_counted += counted
            tally.faults_reported += reported
            tally.summed_up += summed
            tally.notices_dropped += after["notices_dropped"] - before["notices_dropped"]
            tally.frame_counter += after["frames"] - before["frames"]
            # Every fault was reported, or its notice was summed up (which covers other notices too).
            silent = max(0, counted - reported - summed) + max(0, reported - counted)
            tally.silent += silent
            if silent or after["notices_dropped"] - before["notices_dropped"] != summed:
                tally.problems.append(f"accounting: counted {counted}, reported {reported}, summed up {summed}, "
                                      f"notices_dropped {after['notices_dropped'] - before['notices_dropped']}")
        except ServerClosed as exc:
            tally.closed += 1
            tally.problems.append(f"closed: {exc}")
        finally:
            c.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench.soak", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=1_000_000, help="mutated frames over TCP (default 1 M)")
    ap.add_argument("--pty-frames", type=int, default=100_000, help="mutated frames over the pty (default 100 k)")
    ap.add_argument("--clients", type=int, default=8, help="TCP clients at once (default 8)")
    ap.add_argument("--segment", type=int, default=25_000, help="mutated frames per connection (default 25 k)")
    ap.add_argument("--receive-timeout", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    rt = args.receive_timeout
    servers = {"tcp": Server(ROOT, "dls", ["--serial", str(SERIAL), "--receive-timeout", str(rt)], None)}
    if args.pty_frames:
        servers["pty"] = Server(ROOT, "dls", ["--pty", "--serial", str(SERIAL), "--receive-timeout", str(rt)], None)
    for s in servers.values():
        s.begin()
    tcp = servers["tcp"]
    jobs = []                                          # (name, connect, frames, quiet)
    per = args.frames // args.clients
    for i in range(args.clients):
        layer = i % 4 == 3
        if layer:
            jobs.append((f"tcp {i} (link layer)", lambda: RawClient.url(tcp.url, max_notices=0), per, rt + arq.RTO_MAX))
        else:
            jobs.append((f"tcp {i}", lambda: RawClient.tcp(tcp.address, max_notices=0), per, rt))
    if args.pty_frames:
        pty = servers["pty"]
        jobs.append(("pty", lambda: RawClient.pty(pty.address, max_notices=0), args.pty_frames, rt))
    tallies = [Tally() for _ in jobs]
    mutators = [Mutator(args.seed * 1000 + i) for i in range(len(jobs))]
    threads = [threading.Thread(target=client_loop, args=(connect, n, args.segment, quiet, args.seed * 1000 + i,
                                                          tallies[i], mutators[i]), daemon=True)
               for i, (_, connect, n, quiet) in enumerate(jobs)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    # Crashes: the process alive, no internal error logged, a new client served.
    crashes = {}
    for name, s in servers.items():
        alive = s.proc.poll() is None
        internal = [line for line in s.log if "internal error" in line or "Traceback" in line]
        try:
            c = RawClient.tcp(s.address) if name == "tcp" else RawClient.pty(s.address)
            served = c.run([_READ_SERIAL], tag=7, start=True, timeout=5)[0] == [SERIAL]
            c.close()
        except Exception:
            served = False
        crashes[name] = (int(not alive) + len(internal) + int(not served), internal[:3])
    peaks = {name: s.end()[0] for name, s in servers.items()}
    cpu = {name: s.cpu_seconds() for name, s in servers.items()}
    for s in servers.values():
        s.stop()

    total = Tally()
    for t in tallies:
        total.add(t)
    kinds: dict[str, int] = dict.fromkeys(KINDS, 0)
    for m in mutators:
        for k, v in m.kinds.items():
            kinds[k] += v
    print(f"mutated frames: {total.frames} ({', '.join(f'{k} {v}' for k, v in kinds.items())})")
    print(f"clients: {args.clients} on TCP ({sum(1 for i in range(args.clients) if i % 4 == 3)} with the link "
          f"layer){', 1 on the pty' if args.pty_frames else ''}; receive timeout {rt} s; {total.segments} "
          f"connections of up to {args.segment} frames")
    print(f"wall time {seconds:.1f} s: {total.frames / seconds:.0f} mutated frames/s, "
          f"{total.programs / seconds:.0f} good programs/s; slowest good program {total.worst_answer * 1e3:.0f} ms")
    for name, t in zip([j[0] for j in jobs], tallies):
        print(f"  {name:<20} {t.frames:>8} frames {t.programs:>6} programs {t.stalls} stalls {t.wrong} wrong "
              f"{t.closed} closed")
    print(f"crashes: {sum(c[0] for c in crashes.values())} {[c[1] for c in crashes.values() if c[1]]}")
    print(f"stalls: {total.stalls}   wrong: {total.wrong} (good programs {total.programs}, fuzzed reads that ran "
          f"{total.fuzz_reads})   connections closed by the server: {total.closed}")
    print(f"notices: faults counted by the chips {total.faults_counted}, reported one by one "
          f"{total.faults_reported}, summed up in NOTICES_DROPPED {total.summed_up} (the chips' notices_dropped: "
          f"{total.notices_dropped}); silent {total.silent}; connections unchecked {total.unchecked}")
    print(f"frames the chips took whole: {total.frame_counter}")
    print("server RSS peak: " + ", ".join(f"{n} {p / 2**20:.0f} MiB" for n, p in peaks.items())
          + "; server CPU time: " + ", ".join(f"{n} {c:.0f} s" for n, c in cpu.items()))
    for p in total.problems[:10]:
        print(f"  problem: {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
