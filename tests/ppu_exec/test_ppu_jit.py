"""Region translation (twin.ppu.jit) against the interpreter alone: the same
final state, memory, cycle count and stop status on random loops, on random
programs with branches, calls, indirect jumps, faults and a running
decrementer, on every kind of early exit, and on gcc-compiled C."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from isa.ppu.asm import assemble
from isa.ppu.codec import decode, encode
from twin.ppu import interp as I
from twin.ppu import reference as R
from twin.ppu import jit

from _exec_cases import CODE, DATA, DATA_SIZE, INDEX, MEM_SIZE, SPRS_TWIN, instruction, setup

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
    assert dec[(CODE + 12) >> 2, I.COL_JIT] > 0          # the loop ran translated


def _image(img: bytes, size: int = 0x1000):
    """(memory holding img at 0, its decoded rows)."""
    mem = np.zeros(size, np.uint8)
    mem[:len(img)] = np.frombuffer(img, np.uint8)
    return mem, I.predecode_memory(mem)


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
    mem, dec = _image(img)
    st = I.new_state()
    assert I.run(mem, st, decoded=dec, hot_threshold=100) == I.Status.SLEEPING
    assert dec[3, I.COL_JIT] > 0                             # the loop at 0xC was translated
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
        .org 0x30                # decrementer vector (nux RTL pu_interrupt_pkg.sv IVO_DECREMENTER)
        b dec
        .org 0x40
    dec:
        addi r20, r20, 1
        li r21, 2000
        mtdec r21
        lis r21, 0x0800          # TSR.DIS: write one to clear (nux RTL timer_unit.sv)
        mtspr 336, r21
        rfi
    start:
        lis r3, 0x0400           # TCR.DIE (pu_types_pkg.sv Tcr bit 5)
        mtspr 340, r3
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
        mtspr 340, r3            # (TCR.DIE off: a decrementer request would wake `wait`)
        wait
    """
    status, st, _ = _src_run(src)
    assert status == I.Status.SLEEPING and st[6] == 0x20000 and st[20] > 10


def test_untranslatable_code_is_marked():
    # the loop head is mtmsr (outside the subset): nothing to translate there
    img = assemble("li r5, 100\n mtctr r5\n li r0, 0\n1: mtmsr r0\n addc r3, r3, r5\n bdnz 1b\n wait\n").image()
    mem, dec = _image(img)
    assert I.run(mem, I.new_state(), decoded=dec, hot_threshold=5) == I.Status.SLEEPING
    assert dec[3, I.COL_JIT] == -1


# ---------------------------------------------------------------------------- random programs
WAIT = 0x7C00007C
CODE_ADDRS = (20, 21, 22, 23)     # GPRs seeded with code addresses (for mtlr / mtctr + blr / bctr)


@hs.composite
def _program(draw):
    """Random code with forward and backward conditional branches, calls,
    returns, indirect jumps, loads/stores, SPR moves, traps and CR logic: it
    may loop until the cycle budget, fault, or reach `wait`."""
    n = draw(hs.integers(6, 48))
    words = []
    for i in range(n):
        pc = CODE + 4 * i
        tgt = CODE + 4 * draw(hs.integers(0, n))
        kind = draw(hs.sampled_from(["insn"] * 8 + ["bc", "bc", "b", "bl", "blr", "bctr", "mtctr", "mtlr"]))
        if kind == "insn":
            words.append(draw(instruction(sprs=SPRS_TWIN)))
        elif kind == "bc":
            bo = draw(hs.sampled_from([4, 12, 16, 18, 0, 2, 8, 10, 20]))
            words.append(encode("bc", [bo, draw(hs.integers(0, 31)), tgt], pc=pc))
        elif kind in ("b", "bl"):
            words.append(encode(kind, [tgt], pc=pc))
        elif kind == "blr":
            words.append(encode(draw(hs.sampled_from(["bclr", "bclrl"])),
                                [draw(hs.sampled_from([20, 12, 4, 16])), draw(hs.integers(0, 31)), 0]))
        elif kind == "bctr":
            words.append(encode(draw(hs.sampled_from(["bcctr", "bcctrl"])),
                                [draw(hs.sampled_from([20, 12, 4])), draw(hs.integers(0, 31)), 0]))
        else:
            words.append(encode("mtspr", [9 if kind == "mtctr" else 8, draw(hs.sampled_from(CODE_ADDRS))]))
    words.append(WAIT)
    gprs = draw(hs.lists(hs.integers(0, 0xFFFFFFFF), min_size=30, max_size=30))
    for r in CODE_ADDRS:
        gprs[r] = CODE + 4 * draw(hs.integers(0, n))
    return (words, gprs, draw(hs.integers(0, 0xFFFFFFFF)),
            draw(hs.sampled_from([0, 0x20000000, 0x80000000])),
            draw(hs.binary(min_size=DATA_SIZE, max_size=DATA_SIZE)))


