"""Interrupts, the timer unit (time base, decrementer, FIT), sleep and the
register-bus exit, on both the numba interpreter and the plain-Python
reference (same expected values).

Timer expectations are worked out by hand from the nux RTL
(github.com/electronicvisions/nux, src/rtl): processor/timer_unit.sv (per
clock edge the time base increments, DEC counts down while non-zero and in
the edge where it is 1 sets TSR.DIS and reloads DECAR when TCR.ARE, TSR.FIS
is set when TBL bit 8/12/16/20 rises; a write lands in one edge, TSR written
ones clear), processor/int_sched.sv (FIT before decrementer, both need
MSR[EE]), processor/interrupt_ctrl.sv (a timer request wakes `wait`),
packages/pu_types_pkg.sv (SPR numbers, TCR/TSR bits).  The twin's clock
convention: every instruction here takes one cycle (`b`, li, mtspr, ...), an
mtspr lands at the end of its cycle, mfspr reads at the start of its cycle,
and interrupt entry takes INTERRUPT_ENTRY_CYCLES."""
from __future__ import annotations

import numpy as np
import pytest

from isa.ppu.asm import assemble
from isa.ppu.core import TCR_ARE, TCR_DIE, TCR_FIE, TSR_DIS, TSR_FIS, VECTORS
from isa.ppu.iomap import INTERRUPT_ENTRY_CYCLES
from twin.ppu import interp as I
from twin.ppu import reference as R

IMPLS = pytest.mark.parametrize("impl", [I, R], ids=["numba", "reference"])


def _mem(src: str, size: int = 0x2000):
    prog = assemble(src)
    img = prog.image()
    mem = np.zeros(size, np.uint8)
    mem[:len(img)] = np.frombuffer(img, np.uint8)
    return mem, prog.symbols


def _run(impl, src, max_cycles=100_000, st=None, **kw):
    mem, sym = _mem(src)
    st = I.new_state() if st is None else st
    status = impl.run(mem, st, max_cycles, **kw)
    return status, st, mem, sym


HANDLERS = """
    b start
    .org 0x18
    b align_handler
    .org 0x1c
    b prog_handler
    .org 0x2c                # FIT (nux RTL pu_interrupt_pkg.sv IVO_FIT = word 0xb)
    b fit_handler
    .org 0x30                # decrementer (IVO_DECREMENTER = word 0xc)
    b dec_handler
    .org 0x40
prog_handler:                # r20 = SRR0, r21 = ESR; skip the instruction
    mfsrr0 r20
    mfspr r21, 62
    addi r22, r20, 4
    mtsrr0 r22
    rfi
align_handler:               # r23 = SRR0, r24 = DEAR
    mfsrr0 r23
    mfspr r24, 61
    addi r22, r23, 4
    mtsrr0 r22
    rfi
dec_handler:                 # time, count, SRR0, log; acknowledge TSR.DIS
    mfspr r27, 284
    addi r25, r25, 1
    mfsrr0 r26
    li r29, 1
    stwu r29, 4(r19)
    stwu r27, 4(r18)
    lis r29, 0x0800
    mtspr 336, r29
    rfi
fit_handler:                 # time, count, log; acknowledge TSR.FIS
    mfspr r31, 284
    addi r30, r30, 1
    li r29, 2
    stwu r29, 4(r19)
    stwu r31, 4(r18)
    lis r29, 0x0400
    mtspr 336, r29
    rfi
"""


@IMPLS
@pytest.mark.parametrize("body, reg, want_esr", [
    ("bad: .long 0\n", 21, 0x08000000),
    ("bad: twi 31,0,0\n", 21, 0x02000000),
    ("bad: mfspr r3, 287\n", 21, 0x08000000),
    # eciwx: unimplemented, ESR[PUO] = Power ISA 2.06 bit 45 (pu_types_pkg.sv struct Esr:
    # reserved 0:3, pil 4, ppr, ptr, fp, st 8, reserved, dlk 10:11, ap 12, puo 13)
    ("bad: .long 0x7c00026c\n", 21, 1 << (31 - 13)),
])
def test_program_interrupt_vectors_and_returns(impl, body, reg, want_esr):
    src = HANDLERS + "start:\n li r3, 1\n" + body + " li r4, 2\n wait\n"
    status, st, _, sym = _run(impl, src)
    assert status == I.Status.SLEEPING
    assert st[20] == sym["bad"] and st[reg] == want_esr
    assert st[3] == 1 and st[4] == 2                 # execution resumed after the faulting word
    assert st[I.S_SRR1] == 0


