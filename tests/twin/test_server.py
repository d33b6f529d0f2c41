"""The twin servers (twin/server.py) at the byte level: TCP and pseudo-terminal.

Only isa.frame and isa.wire are used to talk to the servers (no host library),
so these tests pin the wire behaviour itself: good programs are answered,
every kind of broken input is answered with the `error` / `timeout`
notification its construction calls for, the chip-side link counters grow by
exactly the damage done, and the next good program is served correctly.
Expected values come from how each input is built, never from the server.
"""
from __future__ import annotations

import random
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # also runnable without the repository installed
    sys.path.insert(0, str(ROOT))


from isa import frame, wire  # noqa: E402
from isa.frame import (FLAG_CONT, FLAG_END, FLAG_START, FLAG_TO_HOST, HEADER_SIZE, MAGIC,  # noqa: E402
                       MAX_FRAME_WORDS)
from isa.profiles import PROFILES  # noqa: E402
from isa.regmap import register_map  # noqa: E402
from isa.wire import ErrorReason as ER, TimeoutReason as TR  # noqa: E402
from twin.chip import Chip  # noqa: E402
from twin.server import PtyServer, TwinServer, parse_tcp_address  # noqa: E402
from tools.rawclient import RawClient, notice, wait_for  # noqa: E402

PYTHON = ROOT / ".venv" / "bin" / "python"
if not PYTHON.exists():
    PYTHON = Path(sys.executable)

RM = register_map("dls")
SERIAL = 0x00C0FFEE
SERIAL_ADDR = RM.address("chip_id", "serial")
ID_ADDR = RM.address("chip_id", "id")
LINK_NAMES = [r.name for r in RM.block("link").registers]
LINK_ADDRS = [RM.address("link", n) for n in LINK_NAMES]
WEIGHT_ADDRS = RM.addresses("synapse", "weights")           # 32-bit words, every bit a field on dls
DROP_COUNTERS = ("crc_errors", "truncated", "oversized", "bad_version", "wrong_direction")
RECEIVE_TIMEOUT = 0.15
ANSWER_TIMEOUT = 5.0


# --------------------------------------------------------------------------- words
def rd(address: int) -> int:
    return wire.encode("omnibus_address", is_read=1, byte_enables=0xF, address=address)


def wr(address: int, value: int) -> list[int]:
    return [wire.encode("omnibus_address", is_read=0, byte_enables=0xF, address=address),
            wire.encode("omnibus_data", data=value)]


def halt(tag: int) -> int:
    return wire.encode("loopback", halt=1, tag=tag)


def raw_frame(words, seq: int, flags: int = 0, version: int = frame.VERSION,
              nwords: int | None = None, payload: bytes | None = None) -> bytes:
    """A frame built here from the layout in isa/frame.py's docstring (not with
    the codec), so header fields can be set to anything with a valid CRC."""
    words = np.asarray(words, dtype=np.uint64)
    body = words.astype(">u8").tobytes() if payload is None else payload
    n = len(words) if nwords is None else nwords
    head = MAGIC + bytes([version, flags]) + seq.to_bytes(4, "big") + n.to_bytes(4, "big")
    return head + zlib.crc32(head).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")


def clean(data: bytes) -> bool:
    """No start marker except at byte 0, and no 0xB5 last byte (which the
    decoder keeps as a possible marker start): the decoder's discard count for
    such bytes is exactly their length."""
    return MAGIC not in data[1:] and data[-1:] != MAGIC[:1]


def tcp_client(address) -> RawClient:
    return RawClient.tcp(address, encode=raw_frame, timeout=ANSWER_TIMEOUT)


def pty_client(path: str) -> RawClient:
    return RawClient.pty(path, encode=raw_frame, timeout=ANSWER_TIMEOUT)


# --------------------------------------------------------------------------- servers
class Lines:
    """Collects server log lines (thread-safe enough for list.append)."""

    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)


@dataclass
class Served:
    kind: str
    server: object
    log: Lines
    connect: object          # () -> RawClient
    chip: Chip


def _start(kind: str, serial_no: int = SERIAL, receive_timeout: float = RECEIVE_TIMEOUT) -> Served:
    """A server on `chip`; TCP clients share it (shared=True), as the pty's
    successive clients do, so that tests can read its state (`Served.chip`)."""
    log = Lines()
    chip = Chip("dls", serial_no)
    if kind == "tcp":
        srv = TwinServer(chip, receive_timeout=receive_timeout, log=log, shared=True).start()
        return Served(kind, srv, log, lambda: tcp_client(srv.address), chip)
    srv = PtyServer(chip, receive_timeout=receive_timeout, log=log).start()
    return Served(kind, srv, log, lambda: pty_client(srv.address), chip)


@pytest.fixture(params=["tcp", "pty"])
def served(request):
    s = _start(request.param)
    clients: list[RawClient] = []

    def connect():
        c = s.connect()
        clients.append(c)
        return c

    s.connect_tracked = connect
    yield s
    for c in clients:
        try:
            c.close()
        except Exception:
            pass
    s.server.stop()


@pytest.fixture
def tcp_served():
    s = _start("tcp")
    yield s
    s.server.stop()


def delta(before: dict, after: dict) -> dict:
    return {k: after[k] - before[k] for k in before if after[k] != before[k]}


