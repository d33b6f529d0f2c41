"""Configuration containers (host/containers.py) against the register map.

The map is the one source of truth: container field names must be the
register's field names, None fields take the map's reset values, and the
words are recomputed here from the map's field positions.
"""
from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import host
from host import containers
from host.containers import RegisterContainer
from isa.profiles import PROFILES
from isa.regmap import register_map

REGISTER_CONTAINERS = sorted((c for c in vars(containers).values()
                              if inspect.isclass(c) and issubclass(c, RegisterContainer)
                              and c is not RegisterContainer), key=lambda c: c.__name__)


def map_registers(regmap, cls):
    """Every register of the map a container class stands for (BLOCK "ppu"
    means each PPU block of the chip)."""
    if regmap.has(cls.BLOCK, cls.REGISTER):
        return [regmap.register(cls.BLOCK, cls.REGISTER)]
    if cls.BLOCK == "ppu":
        return [b.register(cls.REGISTER) for b in regmap.blocks if b.name.startswith("ppu")]
    return []


ALL_CASES = [(p, c) for p in PROFILES for c in REGISTER_CONTAINERS]
CASES = [(p, c) for p, c in ALL_CASES if map_registers(register_map(p), c)]
per_case = pytest.mark.parametrize("profile, cls", CASES, ids=[f"{p}-{c.__name__}" for p, c in CASES])


def one_register(profile, cls):
    return map_registers(register_map(profile), cls)[0]


def test_only_chips_without_a_ppu_or_correlation_sensors_lack_container_registers():
    missing = {(p, c) for p, c in ALL_CASES if (p, c) not in CASES}
    assert missing == {(p, c) for p, c in ALL_CASES
                       if (c.BLOCK == "ppu" and PROFILES[p].ppus == 0)
                       or (c.BLOCK == "correlation" and not PROFILES[p].correlation)}
    assert {p for p, _ in missing} == {"hicann"}


def word_of(reg, values: dict[str, int]) -> int:
    word = 0
    for f in reg.fields:
        word |= values[f.name] << f.lsb
    return word


def test_every_register_container_is_found():
    exported = {getattr(host, n) for n in host.__all__}
    assert {c for c in exported if inspect.isclass(c) and issubclass(c, RegisterContainer)} \
        == set(REGISTER_CONTAINERS)
    assert len(REGISTER_CONTAINERS) >= 12


@per_case
def test_field_names_are_the_register_fields(profile, cls):
    regs = map_registers(register_map(profile), cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for reg in regs:
        assert names == [f.name for f in reg.fields]


@pytest.mark.parametrize("profile", PROFILES)
def test_parameter_cells_name_the_value_field(profile):
    rm = register_map(profile)
    block = "capmem" if PROFILES[profile].param_memory == "capmem" else "floating_gate"
    for cls, reg in ((host.CapMemCell, "neuron"), (host.CapMemGlobalCell, "global"), (host.CapMemConfig, "config")):
        assert [f.name for f in dataclasses.fields(cls)] == [f.name for f in rm.register(block, reg).fields]
        assert cls.registers(rm) == [(block, reg)]


@per_case
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_encode_decode_round_trip(profile, cls, data):
    reg = one_register(profile, cls)
    rm = register_map(profile)
    values = {f.name: data.draw(st.integers(0, f.limit), label=f.name) for f in reg.fields}
    c = cls(**values)
    assert c.encode(rm) == [word_of(reg, values)]
    assert cls.decode(rm, np.array([word_of(reg, values)], np.uint32)) == c


@per_case
def test_none_fields_take_the_reset_value(profile, cls):
    reg = one_register(profile, cls)
    rm = register_map(profile)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    want = {f.name: f.reset if defaults[f.name] is None else defaults[f.name] for f in reg.fields}
    assert cls().encode(rm) == [word_of(reg, want)]
    # One field set, the others from the map.
    first = reg.fields[0]
    value = 0 if want[first.name] else first.limit
    assert cls(**{first.name: value}).encode(rm) == [word_of(reg, {**want, first.name: value})]


BOUNDED = [(p, c) for p, c in CASES if any(f.limit < (1 << 32) - 1 for f in one_register(p, c).fields)]


@pytest.mark.parametrize("profile, cls", BOUNDED, ids=[f"{p}-{c.__name__}" for p, c in BOUNDED])
def test_out_of_range_field_names_the_range(profile, cls):
    reg = one_register(profile, cls)
    rm = register_map(profile)
    f = [f for f in reg.fields if f.limit < (1 << 32) - 1][-1]
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: {reg.name}\.{f.name}={f.limit + 1} "
                                         rf"outside 0\.\.{f.limit}$"):
        cls(**{f.name: f.limit + 1}).encode(rm)


