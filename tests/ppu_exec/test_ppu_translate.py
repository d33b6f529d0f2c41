"""Hot-loop translation (twin.ppu.translate) against the interpreter alone:
the same final state, memory and stop status on random loops of the
translatable subset and on every kind of early exit."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from isa.ppu.asm import assemble
from isa.ppu.codec import decode, encode
from twin.ppu import interp as I
from twin.ppu import reference as R
from twin.ppu import translate as T

from _exec_cases import CODE, DATA, INDEX, MEM_SIZE, instruction

SUBSET = {"addi", "addis", "mulli", "ori", "oris", "xori", "xoris", "andi.", "andis.", "add", "subf",
          "neg", "mullw", "mulhw", "mulhwu", "and", "andc", "or", "xor", "nor", "nand", "eqv", "orc",
          "slw", "srw", "extsb", "extsh", "rlwinm", "rlwnm", "rlwimi", "cmp", "cmpl", "cmpi", "cmpli",
          "lwz", "lbz", "lhz", "lha", "stw", "stb", "sth", "lwzx", "lbzx", "lhzx", "lhax", "stwx",
          "stbx", "sthx"}


def _translatable(word: int) -> bool:
    d = decode(word)
    mn = d.mnemonic
    return mn.rstrip(".") in SUBSET or mn in SUBSET


_insn = instruction(sprs=(8,), traps=False, cr_logic=False).filter(_translatable)


def _setup(body_words, gprs, cr, xer, data, iterations):
    mem = np.zeros(MEM_SIZE, np.uint8)
    words = ([encode("addis", [29, 0, iterations >> 16]), encode("ori", [29, 29, iterations & 0xFFFF]),
              encode("mtspr", [9, 29])] + list(body_words))
    loop_at = CODE + 4 * 3
    words.append(encode("bc", [16, 0, loop_at], pc=CODE + 4 * len(words)))    # bdnz loop
    words.append(0x7C00007C)
    code = np.array(words, ">u4").view(np.uint8)
    mem[CODE:CODE + len(code)] = code
    mem[DATA:DATA + len(data)] = np.frombuffer(data, np.uint8)
    st = I.new_state(CODE)
    st[:29] = gprs[:29]
    st[30], st[31] = INDEX, DATA
    st[I.S_CR], st[I.S_XER] = cr, xer
    return mem, st


def _compare(mem, st, max_cycles=1 << 40, with_reference=False):
    m1, s1, m2, s2 = mem.copy(), st.copy(), mem.copy(), st.copy()
    r1 = I.run(m1, s1, max_cycles, hot_threshold=2)
    r2 = I.run(m2, s2, max_cycles, hot_threshold=0)
    assert r1 == r2
    diff = np.flatnonzero(s1 != s2)
    assert not len(diff), {int(k): (hex(s1[k]), hex(s2[k])) for k in diff}
    assert np.array_equal(m1, m2)
    if with_reference:
        m3, s3 = mem.copy(), st.copy()
        assert R.run(m3, s3, max_cycles) == r1
        assert np.array_equal(s1, s3) and np.array_equal(m1, m3)
    return r1, s1, m1


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(hs.lists(_insn, min_size=1, max_size=12),
       hs.lists(hs.integers(0, 0xFFFFFFFF), min_size=30, max_size=30),
       hs.integers(0, 0xFFFFFFFF), hs.sampled_from([0, 0x80000000, 0x20000000]),
       hs.binary(min_size=0x200, max_size=0x200), hs.integers(3, 40))
def test_random_loops_match_the_interpreter(body, gprs, cr, xer, data, iterations):
    mem, st = _setup(body, gprs, cr, xer, data, iterations)
    status, s, _ = _compare(mem, st, with_reference=iterations < 10)
    assert status == I.Status.SLEEPING
    assert s[I.S_INSNS] == 3 + iterations * (len(body) + 1) + 1
    dec = I.predecode_memory(mem)
    I.run(mem.copy(), st.copy(), decoded=dec, hot_threshold=2)
    assert dec[(CODE + 12) >> 2, 9] > 0          # the loop ran translated


def _src_run(src, max_cycles=1 << 40, **kw):
    img = assemble(src).image()
    mem = np.zeros(0x2000, np.uint8)
    mem[:len(img)] = np.frombuffer(img, np.uint8)
    return _compare(mem, I.new_state(), max_cycles, **kw)


def test_translation_is_used_and_fast():
    src = """
        lis r4, 0x10
        mtctr r4
        li r3, 0
    1:  addi r3, r3, 1
        xor r5, r3, r4
        add r6, r6, r5
        bdnz 1b
        wait
    """
    img = assemble(src).image()
    mem = np.zeros(0x1000, np.uint8)
    mem[:len(img)] = np.frombuffer(img, np.uint8)
    dec = I.predecode_memory(mem)
    st = I.new_state()
    assert I.run(mem, st, decoded=dec, hot_threshold=100) == I.Status.SLEEPING
    assert dec[3, 9] > 0                                     # the loop at 0xC was translated
    assert st[3] == 0x100000 and st[I.S_INSNS] == 4 + 4 * 0x100000


@pytest.mark.parametrize("src", [
    # a pointer walking into misalignment: exits before the faulting load
    "li r4, 0x1000\n li r5, 100\n mtctr r5\n1: lwz r6, 0(r4)\n addi r4, r4, 2\n bdnz 1b\n wait\n",
    # a store that walks out of memory
    "lis r4, 0\n ori r4, r4, 0x1F00\n li r5, 1000\n mtctr r5\n1: stw r5, 0(r4)\n addi r4, r4, 16\n bdnz 1b\n wait\n",
    # a register-bus access inside the loop
    "lis r4, 0x8000\n li r5, 100\n mtctr r5\n1: addi r3, r3, 1\n cmpwi r3, 50\n blt 1b\n lwz r6, 0(r4)\n wait\n",
    # compare-and-branch loop on a CR bit, with record forms
    "li r3, 0\n1: addi r3, r3, 3\n andi. r7, r3, 7\n rlwinm. r8, r3, 4, 0, 27\n cmplwi cr2, r3, 3000\n blt cr2, 1b\n wait\n",
    # self-modifying: the loop overwrites its own increment after 20 iterations
    "li r3, 0\n lis r9, 0x3863\n ori r9, r9, 5\n li r10, 0\n"
    "1: addi r3, r3, 1\n addi r10, r10, 1\n cmpwi r10, 20\n bne 2f\n stw r9, 16(0)\n2: cmpwi r10, 60\n blt 1b\n wait\n",
])
def test_exits_match_the_interpreter(src):
    _src_run(src, with_reference=True)


def test_budget_exit_mid_loop():
    src = "li r3, 0\n li r4, 0\n1: addi r3, r3, 1\n mullw r4, r3, r3\n b 1b\n"
    for budget in (1000, 1001, 1003, 12345):
        status, st, _ = _src_run(src, max_cycles=budget)
        assert status == I.Status.MAX_CYCLES and st[I.S_CYCLES] >= budget


def test_decrementer_falls_back_to_the_interpreter():
    src = """
        b start
        .org 0x24
        b dec
        .org 0x40
    dec:
        addi r20, r20, 1
        li r21, 2000
        mtdec r21
        rfi
    start:
        li r3, 0
        ori r3, r3, 0x8000
        mtmsr r3
        li r21, 2000
        mtdec r21
        lis r5, 2
        mtctr r5
    1:  addi r6, r6, 1
        bdnz 1b
        li r3, 0
        mtmsr r3                 # no more decrementer interrupts: sleep for good
        wait
    """
    status, st, _ = _src_run(src)
    assert status == I.Status.SLEEPING and st[6] == 0x20000 and st[20] > 10


def test_untranslatable_loops_are_marked():
    img = assemble("li r5, 100\n mtctr r5\n1: addc r3, r3, r5\n bdnz 1b\n wait\n").image()
    mem = np.zeros(0x1000, np.uint8)
    mem[:len(img)] = np.frombuffer(img, np.uint8)
    dec = I.predecode_memory(mem)
    assert I.run(mem, I.new_state(), decoded=dec, hot_threshold=5) == I.Status.SLEEPING
    assert dec[2, 9] == -1 and T.translate(dec[2:], 8) is None
