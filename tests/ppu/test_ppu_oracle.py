"""Encoding and disassembly checked against GNU binutils over generated cases."""
from __future__ import annotations

import pytest

from isa.ppu.asm import assemble
from isa.ppu.disasm import format_instruction

import _ppu_gnu as gnu
from _ppu_cases import scalar_cases

# objdump -Me500mc names sync (0x7c0004ac) by its e500 spelling.
OBJDUMP_SPELLINGS = {"msync": "sync"}


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    cases = scalar_cases()
    tmp = tmp_path_factory.mktemp("oracle")
    src = "".join(f"\t{c}\n" for c in cases)
    theirs = gnu.gnu_assemble(src, tmp)
    words = [int.from_bytes(theirs[i:i + 4], "big") for i in range(0, len(theirs), 4)]
    listing = gnu.gnu_objdump(words, tmp)
    return cases, src, theirs, words, listing


def test_case_count(oracle):
    cases = oracle[0]
    assert len(cases) >= 1000
    assert len(oracle[2]) == 4 * len(cases)


def test_encoding_matches_gnu_as(oracle):
    cases, src, theirs, _, _ = oracle
    ours = bytes(assemble(src, "cases.s").sections[".text"].data)
    bad = [f"{c}: gnu {theirs[4*i:4*i+4].hex()} ours {ours[4*i:4*i+4].hex()}"
           for i, c in enumerate(cases) if ours[4 * i:4 * i + 4] != theirs[4 * i:4 * i + 4]]
    assert not bad, "\n".join(bad[:40])


def test_disassembly_matches_objdump(oracle):
    cases, _, _, words, listing = oracle
    bad = []
    for i, w in enumerate(words):
        mn, ops = format_instruction(w, 4 * i)
        t = gnu.normalise(listing[4 * i])
        head, _, rest = t.partition(" ")
        t = " ".join(filter(None, (OBJDUMP_SPELLINGS.get(head, head), rest)))
        if gnu.normalise(f"{mn} {ops}") != t:
            bad.append(f"{cases[i]} -> {w:08x}: objdump '{t}' ours '{mn} {ops}'")
    assert not bad, "\n".join(bad[:40])
