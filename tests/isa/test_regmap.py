"""Register maps of every chip profile (isa/regmap/).

Layout properties are recomputed here from the blocks and registers directly,
not through RegisterMap.check() or the range table, so that a bug in those
cannot hide a bug in a map.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isa.profiles import PROFILES
from isa.regmap import Block, Field, Register, RegisterMap, register_map

NAMES = sorted(PROFILES)
per_profile = pytest.mark.parametrize("name", NAMES)
examples = settings(max_examples=200, deadline=None)


def spans(rm: RegisterMap) -> list[tuple[int, int, Block, Register]]:
    """(first address, element count, block, register) of every register."""
    return [(b.base + r.offset, max(r.count, 1), b, r) for b in rm.blocks for r in b.registers]


def reference_lookup(rm: RegisterMap, address: int):
    hits = [(b, r, address - start) for start, n, b, r in spans(rm) if start <= address < start + n]
    assert len(hits) <= 1, f"{address:#x} mapped twice"
    return hits[0] if hits else None


ALL_REGISTERS = [(name, b.name, r.name) for name in NAMES
                 for b in register_map(name).blocks for r in b.registers]


# --------------------------------------------------------------------------- consistency
@per_profile
def test_check_reports_no_problems(name):
    assert register_map(name).check() == []


@per_profile
def test_no_two_registers_overlap(name):
    rm = register_map(name)
    ordered = sorted(spans(rm), key=lambda s: s[0])
    for (s1, n1, b1, r1), (s2, _, b2, r2) in zip(ordered, ordered[1:]):
        assert s1 + n1 <= s2, f"{b1.name}.{r1.name} [{s1:#x}+{n1}] overlaps {b2.name}.{r2.name} at {s2:#x}"
    assert all(0 <= s and s + n <= 1 << 32 for s, n, _, _ in ordered)


@per_profile
def test_names_are_unique(name):
    rm = register_map(name)
    assert len({b.name for b in rm.blocks}) == len(rm.blocks)
    for b in rm.blocks:
        assert len({r.name for r in b.registers}) == len(b.registers), b.name
        for r in b.registers:
            assert len({f.name for f in r.fields}) == len(r.fields), f"{b.name}.{r.name}"


@per_profile
def test_fields_inside_32_bits_and_disjoint(name):
    for b, r in register_map(name).iter_registers():
        used = 0
        assert r.fields, f"{b.name}.{r.name} has no fields"
        for f in r.fields:
            where = f"{b.name}.{r.name}.{f.name}"
            assert f.width >= 1 and f.lsb >= 0 and f.lsb + f.width <= 32, where
            bits = ((1 << f.width) - 1) << f.lsb
            assert not used & bits, f"{where} overlaps another field"
            used |= bits


@per_profile
def test_reset_values_fit(name):
    for b, r in register_map(name).iter_registers():
        word = 0
        for f in r.fields:
            where = f"{b.name}.{r.name}.{f.name}"
            assert 0 <= f.reset < 1 << f.width, where
            if f.maximum is not None:
                assert 0 <= f.maximum < 1 << f.width, where
                assert f.reset <= f.maximum, where
            word |= f.reset << f.lsb
        assert r.reset == word < 1 << 32
        assert r.encode() == word
        assert r.decode(word) == {f.name: f.reset for f in r.fields}


def test_check_finds_broken_maps():
    """check() itself must be able to fail."""
    ok = Field("x", 0, 4, "")
    rm = RegisterMap("dls", (
        Block("a", 0x10, (Register("r", 0, (ok,), "", shape=(4,)),), ""),
        Block("b", 0x12, (Register("s", 0, (Field("wide", 30, 4, ""), Field("y", 0, 2, ""),
                                             Field("z", 1, 2, ""), Field("w", 4, 2, "", reset=4),
                                             Field("m", 8, 2, "", maximum=7)), ""),), ""),
    ))
    assert rm.check() == [
        "a.r overlaps b.s",
        "b.s.wide: bits 30+4 outside 0..31",
        "b.s.z: overlaps another field",
        "b.s.w: reset 4 outside 0..3",
        "b.s.m: maximum 7 does not fit 2 bits",
    ]


# --------------------------------------------------------------------------- known facts (the chips' documented register fields)
def _ppu_fields_match_design(rm, block):
    control = rm.register(block, "control")
    assert {n: (control.field(n).lsb, control.field(n).width)
            for n in ("inhibit_reset", "force_clock_on", "force_clock_off")} == {
        "inhibit_reset": (0, 1), "force_clock_on": (1, 1), "force_clock_off": (2, 1)}
    sleeping = rm.register(block, "status").field("sleeping")
    assert (sleeping.lsb, sleeping.width) == (0, 1)
    assert rm.register(block, "status").access == "ro"


def test_dls_ppu_addresses():
    rm = register_map("dls")
    p = PROFILES["dls"]
    assert rm.address("ppu", "control") == 0x0002_0000
    assert rm.address("ppu", "status") == 0x0002_0001
    assert rm.address("ppu", "memory", 0) == 0
    last = p.ppu_memory_bytes // 4 - 1
    assert rm.address("ppu", "memory", last) == last
    assert rm.register("ppu", "memory").count == p.ppu_memory_bytes // 4
    _ppu_fields_match_design(rm, "ppu")


@pytest.mark.parametrize("block, base", [("ppu_top", 0x0280_0000), ("ppu_bottom", 0x0380_0000)])
def test_hx_ppu_addresses(block, base):
    rm = register_map("hx")
    p = PROFILES["hx"]
    assert rm.address(block, "memory", 0) == base
    assert rm.address(block, "memory", 123) == base + 123
    assert rm.register(block, "memory").count == p.ppu_memory_bytes // 4
    assert rm.address(block, "control") == base | 0x0020_0000
    assert rm.address(block, "status") == base | 0x0020_0001
    _ppu_fields_match_design(rm, block)


def test_hicann_has_no_ppu():
    rm = register_map("hicann")
    assert not any(b.name.startswith("ppu") for b in rm.blocks)


@per_profile
def test_synapse_words_pack_four_synapses(name):
    p = PROFILES[name]
    rm = register_map(name)
    weights, labels = rm.register("synapse", "weights"), rm.register("synapse", "labels")
    assert weights.shape == labels.shape == (p.synapse_arrays, p.rows, p.columns // 4)
    for k in range(4):
        w, lab = weights.field(f"weight{k}"), labels.field(f"label{k}")
        assert (w.lsb, w.width) == (8 * k, p.weight_bits)
        assert (lab.lsb, lab.width) == (8 * k, p.label_bits)


@per_profile
def test_chip_id_reports_the_profile(name):
    rm = register_map(name)
    ident = rm.register("chip_id", "id")
    assert ident.decode(ident.reset)["profile"] == PROFILES[name].code
    assert ident.access == "ro"


def test_unknown_profile():
    with pytest.raises(ValueError, match=r"^unknown chip profile 'bss3'; choose one of: "):
        register_map("bss3")


# --------------------------------------------------------------------------- addressing
@st.composite
def elements(draw, name=None):
    if name is None:
        name = draw(st.sampled_from(NAMES))
    rm = register_map(name)
    b = draw(st.sampled_from(rm.blocks))
    r = draw(st.sampled_from(b.registers))
    return rm, b, r, draw(st.integers(0, max(r.count, 1) - 1))


@examples
@given(elements())
def test_lookup_inverts_address(element):
    rm, b, r, index = element
    addr = rm.address(b.name, r.name, index)
    assert addr == b.base + r.offset + index
    loc = rm.lookup(addr)
    assert (loc.block, loc.register, loc.index) == (b, r, index)
    assert loc.address == addr
    if r.shape:
        tup = tuple(int(i) for i in np.unravel_index(index, r.shape))
        assert rm.address(b.name, r.name, tup) == addr
        assert str(loc) == f"{b.name}.{r.name}[{', '.join(map(str, tup))}]"
    else:
        assert str(loc) == f"{b.name}.{r.name}"
    assert rm.describe(addr) == f"{addr:#010x} ({loc})"


@st.composite
def probe_addresses(draw):
    """Uniform 32-bit addresses and the edges of every register span."""
    name = draw(st.sampled_from(NAMES))
    rm = register_map(name)
    edges = sorted({a for s, n, _, _ in spans(rm) for a in (s - 1, s, s + n - 1, s + n) if 0 <= a < 1 << 32})
    addr = st.one_of(st.integers(0, (1 << 32) - 1), st.sampled_from(edges))
    return rm, draw(st.lists(addr, min_size=1, max_size=50))


@examples
@given(probe_addresses())
def test_range_table_resolve_agrees_with_lookup(probe):
    rm, addresses = probe
    table = rm.ranges
    k, slot = table.resolve(np.array(addresses, dtype=np.uint64))
    for a, kk, ss in zip(addresses, k.tolist(), slot.tolist()):
        ref = reference_lookup(rm, a)
        loc = rm.lookup(a)
        if ref is None:
            assert loc is None and kk == -1 and ss == -1, f"{a:#x}"
            assert rm.describe(a) == f"{a:#010x} (unmapped)"
        else:
            b, r, index = ref
            assert (loc.block, loc.register, loc.index) == ref
            assert table.locations[kk] == (b, r)
            assert int(table.start[kk]) == b.base + r.offset
            assert ss == int(table.slot[kk]) + index
            assert table.reset[kk] == r.reset and table.defined[kk] == r.defined_mask
            assert ("rw", "ro", "wo")[table.access[kk]] == r.access


@per_profile
def test_storage_slots_are_a_bijection(name):
    rm = register_map(name)
    t = rm.ranges
    total = sum(n for _, n, _, _ in spans(rm))
    assert t.slots == total
    covered = np.concatenate([np.arange(s, s + n) for s, n in zip(t.slot.tolist(), t.count.tolist())])
    assert np.array_equal(np.sort(covered), np.arange(total))
    # every mapped address resolves to its own slot
    addrs = np.concatenate([np.arange(s, s + n, dtype=np.uint64) for s, n, _, _ in spans(rm)])
    k, slot = t.resolve(addrs)
    assert (k >= 0).all()
    assert len(np.unique(slot)) == total


@per_profile
def test_addresses_of_a_register_array(name):
    rm = register_map(name)
    for b, r in rm.iter_registers():
        if not r.shape:
            continue
        all_addr = rm.addresses(b.name, r.name)
        assert all_addr.tolist() == list(range(b.base + r.offset, b.base + r.offset + r.count))
        some = [0, r.count - 1, r.count // 2]
        assert rm.addresses(b.name, r.name, some).tolist() == [rm.address(b.name, r.name, i) for i in some]


def test_index_errors():
    rm = register_map("hx")
    r = rm.register("synapse", "weights")
    shape = r.shape
    with pytest.raises(IndexError, match=rf"^weights: index \(0, 0\) needs 3 components for shape {re.escape(str(shape))}$"):
        rm.address("synapse", "weights", (0, 0))
    bad = (0, shape[1], 0)
    with pytest.raises(IndexError, match=rf"^weights: index {re.escape(str(bad))} outside shape {re.escape(str(shape))}$"):
        rm.address("synapse", "weights", bad)
    with pytest.raises(IndexError, match=rf"^weights: index {r.count} outside 0\.\.{r.count - 1}$"):
        rm.address("synapse", "weights", r.count)
    with pytest.raises(IndexError, match=rf"^synapse\.weights: indices outside 0\.\.{r.count - 1}$"):
        rm.addresses("synapse", "weights", [0, -1])
    with pytest.raises(IndexError, match=r"^id: index 1 outside 0\.\.0$"):
        rm.address("chip_id", "id", 1)


def test_unknown_names():
    rm = register_map("dls")
    with pytest.raises(KeyError, match=r"^\"dls has no block 'nope'; blocks: ppu, "):
        rm.block("nope")
    with pytest.raises(KeyError, match=r"^\"block neuron has no register 'nope'; registers: config, "):
        rm.register("neuron", "nope")
    with pytest.raises(KeyError, match=r"^\"register config has no field 'nope'; fields: enable, "):
        rm.register("neuron", "config").field("nope")
    assert rm.has("neuron") and rm.has("neuron", "config")
    assert not rm.has("nope") and not rm.has("neuron", "nope")


# --------------------------------------------------------------------------- field codec
@st.composite
def register_values(draw):
    name, block, reg = draw(st.sampled_from(ALL_REGISTERS))
    r = register_map(name).register(block, reg)
    values = draw(st.fixed_dictionaries({}, optional={f.name: st.integers(0, f.limit) for f in r.fields}))
    return r, values


@examples
@given(register_values())
def test_register_encode_decode_round_trip(case):
    r, values = case
    word = r.encode(**values)
    assert 0 <= word < 1 << 32
    assert word & ~r.defined_mask == 0
    expected = {f.name: values.get(f.name, f.reset) for f in r.fields}
    assert r.decode(word) == expected
    assert r.encode(**r.decode(word)) == word
    # independent packing
    assert word == sum(v << r.field(n).lsb for n, v in expected.items())
    # decode ignores reserved bits
    assert r.decode(word | (~r.defined_mask & 0xFFFF_FFFF)) == expected


FIELD_CASES = sorted({(name, block, reg, f.name) for name, block, reg in ALL_REGISTERS
                      for f in register_map(name).register(block, reg).fields})


@pytest.mark.parametrize("name, block, reg, fname", FIELD_CASES,
                         ids=[".".join(c) for c in FIELD_CASES])
def test_register_field_range_errors(name, block, reg, fname):
    r = register_map(name).register(block, reg)
    f = r.field(fname)
    for bad in (f.limit + 1, -1):
        text = rf"^{re.escape(reg)}\.{re.escape(fname)}={bad} outside 0\.\.{f.limit}$"
        with pytest.raises(ValueError, match=text):
            r.encode(**{fname: bad})
    assert r.decode(r.encode(**{fname: f.limit}))[fname] == f.limit


def test_register_unknown_field_is_rejected():
    r = register_map("dls").register("neuron", "config")
    with pytest.raises(KeyError, match=r"^'register config has no field\(s\) bogus'$"):
        r.encode(bogus=1)


def test_capmem_limits_follow_the_profile():
    rm = register_map("hx")
    p = PROFILES["hx"]
    cell = rm.register("capmem", "neuron")
    assert cell.shape == (p.neurons, len(p.neuron_cells))
    assert cell.field("value").limit == 1023                 # 1023 disables refresh
    with pytest.raises(ValueError):
        cell.encode(value=1024)


def test_identification_blocks_are_the_same_on_every_generation():
    """A host reads chip_id before it knows the profile (host.connection)."""
    from isa.regmap import CHIP_ID_BASE, LINK_BASE
    for block, base in (("chip_id", CHIP_ID_BASE), ("link", LINK_BASE)):
        layouts = set()
        for name in PROFILES:
            b = register_map(name).block(block)
            assert b.base == base
            layouts.add(tuple((r.name, r.offset, r.access, tuple((f.name, f.lsb, f.width) for f in r.fields))
                              for r in b.registers))
        assert len(layouts) == 1, f"{block} differs between profiles"


def test_lanes_pack_and_unpack_synapse_bytes():
    """Synapse k of a quad sits in byte k (hand-computed words)."""
    reg = register_map("dls").register("synapse", "weights")
    words = reg.pack_lanes("weight", [[1, 2, 3, 63, 0, 0, 0, 5]])
    assert words.tolist() == [[0x3F030201, 0x05000000]]
    assert reg.unpack_lanes("weight", words).tolist() == [[1, 2, 3, 63, 0, 0, 0, 5]]
    with pytest.raises(ValueError, match=r"^weights\.weight\*: values outside 0\.\.63$"):
        reg.pack_lanes("weight", [64, 0, 0, 0])
    with pytest.raises(KeyError):
        reg.lanes("label")