@IMPLS
@pytest.mark.parametrize("access", ["lwz r4, 0(r3)", "stw r4, 0(r3)"])
def test_alignment_interrupt_clears_esr_and_keeps_dear(impl, access):
    # nux RTL processor/int_sched.sv, the alignment branch: SRR0 = the access,
    # esr_in = '0 with esr_we (the ESR[ST] line is a TODO there), DEAR not
    # written (dear_we stays 0).  So ESR reads 0 for loads and stores alike and
    # DEAR keeps what firmware put there (0x1234 here).
    src = (HANDLERS + "start:\n li r7, 0x1234\n mtspr 61, r7\n lis r7, 0x0F8F\n ori r7, r7, 0x07E2\n"
           " mtspr 62, r7\n li r3, 0x1001\n bad: " + access + "\n mfspr r8, 62\n li r5, 5\n wait\n")
    status, st, _, sym = _run(impl, src)
    assert status == I.Status.SLEEPING
    assert (st[23], st[24], st[8], st[5]) == (sym["bad"], 0x1234, 0, 5)


@IMPLS
def test_no_vector_stops_with_fault_address(impl):
    status, st, _, _ = _run(impl, "b start\n .org 0x40\nstart: li r3, 0x1001\n lwz r4, 0(r3)\n")
    assert (status, st[I.S_FAULT]) == (I.Status.ALIGNMENT, 0x1001)


@IMPLS
def test_machine_check_needs_msr_me(impl):
    src = ("b start\n .org 0x04\n b mc\n .org 0x40\n"
           "mc: mfspr r20, 570\n mfspr r21, 61\n addi r22, r20, 4\n mtspr 570, r22\n rfmci\n"
           "start: li r9, 0x1000\n mtmsr r9\n lis r3, 0x10\n bad: lwz r4, 0(r3)\n li r5, 5\n wait\n")
    status, st, _, sym = _run(impl, src)
    assert status == I.Status.SLEEPING
    assert (st[20], st[21], st[5], st[I.S_MSR]) == (sym["bad"], 0x100000, 5, 0x1000)
    status, st, _, _ = _run(impl, src.replace("li r9, 0x1000", "li r9, 0"))
    assert (status, st[I.S_FAULT]) == (I.Status.BUS_ERROR, 0x100000)


E = INTERRUPT_ENTRY_CYCLES
PRE = HANDLERS + "start:\n li r19, 0xFFC\n li r18, 0x10FC\n"    # cycles 1, 2 (`b start` is cycle 0)


def _log(mem, base, n):
    return [int.from_bytes(mem[base + 4 * k:base + 4 * k + 4].tobytes(), "big") for k in range(n)]


def test_vectors_are_the_rtls():
    # pu_interrupt_pkg.sv: IVO_DOORBELL 9, IVO_CDOORBELL 0xa, IVO_FIT 0xb,
    # IVO_DECREMENTER 0xc (word addresses); no watchdog, no debug vector.
    assert (VECTORS["doorbell"], VECTORS["critical_doorbell"], VECTORS["fixed_interval_timer"],
            VECTORS["decrementer"]) == (0x24, 0x28, 0x2C, 0x30)
    assert "watchdog" not in VECTORS and "debug" not in VECTORS
    assert (TCR_DIE, TCR_FIE, TCR_ARE, TSR_DIS, TSR_FIS) == (0x04000000, 0x00800000, 0x00400000,
                                                             0x08000000, 0x04000000)


@IMPLS
def test_decrementer_wakes_wait(impl):
    src = PRE + """
        lis r3, 0x0400       # 3: TCR.DIE
        mtspr 340, r3        # 4
        li r3, 0             # 5
        ori r3, r3, 0x8000   # 6
        mtmsr r3             # 7: EE
        li r4, 500           # 8
        mtdec r4             # 9: DEC = 500 from time 10
    sleep:
        wait                 # 10
    after:
        li r28, 1
        wait
    """
    status, st, mem, sym = _run(impl, src)
    # DEC is 1 at time 10 + 499 = 509: that edge sets TSR.DIS, seen at 510, which
    # wakes the core and (DIE, EE) takes the interrupt; the handler's mfspr is
    # its second instruction (after the vector's branch).
    assert status == I.Status.SLEEPING
    assert st[25] == 1 and st[26] == sym["after"] and st[28] == 1
    assert st[27] == 510 + E + 1
    assert st[I.S_MSR] == 0x8000 and st[I.S_DEC] == 0
    # the handler acknowledged DIS; FIS rose with TBL bit 8 at 256 (FIE clear: no interrupt)
    assert st[I.S_TSR] == TSR_FIS and st[30] == 0


