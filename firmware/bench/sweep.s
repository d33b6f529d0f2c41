# Benchmark firmware: sweep the whole synapse array of this PPU forever, without pause,
# applying a simple additive STDP-like rule to every synapse.
#
# Assembled after the chip's include file and crt0 (tools/bench/cosim.py, sweep_image):
#   bss-twin asm firmware/include/dls.inc firmware/crt0.s firmware/bench/sweep.s -o sweep_dls.bin
#   bss-twin asm firmware/include/hx.inc firmware/crt0.s firmware/bench/sweep.s -o sweep_hx.bin
# The chip constants (IO_CAUSAL, IO_ACAUSAL, ROW_HALVES, WEIGHT_MAX) come from the include;
# the vector width (16 bytes on dls, 128 on hx) needs no symbol: the vector unit has it.
#
# Per row and row half (EA % IO_SPACE = row*2 + half):
#   c+ = fxvinx causal, c- = fxvinx acausal, w = fxvinx weights (6-bit weight + 2 calibration bits)
#   The column ADC reads "baseline minus trace", so the causal-minus-acausal trace difference is
#   d = (c- >> 1) - (c+ >> 1)                      (-127..127, logical shifts, modulo subtract)
#   dw = hi(sat(2 * d * ETA, 16)) = floor(d * ETA / 128)   (fxvmulbfs; ETA = 32: floor(d / 4))
#   w6 = w & 63 (shift left 2, logical right 2), cal = w - w6
#   w6' = clamp(w6 + dw, 0, 63)                    (fxvcmpb / fxvsel)
#   fxvoutx w6' + cal to the weights, fxvoutx 1 to the causal space (resets both traces)
# After each full sweep the sweep counter at MAILBOX (word 0) is incremented.

    .ifndef ETA
    .set ETA, 32
    .endif

    .text
    .globl main
main:
    lis r20, IO_CAUSAL@h
    ori r20, r20, IO_CAUSAL@l
    lis r21, IO_ACAUSAL@h
    ori r21, r21, IO_ACAUSAL@l
    li r24, MAILBOX
    li r23, 0                   # sweeps done
    stw r23, 0(r24)
    li r5, 0
    fxvsplatb 0, r5             # v0 = 0
    li r5, WEIGHT_MAX
    fxvsplatb 10, r5            # v10 = wmax
    li r5, ETA
    fxvsplatb 11, r5            # v11 = eta (fraction of 128)
    li r5, 1
    fxvsplatb 13, r5            # v13 = reset request
    li r22, ROW_HALVES
sweep:
    li r2, 0                    # row * 2 + half
    mtctr r22
row:
    fxvinx 1, r20, r2           # c+ (causal, column ADC)
    fxvinx 2, r21, r2           # c- (acausal)
    fxvinx 3, 0, r2             # w (weight byte incl. calibration bits)
    fxvshb 1, 1, -1             # 0..127
    fxvshb 2, 2, -1
    fxvsubbm 4, 2, 1            # d = c-/2 - c+/2 = (trace+ - trace-) / 2
    fxvmulbfs 5, 4, 11          # dw = floor(d * eta / 128)
    fxvshb 6, 3, 2
    fxvshb 6, 6, -2             # w6 = w & 63
    fxvsubbm 7, 3, 6            # cal = w - w6
    fxvaddbm 8, 6, 5            # w6 + dw  (-32..94)
    fxvcmpb 8
    fxvsel 8, 8, 0, 2           # < 0 -> 0
    fxvsubbm 9, 8, 10
    fxvcmpb 9
    fxvsel 8, 8, 10, 1          # > 63 -> 63
    fxvaddbm 8, 8, 7            # put the calibration bits back
    fxvoutx 8, 0, r2            # write the weights
    fxvoutx 13, r20, r2         # reset the correlation sensors of the row half
    addi r2, r2, 1
    bdnz row
    addi r23, r23, 1
    stw r23, 0(r24)
    b sweep
