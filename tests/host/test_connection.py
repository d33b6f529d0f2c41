"""Connections (host/connection.py): errors, tickets, timeouts, URL choice."""
from __future__ import annotations

import time

import numpy as np
import pytest

import host
from host import ChipError, LinkTimeout
from host.transport import InProcessTransport, Transport
from isa import frame, wire
from isa.regmap import register_map
from isa.wire import ErrorReason


@pytest.fixture
def conn():
    with host.connect("twin:hx") as c:
        yield c


# --------------------------------------------------------------------------- chip errors
def test_chip_error_names_address_register_and_reason(conn):
    rm = conn.regmap
    serial = rm.address("chip_id", "serial")
    madc = rm.address("madc", "config")
    reset = rm.address("neuron", "spike_counter_reset", 7)
    p = conn.program()
    p.write_words([serial], [1])
    p.write(host.NeuronOnChip(0), host.NeuronConfig(enable=1))       # fine
    p.write_words([madc], [1023 << 3])                                 # neuron 1023 > 511
    p.read_words([reset])
    p.read_words([0xFFFF_FFF0])
    with pytest.raises(ChipError) as info:
        conn.run(p)
    e = info.value
    assert [(r.index, r.reason) for r in e.rejected] == [
        (0, ErrorReason.READ_ONLY), (4, ErrorReason.FIELD_RANGE), (6, ErrorReason.WRITE_ONLY),
        (7, ErrorReason.UNKNOWN_ADDRESS)]
    assert str(e) == (
        f"chip rejected 4 word(s): "
        f"word 0: write 0x00000001 to {serial:#010x} (chip_id.serial): write to a read-only register (READ_ONLY); "
        f"word 4: write 0x00001ff8 to {madc:#010x} (madc.config): field value above its legal maximum "
        f"(FIELD_RANGE); "
        f"word 6: read {reset:#010x} (neuron.spike_counter_reset[7]): read of a write-only register (WRITE_ONLY); "
        f"word 7: read 0xfffffff0 (unmapped): no register at this address (UNKNOWN_ADDRESS)")


def test_chip_error_message_is_capped(conn):
    p = conn.program()
    p.read_words(np.arange(7) + 0xFFFF_FF00)
    with pytest.raises(ChipError, match=r"^chip rejected 7 word\(s\): word 0: .*; word 4: read 0xffffff04 "
                                        r"\(unmapped\): no register at this address \(UNKNOWN_ADDRESS\) "
                                        r"\(and 2 more\)$"):
        conn.run(p)


def test_tickets_of_good_reads_are_filled_when_another_read_fails(conn):
    rm = conn.regmap
    p = conn.program()
    labels = rm.addresses("routing", "neuron_label", np.arange(4))
    p.write_words(labels, [11, 12, 13, 14])
    t1 = p.read_words(labels[:2])
    t_bad = p.read_words([labels[2], 0xFFFF_FFF0])
    t2 = p.read(host.NeuronOnChip(3), host.NeuronLabel)
    t3 = p.read_words(labels[3])
    with pytest.raises(ChipError) as info:
        conn.run(p)
    assert t1.values.tolist() == [11, 12]
    assert t2.value == host.NeuronLabel(label=14, enable=0)
    assert t3.value == 14
    assert t_bad.done
    with pytest.raises(ChipError) as again:
        t_bad.values
    assert again.value is info.value
    # The connection stays usable.
    p = conn.program()
    t = p.read_words(labels)
    conn.run(p)
    assert t.values.tolist() == [11, 12, 13, 14]


def test_rejected_write_changes_nothing(conn):
    rm = conn.regmap
    a = rm.address("madc", "config")
    p = conn.program()
    before = p.read_words([a])
    p.write_words([a], [1023 << 3])
    after = p.read_words([a])
    with pytest.raises(ChipError):
        conn.run(p)
    assert after.values.tolist() == before.values.tolist()


def test_run_result_counts_words(conn):
    p = conn.program()
    p.read_words(conn.regmap.addresses("neuron", "config"))
    res = conn.run(p)
    assert res.words_sent == 512 + 1                  # reads and the halt
    assert res.words_received == 512 + 1              # answers and the echo
    assert res.wall_seconds > 0


