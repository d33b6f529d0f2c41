# Macros for the vector patterns of plasticity rules (byte elements).
#
# Vector I/O: fxvinx / fxvoutx VRT, RA, RB reach row half RB (row * 2 + half)
# of the space whose base address RA holds (IO_WEIGHTS is 0: use RA = 0).
# Synapse bytes hold the weight in their low WEIGHT_BITS bits and calibration
# bits above.  Correlation readings (IO_CAUSAL, IO_ACAUSAL) are column-ADC
# bytes, 0..255, baseline minus trace: a larger trace reads lower.  An fxvoutx
# to either correlation space resets both traces of each synapse whose byte is
# not zero.  Arithmetic on bytes is signed (-128..127); `fs` forms saturate,
# `m` forms wrap.  The flag-setting fxvcmpb and the selects fxvsel VRT, VRA,
# VRB, C (VRT = VRB where the flag C holds: 1 greater, 2 less, 3 equal than
# zero, else VRA) implement the clamps.  The last macros are the scalar
# parameter and offset handling that the rules share.

# Weight field and calibration bits of synapse bytes: w6 = w & WEIGHT_MAX, cal = w - w6.
    .macro weight_split w6, cal, w
    fxvshb \w6, \w, 8 - WEIGHT_BITS
    fxvshb \w6, \w6, WEIGHT_BITS - 8
    fxvsubbm \cal, \w, \w6
    .endm

# Trace difference causal minus acausal from the two readings (halved to fit a
# signed byte): d = acausal/2 - causal/2, -127..127.  Overwrites c and a.
    .macro corr_diff d, c, a
    fxvshb \c, \c, -1
    fxvshb \a, \a, -1
    fxvsubbm \d, \a, \c
    .endm

# Clamp x to 0..hi (signed bytes; hi a vector).  zero is a vector of zeros; tmp scratch.
    .macro clamp x, zero, hi, tmp
    fxvcmpb \x
    fxvsel \x, \x, \zero, 2
    fxvsubbfs \tmp, \x, \hi
    fxvcmpb \tmp
    fxvsel \x, \x, \hi, 1
    .endm

# Clamp x to lo..hi (signed bytes; lo, hi vectors, lo <= hi).  tmp scratch.
    .macro clamp_range x, lo, hi, tmp
    fxvsubbfs \tmp, \x, \lo
    fxvcmpb \tmp
    fxvsel \x, \x, \lo, 2
    fxvsubbfs \tmp, \x, \hi
    fxvcmpb \tmp
    fxvsel \x, \x, \hi, 1
    .endm

# Dead zone and sign: pos = a where a >= theta, else 0; neg = a where
# a <= -theta, else 0 (theta a vector, 0..127).  pos + neg is a outside the
# dead zone and 0 inside it.  zero is a vector of zeros; tmp scratch.
    .macro split_sign pos, neg, a, theta, zero, tmp
    fxvsubbfs \tmp, \a, \theta
    fxvcmpb \tmp
    fxvsel \pos, \a, \zero, 2
    fxvaddbfs \tmp, \a, \theta
    fxvcmpb \tmp
    fxvsel \neg, \a, \zero, 1
    .endm

# Fractional multiply: t = floor(a * b / 128), saturating (b = 64 halves a).
    .macro fmul t, a, b
    fxvmulbfs \t, \a, \b
    .endm

# Rounded fractional multiply through the accumulator: t = floor((a b + 64) / 128),
# i.e. a b / 128 rounded (halves up), saturating.  half is a vector of 64s, zero
# of zeros; overwrites the accumulator.  Costs 4 instructions where fmul costs 1,
# and a small product rounds to the nearest step instead of down.
    .macro fmul_round t, a, b, half, zero
    fxvmtacb \half              # acc = 64
    fxvaddactacbm 0, \half, 0   # acc = 128: half a step of the upper byte
    fxvmatacbfs 0, \a, \b       # acc = sat(2 a b + acc, 16)
    fxvaddacbfs \t, \zero, 0    # t = upper byte of acc
    .endm

# Vector I/O of row half rh (a register holding row * 2 + half).
    .macro load_weights v, rh
    fxvinx \v, 0, \rh
    .endm
    .macro store_weights v, rh
    fxvoutx \v, 0, \rh
    .endm
# space: a register holding IO_CAUSAL or IO_ACAUSAL
    .macro read_corr v, space, rh
    fxvinx \v, \space, \rh
    .endm
# Reset both traces of the synapses whose byte of mask is not zero.
    .macro reset_corr mask, space, rh
    fxvoutx \mask, \space, \rh
    .endm

# rule_init: vr = the parameter word at `param` in every byte; branches to
# `bad` when the word exceeds hi (unsigned).  Uses tmp.
    .macro splat_param vr, param, hi, tmp, bad
    lwz \tmp, \param(0)
    cmplwi \tmp, \hi
    bgt \bad
    fxvsplatb \vr, \tmp
    .endm

# Per-synapse offsets of the correlation rules: signed bytes in MB_DATA, row
# half rh (row * 2 + half) at MB_DATA + half * VECTOR_BYTES + row * stride,
# stride (P_OFFSET_STRIDE) 0 (one row of offsets for every row) or
# 2 * VECTOR_BYTES (one per synapse).

# rule_init: halves = 2 * P_ROWS, the row halves rows 0 .. P_ROWS - 1 span (the
# rule updates those rows only; the others, their sensors too, are left alone);
# branches to `bad` unless 1 <= P_ROWS <= SYNAPSE_ROWS.
    .macro row_halves halves, bad
    lwz \halves, P_ROWS(0)
    cmplwi \halves, 1
    blt \bad
    cmplwi \halves, SYNAPSE_ROWS
    bgt \bad
    slwi \halves, \halves, 1
    .endm

# rule_init: stride = P_OFFSET_STRIDE; branches to `bad` unless the offsets of
# the rows updated (halves / 2 of them, from row_halves) lie in MB_DATA and their
# rows are aligned for fxvlax.  Uses tmp.
    .macro offset_stride stride, halves, tmp, bad
    lwz \stride, P_OFFSET_STRIDE(0)
    srwi \tmp, \halves, 1
    addi \tmp, \tmp, -1
    mullw \tmp, \tmp, \stride
    cmplwi \tmp, MB_DATA_SIZE - 2 * VECTOR_BYTES
    bgt \bad
    andi. \tmp, \stride, VECTOR_BYTES - 1
    bne \bad
    .endm

# rule_init of the correlation rules (stdp_mult, stdp_add, stdp_reward): v0 = 0,
# r19 = the row halves updated (row_halves), r18 = the offset stride
# (offset_stride), r14 / r15 = the causal / acausal correlation I/O spaces;
# branches to `bad` on a bad P_ROWS or P_OFFSET_STRIDE.  Uses r4.
    .macro corr_rule_setup bad
    li r4, 0
    fxvsplatb 0, r4
    row_halves r19, \bad
    offset_stride r18, r19, r4, \bad
    lis r14, IO_CAUSAL@h
    ori r14, r14, IO_CAUSAL@l
    lis r15, IO_ACAUSAL@h
    ori r15, r15, IO_ACAUSAL@l
    .endm

# addr = the address of row half rh's offsets.  Uses tmp.
    .macro offsets_at addr, rh, stride, tmp
    andi. \addr, \rh, 1
    mulli \addr, \addr, VECTOR_BYTES
    srwi \tmp, \rh, 1
    mullw \tmp, \tmp, \stride
    add \addr, \addr, \tmp
    addi \addr, \addr, MB_DATA
    .endm
