# Reward-modulated STDP: the correlation sensors hold the eligibility, a
# reward from the host turns it into weight changes.
#
# For every synapse of this PPU's array, each update with reward R != 0:
#   d  = causal - acausal trace        (from the readings, halved: -127..127)
#   a  = sat(d - offset)               (offset: the synapse's reading with no spikes)
#   a' = a outside the dead zone |a| < theta, else 0      (the eligibility)
#   e  = floor(|a'| * eta / 128)
#   w += sign(a') sign(R) floor(e * |R| / 128)
#   w  clamped to w_min..w_max, calibration bits kept; the sensors with a' != 0 reset.
# Both products truncate toward zero, so -R undoes +R exactly (away from the
# bounds); |R| of -128 is taken as 127.  With R = 0 an update changes nothing
# and resets nothing: the sensors go on accumulating the eligibility until a
# reward comes.  eta is a fraction of 128, R of 128; the reference model is
# firmware.rules.stdp_reward_reference.
#
# Parameters (MB_PARAMS words, names from firmware.rules.RULES):
#   P_REWARD  -128..127 as a signed word (two's complement), read at the
#             start of every update: the host may rewrite it while the rule
#             runs (firmware.RuleOnChip.set); the update uses its low byte
#   P_THETA 0..127, P_ETA 0..127,
#   P_W_MIN 0..WEIGHT_MAX, P_W_MAX 0..WEIGHT_MAX (w_min <= w_max),
#   P_OFFSET_STRIDE  bytes from one row's offsets to the next in MB_DATA: 0 (one
#                    row of offsets for every row) or 2 * VECTOR_BYTES (one per synapse)
#   P_ROWS           rows 0 .. P_ROWS - 1 are updated (1..SYNAPSE_ROWS; the host's
#                    default: all); the others and their sensors are left alone
# Offsets: signed bytes in MB_DATA (lib/vector.s, offsets_at; zeros: no offsets).

    .text
    .globl rule_init
rule_init:
    lwz r4, P_REWARD(0)
    cmpwi r4, 127
    bgt 9f
    cmpwi r4, -128
    blt 9f
    splat_param 1, P_THETA, 127, r4, 9f             # v1 theta
    splat_param 2, P_ETA, 127, r4, 9f               # v2 eta
    splat_param 3, P_W_MIN, WEIGHT_MAX, r4, 9f      # v3 w_min
    splat_param 4, P_W_MAX, WEIGHT_MAX, r4, 9f      # v4 w_max
    lwz r5, P_W_MIN(0)          # clamp_range needs w_min <= w_max (r4)
    cmplw r5, r4
    bgt 9f
    corr_rule_setup 9f          # v0 zeros, r19 row halves, r18 offset stride, r14/r15 sensors
    li r3, 0
    blr
9:  li r3, RC_BAD_PARAMETER
    blr

    .globl rule_update
rule_update:
    lwz r4, P_REWARD(0)         # as the host left it since the last update
    extsb. r4, r4
    beqlr                       # no reward: the eligibility keeps accumulating
    fxvsplatb 5, r4             # v5 R
    fxvsubbfs 6, 0, 5           # -R (saturated: -128 gives 127)
    fxvcmpb 5
    fxvsel 5, 5, 6, 2           # v5 |R|
    srawi r4, r4, 31
    ori r4, r4, 1
    fxvsplatb 6, r4             # v6 sign(R): 1 or -1
    li r16, 0                   # row half: row * 2 + half
    mtctr r19                   # rows 0 .. P_ROWS - 1
1:  fxvinx 7, r14, r16          # causal readings
    fxvinx 8, r15, r16          # acausal readings
    fxvinx 9, 0, r16            # synapse bytes
    offsets_at r5, r16, r18, r6
    fxvlax 10, 0, r5
    corr_diff 11, 7, 8          # v11 d
    fxvsubbfs 11, 11, 10        # v11 a = sat(d - offset)
    split_sign 12, 13, 11, 1, 0, 14     # v12 a' > 0 part, v13 a' < 0 part
    fxvsubbfs 14, 0, 13         # v14 |a'| of the negative part
    fmul 15, 12, 2              # e of either part ...
    fmul 16, 14, 2
    fmul 15, 15, 5              # ... times |R| / 128
    fmul 16, 16, 5
    fxvsubbm 15, 15, 16         # the change for a positive reward ...
    fxvmulbm 15, 15, 6          # ... and for R's sign
    weight_split 17, 18, 9      # v17 w, v18 calibration bits
    fxvaddbfs 17, 17, 15
    clamp_range 17, 3, 4, 19
    fxvaddbm 17, 17, 18         # calibration bits back
    fxvoutx 17, 0, r16          # new weights
    fxvaddbm 20, 12, 13         # a': not zero where the synapse was updated
    fxvoutx 20, r14, r16        # reset those sensors
    addi r16, r16, 1
    bdnz 1b
    blr
