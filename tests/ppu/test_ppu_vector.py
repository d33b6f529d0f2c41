"""fxv vector encodings: worked examples and an independent hand table (the fxv
extension as decoded by the nux RTL, github.com/electronicvisions/nux; docs/ppu.md)."""
from __future__ import annotations

import pytest

from isa.ppu import decode, encode
from isa.ppu.asm import assemble
from isa.ppu.disasm import format_instruction

# Worked examples of the fxv encoding (docs/ppu.md), not from the code under test.
WORKED_EXAMPLES = [
    ("fxvaddbm 3,1,2", 0x10611734),
    ("fxvshb 1,1,-1", 0x1021FCF4),
    ("fxvsel 4,4,5,2", 0x10842CFE),
    ("fxvlax 0,0,1", 0x10000FB0),
]

# Extended opcodes of the fxv extension (nux RTL), written out by hand.
HAND_XO = {
    "fxvmahm": 12, "fxvmabm": 13, "fxvmtach": 15, "fxvmtacb": 14, "fxvmahfs": 28, "fxvmabfs": 29,
    "fxvmtachf": 31, "fxvmtacbf": 30, "fxvmatachm": 44, "fxvmatacbm": 45, "fxvmatachfs": 60,
    "fxvmatacbfs": 61, "fxvmulhm": 76, "fxvmulbm": 77, "fxvmulhfs": 92, "fxvmulbfs": 93,
    "fxvmultachm": 108, "fxvmultacbm": 109, "fxvmultachfs": 124, "fxvmultacbfs": 125,
    "fxvsplath": 268, "fxvsplatb": 269, "fxvcmph": 300, "fxvcmpb": 301, "fxvshh": 316,
    "fxvshb": 317, "fxvsubhm": 332, "fxvsubbm": 333, "fxvsubhfs": 348, "fxvsubbfs": 349,
    "fxvaddactachm": 364, "fxvaddactacbm": 365, "fxvaddactachf": 380, "fxvaddactacbf": 381,
    "fxvaddachm": 396, "fxvaddacbm": 397, "fxvaddachfs": 412, "fxvaddacbfs": 413,
    "fxvaddtach": 428, "fxvaddtacb": 429, "fxvaddhm": 460, "fxvaddbm": 461, "fxvaddhfs": 476,
    "fxvaddbfs": 477, "fxvinx": 236, "fxvoutx": 252, "fxvpckbu": 239, "fxvpckbl": 255,
    "fxvupckbr": 271, "fxvupckbl": 287, "fxvsel": 319, "fxvlax": 492, "fxvstax": 508,
}
ONE_OPERAND = {"fxvmtach", "fxvmtacb", "fxvmtachf", "fxvmtacbf", "fxvcmph", "fxvcmpb"}
TWO_OPERAND = {"fxvsplath", "fxvsplatb"}


def hand_word(xo, t=0, a=0, b=0, c=0):
    return (4 << 26) | (t << 21) | (a << 16) | ((b & 31) << 11) | (xo << 2) | c


@pytest.mark.parametrize("text,word", WORKED_EXAMPLES)
def test_design_examples(text, word):
    prog = assemble(f"\t{text}\n")
    assert bytes(prog.sections[".text"].data) == word.to_bytes(4, "big")
    mn, ops = format_instruction(word)
    assert f"{mn} {ops}" == text.replace("fxvlax 0,0,1", "fxvlax 0,0,r1")


@pytest.mark.parametrize("mnemonic,xo", sorted(HAND_XO.items()))
def test_hand_table(mnemonic, xo):
    if mnemonic in ONE_OPERAND:
        cases = [((7,), hand_word(xo, a=7)), ((7, 3), hand_word(xo, a=7, c=3))]
    elif mnemonic in TWO_OPERAND:
        cases = [((5, 9), hand_word(xo, t=5, a=9)), ((5, 9, 1), hand_word(xo, t=5, a=9, c=1))]
    else:
        cases = [((31, 17, 2), hand_word(xo, 31, 17, 2)), ((1, 2, 3, 2), hand_word(xo, 1, 2, 3, 2))]
    for ops, word in cases:
        assert encode(mnemonic, ops) == word
        d = decode(word)
        assert d.mnemonic == mnemonic
        assert encode(mnemonic, d.values) == word


def test_table_has_exactly_the_design_vector_ops():
    from isa.ppu.instructions import INSTRUCTIONS
    assert {i.mnemonic for i in INSTRUCTIONS if i.primary == 4} == set(HAND_XO)


@pytest.mark.parametrize("old,new", [("fxvmtac", "fxvmtach"), ("fxvmtacf", "fxvmtachf")])
def test_older_spellings(old, new):
    assert encode(old, (3,)) == encode(new, (3,)) == hand_word(HAND_XO[new], a=3)


def test_condition_suffix_printed_only_when_set():
    assert format_instruction(hand_word(461, 3, 1, 2)) == ("fxvaddbm", "3,1,2")
    assert format_instruction(hand_word(461, 3, 1, 2, 3)) == ("fxvaddbm", "3,1,2,3")


def test_shift_amount_is_signed_5_bit():
    assert encode("fxvshh", (1, 2, -16)) == hand_word(316, 1, 2, 16)
    assert encode("fxvshh", (1, 2, 15)) == hand_word(316, 1, 2, 15)
    with pytest.raises(ValueError, match=r"^operand out of range: 16 not in -16\.\.15$"):
        encode("fxvshh", (1, 2, 16))
