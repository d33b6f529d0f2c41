# Example (dls, one vector slice): add two byte vectors with the fxv unit, store
# the sum in the mailbox, and return the sum of its bytes with a scalar loop.
# Expected: mailbox bytes 100..115, return code 1720.
#
#   bss-twin asm firmware/crt0.s firmware/examples/vector_sum.s -o vector_sum.bin
#   bss-twin ppu-run vector_sum.bin --regs

    .text
    .globl main
main:
    li r4, vec_a
    fxvlax 1, 0, r4             # 16 bytes at vec_a (16-byte aligned)
    li r4, vec_b
    fxvlax 2, 0, r4
    fxvaddbm 3, 1, 2            # bytewise modulo add
    li r4, __mailbox
    fxvstax 3, 0, r4
    li r6, 16                   # scalar: sum the 16 result bytes
    mtctr r6
    li r3, 0
    addi r4, r4, -1
1:  lbzu r7, 1(r4)
    add r3, r3, r7
    bdnz 1b
    blr

    .data
    .balign 16
vec_a:
    .byte 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
vec_b:
    .fill 16, 1, 100
