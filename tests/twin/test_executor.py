"""The playback executor (twin/executor.py): programs of raw wire words.

Programs are built with `isa.wire.encode` (and by hand for invalid words); the
expected responses are written out in each test, or, for random programs,
computed by a plain-Python reference interpreter that walks the words one at a
time over the reference register file of tests/twin/test_regbus.py.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isa import wire
from isa.regmap import register_map
from isa.wire import MESSAGES, Direction, ErrorReason
from twin.chip import Chip
from twin.core import LOOPBACK_LATENCY_TICKS as L
from twin.executor import Executor

_spec = importlib.util.spec_from_file_location("_regbus_reference", Path(__file__).with_name("test_regbus.py"))
_regbus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_regbus)
RefRegisterFile, assert_same_storage = _regbus.RefRegisterFile, _regbus.assert_same_storage

E = wire.encode
H = {m.name: m.header for m in MESSAGES}
TO_CHIP = {m.header: m for m in MESSAGES if m.direction is Direction.TO_CHIP}
TO_HOST_HEADERS = [m.header for m in MESSAGES if m.direction is Direction.TO_HOST]
UNKNOWN_HEADERS = [h for h in range(256) if h not in {m.header for m in MESSAGES}]


# --------------------------------------------------------------------------- helpers
def W(address: int, data: int, be: int = 0xF) -> list[int]:
    return [E("omnibus_address", is_read=0, byte_enables=be, address=address), E("omnibus_data", data=data)]


def R(address: int, be: int = 0xF) -> int:
    return E("omnibus_address", is_read=1, byte_enables=be, address=address)


def err(reason, header: int, index: int) -> int:
    return E("error", reason=int(reason), header=header, index=index)


def run(ex: Executor, words) -> list[int]:
    return [int(w) for w in ex.run(np.array(words, dtype=np.uint64))]


def show(words) -> list[str]:
    return [wire.describe(w) for w in words]


def assert_responses(got: list[int], want: list[int]) -> None:
    assert show(got) == show(want)
    assert got == want


def spikes(resp: list[int]) -> list[tuple[int, int]]:
    """(label, time) of every spike response, in response order."""
    out = []
    for w in resp:
        if w >> 56 == H["spike"]:
            out.append(((w >> 32) & 0xFFFF, w & 0xFFFFFFFF))
    return out


def payload_width(msg) -> int:
    return sum(w for _, w in msg.fields)


@pytest.fixture
def dls():
    chip = Chip("dls")
    return chip, Executor(chip), register_map("dls")


def loopback_on(ex: Executor, rm) -> None:
    reg = rm.register("routing", "crossbar")
    word = reg.reset | (1 << reg.field("loopback").lsb)
    assert run(ex, W(rm.address("routing", "crossbar"), word)) == []


# --------------------------------------------------------------------------- register-bus pairing
def test_write_then_read(dls):
    chip, ex, rm = dls
    a = rm.address("neuron", "config", 4)
    resp = run(ex, W(a, 0x0101) + [R(a)])
    assert_responses(resp, [E("read_data", data=0x0101)])


def test_address_without_data_is_rejected(dls):
    chip, ex, rm = dls
    a = rm.address("neuron", "config", 4)
    before = chip.bus.view("neuron", "config").copy()
    resp = run(ex, [W(a, 1)[0], R(a)])
    assert_responses(resp, [err(ErrorReason.MISSING_DATA, H["omnibus_address"], 0),
                            E("read_data", data=int(before[4]))])


def test_orphan_data_is_rejected(dls):
    chip, ex, rm = dls
    resp = run(ex, [E("omnibus_data", data=5), E("timer_reset"), E("omnibus_data", data=6)])
    assert_responses(resp, [err(ErrorReason.ORPHAN_DATA, H["omnibus_data"], 0),
                            err(ErrorReason.ORPHAN_DATA, H["omnibus_data"], 2)])


def test_second_data_word_is_an_orphan(dls):
    chip, ex, rm = dls
    a = rm.address("neuron", "config", 1)
    resp = run(ex, W(a, 1) + [E("omnibus_data", data=0)] + [R(a)])
    assert_responses(resp, [err(ErrorReason.ORPHAN_DATA, H["omnibus_data"], 2), E("read_data", data=1)])


@pytest.mark.parametrize("between", [
    0x7F << 56,                                  # unknown header
    E("read_data", data=0),                      # a chip -> host word sent to the chip
    E("timer_reset") | 1,                        # reserved payload bit
    E("loopback", halt=0, tag=3),                # a valid word of another kind
    E("wait_until", time=0),
], ids=["unknown", "wrong_direction", "reserved", "loopback", "wait_until"])
def test_word_between_address_and_data_rejects_both(dls, between):
    chip, ex, rm = dls
    a = rm.address("neuron", "config", 2)
    before = chip.bus.storage.copy()
    cfg = int(chip.bus.view("neuron", "config")[2])
    addr, data = W(a, 0x1)
    resp = run(ex, [addr, between, data, R(a)])
    h = between >> 56
    middle = []
    if h in UNKNOWN_HEADERS or h in TO_HOST_HEADERS:
        middle = [err(ErrorReason.UNKNOWN_MESSAGE, h, 1)]
    elif between & ~((1 << payload_width(TO_CHIP[h])) - 1) & wire.PAYLOAD_MASK:
        middle = [err(ErrorReason.RESERVED_PAYLOAD, h, 1)]
    elif h == H["loopback"]:
        middle = [E("loopback_echo", halt=0, tag=3)]
    assert_responses(resp, [err(ErrorReason.MISSING_DATA, H["omnibus_address"], 0), *middle,
                            err(ErrorReason.ORPHAN_DATA, H["omnibus_data"], 2),
                            E("read_data", data=cfg)])
    assert np.array_equal(chip.bus.storage, before)


def test_read_address_between_write_address_and_data(dls):
    chip, ex, rm = dls
    a = rm.address("neuron", "config", 2)
    cfg = int(chip.bus.view("neuron", "config")[2])
    addr, data = W(a, 0x1)
    resp = run(ex, [addr, R(a), data])
    assert_responses(resp, [err(ErrorReason.MISSING_DATA, H["omnibus_address"], 0), E("read_data", data=cfg),
                            err(ErrorReason.ORPHAN_DATA, H["omnibus_data"], 2)])


# --------------------------------------------------------------------------- invalid words
@pytest.mark.parametrize("header", UNKNOWN_HEADERS[::17] + [0xFF, 0x00])
def test_unknown_header(dls, header):
    chip, ex, rm = dls
    word = header << 56 | 0x1234
    resp = run(ex, [E("timer_reset"), word, E("loopback", halt=1, tag=9)])
    assert_responses(resp, [err(ErrorReason.UNKNOWN_MESSAGE, header, 1), E("loopback_echo", halt=1, tag=9)])


@pytest.mark.parametrize("header", TO_HOST_HEADERS)
def test_wrong_direction_header(dls, header):
    chip, ex, rm = dls
    resp = run(ex, [header << 56])
    assert_responses(resp, [err(ErrorReason.UNKNOWN_MESSAGE, header, 0)])


@pytest.mark.parametrize("msg", [m for m in TO_CHIP.values() if payload_width(m) < 56], ids=lambda m: m.name)
def test_reserved_payload_bits(dls, msg):
    chip, ex, rm = dls
    before = chip.bus.storage.copy()
    width = payload_width(msg)
    for bit in sorted({width, 55, (width + 55) // 2}):
        word = msg.header << 56 | 1 << bit
        resp = run(ex, [E("barrier", mask=0), word])
        assert_responses(resp, [err(ErrorReason.RESERVED_PAYLOAD, msg.header, 1)])
    assert np.array_equal(chip.bus.storage, before)


def test_error_index_counts_every_word(dls):
    chip, ex, rm = dls
    words = [E("barrier", mask=7)] * 1000 + [0x55 << 56] + W(rm.address("chip_id", "id"), 0)
    resp = run(ex, words)
    assert_responses(resp, [err(ErrorReason.UNKNOWN_MESSAGE, 0x55, 1000),
                            err(ErrorReason.READ_ONLY, H["omnibus_address"], 1001)])


def test_register_errors_name_the_address_word(dls):
    chip, ex, rm = dls
    spike_reset = rm.address("neuron", "spike_counter_reset", 0)
    madc = rm.address("madc", "config")
    neuron = rm.register("madc", "config").field("neuron")
    words = [R(0xFFFF_FFF0), R(spike_reset), R(madc, be=0x3), *W(madc, (neuron.limit + 1) << neuron.lsb),
             *W(madc, 1 << 31), *W(0x7FFF_FFFF, 0), *W(rm.address("chip_id", "serial"), 0)]
    a = H["omnibus_address"]
    assert_responses(run(ex, words), [
        err(ErrorReason.UNKNOWN_ADDRESS, a, 0), err(ErrorReason.WRITE_ONLY, a, 1),
        err(ErrorReason.BYTE_ENABLES, a, 2), err(ErrorReason.FIELD_RANGE, a, 3),
        err(ErrorReason.RESERVED_BITS, a, 5), err(ErrorReason.UNKNOWN_ADDRESS, a, 7),
        err(ErrorReason.READ_ONLY, a, 9)])


# --------------------------------------------------------------------------- order
def test_reads_are_answered_in_issue_order(dls):
    chip, ex, rm = dls
    addrs = [rm.address("routing", "neuron_label", i) for i in range(32)]
    values = [(7 * i + 3) & 0xFFFF for i in range(32)]
    words = [w for a, v in zip(addrs, values) for w in W(a, v)]
    order = np.random.default_rng(1).permutation(32).tolist() * 2
    resp = run(ex, words + [R(addrs[i]) for i in order])
    assert_responses(resp, [E("read_data", data=values[i]) for i in order])


def test_reads_see_writes_before_them_and_not_after(dls):
    chip, ex, rm = dls
    a = rm.address("routing", "neuron_label", 7)
    resp = run(ex, [R(a), *W(a, 1), R(a), *W(a, 2), *W(a, 3), R(a), R(a), *W(a, 4)])
    assert_responses(resp, [E("read_data", data=v) for v in
                            (RefRegisterFile.reset_word(rm.register("routing", "neuron_label")), 1, 3, 3)])
    assert chip.bus.view("routing", "neuron_label")[7] == 4


# Random programs against a sequential reference interpreter.
class RefExecutor:
    """Walks the words one at a time (register bus and control only)."""

    def __init__(self, regmap):
        self.regs = RefRegisterFile(regmap)

    @staticmethod
    def valid(word: int) -> bool:
        msg = TO_CHIP.get(word >> 56)
        return msg is not None and not (word & wire.PAYLOAD_MASK) >> payload_width(msg)

    def run(self, words: list[int]) -> list[int]:
        out = []
        n = len(words)
        for i, w in enumerate(words):
            h = w >> 56
            msg = TO_CHIP.get(h)
            if msg is None:
                out.append(err(ErrorReason.UNKNOWN_MESSAGE, h, i))
                continue
            if not self.valid(w):
                out.append(err(ErrorReason.RESERVED_PAYLOAD, h, i))
                continue
            p = w & wire.PAYLOAD_MASK
            if msg.name == "omnibus_address":
                is_read, be, address = p >> 36 & 1, p >> 32 & 0xF, p & 0xFFFFFFFF
                if is_read:
                    reason, value = self.regs.read(address, be)
                    out.append(err(reason, h, i) if reason else E("read_data", data=value))
                elif i + 1 < n and words[i + 1] >> 56 == H["omnibus_data"] and self.valid(words[i + 1]):
                    reason = self.regs.write(address, words[i + 1] & 0xFFFFFFFF, be)
                    if reason:
                        out.append(err(reason, h, i))
                else:
                    out.append(err(ErrorReason.MISSING_DATA, h, i))
            elif msg.name == "omnibus_data":
                prev = words[i - 1] if i else None
                if not (prev is not None and prev >> 56 == H["omnibus_address"] and self.valid(prev)
                        and not prev >> 36 & 1):
                    out.append(err(ErrorReason.ORPHAN_DATA, h, i))
            elif msg.name == "reset":
                if p & 1:
                    self.regs.reset()
            elif msg.name == "loopback":
                out.append(E("loopback_echo", halt=p >> 16 & 1, tag=p & 0xFFFF))
        return out


def _pool(regmap) -> list[int]:
    """Addresses for random programs: every register's ends, unmapped ones;
    not the link counters (they move with every program), not the blocks
    that produce events on their own (madc.config, routing.crossbar,
    neuron.config: an enabled neuron may spike and count) and not the
    registers whose reads convert analog state (correlation traces, column ADC),
    nor the PPU's registers other than its memory: control and debug start,
    halt and step the core, status and the debug views show its state (the
    instruction word at its pc, say); tests/ppu_exec covers them."""
    skip = {("madc", "config"), ("routing", "crossbar"), ("neuron", "config"),
            ("correlation", "causal"), ("correlation", "acausal"), ("correlation", "membrane")}
    pool = set()
    for b, r in regmap.iter_registers():
        if b.name == "link" or (b.name, r.name) in skip or (b.name.startswith("ppu") and r.name != "memory"):
            continue
        start = b.base + r.offset
        pool.update({start, start + max(r.count, 1) - 1})
    ref = RefRegisterFile(regmap)
    pool.update(a for a in (0xFFFF_FFFF, 0x0000_FFFF, 0x0005_FFFF) if ref.locate(a) is None)
    return sorted(pool)


DLS_POOL = _pool(register_map("dls"))


@st.composite
def program_items(draw, addresses: list[int]) -> list[int]:
    kind = draw(st.sampled_from(["write", "write", "write", "read", "read", "lone_address", "orphan",
                                 "garbage", "loopback", "reset", "control", "wait"]))
    a = draw(st.sampled_from(addresses))
    be = draw(st.one_of(st.just(0xF), st.integers(0, 15)))
    if kind == "write":
        return W(a, draw(st.integers(0, 0xFFFFFFFF) | st.integers(0, 0x3FF) | st.integers(0, 1)), be)
    if kind == "read":
        return [R(a, be)]
    if kind == "lone_address":
        return [W(a, 0, be)[0]]
    if kind == "orphan":
        return [E("omnibus_data", data=draw(st.integers(0, 0xFFFFFFFF)))]
    if kind == "garbage":
        g = draw(st.sampled_from(["unknown", "to_host", "reserved"]))
        if g == "unknown":
            return [draw(st.sampled_from(UNKNOWN_HEADERS)) << 56 | draw(st.integers(0, wire.PAYLOAD_MASK))]
        if g == "to_host":
            return [draw(st.sampled_from(TO_HOST_HEADERS)) << 56]
        msg = draw(st.sampled_from([m for m in TO_CHIP.values() if payload_width(m) < 56]))
        return [msg.header << 56 | 1 << draw(st.integers(payload_width(msg), 55))]
    if kind == "loopback":
        return [E("loopback", halt=draw(st.integers(0, 1)), tag=draw(st.integers(0, 0xFFFF)))]
    if kind == "reset":
        return [E("reset", active=draw(st.integers(0, 1)))]
    if kind == "control":
        return [draw(st.sampled_from([E("timer_reset"), E("barrier", mask=7), E("system_time_init", enable=1)]))]
    return [E("wait_until", time=draw(st.integers(0, 5000)))]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(program_items(DLS_POOL), max_size=30).map(lambda items: [w for i in items for w in i]),
                min_size=1, max_size=3))
def test_random_programs_match_the_reference_interpreter(programs):
    rm = register_map("dls")
    chip = Chip("dls")
    ex = Executor(chip)
    ref = RefExecutor(rm)
    for words in programs:
        assert_responses(run(ex, words), ref.run(words))
    assert_same_storage(chip.bus, ref.regs)


# --------------------------------------------------------------------------- timed input
def test_wait_until_is_a_running_maximum(dls):
    chip, ex, rm = dls
    loopback_on(ex, rm)
    resp = run(ex, [E("timer_reset"), E("wait_until", time=100), E("spike_pack_1", label0=1),
                    E("wait_until", time=50),                      # in the past: no-op
                    E("spike_pack_1", label0=2),
                    E("wait_until", time=100), E("spike_pack_1", label0=3),   # equal: no-op
                    E("wait_until", time=300), E("spike_pack_1", label0=4),
                    E("wait_until", time=1000)])
    assert spikes(resp) == [(1, 100 + L), (2, 100 + L), (3, 100 + L), (4, 300 + L)]
    assert ex.timer == 1000


def test_timer_carries_over_between_programs(dls):
    chip, ex, rm = dls
    loopback_on(ex, rm)
    run(ex, [E("timer_reset"), E("wait_until", time=500)])
    resp = run(ex, [E("wait_until", time=20), E("spike_pack_1", label0=9), E("wait_until", time=600)])
    assert spikes(resp) == [(9, 500 + L)]
    assert ex.timer == 600


def test_spike_packs_expand_label0_first(dls):
    chip, ex, rm = dls
    loopback_on(ex, rm)
    resp = run(ex, [E("timer_reset"), E("wait_until", time=10),
                    E("spike_pack_3", label2=0xC, label1=0xB, label0=0xA),
                    E("spike_pack_2", label1=0xE, label0=0xD),
                    E("spike_pack_1", label0=0xF),
                    E("wait_until", time=20), E("spike_pack_3", label2=3, label1=2, label0=1),
                    E("wait_until", time=100)])
    assert spikes(resp) == [(0xA, 10 + L), (0xB, 10 + L), (0xC, 10 + L), (0xD, 10 + L), (0xE, 10 + L),
                            (0xF, 10 + L), (1, 20 + L), (2, 20 + L), (3, 20 + L)]


def test_loopback_latency_and_label_range(dls):
    chip, ex, rm = dls
    loopback_on(ex, rm)
    times = [0, 1, 7, 1000, 123456]
    words = [E("timer_reset")]
    for k, t in enumerate(times):
        words += [E("wait_until", time=t), E("spike_pack_1", label0=0xFFFF - k)]
    words.append(E("wait_until", time=times[-1] + 10 * L))
    assert spikes(run(ex, words)) == [(0xFFFF - k, t + L) for k, t in enumerate(times)]


def test_no_loopback_without_the_crossbar_switch(dls):
    chip, ex, rm = dls
    resp = run(ex, [E("timer_reset"), E("wait_until", time=10), E("spike_pack_1", label0=1),
                    E("wait_until", time=100)])
    assert resp == []


def test_timer_reset_restarts_event_times(dls):
    chip, ex, rm = dls
    loopback_on(ex, rm)
    resp = run(ex, [E("timer_reset"), E("wait_until", time=100), E("spike_pack_1", label0=1),
                    E("wait_until", time=200), E("timer_reset"), E("wait_until", time=50),
                    E("spike_pack_1", label0=2), E("wait_until", time=70)])
    assert spikes(resp) == [(1, 100 + L), (2, 50 + L)]
    assert ex.timer == 70
    assert chip.now >= 270


def test_spikes_come_in_program_order_with_reads_and_echo(dls):
    chip, ex, rm = dls
    loopback_on(ex, rm)
    a = rm.address("routing", "neuron_label", 0)
    resp = run(ex, [E("timer_reset"), E("wait_until", time=100), E("spike_pack_1", label0=5),
                    E("wait_until", time=200), R(a), E("loopback", halt=1, tag=1)])
    label_reset = RefRegisterFile.reset_word(rm.register("routing", "neuron_label"))
    assert_responses(resp, [E("spike", label=5, time=100 + L), E("read_data", data=label_reset),
                            E("loopback_echo", halt=1, tag=1)])


# --------------------------------------------------------------------------- reset and counters
def test_chip_reset_restores_registers(dls):
    chip, ex, rm = dls
    ref = RefRegisterFile(rm)
    addrs = [rm.address("neuron", "config", 0), rm.address("capmem", "neuron", (3, 5)),
             rm.address("routing", "crossbar"), rm.address("synapse", "weights", (0, 31, 7))]
    words = []
    for a in addrs:
        words += W(a, 1)
    resp = run(ex, words + [R(a) for a in addrs] + [E("reset", active=0)] + [R(a) for a in addrs]
               + [E("reset", active=1)] + [R(a) for a in addrs])
    assert_responses(resp, [E("read_data", data=1)] * 8 + [E("read_data", data=ref.get(a)) for a in addrs])
    assert_same_storage(chip.bus, ref)


def test_link_block_counts_programs_and_word_errors(dls):
    chip, ex, rm = dls
    programs, word_errors = rm.address("link", "programs"), rm.address("link", "word_errors")
    assert run(ex, [R(programs), R(word_errors)]) == [E("read_data", data=0), E("read_data", data=0)]
    run(ex, [0x7F << 56, E("omnibus_data", data=1), R(0xFFFF_FFFF)])           # three errors
    run(ex, [])
    resp = run(ex, [R(programs), R(word_errors)])
    assert_responses(resp, [E("read_data", data=3), E("read_data", data=3)])
    resp = run(ex, [R(programs), R(word_errors)])
    assert_responses(resp, [E("read_data", data=4), E("read_data", data=3)])


def test_chip_reset_keeps_the_link_counters(dls):
    """The link block describes the link, which outlives chip resets (documented in the map)."""
    chip, ex, rm = dls
    run(ex, [0x7F << 56])                      # one program with one rejected word
    resp = run(ex, [E("reset", active=1), R(rm.address("link", "programs")), R(rm.address("link", "word_errors"))])
    assert_responses(resp, [E("read_data", data=1), E("read_data", data=1)])


def test_link_counters_through_a_session():
    """Frames and programs counted when the bytes come through the frame layer."""
    from isa import frame
    from twin.link import LocalLink

    rm = register_map("dls")
    link = LocalLink("dls")
    seq = 0

    def send(words):
        nonlocal seq
        data, seq = frame.encode_frames(np.array(words, np.uint64), seq, frame.FLAG_END | (frame.FLAG_START
                                                                                          if seq == 0 else 0))
        link.write(data)
        dec = frame.FrameDecoder(expect_to_host=True)
        frames, faults = dec.feed(link.read())
        assert not faults
        return [int(w) for f in frames for w in f.words]

    send([E("loopback", halt=1, tag=0)])
    send([0x7F << 56, E("loopback", halt=1, tag=0)])
    link.write(b"\x00" * 5)                                          # five bytes of noise
    resp = send([R(rm.address("link", n)) for n in ("frames", "programs", "word_errors", "bytes_discarded")])
    # Counters as they stand when this program runs: `frames` includes the frame
    # that carries it, `programs` counts the programs run before it.
    assert resp == [E("read_data", data=v) for v in (3, 2, 1, 5)]
    resp = send([R(rm.address("link", n)) for n in ("frames", "programs", "word_errors", "bytes_discarded")])
    assert resp == [E("read_data", data=v) for v in (4, 3, 1, 5)]


# --------------------------------------------------------------------------- link counters in stream order
LINK_NAMES = [r.name for r in register_map("dls").block("link").registers]


def _counter_stream():
    """Programs that read every link counter, between broken frames, all in one
    byte stream.  Returns the stream and, per program, the counters it must
    read: exactly what came before its last byte, whatever came after it."""
    import zlib

    from isa import frame

    rm = register_map("dls")
    reads = [R(rm.address("link", n)) for n in LINK_NAMES]

    def fr(words, seq, flags, version=1):
        body = np.array(words, dtype=np.uint64).astype(">u8").tobytes()
        head = frame.MAGIC + bytes([version, flags]) + seq.to_bytes(4, "big") + (len(words)).to_bytes(4, "big")
        return head + zlib.crc32(head).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    def flip(data, byte):
        b = bytearray(data)
        b[byte] ^= 0x01
        return bytes(b)

    weight = int(rm.addresses("synapse", "weights")[0])
    a = fr(reads + [E("loopback", halt=1, tag=1)], 0, frame.FLAG_START | frame.FLAG_END)
    garbage = bytes([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77])
    bad_crc = flip(fr(W(weight, 1) + [E("barrier", mask=0)], 1, frame.FLAG_END), 20)      # payload CRC
    bad_version = fr(W(weight, 2), 1, frame.FLAG_END, version=2)
    b = fr(reads + [E("loopback", halt=1, tag=2)], 1, frame.FLAG_END)
    stray = fr(W(weight, 3), 2, frame.FLAG_CONT | frame.FLAG_END)   # continues nothing: discarded
    c = fr(reads + [E("loopback", halt=1, tag=3)], 5, frame.FLAG_END)                      # seq 3, 4 lost
    bad_direction = fr(W(weight, 4), 6, frame.FLAG_END | frame.FLAG_TO_HOST)
    d = fr(reads + [E("loopback", halt=1, tag=4)], 6, frame.FLAG_END)
    pieces = [a, garbage, bad_crc, bad_version, b, stray, c, bad_direction, d]
    stream = b"".join(pieces)
    assert stream.count(frame.MAGIC) == len(pieces) - 1, "a stray start marker would change the counts"
    dropped = len(garbage) + len(bad_crc) + len(bad_version)
    zero = dict.fromkeys(LINK_NAMES, 0)
    want = [
        {**zero, "frames": 1},
        {**zero, "frames": 2, "programs": 1, "crc_errors": 1, "bad_version": 1, "bytes_discarded": dropped},
        {**zero, "frames": 4, "programs": 2, "crc_errors": 1, "bad_version": 1, "bytes_discarded": dropped,
         "sequence_gaps": 1},
        {**zero, "frames": 5, "programs": 3, "crc_errors": 1, "bad_version": 1, "wrong_direction": 1,
         "bytes_discarded": dropped + len(bad_direction), "sequence_gaps": 1},
    ]
    return stream, want, weight


def _counters_read(answer: bytes) -> tuple[list[dict], list[tuple]]:
    from isa import frame

    frames, faults = frame.FrameDecoder(expect_to_host=True).feed(answer)
    assert not faults
    words = [int(w) for f in frames for w in f.words]
    got, notes, current = [], [], []
    for w in words:
        msg, f = wire.decode(w, Direction.TO_HOST)
        if msg.name == "read_data":
            current.append(f["data"])
        elif msg.name == "loopback_echo":
            got.append(dict(zip(LINK_NAMES, current)))
            current = []
        else:
            notes.append((msg.name, f["reason"], f["index"]))
    return got, notes


@pytest.mark.parametrize("chunking", ["at_once", "byte_by_byte", "random_chunks"])
def test_a_program_reads_exactly_the_link_counts_before_it(chunking):
    """Faults earlier in the same burst are counted, later ones are not, however
    the bytes are cut into chunks (so every transport reads the same values)."""
    import random

    from twin.link import LocalLink

    stream, want, weight = _counter_stream()
    if chunking == "at_once":
        chunks = [stream]
    elif chunking == "byte_by_byte":
        chunks = [stream[i:i + 1] for i in range(len(stream))]
    else:
        rng = random.Random(7)
        cuts = sorted(rng.sample(range(1, len(stream)), 40))
        chunks = [stream[x:y] for x, y in zip([0] + cuts, cuts + [len(stream)])]
    link = LocalLink("dls")
    for chunk in chunks:
        link.write(chunk)
    got, notes = _counters_read(link.read())
    assert got == want
    assert notes == [("error", ErrorReason.FRAME_CRC, 1), ("error", ErrorReason.FRAME_VERSION, 1),
                     ("error", ErrorReason.FRAME_SEQUENCE, 2),      # the stray CONT frame, discarded
                     ("error", ErrorReason.FRAME_SEQUENCE, 5),      # the gap before program c
                     ("error", ErrorReason.FRAME_DIRECTION, 6)]
    assert link.session.host.chip.link_counters == {**want[-1], "programs": 4}
    # None of the broken frames' writes happened.
    assert link.session.host.chip.bus.read(np.array([weight], dtype=np.uint32)).values.tolist() == [0]


def test_an_oversized_program_is_dropped_and_its_remaining_frames_discarded():
    """A program beyond the playback buffer: `error PROGRAM_OVERSIZED` naming its
    first frame, nothing of it runs, its later CONT frames are discarded (each
    reported), and the next program runs."""
    from isa import frame
    from twin.session import ChipHost, Session

    rm = register_map("dls")
    weight = int(rm.addresses("synapse", "weights")[0])
    host = ChipHost(Chip("dls"))
    session = Session(host, max_program_words=8)
    big = W(weight, 1) + [E("barrier", mask=0)] * 3 + W(weight, 2) + [E("barrier", mask=0)] * 3 + W(weight, 3)
    data = b"".join(frame.encode_frame(np.array(chunk, np.uint64), 10 + k, flags) for k, (chunk, flags) in enumerate([
        (big[:5], frame.FLAG_START), (big[5:10], frame.FLAG_CONT), (big[10:] + [E("loopback", halt=1, tag=1)],
                                                                    frame.FLAG_CONT | frame.FLAG_END)]))
    data += frame.encode_frame(np.array([R(weight), E("loopback", halt=1, tag=2)], np.uint64), 13, frame.FLAG_END)
    frames, faults = frame.FrameDecoder(expect_to_host=True).feed(session.receive(data))
    assert not faults
    assert_responses([int(w) for f in frames for w in f.words], [
        err(ErrorReason.PROGRAM_OVERSIZED, 0, 10), err(ErrorReason.FRAME_SEQUENCE, 0, 12),
        E("read_data", data=0), E("loopback_echo", halt=1, tag=2)])
    assert host.chip.link_counters["programs"] == 1 and host.chip.link_counters["frames"] == 4
