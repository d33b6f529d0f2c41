# Additive STDP with weight bounds, from the correlation sensors.
#
# For every synapse of this PPU's array, each update:
#   d  = causal - acausal trace        (from the readings, halved: -127..127)
#   a  = sat(d - offset)               (offset: the synapse's reading with no spikes)
#   a' = a outside the dead zone |a| < theta, else 0
#   a' > 0:  w += floor(a' * eta_pos / 128)
#   a' < 0:  w -= floor(|a'| * eta_neg / 128)
#   w  clamped to w_min..w_max, calibration bits kept; the sensors with a' != 0 reset.
# The step does not depend on w (unlike stdp_mult): the bounds alone keep the
# weights in range.  eta_pos and eta_neg are fractions of 128; the reference
# model is firmware.rules.stdp_add_reference.
#
# Parameters (MB_PARAMS words, names from firmware.rules.RULES):
#   P_THETA 0..127, P_ETA_POS 0..127, P_ETA_NEG 0..127,
#   P_W_MIN 0..WEIGHT_MAX, P_W_MAX 0..WEIGHT_MAX (w_min <= w_max),
#   P_OFFSET_STRIDE  bytes from one row's offsets to the next in MB_DATA: 0 (one
#                    row of offsets for every row) or 2 * VECTOR_BYTES (one per synapse)
#   P_ROWS           rows 0 .. P_ROWS - 1 are updated (1..SYNAPSE_ROWS; the host's
#                    default: all); the others and their sensors are left alone
# Offsets: signed bytes in MB_DATA (lib/vector.s, offsets_at; zeros: no offsets).

    .text
    .globl rule_init
rule_init:
    splat_param 1, P_THETA, 127, r4, 9f             # v1 theta
    splat_param 2, P_ETA_POS, 127, r4, 9f           # v2 eta_pos
    splat_param 3, P_ETA_NEG, 127, r4, 9f           # v3 eta_neg
    splat_param 4, P_W_MIN, WEIGHT_MAX, r4, 9f      # v4 w_min
    splat_param 5, P_W_MAX, WEIGHT_MAX, r4, 9f      # v5 w_max
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
    li r16, 0                   # row half: row * 2 + half
    mtctr r19                   # rows 0 .. P_ROWS - 1
1:  fxvinx 6, r14, r16          # causal readings
    fxvinx 7, r15, r16          # acausal readings
    fxvinx 8, 0, r16            # synapse bytes
    offsets_at r5, r16, r18, r6
    fxvlax 9, 0, r5
    corr_diff 10, 6, 7          # v10 d
    fxvsubbfs 10, 10, 9         # v10 a = sat(d - offset)
    split_sign 11, 12, 10, 1, 0, 13     # v11 a' > 0 part, v12 a' < 0 part
    fxvsubbfs 13, 0, 12         # v13 |a'| of the negative part
    weight_split 14, 15, 8      # v14 w, v15 calibration bits
    fmul 16, 11, 2              # potentiation: floor(a' eta_pos / 128)
    fmul 17, 13, 3              # depression: floor(|a'| eta_neg / 128)
    fxvaddbfs 18, 14, 16
    fxvsubbfs 18, 18, 17
    clamp_range 18, 4, 5, 19
    fxvaddbm 18, 18, 15         # calibration bits back
    fxvoutx 18, 0, r16          # new weights
    fxvaddbm 20, 11, 12         # a': not zero where the synapse was updated
    fxvoutx 20, r14, r16        # reset those sensors
    addi r16, r16, 1
    bdnz 1b
    blr
