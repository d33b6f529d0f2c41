"""Predecode PPU memory into flat integer arrays, derived from the instruction table.

Shared by the numba interpreter (`interp`) and the plain-Python reference
(`reference`); only the execute side differs between them.

Each word becomes one row of `DECODED_COLUMNS` int32 values:

    op      semantic id (index into `OPS`), or OP_ILLEGAL / OP_UNIMPLEMENTED
    flags   FLAG_RC | FLAG_OE | FLAG_LK | FLAG_AA, from the row's fixed fields;
            for loads/stores their access (FLAG_STORE | FLAG_UPDATE | FLAG_SIGN |
            FLAG_INDEXED | bytes << SIZE_SHIFT); the semantic group id (`GROUP`,
            never 0) << GROUP_SHIFT.  Readers test bits (`fl & FLAG_RC`), so the
            group rides along here rather than in a column of its own: the
            interpreter's extra columns (hot-loop counters) follow column 7 and
            arrays without them are still runnable.
    cycles  cycle cost from the table
    f0..f4  operand fields in table order, sign-extended where the kind is
            signed (branch displacements still in words, SPR halves still swapped);
            fxv rows instead hold RT, RA, RB, C (raw, unsigned) in f0..f3

The semantic id of a table row is the mnemonic of its "base" row: the row with
the same opcode bits but Rc/OE/LK/AA cleared (`addo.` -> `add`, `bcla` -> `bc`).
`OPS` names the semantics the interpreter implements; every scalar base row of
the table must appear in it (checked at import), so the table stays the only
list of encodings.

Each op also has the semantic group of its base row (`OP_GROUP`, from the
table's `Instruction.group`) and, for loads/stores, its access bits
(`OP_ACCESS`, from `Instruction.access`); `check_handled` verifies that an
executor implements every group in use.  Nothing depends on the order of
`OPS`.
"""
from __future__ import annotations

import numpy as np

from isa.ppu.codec import decode_tables, predecode
from isa.ppu.instructions import FIELDS, GROUPS, INSTRUCTIONS, SCALAR_COUNT, VECTOR_OPS

__all__ = ["OPS", "OP", "OP_VECTOR_FIRST", "OP_ILLEGAL", "OP_UNIMPLEMENTED", "FLAG_RC", "FLAG_OE", "FLAG_LK",
           "FLAG_AA", "FLAG_STORE", "FLAG_UPDATE", "FLAG_SIGN", "FLAG_INDEXED", "SIZE_SHIFT", "GROUP_SHIFT",
           "GROUP", "OP_GROUP", "OP_GROUP_NAME", "OP_ACCESS", "check_handled", "DECODED_COLUMNS",
           "predecode_words", "words_from_bytes"]

# Semantic operations, by base mnemonic.  Names only: encodings live in the table.
OPS = (
    "twi", "mulli", "subfic", "cmpli", "cmpi", "addic", "addic.", "addi", "addis",
    "ori", "oris", "xori", "xoris", "andi.", "andis.",
    "lwz", "lwzu", "lbz", "lbzu", "stw", "stwu", "stb", "stbu", "lhz", "lhzu", "lha", "lhau",
    "sth", "sthu", "lmw", "stmw",
    "b", "bc", "rlwimi", "rlwinm", "rlwnm",
    "mcrf", "bclr", "bcctr", "crnor", "crandc", "crxor", "crnand", "crand", "creqv", "crorc",
    "cror", "rfmci", "rfi", "rfci",
    "cmp", "cmpl", "tw",
    "lwzx", "lwzux", "lbzx", "lbzux", "stwx", "stwux", "stbx", "stbux", "lhzx", "lhzux",
    "lhax", "lhaux", "sthx", "sthux",
    "slw", "and", "andc", "nor", "eqv", "xor", "orc", "or", "nand", "srw", "sraw", "srawi",
    "cntlzw", "extsh", "extsb", "popcntb", "prtyw", "wait", "mfmsr", "mtmsr", "sync",
    "subfc", "addc", "mulhwu", "subf", "mulhw", "neg", "subfe", "adde", "subfze", "addze",
    "subfme", "addme", "mullw", "add", "divwu", "divw",
    "mfcr", "mfocrf", "mtcrf", "mtocrf", "mfspr", "mtspr",
) + tuple(mn for mn, *_ in VECTOR_OPS)     # the fxv rows, in table order
OP = {name: k for k, name in enumerate(OPS)}
OP_VECTOR_FIRST = OP[VECTOR_OPS[0][0]]   # first fxv op (OPS lists them last); dispatch uses GROUP["vector"]
OP_ILLEGAL = -1          # not an instruction: program interrupt
OP_UNIMPLEMENTED = -2    # a table instruction the PPU does not execute (eciwx/ecowx)

FLAG_RC, FLAG_OE, FLAG_LK, FLAG_AA = 1, 2, 4, 8
_FLAG_OF = {"Rc": FLAG_RC, "OE": FLAG_OE, "LK": FLAG_LK, "AA": FLAG_AA}
# Load/store access bits (the flags column).
FLAG_STORE, FLAG_UPDATE, FLAG_SIGN, FLAG_INDEXED = 16, 32, 64, 128
SIZE_SHIFT = 8           # access bytes (1, 2, 4) in bits 8-10
GROUP_SHIFT = 16         # group id in bits 16 and up
GROUP = {name: k + 1 for k, name in enumerate(GROUPS)}   # semantic group ids; 0 is no instruction
DECODED_COLUMNS = 8


