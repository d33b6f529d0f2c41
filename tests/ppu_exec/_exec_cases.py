"""Random straight-line scalar programs for the interpreter's differential tests.

Registers r30/r31 are reserved: r31 holds DATA (the data region base), r30 a
small aligned offset for indexed forms.  No generated instruction names them,
so loads and stores stay inside the data region.  No branches.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as hs

from isa.ppu.codec import encode
from isa.ppu.instructions import BY_MNEMONIC, SCALAR_COUNT, INSTRUCTIONS

CODE = 0x100           # code start: below it the interrupt vectors stay 0 (not installed)
DATA = 0x1000          # data region base (r31)
DATA_SIZE = 0x200
INDEX = 0x40           # r30
MEM_SIZE = DATA + DATA_SIZE

_EXCLUDED_PREFIX = ("b", "lwz", "lbz", "lhz", "lha", "stw", "stb", "sth", "lmw", "stmw", "rf")
_EXCLUDED = {"wait", "eciwx", "ecowx", "mfmsr", "mtmsr", "sync", "crnor", "crandc", "crxor",
             "crnand", "crand", "creqv", "crorc", "cror"}
# ALU mnemonics whose operands are generated generically from the table.
ALU = tuple(i.mnemonic for i in INSTRUCTIONS[:SCALAR_COUNT]
            if not i.mnemonic.startswith(_EXCLUDED_PREFIX) and i.mnemonic not in _EXCLUDED
            and i.mnemonic not in ("mfspr", "mtspr", "tw", "twi"))
CR_LOGIC = ("crnor", "crandc", "crxor", "crnand", "crand", "creqv", "crorc", "cror")
# (mnemonic, size) of D-form and X-form memory accesses without update.
LOADS_STORES = (("lwz", 4), ("lbz", 1), ("lhz", 2), ("lha", 2), ("stw", 4), ("stb", 1),
                ("sth", 2))
SPRS_QEMU = (1, 8, 9)          # XER LR CTR: the same numbers under qemu-user
SPRS_TWIN = SPRS_QEMU + (26, 27, 272, 273, 274, 275)


def _operand(draw, op) -> int:
    k = op.kind
    if k.regclass == "r":
        return draw(hs.integers(0, 29))
    lo, hi = op.value_range()
    return draw(hs.integers(lo, hi))


@hs.composite
def instruction(draw, sprs=SPRS_TWIN, traps=True, memory=True, cr_logic=True):
    kinds = ["alu"] * 12 + (["mem"] * 4 if memory else []) + ["spr"] * 2 + (["trap"] if traps else [])
    kinds += ["cr"] * 2 if cr_logic else []
    kind = draw(hs.sampled_from(kinds))
    if kind == "alu":
        insn = BY_MNEMONIC[draw(hs.sampled_from(ALU))]
        return encode(insn.mnemonic, [_operand(draw, op) for op in insn.operands])
    if kind == "cr":
        return encode(draw(hs.sampled_from(CR_LOGIC)), [draw(hs.integers(0, 31)) for _ in range(3)])
    if kind == "mem":
        mn, size = draw(hs.sampled_from(LOADS_STORES + (("stmw", 4), ("x", 0))))
        rt = draw(hs.integers(0, 29))
        if mn == "stmw":
            return encode("stmw", [draw(hs.integers(16, 31)), draw(hs.integers(0, 32)) * 4, 31])
        if mn == "x":
            base, size = draw(hs.sampled_from(LOADS_STORES))
            return encode(base + "x", [rt, 31, 30])
        return encode(mn, [rt, draw(hs.integers(0, (DATA_SIZE - 4) // size)) * size, 31])
    if kind == "spr":
        spr = draw(hs.sampled_from(sprs))
        rt = draw(hs.integers(0, 29))
        if draw(hs.booleans()):
            return encode("mfspr", [rt, spr])
        return encode("mtspr", [spr, rt])
    to = draw(hs.sampled_from([0, 0, 0, 0, 0, 0, 4, 16, 8, 2, 1, 31]))
    ra = draw(hs.integers(0, 29))
    if draw(hs.booleans()):
        return encode("tw", [to, ra, draw(hs.integers(0, 29))])
    return encode("twi", [to, ra, draw(hs.integers(-0x8000, 0x7FFF))])


@hs.composite
def machine(draw, n_min=10, n_max=60, **kw):
    """(words, gprs[30], cr, xer, data bytes)."""
    words = draw(hs.lists(instruction(**kw), min_size=n_min, max_size=n_max))
    special = hs.sampled_from([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFF, 0x8000])
    gprs = draw(hs.lists(hs.one_of(hs.integers(0, 0xFFFFFFFF), special), min_size=30, max_size=30))
    cr = draw(hs.integers(0, 0xFFFFFFFF))
    xer = draw(hs.sampled_from([0, 0x20000000, 0x40000000, 0x80000000, 0xE0000000, 0xA0000000]))
    data = draw(hs.binary(min_size=DATA_SIZE, max_size=DATA_SIZE))
    return words, gprs, cr, xer, data


def setup(words, gprs, cr, xer, data, wait_word: int = 0x7C00007C):
    """Memory image and twin state for a generated case (ends with `wait`)."""
    from twin.ppu import interp as I
    mem = np.zeros(MEM_SIZE, np.uint8)
    code = np.array(list(words) + [wait_word], ">u4").view(np.uint8)
    assert CODE + len(code) <= DATA
    mem[CODE:CODE + len(code)] = code
    mem[DATA:DATA + DATA_SIZE] = np.frombuffer(data, np.uint8)
    st = I.new_state(CODE)
    st[:30] = gprs
    st[30], st[31] = INDEX, DATA
    st[I.S_CR], st[I.S_XER] = cr, xer
    return mem, st
