"""Mutated frames over the real transports (hypothesis): a TCP server and a
pty server, each with plain frames and with the reliable link layer (over a
link that also flips bits, host/fault.py).

A stream is built from valid programs (isa.frame, isa.wire: barriers,
register reads, register writes) whose frames are mutated: bits flipped,
cut short, bytes inserted, a header doubled, garbage, frames left partial.
Then a good program (START frame: write a value drawn for this example, read
it back, read the serial number) follows on the same connection.  Properties:

* the server survives (its thread alive, nothing logged as an internal
  error) and takes new clients (each example is a new connection);
* the good program is answered within the resync bound: every frame header
  in the stream may hold a partial frame for one quiet interval (the receive
  timeout, plus the layer's longest retransmission interval with the layer),
  no more;
* its answer is right, and every read of the fuzzed programs that ran is right;
* every frame fault the chip counted was reported by a notice, and every
  notice is one of the link's (no other error reaches this client).

Expected values come from how the stream is built (the serial number, the
value written), never from the server.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from isa import arq, frame, wire
from isa.frame import FLAG_CONT, FLAG_END, FLAG_START, FLAG_TO_HOST, HEADER_SIZE, MAGIC
from isa.regmap import register_map
from isa.wire import ErrorReason as ER, TimeoutReason as TR
from tools.rawclient import RawClient
from twin.chip import Chip
from twin.server import PtyServer, TwinServer

RM = register_map("dls")
SERIAL = 0x5EED
SERIAL_ADDR = RM.address("chip_id", "serial")
WEIGHTS = [int(a) for a in RM.addresses("synapse", "weights")[:8]]       # 32-bit words, every bit a field on dls
CHECK = WEIGHTS[0]
RECEIVE_TIMEOUT = 0.1
SLACK = 3.0                    # seconds on top of the resync bound: a guard against a busy machine, not a target
FRAME_FAULTS = {ER.FRAME_CRC: "crc_errors", ER.FRAME_TRUNCATED: "truncated", ER.FRAME_OVERSIZED: "oversized",
                ER.FRAME_VERSION: "bad_version", ER.FRAME_DIRECTION: "wrong_direction"}
LINK_NOTICES = {("error", r) for r in (*FRAME_FAULTS, ER.FRAME_SEQUENCE, ER.NOTICES_DROPPED)} | \
               {("timeout", r) for r in (TR.FRAME_RECEIVE, TR.PROGRAM_END)}


def rd(address: int) -> int:
    return wire.encode("omnibus_address", is_read=1, byte_enables=0xF, address=address)


def wr(address: int, value: int) -> list[int]:
    return [wire.encode("omnibus_address", is_read=0, byte_enables=0xF, address=address),
            wire.encode("omnibus_data", data=value)]


# --------------------------------------------------------------------------- strategies
_op = st.one_of(
    st.builds(lambda m: [wire.encode("barrier", mask=m)], st.integers(0, 7)),
    st.just([rd(SERIAL_ADDR)]),
    st.builds(wr, st.sampled_from(WEIGHTS), st.integers(0, (1 << 32) - 1)))
_flags = st.sampled_from([0, FLAG_END, FLAG_CONT, FLAG_CONT | FLAG_END, FLAG_START | FLAG_END,
                          FLAG_TO_HOST | FLAG_END])


@st.composite
def valid_frame(draw) -> bytes:
    words = [w for op in draw(st.lists(_op, max_size=6)) for w in op]
    return frame.encode_frame(np.array(words, np.uint64), draw(st.integers(0, (1 << 32) - 1)), draw(_flags))


@st.composite
def piece(draw) -> bytes:
    """A valid frame, mutated (or not)."""
    f = draw(valid_frame())
    kind = draw(st.sampled_from(["intact", "flip", "truncate", "insert", "double_header", "garbage", "partial"]))
    if kind == "flip":
        bit = draw(st.integers(0, 8 * len(f) - 1))
        return f[:bit // 8] + bytes([f[bit // 8] ^ 1 << bit % 8]) + f[bit // 8 + 1:]
    if kind == "truncate":
        return f[:draw(st.integers(1, len(f) - 1))]
    if kind == "insert":
        at = draw(st.integers(0, len(f)))
        return f[:at] + draw(st.binary(min_size=1, max_size=24)) + f[at:]
    if kind == "double_header":
        return f[:HEADER_SIZE] + f
    if kind == "garbage":
        junk = draw(st.binary(min_size=1, max_size=120))
        return junk + MAGIC + junk[:draw(st.integers(0, len(junk)))] if draw(st.booleans()) else junk
    if kind == "partial":                          # the first bytes of a longer frame: its header announces more
        long = frame.encode_frame(np.full(100, rd(SERIAL_ADDR), np.uint64), draw(st.integers(0, 99)), FLAG_END)
        return long[:draw(st.integers(2, 60))]
    return f


streams = st.lists(piece(), min_size=1, max_size=4)


# --------------------------------------------------------------------------- servers
class Log:
    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)


@pytest.fixture(scope="module")
def tcp_server():
    log = Log()
    srv = TwinServer(Chip("dls", SERIAL), receive_timeout=RECEIVE_TIMEOUT, log=log).start()   # a chip per client
    srv.test_log = log
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def pty_server():
    log = Log()
    srv = PtyServer(Chip("dls", SERIAL), receive_timeout=RECEIVE_TIMEOUT, log=log).start()
    srv.test_log = log
    yield srv
    srv.stop()


def _alive(srv) -> bool:
    thread = srv._accept_thread if isinstance(srv, TwinServer) else srv._thread
    return thread.is_alive()


def _connect(srv, layer: bool, seed: int) -> RawClient:
    if isinstance(srv, TwinServer):
        if not layer:
            return RawClient.tcp(srv.address)
        return RawClient.url(f"fault+{srv.url}?flip=1e-3&seed={seed}")
    if not layer:
        return RawClient.pty(srv.address)
    return RawClient.url(f"fault+{srv.address}?flip=1e-3&seed={seed}")


VARIANTS = [("tcp", False, 50), ("tcp", True, 20), ("pty", False, 50), ("pty", True, 20)]


@pytest.mark.parametrize("kind, layer, examples", VARIANTS,
                         ids=[f"{k}-{'link layer' if lay else 'plain'}" for k, lay, _ in VARIANTS])
def test_mutated_frames_never_break_a_transport(request, kind, layer, examples):
    srv = request.getfixturevalue(f"{kind}_server")
    quiet = RECEIVE_TIMEOUT + (arq.RTO_MAX if layer else 0.0)
    runs = {"n": 0}

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(stream=streams, value=st.integers(0, (1 << 32) - 1))
    def check(stream, value):
        runs["n"] += 1
        c = _connect(srv, layer, runs["n"])
        try:
            before = c.counters(tag=1)
            c.send(b"".join(stream))
            headers = sum(p.count(MAGIC) for p in stream)
            bound = (headers + 1) * quiet + SLACK           # each header may hold a partial frame once
            data, notes = c.run(wr(CHECK, value) + [rd(CHECK), rd(SERIAL_ADDR)], tag=2, start=True,
                                timeout=bound)
            assert data[-2:] == [value, SERIAL], (data, notes)
            assert all(d == SERIAL for d in data[:-2]), data          # the fuzzed programs' reads that ran
            assert {n[:2] for n in notes} <= LINK_NOTICES, notes
            after = c.counters(tag=3)
            faults = {name: after[name] - before[name] for name in FRAME_FAULTS.values()}
            reported = {name: sum(1 for n in notes if n[:2] == ("error", r)) for r, name in FRAME_FAULTS.items()}
            assert faults == reported, (faults, notes)              # each fault counted once and reported once
            assert after["notices_dropped"] == before["notices_dropped"]
        finally:
            c.close()
        assert _alive(srv)

    check()
    assert runs["n"] >= examples // 2
    assert not [line for line in srv.test_log.lines if "internal error" in line], srv.test_log.lines
    # A new client after all of it: served, right answer.
    c = _connect(srv, False, 0)
    assert c.run([rd(SERIAL_ADDR)], tag=9) == ([SERIAL], [])
    c.close()


def test_pty_plain_clients_and_link_layer_clients_take_turns():
    """The pty outlives its clients: one with the link layer, then one with plain
    frames (the layer must be off again for it), and so on."""
    log = Log()
    srv = PtyServer(Chip("dls", SERIAL), receive_timeout=RECEIVE_TIMEOUT, log=log).start()
    try:
        for k, layer in enumerate([False, True, False, True, False]):
            c = RawClient.url(srv.address) if layer else RawClient.pty(srv.address)
            assert c.run(wr(CHECK, k + 100) + [rd(CHECK)], tag=k) == ([k + 100], []), (k, layer)
            c.close()
        assert _alive(srv)
    finally:
        srv.stop()
    assert not [line for line in log.lines if re.search("internal error", line)], log.lines