def _base_mnemonic(insn) -> str:
    value = insn.opcode_value
    for name in _FLAG_OF:
        if name in insn.flags:
            value &= ~FIELDS[name].mask
    for other in INSTRUCTIONS:
        if other.opcode_value == value and other.opcode_mask == insn.opcode_mask:
            return other.mnemonic
    raise AssertionError(f"no base row for {insn.mnemonic}")


def _access_bits(access) -> int:
    if access is None:
        return 0
    assert access.size in (1, 2, 4), access
    return ((FLAG_STORE if access.store else 0) | (FLAG_UPDATE if access.update else 0)
            | (FLAG_SIGN if access.sign else 0) | (FLAG_INDEXED if access.indexed else 0)
            | access.size << SIZE_SHIFT)


def _op_tables() -> tuple[dict[str, str], np.ndarray, np.ndarray]:
    """Per op: group name (by op name), group id and access bits (by op id),
    from the op's base row; every row of an op must agree with its base row."""
    by_mn = {i.mnemonic: i for i in INSTRUCTIONS}
    names: dict[str, str] = {}
    groups = np.zeros(len(OPS), np.int32)
    access = np.zeros(len(OPS), np.int32)
    for k, name in enumerate(OPS):
        base = by_mn[name]
        names[name] = base.group
        groups[k] = GROUP[base.group]
        access[k] = _access_bits(base.access)
    for insn in INSTRUCTIONS:
        base = by_mn[_base_mnemonic(insn)]
        if (insn.group, insn.access) != (base.group, base.access):
            raise AssertionError(f"{insn.mnemonic}: group/access differ from its base row {base.mnemonic}")
    return names, groups, access


def _row_tables() -> tuple[np.ndarray, np.ndarray]:
    """Per table row: semantic op id and flags (with access bits and group)."""
    ops = np.full(len(INSTRUCTIONS), OP_UNIMPLEMENTED, np.int32)
    flags = np.zeros(len(INSTRUCTIONS), np.int32)
    for k, insn in enumerate(INSTRUCTIONS):
        base = _base_mnemonic(insn)
        if base in OP:
            ops[k] = OP[base]
            flags[k] = OP_ACCESS[OP[base]] | OP_GROUP[OP[base]] << GROUP_SHIFT
        elif k < SCALAR_COUNT and base not in ("eciwx", "ecowx"):
            raise AssertionError(f"scalar instruction {base} has no semantics in OPS")
        for name, bit in _FLAG_OF.items():
            if insn.flags.get(name):
                flags[k] |= bit
    missing = set(OPS) - {_base_mnemonic(i) for i in INSTRUCTIONS}
    assert not missing, f"OPS names not in the table: {missing}"
    return ops, flags


def check_handled(ops, group_of: dict[str, str], handled) -> None:
    """Raise AssertionError naming the first op of `ops` whose group
    (`group_of[op]`, a group name) is not among `handled` (group names): an
    executor calls this at import with the groups it implements."""
    for name in ops:
        group = group_of.get(name)
        if group not in handled:
            raise AssertionError(f"op {name!r} (group {group!r}) has no implementation")


OP_GROUP_NAME, OP_GROUP, OP_ACCESS = _op_tables()
_TABLES = decode_tables()
_ROW_OP, _ROW_FLAGS = _row_tables()


def words_from_bytes(data: bytes | np.ndarray) -> np.ndarray:
    """Big-endian 32-bit words of a byte image (padded to a multiple of 4)."""
    b = np.frombuffer(bytes(data), np.uint8) if not isinstance(data, np.ndarray) else data
    pad = (-len(b)) % 4
    if pad:
        b = np.concatenate([b, np.zeros(pad, np.uint8)])
    return b.view(">u4").astype(np.uint32)


def predecode_words(words) -> np.ndarray:
    """(n, DECODED_COLUMNS) int32 rows for an array of instruction words."""
    w = np.asarray(words, dtype=np.uint32)
    ids = predecode(w)
    out = np.zeros((len(w), DECODED_COLUMNS), np.int32)
    out[:, 0] = OP_ILLEGAL
    legal = ids >= 0
    out[legal, 0] = _ROW_OP[ids[legal]]
    out[legal, 1] = _ROW_FLAGS[ids[legal]]
    out[legal, 2] = _TABLES["cycles"][ids[legal]]
    shift, width, signed = _TABLES["field_shift"], _TABLES["field_width"], _TABLES["field_signed"]
    for oid in np.unique(ids[legal]):
        rows = ids == oid
        for j in range(5):
            if shift[oid, j] < 0:
                continue
            wd = int(width[oid, j])
            v = ((w[rows] >> np.uint32(shift[oid, j])) & np.uint32((1 << wd) - 1)).astype(np.int64)
            if signed[oid, j]:
                v = np.where(v >= (1 << (wd - 1)), v - (1 << wd), v)
            out[rows, 3 + j] = v
    # fxv rows use one canonical layout whatever their assembly operand shape:
    # f0 = RT (VRT), f1 = RA (VRA or GPR), f2 = RB (VRB, GPR or the raw 5-bit
    # shift), f3 = C.  Unused fields are zero (reserved bits are checked by decode).
    vec = legal & ((out[:, 1] >> GROUP_SHIFT) == GROUP["vector"])
    if vec.any():
        for j, name in enumerate(("RT", "RA", "RB", "C")):
            f = FIELDS[name]
            out[vec, 3 + j] = ((w[vec] >> np.uint32(f.shift)) & np.uint32((1 << f.width) - 1)).astype(np.int32)
        out[vec, 7] = 0
    return out