def _program_state(words, gprs, cr, xer, data, decrementer):
    mem, st = setup(words[:-1], gprs, cr, xer, data, wait_word=words[-1])
    st[I.S_LR] = st[I.S_CTR] = gprs[CODE_ADDRS[0]]
    if decrementer:
        # handler at the decrementer vector: count in SPRG3, re-arm, return
        handler = [encode("mfspr", [0, 275]), encode("addi", [0, 0, 1]), encode("mtspr", [275, 0]),
                   encode("addi", [0, 0, decrementer]), encode("mtspr", [22, 0]),
                   encode("addis", [0, 0, I.TSR_DIS >> 16]), encode("mtspr", [336, 0]),    # acknowledge
                   encode("rfi", [])]
        vec = I.VECTORS["decrementer"]
        mem[vec:vec + 4] = np.array([encode("b", [0x40], pc=vec)], ">u4").view(np.uint8)
        mem[0x40:0x40 + 4 * len(handler)] = np.array(handler, ">u4").view(np.uint8)
        st[I.S_MSR] = I.MSR_EE
        st[I.S_TCR] = I.TCR_DIE
        st[I.S_DEC] = decrementer
    return mem, st


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(_program(), hs.sampled_from([0, 0, 7, 50, 333]), hs.sampled_from([1, 3]),
       hs.sampled_from([2_000, 20_000]))
def test_random_programs_match_the_interpreter(case, decrementer, threshold, budget):
    mem, st = _program_state(*case, decrementer=decrementer)
    m1, s1, m2, s2 = mem.copy(), st.copy(), mem.copy(), st.copy()
    r1 = I.run(m1, s1, budget, hot_threshold=threshold)
    r2 = I.run(m2, s2, budget, hot_threshold=0)
    assert r1 == r2
    diff = np.flatnonzero(s1 != s2)
    assert not len(diff), {int(k): (hex(s1[k]), hex(s2[k])) for k in diff}
    assert np.array_equal(m1, m2)


def test_random_programs_do_run_translated():
    """The property above is not vacuous: loops and calls of such programs are
    translated and entered."""
    src = """
        li r3, 0
        li r4, 300
        mtctr r4
    1:  bl f
        addi r3, r3, 1
        bdnz 1b
        wait
    f:  lwz r5, 0x800(0)
        addi r5, r5, 3
        stw r5, 0x800(0)
        blr
    """
    img = assemble(src).image()
    mem, dec = _image(img)
    st = I.new_state()
    used = lambda: jit.stats["regions"] + jit.stats["disk"] + jit.stats["cached"]
    before = used()
    assert I.run(mem, st, decoded=dec, hot_threshold=3) == I.Status.SLEEPING
    assert used() > before
    assert (dec[:, I.COL_JIT] > 0).sum() >= 2 and st[3] == 300
    assert int.from_bytes(mem[0x800:0x804].tobytes(), "big") == 900


def test_decrementer_interrupts_at_the_same_cycle_while_translated():
    """A running decrementer no longer keeps code out of translation; the
    interrupt is still taken at exactly the interpreter's cycle."""
    src = """
        b start
        .org 0x30                # decrementer vector (nux RTL pu_interrupt_pkg.sv IVO_DECREMENTER)
        b dec
        .org 0x40
    dec:
        mfspr r20, 284           # time base at the interrupt
        stwu r20, 4(r22)
        addi r21, r21, 1
        li r23, 777
        mtdec r23
        lis r23, 0x0800          # TSR.DIS: write one to clear (nux RTL timer_unit.sv)
        mtspr 336, r23
        rfi
    start:
        li r22, 0x7FC
        lis r3, 0x0400           # TCR.DIE (pu_types_pkg.sv Tcr bit 5)
        mtspr 340, r3
        lis r3, 0
        ori r3, r3, 0x8000
        mtmsr r3
        li r23, 777
        mtdec r23
        lis r5, 1
        mtctr r5
    1:  addi r6, r6, 1
        mullw r7, r6, r6
        bdnz 1b
        li r3, 0
        mtmsr r3
        mtspr 340, r3            # TCR.DIE off: nothing wakes the `wait`
        wait
    """
    img = assemble(src).image()
    for threshold in (2, 0):
        mem, dec = _image(img)
        st = I.new_state()
        assert I.run(mem, st, decoded=dec, hot_threshold=threshold) == I.Status.SLEEPING
        if threshold:
            translated, times = st.copy(), mem[0x800:0xC00].copy()
            assert dec[:, I.COL_JIT].max() > 0
    assert np.array_equal(translated, st) and np.array_equal(times, mem[0x800:0xC00])
    assert st[21] > 50


def test_store_into_translated_code_drops_the_translation():
    """Code rewritten after it was translated runs as rewritten (the store
    marks the translations dirty; they are dropped before the next entry)."""
    src = """
        li r3, 0
        li r10, 0
        lis r9, 0x3863           # addi r3, r3, 5
        ori r9, r9, 5
    1:  addi r3, r3, 1           # at 0x10: rewritten after 200 iterations
        addi r10, r10, 1
        cmpwi r10, 200
        bne 2f
        stw r9, 0x10(0)
    2:  cmpwi r10, 400
        blt 1b
        wait
    """
    _src_run(src)                        # translated (threshold 2) = interpreter alone
    img = assemble(src).image()
    mem, dec = _image(img)
    st = I.new_state()
    assert I.run(mem, st, decoded=dec, hot_threshold=3) == I.Status.SLEEPING
    assert st[3] == 200 + 5 * 200


