"""The nux core's remaining SPRs, MSR/ESR write masks, interrupt entry, the
returns (rfi, rfci, rfmci), the general-purpose pins with ICCR and the
external-input interrupt, and the doorbell, on the numba interpreter and the
plain-Python reference (same expected values), and through the PPU block's
registers and host.PPU.

qemu-ppc (user mode) models none of these (no SPR beyond the user ones, no
interrupt entry, no GIN/ICCR/doorbell), so every expected value is worked out
by hand from the public nux RTL (github.com/electronicvisions/nux, src/rtl):

* packages/pu_types_pkg.sv: Spr_index (GIN 65, GOUT 66, GOE 67, ICCR 68; AMR
  13, CTRL 136, VRSAVE 256, SPRG3-7 259-263), struct Msr (from the MSB: CM,
  13 reserved, CE, reserved, EE, PR, FP, ME, 2 reserved, DE, 3 reserved, IS,
  DS, 4 reserved -> CE 0x20000, EE 0x8000, ME 0x1000, DE 0x200, IS 0x20, DS
  0x10), struct Esr (4 reserved, PIL, PPR, PTR, FP, ST, reserved, DLK 2, AP,
  PUO, BO, PIE, 5 reserved, DATA, TLBI, PT, SPV, EPID, VLEMI, 3 reserved, MIF,
  reserved).
* processor/write_back.sv: MSR CM/PR/FP/reserved and ESR DLK/reserved forced
  to 0 on every write; registers for ESR, DEAR, SRR0/1, CSRR0/1, MCSRR0/1,
  ICCR, GOUT, GOE and GIN (the pins, read-only); none for AMR, CTRL, VRSAVE,
  SPRG3-7.
* processor/operand_fetch.sv: the mfspr multiplexer reads XER CTR LR SRR0/1
  CSRR0/1 DEAR ESR MCSRR0/1 GIN GOUT GOE and the timer SPRs; anything else
  (ICCR, the unstored ones) is 'x: the twin reads 0.
* processor/int_sched.sv: msr_set_base (MSR = 0 but CE, ME, DE kept) at every
  entry; SRR0 = the pc of the next instruction for asynchronous interrupts;
  priority alignment, trap, external input, FIT, decrementer, doorbell;
  restore_state (rfi/rfci/rfmci: MSR from SRR1/CSRR1/MCSRR1).
* packages/pu_interrupt_pkg.sv, struct Int_ctrl_reg: doorbell_en bit 0,
  gin_mask 8:11, gin_trigger 12:15, gin_sense_level 16:19; IVO_EXT_INPUT word
  5 (0x14), IVO_DOORBELL word 9 (0x24).
* processor/interrupt_ctrl.sv: pin i requests on level (sense 1: gin[i] !=
  trigger[i]) or edge (sense 0: rising for trigger 0, falling for 1), masked
  by gin_mask, pins 4..31 never; pin and doorbell requests are latched and
  cleared by the acknowledge or while MSR[EE] is 0; a request wakes `wait`.

Cycle convention as in test_ppu_interrupts.py: every instruction here takes
one cycle, mfspr reads at the start of its cycle, entry takes
INTERRUPT_ENTRY_CYCLES."""
from __future__ import annotations

import numpy as np
import pytest

import host
from isa.ppu.asm import assemble
from isa.ppu.codec import encode
from isa.ppu.core import VECTORS
from isa.ppu.iomap import INTERRUPT_ENTRY_CYCLES
from twin.ppu import interp as I
from twin.ppu import reference as R

IMPLS = pytest.mark.parametrize("impl", [I, R], ids=["numba", "reference"])
E = INTERRUPT_ENTRY_CYCLES


def _mem(src: str, size: int = 0x2000):
    img = assemble(src).image()
    mem = np.zeros(size, np.uint8)
    mem[:len(img)] = np.frombuffer(img, np.uint8)
    return mem, assemble(src).symbols