@IMPLS
def test_decrementer_masked_until_ee(impl):
    src = PRE + """
        lis r3, 0x0400
        mtspr 340, r3        # TCR.DIE
        li r4, 10
        mtdec r4
        li r5, 0
    1:  addi r5, r5, 1
        cmpwi r5, 20
        blt 1b
        mfspr r7, 336        # DIS set long ago, no interrupt without EE
        li r3, 0
        ori r3, r3, 0x8000
    enable:
        mtmsr r3
    next:
        li r6, 6
        wait
    """
    status, st, _, sym = _run(impl, src)
    assert status == I.Status.SLEEPING
    assert st[7] == TSR_DIS
    assert st[25] == 1 and st[26] == sym["next"] and st[6] == 6


@IMPLS
def test_decrementer_needs_tcr_die(impl):
    src = PRE + """
        li r3, 0
        ori r3, r3, 0x8000
        mtmsr r3             # EE, but TCR.DIE clear (its reset value)
        li r4, 5
        mtdec r4
        li r5, 0
    1:  addi r5, r5, 1
        cmpwi r5, 10
        blt 1b
        mfspr r7, 336
        wait                 # nothing requests: sleeps for good
    """
    status, st, _, _ = _run(impl, src, max_cycles=5000)
    assert status == I.Status.SLEEPING and st[I.S_SLEEP] == 1
    assert st[25] == 0 and st[7] == TSR_DIS


@IMPLS
def test_sleep_advances_time_and_decrementer(impl):
    src = "li r4, 1000\n mtdec r4\n wait\n"            # DEC = 1000 from time 2
    status, st, _, _ = _run(impl, src, max_cycles=400, sleep_advances=True)
    assert status == I.Status.SLEEPING and st[I.S_CYCLES] == 400 and st[I.S_SLEEP] == 1
    assert st[I.S_DEC] == 1000 - (400 - 2)
    assert st[I.S_TSR] == TSR_FIS                      # TBL bit 8 rose at 256
    # still asleep on the next run: DEC is 1 at time 1001, DIS from 1002; no
    # request without TCR.DIE, so no wake
    mem, _ = _mem(src)
    status = impl.run(mem, st, 5000, sleep_advances=True)
    assert status == I.Status.SLEEPING and st[I.S_CYCLES] == 5000 and st[I.S_SLEEP] == 1
    assert st[I.S_DEC] == 0 and st[I.S_TSR] == TSR_DIS | TSR_FIS


@IMPLS
def test_timer_request_wakes_wait_without_ee(impl):
    # interrupt_ctrl.sv wakes on (DIE and DIS) or (FIE and FIS) whatever MSR[EE]:
    # the core goes on after its `wait` without an interrupt.
    src = """
        lis r3, 0x0400       # 0
        mtspr 340, r3        # 1: TCR.DIE
        li r4, 100           # 2
        mtdec r4             # 3: DEC = 100 from time 4, DIS from 104
        wait                 # 4
        mfspr r5, 284        # 104
        mfspr r6, 336        # 105
        li r7, 0
        mtspr 340, r7        # no request any more
        wait
    """
    status, st, _, _ = _run(impl, src)
    assert status == I.Status.SLEEPING and st[5] == 104 and st[6] == TSR_DIS
    src = """
        lis r3, 0x0080       # 0
        mtspr 340, r3        # 1: TCR.FIE, FP = 0 (TBL bit 8)
        wait                 # 2
        mfspr r4, 284        # TBL 255 -> 256 in the edge ending cycle 255: awake at 256
        li r3, 0
        mtspr 340, r3
        wait
    """
    status, st, _, _ = _run(impl, src)
    assert status == I.Status.SLEEPING and st[4] == 256 and st[I.S_TSR] == TSR_FIS


@IMPLS
@pytest.mark.parametrize("tcr, want", [(0x0440, [58 + E, 158 + E, 258 + E]),      # DIE | ARE
                                       (0x0400, [58 + E])])                      # DIE: DEC stays 0
def test_decrementer_auto_reload(impl, tcr, want):
    src = PRE + f"""
        li r3, 100           # 3
        mtspr 54, r3         # 4: DECAR = 100
        li r4, 50            # 5
        mtdec r4             # 6: DEC = 50 from time 7: DIS at 57 (then, reloaded, 157, 257)
        lis r3, {tcr:#x}     # 7
        mtspr 340, r3        # 8
        li r3, 0             # 9
        ori r3, r3, 0x8000   # 10
        mtmsr r3             # 11
    spin:
        b spin
    """
    status, st, mem, _ = _run(impl, src, max_cycles=300)
    assert status == I.Status.MAX_CYCLES
    assert st[25] == len(want) and _log(mem, 0x1100, len(want)) == want
    assert _log(mem, 0x1000, len(want)) == [1] * len(want)
    if len(want) == 1:
        assert st[I.S_DEC] == 0
    else:                # DEC at 300: reloaded to 100 at 257, 43 edges since
        assert st[I.S_DEC] == 100 - 43


