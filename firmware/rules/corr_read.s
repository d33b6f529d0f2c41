# Correlation readout: the causal and acausal readings of a block of rows into
# the mailbox, for the host (the sensor characterisation of tools/experiments).
#
# Parameters (MB_PARAMS words, firmware.rules.RULES["corr_read"]):
#   P_FIRST_ROW, P_ROWS   rows first_row .. first_row + rows - 1 of this PPU's array
#   P_RESET               1: reset the sensors of each row half after reading it
# Output in MB_DATA: the causal readings (rows x SYNAPSE_COLUMNS bytes, row-major),
# then the acausal ones; each row half is read with fxvinx and stored with fxvstax.
# The rows must fit: 2 x rows x SYNAPSE_COLUMNS <= MB_DATA_SIZE (dls: all 32 rows,
# hx: 6 rows of 256).

    .text
    .globl rule_init
rule_init:
    lwz r14, P_FIRST_ROW(0)
    lwz r15, P_ROWS(0)
    lwz r16, P_RESET(0)
    cmplwi r16, 1
    bgt 9f
    cmplwi r15, 1
    blt 9f
    add r4, r14, r15
    cmplwi r4, SYNAPSE_ROWS
    bgt 9f
    mulli r4, r15, 2 * SYNAPSE_COLUMNS
    cmplwi r4, MB_DATA_SIZE
    bgt 9f
    lis r20, IO_CAUSAL@h
    ori r20, r20, IO_CAUSAL@l
    lis r21, IO_ACAUSAL@h
    ori r21, r21, IO_ACAUSAL@l
    li r4, 1
    fxvsplatb 1, r4             # v1: reset request
    li r3, 0
    blr
9:  li r3, RC_BAD_PARAMETER
    blr

    .globl rule_update
rule_update:
    slwi r17, r14, 1            # first row half
    slwi r4, r15, 1
    mtctr r4
    li r18, MB_DATA             # causal destination
    mulli r19, r15, SYNAPSE_COLUMNS
    add r19, r19, r18           # acausal destination
1:  fxvinx 2, r20, r17
    fxvinx 3, r21, r17
    fxvstax 2, 0, r18
    fxvstax 3, 0, r19
    cmpwi r16, 0
    beq 2f
    fxvoutx 1, r20, r17
2:  addi r17, r17, 1
    addi r18, r18, VECTOR_BYTES
    addi r19, r19, VECTOR_BYTES
    bdnz 1b
    blr