def _run(impl, src, max_cycles=100_000, st=None, mem=None, **kw):
    m, sym = _mem(src)
    mem = m if mem is None else mem
    st = I.new_state() if st is None else st
    status = impl.run(mem, st, max_cycles, **kw)
    return status, st, mem, sym


def test_vectors_and_return_encodings():
    # pu_interrupt_pkg.sv: IVO_EXT_INPUT = 12'h005, IVO_DOORBELL = 12'h009 (word addresses)
    assert (VECTORS["external_input"], VECTORS["doorbell"]) == (5 * 4, 9 * 4)
    # powerpc-linux-gnu-as -me500mc: rfi 4c000064, rfci 4c000066, rfmci 4c00004c;
    # "mfspr 3,65" 7c6112a6, "mtspr 68,3" 7c6413a6 (objdump -Me500mc)
    assert [encode(n, []) for n in ("rfi", "rfci", "rfmci")] == [0x4C000064, 0x4C000066, 0x4C00004C]
    assert encode("mfspr", [3, 65]) == 0x7C6112A6 and encode("mtspr", [68, 3]) == 0x7C6413A6


# ---------------------------------------------------------------- SPRs
ALL_ONES = " lis r3, 0xFFFF\n ori r3, r3, 0xFFFF\n"


@IMPLS
def test_save_restore_and_pin_sprs_read_back(impl):
    sprs = (58, 59, 570, 571, 61, 26, 27, 66, 67)     # CSRR0/1 MCSRR0/1 DEAR SRR0/1 GOUT GOE
    src = " lis r3, 0x89AB\n ori r3, r3, 0xCDEF\n"
    for k, n in enumerate(sprs):
        src += f" addi r3, r3, 1\n mtspr {n}, r3\n mfspr {10 + k}, {n}\n"
    status, st, _, _ = _run(impl, src + " wait\n")
    assert status == I.Status.SLEEPING
    assert [int(st[10 + k]) for k in range(len(sprs))] == [0x89ABCDEF + 1 + k for k in range(len(sprs))]
    assert (st[I.S_GOUT], st[I.S_GOE]) == (0x89ABCDEF + 8, 0x89ABCDEF + 9)


@IMPLS
def test_esr_and_msr_keep_only_their_bits(impl):
    src = ALL_ONES + " mtspr 62, r3\n mfspr r4, 62\n mtmsr r3\n mfmsr r5\n wait\n"
    status, st, _, _ = _run(impl, src)
    # ESR: PIL PPR PTR FP ST (bits 4-8), AP PUO BO PIE (12-15), DATA TLBI PT SPV EPID VLEMI (21-26), MIF (30)
    esr = sum(1 << (31 - b) for b in (4, 5, 6, 7, 8, 12, 13, 14, 15, 21, 22, 23, 24, 25, 26, 30))
    assert esr == 0x0F8F07E2
    # MSR: CE EE ME DE IS DS
    assert (st[4], st[5]) == (esr, 0x20000 | 0x8000 | 0x1000 | 0x200 | 0x20 | 0x10)


@IMPLS
@pytest.mark.parametrize("spr", [13, 136, 256, 259, 260, 261, 262, 263, 68])
def test_sprs_without_a_readable_register(impl, spr):
    # AMR CTRL VRSAVE SPRG3-7: named in Spr_index, no register (mtspr has no
    # effect); ICCR (68) has one but operand_fetch.sv cannot read it.  No
    # program interrupt (the RTL raises none): the twin reads 0.
    src = ALL_ONES + f" mtspr {spr}, r3\n mfspr r4, {spr}\n li r5, 5\n wait\n"
    status, st, _, _ = _run(impl, src)
    assert (status, st[4], st[5], st[I.S_SRR0]) == (I.Status.SLEEPING, 0, 5, 0)
    assert st[I.S_ICCR] == (0xFFFFFFFF if spr == 68 else 0)


