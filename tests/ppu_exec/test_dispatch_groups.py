"""Semantic groups and access bits: derived from the instruction table, checked at import."""
from __future__ import annotations

import pytest

from isa.ppu.instructions import GROUPS, INSTRUCTIONS
from twin.ppu import _decode as D
from twin.ppu import interp as I


def test_every_op_has_a_group_the_interpreter_runs():
    assert set(D.OP_GROUP_NAME) == set(D.OPS)
    assert all(g in GROUPS for g in D.OP_GROUP_NAME.values())
    assert set(D.OP_GROUP_NAME.values()) <= I.RUN_GROUPS
    D.check_handled(D.OPS, D.OP_GROUP_NAME, I.RUN_GROUPS)      # what interp runs at import


def test_check_fires_for_a_group_without_implementation():
    handled = I.RUN_GROUPS - {"rotate"}
    with pytest.raises(AssertionError, match="rlwimi"):
        D.check_handled(D.OPS, D.OP_GROUP_NAME, handled)
    # an op missing from the group table is reported too
    with pytest.raises(AssertionError, match="frob"):
        D.check_handled(("addi", "frob"), D.OP_GROUP_NAME, I.RUN_GROUPS)


def _row(mnemonic):
    insn = next(i for i in INSTRUCTIONS if i.mnemonic == mnemonic)
    return D.predecode_words([insn.opcode_value])[0]


@pytest.mark.parametrize("mnemonic, group, size, store, update, sign, indexed", [
    ("lwz", "load", 4, 0, 0, 0, 0), ("lbzu", "load", 1, 0, 1, 0, 0), ("lhaux", "load", 2, 0, 1, 1, 1),
    ("lhzx", "load", 2, 0, 0, 0, 1), ("stwu", "store", 4, 1, 1, 0, 0), ("sthx", "store", 2, 1, 0, 0, 1),
    ("stbux", "store", 1, 1, 1, 0, 1), ("lmw", "load_multiple", 4, 0, 0, 0, 0),
    ("stmw", "store_multiple", 4, 1, 0, 0, 0),
])
def test_access_bits_in_the_decoded_row(mnemonic, group, size, store, update, sign, indexed):
    fl = int(_row(mnemonic)[1])
    assert fl >> D.GROUP_SHIFT == D.GROUP[group]
    assert (fl >> D.SIZE_SHIFT) & 7 == size
    assert bool(fl & D.FLAG_STORE) == bool(store)
    assert bool(fl & D.FLAG_UPDATE) == bool(update)
    assert bool(fl & D.FLAG_SIGN) == bool(sign)
    assert bool(fl & D.FLAG_INDEXED) == bool(indexed)


def test_record_and_link_forms_share_the_base_group():
    for a, b in (("addo.", "add"), ("bcla", "bc"), ("rlwinm.", "rlwinm"), ("fxvaddbm", "fxvaddhm")):
        assert _row(a)[1] >> D.GROUP_SHIFT == _row(b)[1] >> D.GROUP_SHIFT
    assert _row("addo.")[1] & (D.FLAG_OE | D.FLAG_RC) == D.FLAG_OE | D.FLAG_RC
    assert _row("bcla")[1] & (D.FLAG_AA | D.FLAG_LK) == D.FLAG_AA | D.FLAG_LK


def test_illegal_words_have_no_group():
    assert D.predecode_words([0])[0][1] >> D.GROUP_SHIFT == 0