def test_madc_neuron_limit_is_the_neuron_count():
    rm = register_map("dls")
    assert host.MADCConfig(neuron=31).encode(rm)
    with pytest.raises(ValueError, match=r"^MADCConfig: config\.neuron=32 outside 0\.\.31$"):
        host.MADCConfig(neuron=32).encode(rm)


@pytest.mark.parametrize("profile", PROFILES)
def test_parameter_cell_words(profile):
    rm = register_map(profile)
    assert host.CapMemCell(1023).encode(rm) == [1023]
    assert host.CapMemGlobalCell(7).encode(rm) == [7]
    assert host.CapMemCell.decode(rm, [513]) == host.CapMemCell(513)
    with pytest.raises(ValueError, match=r"^CapMemCell: neuron\.value=1024 outside 0\.\.1023$"):
        host.CapMemCell(1024).encode(rm)


# --------------------------------------------------------------------------- synapses
def quad_words(profile, weights, labels, calib_amp, calib_time):
    p = PROFILES[profile]
    w = lab = 0
    for k in range(4):
        w |= (weights[k] | calib_amp[k] << p.weight_bits) << (8 * k)
        lab |= (labels[k] | calib_time[k] << p.label_bits) << (8 * k)
    return [w, lab]


@pytest.mark.parametrize("profile", PROFILES)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_synapse_quad_round_trip(profile, data):
    p = PROFILES[profile]
    rm = register_map(profile)
    four = lambda bits: st.tuples(*[st.integers(0, (1 << bits) - 1)] * 4)
    w, lab = data.draw(four(p.weight_bits)), data.draw(four(p.label_bits))
    ca, ct = data.draw(four(8 - p.weight_bits)), data.draw(four(8 - p.label_bits))
    q = host.SynapseQuad(w, lab, ca, ct)
    words = quad_words(profile, w, lab, ca, ct)
    assert q.encode(rm) == words
    assert host.SynapseQuad.decode(rm, np.array(words)) == q


@pytest.mark.parametrize("profile", PROFILES)
def test_synapse_quad_weight_range(profile):
    p = PROFILES[profile]
    rm = register_map(profile)
    with pytest.raises(ValueError, match=rf"^weights\.weight2={1 << p.weight_bits} outside "
                                         rf"0\.\.{(1 << p.weight_bits) - 1}$"):
        host.SynapseQuad(weights=(0, 0, 1 << p.weight_bits, 0)).encode(rm)


@pytest.mark.parametrize("profile", PROFILES)
def test_synapse_words_and_values(profile):
    p = PROFILES[profile]
    rm = register_map(profile)
    rng = np.random.default_rng(0)
    weights = rng.integers(0, 1 << p.weight_bits, (3, p.columns))
    labels = rng.integers(0, 1 << p.label_bits, (3, p.columns))
    got = host.synapse_words(rm, weights, labels)
    assert got.shape == (2, 3, p.quads_per_row)
    for r in range(3):
        for q in range(p.quads_per_row):
            want = quad_words(profile, weights[r, 4 * q:4 * q + 4], labels[r, 4 * q:4 * q + 4], [0] * 4, [0] * 4)
            assert [int(got[0, r, q]), int(got[1, r, q])] == want
    w, lab = host.synapse_values(rm, got[0], got[1])
    assert np.array_equal(w, weights) and np.array_equal(lab, labels)
    over = weights + (1 << p.weight_bits)                      # every weight beyond the field: named by the first
    with pytest.raises(ValueError, match=rf"^{profile}: weights must lie in 0\.\.{(1 << p.weight_bits) - 1}; "
                                         rf"{over.size} do not, the first at row 0, column 0: {over[0, 0]}$"):
        host.synapse_words(rm, over, labels)
    row = host.SynapseRow(weights[1], labels[1])
    assert host.SynapseRow.decode(rm, np.array(row.encode(rm))) == row