@IMPLS
def test_gin_reads_the_pins_and_ignores_writes(impl):
    st = I.new_state()
    impl.drive_pins(st, 0xA5A5000F)
    src = " mfspr r4, 65\n li r3, 0\n mtspr 65, r3\n mfspr r5, 65\n wait\n"
    status, st, _, _ = _run(impl, src, st=st)
    assert (status, st[4], st[5]) == (I.Status.SLEEPING, 0xA5A5000F, 0xA5A5000F)


@IMPLS
def test_spr_the_rtl_does_not_name_is_a_program_interrupt(impl):
    src = "b start\n .org 0x1c\n mfspr r20, 62\n wait\n .org 0x40\nstart: bad: mfspr r3, 1000\n"
    status, st, _, sym = _run(impl, src)
    assert (status, st[I.S_SRR0], st[20]) == (I.Status.SLEEPING, sym["bad"], 0x08000000)


# ---------------------------------------------------------------- entry and returns
ENTRY = """
    b start
    .org 0x04
    b mc
    .org 0x1c
    b prog
    .org 0x40
prog: mfmsr r20
    mfspr r21, 27
    mfspr r22, 26
    addi r22, r22, 4
    mtspr 26, r22
    rfi
mc: mfmsr r23
    mfspr r24, 571
    mfspr r22, 570
    addi r22, r22, 4
    mtspr 570, r22
    rfmci
start:
""" + ALL_ONES + " mtmsr r3\n"


@IMPLS
def test_interrupt_entry_keeps_ce_me_de_only(impl):
    full = 0x29230                                    # every stored MSR bit (CE EE ME DE IS DS)
    src = ENTRY + " trap\n mfmsr r25\n lis r4, 0x10\n lwz r4, 0(r4)\n mfmsr r26\n wait\n"
    status, st, _, _ = _run(impl, src)
    assert status == I.Status.SLEEPING
    # program (trap): msr_set_base keeps CE ME DE; SRR1 the MSR before; rfi restores it
    assert (st[20], st[21], st[25]) == (0x20000 | 0x1000 | 0x200, full, full)
    # machine check (the twin's, for an access outside memory): the base rule, ME cleared too
    assert (st[23], st[24], st[26]) == (0x20000 | 0x200, full, full)


@IMPLS
@pytest.mark.parametrize("ret, s0, s1", [("rfi", 26, 27), ("rfci", 58, 59), ("rfmci", 570, 571)])
def test_returns_restore_pc_and_msr(impl, ret, s0, s1):
    # CSRR0/1 and MCSRR0/1 are written by mtspr only: the RTL's int_sched.sv
    # takes no critical or machine-check interrupt (its inputs are unused).
    src = f"""
        lis r3, there@h
        ori r3, r3, there@l
        addi r3, r3, 3           # low bits of the saved pc are dropped
        mtspr {s0}, r3
        lis r4, 0xFFFF
        ori r4, r4, 0x7FFF       # all but EE: the stored bits without EE
        mtspr {s1}, r4
        {ret}
        li r5, 1                 # skipped
        wait
    there:
        mfmsr r6
        wait
    """
    status, st, _, sym = _run(impl, src)
    assert (status, st[5], st[6]) == (I.Status.SLEEPING, 0, 0x29230 & ~0x8000)
    assert st[I.S_FAULT] == sym["there"] + 4 and st[I.S_CYCLES] == 10


# ---------------------------------------------------------------- pins and the external input
PINS = """
    b start
    .org 0x14                # external input (IVO_EXT_INPUT)
    b ext
    .org 0x24                # doorbell (IVO_DOORBELL)
    b bell
    .org 0x30                # decrementer
    b dec
    .org 0x40
ext: mfspr r20, 26           # SRR0
    mfspr r21, 284           # TBL at the handler's second instruction
    addi r25, r25, 1
    li r29, 1
    stwu r29, 4(r19)         # log 1
    mtspr 68, r28            # the handler's ICCR (r28)
    rfi
bell: mfspr r22, 26
    mfspr r23, 284
    addi r26, r26, 1
    li r29, 3
    stwu r29, 4(r19)         # log 3
    rfi
dec: addi r27, r27, 1
    li r29, 2
    stwu r29, 4(r19)         # log 2
    lis r29, 0x0800
    mtspr 336, r29           # TSR.DIS written 1: acknowledged
    rfi
start:
    li r19, 0xFFC
"""
LEVEL0 = (1 << 8) | (1 << 16)          # pin 0: mask, level, high
EDGE0 = 1 << 8                         # pin 0: mask, edge, rising
FALL0 = (1 << 8) | (1 << 12)           # pin 0: mask, edge, falling


