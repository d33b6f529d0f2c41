"""Codec round trips, illegal words, and the numpy predecoder against decode."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from isa.ppu import IllegalInstruction, decode, decode_tables, encode, predecode
from isa.ppu.codec import EncodingError, encode_instruction
from isa.ppu.instructions import ALIASES, INSTRUCTIONS


@given(st.sampled_from(INSTRUCTIONS), st.integers(0, 2**32 - 1), st.integers(0, 2**20))
@settings(max_examples=600, deadline=None)
def test_decode_encode_round_trip(insn, noise, pc4):
    """Any operand bits in a legal instruction survive decode -> encode -> decode."""
    pc = pc4 * 4
    word = insn.opcode_value | (noise & ~insn.opcode_mask & 0xFFFFFFFF)
    d = decode(word, pc)
    assert d.instruction is insn
    assert encode_instruction(insn, d.values, pc) == word
    assert encode(insn.mnemonic, d.values, pc) == word


@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=200))
@settings(max_examples=100, deadline=None)
def test_predecode_matches_decode(words):
    ids = predecode(words)
    for w, k in zip(words, ids):
        try:
            assert INSTRUCTIONS[k].mnemonic == decode(w).mnemonic and k >= 0
        except IllegalInstruction:
            assert k == -1


def test_masks_do_not_overlap():
    """No word can match two table rows (so match order never matters)."""
    for i, a in enumerate(INSTRUCTIONS):
        for b in INSTRUCTIONS[i + 1:]:
            common = a.opcode_mask & b.opcode_mask
            assert (a.opcode_value & common) != (b.opcode_value & common), (a.mnemonic, b.mnemonic)


def test_every_alias_sets_every_base_field():
    for a in ALIASES:
        assert {f for f, _ in a.fields} == {op.field.name for op in a.instruction.operands}, a.mnemonic


def test_decode_tables_shapes():
    t = decode_tables()
    n = len(INSTRUCTIONS)
    assert t["mask"].shape == t["value"].shape == t["opcode_id"].shape == (n,)
    assert sorted(t["opcode_id"].tolist()) == list(range(n))
    ids = {i.mnemonic: k for k, i in enumerate(INSTRUCTIONS)}
    expected = {"divw": 31, "divwu": 31, "mullw": 4, "mulhw": 4, "mulli": 4, "lwz": 2,
                "lbzx": 2, "add": 1, "stw": 1, "fxvinx": 20, "fxvoutx": 20}
    assert {m: int(t["cycles"][ids[m]]) for m in expected} == expected
    assert t["mask"].dtype == np.uint32


@pytest.mark.parametrize("word,message", [
    (0x00000000, "illegal instruction 0x00000000: primary opcode 0 is not implemented"),
    (0x7C0007FE, "illegal instruction 0x7c0007fe: no instruction with primary opcode 31 and "
                 "extended opcode 1023"),
    (0x7C00007D, "illegal instruction 0x7c00007d: reserved bits are set"),
    (0xFC000000, "illegal instruction 0xfc000000: primary opcode 63 is not implemented"),
])
def test_illegal_words(word, message):
    with pytest.raises(IllegalInstruction) as e:
        decode(word)
    assert str(e.value) == message


@pytest.mark.parametrize("mn,ops,message", [
    ("addi", (3, 4, 40000), "operand out of range: 40000 not in -32768..32767"),
    ("addi", (3, 4), "'addi' takes 3 operands, got 2"),
    ("cmpwi", (3,), "'cmpwi' takes 2 or 3 operands, got 1"),
    ("b", (2,), "branch target not a multiple of 4: 2"),
    ("frob", (), "unknown mnemonic 'frob'"),
])
def test_encoding_errors(mn, ops, message):
    with pytest.raises(EncodingError) as e:
        encode(mn, ops)
    assert str(e.value) == message


def test_known_words():
    # Independent values: the nux RTL's `wait` and the Power ISA book.
    assert encode("wait") == 0x7C00007C
    assert encode("blr") == 0x4E800020
    assert encode("nop") == 0x60000000
    assert encode("mfspr", (3, 284)) == 0x7C7C42A6
    assert encode("b", (0x100,), pc=0x104) == 0x4BFFFFFC