def test_host_write_to_translated_code_drops_the_translation():
    img = assemble("li r4, 50\n mtctr r4\n1: addi r3, r3, 1\n bdnz 1b\n wait\n").image()
    mem, dec = _image(img)
    st = I.new_state()
    assert I.run(mem, st, decoded=dec, hot_threshold=3) == I.Status.SLEEPING and st[3] == 50
    assert dec[2, I.COL_JIT] > 0
    mem[8:12] = np.array([encode("addi", [3, 3, 2])], ">u4").view(np.uint8)
    I.invalidate(dec, 2)
    assert dec[:, I.COL_JIT].max() == 0                   # every translation dropped
    st = I.new_state()
    assert I.run(mem, st, decoded=dec, hot_threshold=3) == I.Status.SLEEPING and st[3] == 100


# ---------------------------------------------------------------------------- compiled C
def test_compiled_c_matches_the_interpreter(tmp_path):
    """firmware/bench/mix.c (gcc -O2: calls, jump tables, loads/stores, divides)
    leaves the same registers, memory and cycle count translated or not."""
    import subprocess
    from tools.bench import cosim
    tools = cosim.gnu_tools()
    if tools is None:
        if __import__("os").environ.get("CI"):
            pytest.fail("GNU PowerPC tools missing: " + ", ".join(cosim.missing_gnu_tools()))
        pytest.skip("GNU PowerPC tools missing")
    elf = cosim.build_mix(tmp_path, 30, "ppu", tools)
    img = tmp_path / "mix.bin"
    subprocess.run([tools["gcc"].replace("gcc", "objcopy"), "-O", "binary", str(elf), str(img)], check=True)
    image = np.fromfile(img, np.uint8)
    results = []
    for threshold in (50, 0):
        mem = np.zeros(16384, np.uint8)
        mem[:len(image)] = image
        dec = I.predecode_memory(mem)
        st = I.new_state()
        assert I.run(mem, st, 1 << 34, decoded=dec, hot_threshold=threshold) == I.Status.SLEEPING
        results.append((st, mem, int((dec[:, I.COL_JIT] > 0).sum())))
    (s1, m1, entries), (s2, m2, _) = results
    assert entries > 10
    diff = np.flatnonzero(s1 != s2)
    assert not len(diff), {int(k): (hex(s1[k]), hex(s2[k])) for k in diff}
    assert np.array_equal(m1, m2)


# ---------------------------------------------------------------------------- vector code
from test_fxv_exec import ARITH, _operands, vector_case  # noqa: E402



@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(hs.lists(vector_case(names=ARITH), min_size=2, max_size=10), hs.integers(2, 12))
def test_random_vector_loops_match_the_interpreter(cases, iterations):
    """Loops of random fxv arithmetic, compare and select (every condition, both
    widths, 1 and 8 slices) translated leave the same vector state, registers
    and cycle count as the interpreter."""
    slices = cases[0][6].size // 35 // 16
    body = "".join(_operands(n, rt, ra, rb, c, sh) for n, rt, ra, rb, c, sh, *_ in cases)
    src = f"li r29, {iterations}\n mtctr r29\n1:\n{body} bdnz 1b\n wait\n"
    img = assemble(src).image()
    vec0, gprs = cases[0][6], cases[0][7]
    out = []
    for threshold in (1, 0):
        mem, dec = _image(img)
        st = I.new_state()
        st[:29] = gprs[:29]
        vec = vec0.copy()
        assert I.run(mem, st, decoded=dec, vec=vec, hot_threshold=threshold) == I.Status.SLEEPING
        out.append((st, vec, int((dec[:, I.COL_JIT] > 0).sum())))
    (s1, v1, entries), (s2, v2, _) = out
    if any(not n.startswith(("fxvpck", "fxvupck")) for n, *_ in cases):    # pack/unpack: interpreted
        assert entries > 0, "the loop must have run translated"
    diff = np.flatnonzero(v1 != v2)
    assert not len(diff), (src, slices, diff[:8], v1[diff[:8]], v2[diff[:8]])
    assert np.array_equal(s1, s2)


def test_code_after_vector_io_is_an_entry():
    """A loop whose body holds an instruction the interpreter executes itself
    (fxvlax here) is translated on both sides of it."""
    src = """
        li r1, 0x800
        li r5, 200
        mtctr r5
    1:  addi r3, r3, 1
        fxvlax 2, 0, r1
        fxvaddbm 3, 3, 2
        addi r4, r4, 2
        bdnz 1b
        wait
    """
    _src_run(src)
    img = assemble(src).image()
    mem, dec = _image(img)
    assert I.run(mem, I.new_state(), decoded=dec, hot_threshold=3) == I.Status.SLEEPING
    assert dec[3, I.COL_JIT] > 0 and dec[5, I.COL_JIT] > 0       # the loop head and the word after fxvlax