def _li(r, v):
    return f" lis {r}, {v >> 16}\n ori {r}, {r}, {v & 0xFFFF}\n"


def _log(mem, n):
    return [int.from_bytes(mem[0x1000 + 4 * k:0x1004 + 4 * k].tobytes(), "big") for k in range(n)]


@IMPLS
def test_level_pin_interrupts_when_ee_is_set(impl):
    st = I.new_state()
    impl.drive_pins(st, 1)
    src = PINS + f"""
        li r28, 0                # handler: ICCR 0 (mask off)
    {_li("r3", LEVEL0)}
        mtspr 68, r3
        li r4, 0
        ori r4, r4, 0x8000
        after_iccr: mtmsr r4     # the request is taken after this instruction
        here: li r5, 5
        wait
    """
    status, st, mem, sym = _run(impl, src, st=st)
    assert status == I.Status.SLEEPING and st[5] == 5
    # b start, li r19, li r28, lis, ori, mtspr, li r4, ori, mtmsr: 9 cycles; entry;
    # `b ext` at the vector (1), mfspr r20 (1): the mfspr 284 reads at cycle 9 + E + 2
    assert (st[25], st[20], st[21]) == (1, sym["here"], 9 + E + 2)
    assert _log(mem, 1) == [1]


@IMPLS
def test_level_pin_without_ee_neither_interrupts_nor_wakes(impl):
    st = I.new_state()
    impl.drive_pins(st, 1)
    src = PINS + _li("r3", LEVEL0) + " mtspr 68, r3\n wait\n li r5, 5\n wait\n"
    status, st, _, _ = _run(impl, src, st=st)
    cycles = int(st[I.S_CYCLES])
    assert (status, st[25], st[5]) == (I.Status.SLEEPING, 0, 0)
    status = impl.run(_mem(src)[0], st, 100_000)            # asleep: nothing wakes it
    assert (status, st[5], st[I.S_CYCLES]) == (I.Status.SLEEPING, 0, cycles)


SLEEPER = PINS + """
    lis r3, {iccr} >> 16
    ori r3, r3, {iccr} & 0xFFFF
    mtspr 68, r3
    mr r28, r3                   # the handler leaves ICCR as it is
    li r4, 0
    ori r4, r4, 0x8000
    mtmsr r4
sleep: wait
    b sleep
"""


@IMPLS
@pytest.mark.parametrize("iccr, first, changes, want", [
    (EDGE0, 0, [1, 0, 1, 1, 0], [1, 1, 2, 2, 2]),   # rising edges only
    (FALL0, 1, [0, 1, 0, 0], [1, 1, 2, 2]),         # falling edges only
    (EDGE0 | (1 << 9) | (1 << 10), 0, [2, 6, 4, 0, 1], [1, 2, 2, 2, 3]),   # pins 0-2, any rising
    (EDGE0, 0, [0x10, 0xF0, 0x1F1], [0, 0, 1]),     # pins 4..31 never interrupt
    ((0xF << 8) | (0xF << 12), 0xF, [0xE, 0xE, 0xF, 0xC], [1, 1, 1, 2]),   # falling on any of 0-3
])
def test_edge_pins_wake_wait_and_interrupt(impl, iccr, first, changes, want):
    st = I.new_state()
    impl.drive_pins(st, first)
    mem, sym = _mem(SLEEPER.format(iccr=iccr))
    assert impl.run(mem, st, 100_000) == I.Status.SLEEPING and st[25] == 0
    got = []
    for pins in changes:
        impl.drive_pins(st, pins)
        assert impl.run(mem, st, 100_000) == I.Status.SLEEPING
        got.append(int(st[25]))
    assert got == want
    if want[-1]:
        assert st[20] == sym["sleep"] + 4             # SRR0: the instruction after `wait`


