# Multiplicative STDP from the correlation sensors (Friedmann et al. 2017,
# IEEE TBioCAS 11(1): the hybrid-plasticity experiments on HICANN-DLS).
#
# For every synapse of this PPU's array, each update:
#   d  = causal - acausal trace        (from the readings, halved: -127..127)
#   a  = sat(d - offset)               (offset: the synapse's reading with no spikes)
#   a' = a outside the dead zone |a| < theta, else 0
#   a' > 0:  w += floor(floor(a' * lambda_pos / 128) * 2 (w_max - w) / 128)
#   a' < 0:  w -= floor(floor(|a'| * lambda_neg / 128) * 2 w / 128)
#   w  clamped to 0..w_max, calibration bits kept; the sensors with a' != 0 reset.
# lambda_pos and lambda_neg (= lambda * alpha of the seed) are fractions of
# 128; the reference model is firmware.rules.stdp_mult_reference.
#
# Parameters (MB_PARAMS words, names from firmware.rules.RULES):
#   P_THETA 0..127, P_LAMBDA_POS 0..127, P_LAMBDA_NEG 0..127, P_W_MAX 0..WEIGHT_MAX,
#   P_OFFSET_STRIDE  bytes from one row's offsets to the next in MB_DATA: 0 (one
#                    row of offsets for every row) or 2 * VECTOR_BYTES (one per synapse)
#   P_ROWS           rows 0 .. P_ROWS - 1 are updated (1..SYNAPSE_ROWS; the host's
#                    default: all); the others and their sensors are left alone
# Offsets: signed bytes in MB_DATA (lib/vector.s, offsets_at; zeros: no offsets).

    .text
    .globl rule_init
rule_init:
    splat_param 1, P_THETA, 127, r4, 9f             # v1 theta
    splat_param 2, P_LAMBDA_POS, 127, r4, 9f        # v2 lambda_pos
    splat_param 3, P_LAMBDA_NEG, 127, r4, 9f        # v3 lambda_neg
    splat_param 4, P_W_MAX, WEIGHT_MAX, r4, 9f      # v4 w_max
    corr_rule_setup 9f          # v0 zeros, r19 row halves, r18 offset stride, r14/r15 sensors
    li r3, 0
    blr
9:  li r3, RC_BAD_PARAMETER
    blr

    .globl rule_update
rule_update:
    li r16, 0                   # row half: row * 2 + half
    mtctr r19                   # rows 0 .. P_ROWS - 1
1:  fxvinx 5, r14, r16          # causal readings
    fxvinx 6, r15, r16          # acausal readings
    fxvinx 7, 0, r16            # synapse bytes
    offsets_at r5, r16, r18, r6
    fxvlax 8, 0, r5
    corr_diff 9, 5, 6           # v9 d
    fxvsubbfs 9, 9, 8           # v9 a = sat(d - offset)
    split_sign 11, 12, 9, 1, 0, 10      # v11 a' > 0 part, v12 a' < 0 part
    fxvsubbfs 13, 0, 12         # v13 |a'| of the negative part
    weight_split 14, 15, 7      # v14 w, v15 calibration bits
    fxvsubbm 16, 4, 14          # 2 (w_max - w)
    fxvaddbm 16, 16, 16
    fmul 17, 11, 2              # potentiation: floor(a' lambda_pos / 128) ...
    fmul 17, 17, 16             # ... * 2 (w_max - w) / 128
    fxvaddbm 18, 14, 14         # 2 w
    fmul 19, 13, 3              # depression: floor(|a'| lambda_neg / 128) ...
    fmul 19, 19, 18             # ... * 2 w / 128
    fxvaddbfs 20, 14, 17
    fxvsubbfs 20, 20, 19
    clamp 20, 0, 4, 21
    fxvaddbm 20, 20, 15         # calibration bits back
    fxvoutx 20, 0, r16          # new weights
    fxvaddbm 22, 11, 12         # a': not zero where the synapse was updated
    fxvoutx 22, r14, r16        # reset those sensors
    addi r16, r16, 1
    bdnz 1b
    blr
