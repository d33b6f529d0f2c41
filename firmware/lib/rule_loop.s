# main for plasticity rules: runs the rule the mailbox asks for.
#
# A rule provides two functions (firmware/rules/*.s):
#   rule_init    read the parameters (MB_PARAMS) and set up what the updates
#                keep; returns r3 = 0, or a return code (RC_BAD_PARAMETER) to stop
#   rule_update  one update of the rule over this PPU's synapse array
# Both may use r0, r3-r12, r14-r23 and every vector register; r14-r23 and the
# vector registers keep their values from rule_init on (this loop uses only
# r24-r31).
#
# MB_COMMAND (written by the host before it starts the PPU):
#   CMD_ONCE       one update, then return RC_OK
#   CMD_PERIODIC   an update every MB_PERIOD_US microseconds of hardware time
#                  (0: back to back), MB_ITERATIONS of them (0: until the host
#                  writes CMD_STOP to MB_COMMAND); the core sleeps in between
#   other          return RC_BAD_COMMAND
# MB_UPDATES counts the updates done, MB_OVERRUNS those that started late.

    .text
    .globl main
main:
    mflr r31
    li r30, 0                   # updates done
    stw r30, MB_UPDATES(0)
    stw r30, MB_OVERRUNS(0)
    lwz r24, MB_COMMAND(0)
    cmpwi r24, CMD_ONCE
    beq 1f
    cmpwi r24, CMD_PERIODIC
    beq 1f
    li r3, RC_BAD_COMMAND
    b 9f
1:  bl rule_init
    cmpwi r3, 0
    bne 9f
    lwz r4, MB_PERIOD_US(0)
    mulli r29, r4, PPU_CYCLES_PER_US    # period in cycles
    lwz r28, MB_ITERATIONS(0)
    mftb r27                    # start of this update
2:  bl rule_update
    addi r30, r30, 1
    stw r30, MB_UPDATES(0)
    cmpwi r24, CMD_ONCE
    beq 8f
    cmpwi r28, 0
    beq 3f
    cmplw r30, r28
    bge 8f
3:  lwz r3, MB_COMMAND(0)
    cmpwi r3, CMD_STOP
    beq 8f
    cmpwi r29, 0
    beq 2b                      # no period: back to back
    add r27, r27, r29
    mr r3, r27
    bl sleep_until
    cmpwi r3, 0
    beq 2b
    lwz r4, MB_OVERRUNS(0)      # late: count it, the next period starts now
    addi r4, r4, 1
    stw r4, MB_OVERRUNS(0)
    mftb r27
    b 2b
8:  li r3, RC_OK
9:  mtlr r31
    blr