@IMPLS
@pytest.mark.parametrize("fp, bit", [(0, 8), (1, 12), (2, 16), (3, 20)])
def test_fixed_interval_timer_periods(impl, fp, bit):
    target = (1 << bit) - 20
    src = PRE + f"""
        lis r3, {0x0080 | fp << 8:#x}   # 3: TCR.FIE | FP
        mtspr 340, r3        # 4
        li r3, 0             # 5
        ori r3, r3, 0x8000   # 6
        mtmsr r3             # 7
        lis r4, {target >> 16:#x}       # 8
        ori r4, r4, {target & 0xFFFF:#x}   # 9
        mtspr 284, r4        # 10: TBL = 2^bit - 20 from time 11
    spin:
        b spin
    """
    # TBL reaches 2^bit (bit `bit` rises) at time 31: FIS, the FIT interrupt;
    # the handler reads TBL one cycle after entry.  Then once every 2^(bit+1).
    n = 2 if bit == 8 else 1
    status, st, mem, _ = _run(impl, src, max_cycles=700 if n == 2 else 300)
    assert status == I.Status.MAX_CYCLES
    want = [(1 << bit) + 1 + E + k * (2 << bit) for k in range(n)]
    assert st[30] == n and _log(mem, 0x1100, n) == want and _log(mem, 0x1000, n) == [2] * n
    assert st[25] == 0


@IMPLS
def test_fit_before_decrementer(impl):
    src = PRE + """
        lis r3, 0x0480
        mtspr 340, r3        # TCR.DIE | FIE
        li r4, 5
        mtdec r4             # DIS soon
        li r4, 0x100
        mtspr 284, r4        # TBL bit 8 rises by the write: FIS
        li r5, 0
    1:  addi r5, r5, 1
        cmpwi r5, 10
        blt 1b
        mfspr r7, 336
        li r3, 0
        ori r3, r3, 0x8000
        mtmsr r3
        li r3, 0
        mtspr 340, r3
        wait
    """
    status, st, mem, _ = _run(impl, src)
    assert status == I.Status.SLEEPING and st[7] == TSR_DIS | TSR_FIS
    assert _log(mem, 0x1000, 3) == [2, 1, 0]            # int_sched.sv: FIT, then decrementer


@IMPLS
def test_tsr_write_ones_to_clear_and_timer_sprs_read_back(impl):
    src = """
        li r4, 3             # 0
        mtdec r4             # 1: DEC = 3 from time 2, DIS from 5
        li r4, 0x100         # 2
        mtspr 284, r4        # 3: TBL bit 8 rises by the write: FIS from 4
        nop                  # 4
        mfspr r5, 336        # 5
        lis r6, 0x0400
        mtspr 336, r6        # clear FIS only
        mfspr r7, 336
        li r6, 0
        mtspr 336, r6        # clears nothing
        mfspr r8, 336
        lis r6, 0x0c00
        mtspr 336, r6        # clears both
        mfspr r9, 336
        lis r10, 0x1234
        ori r10, r10, 0x5678
        mtspr 54, r10
        mfspr r11, 54
        lis r12, 0x0300      # FP = 3, no enables
        mtspr 340, r12
        mfspr r13, 340
        wait
    """
    status, st, _, _ = _run(impl, src)
    assert status == I.Status.SLEEPING
    assert (st[5], st[7], st[8], st[9]) == (TSR_DIS | TSR_FIS, TSR_DIS, TSR_DIS, 0)
    assert st[11] == 0x12345678 and st[13] == 0x03000000 and st[I.S_DECAR] == 0x12345678


@IMPLS
@pytest.mark.parametrize("third, dis", [("mtspr 336, r0", 0), ("nop", TSR_DIS)])
def test_tsr_write_in_the_expiry_edge_drops_dis(impl, third, dis):
    # timer_unit.sv: a TSR write replaces next_tsr by tsr & ~written, so a DIS
    # set in the same edge (DEC = 1) is lost even when the write clears nothing.
    src = f"""
        li r4, 2             # 0
        mtdec r4             # 1: DEC = 2 from time 2
        li r0, 0             # 2: DEC 1 from time 3
        {third}              # 3: the edge where DEC is 1
        mfspr r5, 336
        mfspr r6, 22
        wait
    """
    status, st, _, _ = _run(impl, src)
    assert status == I.Status.SLEEPING and st[5] == dis and st[6] == 0


