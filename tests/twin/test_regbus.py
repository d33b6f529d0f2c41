"""The twin's register bus (twin/regbus.py) against a plain-Python reference.

The reference register file below is built directly from the register map's
blocks, registers and fields (no RangeTable, no NumPy): a dict from address to
value, the access rules of the map, reserved bits (bits outside every field),
legal field maxima and byte enables (bit i enables bits 8i..8i+7).  Each write
is applied on its own, in order, and sees the result of the writes before it;
a rejected write changes nothing.  Random sequences of write and read batches
(hypothesis) must give the same per-access reasons, the same read data and the
same storage in both.
"""
from __future__ import annotations

import bisect

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isa.regmap import register_map
from isa.wire import ErrorReason
from twin.regbus import RegisterBus

PROFILES = ("dls", "hicann", "hx")
MASK32 = 0xFFFFFFFF


# --------------------------------------------------------------------------- reference model
class RefRegisterFile:
    """Plain-Python register file: one entry per register element address."""

    def __init__(self, regmap, overrides: dict[tuple[str, str], int] | None = None):
        self.regmap = regmap
        spans = []
        for block in regmap.blocks:
            for reg in block.registers:
                start = block.base + reg.offset
                spans.append((start, start + max(reg.count, 1), block, reg))
        spans.sort(key=lambda s: s[0])
        self.spans = spans
        self.starts = [s[0] for s in spans]
        self.overrides = {}
        for (bname, rname), value in (overrides or {}).items():
            for start, end, block, reg in spans:
                if block.name == bname and reg.name == rname:
                    for a in range(start, end):
                        self.overrides[a] = value
        self.values: dict[int, int] = {}     # addresses written since the last reset

    @staticmethod
    def reset_word(reg) -> int:
        word = 0
        for f in reg.fields:
            word |= f.reset << f.lsb
        return word

    @staticmethod
    def defined(reg) -> int:
        m = 0
        for f in reg.fields:
            m |= ((1 << f.width) - 1) << f.lsb
        return m

    def locate(self, address: int):
        k = bisect.bisect_right(self.starts, address) - 1
        if k < 0:
            return None
        start, end, block, reg = self.spans[k]
        return (block, reg) if address < end else None

    def reset_value(self, address: int) -> int:
        if address in self.overrides:
            return self.overrides[address]
        return self.reset_word(self.locate(address)[1])

    def get(self, address: int) -> int:
        return self.values.get(address, self.reset_value(address))

    def reset(self) -> None:
        self.values.clear()

    def write(self, address: int, data: int, byte_enables: int) -> int:
        loc = self.locate(address)
        if loc is None:
            return ErrorReason.UNKNOWN_ADDRESS
        _, reg = loc
        if reg.access == "ro":
            return ErrorReason.READ_ONLY
        mask = 0
        for i in range(4):
            if byte_enables >> i & 1:
                mask |= 0xFF << (8 * i)
        if data & mask & ~self.defined(reg) & MASK32:
            return ErrorReason.RESERVED_BITS
        new = (self.get(address) & ~mask & MASK32) | (data & mask)
        for f in reg.fields:
            if (new >> f.lsb) & ((1 << f.width) - 1) > f.limit:
                return ErrorReason.FIELD_RANGE
        self.values[address] = new
        return 0

    def read(self, address: int, byte_enables: int = 0xF) -> tuple[int, int]:
        loc = self.locate(address)
        if loc is None:
            return ErrorReason.UNKNOWN_ADDRESS, 0
        if loc[1].access == "wo":
            return ErrorReason.WRITE_ONLY, 0
        if byte_enables != 0xF:
            return ErrorReason.BYTE_ENABLES, 0
        return 0, self.get(address)


def expected_view(ref: RefRegisterFile, block, reg) -> np.ndarray:
    """What bus.view(block, reg) must hold according to the reference."""
    start = block.base + reg.offset
    n = max(reg.count, 1)
    if start in ref.overrides:        # overrides cover whole registers
        out = np.array([ref.reset_value(start + i) for i in range(n)], dtype=np.int64)
    else:
        out = np.full(n, ref.reset_word(reg), dtype=np.int64)
    for a, v in ref.values.items():
        if start <= a < start + n:
            out[a - start] = v
    return out.reshape(reg.shape) if reg.shape else out


def assert_same_storage(bus: RegisterBus, ref: RefRegisterFile) -> None:
    for block, reg in bus.map.iter_registers():
        got = bus.view(block.name, reg.name).astype(np.int64)
        want = expected_view(ref, block, reg)
        if not np.array_equal(got, want):
            bad = np.flatnonzero(got.ravel() != want.ravel())[:5]
            pytest.fail(f"{block.name}.{reg.name}: elements {bad.tolist()} hold "
                        f"{got.ravel()[bad].tolist()}, reference {want.ravel()[bad].tolist()}")


