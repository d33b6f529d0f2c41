# Twin start: stack below 0x20000, run compute(), stop at wait.
    .globl _start
_start:
    lis 1, 0x2
    addi 1, 1, -16
    bl compute
    .long 0x7C00007C    # wait (gcc drives as without -me500mc: spell the nux encoding)
