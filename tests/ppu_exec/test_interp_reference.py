"""The numba interpreter against the plain-Python reference, plus directed cases."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from isa.ppu.asm import assemble
from isa.ppu.instructions import INSTRUCTIONS, SCALAR_COUNT
from twin.ppu import interp as I
from twin.ppu import reference as R
from twin.ppu._decode import OP_UNIMPLEMENTED, OPS, predecode_words

from _exec_cases import machine, setup


def _both(mem, st, max_cycles=1 << 40):
    m1, s1, m2, s2 = mem.copy(), st.copy(), mem.copy(), st.copy()
    r1 = I.run(m1, s1, max_cycles)
    r2 = R.run(m2, s2, max_cycles)
    return (r1, m1, s1), (r2, m2, s2)


def _assert_same(a, b):
    (r1, m1, s1), (r2, m2, s2) = a, b
    assert I.STATUS_NAMES[r1] == I.STATUS_NAMES[r2]
    diff = np.nonzero(s1 != s2)[0]
    assert not len(diff), {int(k): (hex(s1[k]), hex(s2[k])) for k in diff}
    assert np.array_equal(m1, m2)


@settings(max_examples=300, deadline=None)
@given(machine())
def test_numba_matches_reference(case):
    mem, st = setup(*case)
    _assert_same(*_both(mem, st))


def test_every_scalar_row_has_semantics():
    words = [ins.opcode_value for ins in INSTRUCTIONS[:SCALAR_COUNT]]
    ops = predecode_words(words)[:, 0]
    names = {INSTRUCTIONS[k].mnemonic for k in range(SCALAR_COUNT) if ops[k] == OP_UNIMPLEMENTED}
    assert names == {"eciwx", "ecowx"}
    assert all(0 <= o < len(OPS) for k, o in enumerate(ops) if INSTRUCTIONS[k].mnemonic not in names)


def _prog(src: str, size: int = 0x2000):
    img = assemble(src).image()
    mem = np.zeros(size, np.uint8)
    mem[:len(img)] = np.frombuffer(img, np.uint8)
    return mem


def _run_src(src, **kw):
    mem = _prog(src)
    a, b = _both(mem, I.new_state(), **kw)
    _assert_same(a, b)
    return a


@pytest.mark.parametrize("src, status, fault", [
    ("li r3,1\n wait\n", I.Status.SLEEPING, 4),
    ("li r3,1\n .long 0\n", I.Status.PROGRAM, 4),
    ("li r3,0x1001\n lwz r4,0(r3)\n", I.Status.ALIGNMENT, 0x1001),
    ("li r3,0x1001\n sth r4,0(r3)\n", I.Status.ALIGNMENT, 0x1001),
    ("li r3,0x1002\n lmw r28,0(r3)\n", I.Status.ALIGNMENT, 0x1002),
    ("lis r3,0x10\n stb r4,0(r3)\n", I.Status.BUS_ERROR, 0x100000),
    ("li r3,5\n twgti r3,4\n", I.Status.TRAP, 4),
    ("mfspr r3,287\n", I.Status.PROGRAM, 0),
    (".long 0x7c00026c\n", I.Status.UNIMPLEMENTED, 0),     # eciwx
    ("loop: b loop\n", I.Status.MAX_CYCLES, 0),
    ("lis r3,0x10\n mtlr r3\n blr\n", I.Status.BUS_ERROR, 0x100000),
])
def test_stop_status(src, status, fault):
    r, _, st = _run_src(src, max_cycles=1000)
    assert (I.STATUS_NAMES[r], st[I.S_FAULT]) == (I.STATUS_NAMES[status], fault)


def test_max_cycles_counts_table_costs():
    r, _, st = _run_src("loop: divw r3,r4,r5\n b loop\n", max_cycles=320)
    assert r == I.Status.MAX_CYCLES
    assert st[I.S_CYCLES] == 320 and st[I.S_INSNS] == 20      # 10 x (31 + 1)


@pytest.mark.parametrize("insn, a, b, want, ov", [
    ("divw", 7, 0, 7, 1), ("divw", 0x80000000, 0xFFFFFFFF, 0x80000000, 1),
    ("divw", 0xFFFFFFF9, 2, 0xFFFFFFFD, 0), ("divwu", 7, 0, 7, 1), ("divwu", 0xFFFFFFFF, 2, 0x7FFFFFFF, 0),
])
def test_divide_undefined_results(insn, a, b, want, ov):
    mem = _prog(f"{insn}o r3,r4,r5\n wait\n")
    st = I.new_state()
    st[4], st[5] = a, b
    res, _ = _both(mem, st)
    _assert_same(res, _)
    assert res[2][3] == want and bool(res[2][I.S_XER] & I.XER_OV) == bool(ov)


def test_loop_branches_and_time_base():
    r, mem, st = _run_src("""
        li r3,0
        li r4,10
        mtctr r4
    1:  add r3,r3,r4
        addi r4,r4,-1
        bdnz 1b
        mfspr r5,284
        stw r3,0x1000(0)
        bl 2f
        wait
    2:  mflr r6
        blr
    """)
    assert r == I.Status.SLEEPING
    assert st[3] == 55 and bytes(mem[0x1000:0x1004]) == (55).to_bytes(4, "big")
    assert st[5] == 3 + 3 * 10     # cycles before the mfspr
    assert st[6] == 0x24 and st[I.S_FAULT] == 0x24 and st[I.S_PC] == 0x28


@pytest.mark.parametrize("src, want", [
    # Not covered by the qemu leg (qemu's 32-bit CPUs lack them): known values.
    ("lis r4,0x80ff\n ori r4,r4,0x0f01\n popcntb r3,r4\n", 0x01080401),
    ("lis r4,0x0100\n ori r4,r4,0x0101\n prtyw r3,r4\n", 1),
    ("lis r4,0x0100\n ori r4,r4,0x0001\n prtyw r3,r4\n", 0),
    ("li r4,0\n cntlzw r3,r4\n", 32),
    ("li r4,-1\n srawi r3,r4,31\n mfxer r3\n", 0x20000000),
    ("li r4,-1\n rlwinm r3,r4,0,30,1\n", 0xC0000003),
    ("li r4,-1\n mulhwu r3,r4,r4\n", 0xFFFFFFFE),
    ("li r4,-1\n li r5,-2\n mulhw r3,r4,r5\n", 0),
])
def test_directed_values(src, want):
    r, _, st = _run_src(src + " wait\n")
    assert r == I.Status.SLEEPING and st[3] == want