# --------------------------------------------------------------------------- writes against a reference
@pytest.fixture(scope="module")
def conn():
    with host.connect("twin:hx") as c:
        yield c


def written(prog) -> list[tuple[int, int]]:
    """(address, data) of every write in the program."""
    w = prog.words().tolist()
    assert len(w) % 2 == 0
    return [(w[i] & 0xFFFFFFFF, w[i + 1] & 0xFFFFFFFF) for i in range(0, len(w), 2)]


def test_write_with_reference_sends_only_differing_words(conn):
    rm = conn.regmap
    coord = host.SynapseQuadOnChip(row=3, quad=5, array=1)
    old = host.SynapseQuad(weights=(1, 2, 3, 4), labels=(5, 6, 7, 8))
    new = host.SynapseQuad(weights=(1, 2, 3, 4), labels=(5, 6, 7, 9))
    p = conn.program()
    p.write(coord, new, reference=old)
    assert written(p) == [(rm.address("synapse", "labels", (1, 3, 5)), quad_words("hx", (1, 2, 3, 4),
                                                                                 (5, 6, 7, 9), [0] * 4, [0] * 4)[1])]
    p = conn.program()
    p.write(coord, new, reference=new)
    assert len(p) == 0
    p = conn.program()
    p.write(coord, new)
    assert [a for a, _ in written(p)] == [rm.address("synapse", "weights", (1, 3, 5)),
                                          rm.address("synapse", "labels", (1, 3, 5))]
    with pytest.raises(TypeError, match=r"^reference is a NeuronConfig, not a SynapseQuad$"):
        conn.program().write(coord, new, reference=host.NeuronConfig())


def test_write_with_reference_row(conn):
    rm = conn.regmap
    p = PROFILES["hx"]
    w = np.zeros(p.columns, np.int64)
    lab = np.zeros(p.columns, np.int64)
    w2 = w.copy()
    w2[[0, 1, 200]] = 5
    prog = conn.program()
    prog.write(host.SynapseRowOnChip(row=7), host.SynapseRow(w2, lab), reference=host.SynapseRow(w, lab))
    assert written(prog) == [(rm.address("synapse", "weights", (0, 7, 0)), 5 | 5 << 8),
                             (rm.address("synapse", "weights", (0, 7, 50)), 5)]


def test_register_container_written_and_read_back(conn):
    p = conn.program()
    cfg = host.NeuronConfig(enable=1, refractory=200)
    p.write(host.NeuronOnChip(511), cfg)
    t = p.read(host.NeuronOnChip(511), host.NeuronConfig)
    pc = p.read(host.PPUOnChip(1), host.PPUControl)
    p.write(host.PPUOnChip(1), host.PPUControl(inhibit_reset=0, force_clock_off=1))
    pc2 = p.read(host.PPUOnChip(1), host.PPUControl)
    pc0 = p.read(host.PPUOnChip(0), host.PPUControl)
    conn.run(p)
    reg = conn.regmap.register("neuron", "config")
    assert t.value == host.NeuronConfig(**{f.name: f.reset for f in reg.fields} | {"enable": 1, "refractory": 200})
    assert pc.value == host.PPUControl(0, 0, 0)
    assert pc2.value == host.PPUControl(0, 0, 1)
    assert pc0.value == host.PPUControl(0, 0, 0)


def test_errors_name_the_cause():
    """A non-integer field value, a container at the wrong kind of coordinate,
    a cell value out of range: each message says what is wrong and where."""
    rm = register_map("dls")
    with pytest.raises(ValueError, match=r"^NeuronConfig: config\.enable=1\.5 is not an integer \(a field holds 0\.\.1\)$"):
        host.NeuronConfig(enable=1.5).encode(rm)
    with pytest.raises(host.CoordinateError, match=r"^SynapseDriverOnChip does not address neuron\.config "
                                                   r"\(NeuronConfig\): that register is indexed by 1 number"):
        host.SynapseDriverOnChip(0, 0).addresses(rm, host.NeuronConfig)