@IMPLS
def test_edge_while_ee_is_clear_is_lost(impl):
    src = PINS + f" li r3, {EDGE0}\n mtspr 68, r3\n wait\n after: li r4, 0\n ori r4, r4, 0x8000\n" \
        " mtmsr r4\n li r5, 5\n wait\n"
    mem, sym = _mem(src)
    st = I.new_state()
    assert impl.run(mem, st, 100_000) == I.Status.SLEEPING
    impl.drive_pins(st, 1)                            # EE is 0: not latched, does not wake
    assert impl.run(mem, st, 100_000) == I.Status.SLEEPING and st[I.S_PC] == sym["after"]
    st[I.S_SLEEP] = 0                                 # the host releases `wait` (control)
    assert impl.run(mem, st, 100_000) == I.Status.SLEEPING
    assert (st[5], st[25]) == (5, 0)                  # EE set later: the edge is gone


@IMPLS
def test_level_pin_becomes_a_request_when_iccr_selects_it(impl):
    # pins already high, then the firmware selects level sensing: taken after the mtspr
    st = I.new_state()
    impl.drive_pins(st, 1)
    src = PINS + " li r28, 0\n li r4, 0\n ori r4, r4, 0x8000\n mtmsr r4\n" + _li("r3", LEVEL0) + \
        " mtspr 68, r3\n here: li r5, 5\n wait\n"
    status, st, _, sym = _run(impl, src, st=st)
    assert (status, st[25], st[20], st[5]) == (I.Status.SLEEPING, 1, sym["here"], 5)


@IMPLS
def test_external_before_decrementer_before_doorbell(impl):
    # DEC expires and pin 0 is high (level) while EE is clear; the doorbell
    # rings while the core sleeps with EE set: one entry each, int_sched.sv order.
    st = I.new_state()
    impl.drive_pins(st, 1)
    src = PINS + f"""
        li r28, 0
    {_li("r3", LEVEL0)}
        mtspr 68, r3
        lis r3, 0x0400           # TCR.DIE
        mtspr 340, r3
        li r3, 1
        mtdec r3
        nop
        li r4, 0
        ori r4, r4, 0x8000
        mtmsr r4
    sleep: wait
        b sleep
    """
    mem, _ = _mem(src)
    assert impl.run(mem, st, 100_000) == I.Status.SLEEPING
    assert _log(mem, 2) == [1, 2]
    impl.doorbell_edge(st)
    assert impl.run(mem, st, 100_000) == I.Status.SLEEPING
    assert _log(mem, 3) == [1, 2, 3] and (st[25], st[26], st[27]) == (1, 1, 1)


@IMPLS
def test_doorbell_wakes_wait_and_interrupts(impl):
    mem, sym = _mem(SLEEPER.format(iccr=0))           # ICCR.doorbell_en 0: gates nothing
    st = I.new_state()
    assert impl.run(mem, st, 100_000) == I.Status.SLEEPING
    c = int(st[I.S_CYCLES])
    impl.doorbell_edge(st)
    assert impl.run(mem, st, 100_000) == I.Status.SLEEPING
    # woken at once: entry, `b bell`, mfspr r22; the mfspr 284 reads at c + E + 2
    assert (st[26], st[22], st[23]) == (1, sym["sleep"] + 4, c + E + 2)
    impl.doorbell_edge(st)
    impl.doorbell_edge(st)                            # two edges before it runs: one request
    assert impl.run(mem, st, 100_000) == I.Status.SLEEPING and st[26] == 2