@IMPLS
def test_time_base_is_writable(impl):
    src = """
        li r3, -2            # 0
        mtspr 284, r3        # 1: TB = 0x0_FFFFFFFE from time 2
        nop                  # 2
        mfspr r4, 285        # 3: TB 0x0_FFFFFFFF
        mfspr r5, 285        # 4: TB 0x1_00000000 (the carry)
        mfspr r6, 284        # 5: 0x1_00000001
        lis r7, 0x1234       # 6
        ori r7, r7, 0x5678   # 7
        mtspr 285, r7        # 8: TBU written; TBL goes on incrementing (5 at time 9)
        mfspr r8, 285        # 9
        mfspr r9, 284        # 10
        mfspr r10, 268       # 11: the Power ISA's user-mode TBL number reads the same
        wait
    """
    status, st, _, _ = _run(impl, src)
    assert status == I.Status.SLEEPING
    assert (st[4], st[5], st[6], st[8], st[9], st[10]) == (0, 1, 1, 0x12345678, 6, 7)
    assert I.time_base(st) == (0x12345678 << 32) + 7 + 2      # after the wait's cycle (time 13)


@IMPLS
@pytest.mark.parametrize("tcr, status", [(0x0080, I.Status.FIT), (0x0400, I.Status.DECREMENTER)])
def test_timer_interrupt_without_vector_stops(impl, tcr, status):
    src = f"""
        lis r3, {tcr:#x}
        mtspr 340, r3
        li r4, 100
        mtdec r4
        li r3, 0
        ori r3, r3, 0x8000
        mtmsr r3
    spin:
        b spin
    """
    got, st, _, sym = _run(impl, src)
    assert got == status and st[I.S_FAULT] == sym["spin"]
    assert st[I.S_CYCLES] == (256 if status == I.Status.FIT else 104)


def test_timers_interpreter_and_reference_agree_on_the_whole_state():
    src = PRE + """
        li r3, 77
        mtspr 54, r3
        mtdec r3
        lis r3, 0x04c0       # DIE | FIE | ARE, FP 0
        mtspr 340, r3
        li r3, 0
        ori r3, r3, 0x8000
        mtmsr r3
        li r5, 0
    1:  addi r5, r5, 1
        mullw r6, r5, r5
        cmpwi r5, 3000
        blt 1b
        wait
    """
    for budget in (2000, 9000, 20000):
        got = []
        for impl in (I, R):
            status, st, mem, _ = _run(impl, src, max_cycles=budget, sleep_advances=True)
            got.append((status, st.copy(), mem.copy()))
        (s1, st1, m1), (s2, st2, m2) = got
        assert s1 == s2
        diff = np.flatnonzero(st1 != st2)
        assert not len(diff), {int(k): (int(st1[k]), int(st2[k])) for k in diff}
        assert np.array_equal(m1, m2)
        assert st1[25] > 10 and st1[30] >= 1


@IMPLS
def test_register_bus_exit_and_resume(impl):
    src = """
        lis r3, 0x8000
        ori r3, r3, 0x40
        lwzu r4, 8(r3)
        addi r4, r4, 1
        stw r4, 4(r3)
        li r5, 9
        wait
    """
    mem, _ = _mem(src)
    st = I.new_state()
    assert impl.run(mem, st) == I.Status.BUS
    assert (st[I.S_BUS_ADDR], st[I.S_BUS_WRITE], st[I.S_BUS_RT]) == (0x12, 0, 4)
    assert st[3] == 0x80000048 and st[I.S_PC] == 12
    I.complete_bus(st, 0x1233)
    assert impl.run(mem, st) == I.Status.BUS
    assert (st[I.S_BUS_ADDR], st[I.S_BUS_WRITE], st[I.S_BUS_DATA]) == (0x13, 1, 0x1234)
    assert impl.run(mem, st) == I.Status.SLEEPING and st[5] == 9


@IMPLS
def test_register_bus_needs_word_accesses(impl):
    status, st, _, _ = _run(impl, "lis r3, 0x8000\n lbz r4, 0(r3)\n")
    assert (status, st[I.S_FAULT]) == (I.Status.ALIGNMENT, 0x80000000)


@IMPLS
def test_stores_into_code_take_effect(impl):
    src = """
        lis r3, 0x3860          # li r3, 42 = 0x3860002a
        ori r3, r3, 42
        stw r3, target@l(0)
    target:
        li r3, 1
        wait
    """
    status, st, _, _ = _run(impl, src)
    assert status == I.Status.SLEEPING and st[3] == 42