# --------------------------------------------------------------------------- timeouts
class Silent(Transport):
    """Takes bytes, never answers."""

    url = "fake://silent"

    def __init__(self):
        self.sent = bytearray()

    def write(self, data: bytes) -> None:
        self.sent += data

    def read(self, timeout: float) -> bytes:
        time.sleep(min(timeout, 0.01))
        return b""


def test_link_timeout_when_nothing_answers():
    t = Silent()
    t0 = time.monotonic()
    with pytest.raises(LinkTimeout, match=r"^fake://silent: no halt echo within 0\.2 s \(0 response words so far\); "
                                          r"is the chip running, and did the program fit its time limit\?$"):
        host.Connection(t, timeout=0.2)
    assert 0.2 <= time.monotonic() - t0 < 5
    # What was sent is one well-formed frame: the identification program.
    frames, faults = frame.FrameDecoder(expect_to_host=False).feed(bytes(t.sent))
    assert not faults and len(frames) == 1 and frames[0].end


class GoesQuiet(Transport):
    """A twin that answers the identification, then stops answering."""

    url = "fake://goes-quiet"

    def __init__(self):
        self._twin = InProcessTransport("twin:dls")
        self.quiet = False

    def write(self, data: bytes) -> None:
        if not self.quiet:
            self._twin.write(data)

    def read(self, timeout: float) -> bytes:
        if self.quiet:
            time.sleep(min(timeout, 0.01))
            return b""
        return self._twin.read(timeout)


def test_link_timeout_on_run():
    t = GoesQuiet()
    conn = host.Connection(t, timeout=0.2)
    assert conn.profile.name == "dls"
    t.quiet = True
    p = conn.program()
    p.read_words([register_map("dls").address("chip_id", "id")])
    with pytest.raises(LinkTimeout, match=r"^fake://goes-quiet: no halt echo within 0\.2 s"):
        conn.run(p)
    assert isinstance(LinkTimeout("x"), host.LinkError)


class Dribble(Transport):
    """Delivers the twin's answer a few bytes at a time."""

    url = "fake://dribble"

    def __init__(self):
        self._twin = InProcessTransport("twin:dls")
        self._buf = bytearray()
        self._n = 0

    def write(self, data: bytes) -> None:
        self._twin.write(data)

    def read(self, timeout: float) -> bytes:
        self._buf += self._twin.read(timeout)
        self._n = self._n % 7 + 1
        out, self._buf = bytes(self._buf[:self._n]), self._buf[self._n:]
        return out


def test_answers_in_small_pieces():
    conn = host.Connection(Dribble(), timeout=5)
    rm = conn.regmap
    p = conn.program()
    a = rm.addresses("routing", "neuron_label", np.arange(20))
    p.write_words(a, np.arange(20) + 100)
    t = p.read_words(a)
    conn.run(p)
    assert t.values.tolist() == list(range(100, 120))


# --------------------------------------------------------------------------- choosing the chip
def test_connect_honours_the_environment(monkeypatch):
    monkeypatch.setenv("BSS_CONNECTION", "twin:hx?serial=7")
    with host.connect() as c:
        assert (c.profile.name, c.serial, c.url) == ("hx", 7, "twin:hx?serial=7")
    with host.connect("twin:hicann?serial=3") as c:          # an explicit URL wins
        assert (c.profile.name, c.serial) == ("hicann", 3)
    monkeypatch.delenv("BSS_CONNECTION")
    with host.connect() as c:
        assert (c.profile.name, c.url) == ("dls", "twin:dls")


def test_connect_via_pyserial_url(monkeypatch):
    monkeypatch.setenv("BSS_CONNECTION", "twin://hx?serial=5")
    with host.connect() as c:
        assert (c.profile.name, c.serial) == ("hx", 5)
        p = c.program()
        t = p.read(host.ChipOnly(), host.ChipId)
        c.run(p)
        assert t.value == host.ChipId(profile=3, version=1)


@pytest.mark.parametrize("url, message", [
    ("nonsense", r"^unknown connection URL 'nonsense'; use twin:PROFILE\?serial=N, tcp://HOST:PORT"),
    ("twin:hx?colour=red", r"^twin:hx\?colour=red: unknown parameter\(s\) colour; a twin URL takes serial=N, seed=S, "
                           r"mismatch=0\|1, spike_loss=P and synapse_loss=F$"),
    ("twin:nochip", r"^unknown chip profile 'nochip'; choose one of: dls, hicann, hx$"),
])
def test_bad_urls(url, message):
    with pytest.raises(ValueError, match=message):
        host.connect(url)


