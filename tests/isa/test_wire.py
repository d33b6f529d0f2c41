"""The wire dictionary and its two codecs (isa/wire.py).

Every message of MESSAGES is covered automatically: field values are drawn from
the widths in the table, the reference layout is recomputed here from the
module docstring's rule (8-bit header on top, fields most significant first,
the last field at bit 0, everything in between reserved), and the bulk NumPy
path is checked against the single-message path.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isa import wire
from isa.wire import MESSAGES, Direction, WireError

BY_NAME = {m.name: m for m in MESSAGES}
FIELD_CASES = [(m, fname, width) for m in MESSAGES for fname, width in m.fields]

per_message = pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: m.name)
per_field = pytest.mark.parametrize("msg, fname, width", FIELD_CASES,
                                    ids=[f"{m.name}.{f}" for m, f, _ in FIELD_CASES])
examples = settings(max_examples=60, deadline=None)


# --------------------------------------------------------------------------- helpers
def values_for(msg) -> st.SearchStrategy[dict[str, int]]:
    """Legal field values of `msg`, from the widths in its table entry."""
    return st.fixed_dictionaries({name: st.integers(0, (1 << width) - 1) for name, width in msg.fields})


def reference_word(msg, values: dict[str, int]) -> int:
    """The layout of the module docstring, computed without the codec."""
    word = msg.header << 56
    pos = 0
    for name, width in reversed(msg.fields):      # last field sits at bit 0
        word |= values[name] << pos
        pos += width
    return word


def raises_wire_error(fn, *args) -> bool:
    try:
        fn(*args)
    except WireError:
        return True
    return False


any_message = st.sampled_from(MESSAGES).flatmap(lambda m: st.tuples(st.just(m), values_for(m)))


# --------------------------------------------------------------------------- the table
def test_headers_and_names_are_unique_and_fit_the_header_byte():
    headers = [m.header for m in MESSAGES]
    names = [m.name for m in MESSAGES]
    assert len(set(headers)) == len(headers)
    assert len(set(names)) == len(names)
    assert all(0 <= h < 256 for h in headers)


@per_message
def test_field_names_are_unique_and_payload_fits(msg):
    names = [n for n, _ in msg.fields]
    assert len(set(names)) == len(names), f"{msg.name}: duplicate field names {names}"
    assert all(w >= 1 for _, w in msg.fields)
    assert sum(w for _, w in msg.fields) <= 56


def test_both_directions_are_present():
    assert {m.direction for m in MESSAGES} == {Direction.TO_CHIP, Direction.TO_HOST}


# --------------------------------------------------------------------------- single path
@per_message
@examples
@given(data=st.data())
def test_encode_decode_encode(msg, data):
    values = data.draw(values_for(msg))
    word = wire.encode(msg.name, **values)
    assert isinstance(word, int)
    assert word == reference_word(msg, values)
    decoded, fields = wire.decode(word)
    assert decoded is msg
    assert fields == values
    assert wire.encode(decoded.name, **fields) == word
    # Decoding with the message's own direction is accepted.
    assert wire.decode(word, msg.direction)[1] == values


@per_message
@examples
@given(data=st.data())
def test_decode_accepts_numpy_words(msg, data):
    """Words coming out of the frame layer are numpy uint64 scalars."""
    values = data.draw(values_for(msg))
    word = wire.encode(msg.name, **values)
    decoded, fields = wire.decode(np.uint64(word))
    assert decoded is msg and fields == values
    assert all(type(v) is int for v in fields.values())


@per_message
def test_extreme_values_round_trip(msg):
    for fill in (0, 1):
        values = {n: fill * ((1 << w) - 1) for n, w in msg.fields}
        word = wire.encode(msg.name, **values)
        assert word == reference_word(msg, values)
        assert wire.decode(word)[1] == values


# --------------------------------------------------------------------------- bulk path
@per_message
@examples
@given(data=st.data())
def test_encode_bulk_equals_single_encode(msg, data):
    rows = data.draw(st.lists(values_for(msg), min_size=1, max_size=20))
    expected = [wire.encode(msg.name, **r) for r in rows]
    if msg.fields:
        arrays = {n: np.array([r[n] for r in rows]) for n in msg.field_names}
        got = wire.encode_bulk(msg.name, **arrays)
    else:
        got = wire.encode_bulk(msg.name)
        expected = expected[:1]
    assert got.dtype == np.uint64
    assert [int(w) for w in got] == expected


@pytest.mark.parametrize("msg", [m for m in MESSAGES if len(m.fields) >= 2], ids=lambda m: m.name)
@examples
@given(data=st.data())
def test_encode_bulk_broadcasts_scalars(msg, data):
    rows = data.draw(st.lists(values_for(msg), min_size=1, max_size=10))
    first = msg.field_names[0]
    scalar = rows[0][first]
    arrays = {n: np.array([r[n] for r in rows]) for n in msg.field_names}
    arrays[first] = scalar
    got = wire.encode_bulk(msg.name, **arrays)
    assert [int(w) for w in got] == [wire.encode(msg.name, **{**r, first: scalar}) for r in rows]


@per_message
@examples
@given(data=st.data())
def test_fields_bulk_equals_single_decode(msg, data):
    rows = data.draw(st.lists(values_for(msg), min_size=1, max_size=20))
    words = np.array([wire.encode(msg.name, **r) for r in rows], dtype=np.uint64)
    cols = wire.fields_bulk(msg.name, words)
    assert set(cols) == set(msg.field_names)
    for fname in msg.field_names:
        single = [wire.decode(int(w))[1][fname] for w in words]
        assert cols[fname].tolist() == single
        assert wire.field_bulk(msg.name, fname, words).tolist() == single


@settings(max_examples=100, deadline=None)
@given(st.lists(any_message, min_size=0, max_size=40))
def test_decode_bulk_equals_single_decode_on_mixed_words(items):
    words = np.array([wire.encode(m.name, **v) for m, v in items], dtype=np.uint64)
    bulk = wire.decode_bulk(words)
    single = [wire.decode(int(w)) for w in words]
    assert len(bulk) == len(single)
    for (bm, bv), (sm, sv) in zip(bulk, single):
        assert bm is sm
        assert bv == sv


def test_decode_bulk_names_the_first_unknown_word():
    good = wire.encode("timer_reset")
    words = np.array([good, good, 0x7F << 56, 0x7F << 56 | 5], dtype=np.uint64)
    with pytest.raises(WireError, match=r"^unknown header 0x7f at word 2$"):
        wire.decode_bulk(words)


# --------------------------------------------------------------------------- validation
KNOWN_HEADERS = sorted(m.header for m in MESSAGES)
UNKNOWN_HEADERS = sorted(set(range(256)) - set(KNOWN_HEADERS))


@st.composite
def suspicious_words(draw) -> int:
    """Valid words, valid words with reserved bits set, unknown headers, noise."""
    kind = draw(st.sampled_from(["valid", "reserved", "unknown", "noise"]))
    if kind == "noise":
        return draw(st.integers(0, (1 << 64) - 1))
    if kind == "unknown":
        return draw(st.sampled_from(UNKNOWN_HEADERS)) << 56 | draw(st.integers(0, (1 << 56) - 1))
    msg, values = draw(any_message)
    word = reference_word(msg, values)
    if kind == "reserved":
        width = sum(w for _, w in msg.fields)
        if width < 56:
            word |= 1 << draw(st.integers(width, 55))
    return word


@settings(max_examples=150, deadline=None)
@given(st.lists(suspicious_words(), min_size=1, max_size=30))
def test_invalid_bulk_flags_exactly_what_decode_rejects(words):
    arr = np.array(words, dtype=np.uint64)
    for direction in Direction:
        expected = [raises_wire_error(wire.decode, w, direction) for w in words]
        assert wire.invalid_bulk(arr, direction).tolist() == expected


def test_invalid_bulk_flags_each_kind_of_defect():
    spike = reference_word(BY_NAME["spike"], {"label": 7, "time": 9})
    data = reference_word(BY_NAME["omnibus_data"], {"data": 0xFFFF_FFFF})
    words = np.array([
        data,                 # fine to the chip
        spike,                # travels the other way
        data | 1 << 32,       # reserved bit just above the 32-bit field
        data | 1 << 55,       # topmost reserved payload bit
        UNKNOWN_HEADERS[0] << 56,
    ], dtype=np.uint64)
    assert wire.invalid_bulk(words, Direction.TO_CHIP).tolist() == [False, True, True, True, True]
    assert wire.invalid_bulk(words, Direction.TO_HOST).tolist() == [True, False, True, True, True]


# --------------------------------------------------------------------------- error text
@per_field
@pytest.mark.parametrize("too_big", [False, True], ids=["negative", "too_big"])
def test_out_of_range_field_names_message_and_field(msg, fname, width, too_big):
    bad = (1 << width) if too_big else -1
    values = {n: 0 for n in msg.field_names}
    values[fname] = bad
    text = rf"^{re.escape(msg.name)}\.{re.escape(fname)}={bad} does not fit {width} bits$"
    with pytest.raises(WireError, match=text):
        wire.encode(msg.name, **values)
    arrays = {n: np.zeros(3, dtype=np.int64) for n in msg.field_names}
    arrays[fname] = np.array([0, bad, 1], dtype=np.int64)
    with pytest.raises(WireError, match=text):
        wire.encode_bulk(msg.name, **arrays)


def test_missing_and_unexpected_fields_are_named():
    expected = (r"^loopback: expected fields \('halt', 'tag'\), "
                r"missing \['tag'\], unexpected \['bogus'\]$")
    with pytest.raises(WireError, match=expected):
        wire.encode("loopback", halt=1, bogus=3)
    with pytest.raises(WireError, match=expected):
        wire.encode_bulk("loopback", halt=[1], bogus=[3])


def test_unknown_message_name_lists_the_dictionary():
    with pytest.raises(WireError, match=r"^unknown message 'bogus'; known: reset, timer_reset, .*, error, limit_reached, lock_state$"):
        wire.encode("bogus")


@pytest.mark.parametrize("word, direction, text", [
    (0x7F00_0000_0000_0000, None, r"^word 0x7f00000000000000: unknown header 0x7f$"),
    (0x0000_0000_0000_0001, None, r"^word 0x0000000000000001: unknown header 0x00$"),
    (0x8300_0001_0000_0002, Direction.TO_CHIP, r"^word 0x8300000100000002: spike travels to_host, not to_chip$"),
    (0x0800_0000_0000_0005, Direction.TO_HOST,
     r"^word 0x0800000000000005: omnibus_data travels to_chip, not to_host$"),
    (0x0100_0000_0000_0002, None, r"^word 0x0100000000000002: reset has reserved payload bits set$"),
    (0x0280_0000_0000_0000, None, r"^word 0x0280000000000000: timer_reset has reserved payload bits set$"),
    (-1, None, r"^word -0x1 does not fit 64 bits$"),
    (1 << 64, None, r"^word 0x10000000000000000 does not fit 64 bits$"),
])
def test_decode_error_text(word, direction, text):
    with pytest.raises(WireError, match=text):
        wire.decode(word, direction)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, (1 << 64) - 1))
def test_describe_never_raises(word):
    text = wire.describe(word)
    try:
        msg, _ = wire.decode(word)
    except WireError:
        assert text.startswith("<invalid ")
    else:
        assert text.startswith(msg.name + "(")


# --------------------------------------------------------------------------- golden words
# Computed by hand from the bit layout (header in bits 63..56, fields most
# significant first, the last field at bit 0), not with the codec.
GOLDEN = [
    ("timer_reset", {}, 0x0200_0000_0000_0000),
    ("wait_until", {"time": 0xFFFF_FFFF}, 0x0300_0000_FFFF_FFFF),
    ("loopback", {"halt": 1, "tag": 0xBEEF}, 0x0600_0000_0001_BEEF),
    # is_read at bit 36, byte_enables 35..32, address 31..0
    ("omnibus_address", {"is_read": 1, "byte_enables": 0b1111, "address": 0x0280_0000}, 0x0700_001F_0280_0000),
    ("omnibus_address", {"is_read": 0, "byte_enables": 0b0101, "address": 0x0002_0000}, 0x0700_0005_0002_0000),
    ("spike_pack_3", {"label2": 0xAAAA, "label1": 0xBBBB, "label0": 0xCCCC}, 0x0B00_AAAA_BBBB_CCCC),
    ("spike", {"label": 0x1234, "time": 0xDEAD_BEEF}, 0x8300_1234_DEAD_BEEF),
    # value 41..32, time 31..0
    ("madc_sample", {"value": 0x3FF, "time": 5}, 0x8400_03FF_0000_0005),
    ("error", {"reason": 5, "header": 0x07, "index": 3}, 0x8600_0507_0000_0003),
    ("lock", {"acquire": 1, "wait_ms": 1000}, 0x0D00_0001_0000_03E8),
    ("lock_state", {"state": 1, "ms": 0xFFFF_FFFF}, 0x8900_0001_FFFF_FFFF),
]


@pytest.mark.parametrize("name, values, word", GOLDEN, ids=[f"{g[0]}-{g[2]:#x}" for g in GOLDEN])
def test_golden_words(name, values, word):
    assert wire.encode(name, **values) == word
    msg, fields = wire.decode(word)
    assert msg.name == name and fields == values
    assert int(wire.encode_bulk(name, **{k: [v] for k, v in values.items()})[0]) == word


def test_reason_codes_are_distinct():
    assert len({int(r) for r in wire.ErrorReason}) == len(wire.ErrorReason)
    assert len({int(r) for r in wire.TimeoutReason}) == len(wire.TimeoutReason)
    # every code fits the reason field of its notification
    assert max(wire.ErrorReason) < 1 << dict(BY_NAME["error"].fields)["reason"]
    assert max(wire.TimeoutReason) < 1 << dict(BY_NAME["timeout"].fields)["reason"]
    assert all(r.text for r in wire.ErrorReason)
