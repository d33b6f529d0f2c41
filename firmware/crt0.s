# PPU runtime (crt0): reset entry, interrupt vectors, stack, main, return code,
# and the one interrupt handler it installs: the decrementer's, for sleep_until.
#
# Memory layout (symbols from include/runtime.inc, generated from isa/ by
# `bss-twin gen-docs`; the values are those of isa/ppu/iomap.py and isa/ppu/core.py):
#   0x0000            reset: branch to __crt0_reset
#   VEC_* (0x04..)    interrupt vectors.  A word of 0 means "not installed": the
#                     interrupt stops the core with a fault the host sees
#                     (host.PPUFault names the address).  To install a handler,
#                     put `b handler` at its vector (`.org VEC_...` in your source
#                     replaces nothing here: edit a copy of this file).
#   VECTOR_TABLE_END  code and data
#   ..STACK_TOP       stack (grows down)
#   RETURN_CODE       main's r3, stored when main returns
#   MAILBOX (4 KiB)   command, parameters, results and data (MB_*, docs/firmware.md)
#
# The mailbox word MB_STATE reads STATE_RUNNING from reset until main returns
# and STATE_DONE after: a host can tell a rule sleeping between updates from
# one that has finished.
#
# Assemble it first, then the program:
#   bss-twin asm firmware/crt0.s prog.s -o prog.bin
#   powerpc-linux-gnu-as -me500mc -mregnames -I firmware firmware/crt0.s -o crt0.o   (GNU as)

    .include "include/runtime.inc"
    # names of the first runtime, kept for programs that use them
    .set __return_code, RETURN_CODE
    .set __mailbox, MAILBOX
    .set __stack_top, STACK_TOP

    .text
    .globl _start
_start:
    b __crt0_reset
    .org VEC_DECREMENTER
    b __crt0_decrementer
    .org VECTOR_TABLE_END
__crt0_reset:
    lis r1, STACK_TOP@h
    ori r1, r1, STACK_TOP@l
    li r0, 0
    stwu r0, -16(r1)            # end of the back chain
    li r3, STATE_RUNNING
    stw r3, MB_STATE(0)
    bl main
    stw r3, RETURN_CODE(0)
    li r4, STATE_DONE
    stw r4, MB_STATE(0)
1:  wait
    b 1b                        # released by the host: sleep again

# sleep_until(r3 = time-base value, low word): sleep until the time base
# reaches it.  Returns r3 = 0 after sleeping, 1 without sleeping when that
# time has passed already (or is now).  The difference is taken modulo 2^32:
# targets up to 2^31 cycles ahead (21 s at 98 MHz, 8.5 s at 250 MHz).
# Uses r4, r5, r6 and the decrementer: DEC counts the cycles down and sets
# TSR.DIS when it expires; with TCR.DIE that requests the decrementer
# interrupt, which wakes `wait` (nux RTL timer_unit.sv, interrupt_ctrl.sv).
# Interrupts and TCR.DIE are enabled only in here.
    .globl sleep_until
sleep_until:
    mftb r4
    subf r4, r4, r3             # cycles to go
    cmpwi r4, 0
    ble 2f
    lis r5, TSR_DIS@h
    mtspr SPR_TSR, r5           # clear a stale expiry (write one to clear)
    mtdec r4
    mfspr r5, SPR_TCR
    oris r5, r5, TCR_DIE@h
    mtspr SPR_TCR, r5           # an expiry requests the interrupt from here on
    mfmsr r5
    ori r5, r5, MSR_EE
    mtmsr r5                    # the decrementer may fire from here on
__crt0_sleep_wait:
    wait                        # woken by the decrementer interrupt
    mfmsr r5
    li r6, 0
    ori r6, r6, MSR_EE
    andc r5, r5, r6
    mtmsr r5
    mfspr r5, SPR_TCR
    lis r6, TCR_DIE@h
    andc r5, r5, r6
    mtspr SPR_TCR, r5
    li r3, 0
    blr
2:  li r3, 1
    blr

# wait_cycles(r3 = cycles): busy-wait until the time base has advanced by r3
# cycles (unsigned, up to 2^32 - 1); the core stays awake (use sleep_until to
# sleep).  Uses r4, r5.
    .globl wait_cycles
wait_cycles:
    mftb r4
1:  mftb r5
    subf r5, r4, r5
    cmplw r5, r3
    blt 1b
    blr

# The decrementer fired (TSR.DIS with TCR.DIE and MSR[EE]).  If it fired
# before the `wait` of sleep_until ran (the time to go was a few cycles),
# return past that `wait`, which would otherwise sleep with nothing left to
# wake it.  Saves what it uses on the stack: the nux core reads no SPRG (its
# mfspr multiplexer, src/rtl/processor/operand_fetch.sv, has none).
__crt0_decrementer:
    stwu r1, -16(r1)
    stw r3, 8(r1)
    stw r4, 12(r1)
    mfcr r3
    stw r3, 4(r1)
    lis r3, TSR_DIS@h
    mtspr SPR_TSR, r3           # acknowledge: TSR.DIS would request it again after rfi
    mfsrr0 r3
    lis r4, __crt0_sleep_wait@h
    ori r4, r4, __crt0_sleep_wait@l
    cmpw r3, r4
    bne 1f
    addi r3, r3, 4
    mtsrr0 r3
1:  lwz r3, 4(r1)
    mtcrf 0xff, r3
    lwz r4, 12(r1)
    lwz r3, 8(r1)
    addi r1, r1, 16
    rfi