# =========================================================================== good programs
def test_parse_tcp_address():
    assert parse_tcp_address("0") == ("127.0.0.1", 0)
    assert parse_tcp_address("localhost:8080") == ("localhost", 8080)
    assert parse_tcp_address("[::1]:9") == ("::1", 9)
    assert parse_tcp_address(":77") == ("127.0.0.1", 77)
    with pytest.raises(ValueError, match=r"^TCP address 'x:y': port 'y' is not a number \(\[HOST:\]PORT\)$"):
        parse_tcp_address("x:y")
    with pytest.raises(ValueError, match=r"^TCP address '70000': port 70000 outside 0\.\.65535$"):
        parse_tcp_address("70000")


def test_good_program_is_answered(served):
    c = served.connect_tracked()
    p = PROFILES["dls"]
    data, notes = c.run([rd(SERIAL_ADDR), rd(ID_ADDR)], tag=0x1234)
    assert notes == []
    assert data == [SERIAL, p.code | p.version << 8]
    # A write, then its readback, in a second program of the same client.
    data, notes = c.run(wr(int(WEIGHT_ADDRS[7]), 0xA5C3_0F81) + [rd(int(WEIGHT_ADDRS[7]))], tag=2)
    assert (data, notes) == ([0xA5C3_0F81], [])


def test_tcp_server_addresses_and_stop():
    with TwinServer(Chip("dls", 1), log=Lines()) as srv:
        host, port = srv.address
        assert host == "127.0.0.1" and port > 0
        assert srv.url == f"tcp://127.0.0.1:{port}"
        c = tcp_client(srv.address)
        assert c.run([rd(SERIAL_ADDR)], 5)[0] == [1]
        assert wait_for(lambda: srv.clients == 1)
    # stop() disconnected the client and closed the port.
    assert c.sock.recv(10) == b""
    c.close()
    with pytest.raises(OSError):
        socket.create_connection((host, port), timeout=1)


def test_pty_clients_open_and_close_the_path_repeatedly():
    s = _start("pty")
    try:
        assert re.fullmatch(r"/dev/pts/\d+", s.server.address)
        for k in range(3):
            c = s.connect()
            assert c.run(wr(int(WEIGHT_ADDRS[k]), k + 10) + [rd(int(WEIGHT_ADDRS[k])), rd(SERIAL_ADDR)],
                         tag=k) == ([k + 10, SERIAL], [])
            c.close()
    finally:
        s.server.stop()


