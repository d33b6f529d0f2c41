# PPU runtime (crt0): reset entry, interrupt vector table, stack, main, return code, sleep.
#
# Memory layout (16 KiB SRAM):
#   0x0000          reset: branch to __crt0_reset
#   0x0004..0x0030  interrupt vectors (twin/ppu/interp.py): a word of 0 means "not
#                   installed": the interrupt stops the core with a fault the host
#                   sees (host.PPUFault names the address).  To install a handler,
#                   replace the .long 0 at its vector with `b handler`.
#   0x0034..        code and data
#   ..0x2FF0        stack (grows down)
#   0x2FFC          return code: main's r3
#   0x3000..0x3FFF  mailbox (4 KiB) for results the host reads
#
# Assemble it first, then the program: `bss-twin asm firmware/crt0.s prog.s -o prog.bin`.

    .set __return_code, 0x2FFC
    .set __mailbox, 0x3000
    .set __stack_top, 0x2FF0

    .text
    .globl _start
_start:
    b __crt0_reset
    # 0x04 machine check, 0x08 critical, 0x0C data storage, 0x10 instruction storage,
    # 0x14 external, 0x18 alignment, 0x1C program, 0x20 system call, 0x24 decrementer,
    # 0x28 fixed-interval timer, 0x2C watchdog, 0x30 debug
    .long 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
__crt0_reset:
    lis r1, __stack_top@h
    ori r1, r1, __stack_top@l
    li r0, 0
    stwu r0, -16(r1)            # end of the back chain
    bl main
    stw r3, __return_code(0)
1:  wait
    b 1b                        # released by the host: sleep again