# --------------------------------------------------------------------------- address pools
def address_pool(regmap) -> list[int]:
    """Interesting addresses: ends and middle of every register array, the
    limited-field registers several times (more duplicates), and unmapped
    addresses around the blocks."""
    ref = RefRegisterFile(regmap)
    pool = set()
    for start, end, block, reg in ref.spans:
        pool.update({start, end - 1, (start + end) // 2})
        for a in (start - 1, end, end + 7):
            if 0 <= a <= MASK32:
                pool.add(a)
    pool.update({0xFFFF_FFFF, 0xFFFF_FFF0, 0x7FFF_FFFF})
    return sorted(pool)


POOLS = {p: address_pool(register_map(p)) for p in PROFILES}
LIMITED = {p: [b.base + r.offset for b, r in register_map(p).iter_registers()
               if any(f.maximum is not None and f.maximum < (1 << f.width) - 1 for f in r.fields)]
           for p in PROFILES}


@st.composite
def data_word(draw, ref: RefRegisterFile, address: int) -> int:
    """Mostly legal-looking words for the register at `address`; sometimes
    noise (reserved bits) or field values at and above the legal maximum."""
    loc = ref.locate(address)
    kind = draw(st.sampled_from(["fields", "fields", "fields", "extreme", "noise"]))
    if loc is None or kind == "noise":
        return draw(st.integers(0, MASK32))
    reg = loc[1]
    word = 0
    for f in reg.fields:
        full = (1 << f.width) - 1
        if kind == "extreme":
            v = draw(st.sampled_from(sorted({0, f.limit, min(f.limit + 1, full), full})))
        else:
            v = draw(st.integers(0, full))
        word |= v << f.lsb
    return word


byte_enables = st.one_of(st.just(0xF), st.integers(0, 15))
examples = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- the equivalence
@pytest.mark.parametrize("profile", PROFILES)
@examples
@given(data=st.data())
def test_random_access_sequences_match_the_reference(profile, data):
    regmap = register_map(profile)
    ref = RefRegisterFile(regmap)
    bus = RegisterBus(regmap)
    # A few addresses per example, so that accesses hit the same registers again.
    pool = POOLS[profile]
    chosen = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=5)
                       | st.lists(st.sampled_from(LIMITED[profile]), min_size=1, max_size=2), label="addresses")
    addr = st.sampled_from(chosen)
    n_batches = data.draw(st.integers(1, 6), label="batches")
    for _ in range(n_batches):
        kind = data.draw(st.sampled_from(["write", "write", "read"]))
        n = data.draw(st.integers(1, 12))
        if kind == "write":
            accesses = []
            for _ in range(n):
                a = data.draw(addr)
                accesses.append((a, data.draw(data_word(ref, a)), data.draw(byte_enables)))
            res = bus.write(np.array([a for a, _, _ in accesses], np.uint64),
                            np.array([d for _, d, _ in accesses], np.uint32),
                            np.array([b for _, _, b in accesses], np.uint8))
            want = [int(ref.write(a, d, b)) for a, d, b in accesses]
            assert res.reason.tolist() == want, f"write batch {accesses}"
        else:
            accesses = [(data.draw(addr), data.draw(byte_enables)) for _ in range(n)]
            res = bus.read(np.array([a for a, _ in accesses], np.uint64),
                           np.array([b for _, b in accesses], np.uint8))
            want = [ref.read(a, b) for a, b in accesses]
            assert res.reason.tolist() == [int(r) for r, _ in want], f"read batch {accesses}"
            assert res.values.tolist() == [v for _, v in want], f"read batch {accesses}"
    assert_same_storage(bus, ref)


# --------------------------------------------------------------------------- targeted cases
def _madc_config(profile):
    rm = register_map(profile)
    return rm.address("madc", "config"), rm.register("madc", "config").field("neuron")


@pytest.mark.parametrize("profile", PROFILES)
def test_rejected_partial_write_does_not_poison_the_next_one(profile):
    """A byte-enabled write that would set an illegal field value is rejected;
    a later write to another byte of the same register is judged against the
    state the rejection left (untouched), not against the rejected value."""
    address, neuron = _madc_config(profile)
    bus = RegisterBus(register_map(profile))
    before = int(bus.read(np.array([address], np.uint64)).values[0])
    high = 0x3FF << neuron.lsb                    # neuron = 1023 > maximum
    res = bus.write(np.array([address, address], np.uint64),
                    np.array([high, 1], np.uint32),          # byte 1 (illegal), then byte 0 (enable=1)
                    np.array([0b0010, 0b0001], np.uint8))
    assert res.reason.tolist() == [ErrorReason.FIELD_RANGE, 0]
    got = int(bus.read(np.array([address], np.uint64)).values[0])
    assert got == (before & ~0xFF) | 1


@pytest.mark.parametrize("profile", PROFILES)
def test_field_maximum_is_the_last_legal_value(profile):
    address, neuron = _madc_config(profile)
    bus = RegisterBus(register_map(profile))
    res = bus.write(np.array([address] * 2, np.uint64),
                    np.array([neuron.limit << neuron.lsb, (neuron.limit + 1) << neuron.lsb], np.uint32),
                    np.array([0xF, 0xF], np.uint8))
    assert res.reason.tolist() == [0, ErrorReason.FIELD_RANGE]
    assert int(bus.read(np.array([address], np.uint64)).values[0]) == neuron.limit << neuron.lsb