def _spawn(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([str(PYTHON), "-m", "tools.cli", "serve", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    r, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline().strip() if r else ""
    if not line:
        proc.kill()
        raise AssertionError(f"server printed no address; stderr: {proc.stderr.read()}")
    return proc, line


def _terminate(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("the server did not stop on SIGTERM")
    return proc.returncode, err


def test_tcp_server_subprocess():
    proc, line = _spawn("--chip", "dls", "--serial", "4242", "--tcp", "0", "--receive-timeout", "0.1")
    try:
        m = re.fullmatch(r"listening on tcp://127\.0\.0\.1:(\d+)", line)
        assert m, line
        c = tcp_client(("127.0.0.1", int(m.group(1))))
        assert c.run([rd(SERIAL_ADDR)], 9) == ([4242], [])
        c.send(MAGIC + b"\x01")         # a partial header, then silence: the 0.1 s receive timeout
        assert [n[:2] for n in c.until_notices(2, 3.0)] == [("timeout", TR.FRAME_RECEIVE),
                                                           ("error", ER.FRAME_TRUNCATED)]
        c.close()
    finally:
        rc, err = _terminate(proc)
    assert rc == 0, err
    assert re.search(r"^bss-twin: tcp 127\.0\.0\.1:\d+: timeout FRAME_RECEIVE", err, re.M), err


def test_pty_server_subprocess():
    proc, line = _spawn("--chip", "hx", "--serial", "77", "--pty")
    try:
        m = re.fullmatch(r"pty (/dev/pts/\d+)", line)
        assert m, line
        for tag in (1, 2):                       # two clients, one after the other
            c = pty_client(m.group(1))
            data, notes = c.run([rd(SERIAL_ADDR), rd(ID_ADDR)], tag)
            assert (data, notes) == ([77, PROFILES["hx"].code | PROFILES["hx"].version << 8], [])
            c.close()
    finally:
        rc, err = _terminate(proc)
    assert rc == 0, err


# =========================================================================== broken input
@dataclass
class Case:
    """Bytes to send, the notices they must cause, the counter deltas they must
    cause (besides the counting programs' own), and whether the server must
    first go quiet for its receive timeout."""

    name: str
    build: object                       # (client) -> bytes
    notices: list                       # [(kind, reason, index or None)]
    counters: dict
    quiet: bool = False
    marker: int | None = None           # weight index the broken input tried to write; must stay 0
    frames: int = 0                     # good frames / programs inside the broken input
    programs: int = 0
    seq_offset: int = 0                 # sequence number of the notice's frame - the client's next
    extra: dict = field(default_factory=dict)


def _marker_write(k: int, value: int = 0x5A5A_5A5A) -> list[int]:
    return wr(int(WEIGHT_ADDRS[k]), value)


def _flip(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def _clean_frame(client, words, **kw) -> bytes:
    """A frame with the client's next sequence number whose bytes are `clean`
    (varying a harmless barrier mask).  The sequence number is not used up: the
    frame will be dropped, and the next good frame must not look like a gap."""
    for mask in range(8):
        data = raw_frame(list(words) + [wire.encode("barrier", mask=mask)], client.seq, **kw)
        if clean(data):
            return data
    raise AssertionError("no clean frame")


SEQ = 1000  # broken frames carry sequence numbers from here


def _cases() -> list[Case]:
    def payload_flip(c):
        f = _clean_frame(c, _marker_write(1), flags=FLAG_END)
        bad = _flip(f, 8 * (HEADER_SIZE + 3))
        assert clean(bad)
        return bad

    def header_flip(c):
        f = _clean_frame(c, _marker_write(2), flags=FLAG_END)
        return _flip(f, 8 * 9 + 1)                # the length field

    def wrong_version(c):
        return raw_frame(_marker_write(3) + [halt(1)], SEQ, FLAG_END, version=2)

    def oversized(c):
        return raw_frame([], SEQ + 1, FLAG_END, nwords=MAX_FRAME_WORDS + 1)

    def wrong_direction(c):
        return raw_frame(_marker_write(4) + [halt(1)], SEQ + 2, FLAG_END | FLAG_TO_HOST)

    def unknown_flags(c):
        return raw_frame(_marker_write(5) + [halt(1)], SEQ + 3, FLAG_END | 0x80)

    def truncated(c):
        f = raw_frame(_marker_write(6) + [halt(1)], SEQ + 4, FLAG_END)
        return f[:HEADER_SIZE + 5]

    def truncated_header(c):
        return raw_frame(_marker_write(6), SEQ + 5, FLAG_END)[:9]

    def garbage(c):
        rng = random.Random(3)
        return bytes(rng.choice([b for b in range(256) if b != 0xB5]) for _ in range(1000))

    def unfinished_program(c):                      # two frames, the second CONT, no END
        return b"".join(c.frames([_marker_write(8) + [rd(SERIAL_ADDR)], [rd(SERIAL_ADDR)]], end=False))

    def stray_continuation(c):                      # a CONT frame that continues nothing: discarded
        data = raw_frame(_marker_write(10) + [rd(SERIAL_ADDR), halt(0x7B)], c.seq, FLAG_CONT | FLAG_END)
        c.seq += 1
        return data

    def sequence_gap(c):
        c.seq += 5                                  # five frames "lost"
        data = c.frame([rd(SERIAL_ADDR), halt(0x77)])
        return data

    def unknown_message(c):
        return c.frame([rd(SERIAL_ADDR), 0x7F << 56, rd(SERIAL_ADDR), halt(0x78)])

    def read_only_write(c):
        return c.frame(wr(SERIAL_ADDR, 1) + [rd(SERIAL_ADDR), halt(0x79)])

    def unknown_address(c):
        return c.frame([rd(0x00FF_FFF0), rd(SERIAL_ADDR), halt(0x7A)])

    return [
        Case("payload_bit_flip", payload_flip, [("error", ER.FRAME_CRC, "seq")],
             {"crc_errors": 1, "bytes_discarded": "len"}, marker=1),
        Case("header_bit_flip", header_flip, [("error", ER.FRAME_CRC, 0xFFFFFFFF)],
             {"crc_errors": 1, "bytes_discarded": "len"}, marker=2),
        Case("wrong_version", wrong_version, [("error", ER.FRAME_VERSION, SEQ)],
             {"bad_version": 1, "bytes_discarded": "len"}, marker=3),
        Case("oversized_length", oversized, [("error", ER.FRAME_OVERSIZED, SEQ + 1)],
             {"oversized": 1, "bytes_discarded": "len"}),
        Case("wrong_direction", wrong_direction, [("error", ER.FRAME_DIRECTION, SEQ + 2)],
             {"wrong_direction": 1, "bytes_discarded": "len"}, marker=4),
        Case("unknown_flags", unknown_flags, [("error", ER.FRAME_DIRECTION, SEQ + 3)],
             {"wrong_direction": 1, "bytes_discarded": "len"}, marker=5),
        Case("truncated_frame", truncated, [("timeout", TR.FRAME_RECEIVE, SEQ + 4),
                                            ("error", ER.FRAME_TRUNCATED, SEQ + 4)],
             {"truncated": 1, "bytes_discarded": "len"}, quiet=True, marker=6),
        Case("truncated_header", truncated_header, [("timeout", TR.FRAME_RECEIVE, 0xFFFFFFFF),
                                                    ("error", ER.FRAME_TRUNCATED, 0xFFFFFFFF)],
             {"truncated": 1, "bytes_discarded": "len"}, quiet=True),
        Case("garbage", garbage, [], {"bytes_discarded": "len"}),
        # index: the sequence number of the dropped program's first frame
        Case("unfinished_program", unfinished_program, [("timeout", TR.PROGRAM_END, "seq")], {},
             quiet=True, marker=8, frames=2),
        Case("stray_continuation", stray_continuation, [("error", ER.FRAME_SEQUENCE, "seq")], {},
             marker=10, frames=1),
        Case("sequence_gap", sequence_gap, [("error", ER.FRAME_SEQUENCE, "seq")], {"sequence_gaps": 1},
             frames=1, programs=1, seq_offset=5, extra={"reads": [SERIAL], "tag": 0x77}),
        Case("unknown_message", unknown_message, [("error", ER.UNKNOWN_MESSAGE, 1)], {"word_errors": 1},
             frames=1, programs=1, extra={"reads": [SERIAL, SERIAL], "tag": 0x78}),
        Case("read_only_write", read_only_write, [("error", ER.READ_ONLY, 0)], {"word_errors": 1},
             frames=1, programs=1, extra={"reads": [SERIAL], "tag": 0x79}),
        Case("unknown_address", unknown_address, [("error", ER.UNKNOWN_ADDRESS, 0)], {"word_errors": 1},
             frames=1, programs=1, extra={"reads": [SERIAL], "tag": 0x7A}),
    ]


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_broken_input_is_reported_and_the_next_program_served(served, case):
    c = served.connect_tracked()
    before = c.counters(tag=0xB0)
    seq_before = c.seq
    bad = case.build(c)
    if case.counters.get("bytes_discarded") == "len":
        assert clean(bad), "the expected discard count assumes no stray start marker"
    c.send(bad)
    if "tag" in case.extra:                  # the input itself is a (partly) good program
        got = [notice(w) for w in c.until_echo(case.extra["tag"])]
        notes = [g for g in got if g[0] in ("error", "timeout")]
        assert [g[1]["data"] for g in got if g[0] == "read_data"] == case.extra["reads"]
    elif case.quiet:
        notes = c.until_notices(len(case.notices), RECEIVE_TIMEOUT + 3.0)
    else:
        notes = []
    # The next good program: correct answers, and the broken input changed nothing.
    k = case.marker if case.marker is not None else 0
    data, more = c.run([rd(SERIAL_ADDR), rd(int(WEIGHT_ADDRS[k]))], tag=0xB1)
    assert data == [SERIAL, 0], "a broken frame's write was applied"
    notes += more
    # Notices in order; index "seq" is the broken frame's sequence number, None is not checked.
    frame_seq = seq_before + case.seq_offset
    expected = [(kind, reason, frame_seq if index == "seq" else index) for kind, reason, index in case.notices]
    assert [(k_, r, i if w is not None else None) for (k_, r, i), (_, _, w) in zip(notes, expected)] \
        == expected and len(notes) == len(expected), notes
    after = c.counters(tag=0xB2)
    want = {k_: (len(bad) if v == "len" else v) for k_, v in case.counters.items()}
    # The counting programs: the first one's frame and program, the check program's.
    want["frames"] = want.get("frames", 0) + 2 + case.frames
    want["programs"] = want.get("programs", 0) + 2 + case.programs
    assert delta(before, after) == want
    logged = [line for line in served.log.lines if re.search(r": (error|timeout) [A-Z_]+", line)]
    assert len(logged) == len(case.notices), served.log.lines


def test_error_notices_name_the_header_of_the_rejected_word(served):
    c = served.connect_tracked()
    c.send(c.frame([0x7F << 56 | 5, rd(SERIAL_ADDR)] + wr(SERIAL_ADDR, 3) + [halt(1)]))
    words = c.until_echo(1)
    errs = [wire.decode(w)[1] for w in words if w >> 56 == wire.H["error"]]
    assert errs == [{"reason": ER.UNKNOWN_MESSAGE, "header": 0x7F, "index": 0},
                    {"reason": ER.READ_ONLY, "header": wire.H["omnibus_address"], "index": 2}]


# --------------------------------------------------------------------------- fuzz
def _fuzz_stream(rng: random.Random, client: RawClient) -> tuple[bytes, list[tuple]]:
    """Random pieces: harmless good frames (any of END / CONT; sequence numbers
    mostly in order, else random), broken frames, garbage.  Returns the bytes and the pieces as
    ("good", seq, flags), ("broken",) (each must be dropped exactly once) or
    ("garbage",).  Streams with a start marker anywhere but at the start of a
    frame or broken frame are drawn again: each broken frame then causes
    exactly one fault."""
    while True:
        stream, kinds = _fuzz_pieces(rng, client)
        if stream.count(MAGIC) == sum(1 for k in kinds if k[0] != "garbage"):
            return stream, kinds


def _fuzz_pieces(rng: random.Random, client: RawClient) -> tuple[bytes, list[tuple]]:
    pieces, kinds = [], []
    expect = client.seq                            # the next sequence number the server expects
    for _ in range(rng.randint(1, 5)):
        kind = rng.choice(["good", "good", "good", "flip", "truncate", "garbage", "version", "oversized",
                           "direction", "marker_garbage"])
        harmless = [wire.encode("barrier", mask=rng.randrange(8)) for _ in range(rng.randint(0, 6))]
        seq = expect if rng.random() < 0.7 else rng.randrange(1 << 32)
        flags = rng.choice([0, 0, FLAG_END, FLAG_CONT, FLAG_CONT, FLAG_CONT | FLAG_END])
        f = raw_frame(harmless, seq, flags)
        if kind == "good":
            expect = (seq + 1) & 0xFFFFFFFF
            pieces.append(f)
            kinds.append(("good", seq, flags))
            continue
        if kind == "garbage":
            pieces.append(bytes(rng.choice([b for b in range(256) if b != 0xB5])
                                for _ in range(rng.randint(1, 300))))
            kinds.append(("garbage",))
            continue
        if kind == "flip":                         # never in the marker: the frame is seen and dropped
            f = _flip(f, rng.randrange(16, 8 * len(f)))
        elif kind == "truncate":
            f = f[:rng.randint(2, len(f) - 1)]
        elif kind == "version":
            f = raw_frame(harmless, rng.randrange(1 << 32), FLAG_END, version=rng.choice([0, 2, 7, 255]))
        elif kind == "oversized":
            f = raw_frame([], rng.randrange(1 << 32), 0, nwords=rng.randint(MAX_FRAME_WORDS + 1, 0xFFFFFFFF))
        elif kind == "direction":
            f = raw_frame(harmless, rng.randrange(1 << 32), FLAG_TO_HOST | rng.choice([0, FLAG_END]))
        else:                                      # a marker followed by junk
            f = MAGIC + bytes(rng.randrange(256) for _ in range(rng.randint(14, 40)))
        pieces.append(f)
        kinds.append(("broken",))
    return b"".join(pieces), kinds


def _fuzz_expected(kinds: list[tuple], next_seq: int) -> tuple[list[tuple], int, int, int]:
    """The program-assembly rules (twin/session.py) applied to the pieces, then
    to the START frame of the program that follows them.  Returns the
    FRAME_SEQUENCE and PROGRAM_END notices in order, the number of fuzz programs
    that run, of sequence gaps and of good frames."""
    notes, ran, gaps, good = [], 0, 0, 0
    open_seq, skipping = None, False
    for k in kinds:
        if k[0] == "garbage":
            continue
        if k[0] == "broken":                       # a lost frame: the open program is dropped
            open_seq, skipping = None, True
            continue
        _, seq, flags = k
        good += 1
        gap = seq != next_seq
        next_seq = (seq + 1) & 0xFFFFFFFF
        if gap:                                    # reported; also a lost frame
            gaps += 1
            notes.append(("error", ER.FRAME_SEQUENCE, seq))
            open_seq, skipping = None, True
        if flags & FLAG_CONT and (skipping or open_seq is None):
            skipping = True
            if not gap:                            # a gap already named this frame
                notes.append(("error", ER.FRAME_SEQUENCE, seq))
            continue
        skipping = False
        if not flags & FLAG_CONT and open_seq is not None:
            notes.append(("timeout", TR.PROGRAM_END, open_seq))
            open_seq = None
        if open_seq is None:
            open_seq = seq
        if flags & FLAG_END:
            ran += 1
            open_seq = None
    if open_seq is not None:                       # the next program's START frame drops it
        notes.append(("timeout", TR.PROGRAM_END, open_seq))
    return notes, ran, gaps, good


def test_fuzzed_streams_never_break_the_server(served):
    rng = random.Random(20240611)
    c = served.connect_tracked()
    before = c.counters(tag=0xF0)
    broken_total = ran_total = gaps_total = good_total = 0
    program_ends = 0
    t0 = time.monotonic()
    for i in range(60):
        stream, kinds = _fuzz_stream(rng, c)
        broken = sum(1 for k in kinds if k[0] == "broken")
        expected, ran, gaps, good = _fuzz_expected(kinds, c.seq)
        broken_total, ran_total, gaps_total, good_total = (broken_total + broken, ran_total + ran,
                                                           gaps_total + gaps, good_total + good)
        program_ends += sum(1 for n in expected if n[0] == "timeout")
        value = rng.randrange(1 << 32)
        c.send(stream)
        data, notes = c.run(wr(int(WEIGHT_ADDRS[9]), value) + [rd(SERIAL_ADDR), rd(int(WEIGHT_ADDRS[9]))],
                            tag=0x100 + i, start=True)
        assert data == [SERIAL, value], f"iteration {i}"
        frame_faults = [n for n in notes if n[0] == "error" and n[1] != ER.FRAME_SEQUENCE]
        assert all(n[1] in (ER.FRAME_CRC, ER.FRAME_TRUNCATED, ER.FRAME_OVERSIZED, ER.FRAME_VERSION,
                            ER.FRAME_DIRECTION) for n in frame_faults), notes
        assert len(frame_faults) == broken, (i, notes)
        rules = [n for n in notes if n[:2] in (("error", ER.FRAME_SEQUENCE), ("timeout", TR.PROGRAM_END))]
        assert rules == expected, (i, kinds, notes)
        assert all(n[1] in (TR.FRAME_RECEIVE, TR.PROGRAM_END) for n in notes if n[0] == "timeout"), notes
    after = c.counters(tag=0xF1)
    assert sum(after[k] - before[k] for k in DROP_COUNTERS) == broken_total
    # the fuzz programs that ran, 60 checks and the first counting program
    assert after["programs"] - before["programs"] == ran_total + 61
    assert after["frames"] - before["frames"] == good_total + 61
    assert after["sequence_gaps"] - before["sequence_gaps"] == gaps_total
    assert program_ends >= 5 and ran_total >= 5 and gaps_total >= 5   # the seed exercises the rules
    assert time.monotonic() - t0 < 15


# =========================================================================== several clients
def test_concurrent_clients_get_only_their_own_answers(tcp_served):
    n_clients, n_programs = 4, 25
    counter = tcp_served.connect()
    before = counter.counters()
    failures: list[str] = []

    def client(i: int) -> None:
        try:
            c = tcp_served.connect()
            for k in range(n_programs):
                value = (i << 24) | (k << 8) | 0x5A
                tag = i * 1000 + k
                data, notes = c.run(wr(int(WEIGHT_ADDRS[i]), value) + [rd(int(WEIGHT_ADDRS[i])), rd(SERIAL_ADDR)],
                                    tag)
                if (data, notes) != ([value, SERIAL], []):
                    failures.append(f"client {i} program {k}: {data} {notes}")
            if c.backlog:
                failures.append(f"client {i}: extra words {c.backlog}")
            c.close()
        except Exception as exc:  # reported below
            failures.append(f"client {i}: {exc!r}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not failures, failures
    after = counter.counters(tag=0xC1)
    d = delta(before, after)
    assert d == {"frames": n_clients * n_programs + 1, "programs": n_clients * n_programs + 1}
    # Each client's last value is in its own register.
    data, _ = counter.run([rd(int(WEIGHT_ADDRS[i])) for i in range(n_clients)], tag=0xC2)
    assert data == [(i << 24) | ((n_programs - 1) << 8) | 0x5A for i in range(n_clients)]
    counter.close()


@pytest.mark.parametrize("cut", ["mid_frame", "mid_program", "unread_answers"])
def test_a_client_disconnecting_does_not_take_the_server_down(tcp_served, cut):
    s = tcp_served
    observer = s.connect()
    before = observer.counters()
    c = s.connect()
    if cut == "mid_frame":
        f = c.frame(_marker_write(11) + [halt(1)])
        c.send(f[:len(f) // 2])
    elif cut == "mid_program":                     # two frames of a program, no END
        c.send(b"".join(c.frames([_marker_write(11), _marker_write(11, 1)], end=False)))
    else:                                          # a big answer (4 MiB) nobody reads
        ppu = [rd(int(a)) for a in RM.addresses("ppu", "memory")]
        c.send(c.frame(ppu * 128 + [halt(1)]))
        assert select.select([c.sock], [], [], 10)[0], "no answer started"
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()                                      # unread_answers: RST, else an orderly close
    assert wait_for(lambda: s.server.clients == 1, 10), s.log.lines
    fresh = s.connect()
    data, notes = fresh.run([rd(SERIAL_ADDR), rd(int(WEIGHT_ADDRS[11]))], tag=3)
    assert (data, notes) == ([SERIAL, 0], [])
    after = observer.counters(tag=0xC3)
    d = delta(before, after)
    want = {"mid_frame": {"truncated": 1}, "mid_program": {"frames": 2},
            "unread_answers": {"frames": 9, "programs": 1}}[cut]   # 4096 * 128 + 1 words: 9 frames
    want = {k: want.get(k, 0) + (2 if k in ("frames", "programs") else 0)
            for k in set(want) | {"frames", "programs"}}
    if cut == "mid_frame":
        assert d.pop("bytes_discarded") > 0
    assert d == want
    assert any(re.search(r"tcp 127\.0\.0\.1:\d+: (disconnected|connection lost)", line) for line in s.log.lines)


def test_pty_client_closing_mid_frame_then_a_new_client_works():
    s = _start("pty")
    try:
        c = s.connect()
        f = c.frame(_marker_write(12) + [halt(1)])
        c.send(f[:HEADER_SIZE + 3])
        c.close()
        fresh = s.connect()                       # within the receive timeout: bytes still pending
        data, notes = fresh.run([rd(SERIAL_ADDR), rd(int(WEIGHT_ADDRS[12]))], tag=4)
        assert data == [SERIAL, 0]
        assert all(n[1] in (ER.FRAME_CRC, ER.FRAME_TRUNCATED, TR.FRAME_RECEIVE) for n in notes), notes
        fresh.close()
        time.sleep(RECEIVE_TIMEOUT * 2)
        again = s.connect()                       # answers of earlier clients never reach a new one
        assert again.run([rd(SERIAL_ADDR)], tag=5) == ([SERIAL], [])
        again.close()
    finally:
        s.server.stop()


def test_pty_answers_nobody_read_never_reach_the_next_client():
    """A client leaves with a 1 MiB answer unread; the next one (pyserial flushes
    its input on open) must see its own answers only, as whole frames."""
    s = _start("pty")
    try:
        c = s.connect()
        ppu = [rd(int(a)) for a in RM.addresses("ppu", "memory")]
        c.send(c.frame(ppu * 32 + [halt(1)]))
        assert wait_for(lambda: c.port.in_waiting > 0, 5)
        c.close()
        time.sleep(0.2)                            # the server is blocked on a full terminal queue
        fresh = s.connect()
        for tag in (7, 8):
            assert fresh.run([rd(SERIAL_ADDR)], tag=tag) == ([SERIAL], [])
            assert fresh.backlog == []
        fresh.close()
        assert any("unsent answer bytes dropped" in line for line in s.log.lines), s.log.lines
    finally:
        s.server.stop()


def test_pty_new_client_does_not_inherit_an_unfinished_program():
    """The previous client left in the middle of a program; the new client's
    START frame drops it (`timeout PROGRAM_END` naming its first frame) before
    the receive timeout would, and the new client's program runs on its own."""
    s = _start("pty", receive_timeout=2.0)
    try:
        c = s.connect()
        c.send(b"".join(c.frames([_marker_write(13), _marker_write(19)], end=False)))   # sequence 0, 1
        time.sleep(0.1)
        c.close()
        fresh = s.connect()                       # before the receive timeout drops it
        fresh.send(fresh.frame([rd(int(WEIGHT_ADDRS[13])), rd(int(WEIGHT_ADDRS[19])), halt(6)]))
        got = [notice(w) for w in fresh.until_echo(6)]
        assert got == [("timeout", TR.PROGRAM_END, 0), ("read_data", {"data": 0}), ("read_data", {"data": 0}),
                       ("loopback_echo", {"halt": 1, "tag": 6})]
        assert fresh.run([rd(SERIAL_ADDR)], tag=7) == ([SERIAL], [])
        fresh.close()
        pty = re.escape(s.server.address)
        logged = [line for line in s.log.lines if re.search(r": (error|timeout) [A-Z_]+", line)]
        assert len(logged) == 1 and re.fullmatch(rf"bss-twin: pty {pty}: timeout PROGRAM_END, index 0x0",
                                                 logged[0]), s.log.lines
    finally:
        s.server.stop()


# =========================================================================== program assembly rules
def _frame_notices(words: list[int]) -> list[tuple]:
    return [notice(w) for w in words]


@pytest.mark.parametrize("loss, n_frames, lost", [
    ("payload_crc", 3, 1), ("header_crc", 3, 1), ("missing", 3, 1),
    ("payload_crc", 4, 1), ("payload_crc", 3, 0), ("missing", 4, 2)])
def test_a_program_that_lost_a_frame_does_not_run(served, loss, n_frames, lost):
    """A program of several frames loses one: none of it runs; each later CONT
    frame of it is reported (FRAME_SEQUENCE, its sequence number) and
    discarded; the next program runs."""
    c = served.connect_tracked()
    before = c.counters(tag=0x30)
    first = c.seq
    marks = [14, 15, 16, 20][:n_frames]
    chunks = [_marker_write(k) for k in marks]
    chunks[-1] = chunks[-1] + [rd(int(WEIGHT_ADDRS[14])), halt(0x31)]
    frames = c.frames(chunks)
    if loss == "payload_crc":
        frames[lost] = _flip(frames[lost], 8 * (HEADER_SIZE + 2))
        fault, counters = [("error", ER.FRAME_CRC, first + lost)], {"crc_errors": 1}
    elif loss == "header_crc":
        frames[lost] = _flip(frames[lost], 8 * 6)                    # the sequence number
        fault, counters = [("error", ER.FRAME_CRC, 0xFFFFFFFF)], {"crc_errors": 1}
    else:                                                            # lost on the way: never arrives
        frames[lost] = b""
        fault, counters = [], {}
    if frames[lost]:
        assert clean(frames[lost])
        counters["bytes_discarded"] = len(frames[lost])
    c.send(b"".join(frames))
    # The next program (no CONT) runs; nothing of the broken one did.
    c.send(c.frame([rd(int(WEIGHT_ADDRS[k])) for k in marks] + [rd(SERIAL_ADDR), halt(0x32)]))
    got = _frame_notices(c.until_echo(0x32))
    # The first frame after the loss is also a sequence gap (reported once);
    # every later CONT frame is discarded and reported alike.
    discarded = [("error", ER.FRAME_SEQUENCE, first + k) for k in range(lost + 1, n_frames)]
    assert got == (fault + discarded + [("read_data", {"data": 0})] * len(marks)
                   + [("read_data", {"data": SERIAL}), ("loopback_echo", {"halt": 1, "tag": 0x32})])
    after = c.counters(tag=0x33)
    # frames: those of the broken program that arrived intact, the check program's, the counting one's
    assert delta(before, after) == {**counters, "sequence_gaps": 1, "frames": n_frames - 1 + 2, "programs": 2}


@pytest.mark.parametrize("by", ["start_frame", "next_program"])
def test_an_unfinished_program_is_dropped_by_the_next_program(served, by):
    """Frames of a program whose END never came, then a frame without CONT (a
    new program) or with START (a new client): the unfinished program is
    dropped with `timeout PROGRAM_END` naming its first frame, the new one runs."""
    c = served.connect_tracked()
    before = c.counters(tag=0x34)
    first = c.seq
    unfinished = b"".join(c.frames([_marker_write(17), _marker_write(18)], end=False))
    if by == "start_frame":
        c.seq = 0                                  # a new client numbers from 0 again
    nxt = c.frame([rd(int(WEIGHT_ADDRS[17])), rd(int(WEIGHT_ADDRS[18])), halt(0x35)], start=by == "start_frame")
    c.send(unfinished + nxt)
    got = _frame_notices(c.until_echo(0x35))
    assert got == [("timeout", TR.PROGRAM_END, first), ("read_data", {"data": 0}), ("read_data", {"data": 0}),
                   ("loopback_echo", {"halt": 1, "tag": 0x35})]
    after = c.counters(tag=0x36)
    assert delta(before, after) == {"frames": 2 + 2, "programs": 2}
    logged = [line for line in served.log.lines if re.search(r": (error|timeout) [A-Z_]+", line)]
    assert len(logged) == 1 and logged[0].endswith(f": timeout PROGRAM_END, index {first:#x}"), logged


def test_a_program_of_several_frames_runs_once_complete(served):
    """CONT frames join the program begun by the frame before them; it runs when END arrives."""
    c = served.connect_tracked()
    frames = c.frames([_marker_write(21, 0x1234_5678), [rd(int(WEIGHT_ADDRS[21]))], [rd(SERIAL_ADDR), halt(0x37)]])
    for f in frames:                               # one frame at a time
        c.send(f)
    got = _frame_notices(c.until_echo(0x37))
    assert got == [("read_data", {"data": 0x1234_5678}), ("read_data", {"data": SERIAL}),
                   ("loopback_echo", {"halt": 1, "tag": 0x37})]


def test_server_logs_one_line_per_notice_with_the_client(served):
    c = served.connect_tracked()
    c.send(raw_frame([halt(1)], 5, FLAG_END, version=9))
    c.run([rd(SERIAL_ADDR)], tag=1)
    lines = [l for l in served.log.lines if "FRAME_VERSION" in l]
    who = r"tcp 127\.0\.0\.1:\d+" if served.kind == "tcp" else re.escape(f"pty {served.server.address}")
    assert len(lines) == 1
    assert re.fullmatch(rf"bss-twin: {who}: error FRAME_VERSION \(unknown frame version\), "
                        r"index 0x5, header 0x00", lines[0]), lines[0]


def test_two_partial_frames_before_a_good_program_time_out_one_after_the_other(served):
    """Two 24-byte prefixes of 100-word frames, then a good program, in one
    write: each prefix is declared truncated after its own receive timeout
    (the timer is re-armed after the first flush), and the program is answered
    without the client sending another byte (formerly it waited for one)."""
    c = served.connect_tracked()
    prefix = raw_frame([wr(int(WEIGHT_ADDRS[0]), 1)[0]] * 100, SEQ)[:24]
    good = c.frame([rd(SERIAL_ADDR), halt(0x77)])
    c.send(prefix + prefix + good)
    t0 = time.monotonic()
    got = [notice(w) for w in c.until_echo(0x77, timeout=6 * RECEIVE_TIMEOUT + 2.0)]
    assert time.monotonic() - t0 < 6 * RECEIVE_TIMEOUT + 2.0
    assert [g[1]["data"] for g in got if g[0] == "read_data"] == [SERIAL]


def test_clients_beyond_the_cap_are_refused_with_a_reason():
    import host
    from host.errors import LinkError
    log = Lines()
    with TwinServer(Chip("dls", 1), log=log, max_clients=2) as srv:
        first, second = host.connect(srv.url), host.connect(srv.url)
        with pytest.raises(LinkError, match="refused: the server serves its maximum number of clients"):
            host.connect(srv.url)
        first.close()
        assert wait_for(lambda: srv.clients == 1)
        with host.connect(srv.url) as third:                 # a place is free again
            assert third.serial == 1
        second.close()
    assert any("refused: 2 clients connected" in line for line in log.lines)


def test_the_accept_loop_survives_when_no_thread_can_be_started(monkeypatch):
    """Thread exhaustion refuses the client (SERVER_FULL) and keeps accepting."""
    import host
    from host.errors import LinkError
    with TwinServer(Chip("dls", 1), log=Lines()) as srv:
        real_start = threading.Thread.start
        calls = {"n": 0}

        def failing_start(self):
            if self.name.startswith("bss-twin tcp") and calls["n"] == 0:
                calls["n"] += 1
                raise RuntimeError("can't start new thread")
            return real_start(self)

        monkeypatch.setattr(threading.Thread, "start", failing_start)
        with pytest.raises(LinkError, match="refused"):
            host.connect(srv.url)
        with host.connect(srv.url) as conn:                  # the next client is served
            assert conn.serial == 1


def test_each_tcp_client_has_its_own_instance_of_the_chip_by_default():
    """Isolation: two clients of a default server write the same register and
    read their own value back, never see each other's programs in the link
    counters, and see the same chip (serial and fixed pattern)."""
    import host
    with TwinServer(Chip("dls", 5), log=Lines()) as srv:
        assert not srv.shared
        a, b = host.connect(srv.url), host.connect(srv.url)
        rm = a.regmap
        field = rm.register("capmem", "neuron").field("value")
        addr = rm.addresses("capmem", "neuron")[:1]
        for conn, value in ((a, 111), (b, 222)):
            prog = conn.program()
            prog.write_words(addr, value << field.lsb)
            conn.run(prog)
        values = []
        for conn in (a, b):
            prog = conn.program()
            t = prog.read_words(addr)
            conn.run(prog)
            values.append(int(field.extract(t.values.astype(np.int64))[0]))
        assert values == [111, 222]
        assert a.serial == b.serial == 5
        a.close(), b.close()
    with TwinServer(Chip("dls", 5), log=Lines(), shared=True) as srv:
        a, b = host.connect(srv.url), host.connect(srv.url)
        prog = a.program()
        prog.write_words(addr, 333 << field.lsb)
        a.run(prog)
        prog = b.program()
        t = prog.read_words(addr)
        b.run(prog)
        assert int(field.extract(t.values.astype(np.int64))[0]) == 333      # shared: b sees a's write
        a.close(), b.close()


def test_a_fresh_instance_has_the_same_fixed_pattern():
    chip = Chip("hx", 9, 3, mismatch=True)
    other = chip.fresh()
    assert other is not chip and (other.serial, other.seed, other.options) == (9, 3, chip.options)
    np.testing.assert_array_equal(other.core.net.fp.cell_gain, chip.core.net.fp.cell_gain)


def test_a_server_with_a_token_serves_only_clients_that_send_it(monkeypatch):
    import host
    from host.errors import LinkError
    log = Lines()
    with TwinServer(Chip("dls", 4), log=log, token="s3cret") as srv:
        with host.connect(f"{srv.url}?token=s3cret") as conn:
            assert conn.serial == 4
        monkeypatch.setenv("BSS_TWIN_TOKEN", "s3cret")
        with host.connect(srv.url) as conn:                        # from the environment
            assert conn.serial == 4
        monkeypatch.delenv("BSS_TWIN_TOKEN")
        for url in (srv.url, f"{srv.url}?token=wrong"):
            with pytest.raises(LinkError, match="refused: the server requires its token first"):
                host.connect(url)
        with host.connect(f"{srv.url}?token=s3cret") as conn:      # still serving
            assert conn.serial == 4
    assert sum("refused: no valid token" in line for line in log.lines) == 2


def test_beyond_loopback_a_server_needs_a_token():
    with pytest.raises(ValueError, match="beyond loopback\\) needs a token"):
        TwinServer(Chip("dls", 1), host="0.0.0.0")
    srv = TwinServer(Chip("dls", 1), host="0.0.0.0", token="t")      # allowed with one (not started)
    assert srv.token == "t"
