"""The reliable link layer (isa/arq.py, host/arq.py, twin/arq_link.py) and
the fault-injecting transport (host/fault.py): what crosses a damaged link
arrives once, in order and intact; programs over `fault+tcp://` neither get
lost nor run twice nor come back wrong; a peer that does not speak the layer
still works in plain frames."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import host
from host.arq import ArqTransport
from host.errors import LinkError
from host.fault import FaultInjector, FaultTransport, split_fault_url
from host.transport import Transport
from isa import arq
from twin.server import TwinServer


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _pair(clock):
    session = b"\x01" * 8
    return arq.ArqEndpoint(session, clock=clock), arq.ArqEndpoint(session, clock=clock)


@pytest.mark.parametrize("rates", [dict(flip=1e-3, drop=1e-3), dict(flip=1e-2), dict(erase=3e-3, dup=0.05),
                                   dict(reorder=0.1, flip=2e-3), dict()])
@pytest.mark.parametrize("seed", [1, 2])
def test_both_directions_deliver_every_byte_once_in_order(rates, seed):
    """Two endpoints over a simulated link with the given damage (sans-IO, a
    fake clock): every message of both sides arrives exactly, in order."""
    clock = FakeClock()
    a, b = _pair(clock)
    rng = np.random.default_rng(seed)
    counts = Counter()
    ab = FaultInjector(np.random.default_rng([seed, 1]), counts, "up", **rates)
    ba = FaultInjector(np.random.default_rng([seed, 2]), counts, "down", **rates)
    sent = {"a": bytearray(), "b": bytearray()}
    got = {"a": bytearray(), "b": bytearray()}
    wires = {"ab": [], "ba": []}
    for step in range(6000):                 # 2 ms a step: 12 s, the first 2 s with traffic (about 15 kB each way)
        clock.t += 0.002
        if step < 1000 and rng.random() < 0.05:
            for name, ep in (("a", a), ("b", b)):
                msg = rng.integers(0, 256, int(rng.integers(1, 600)), dtype=np.uint8).tobytes()
                sent[name] += msg
                ep.send(msg)
        for ep in (a, b):
            ep.poll()
        wires["ab"] += ab.apply(a.take_outbox(), clock.t)
        wires["ba"] += ba.apply(b.take_outbox(), clock.t)
        for key, dst, name in (("ab", b, "b"), ("ba", a, "a")):
            for _, chunk in wires[key]:
                got[name] += dst.receive(chunk)
            wires[key] = []
    assert bytes(got["b"]) == bytes(sent["a"]) and bytes(got["a"]) == bytes(sent["b"])
    assert a.idle and b.idle
    if rates.get("flip") or rates.get("drop") or rates.get("erase"):
        assert a.stats.retransmissions + b.stats.retransmissions > 0
    if rates.get("dup"):
        assert a.stats.duplicates + b.stats.duplicates > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_link_resumed_over_a_new_stream_delivers_every_byte_once(seed):
    """Both directions carry messages; at a random moment the stream breaks:
    whatever was in flight is lost, both sides' parsers hold half a packet.
    After RESUME (each side's `expected` given to the other's `resume`) every
    message arrives exactly once, in order."""
    clock = FakeClock()
    a, b = _pair(clock)
    rng = np.random.default_rng(seed)
    sent = {"a": bytearray(), "b": bytearray()}
    got = {"a": bytearray(), "b": bytearray()}
    cut = int(rng.integers(50, 400))
    for step in range(3000):
        clock.t += 0.002
        if step < 600 and rng.random() < 0.2:
            for name, ep in (("a", a), ("b", b)):
                msg = rng.integers(0, 256, int(rng.integers(1, 3000)), dtype=np.uint8).tobytes()
                sent[name] += msg
                ep.send(msg)
        for ep in (a, b):
            ep.poll()
        out_a, out_b = a.take_outbox(), b.take_outbox()
        if step == cut:                          # the stream breaks: in flight lost, half packets held
            b.receive(out_a[:len(out_a) // 2])
            a.receive(out_b[:len(out_b) // 3])
            a.parser, b.parser = arq.PacketParser(a.stats), arq.PacketParser(b.stats)
            a.outbox.clear()
            b.outbox.clear()
            ea, eb = a.expected, b.expected      # RESUME and RESUME_ACK carry these
            a.resume(eb)
            b.resume(ea)
            continue
        got["b"] += b.receive(out_a)
        got["a"] += a.receive(out_b)
    assert bytes(got["b"]) == bytes(sent["a"]) and bytes(got["a"]) == bytes(sent["b"])
    assert a.idle and b.idle and a.stats.resumes == b.stats.resumes == 1
    assert a.stats.timeouts == b.stats.timeouts == 0        # sent again at the resume, not by a timer


def test_a_resume_outside_the_kept_bytes_is_refused():
    a, _ = _pair(FakeClock())
    a.send(b"x" * 100)
    with pytest.raises(ValueError, match="resume: the peer expects offset 200"):
        a.resume(200)


def test_parser_counts_what_it_drops():
    stats = arq.ArqStats()
    parser = arq.PacketParser(stats)
    good = arq.encode_packet(arq.DATA, 0, 0, b"payload")
    damaged = bytearray(good)
    damaged[25] ^= 0x10                     # in the payload: its CRC fails
    pkts = parser.feed(b"junk" + bytes(damaged) + good)
    assert [p.payload for p in pkts] == [b"payload"]
    assert stats.bad_packets == 1 and stats.bytes_discarded >= 4


def _programs(conn, n):
    """n write+read programs with distinct values: (wrong answers, programs run)."""
    rm = conn.regmap
    field = rm.register("capmem", "neuron").field("value")
    addr = rm.addresses("capmem", "neuron")[:4]
    wrong = 0
    for i in range(n):
        vals = (np.arange(4) * 7 + i) % 1000
        prog = conn.program()
        prog.write_words(addr, vals << field.lsb)
        t = prog.read_words(addr)
        conn.run(prog)
        wrong += int(not np.array_equal(field.extract(t.values.astype(np.int64)), vals))
    return wrong


def test_programs_over_a_damaged_tcp_link_arrive_once_and_right():
    with TwinServer(profile="dls", serial=1) as srv:
        with host.connect(f"fault+{srv.url}?flip=1e-3&drop=1e-4&seed=7") as conn:
            assert conn.transport.negotiated
            assert _programs(conn, 300) == 0
            stats = conn.transport.stats()
            assert stats["retransmissions"] > 0 and stats["bad_packets"] > 0
            # each program ran once: the chip counted exactly the programs before this read (identify + 300)
            block = conn.regmap.block("link")
            reg = next(r for r in block.registers if r.name == "programs")
            prog = conn.program()
            t = prog.read_words(np.array([block.base + reg.offset], np.uint64))
            conn.run(prog)
            assert int(t.values[0]) == 1 + 300


def test_without_the_layer_the_same_damage_fails_programs():
    """arq=0 over the same fault link: programs are lost (a LinkError the host
    sees), which is what the layer prevents."""
    with TwinServer(profile="dls", serial=1) as srv:
        failures = 0
        with host.connect(f"fault+{srv.url}?flip=1e-3&seed=7&arq=0", timeout=2.0) as conn:
            assert not isinstance(conn.transport, ArqTransport)
            for _ in range(100):
                try:
                    _programs(conn, 1)
                except LinkError:
                    failures += 1
        assert failures > 0


class SilentPeer(Transport):
    """A peer that never answers the HELLO (a bridge without the layer)."""
    url = "silent"

    def __init__(self):
        self.written = []

    def write(self, data):
        self.written.append(data)

    def read(self, timeout):
        return b""


def test_a_peer_without_the_layer_gets_plain_frames():
    peer = SilentPeer()
    t = ArqTransport(peer, hello_timeout=0.2, hello_every=0.05)
    assert not t.negotiated
    hellos = len(peer.written)
    assert hellos >= 2 and all(arq.MARKER in w for w in peer.written)
    t.write(b"frame bytes")
    assert peer.written[hellos:] == [b"frame bytes"]               # passed through untouched


def test_the_in_process_twin_speaks_the_layer_when_asked():
    with host.connect("twin:dls?serial=2&arq=1") as conn:
        assert conn.transport.negotiated and _programs(conn, 5) == 0
    with host.connect("twin:dls?serial=2") as conn:
        assert not isinstance(conn.transport, ArqTransport)        # lossless: plain frames by default


@pytest.mark.parametrize("url, message", [
    ("fault+tcp://127.0.0.1:1?flip=x", "fault option flip='x' is not a float"),
    ("fault+tcp://127.0.0.1:1?drop=2", "drop=2.0 must be a probability in 0..1"),
    ("fault+tcp://127.0.0.1:1?dir=left", "dir='left': both, up or down"),
    ("twin:dls?arq=2", "arq='2': 0 \\(plain frames\\) or 1"),
    ("tcp://127.0.0.1:1?resume=yes", "resume='yes': 0 or 1"),
])
def test_bad_link_options_are_refused_by_name(url, message):
    with pytest.raises(ValueError, match=message):
        host.connect(url)


def test_fault_options_leave_the_inner_url_alone():
    inner, opts = split_fault_url("fault+tcp://h:5?flip=1e-3&arq=1&seed=4")
    assert inner == "tcp://h:5?arq=1" and opts == {"flip": 1e-3, "seed": 4}


def test_fault_transport_is_reproducible_by_seed():
    class Echo(Transport):
        url = "echo"

        def __init__(self):
            self.buf = b""

        def write(self, data):
            self.buf += data

        def read(self, timeout):
            data, self.buf = self.buf, b""
            return data

    outs = []
    for _ in range(2):
        t = FaultTransport(Echo(), "fault+echo", seed=5, flip=0.01, erase=0.01)
        t.write(bytes(range(256)) * 8)
        outs.append((t.read(0.1), dict(t.injected)))
    assert outs[0] == outs[1] and outs[0][1]["up_bits_flipped"] > 0


def test_a_late_answer_is_not_folded_into_the_next_result():
    """A program that times out on the host may still answer later; the retry
    on the same connection returns each of its spikes once and says what it
    dropped (formerly every spike came back twice)."""
    with TwinServer(profile="dls", serial=1) as srv:
        # Every answer arrives 50 ms late, so the first program cannot answer within
        # its 1 ms however fast the chip runs it.
        with host.connect(f"fault+{srv.url}?delay=0.05&dir=down") as conn:
            rm = conn.regmap
            cb = rm.register("routing", "crossbar")

            def spike_program():
                prog = conn.program()
                prog.write_words([rm.address("routing", "crossbar")], [cb.encode(loopback=1, recurrent=0, record=0)])
                prog.timer_reset()
                times = np.arange(1, 41) * 100
                prog.spikes(np.arange(40) % 16, times)
                prog.wait_until(2_000_000)         # 16 ms of hardware time
                return prog

            conn.timeout = 0.001
            with pytest.raises(host.LinkTimeout):
                conn.run(spike_program())
            conn.timeout = 30.0
            result = conn.run(spike_program())
    assert len(result.spikes) == 40
    assert any("late response word(s)" in n for n in result.notices)