@IMPLS
def test_doorbell_without_ee_is_lost(impl):
    mem, _ = _mem(PINS + " wait\n li r4, 0\n ori r4, r4, 0x8000\n mtmsr r4\n li r5, 5\n wait\n")
    st = I.new_state()
    assert impl.run(mem, st, 100_000) == I.Status.SLEEPING
    impl.doorbell_edge(st)
    assert impl.run(mem, st, 100_000) == I.Status.SLEEPING and st[5] == 0
    st[I.S_SLEEP] = 0
    assert impl.run(mem, st, 100_000) == I.Status.SLEEPING and (st[5], st[26]) == (5, 0)


@IMPLS
@pytest.mark.parametrize("which", ["pin", "doorbell"])
def test_no_vector_stops(impl, which):
    src = f"b start\n .org 0x40\nstart: li r3, {EDGE0}\n mtspr 68, r3\n li r4, 0\n ori r4, r4, 0x8000\n" \
        " mtmsr r4\nsleep: wait\n b sleep\n"                     # vectors 0x14 and 0x24 hold 0
    mem, sym = _mem(src)
    st = I.new_state()
    assert impl.run(mem, st, 100_000) == I.Status.SLEEPING
    if which == "pin":
        impl.drive_pins(st, 1)
    else:
        impl.doorbell_edge(st)
    status = impl.run(mem, st, 100_000)
    assert status == (I.Status.EXTERNAL if which == "pin" else I.Status.DOORBELL)
    assert st[I.S_FAULT] == sym["sleep"] + 4


def test_interpreter_and_reference_agree_on_the_whole_state():
    src = SLEEPER.format(iccr=EDGE0 | (1 << 9) | (1 << 17))      # pin 0 rising edge, pin 1 high level
    states = []
    for impl in (I, R):
        mem, _ = _mem(src)
        st = I.new_state()
        seq = [impl.run(mem, st, 100_000)]
        for step in (1, 3, 1, 0, "bell", 2, 0, "bell"):
            if step == "bell":
                impl.doorbell_edge(st)
            else:
                impl.drive_pins(st, step)
            seq.append(impl.run(mem, st, 100_000))
            seq.append(st.copy())
        states.append((seq, mem.copy()))
    (a, ma), (b, mb) = states
    for x, y in zip(a, b):
        if isinstance(x, np.ndarray):
            diff = np.flatnonzero(x != y)
            assert not len(diff), {int(k): (int(x[k]), int(y[k])) for k in diff}
        else:
            assert x == y
    assert (ma == mb).all()


# ---------------------------------------------------------------- on the chip, through host.PPU
def test_host_pins_doorbell_and_outputs():
    src = PINS + f"""
        li r28, {EDGE0}
        mtspr 68, r28
        lis r3, 0x1234
        ori r3, r3, 0x5678
        mtspr 66, r3             # GOUT
        li r3, 0xFF
        mtspr 67, r3             # GOE
        li r4, 0
        ori r4, r4, 0x8000
        mtmsr r4
    sleep: wait
        mfspr r24, 65            # GIN after each wake-up
        b sleep
    """
    img = assemble(src).image()
    with host.connect("twin:dls") as conn:
        ppu = host.PPU(conn)
        ppu.load(img)
        ppu.start()
        ppu.run_until_sleep(timeout_hw_seconds=1e-4)
        assert ppu.pins() == (0, 0x12345678, 0xFF)
        ppu.set_pins(0x101)
        ppu.run_until_sleep(timeout_hw_seconds=1e-4)
        ppu.ring_doorbell()
        ppu.run_until_sleep(timeout_hw_seconds=1e-4)
        regs = ppu.registers()
        assert (regs[25], regs[26], regs[24]) == (1, 1, 0x101)
        assert ppu.pins()[0] == 0x101
        ppu.stop()
        ppu.start()                                   # a core reset keeps the pins as driven
        ppu.run_until_sleep(timeout_hw_seconds=1e-4)
        assert ppu.pins() == (0x101, 0x12345678, 0xFF)
        with pytest.raises(ValueError, match=r"pins 0x100000000: the core has 32 input pins"):
            ppu.set_pins(1 << 32)
