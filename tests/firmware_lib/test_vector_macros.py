"""The vector macros of firmware/lib/vector.s against the arithmetic their comments state."""
from __future__ import annotations

import numpy as np
import pytest

import firmware
from isa.ppu.asm import assemble
from twin.ppu import interp as I

A, B, C, OUT = 0x1000, 0x1010, 0x1020, 0x1100        # 16-byte operands and results in memory


def run_macro(body: str, a, b, c=None, results=1):
    src = f"""
    .include "include/dls.inc"
    .include "lib/vector.s"
    li r4, {A}
    fxvlax 1, 0, r4
    li r4, {B}
    fxvlax 2, 0, r4
    li r4, {C}
    fxvlax 3, 0, r4
    li r4, 0
    fxvsplatb 0, r4             # v0 zeros
    li r4, 64
    fxvsplatb 9, r4             # v9 64s
{body}
    li r4, {OUT}
    fxvstax 10, 0, r4
    li r4, {OUT + 16}
    fxvstax 11, 0, r4
    wait
"""
    prog = assemble([("<macro test>", src)], include_dirs=[str(firmware.FIRMWARE_DIR)])
    mem = np.zeros(16384, np.uint8)
    img = prog.image()
    mem[:len(img)] = np.frombuffer(img, np.uint8)
    for addr, v in ((A, a), (B, b), (C, c if c is not None else np.zeros(16))):
        mem[addr:addr + 16] = np.asarray(v, np.int64).astype(np.uint8)
    assert I.run(mem, I.new_state(), 10 ** 5) == I.Status.SLEEPING
    out = [mem[OUT + 16 * k:OUT + 16 * k + 16].astype(np.int8).astype(np.int64) for k in range(2)]
    return out[:results] if results > 1 else out[0]


def cases(seed, n=20):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield rng.integers(-128, 128, 16), rng.integers(-128, 128, 16), rng.integers(0, 128, 16)


@pytest.mark.parametrize("seed", [1, 2])
def test_fmul_and_fmul_round(seed):
    for a, b, _ in cases(seed):
        assert (run_macro("    fmul 10, 1, 2", a, b) == np.clip(np.floor(a * b / 128), -128, 127)).all()
        want = np.clip(np.floor((a * b + 64) / 128), -128, 127)
        assert (run_macro("    fmul_round 10, 1, 2, 9, 0", a, b) == want).all()


def test_weight_split_and_corr_diff():
    for a, b, _ in cases(3):
        w6, cal = run_macro("    weight_split 10, 11, 1", a, b, results=2)
        u = a & 0xFF
        assert (w6 == (u & 63)).all() and ((cal & 0xFF) == (u & 0xC0)).all()
        d = run_macro("    corr_diff 10, 1, 2", a, b)           # a: causal reading, b: acausal
        assert (d == ((b & 0xFF) >> 1) - ((a & 0xFF) >> 1)).all()


def test_clamp_and_split_sign():
    for a, b, c in cases(4):
        x = run_macro("    fxvaddbm 10, 1, 0\n    clamp 10, 0, 3, 12", a, b, c)     # v10 = a, clamped
        assert (x == np.minimum(np.maximum(a, 0), c)).all()
        theta = np.abs(c) % 40
        pos, neg = run_macro("    split_sign 10, 11, 1, 3, 0, 12", a, b, theta, results=2)
        assert (pos == np.where(a >= theta, a, 0)).all() and (neg == np.where(a <= -theta, a, 0)).all()