def test_tcp_refused_is_a_link_error():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                              # nobody listens there now
    with pytest.raises(host.LinkError, match=rf"^cannot connect to tcp://127\.0\.0\.1:{port}: .*"
                                             r"is `bss-twin serve --tcp` \(or the board bridge\) running\?$"):
        host.connect(f"tcp://127.0.0.1:{port}")


# --------------------------------------------------------------------------- lost frames of a program
class Lossy(Transport):
    """A line to a twin that damages the next program written: `damage(frames)`
    gets its frames (bytes) and returns the bytes to pass on.  `sent` collects
    the sequence numbers of every frame the host wrote."""

    url = "fake://lossy"

    def __init__(self, inner: Transport):
        self.inner = inner
        self.damage = None
        self.sent: list[list[int]] = []

    def write(self, data: bytes) -> None:
        frames, faults = frame.FrameDecoder(expect_to_host=False).feed(data)
        assert not faults
        self.sent.append([f.seq for f in frames])
        if self.damage is not None:
            damage, self.damage = self.damage, None
            cut = [f.offset for f in frames] + [len(data)]
            data = damage([data[a:b] for a, b in zip(cut, cut[1:])])
        self.inner.write(data)

    def read(self, timeout: float) -> bytes:
        return self.inner.read(timeout)

    def close(self) -> None:
        self.inner.close()


def _three_frame_program(conn):
    """A program of three frames: marker writes in the first and the last frame,
    70 000 writes to a third register in between.  Returns it and the registers."""
    a, b, c = (int(x) for x in conn.regmap.addresses("synapse", "weights")[:3])
    p = conn.program()
    p.write_words([a], [0x1111_1111])
    p.write_words(np.full(70_000, c), np.arange(70_000) % 97 + 1)
    p.write_words([b], [0x2222_2222])
    assert len(p.words()) > 2 * frame.MAX_FRAME_WORDS
    return p, (a, b, c)


def _read_back(conn, addresses) -> list[int]:
    p = conn.program()
    t = p.read_words(list(addresses))
    res = conn.run(p)
    return t.values.tolist(), res


def _flip_payload(data: bytes) -> bytes:
    b = bytearray(data)
    b[frame.HEADER_SIZE + 3] ^= 0x10
    return bytes(b)


def test_a_program_that_lost_its_middle_frame_raises_link_error_and_does_not_run():
    t = Lossy(InProcessTransport("twin:dls"))
    conn = host.Connection(t, timeout=5)
    p, regs = _three_frame_program(conn)
    t.damage = lambda frames: frames[0] + _flip_payload(frames[1]) + frames[2]
    with pytest.raises(host.LinkError) as info:
        conn.run(p)
    assert not isinstance(info.value, LinkTimeout)
    seqs = t.sent[-1]
    assert seqs == [seqs[0], seqs[0] + 1, seqs[0] + 2]
    assert str(info.value) == (f"fake://lossy: the chip dropped frame {seqs[1]} of this program: frame CRC "
                               "mismatch (FRAME_CRC); the program did not run")
    values, res = _read_back(conn, regs)
    assert values == [0, 0, 0], "part of a program with a lost frame ran"
    # The report on the discarded last frame may come with the next program.
    assert res.notices in ([], [f"chip side: frame {seqs[2]}: frame sequence gap (frames lost)"])


def test_a_program_dropped_by_a_start_frame_raises_link_error():
    """The program's END frame is lost and another client's START frame arrives:
    the chip drops the program (`timeout PROGRAM_END` naming its first frame)."""
    twin = InProcessTransport("twin:dls")
    t = Lossy(twin)
    conn = host.Connection(t, timeout=5)
    p, regs = _three_frame_program(conn)
    other = frame.encode_frame(np.array([wire.encode("loopback", halt=1, tag=0xFFFE)], np.uint64), 0,
                               frame.FLAG_START | frame.FLAG_END)
    t.damage = lambda frames: frames[0] + frames[1] + other
    with pytest.raises(host.LinkError, match=r"^fake://lossy: the chip dropped this program: its last frame "
                                             r"never arrived; the program did not run$") as info:
        conn.run(p)
    assert not isinstance(info.value, LinkTimeout)
    fresh = host.Connection(Lossy(twin), timeout=5)           # another client on the same chip
    values, res = _read_back(fresh, regs)
    assert values == [0, 0, 0], "part of an unfinished program ran"
    assert res.notices == []


