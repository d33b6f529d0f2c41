# Homeostasis: each neuron's incoming weights move toward a target rate.
#
# Each update, for every neuron of this PPU (column c of its synapse array is
# neuron ppu * NEURONS_PER_PPU + c):
#   n  = its spike counter word over the register bus: the count since the
#        last update, the overflow bit above it (an overflowed counter reads
#        2^24 or more: always too many); the counter is reset right after
#   s  = +step if n < target - tolerance, -step if n > target + tolerance, else 0
# then for every synapse of column c, in every row:
#   w  = clamp(w + s, w_min, w_max), calibration bits kept.
# The reference model is firmware.rules.homeostasis_reference.
#
# Parameters (MB_PARAMS words, names from firmware.rules.RULES):
#   P_TARGET 0..2^24-1      spikes per update period the rule aims at
#   P_TOLERANCE 0..2^24-1   counts within target +- tolerance change nothing
#   P_STEP 0..WEIGHT_MAX, P_W_MIN 0..WEIGHT_MAX, P_W_MAX 0..WEIGHT_MAX (w_min <= w_max),
#   P_PPU 0..PPUS-1         which PPU this is (firmware.RuleOnChip sets it)

# One row half (r16): its weights plus the steps in vector `steps`, clamped.
    .macro nudge steps
    fxvinx 5, 0, r16
    weight_split 6, 7, 5        # v6 w, v7 calibration bits
    fxvaddbfs 6, 6, \steps
    clamp_range 6, 1, 2, 8
    fxvaddbm 6, 6, 7            # calibration bits back
    fxvoutx 6, 0, r16
    addi r16, r16, 1
    .endm

    .text
    .globl rule_init
rule_init:
    lwz r4, P_TARGET(0)
    lwz r5, P_TOLERANCE(0)
    lis r6, 1 << (SPIKE_COUNTER_COUNT_BITS - 16)    # counts have 24 bits
    cmplw r4, r6
    bge 9f
    cmplw r5, r6
    bge 9f
    subf r17, r5, r4            # r17 target - tolerance (below 0: never too few)
    add r18, r4, r5             # r18 target + tolerance
    lwz r19, P_STEP(0)          # r19 step
    cmplwi r19, WEIGHT_MAX
    bgt 9f
    splat_param 1, P_W_MIN, WEIGHT_MAX, r4, 9f      # v1 w_min
    splat_param 2, P_W_MAX, WEIGHT_MAX, r4, 9f      # v2 w_max
    lwz r5, P_W_MIN(0)          # clamp_range needs w_min <= w_max (r4)
    cmplw r5, r4
    bgt 9f
    lwz r4, P_PPU(0)
    cmplwi r4, PPUS - 1
    bgt 9f
    mulli r4, r4, 4 * NEURONS_PER_PPU
    lis r14, REG_SPIKE_COUNTER@h
    ori r14, r14, REG_SPIKE_COUNTER@l
    add r14, r14, r4            # r14 this PPU's first spike counter
    lis r15, REG_SPIKE_COUNTER_RESET@h
    ori r15, r15, REG_SPIKE_COUNTER_RESET@l
    add r15, r15, r4            # r15 its reset
    lis r20, steps@h
    ori r20, r20, steps@l       # r20 the step of each column
    li r3, 0
    blr
9:  li r3, RC_BAD_PARAMETER
    blr

    .globl rule_update
rule_update:
    li r16, 0                   # column
    li r4, SYNAPSE_COLUMNS
    mtctr r4
    li r7, 1
1:  slwi r5, r16, 2
    lwzx r6, r14, r5            # spike counter word
    stwx r7, r15, r5            # reset: the next period counts from here
    clrlwi r6, r6, 31 - SPIKE_COUNTER_OVERFLOW_LSB      # count and overflow bit
    li r8, 0
    cmpw r6, r17
    bge 2f
    mr r8, r19                  # too few spikes: + step
2:  cmpw r6, r18
    ble 3f
    neg r8, r19                 # too many: - step
3:  stbx r8, r20, r16
    addi r16, r16, 1
    bdnz 1b
    fxvlax 3, 0, r20            # v3 steps of columns 0..VECTOR_BYTES-1
    li r4, VECTOR_BYTES
    fxvlax 4, r20, r4           # v4 steps of the columns above
    li r16, 0                   # row half: row * 2 + half
    li r4, SYNAPSE_ROWS
    mtctr r4
4:  nudge 3
    nudge 4
    bdnz 4b
    blr

    .bss
    .balign 16                  # for fxvlax
steps:
    .space SYNAPSE_COLUMNS