@pytest.mark.parametrize("profile", ("dls", "hx"))
def test_capmem_cells_take_1023(profile):
    """1023 (refresh off) is a legal capmem value; 1024 sets a reserved bit."""
    rm = register_map(profile)
    a = rm.address("capmem", "neuron", (0, 0))
    bus = RegisterBus(rm)
    res = bus.write(np.array([a, a], np.uint64), np.array([1023, 1024], np.uint32), np.array([0xF, 0xF], np.uint8))
    assert res.reason.tolist() == [0, ErrorReason.RESERVED_BITS]
    assert bus.view("capmem", "neuron")[0, 0] == 1023


def test_duplicate_full_writes_last_one_wins():
    rm = register_map("hx")
    a = rm.address("synapse", "weights", (1, 255, 63))
    bus = RegisterBus(rm)
    res = bus.write(np.array([a, a, a], np.uint64), np.array([1, 2, 3], np.uint32), np.full(3, 0xF, np.uint8))
    assert res.reason.tolist() == [0, 0, 0]
    assert bus.view("synapse", "weights")[1, 255, 63] == 3


@pytest.mark.parametrize("profile", PROFILES)
def test_reset_restores_reset_values(profile):
    rm = register_map(profile)
    bus = RegisterBus(rm)
    ref = RefRegisterFile(rm)
    for block, reg in rm.iter_registers():
        if reg.access == "ro":
            continue
        start = block.base + reg.offset
        addrs = [start, start + max(reg.count, 1) - 1]
        words = [RefRegisterFile.defined(reg) & 0x5555_5555 for _ in addrs]
        res = bus.write(np.array(addrs, np.uint64), np.array(words, np.uint32), np.full(2, 0xF, np.uint8))
        for a, w, r in zip(addrs, words, res.reason.tolist()):
            assert r == ref.write(a, w, 0xF)
    assert ref.values, "the test wrote nothing"
    bus.reset()
    ref.reset()
    assert_same_storage(bus, ref)


@pytest.mark.parametrize("profile", PROFILES)
def test_chip_id_serial_override_survives_reset_and_is_read_only(profile):
    rm = register_map(profile)
    serial = 0xDEAD_BEEF
    bus = RegisterBus(rm, {("chip_id", "serial"): serial})
    a_id, a_serial = rm.address("chip_id", "id"), rm.address("chip_id", "serial")
    ident = rm.register("chip_id", "id")
    want_id = RefRegisterFile.reset_word(ident)

    def read():
        return bus.read(np.array([a_id, a_serial], np.uint64)).values.tolist()

    assert read() == [want_id, serial]
    res = bus.write(np.array([a_serial], np.uint64), np.array([1], np.uint32), np.array([0xF], np.uint8))
    assert res.reason.tolist() == [ErrorReason.READ_ONLY]
    bus.reset()
    assert read() == [want_id, serial]
    # The profile code in chip_id.id is the profile's own.
    from isa.profiles import PROFILES as P
    assert want_id & 0xFF == P[profile].code


def test_chip_reports_its_serial():
    from twin.chip import Chip

    rm = register_map("dls")
    chip = Chip("dls", serial=77)
    assert chip.bus.read(np.array([rm.address("chip_id", "serial")], np.uint64)).values.tolist() == [77]
    chip.reset()
    assert chip.bus.read(np.array([rm.address("chip_id", "serial")], np.uint64)).values.tolist() == [77]


def test_write_hooks_see_accepted_writes_in_order_with_merged_values():
    rm = register_map("dls")
    bus = RegisterBus(rm)
    seen = []
    bus.on_write("routing", "neuron_label", lambda idx, vals: seen.append((idx.tolist(), vals.tolist())))
    a0 = rm.address("routing", "neuron_label", 0)
    a5 = rm.address("routing", "neuron_label", 5)
    enable = 1 << rm.register("routing", "neuron_label").field("enable").lsb
    bus.write(np.array([a5, a0, 0xFFFF_FFF0, a5], np.uint64),
              np.array([0x1234, 0x0042 | enable, 7, 0xAB00], np.uint32),
              np.array([0xF, 0xF, 0xF, 0b0010], np.uint8))
    # One call for the register, in program order; the partial write shows the merged word.
    assert seen == [([5, 0, 5], [0x1234, 0x0042 | enable, 0xAB34])]


def test_read_hooks_replace_storage_for_their_register():
    rm = register_map("dls")
    bus = RegisterBus(rm)
    bus.on_read("neuron", "spike_counter", lambda idx: (idx + 100).astype(np.uint32))
    addrs = [rm.address("neuron", "spike_counter", 3), rm.address("neuron", "config", 3),
             rm.address("neuron", "spike_counter", 0)]
    res = bus.read(np.array(addrs, np.uint64))
    cfg_reset = RefRegisterFile.reset_word(rm.register("neuron", "config"))
    assert res.values.tolist() == [103, cfg_reset, 100]