def test_a_program_whose_end_frame_never_arrives_raises_link_error_after_the_receive_timeout():
    from twin.chip import Chip
    from twin.server import TwinServer

    with TwinServer(Chip("dls", 1), receive_timeout=0.2, log=lambda line: None) as srv:
        t = Lossy(host.transport.open_transport(srv.url))
        conn = host.Connection(t, timeout=5)
        p, regs = _three_frame_program(conn)
        t.damage = lambda frames: frames[0] + frames[1]
        t0 = time.monotonic()
        with pytest.raises(host.LinkError, match=r"^fake://lossy: the chip dropped this program: its last "
                                                 r"frame never arrived; the program did not run$") as info:
            conn.run(p)
        assert not isinstance(info.value, LinkTimeout)
        assert 0.2 <= time.monotonic() - t0 < 4
        with host.connect(srv.url) as fresh:
            assert _read_back(fresh, regs)[0] == [0, 0, 0]
        conn.close()


class DropOne(Transport):
    """Loses the next write entirely (`drop = True`), like a line that ate a frame."""

    url = "fake://drop-one"

    def __init__(self):
        self._twin = InProcessTransport("twin:dls")
        self.drop = False

    def write(self, data: bytes) -> None:
        if self.drop:
            self.drop = False
            return
        self._twin.write(data)

    def read(self, timeout: float) -> bytes:
        return self._twin.read(timeout)


def test_the_program_after_a_lost_frame_runs_and_is_answered():
    t = DropOne()
    conn = host.Connection(t, timeout=0.3)
    a = int(conn.regmap.addresses("synapse", "weights")[0])
    t.drop = True
    p = conn.program()
    p.write_words([a], [1])
    with pytest.raises(LinkTimeout):
        conn.run(p)                                 # its only frame was lost: nothing answers
    p = conn.program()
    p.write_words([a], [2])
    ticket = p.read_words([a])
    conn.run(p)                                     # runs on the chip (sequence gap before it)
    assert ticket.values.tolist() == [2]


def test_a_new_client_is_not_blamed_for_the_previous_clients_unfinished_program():
    twin = InProcessTransport("twin:dls")
    # The previous client (not this library) left the first frame of a program, sequence 0.
    twin.write(frame.encode_frame(np.array([wire.encode("barrier", mask=0)], np.uint64), 0, frame.FLAG_START))
    conn = host.Connection(twin, timeout=2)
    assert conn.notices == ["chip side: timeout PROGRAM_END at 0"]


def test_write_is_a_full_value_and_update_keeps_the_other_fields():
    """Program.write: omitted fields take their reset values; Connection.update:
    a read-modify-write that keeps what the chip holds."""
    with host.connect("twin:dls?serial=1") as conn:
        at = host.NeuronOnChip(3)
        prog = conn.program()
        prog.write(at, host.NeuronConfig(refractory=5, readout=1))
        prog.write(at, host.NeuronConfig(enable=1))              # a full value: refractory, readout reset
        t = prog.read(at, host.NeuronConfig)
        conn.run(prog)
        reset = conn.regmap.register("neuron", "config").field("refractory").reset
        assert (t.value.enable, t.value.refractory, t.value.readout) == (1, reset, 0)
        prog = conn.program()
        prog.write(at, host.NeuronConfig(refractory=5, readout=1))
        conn.run(prog)
        written = conn.update(at, host.NeuronConfig, enable=1)   # keeps refractory and readout
        prog = conn.program()
        t = prog.read(at, host.NeuronConfig)
        conn.run(prog)
        assert (t.value.enable, t.value.refractory, t.value.readout) == (1, 5, 1) and t.value == written
        with pytest.raises(ValueError, match="NeuronConfig has no field\\(s\\) colour"):
            conn.update(at, host.NeuronConfig, colour=2)
