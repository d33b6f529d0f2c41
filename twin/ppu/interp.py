"""PPU interpreter: predecode a memory image, run it in a numba loop.

State is one int64 array (`STATE_SIZE`, layout `S_*`); registers hold
unsigned 32-bit values.  Memory is a uint8 array, big-endian.  The vector
unit's state is a separate uint8 array (`new_vector_state(slices)`).

Choices where the Power ISA leaves results undefined (same in `reference`):

* divw / divwu by zero and divw 0x80000000 / -1: the result is the dividend
  (as if divided by 1; the same as qemu's TCG), OV is set by the o-forms,
  CR0 of the record forms reflects that result.
* cmp/cmpl/cmpi/cmpli with L=1 compare 32 bits (the PPU is 32-bit).
* mfocrf returns CR masked to the selected fields (others zero).
* bcctr with BO[2]=0 ignores the CTR decrement (invalid form).
* lmw/stmw/update forms with RA in the target range or RA=0 execute as written.

Interrupts (vectors are byte addresses; "installed" = the word there is not 0)
-------------------------------------------------------------------------------

    0x04 machine check    data access or fetch outside memory; taken only when
                          MSR[ME] (0x1000) is set, saves MCSRR0/1 (rfmci returns)
    0x08 critical input   not raised by the twin
    0x0C data storage     not raised (no MMU)
    0x10 insn storage     not raised (no MMU)
    0x14 external input   a pin request (S_IRQ: IRQ_EDGE latched, IRQ_LEVEL) and
                          MSR[EE]; SRR0 = the next instruction
    0x18 alignment        misaligned load/store/lmw/stmw/fxvlax/fxvstax, or a
                          non-word access to the register bus; ESR = 0, DEAR
                          untouched (int_sched.sv)
    0x1C program          illegal word (ESR[PIL] 0x08000000), trap (ESR[PTR]
                          0x02000000), SPR the core does not name (ESR[PIL]),
                          eciwx/ecowx (ESR[PUO] 0x00040000); SRR0 = the instruction
    0x20 system call      not raised (`sc` is not in the instruction set)
    0x24 doorbell         a latched doorbell edge (IRQ_DOORBELL) and MSR[EE],
                          after the timers
    0x28 crit. doorbell   not raised (nor by the RTL)
    0x2C FIT              TSR.FIS and TCR.FIE and MSR[EE] (0x8000); SRR0 = the
                          next instruction (after `wait` when it slept)
    0x30 decrementer      TSR.DIS and TCR.DIE and MSR[EE], after FIT (int_sched.sv)

(isa.ppu.core.VECTORS, after the nux RTL's pu_interrupt_pkg.sv; the core has
no watchdog and no debug interrupt.)

Taking an interrupt saves the pc and MSR in SRR0/SRR1 (MCSRR0/1 for machine
check), keeps MSR[CE, ME, DE] and clears every other bit (int_sched.sv
msr_set_base; ME too for machine check), clears the pin and doorbell latches
(EE is 0) and jumps to the vector; `rfi` / `rfci` / `rfmci` return.  MSR
and ESR keep only their stored bits (MSR_WRITABLE, ESR_WRITABLE; write_back.sv).
SPRs: `_SPR_READ` / `_SPR_WRITE` (GIN read-only, ICCR write-only, AMR CTRL
VRSAVE SPRG3-7 read 0 and ignore writes, numbers the core does not name are a
program interrupt).  Pins and doorbell: `drive_pins`, `doorbell_edge` (called
between runs by the PPU block) latch requests while MSR[EE]; MSR[EE] = 0
clears the latches; a latched request (or a level one with EE) wakes `wait`
(`cycles_to_wakeup`).  When the vector word is 0 the
core stops instead and `run` returns the cause (below) with S_FAULT holding
the faulting address, as before interrupts existed.

Interrupt entry costs `INTERRUPT_ENTRY_CYCLES` (isa.ppu.iomap), counted like
an instruction's cycles (the cycle budget, DEC, hardware time) but retiring
nothing, and it is one step of the loop towards YIELD_INSNS.  So a handler
whose first instruction faults again (an illegal word at 0x1C) takes the
interrupt again and again, as the Power ISA says, and the budget ends it.

Stuck in interrupt entry: the state an entry leads to is (vector, MSR[ME]);
EE is clear after any entry.  Between two entries without a retired
instruction nothing the faulting instruction reads can change (GPRs, memory,
MSR[ME]; only SRR0/1, ESR, DEAR, DEC and the cycle count move), so reaching
one of these states twice before an instruction retires means the core takes
the same interrupts for ever (only a host write to memory or a reset ends
it).  `_interrupt` keeps the states entered since the last retired
instruction (S_ENTRY_SEEN, reset when S_INSNS differs from S_ENTRY_INSNS)
and sets S_ENTRY_LOOP to the first vector entered a second time; the core goes on
taking the interrupt (the run ends at its budget).  `twin.ppu.block` reports
it as stop reason `STOP_INTERRUPT_LOOP` while no instruction has retired
since.  A machine check taken with MSR[ME] clears ME, so a second one
stops the core instead (a checkstop).

Timer unit (nux RTL processor/timer_unit.sv; SPR numbers and TCR/TSR bits in
isa.ppu.core): per clock edge the 64-bit time base TBU:TBL increments
(S_CYCLES + S_TB_OFFSET); DEC (22) counts down while non-zero and in the edge
where it is 1 sets TSR.DIS and reloads from DECAR (54, S_DECAR) when TCR.ARE,
else becomes 0; TSR.FIS is set when TBL bit 8/12/16/20 (TCR.FP 0..3) rises.
TSR (336, S_TSR) is written ones-to-clear, TCR (340, S_TCR) plainly.  The
twin charges an instruction's cycles after it (`_charge`, edge by edge in
effect) and an mtspr to DEC/DECAR/TBL/TBU/TCR/TSR lands in the edge ending
the instruction's last cycle, overriding that edge's own update of the
register as the RTL's write ports do (`_timer_write`).  mfspr reads at the
start of the instruction.  A timer interrupt is requested while (TCR.DIE and
TSR.DIS) or (TCR.FIE and TSR.FIS); it is taken at the next instruction
boundary when MSR[EE] is set and does not clear the status bit: the handler
writes TSR (else it is taken again after `rfi`).  268/269 read the time base
too (the Power ISA's user numbers, which the nux RTL does not decode).

Sleep: `wait` sets S_SLEEP.  A sleeping core wakes at a timer request,
whatever MSR[EE] (interrupt_ctrl.sv): with EE the interrupt is taken, without
it the core goes on after its `wait`; the time asleep counts as cycles.  The host releases it otherwise (the PPU block clears S_SLEEP when
control is written with inhibit_reset=1 again).  With `sleep_advances`, a run
that cannot wake within the budget moves the cycle counter (and the timers) to
`max_cycles`, so that hardware time passes; without it the cycle counter
stays at the `wait` (standalone runs).

Register bus: a word load or store with address bit 31 set leaves the loop
with Status.BUS: S_BUS_ADDR = (EA & 0x7FFFFFFF) >> 2 (a register word
address), S_BUS_WRITE, S_BUS_DATA (stores), S_BUS_RT (loads); the instruction
has retired (S_PC is the next one).  The driver performs the access and, for
a load, puts the value in the GPR (`complete_bus`) before running on.

What stops a run (`run` returns the status; `S_FAULT` holds the address of the
stopping instruction or the faulting data address):

* Status.SLEEPING: `wait` at S_FAULT; S_PC is the instruction after it;
  S_WAIT_CYCLES the cycle count when it retired.
* Status.PROGRAM / TRAP / UNIMPLEMENTED / ALIGNMENT / BUS_ERROR / DECREMENTER:
  the interrupt of that cause with no vector installed (BUS_ERROR also when
  MSR[ME] is clear: a checkstop).
* Status.BUS: a register-bus access for the driver (see above).
* Status.MAX_CYCLES: the cycle budget ran out (a runaway loop).

Code is predecoded once; a store (or a host write, through `invalidate`) to
a decoded word marks it stale and it is decoded again when fetched, so
self-modifying code behaves like the hardware.

Hot code: taken branches are counted per target word; after `hot_threshold`
(default `HOT_THRESHOLD`; 0 disables translation) the code reachable from
there is compiled to machine code by `twin.ppu.jit` (a region of basic blocks,
calls included, in the scalar subset) and the loop enters it whenever it
fetches one of the region's block starts; with MSR[EE] set a region ends
before the next timer request, and the timer unit catches up over a region's
cycles after it.  A region leaves at instruction boundaries with exactly the interpreter's
state (tests hold the two against each other on random programs and on
compiled C), so results, cycle counts and stop statuses do not depend on it.

Cycle cost per instruction is the table's (multiply 4, divide 31, loads 2,
fxvinx/fxvoutx 20, fxvlax 2, others 1); `S_CYCLES` accumulates it and
`S_INSNS` counts instructions.

Vector unit (fxv)
-----------------

A vector is 16 bytes per slice (`slices` = 1 on dls, 8 on hx: 16 or 128
bytes); element 0 sits at the lowest address, elements are big-endian.  The
vector state array holds 32 registers (`VR_BASE`), the accumulator (twice
the vector width: element i of width W bits is a signed 2W-bit value;
halfword and byte views share its bytes) and per-byte condition flags
(`FLAG_GT` 1, `FLAG_LT` 2, `FLAG_EQ` 4).  `h` forms use 16-bit elements, `b`
forms 8-bit ones.  With C != 0 an element executes only when its flag
(C=1 gt, 2 lt, 3 eq; of the element's first byte) is set; disabled elements
leave the target (register or accumulator element) unchanged.  a, b are the
signed elements of VRA, VRB; acc the accumulator element; lo(x) the low W
bits; sat(x, n) clamps to n-bit signed; hi(x) = x >> W (arithmetic: the
upper half, truncated).

    fxvaddXm   t = lo(a + b)             fxvaddXfs   t = sat(a + b, W)
    fxvsubXm   t = lo(a - b)             fxvsubXfs   t = sat(a - b, W)
    fxvmulXm   t = lo(a * b)             fxvmulXfs   t = hi(sat(2ab, 2W))
    fxvmaXm    t = lo(a * b + acc)       fxvmaXfs    t = hi(sat(2ab + acc, 2W))
    fxvmtacX   acc = a                   fxvmtacXf   acc = a << W
    fxvmatacXm acc = lo2(a * b + acc)    fxvmatacXfs acc = sat(2ab + acc, 2W)
    fxvmultacXm acc = lo2(a * b)         fxvmultacXfs acc = sat(2ab, 2W)
    fxvaddacXm t = lo(acc + a)           fxvaddacXfs t = hi(sat(acc + (a << W), 2W))
    fxvaddactacXm acc = lo2(acc + a)     fxvaddactacXf acc = sat(acc + (a << W), 2W)
    fxvaddtacX acc = a + b
    fxvsplatX  t = lo(GPR[RA])
    fxvshX     s = RB as signed 5 bit; t = lo(u << s) for s >= 0, u >> -s
               (logical) for s < 0, u the unsigned element
    fxvcmpX    flags of each element from a compared with 0 (all its bytes); C ignored
    fxvsel     t = b where the condition holds, else a (bytes; C=0: always b)

(lo2 = the low 2W bits.)  Pack/unpack work per 16-byte slice on 8
halfwords / 16 bytes; C is not a condition here but selects the field size
sz = 8 - C (C=2: the 6-bit weight fields), m = 2**sz - 1:

    fxvpckbu   byte i = (halfword i of VRA >> (16 - sz)) & m, byte 8+i the same
               from VRB (the upper field of each halfword)
    fxvpckbl   byte i = (halfword i of VRA >> (16 - 2 sz)) & m, 8+i from VRB
               (the field below it)
    fxvupckbl  halfword i = (byte i of VRA & m) << (16 - sz)
                            | (byte i of VRB & m) << (16 - 2 sz)
    fxvupckbr  the same from bytes 8+i

so pckbu(upckbl(A, B), upckbr(A, B)) = A & m and pckbl(...) = B & m.

fxvlax / fxvstax load / store VRT at EA = (RA|0) + RB; EA must be a
multiple of 16 (alignment interrupt) and inside memory (machine check);
C is ignored.

Vector I/O (fxvinx / fxvoutx VRT,RA|0,RB[,C]) reaches the synapse array of
this PPU.  EA = (RA|0) + RB is not a byte address: EA // io_space selects
the space (0 weights, 1 address labels, 2 causal correlation, 3 acausal
correlation; io_space = 0x4000 on dls, 0x4_0000 on hx) and EA % io_space =
row * 2 + half (half 0: columns 0..V-1, half 1: columns V..2V-1 for V-byte
vectors).  Byte j of the vector is column half * V + j.  Masking is per byte
(C with the byte's flags).  Outside the array: machine check (BUS_ERROR).
The caller supplies (`VectorIO`):

    weights, labels   uint32 (rows, columns / 4): the synapse register words
                      (synapse k of a quad in byte k, bits 8k..8k+7);
                      fxvinx reads the whole byte (6-bit field + 2
                      calibration bits), fxvoutx replaces it and sets
                      touched[0 or 1, row] = 1
    causal, acausal   uint8 (rows, columns): the current column-ADC readings
    resets            uint8 (rows, columns): fxvoutx to the causal (acausal)
                      space ORs 1 (2) into each column whose byte is non-zero;
                      the caller applies the reset requests and clears them
    touched           uint8 (2, rows): rows written through fxvoutx
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
from numba import carray, cfunc, njit, types

from isa.ppu.core import (ESR_PIL, ESR_PTR, ESR_PUO, ESR_WRITABLE, FIT_BITS, GPIO_INTERRUPT_PINS,
                          ICCR_MASK_SHIFT, ICCR_SENSE_SHIFT, ICCR_TRIGGER_SHIFT, MSR_EE, MSR_KEPT_AT_ENTRY, MSR_ME,
                          MSR_WRITABLE, SPR_DEC, SPR_DECAR, SPR_ESR, SPR_GIN, SPR_GOE, SPR_GOUT, SPR_ICCR,
                          SPR_TBL, SPR_TBU, SPR_TCR, SPR_TSR, SPR_UNSTORED, TCR_ARE, TCR_DIE, TCR_FIE,
                          TCR_FP_SHIFT, TSR_DIS, TSR_FIS, VECTORS, pin_edge_request, pin_level_request)
from isa.ppu.iomap import (INTERRUPT_ENTRY_CYCLES, REGISTER_BUS_BIT, SPACE_ACAUSAL, SPACE_CAUSAL, SPACE_WEIGHTS,
                           SPACES, io_space_size)

from ._jitcall import call_region, call_run_loop
from ._decode import (FLAG_AA, FLAG_INDEXED, FLAG_LK, FLAG_OE, FLAG_RC, FLAG_SIGN, FLAG_UPDATE, GROUP,
                      GROUP_SHIFT, OP, OP_GROUP_NAME, OP_ILLEGAL, OPS, SIZE_SHIFT, check_handled,
                      predecode_words, words_from_bytes)

__all__ = ["STATE_SIZE", "new_state", "new_vector_state", "predecode_memory", "run", "complete_bus",
           "invalidate", "Status", "STATUS_NAMES", "VectorIO", "io_space_of", "VECTORS",
           "S_CR", "S_XER", "S_LR", "S_CTR", "S_MSR", "S_PC", "S_CYCLES", "S_FAULT", "S_INSNS",
           "S_DEC", "S_SRR0", "S_SRR1", "S_ESR", "S_DEAR", "S_TSR", "S_TCR", "S_DECAR", "S_TB_OFFSET", "S_SLEEP",
           "S_BUS_ADDR", "S_BUS_DATA", "S_BUS_WRITE", "S_BUS_RT", "S_WAIT_CYCLES", "SPR_INDEX", "MSR_EE", "MSR_ME",
           "S_GIN", "S_GOUT", "S_GOE", "S_ICCR", "S_IRQ", "drive_pins", "doorbell_edge", "cycles_to_wakeup",
           "VR_BASE", "FLAG_GT", "FLAG_LT", "FLAG_EQ", "vector_bytes", "advance_time", "cycles_to_timer_request",
           "time_base"]

# ---- state layout ----------------------------------------------------------
S_CR, S_XER, S_LR, S_CTR, S_MSR = 32, 33, 34, 35, 36
S_SRR0, S_SRR1, S_CSRR0, S_CSRR1, S_MCSRR0, S_MCSRR1, S_DEC = 37, 38, 39, 40, 41, 42, 43
S_SPRG0 = 44   # 44..47
S_PC, S_CYCLES, S_FAULT, S_INSNS = 48, 49, 50, 51
S_ESR, S_DEAR, S_TSR, S_SLEEP = 52, 53, 54, 55
S_BUS_ADDR, S_BUS_DATA, S_BUS_WRITE, S_BUS_RT = 56, 57, 58, 59
S_WAIT_CYCLES = 60         # cycle counter right after the last `wait` retired
S_SYNC_OK = 61             # co-simulation: the next vector-I/O instruction may execute (twin.cosim)
# Interrupt entries since an instruction last retired ("Stuck in interrupt entry" in the docstring):
S_ENTRY_INSNS = 62         # S_INSNS at the last interrupt entry
S_ENTRY_SEEN = 63          # bit mask of the (vector, MSR[ME]) states entered since then
S_ENTRY_LOOP = 64          # vector of a state entered twice without a retired instruction (0: none)
# Timer unit (nux RTL timer_unit.sv; S_DEC above, S_TSR the timer status register):
S_TCR = 65                 # timer control register (SPR 340)
S_DECAR = 66               # decrementer auto-reload value (SPR 54)
S_TB_OFFSET = 67           # time base TBU:TBL = S_CYCLES + S_TB_OFFSET (mod 2^64): mtspr 284/285 move it
# General-purpose pins and interrupt controller (nux RTL write_back.sv, interrupt_ctrl.sv):
S_GIN = 68                 # levels of the input pins (GIN, SPR 65; driven from outside: `drive_pins`)
S_GOUT = 69                # output pins (GOUT, SPR 66)
S_GOE = 70                 # output enables (GOE, SPR 67)
S_ICCR = 71                # interrupt controller control (ICCR, SPR 68; written, not readable)
S_IRQ = 72                 # requests of the interrupt controller: IRQ_* bits
S_ZERO = 73                # always 0: what mfspr of an SPR without a register reads
STATE_SIZE = 74
#: S_IRQ bits: a pin edge latched (interrupt_ctrl.sv pin_int_req), a level-sensitive
#: pin requesting now (from S_GIN and S_ICCR), a doorbell edge latched (doorbell_req).
#: The latches are set only while MSR[EE] and cleared whenever MSR[EE] becomes 0.
IRQ_EDGE, IRQ_LEVEL, IRQ_DOORBELL = 1, 2, 4

# SPR number -> state index (read/write).  TB (268/269/284/285) handled apart.
SPR_INDEX = {1: S_XER, 8: S_LR, 9: S_CTR, 22: S_DEC, 26: S_SRR0, 27: S_SRR1, 58: S_CSRR0,
             59: S_CSRR1, 61: S_DEAR, 62: S_ESR, 570: S_MCSRR0, 571: S_MCSRR1, 272: S_SPRG0,
             273: S_SPRG0 + 1, 274: S_SPRG0 + 2, 275: S_SPRG0 + 3,
             SPR_DECAR: S_DECAR, SPR_TSR: S_TSR, SPR_TCR: S_TCR, SPR_GOUT: S_GOUT, SPR_GOE: S_GOE}
#: Time-base reads: SPR number -> shift of the time base (TBL/TBU; 268/269 the
#: user-mode numbers of the Power ISA, which the nux RTL does not decode).
TB_SHIFT = {268: 0, 284: 0, 269: 32, 285: 32}
#: mtspr to these lands at the end of the instruction's last cycle (`_timer_write`).
TIMER_WRITES = (SPR_DEC, SPR_DECAR, SPR_TBL, SPR_TBU, SPR_TCR, SPR_TSR)


def spr_number(raw: int) -> int:
    """SPR number of an mfspr/mtspr SPR field as decoded (its halves swapped)."""
    return ((raw & 0x1F) << 5) | ((raw >> 5) & 0x1F)


# mfspr: SPR number -> the state slot it reads (-1: not an SPR of the core, a
# program interrupt); mtspr: the slot it writes (-1 the same, -2 no effect).
# ESR, ICCR and the timer SPRs are written apart (masks, side effects).
# One table (row 0 mfspr, row 1 mtspr): one array the loop keeps live, not two.
_SPR_LUT = np.full((2, 1024), -1, np.int64)
for _n, _i in SPR_INDEX.items():
    _SPR_LUT[0, _n] = _SPR_LUT[1, _n] = _i
for _n in SPR_UNSTORED.values():
    _SPR_LUT[0, _n], _SPR_LUT[1, _n] = S_ZERO, -2
_SPR_LUT[0, SPR_GIN], _SPR_LUT[1, SPR_GIN] = S_GIN, -2      # read-only: the pins
_SPR_LUT[0, SPR_ICCR] = S_ZERO                             # not in operand_fetch.sv's multiplexer
XER_SO, XER_OV, XER_CA = 0x80000000, 0x40000000, 0x20000000
XER_MASK = 0xE000007F


# The vectors the twin raises (isa.ppu.core), as plain ints for the numba loop.
V_MACHINE_CHECK, V_ALIGNMENT, V_PROGRAM, V_DECREMENTER, V_FIT, V_EXTERNAL, V_DOORBELL = (
    VECTORS[k] for k in ("machine_check", "alignment", "program", "decrementer", "fixed_interval_timer",
                         "external_input", "doorbell"))


class Status:
    SLEEPING, PROGRAM, TRAP, ALIGNMENT, BUS_ERROR, UNIMPLEMENTED, MAX_CYCLES, BUS, DECREMENTER = range(1, 10)
    FIT = 12               # (10, 11: the PPU block's halted / stuck-in-entry reasons, isa.ppu.iomap)
    EXTERNAL, DOORBELL = 13, 14


# Plain ints for the numba loop.
ST_SLEEPING, ST_PROGRAM, ST_TRAP, ST_ALIGNMENT = 1, 2, 3, 4
ST_BUS_ERROR, ST_UNIMPLEMENTED, ST_MAX_CYCLES, ST_BUS, ST_DECREMENTER = 5, 6, 7, 8, 9
ST_FIT = 12
ST_EXTERNAL, ST_DOORBELL = 13, 14
ST_REDECODE = 100          # internal: a stale decoded word was fetched
ST_HOT = 101               # internal: a taken branch to hot code (translate it: twin.ppu.jit)
ST_SYNC = 102              # internal (sync runs): at a vector-I/O instruction, not executed yet
ST_YIELD = 103             # internal: YIELD_INSNS instructions ran; back to Python, then resume
#: Instructions (or interrupt entries) per compiled call before it returns to
#: Python: a few milliseconds of wall time, so Ctrl-C, SIGTERM, other threads
#: and host timeouts are served whatever the firmware does.
YIELD_INSNS = 1 << 20
assert (Status.SLEEPING, Status.DECREMENTER, Status.FIT, Status.EXTERNAL, Status.DOORBELL) == (
    ST_SLEEPING, ST_DECREMENTER, ST_FIT, ST_EXTERNAL, ST_DOORBELL)
#: Interrupt status -> vector (`_interrupt`).
_VECTOR_OF = np.zeros(ST_DOORBELL + 1, np.int64)
for _st, _v in ((ST_PROGRAM, V_PROGRAM), (ST_TRAP, V_PROGRAM), (ST_UNIMPLEMENTED, V_PROGRAM),
                (ST_ALIGNMENT, V_ALIGNMENT), (ST_BUS_ERROR, V_MACHINE_CHECK), (ST_DECREMENTER, V_DECREMENTER),
                (ST_FIT, V_FIT), (ST_EXTERNAL, V_EXTERNAL), (ST_DOORBELL, V_DOORBELL)):
    _VECTOR_OF[_st] = _v
STATUS_NAMES = {v: k.lower() for k, v in vars(Status).items() if not k.startswith("_")}
OP_STALE = -3              # decoded row invalidated by a store

# Op ids and group ids as module constants (numba freezes them at compile time).
for _name, _k in OP.items():
    globals()["O_" + _name.replace(".", "_rc").upper()] = _k
for _name, _k in GROUP.items():
    globals()["G_" + _name.upper()] = _k

# ---- vector unit tables ------------------------------------------------------
VR_BASE = 0                # register r at VR_BASE + r * V; accumulator at 32 V (2V bytes); flags at 34 V
FLAG_GT, FLAG_LT, FLAG_EQ = 1, 2, 4
(K_MAM, K_MTAC, K_MAFS, K_MTACF, K_MATACM, K_MATACFS, K_MULM, K_MULFS, K_MULTACM, K_MULTACFS,
 K_SPLAT, K_CMP, K_SH, K_SUBM, K_SUBFS, K_ADDACTACM, K_ADDACTACF, K_ADDACM, K_ADDACFS, K_ADDTAC,
 K_ADDM, K_ADDFS, K_INX, K_OUTX, K_PCKU, K_PCKL, K_UPCKR, K_UPCKL, K_SEL, K_LAX, K_STAX) = range(31)
# (halfword mnemonic, byte mnemonic, kind): the semantics of each fxv row.
_PAIRS = (
    ("fxvmahm", "fxvmabm", K_MAM), ("fxvmtach", "fxvmtacb", K_MTAC),
    ("fxvmahfs", "fxvmabfs", K_MAFS), ("fxvmtachf", "fxvmtacbf", K_MTACF),
    ("fxvmatachm", "fxvmatacbm", K_MATACM), ("fxvmatachfs", "fxvmatacbfs", K_MATACFS),
    ("fxvmulhm", "fxvmulbm", K_MULM), ("fxvmulhfs", "fxvmulbfs", K_MULFS),
    ("fxvmultachm", "fxvmultacbm", K_MULTACM), ("fxvmultachfs", "fxvmultacbfs", K_MULTACFS),
    ("fxvsplath", "fxvsplatb", K_SPLAT), ("fxvcmph", "fxvcmpb", K_CMP),
    ("fxvshh", "fxvshb", K_SH), ("fxvsubhm", "fxvsubbm", K_SUBM),
    ("fxvsubhfs", "fxvsubbfs", K_SUBFS), ("fxvaddactachm", "fxvaddactacbm", K_ADDACTACM),
    ("fxvaddactachf", "fxvaddactacbf", K_ADDACTACF), ("fxvaddachm", "fxvaddacbm", K_ADDACM),
    ("fxvaddachfs", "fxvaddacbfs", K_ADDACFS), ("fxvaddtach", "fxvaddtacb", K_ADDTAC),
    ("fxvaddhm", "fxvaddbm", K_ADDM), ("fxvaddhfs", "fxvaddbfs", K_ADDFS),
    (None, "fxvinx", K_INX), (None, "fxvoutx", K_OUTX), (None, "fxvpckbu", K_PCKU),
    (None, "fxvpckbl", K_PCKL), (None, "fxvupckbr", K_UPCKR), (None, "fxvupckbl", K_UPCKL),
    (None, "fxvsel", K_SEL), (None, "fxvlax", K_LAX), (None, "fxvstax", K_STAX),
)
#: fxv mnemonic -> (kind, element bytes)
VECTOR_KIND = {}
for _h, _b, _k in _PAIRS:
    if _h:
        VECTOR_KIND[_h] = (_k, 2)
    VECTOR_KIND[_b] = (_k, 1)
assert set(VECTOR_KIND) == {n for n in OPS if OP_GROUP_NAME[n] == "vector"}, "fxv rows without semantics"
_VKIND = np.full(len(OPS), -1, np.int64)
_VWIDTH = np.ones(len(OPS), np.int64)
for _mn, (_k, _w) in VECTOR_KIND.items():
    _VKIND[OP[_mn]], _VWIDTH[OP[_mn]] = _k, _w


def vector_bytes(slices: int) -> int:
    return 16 * slices


def new_state(pc: int = 0) -> np.ndarray:
    st = np.zeros(STATE_SIZE, np.int64)
    st[S_PC] = pc
    return st


def new_vector_state(slices: int = 1) -> np.ndarray:
    """Vector registers, accumulator and flags of a PPU with `slices` slices (zeroed)."""
    return np.zeros(35 * vector_bytes(slices), np.uint8)


def io_space_of(slices: int) -> int:
    """Size of one vector-I/O address space (isa.ppu.iomap)."""
    return io_space_size(slices)


@dataclass
class VectorIO:
    """What fxvinx/fxvoutx reach (see the module docstring)."""

    weights: np.ndarray
    labels: np.ndarray
    causal: np.ndarray
    acausal: np.ndarray
    resets: np.ndarray
    touched: np.ndarray
    space: int

    @classmethod
    def empty(cls, rows: int = 32, columns: int = 32, slices: int = 1) -> "VectorIO":
        q = columns // 4
        return cls(np.zeros((rows, q), np.uint32), np.zeros((rows, q), np.uint32),
                   np.zeros((rows, columns), np.uint8), np.zeros((rows, columns), np.uint8),
                   np.zeros((rows, columns), np.uint8), np.zeros((2, rows), np.uint8),
                   io_space_of(slices))


# Columns after the decoder's (see twin.ppu.jit): taken branches to the word,
# region entry (1; -1 never translated), the region's machine-code address
# (low, high 32 bits), word translated (bit 0; bit DIRTY in row 0: a store hit
# translated code, drop the translations before entering one again).
COL_HOT, COL_JIT, COL_ADDR_LO, COL_ADDR_HI, COL_COVERED = 8, 9, 10, 11, 12
DECODED_WIDTH = 13
DIRTY = 2
HOT_PENDING = 4             # row 0, COL_COVERED: words wait for translation (COL_JIT = JIT_PENDING)
JIT_PENDING = -2
HOT_THRESHOLD = 1_000       # taken branches to a word before the code there is translated


def predecode_memory(mem: np.ndarray) -> np.ndarray:
    """Decoded rows for every word of a byte memory (fxv rows carry their
    kind | element bytes << 8 in column 7, unused by their operands)."""
    return _annotate(predecode_words(words_from_bytes(mem[:len(mem) & ~3])))


def _annotate(decoded: np.ndarray) -> np.ndarray:
    """Add the interpreter's columns: fxv kind | width << 8 in column 7 of fxv
    rows; COL_HOT .. COL_COVERED for translation (twin.ppu.jit), zero."""
    out = np.zeros((len(decoded), DECODED_WIDTH), np.int32)
    out[:, :decoded.shape[1]] = decoded
    v = (out[:, 0] >= 0) & ((out[:, 1] >> GROUP_SHIFT) == G_VECTOR)
    ops = out[v, 0]
    out[v, 7] = _VKIND[ops] | (_VWIDTH[ops] << 8)
    return out


def invalidate(decoded: np.ndarray, first_word: int, count: int = 1) -> None:
    """Mark decoded words stale (after the memory changed behind the core's back);
    translations covering them are dropped."""
    decoded[first_word:first_word + count, 0] = OP_STALE
    if decoded.shape[1] >= DECODED_WIDTH and decoded[first_word:first_word + count, COL_COVERED].any():
        _drop_translations(decoded)


def _drop_translations(decoded: np.ndarray) -> None:
    decoded[:, COL_HOT:COL_COVERED + 1] = 0


# ---- helpers ---------------------------------------------------------------
# Only the small scalar helpers and the vector I/O (`_vio`) are inlined into the
# run loop.  Inlining the vector-unit arithmetic too made the cold start (first
# numba compile, which every user waits for) five times longer, about 2 minutes,
# for a vector speed gain within the run-to-run noise (tools/bench/ppu.py,
# docs/performance.md); that arithmetic is translated by twin.ppu.jit when hot.
# `_vio` takes 14 arguments, 9 of them arrays: called, their reference counts
# cost about as much as the access (the dls STDP kernel: 40.7 -> 35.9 us inlined;
# cold compile of the loop within the noise, 11.7-12.3 s).
# Within the vector unit only `_valu_body`/`_valu_loop` are numba-inlined (to
# specialise on width, destination and saturation): numba copies and retypes
# the IR at every inlined call site, so the element helpers are plain njit
# functions (LLVM inlines them) and `_valu` runs a coefficient table through 4
# loops per width instead of one loop per kind.  Cold compile of `_valu` on 2
# cores: 32.5 s before, 2.4 s now (first `run` 43 s -> 11 s in all); the dls
# STDP kernel (tools/bench/ppu.py) got 3 % faster, 62.5 -> 60.3 us.
M32 = 0xFFFFFFFF


@njit(cache=True)
def _s32(x):
    x &= 0xFFFFFFFF
    return x - 0x100000000 if x & 0x80000000 else x


@njit(cache=True)
def _cr0(st, value):
    v = _s32(value)
    c = 8 if v < 0 else (4 if v > 0 else 2)
    if st[S_XER] & XER_SO:
        c |= 1
    st[S_CR] = (st[S_CR] & 0x0FFFFFFF) | (c << 28)


@njit(cache=True)
def _set_crf(st, bf, c):
    sh = 28 - 4 * bf
    st[S_CR] = (st[S_CR] & ~(0xF << sh) & M32) | (c << sh)


@njit(cache=True)
def _set_ov(st, ov):
    if ov:
        st[S_XER] |= XER_OV | XER_SO
    else:
        st[S_XER] &= ~XER_OV & M32


@njit(cache=True)
def _set_ca(st, ca):
    if ca:
        st[S_XER] |= XER_CA
    else:
        st[S_XER] &= ~XER_CA & M32


@njit(cache=True)
def _mask(mb, me):
    m1 = M32 >> mb
    m2 = (M32 << (31 - me)) & M32
    return (m1 & m2) if mb <= me else (m1 | m2)


@njit(cache=True)
def _rotl(x, n):
    n &= 31
    return ((x << n) | (x >> (32 - n))) & M32 if n else x


@njit(cache=True)
def _load(mem, ea, size):
    v = 0
    for i in range(size):
        v = (v << 8) | np.int64(mem[ea + i])
    return v


@njit(cache=True)
def _store(mem, ea, size, v):
    for i in range(size):
        mem[ea + i] = (v >> (8 * (size - 1 - i))) & 0xFF



# ---- interrupts and sleep ----------------------------------------------------
@njit(cache=True)
def _fit_bit(tcr):
    """The TBL bit whose rise sets TSR.FIS, by TCR.FP (timer_unit.sv fit_bit)."""
    return FIT_BITS[(tcr >> TCR_FP_SHIFT) & 3]


@njit(cache=True)
def _to_rise(tb, bit):
    """Clock edges from time-base value `tb` until bit `bit` of TBL next rises (>= 1)."""
    period = np.int64(1) << (bit + 1)
    half = np.int64(1) << bit
    low = tb & (period - 1)
    return half - low if low < half else half + period - low


@njit(cache=True)
def _charge(st, cost):
    """`cost` cycles (clock edges) pass: an instruction's, an interrupt entry's
    (no instruction retires) or sleep.  The timer unit per edge
    (timer_unit.sv): the time base increments; TSR.FIS is set when TBL bit
    FIT_BITS[TCR.FP] rises; DEC counts down while non-zero and in the edge
    where it is 1 sets TSR.DIS and reloads from DECAR when TCR.ARE (else 0)."""
    if cost <= 0:
        return
    c = st[S_CYCLES]
    st[S_CYCLES] = c + cost
    # (the common case, FIS set and DEC 0, costs two loads and two tests)
    if not st[S_TSR] & TSR_FIS and cost >= _to_rise(c + st[S_TB_OFFSET], _fit_bit(st[S_TCR])):
        st[S_TSR] |= TSR_FIS
    d = st[S_DEC]
    if d > 0:
        if cost >= d:
            st[S_TSR] |= TSR_DIS
            decar = st[S_DECAR]
            if st[S_TCR] & TCR_ARE and decar > 0:
                d = decar - (cost - d) % decar
            else:
                d = 0
        else:
            d -= cost
        st[S_DEC] = d


@njit(cache=True)
def advance_time(st, cycles):
    """Hardware time passes over a core that runs no instruction (asleep)."""
    _charge(st, np.int64(cycles))


@njit(cache=True)
def time_base(st):
    """TBU:TBL now (64 bits, as an int64 bit pattern)."""
    return st[S_CYCLES] + st[S_TB_OFFSET]


@njit(cache=True)
def _timer_write(st, n, v, cost):
    """mtspr n (a timer SPR) of v retiring after `cost` cycles: the value lands
    at the edge that ends the last cycle and overrides that edge's own update
    of the register (timer_unit.sv): TSR is cleared where v has ones, from its
    value before the edge (a DIS set in that edge is lost); TBL/TBU replace
    their half of the incremented time base; the FIT rise compares TBL before
    and after the edge with the old TCR.FP; DEC's reload uses the old DECAR
    and TCR.ARE."""
    _charge(st, cost - 1)
    tb = st[S_CYCLES] + st[S_TB_OFFSET]
    tsr = st[S_TSR]
    tcr = st[S_TCR]
    bit = _fit_bit(tcr)
    d = st[S_DEC]
    ntsr = tsr
    if d == 1:
        ntsr |= TSR_DIS
        nd = st[S_DECAR] if tcr & TCR_ARE else np.int64(0)
    elif d == 0:
        nd = np.int64(0)
    else:
        nd = d - 1
    ntb = tb + 1
    if n == SPR_TBL:
        ntb = (ntb & ~M32) | v
    elif n == SPR_TBU:
        ntb = (v << 32) | (ntb & M32)
    elif n == SPR_DEC:
        nd = v
    elif n == SPR_DECAR:
        st[S_DECAR] = v
    elif n == SPR_TCR:
        st[S_TCR] = v
    else:  # SPR_TSR: write ones to clear
        ntsr = tsr & ~v & M32
    if (ntb >> bit) & 1 and not (tb >> bit) & 1:
        ntsr |= TSR_FIS
    st[S_CYCLES] += 1
    st[S_TB_OFFSET] = ntb - st[S_CYCLES]
    st[S_DEC] = nd
    st[S_TSR] = ntsr


@njit(cache=True)
def _timer_status(st):
    """The timer interrupt the timer unit requests now (int_sched.sv: FIT
    before decrementer), ST_FIT / ST_DECREMENTER, or 0."""
    tsr = st[S_TSR]
    tcr = st[S_TCR]
    if tcr & TCR_FIE and tsr & TSR_FIS:
        return ST_FIT
    if tcr & TCR_DIE and tsr & TSR_DIS:
        return ST_DECREMENTER
    return 0


@njit(cache=True)
def _async_status(st):
    """The asynchronous interrupt to take now that MSR[EE] is set, or 0
    (int_sched.sv priority: external input, FIT, decrementer, doorbell)."""
    irq = st[S_IRQ]
    if irq & (IRQ_EDGE | IRQ_LEVEL):
        return ST_EXTERNAL
    t = _timer_status(st)
    if t:
        return t
    if irq & IRQ_DOORBELL:
        return ST_DOORBELL
    return 0


@njit(cache=True)
def _take_async(st, mem):
    """Where a pin or doorbell request may have become takeable (the run's
    start, a wake-up, mtmsr, the returns, mtspr ICCR: nothing else moves
    S_IRQ or MSR[EE]), take the asynchronous interrupt due now (timers
    included, in int_sched.sv order); the loop's top checks the timers only,
    which keeps the common step short.  -1: nothing due; 0: taken; else the
    status of a request without an installed vector (the core stops)."""
    if st[S_IRQ] == 0 or not st[S_MSR] & MSR_EE:
        return -1
    tst = _async_status(st)
    pc = st[S_PC]
    if _interrupt(st, mem, np.int64(tst), pc, pc, np.int64(0)):
        return 0
    return tst


_PIN_MASK = (1 << GPIO_INTERRUPT_PINS) - 1


@njit(cache=True)
def _pin_level(gin, iccr):
    """isa.ppu.core.pin_level_request, compiled."""
    mask = (iccr >> ICCR_MASK_SHIFT) & _PIN_MASK
    trigger = (iccr >> ICCR_TRIGGER_SHIFT) & _PIN_MASK
    sense = (iccr >> ICCR_SENSE_SHIFT) & _PIN_MASK
    return ((gin ^ trigger) & sense & mask) != 0


@njit(cache=True)
def _set_msr(st, v):
    """MSR written (mtmsr, rfi/rfci/rfmci): the bits the RTL stores; with EE
    clear the interrupt controller's latches clear (interrupt_ctrl.sv)."""
    v &= MSR_WRITABLE
    st[S_MSR] = v
    if not v & MSR_EE:
        st[S_IRQ] &= IRQ_LEVEL


@njit(cache=True)
def cycles_to_wakeup(st):
    """Cycles until something wakes a sleeping core (interrupt_ctrl.sv): 0
    when a pin or doorbell request is latched or a level-sensitive pin
    requests with MSR[EE] set, else the timer's (`cycles_to_timer_request`)."""
    if st[S_IRQ] and st[S_MSR] & MSR_EE:
        return np.int64(0)
    return cycles_to_timer_request(st)


@njit(cache=True)
def cycles_to_timer_request(st):
    """Cycles until the timer unit requests an interrupt (which also wakes
    `wait`, interrupt_ctrl.sv): 0 when it does now, -1 when it never will
    without a write to a timer register."""
    if _timer_status(st):
        return np.int64(0)
    tcr = st[S_TCR]
    need = np.int64(-1)
    if tcr & TCR_DIE and st[S_DEC] > 0:
        need = st[S_DEC]
    if tcr & TCR_FIE:
        k = _to_rise(st[S_CYCLES] + st[S_TB_OFFSET], _fit_bit(tcr))
        if need < 0 or k < need:
            need = k
    return need


@njit(cache=True)
def _retire(st, cost):
    """An instruction retires after `cost` cycles."""
    _charge(st, cost)
    st[S_INSNS] += 1


@njit(cache=True)
def _interrupt(st, mem, status, pc, addr, esr):
    """Take the interrupt of `status` at `pc`: True when vectored, False when
    the core stops (S_FAULT = addr).  Callers pass status and esr as np.int64:
    with literal constants numba compiles one copy per call site's values."""
    vec = _VECTOR_OF[status]
    word = (np.int64(mem[vec]) << 24) | (np.int64(mem[vec + 1]) << 16) | \
        (np.int64(mem[vec + 2]) << 8) | np.int64(mem[vec + 3])
    if word == 0 or (status == ST_BUS_ERROR and not st[S_MSR] & MSR_ME):
        st[S_FAULT] = addr
        return False
    # int_sched.sv msr_set_base: CE, ME and DE stay, every other bit clears
    # (EE clear: the interrupt controller's latches clear too).
    msr = st[S_MSR]
    if status == ST_BUS_ERROR:
        st[S_MCSRR0] = pc
        st[S_MCSRR1] = msr
        st[S_MSR] = msr & MSR_KEPT_AT_ENTRY & ~MSR_ME
        st[S_DEAR] = addr
    else:
        st[S_SRR0] = pc
        st[S_SRR1] = msr
        st[S_MSR] = msr & MSR_KEPT_AT_ENTRY
        if status <= ST_UNIMPLEMENTED:      # program, trap, alignment (callers pass 0: int_sched.sv), unimplemented
            st[S_ESR] = ESR_PUO if status == ST_UNIMPLEMENTED else esr
    st[S_IRQ] &= IRQ_LEVEL
    st[S_PC] = vec
    # A state (vector, MSR[ME]) entered again before any instruction retired
    # repeats for ever: nothing the faulting instructions read has changed.
    if st[S_INSNS] != st[S_ENTRY_INSNS]:
        st[S_ENTRY_INSNS] = st[S_INSNS]
        st[S_ENTRY_SEEN] = 0
        st[S_ENTRY_LOOP] = 0
    bit = np.int64(1) << ((vec >> 1) | (1 if st[S_MSR] & MSR_ME else 0))
    if st[S_ENTRY_SEEN] & bit and st[S_ENTRY_LOOP] == 0:
        st[S_ENTRY_LOOP] = vec
    st[S_ENTRY_SEEN] |= bit
    _charge(st, INTERRUPT_ENTRY_CYCLES)
    return True


@njit(cache=True)
def _bus_request(st, ea, is_store, rt):
    """A word access to the register bus for the driver (Status.BUS)."""
    st[S_BUS_ADDR] = (ea & ~REGISTER_BUS_BIT & M32) >> 2
    st[S_BUS_WRITE] = 1 if is_store else 0
    st[S_BUS_DATA] = st[rt] if is_store else 0
    st[S_BUS_RT] = rt


@njit(cache=True)
def _sleep(st, max_cycles, sleep_advances):
    """A sleeping core: True when it wakes (a timer request: the interrupt is
    taken next if MSR[EE] allows, else the core goes on after its `wait`),
    False when it sleeps through the budget."""
    need = cycles_to_wakeup(st)
    if need >= 0 and st[S_CYCLES] + need <= max_cycles:
        _charge(st, need)
        st[S_SLEEP] = 0
        return True
    if sleep_advances and st[S_CYCLES] < max_cycles:
        _charge(st, max_cycles - st[S_CYCLES])
    return False


# ---- vector unit -------------------------------------------------------------
# Element access (big-endian, signed, w bytes per element; the accumulator 2w).
# Plain njit functions, not inline="always": numba-level inlining copies and
# retypes the IR at every call site, LLVM inlines these small ones anyway with
# the literal width folded in.
@njit(cache=True)
def _gete(vec, base, i, w):
    if w == 1:
        return np.int64(np.int8(vec[base + i]))
    return np.int64(np.int16((np.uint16(vec[base + 2 * i]) << 8) | np.uint16(vec[base + 2 * i + 1])))


@njit(cache=True)
def _sete(vec, base, i, w, v):
    if w == 1:
        vec[base + i] = v & 0xFF
    else:
        vec[base + 2 * i] = (v >> 8) & 0xFF
        vec[base + 2 * i + 1] = v & 0xFF


@njit(cache=True)
def _geta(vec, abase, i, w):
    if w == 1:
        o = abase + 2 * i
        return np.int64(np.int16((np.uint16(vec[o]) << 8) | np.uint16(vec[o + 1])))
    o = abase + 4 * i
    return np.int64(np.int32((np.uint32(vec[o]) << 24) | (np.uint32(vec[o + 1]) << 16) |
                             (np.uint32(vec[o + 2]) << 8) | np.uint32(vec[o + 3])))


@njit(cache=True)
def _seta(vec, abase, i, w, v):
    if w == 1:
        o = abase + 2 * i
        vec[o] = (v >> 8) & 0xFF
        vec[o + 1] = v & 0xFF
    else:
        o = abase + 4 * i
        vec[o] = (v >> 24) & 0xFF
        vec[o + 1] = (v >> 16) & 0xFF
        vec[o + 2] = (v >> 8) & 0xFF
        vec[o + 3] = v & 0xFF


@njit(cache=True, inline="always")
def _wrap(x, bits):
    x &= (np.int64(1) << bits) - 1
    if x >> (bits - 1):
        x -= np.int64(1) << bits
    return x


@njit(cache=True)
def _vmem(kind, rt, ra, rb, st, mem, vec, dec):
    """fxvlax / fxvstax; 0, or a fault status with S_FAULT set."""
    nb = vec.shape[0] // 35
    ta = rt * nb
    ea = ((st[ra] if ra else 0) + st[rb]) & M32
    if ea & 15:
        st[S_FAULT] = ea
        return ST_ALIGNMENT
    if ea + nb > mem.shape[0]:
        st[S_FAULT] = ea
        return ST_BUS_ERROR
    if kind == K_LAX:
        for j in range(nb):
            vec[ta + j] = mem[ea + j]
    else:
        for j in range(nb):
            mem[ea + j] = vec[ta + j]
        _mark_stores(dec, ea, nb)
    return 0


@njit(cache=True)
def _reads_sensors(st, ra, rb, io_space):
    """The fxvinx with operands RA, RB reads a correlation space."""
    space = (((st[ra] if ra else 0) + st[rb]) & M32) // io_space
    return space == SPACE_CAUSAL or space == SPACE_ACAUSAL


@njit(cache=True, inline="always")
def _vio(kind, rt, ra, rb, c, st, vec, wts, lbls, causal, acausal, resets, touched, io_space):
    """fxvinx / fxvoutx; 0 (-1 after a correlation read), or a fault status with S_FAULT set."""
    nb = vec.shape[0] // 35
    ta = rt * nb
    fl = 34 * nb
    cbit = (1 << (c - 1)) if c else 0
    ea = ((st[ra] if ra else 0) + st[rb]) & M32
    space = ea // io_space
    idx = ea % io_space
    rows = wts.shape[0]
    halves = (4 * wts.shape[1]) // nb
    row = idx // halves
    half = idx % halves
    if space >= SPACES or row >= rows:
        st[S_FAULT] = ea
        return ST_BUS_ERROR
    c0 = half * nb
    if space == SPACE_CAUSAL or space == SPACE_ACAUSAL:
        src = causal if space == SPACE_CAUSAL else acausal
        if kind == K_INX:
            for j in range(nb):
                if c == 0 or vec[fl + j] & cbit:
                    vec[ta + j] = src[row, c0 + j]
            return -1               # a column-ADC read: the caller charges its cycles
        else:
            bit = 1 if space == SPACE_CAUSAL else 2
            for j in range(nb):
                if (c == 0 or vec[fl + j] & cbit) and vec[ta + j]:
                    resets[row, c0 + j] |= bit
        return 0
    words = wts if space == SPACE_WEIGHTS else lbls
    q0 = c0 >> 2
    if kind == K_INX:
        for k in range(nb >> 2):
            word = np.int64(words[row, q0 + k])
            for b in range(4):
                j = 4 * k + b
                if c == 0 or vec[fl + j] & cbit:
                    vec[ta + j] = (word >> (8 * b)) & 0xFF
    else:
        for k in range(nb >> 2):
            word = np.int64(words[row, q0 + k])
            for b in range(4):
                j = 4 * k + b
                if c == 0 or vec[fl + j] & cbit:
                    word = (word & ~(0xFF << (8 * b))) | (np.int64(vec[ta + j]) << (8 * b))
            words[row, q0 + k] = np.uint32(word & M32)
        touched[space, row] = 1
    return 0


@njit(cache=True)
def _vpack(kind, rt, ra, rb, c, vec):
    """Pack / unpack (C selects the field size)."""
    nb = vec.shape[0] // 35
    ta = rt * nb
    aa = ra * nb
    ba = rb * nb
    sz = 8 - c
    m = (1 << sz) - 1
    tmp = np.empty(16, np.int64)
    for s in range(nb // 16):
        o = 16 * s
        for i in range(8):
            if kind == K_PCKU or kind == K_PCKL:
                sh = 16 - sz if kind == K_PCKU else 16 - 2 * sz
                ha = (np.int64(vec[aa + o + 2 * i]) << 8) | vec[aa + o + 2 * i + 1]
                hb = (np.int64(vec[ba + o + 2 * i]) << 8) | vec[ba + o + 2 * i + 1]
                tmp[i] = (ha >> sh) & m
                tmp[8 + i] = (hb >> sh) & m
            else:
                j = i if kind == K_UPCKL else 8 + i
                h = ((np.int64(vec[aa + o + j]) & m) << (16 - sz)) | \
                    ((np.int64(vec[ba + o + j]) & m) << (16 - 2 * sz))
                tmp[2 * i] = (h >> 8) & 0xFF
                tmp[2 * i + 1] = h & 0xFF
        for j in range(16):
            vec[ta + o + j] = tmp[j]


@njit(cache=True)
def _vselcmp(kind, w, rt, ra, rb, c, vec):
    """fxvsel (bytes) and fxvcmph/b (flags of every byte of an element)."""
    nb = vec.shape[0] // 35
    ta = rt * nb
    aa = ra * nb
    ba = rb * nb
    fl = 34 * nb
    if kind == K_SEL:
        if c == 0:
            for i in range(nb):
                vec[ta + i] = vec[ba + i]
        else:
            cbit = 1 << (c - 1)
            for i in range(nb):
                vec[ta + i] = vec[ba + i] if vec[fl + i] & cbit else vec[aa + i]
    elif w == 1:
        for i in range(nb):
            a = vec[aa + i]
            vec[fl + i] = FLAG_EQ if a == 0 else (FLAG_LT if a & 0x80 else FLAG_GT)
    else:
        for i in range(nb >> 1):
            hi = vec[aa + 2 * i]
            f = FLAG_EQ if (hi == 0 and vec[aa + 2 * i + 1] == 0) else (FLAG_LT if hi & 0x80 else FLAG_GT)
            vec[fl + 2 * i] = f
            vec[fl + 2 * i + 1] = f


@njit(cache=True)
def _on(vec, fl, i, w, c, cbit):
    return c == 0 or (vec[fl + i * w] & cbit) != 0


# The element-wise arithmetic as data: for kind k (row k of `_VALU_TAB`)
#     x = ca * (a << sa * W) + cb * b + cab * a * b + cacc * acc     (exact in int64)
# then, for sat > 0, x = sat(x, sat * W), and x >>= W when hi; the result goes
# to the register element (its low W bits) or, with toacc, to the accumulator
# element (low 2W bits).  SPLAT and SH have their own loops.
_VA_CA, _VA_SA, _VA_CB, _VA_CAB, _VA_CACC, _VA_SAT, _VA_HI, _VA_TOACC = range(8)
_VALU_TAB = np.zeros((K_INX, 8), np.int64)
for _k, _row in {    # ca sa  cb cab cacc sat hi toacc
        K_ADDM:      (1, 0,  1, 0, 0, 0, 0, 0),
        K_ADDFS:     (1, 0,  1, 0, 0, 1, 0, 0),
        K_SUBM:      (1, 0, -1, 0, 0, 0, 0, 0),
        K_SUBFS:     (1, 0, -1, 0, 0, 1, 0, 0),
        K_MULM:      (0, 0,  0, 1, 0, 0, 0, 0),
        K_MULFS:     (0, 0,  0, 2, 0, 2, 1, 0),
        K_MAM:       (0, 0,  0, 1, 1, 0, 0, 0),
        K_MAFS:      (0, 0,  0, 2, 1, 2, 1, 0),
        K_ADDACM:    (1, 0,  0, 0, 1, 0, 0, 0),
        K_ADDACFS:   (1, 1,  0, 0, 1, 2, 1, 0),
        K_MTAC:      (1, 0,  0, 0, 0, 0, 0, 1),
        K_MTACF:     (1, 1,  0, 0, 0, 0, 0, 1),
        K_MATACM:    (0, 0,  0, 1, 1, 0, 0, 1),
        K_MATACFS:   (0, 0,  0, 2, 1, 2, 0, 1),
        K_MULTACM:   (0, 0,  0, 1, 0, 0, 0, 1),
        K_MULTACFS:  (0, 0,  0, 2, 0, 2, 0, 1),
        K_ADDACTACM: (1, 0,  0, 0, 1, 0, 0, 1),
        K_ADDACTACF: (1, 1,  0, 0, 1, 2, 0, 1),
        K_ADDTAC:    (1, 0,  1, 0, 0, 0, 0, 1)}.items():
    _VALU_TAB[_k] = _row


@njit(cache=True)
def _valu(kind, w, rt, ra, rb, c, st, vec):
    """Element-wise fxv arithmetic (every kind but I/O, pack/unpack, cmp, sel).
    The body is inlined with a constant width so its loops specialise."""
    _valu_body(kind, w, rt, ra, rb, c, st, vec)


@njit(cache=True, inline="always")
def _valu_body(kind, w, rt, ra, rb, c, st, vec):
    """SPLAT, SH, and the table-driven loop specialised on destination and
    saturation (4 copies, not one loop per kind: each copy costs compile time).
    Element i only reads element i, so RT may equal RA or RB."""
    # The masks change nothing (fields are 5 bits, nb is 16 per slice) but let
    # LLVM prove the indices non-negative and drop numba's wraparound code.
    nb = (vec.shape[0] // 35) & 0x3FFF
    n = nb // w
    ta = (rt & 31) * nb
    aa = (ra & 31) * nb
    ba = (rb & 31) * nb
    acc = 32 * nb
    fl = 34 * nb
    cbit = (1 << (c - 1)) if c else 0
    if kind == K_SPLAT:
        g = st[ra]
        for i in range(n):
            if _on(vec, fl, i, w, c, cbit):
                _sete(vec, ta, i, w, g)
    elif kind == K_SH:
        s = rb - 32 if rb & 16 else rb
        um = (np.int64(1) << (8 * w)) - 1
        sl = s if s > 0 else 0
        sr = -s if s < 0 else 0
        for i in range(n):
            if _on(vec, fl, i, w, c, cbit):
                _sete(vec, ta, i, w, ((_gete(vec, aa, i, w) & um) << sl) >> sr)
    else:
        _valu_loop(kind, w, ta, aa, ba, acc, fl, c, cbit, n, vec, _VALU_TAB[kind, _VA_TOACC] != 0,
                   _VALU_TAB[kind, _VA_SAT] != 0)


@njit(cache=True, inline="always")
def _valu_loop(kind, w, ta, aa, ba, acc, fl, c, cbit, n, vec, toacc, dosat):
    """The `_VALU_TAB` formula for `kind`; toacc and dosat are literals."""
    bits = 8 * w
    ma = -_VALU_TAB[kind, _VA_CA]         # coefficients 0/1 as masks 0/-1
    mc = -_VALU_TAB[kind, _VA_CACC]
    cb = _VALU_TAB[kind, _VA_CB]
    cab = _VALU_TAB[kind, _VA_CAB]
    sl = bits * _VALU_TAB[kind, _VA_SA]
    hs = bits * _VALU_TAB[kind, _VA_HI]
    sat = _VALU_TAB[kind, _VA_SAT]
    lim = np.int64(1) << (sat * bits - 1 if sat else 62)
    hi = lim - 1
    lo = -lim
    for i in range(n):
        if _on(vec, fl, i, w, c, cbit):
            a = _gete(vec, aa, i, w)
            x = ((a << sl) & ma) + (cb + cab * a) * _gete(vec, ba, i, w) + (_geta(vec, acc, i, w) & mc)
            if dosat:
                x = min(max(x, lo), hi) >> hs
            if toacc:
                _seta(vec, acc, i, w, x)
            else:
                _sete(vec, ta, i, w, x)


# ---- the run loop ------------------------------------------------------------
@njit(cache=True)
def _hot(dec, tw, threshold):
    """A taken branch to word tw: True when the driver should translate the
    code there (twin.ppu.jit)."""
    if tw >= dec.shape[0] or dec[tw, COL_JIT] != 0:
        return False
    dec[tw, COL_HOT] += 1
    return dec[tw, COL_HOT] >= threshold


@njit(cache=True)
def _mark_stores(dec, ea, nbytes):
    """A store to ea..ea+nbytes-1: its words are decoded again when fetched;
    True when it hit translated code (row 0 then carries DIRTY)."""
    hit = False
    for k in range(ea >> 2, min((ea + nbytes + 3) >> 2, dec.shape[0])):
        dec[k, 0] = OP_STALE
        if dec.shape[1] > COL_COVERED and dec[k, COL_COVERED] & 1:
            hit = True
    if hit:
        dec[0, COL_COVERED] |= DIRTY
    return hit



# The semantic groups `_run` implements (by name, see isa.ppu.instructions.GROUPS);
# checked at import against every op of OPS.  `_run` dispatches on the group id
# (in the flags column, twin.ppu._decode) in order of frequency in compiled C,
# then on the op; loads/stores read size, update, sign and indexing from access
# bits there.  Record forms set CR0 once after the chain (`crv`): one inlined
# `_cr0` instead of ten keeps the cold compile at the old 11-12 s on 2 cores.
RUN_GROUPS = frozenset({
    "load", "store", "add_imm", "branch_cond", "compare", "rotate", "logic", "branch", "arith",
    "logic_imm", "shift", "extend", "mul_div", "carry_imm", "vector", "spr_move", "cr_move",
    "load_multiple", "store_multiple", "bit_count", "cr_logic", "cr_field", "trap", "wait", "msr",
    "return", "sync"})
check_handled(OPS, OP_GROUP_NAME, RUN_GROUPS)


@njit(cache=True)
def _run(dec, mem, st, max_cycles, vec, wts, lbls, causal, acausal, resets, touched, io_space,
         sleep_advances, hot, sync, corr_cycles):
    """The interpreter loop (see the module docstring).  `sync`: stop with
    ST_SYNC before an fxvoutx or an fxvinx of the correlation sensors unless
    S_SYNC_OK is set (then run
    it and clear S_SYNC_OK), so that the co-simulation can bring the analog
    core to the instruction's time first; `corr_cycles`: extra cycles of an
    fxvinx from a correlation space (the column-ADC conversion)."""
    nmem = mem.shape[0]
    nwords = dec.shape[0]
    spr_lut = _SPR_LUT
    if st[S_SLEEP] and not _sleep(st, max_cycles, sleep_advances):
        return ST_SLEEPING
    # A pin or doorbell request can become takeable only here (the host drove
    # the inputs before this run), at a wake-up, mtmsr, a return or mtspr ICCR:
    # those set stop_at below the budget, and the budget test at the loop's top
    # (which every step makes anyway) then takes it (_take_async), so the
    # common step stays as short as with the timers alone.
    stop_at = np.int64(-1) if st[S_IRQ] else max_cycles
    steps = 0
    jit_skip = False
    while True:
        pc = st[S_PC]
        steps += 1
        if steps > YIELD_INSNS:
            return ST_YIELD
        if st[S_MSR] & MSR_EE:
            tst = _timer_status(st)
            if tst:
                if st[S_IRQ] & (IRQ_EDGE | IRQ_LEVEL):
                    tst = ST_EXTERNAL           # a pin request goes before the timers
                if not _interrupt(st, mem, np.int64(tst), pc, pc, np.int64(0)):
                    return tst
                continue
        if st[S_CYCLES] >= stop_at:
            if stop_at < max_cycles:
                stop_at = max_cycles
                tst = _take_async(st, mem)
                if tst > 0:
                    return tst
                if tst < 0:
                    steps -= 1          # no step: nothing was due
                continue
            st[S_FAULT] = pc
            return ST_MAX_CYCLES
        wi = pc >> 2
        if pc & 3 or wi >= nwords:
            status = ST_ALIGNMENT if pc & 3 else ST_BUS_ERROR
            if _interrupt(st, mem, np.int64(status), pc, pc, np.int64(0)):
                continue
            return status
        if hot and dec[wi, COL_JIT] > 0:
            # A translated region starts here (twin.ppu.jit): run it, unless it
            # just retired nothing here (budget, or an access it leaves to us).
            if jit_skip:
                jit_skip = False
            elif dec[0, COL_COVERED] & DIRTY:
                return ST_REDECODE              # translated code was overwritten: drop first
            else:
                limit = max_cycles
                if st[S_MSR] & MSR_EE:
                    # the region must end before a timer interrupt is due (it
                    # cannot set MSR[EE]; without it the timers catch up after)
                    need = cycles_to_timer_request(st)
                    if need > 0:
                        limit = min(limit, st[S_CYCLES] + need - 1)
                limit = min(limit, st[S_CYCLES] + (YIELD_INSNS - steps))
                addr = (np.int64(dec[wi, COL_ADDR_HI]) << 32) | (np.int64(dec[wi, COL_ADDR_LO]) & M32)
                n = st[S_INSNS]
                c0 = st[S_CYCLES]
                call_region(addr, st, mem, dec, limit, vec)
                c1 = st[S_CYCLES]
                st[S_CYCLES] = c0               # the timer unit over the region's cycles
                _charge(st, c1 - c0)
                n = st[S_INSNS] - n
                if n > 0:
                    steps += n
                    # It left for code outside every region (a jump-table case, a
                    # return to untranslated code): count that target like a branch.
                    tw = st[S_PC] >> 2
                    if tw < nwords and dec[tw, COL_JIT] == 0 and _hot(dec, tw, hot):
                        return ST_HOT
                    continue
                jit_skip = True
        op = dec[wi, 0]
        fl = dec[wi, 1]
        f0 = np.int64(dec[wi, 3])
        f1 = np.int64(dec[wi, 4])
        f2 = np.int64(dec[wi, 5])
        f3 = np.int64(dec[wi, 6])
        f4 = np.int64(dec[wi, 7])
        if op < 0:
            if op == OP_STALE:
                return ST_REDECODE
            status = ST_PROGRAM if op == OP_ILLEGAL else ST_UNIMPLEMENTED
            if _interrupt(st, mem, np.int64(status), pc, pc, np.int64(ESR_PIL)):
                continue
            return status
        npc = (pc + 4) & M32
        rc = fl & FLAG_RC
        extra = 0
        crv = -1                   # >= 0: set CR0 from it after the instruction (record forms)
        g = fl >> GROUP_SHIFT

        # Dispatch on the semantic group (most frequent in compiled C first),
        # then on the op within it.  Loads/stores take size, update, sign and
        # indexing from the access bits of `fl`.
        if g == G_LOAD or g == G_STORE:
            if fl & FLAG_INDEXED:    # X-form: RT, RA|0, RB
                ra = f1
                ea = ((st[f1] if f1 else 0) + st[f2]) & M32
            else:                    # D-form: RT, D, RA|0
                ra = f2
                ea = ((st[f2] if f2 else 0) + f1) & M32
            size = (fl >> SIZE_SHIFT) & 7
            is_store = g == G_STORE
            if ea & (size - 1) or ea & REGISTER_BUS_BIT and size != 4:
                if _interrupt(st, mem, np.int64(ST_ALIGNMENT), pc, ea, np.int64(0)):
                    continue
                return ST_ALIGNMENT
            if ea & REGISTER_BUS_BIT:
                # Register bus: leave the loop; the driver completes the access.
                _bus_request(st, ea, is_store, f0)
                if fl & FLAG_UPDATE:
                    st[ra] = ea
                _retire(st, dec[wi, 2])
                st[S_PC] = npc
                return ST_BUS
            if ea + size > nmem:
                if _interrupt(st, mem, np.int64(ST_BUS_ERROR), pc, ea, np.int64(0)):
                    continue
                return ST_BUS_ERROR
            if is_store:
                _store(mem, ea, size, st[f0])
                if _mark_stores(dec, ea, size):       # into translated code
                    if fl & FLAG_UPDATE:
                        st[ra] = ea
                    _retire(st, dec[wi, 2])
                    st[S_PC] = npc
                    return ST_REDECODE
            else:
                v = _load(mem, ea, size)
                if fl & FLAG_SIGN and v & 0x8000:
                    v |= 0xFFFF0000
                st[f0] = v
            if fl & FLAG_UPDATE:
                st[ra] = ea
        elif g == G_ADD_IMM:
            a = st[f1] if f1 else 0
            imm = f2 if op == O_ADDI else (f2 << 16)
            st[f0] = (a + imm) & M32
        elif g == G_BRANCH_COND:
            bo = f0
            if op != O_BCCTR and not bo & 4:
                st[S_CTR] = (st[S_CTR] - 1) & M32
            ctr_ok = (bo & 4) != 0 or op == O_BCCTR or ((st[S_CTR] != 0) != ((bo & 2) != 0))
            bit = (st[S_CR] >> (31 - f1)) & 1
            cond_ok = (bo & 16) != 0 or bit == ((bo >> 3) & 1)
            if op == O_BC:
                tgt = (f2 * 4) & M32 if fl & FLAG_AA else (pc + f2 * 4) & M32
            elif op == O_BCLR:
                tgt = st[S_LR] & 0xFFFFFFFC
            else:
                tgt = st[S_CTR] & 0xFFFFFFFC
            if fl & FLAG_LK:
                st[S_LR] = npc
            if ctr_ok and cond_ok:
                npc = tgt
                if hot and _hot(dec, tgt >> 2, hot):
                    _retire(st, dec[wi, 2])
                    st[S_PC] = npc
                    return ST_HOT
        elif g == G_COMPARE:
            a = st[f2]
            if op == O_CMPI:
                b = f3 & M32
            elif op == O_CMPLI:
                b = f3
            else:
                b = st[f3]
            if op == O_CMPI or op == O_CMP:
                a = _s32(a)
                b = _s32(b)
            c = 8 if a < b else (4 if a > b else 2)
            if st[S_XER] & XER_SO:
                c |= 1
            _set_crf(st, f0, c)
        elif g == G_ROTATE:
            n = (st[f2] & 31) if op == O_RLWNM else f2
            m = _mask(f3, f4)
            r = _rotl(st[f1], n)
            if op == O_RLWIMI:
                st[f0] = (r & m) | (st[f0] & ~m & M32)
            else:
                st[f0] = r & m
            if rc:
                crv = st[f0]
        elif g == G_LOGIC:
            s = st[f1]
            if op == O_OR:
                r = s | st[f2]
            elif op == O_AND:
                r = s & st[f2]
            elif op == O_XOR:
                r = s ^ st[f2]
            elif op == O_ANDC:
                r = s & ~st[f2] & M32
            elif op == O_NOR:
                r = ~(s | st[f2]) & M32
            elif op == O_EQV:
                r = ~(s ^ st[f2]) & M32
            elif op == O_ORC:
                r = (s | ~st[f2]) & M32
            else:  # nand
                r = ~(s & st[f2]) & M32
            st[f0] = r
            if rc:
                crv = r
        elif g == G_BRANCH:
            tgt = (f0 * 4) & M32 if fl & FLAG_AA else (pc + f0 * 4) & M32
            if fl & FLAG_LK:
                st[S_LR] = npc
            npc = tgt
            if hot and _hot(dec, tgt >> 2, hot):
                _retire(st, dec[wi, 2])
                st[S_PC] = npc
                return ST_HOT
        elif g == G_ARITH:
            # x + y + c with carry out; subtracts use x = ~RA.
            a = st[f1]
            x = a
            y = st[f2]
            c = 0
            ca_form = True
            if op == O_ADD:
                ca_form = False
            elif op == O_SUBF:
                x = ~a & M32
                c = 1
                ca_form = False
            elif op == O_NEG:
                x = ~a & M32
                y = 0
                c = 1
                ca_form = False
            elif op == O_ADDC:
                pass
            elif op == O_SUBFC:
                x = ~a & M32
                c = 1
            elif op == O_ADDE or op == O_SUBFE:
                if op == O_SUBFE:
                    x = ~a & M32
                c = 1 if st[S_XER] & XER_CA else 0
            elif op == O_ADDZE or op == O_SUBFZE:
                if op == O_SUBFZE:
                    x = ~a & M32
                y = 0
                c = 1 if st[S_XER] & XER_CA else 0
            else:  # addme / subfme
                if op == O_SUBFME:
                    x = ~a & M32
                y = M32
                c = 1 if st[S_XER] & XER_CA else 0
            s = x + y + c
            r = s & M32
            if ca_form:
                _set_ca(st, s >> 32)
            st[f0] = r
            if fl & FLAG_OE:
                _set_ov(st, (((x ^ r) & (y ^ r)) >> 31) & 1 != 0)
            if rc:
                crv = r
        elif g == G_LOGIC_IMM:
            if op == O_ORI:
                st[f0] = st[f1] | f2
            elif op == O_ORIS:
                st[f0] = st[f1] | (f2 << 16)
            elif op == O_XORI:
                st[f0] = st[f1] ^ f2
            elif op == O_XORIS:
                st[f0] = st[f1] ^ (f2 << 16)
            elif op == O_ANDI_RC:
                st[f0] = st[f1] & f2
                crv = st[f0]
            else:  # andis.
                st[f0] = st[f1] & (f2 << 16)
                crv = st[f0]
        elif g == G_SHIFT:
            s = st[f1]
            if op == O_SLW:
                n = st[f2] & 63
                r = 0 if n > 31 else (s << n) & M32
            elif op == O_SRW:
                n = st[f2] & 63
                r = 0 if n > 31 else s >> n
            else:  # sraw / srawi
                n = (st[f2] & 63) if op == O_SRAW else f2
                ss = _s32(s)
                if n > 31:
                    r = M32 if ss < 0 else 0
                    ca = ss < 0
                else:
                    r = (ss >> n) & M32
                    ca = ss < 0 and (s & ((1 << n) - 1)) != 0
                _set_ca(st, ca)
            st[f0] = r
            if rc:
                crv = r
        elif g == G_EXTEND:
            s = st[f1]
            if op == O_EXTSH:
                r = (s | 0xFFFF0000) if s & 0x8000 else (s & 0xFFFF)
            else:  # extsb
                r = (s | 0xFFFFFF00) if s & 0x80 else (s & 0xFF)
            st[f0] = r
            if rc:
                crv = r
        elif g == G_MUL_DIV:
            a = st[f1]
            if op == O_MULLI:
                st[f0] = (_s32(a) * f2) & M32
            else:
                b = st[f2]
                ov = False
                if op == O_MULLW:
                    p = _s32(a) * _s32(b)
                    r = p & M32
                    ov = p != _s32(r)
                elif op == O_MULHWU:   # the 64-bit product overflows int64: split it
                    r = ((a >> 16) * b + (((a & 0xFFFF) * b) >> 16)) >> 16
                elif op == O_MULHW:
                    r = ((_s32(a) * _s32(b)) >> 32) & M32
                elif op == O_DIVWU:
                    if b == 0:
                        r = a
                        ov = True
                    else:
                        r = a // b
                else:  # divw
                    sa = _s32(a)
                    sb = _s32(b)
                    if sb == 0 or (sa == -0x80000000 and sb == -1):
                        r = a
                        ov = True
                    else:
                        q = abs(sa) // abs(sb)
                        r = (q if (sa < 0) == (sb < 0) else -q) & M32
                st[f0] = r
                if fl & FLAG_OE:
                    _set_ov(st, ov)
                if rc:
                    crv = r
        elif g == G_CARRY_IMM:
            if op == O_SUBFIC:
                s = (~st[f1] & M32) + (f2 & M32) + 1
                st[f0] = s & M32
                _set_ca(st, s >> 32)
            else:  # addic / addic.
                s = st[f1] + (f2 & M32)
                st[f0] = s & M32
                _set_ca(st, s >> 32)
                if op == O_ADDIC_RC:
                    crv = st[f0]
        elif g == G_VECTOR:
            kind = f4 & 0xFF           # the fxv kind and width, from `_annotate`
            status = 0
            # Sync runs meet the analog core before an fxvoutx (it changes the
            # network) and an fxvinx of the correlation sensors (they follow the
            # network); weights and labels change only through this PPU's own
            # fxvoutx, so reading them needs no meeting.
            if sync and (kind == K_OUTX or (kind == K_INX and _reads_sensors(st, f1, f2, io_space))):
                if not st[S_SYNC_OK]:
                    return ST_SYNC
                st[S_SYNC_OK] = 0
            if kind < K_INX and kind != K_CMP:
                _valu(kind, f4 >> 8, f0, f1, f2, f3, st, vec)
            elif kind == K_SEL or kind == K_CMP:
                _vselcmp(kind, f4 >> 8, f0, f1, f2, f3, vec)
            elif kind == K_INX or kind == K_OUTX:
                status = _vio(kind, f0, f1, f2, f3, st, vec, wts, lbls, causal, acausal, resets,
                              touched, io_space)
                if status < 0:
                    extra = corr_cycles
                    status = 0
            elif kind == K_LAX or kind == K_STAX:
                status = _vmem(kind, f0, f1, f2, st, mem, vec, dec)
            else:
                _vpack(kind, f0, f1, f2, f3, vec)
            if status:
                if _interrupt(st, mem, np.int64(status), pc, st[S_FAULT], np.int64(0)):
                    continue
                return status
        elif g == G_SPR_MOVE:
            raw = f1 if op == O_MFSPR else f0
            n = ((raw & 0x1F) << 5) | ((raw >> 5) & 0x1F)
            if op == O_MFSPR:
                if n == 284 or n == 268:
                    st[f0] = (st[S_CYCLES] + st[S_TB_OFFSET]) & M32
                elif n == 285 or n == 269:
                    st[f0] = ((st[S_CYCLES] + st[S_TB_OFFSET]) >> 32) & M32
                elif spr_lut[0, n] >= 0:
                    st[f0] = st[spr_lut[0, n]]
                else:
                    if _interrupt(st, mem, np.int64(ST_PROGRAM), pc, pc, np.int64(ESR_PIL)):
                        continue
                    return ST_PROGRAM
            else:
                v = st[f1]
                if (n == SPR_DEC or n == SPR_DECAR or n == SPR_TBL or n == SPR_TBU or n == SPR_TCR
                        or n == SPR_TSR):
                    _timer_write(st, n, v, np.int64(dec[wi, 2]))
                    st[S_INSNS] += 1
                    st[S_PC] = npc
                    continue
                elif n == 1:
                    st[S_XER] = v & XER_MASK
                elif n == SPR_ESR:
                    st[S_ESR] = v & ESR_WRITABLE
                elif n == SPR_ICCR:
                    st[S_ICCR] = v
                    if _pin_level(st[S_GIN], v):
                        st[S_IRQ] |= IRQ_LEVEL
                    else:
                        st[S_IRQ] &= ~IRQ_LEVEL
                    stop_at = -1
                elif spr_lut[1, n] >= 0:
                    st[spr_lut[1, n]] = v
                elif spr_lut[1, n] == -1:
                    if _interrupt(st, mem, np.int64(ST_PROGRAM), pc, pc, np.int64(ESR_PIL)):
                        continue
                    return ST_PROGRAM
        elif g == G_CR_MOVE:
            if op == O_MFCR:
                st[f0] = st[S_CR]
            elif op == O_MFOCRF:
                m = 0
                for k in range(8):
                    if f1 & (0x80 >> k):
                        m |= 0xF << (28 - 4 * k)
                st[f0] = st[S_CR] & m
            else:  # mtcrf / mtocrf
                m = 0
                for k in range(8):
                    if f0 & (0x80 >> k):
                        m |= 0xF << (28 - 4 * k)
                st[S_CR] = (st[S_CR] & ~m & M32) | (st[f1] & m)
        elif g == G_LOAD_MULTIPLE or g == G_STORE_MULTIPLE:
            is_store = g == G_STORE_MULTIPLE
            ea = ((st[f2] if f2 else 0) + f1) & M32
            size = 4 * (32 - f0)
            if ea & 3 or ea & REGISTER_BUS_BIT and size != 4:
                if _interrupt(st, mem, np.int64(ST_ALIGNMENT), pc, ea, np.int64(0)):
                    continue
                return ST_ALIGNMENT
            if ea & REGISTER_BUS_BIT:        # one register (r31): a register-bus word access
                _bus_request(st, ea, is_store, f0)
                _retire(st, dec[wi, 2])
                st[S_PC] = npc
                return ST_BUS
            if ea + size > nmem:
                if _interrupt(st, mem, np.int64(ST_BUS_ERROR), pc, ea, np.int64(0)):
                    continue
                return ST_BUS_ERROR
            if is_store:
                for r in range(f0, 32):
                    _store(mem, ea + 4 * (r - f0), 4, st[r])
                if _mark_stores(dec, ea, size):
                    _retire(st, dec[wi, 2])
                    st[S_PC] = npc
                    return ST_REDECODE
            else:
                for r in range(f0, 32):
                    st[r] = _load(mem, ea + 4 * (r - f0), 4)
        elif g == G_BIT_COUNT:
            s = st[f1]
            if op == O_CNTLZW:
                r = 0
                while r < 32 and not s & (0x80000000 >> r):
                    r += 1
            elif op == O_POPCNTB:
                r = 0
                for k in range(4):
                    byte = (s >> (8 * k)) & 0xFF
                    c = 0
                    while byte:
                        c += byte & 1
                        byte >>= 1
                    r |= c << (8 * k)
            else:  # prtyw
                r = ((s >> 24) ^ (s >> 16) ^ (s >> 8) ^ s) & 1
            st[f0] = r
            if rc:
                crv = r
        elif g == G_CR_LOGIC:
            a = (st[S_CR] >> (31 - f1)) & 1
            b = (st[S_CR] >> (31 - f2)) & 1
            if op == O_CRNOR:
                t = 1 - (a | b)
            elif op == O_CRANDC:
                t = a & (1 - b)
            elif op == O_CRXOR:
                t = a ^ b
            elif op == O_CRNAND:
                t = 1 - (a & b)
            elif op == O_CRAND:
                t = a & b
            elif op == O_CREQV:
                t = 1 - (a ^ b)
            elif op == O_CRORC:
                t = a | (1 - b)
            else:  # cror
                t = a | b
            sh = 31 - f0
            st[S_CR] = (st[S_CR] & ~(1 << sh) & M32) | (t << sh)
        elif g == G_CR_FIELD:
            _set_crf(st, f0, (st[S_CR] >> (28 - 4 * f1)) & 0xF)
        elif g == G_TRAP:
            a = st[f1]
            b = st[f2] if op == O_TW else (f2 & M32)
            sa = _s32(a)
            sb = _s32(b)
            if ((f0 & 16 and sa < sb) or (f0 & 8 and sa > sb) or (f0 & 4 and a == b)
                    or (f0 & 2 and a < b) or (f0 & 1 and a > b)):
                _retire(st, dec[wi, 2])
                if _interrupt(st, mem, np.int64(ST_TRAP), pc, pc, np.int64(ESR_PTR)):
                    continue
                return ST_TRAP
        elif g == G_WAIT:
            st[S_FAULT] = pc
            st[S_PC] = npc
            _retire(st, dec[wi, 2])
            st[S_WAIT_CYCLES] = st[S_CYCLES]
            st[S_SLEEP] = 1
            if _sleep(st, max_cycles, sleep_advances):
                stop_at = -1
                continue
            return ST_SLEEPING
        elif g == G_MSR:
            if op == O_MFMSR:
                st[f0] = st[S_MSR]
            else:  # mtmsr
                _set_msr(st, st[f0])
                stop_at = -1
        elif g == G_RETURN:
            if op == O_RFI:
                npc = st[S_SRR0] & 0xFFFFFFFC
                _set_msr(st, st[S_SRR1])
            elif op == O_RFCI:
                npc = st[S_CSRR0] & 0xFFFFFFFC
                _set_msr(st, st[S_CSRR1])
            else:  # rfmci
                npc = st[S_MCSRR0] & 0xFFFFFFFC
                _set_msr(st, st[S_MCSRR1])
            stop_at = -1
        # G_SYNC: nothing to do
        if crv >= 0:
            _cr0(st, crv)
        _retire(st, dec[wi, 2] + extra)
        st[S_PC] = npc


# ---------------------------------------------------------------- C entry
# The run loop is reached through a C entry (a numba cfunc wrapping _run) at
# a machine-code address, never linked into its callers: the co-simulation
# loops and `run` call it through twin.ppu._jitcall.call_run_loop.  Linking
# it made numba optimise the whole interpreter again inside each loop (about
# 5 s of cold start each).  The arrays of _run arrive as pointer + shape.
_RUN_ARRAYS = (("dec", types.int32, 2), ("mem", types.uint8, 1), ("st", types.int64, 1), None,
               ("vec", types.uint8, 1), ("wts", types.uint32, 2), ("lbls", types.uint32, 2),
               ("causal", types.uint8, 2), ("acausal", types.uint8, 2), ("resets", types.uint8, 2),
               ("touched", types.uint8, 2), None, None, None, None, None)


def _run_c_signature():
    """C signature of the entry, in call_run_loop's argument order."""
    args = []
    for a in _RUN_ARRAYS:
        if a is None:
            args.append(types.int64)
        else:
            args += [types.CPointer(a[1])] + [types.int64] * a[2]
    return types.int64(*args)


def _run_c(dec_p, dec_n, dec_w, mem_p, mem_n, st_p, st_n, max_cycles, vec_p, vec_n,
           wts_p, wts_r, wts_q, lbl_p, lbl_r, lbl_q, ca_p, ca_r, ca_c, ac_p, ac_r, ac_c,
           rs_p, rs_r, rs_c, to_p, to_r, to_c, io_space, sleep_advances, hot, sync, corr_cycles):
    return _run(carray(dec_p, (dec_n, dec_w)), carray(mem_p, (mem_n,)), carray(st_p, (st_n,)), max_cycles,
                carray(vec_p, (vec_n,)), carray(wts_p, (wts_r, wts_q)), carray(lbl_p, (lbl_r, lbl_q)),
                carray(ca_p, (ca_r, ca_c)), carray(ac_p, (ac_r, ac_c)), carray(rs_p, (rs_r, rs_c)),
                carray(to_p, (to_r, to_c)), io_space, sleep_advances != 0, hot, sync != 0, corr_cycles)


_run_entry = None
_prefetch = None            # subprocess.Popen compiling the C entry into numba's cache


def _entry_cached() -> bool:
    """Whether numba's cache holds the C entry (checked without compiling it)."""
    from numba.core.caching import FunctionCache
    from ..compile_note import check_dependencies_of
    check_dependencies_of(_run_c)                # stale kernels go first
    try:
        return pathlib.Path(FunctionCache(_run_c)._cache_file._index_path).exists()
    except AttributeError:                       # numba internals moved: assume cached, stay quiet
        return True


def prefetch_run_loop() -> None:
    """When the run loop is not in numba's cache yet, start compiling it in a
    background process, so that it compiles on the machine's other core while
    this process compiles the analog core and the co-simulation loops (each
    compile is single-threaded; the first PPU use of a fresh install waits for
    all of them).  Called when a chip with PPUs is made; `run_loop_address`
    waits for that process.  BSS_TWIN_NO_PREFETCH=1 turns it off."""
    global _prefetch
    if _run_entry is not None or _prefetch is not None or os.environ.get("BSS_TWIN_NO_PREFETCH"):
        return
    if _entry_cached():
        return
    from ..compile_note import note_compile
    note_compile("the PPU interpreter in a background process", "about 10 s")
    root = str(pathlib.Path(__file__).resolve().parents[2])
    env = dict(os.environ, BSS_TWIN_NO_PREFETCH="1",
               PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    try:
        _prefetch = subprocess.Popen(
            [sys.executable, "-c", "from twin.ppu import interp; interp.run_loop_address()"],
            env=env, cwd=root, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except OSError as e:
        print(f"bss-twin: could not start the background compile ({e}); the PPU interpreter compiles "
              "on its first use instead", file=sys.stderr, flush=True)
        _prefetch = False


def run_loop_pending() -> bool:
    """Whether the background compile of the run loop is still running."""
    return bool(_prefetch) and _prefetch.poll() is None


def run_loop_address() -> int:
    """Machine-code address of the run loop's C entry: compiled, or loaded
    from numba's cache, on the first call (announced when it compiles); waits
    for the background compile of `prefetch_run_loop` if one runs."""
    global _run_entry
    if _run_entry is None:
        if _prefetch:
            err = _prefetch.communicate()[1]
            if _prefetch.returncode:
                tail = err.decode(errors="replace").strip().splitlines()[-3:]
                print("bss-twin: the background compile of the PPU interpreter failed "
                      f"(exit {_prefetch.returncode}: {' / '.join(tail)}); compiling it here",
                      file=sys.stderr, flush=True)
        if not _entry_cached():
            from ..compile_note import note_compile
            note_compile("the PPU interpreter", "about 10 s")
        _run_entry = cfunc(_run_c_signature(), cache=True)(_run_c)
    return _run_entry.address


@njit(cache=True)
def _run_at(addr, dec, mem, st, max_cycles, vec, wts, lbls, causal, acausal, resets, touched, io_space,
            sleep_advances, hot, sync, corr_cycles):
    return call_run_loop(addr, dec, mem, st, max_cycles, vec, wts, lbls, causal, acausal, resets, touched,
                         io_space, sleep_advances, hot, sync, corr_cycles)


def run(mem: np.ndarray, state: np.ndarray, max_cycles: int = 1 << 40,
        decoded: np.ndarray | None = None, vec: np.ndarray | None = None,
        io: VectorIO | None = None, sleep_advances: bool = False,
        hot_threshold: int | None = None, corr_cycles: int = 0) -> int:
    """Run from state[S_PC] until a stop; return the status (a `Status` value).

    `mem` (uint8), `state` (int64, `STATE_SIZE`), `vec` (`new_vector_state`;
    default: a fresh 1-slice state, discarded) and `decoded` (from
    `predecode_memory`, kept up to date in place) are updated in place;
    `max_cycles` bounds the total cycle count `state[S_CYCLES]`.  Status.BUS
    leaves an access for the caller (`complete_bus`, then run again)."""
    if decoded is None:
        decoded = predecode_memory(mem)
    if vec is None:
        vec = new_vector_state(1)
    if io is None:
        io = VectorIO.empty(slices=len(vec) // 35 // 16)
    hot = HOT_THRESHOLD if hot_threshold is None else hot_threshold
    if decoded.shape[1] < DECODED_WIDTH:
        hot = 0
    addr = run_loop_address()
    while True:
        status = int(_run_at(addr, decoded, mem, state, np.int64(max_cycles), vec, io.weights, io.labels,
                          io.causal, io.acausal, io.resets, io.touched, np.int64(io.space),
                          bool(sleep_advances), np.int64(hot), False, np.int64(corr_cycles)))
        if status == ST_YIELD:
            continue            # Python runs signal handlers and other threads here
        if status == ST_REDECODE:
            redecode(mem, decoded)
        elif status == ST_HOT:
            serve_hot(mem, state, decoded, len(vec) // 35)
        else:
            return status


def serve_hot(mem: np.ndarray, state: np.ndarray, decoded: np.ndarray, vector_bytes: int) -> None:
    """The loop stopped with ST_HOT at a branch target: translate the code there
    (for vector registers of `vector_bytes`)."""
    from . import jit
    jit.translate_at(mem, decoded, int(state[S_PC]), vector_bytes)


def serve_pending_hot(mem: np.ndarray, decoded: np.ndarray, vector_bytes: int) -> None:
    """Translate the words the co-simulation marked JIT_PENDING."""
    from . import jit
    decoded[0, COL_COVERED] &= ~HOT_PENDING
    for w in np.flatnonzero(decoded[:, COL_JIT] == JIT_PENDING).tolist():
        if decoded[w, COL_JIT] == JIT_PENDING:      # not made an entry by the previous region
            decoded[w, COL_JIT] = 0
            jit.translate_at(mem, decoded, 4 * w, vector_bytes)


def redecode(mem: np.ndarray, decoded: np.ndarray) -> None:
    """Decode the stale words of `decoded` again from `mem`; after a store into
    translated code, drop the translations first."""
    wide = decoded.shape[1] >= DECODED_WIDTH
    if wide and decoded[0, COL_COVERED] & DIRTY:
        _drop_translations(decoded)
    stale = np.flatnonzero(decoded[:, 0] == OP_STALE)
    if len(stale):
        flags = int(decoded[0, COL_COVERED]) & ~1 if wide else 0
        words = words_from_bytes(mem[:len(mem) & ~3])
        decoded[stale] = _annotate(predecode_words(words[stale]))[:, :decoded.shape[1]]
        if wide:
            decoded[0, COL_COVERED] |= flags      # row 0 carries the memory's flags


def complete_bus(state: np.ndarray, value: int | None) -> None:
    """Finish a Status.BUS load: put the read value in its target register."""
    if not state[S_BUS_WRITE]:
        state[int(state[S_BUS_RT])] = int(value) & 0xFFFFFFFF


def drive_pins(state: np.ndarray, pins: int) -> None:
    """The general-purpose input pins change to `pins` (32 bits; GIN, SPR 65)
    between two instructions (interrupt_ctrl.sv): an edge-sensitive pin's edge
    is latched as a request while MSR[EE] is set (an edge while it is clear is
    lost), and the level-sensitive request follows the new levels."""
    pins = int(pins) & M32
    old, iccr = int(state[S_GIN]), int(state[S_ICCR])
    irq = int(state[S_IRQ]) & ~IRQ_LEVEL
    if pin_level_request(pins, iccr):
        irq |= IRQ_LEVEL
    if state[S_MSR] & MSR_EE and pin_edge_request(old, pins, iccr):
        irq |= IRQ_EDGE
    state[S_GIN], state[S_IRQ] = pins, irq


def doorbell_edge(state: np.ndarray) -> None:
    """A rising edge of the core's doorbell input between two instructions
    (interrupt_ctrl.sv doorbell_req): latched as a doorbell request while
    MSR[EE] is set, lost otherwise."""
    if state[S_MSR] & MSR_EE:
        state[S_IRQ] = int(state[S_IRQ]) | IRQ_DOORBELL
