"""The fxv vector unit: every instruction against a NumPy model written here,
on random registers, accumulator and flags, every condition code, both
element widths, 1 and 8 slices; the numba interpreter against the
plain-Python reference on random vector programs; the worked encodings
through the assembler; vector I/O address decoding for dls and hx."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from isa.ppu.asm import assemble
from isa.ppu.instructions import VECTOR_OPS
from twin.ppu import interp as I
from twin.ppu import reference as R

MEM = 0x1000
DATA = 0x800
WAIT = "wait\n"
NAMES = [mn for mn, *_ in VECTOR_OPS]
ARITH = [mn for mn in NAMES if mn not in ("fxvinx", "fxvoutx", "fxvlax", "fxvstax")]


# --------------------------------------------------------------------------- NumPy model
def _sat(x, bits):
    return np.clip(x, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def _wrap(x, bits):
    x = np.asarray(x, np.int64) & ((1 << bits) - 1)
    return np.where(x >> (bits - 1), x - (1 << bits), x)


def _elements(raw: np.ndarray, w: int) -> np.ndarray:
    dt = {1: ">i1", 2: ">i2", 4: ">i4"}[w]
    return raw.view(dt).astype(np.int64)


def _raw(values, w: int) -> np.ndarray:
    dt = {1: ">i1", 2: ">i2", 4: ">i4"}[w]
    return _wrap(values, 8 * w).astype(dt).view(np.uint8)


def model(name: str, rt: int, ra: int, rb: int, c: int, vec: np.ndarray, gpr: list[int]) -> np.ndarray:
    """Expected vector state after one arithmetic fxv instruction (independent of twin.ppu)."""
    nb = len(vec) // 35
    out = vec.copy()
    regs = out[:32 * nb].reshape(32, nb)
    accb = out[32 * nb:34 * nb]
    flags = out[34 * nb:]
    w = 2 if name.startswith(("fxvmah", "fxvmtach", "fxvmatach", "fxvmulh", "fxvmultach", "fxvsplath",
                              "fxvcmph", "fxvshh", "fxvsubh", "fxvaddactach", "fxvaddach", "fxvaddtach",
                              "fxvaddh")) else 1
    W = 8 * w
    a, b = _elements(vec[ra * nb:(ra + 1) * nb].copy(), w), _elements(vec[rb * nb:(rb + 1) * nb].copy(), w)
    acc = _elements(vec[32 * nb:34 * nb].copy(), 2 * w)
    t = _elements(vec[rt * nb:(rt + 1) * nb].copy(), w)
    on = np.ones(nb // w, bool) if c == 0 else (flags[::w] & (1 << (c - 1))) != 0
    stem = name[3:]
    if stem in ("cmph", "cmpb"):
        f = np.where(a > 0, 1, np.where(a < 0, 2, 4))
        flags[:] = np.repeat(f, w)
        return out
    if stem == "sel":
        onb = np.ones(nb, bool) if c == 0 else (flags & (1 << (c - 1))) != 0
        regs[rt] = np.where(onb, vec[rb * nb:(rb + 1) * nb], vec[ra * nb:(ra + 1) * nb])
        return out
    if stem.startswith(("pck", "upck")):
        sz, mk = 8 - c, (1 << (8 - c)) - 1
        A = vec[ra * nb:(ra + 1) * nb].reshape(-1, 16).astype(np.int64)
        B = vec[rb * nb:(rb + 1) * nb].reshape(-1, 16).astype(np.int64)
        if stem.startswith("pck"):
            ha, hb = A[:, 0::2] * 256 + A[:, 1::2], B[:, 0::2] * 256 + B[:, 1::2]
            sh = 16 - sz if stem == "pckbu" else 16 - 2 * sz
            res = np.concatenate([(ha >> sh) & mk, (hb >> sh) & mk], axis=1)
        else:
            sl = slice(0, 8) if stem == "upckbl" else slice(8, 16)
            h = ((A[:, sl] & mk) << (16 - sz)) | ((B[:, sl] & mk) << (16 - 2 * sz))
            res = np.stack([h >> 8, h & 0xFF], axis=2).reshape(-1, 16)
        regs[rt] = res.reshape(-1).astype(np.uint8)
        return out
    kinds = {
        "addhm": "addm", "addbm": "addm", "addhfs": "addfs", "addbfs": "addfs",
        "subhm": "subm", "subbm": "subm", "subhfs": "subfs", "subbfs": "subfs",
        "mulhm": "mulm", "mulbm": "mulm", "mulhfs": "mulfs", "mulbfs": "mulfs",
        "mahm": "mam", "mabm": "mam", "mahfs": "mafs", "mabfs": "mafs",
        "mtach": "mtac", "mtacb": "mtac", "mtachf": "mtacf", "mtacbf": "mtacf",
        "matachm": "matacm", "matacbm": "matacm", "matachfs": "matacfs", "matacbfs": "matacfs",
        "multachm": "multacm", "multacbm": "multacm", "multachfs": "multacfs", "multacbfs": "multacfs",
        "addachm": "addacm", "addacbm": "addacm", "addachfs": "addacfs", "addacbfs": "addacfs",
        "addactachm": "addactacm", "addactacbm": "addactacm", "addactachf": "addactacf",
        "addactacbf": "addactacf", "addtach": "addtac", "addtacb": "addtac",
        "splath": "splat", "splatb": "splat", "shh": "sh", "shb": "sh",
    }
    k = kinds[stem]
    reg_result = {
        "addm": lambda: a + b, "addfs": lambda: _sat(a + b, W), "subm": lambda: a - b,
        "subfs": lambda: _sat(a - b, W), "mulm": lambda: a * b,
        "mulfs": lambda: _sat(2 * a * b, 2 * W) >> W, "mam": lambda: a * b + acc,
        "mafs": lambda: _sat(2 * a * b + acc, 2 * W) >> W, "addacm": lambda: acc + a,
        "addacfs": lambda: _sat(acc + a * (1 << W), 2 * W) >> W,
        "splat": lambda: np.full_like(a, gpr[ra] & 0xFFFF),
        "sh": lambda: _shift(a, rb, W),
    }
    acc_result = {
        "mtac": lambda: a, "mtacf": lambda: a * (1 << W), "matacm": lambda: a * b + acc,
        "matacfs": lambda: _sat(2 * a * b + acc, 2 * W), "multacm": lambda: a * b,
        "multacfs": lambda: _sat(2 * a * b, 2 * W), "addactacm": lambda: acc + a,
        "addactacf": lambda: _sat(acc + a * (1 << W), 2 * W), "addtac": lambda: a + b,
    }
    if k in reg_result:
        regs[rt] = _raw(np.where(on, reg_result[k](), t), w)
    else:
        accb[:] = _raw(np.where(on, acc_result[k](), acc), 2 * w)
    return out


def _shift(a, rb, W):
    s = rb - 32 if rb >= 16 else rb
    u = a & ((1 << W) - 1)
    return (u << s) if s >= 0 else (u >> -s)


# --------------------------------------------------------------------------- running
def _run(src: str, vec: np.ndarray, gprs=None, mem=None, io=None, impl=I):
    img = assemble(src).image()
    if mem is None:
        mem = np.zeros(MEM, np.uint8)
    mem[:len(img)] = np.frombuffer(img, np.uint8)
    st = I.new_state()
    if gprs is not None:
        st[:len(gprs)] = gprs
    vec = vec.copy()
    status = impl.run(mem, st, 100_000, vec=vec, io=io)
    return status, st, vec, mem


def _operands(name: str, rt, ra, rb, c, shift) -> str:
    shape = {"fxvsplath": "tg", "fxvsplatb": "tg", "fxvcmph": "a", "fxvcmpb": "a", "fxvmtach": "a",
             "fxvmtacb": "a", "fxvmtachf": "a", "fxvmtacbf": "a", "fxvshh": "tas", "fxvshb": "tas"}
    form = shape.get(name, "tab")
    ops = {"tab": [rt, ra, rb], "tg": [rt, ra], "a": [ra], "tas": [rt, ra, shift]}[form]
    return f"{name} {','.join(map(str, ops + [c]))}\n"


@hs.composite
def vector_case(draw, names=ARITH):
    slices = draw(hs.sampled_from([1, 8]))
    nb = 16 * slices
    name = draw(hs.sampled_from(names))
    rt, ra, rb = (draw(hs.integers(0, 31)) for _ in range(3))
    c = draw(hs.integers(0, 3))
    shift = draw(hs.integers(-16, 15))
    seed = draw(hs.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    vec = rng.integers(0, 256, 35 * nb, dtype=np.uint8)
    # Edge values are common: 0x80/0x7f/0xff/0x00 bytes make saturation likely.
    edge = rng.random(34 * nb) < 0.3
    vec[:34 * nb][edge] = rng.choice(np.array([0x00, 0x7F, 0x80, 0xFF, 0x01], np.uint8), edge.sum())
    vec[34 * nb:] = rng.choice(np.array([1, 2, 4, 0, 7], np.uint8), nb)
    gprs = [int(x) for x in rng.integers(0, 2**32, 32)]
    return name, rt, ra, rb, c, shift, vec, gprs


def _reg_of(name, ra, rb, shift):
    """The RB field as encoded (a shift amount is 5-bit two's complement)."""
    return shift & 31 if name in ("fxvshh", "fxvshb") else rb


def _check_against_model(case):
    name, rt, ra, rb, c, shift, vec, gprs = case
    src = _operands(name, rt, ra, rb, c, shift) + WAIT
    status, st, got, _ = _run(src, vec, gprs)
    assert status == I.Status.SLEEPING
    if name in ("fxvcmph", "fxvcmpb", "fxvmtach", "fxvmtacb", "fxvmtachf", "fxvmtacbf"):
        rt_, ra_, rb_ = 0, ra, 0
    elif name in ("fxvsplath", "fxvsplatb"):
        rt_, ra_, rb_ = rt, ra, 0
    else:
        rt_, ra_, rb_ = rt, ra, _reg_of(name, ra, rb, shift)
    want = model(name, rt_, ra_, rb_, c, vec, [int(x) for x in st[:32]])
    diff = np.flatnonzero(got != want)
    assert not len(diff), (src, diff[:8], got[diff[:8]], want[diff[:8]])


@pytest.mark.parametrize("slices", [1, 8])
@pytest.mark.parametrize("c", [0, 1, 2, 3])
@pytest.mark.parametrize("name", ARITH)
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=hs.data())
def test_every_instruction_condition_and_width(name, c, slices, data):
    """Each arithmetic fxv instruction x condition code x slice count, random state."""
    case = data.draw(vector_case(names=[name]))
    _, rt, ra, rb, _, shift, _, _ = case
    nb = 16 * slices
    rng = np.random.default_rng(data.draw(hs.integers(0, 2**32 - 1)))
    vec = rng.integers(0, 256, 35 * nb, dtype=np.uint8)
    edge = rng.random(34 * nb) < 0.3
    vec[:34 * nb][edge] = rng.choice(np.array([0x00, 0x7F, 0x80, 0xFF, 0x01], np.uint8), edge.sum())
    vec[34 * nb:] = rng.choice(np.array([1, 2, 4, 0, 7], np.uint8), nb)
    gprs = [int(x) for x in rng.integers(0, 2**32, 32)]
    _check_against_model((name, rt, ra, rb, c, shift, vec, gprs))


@settings(max_examples=200, deadline=None)
@given(vector_case())
def test_instruction_matches_numpy_model(case):
    _check_against_model(case)


@pytest.mark.parametrize("slices", [1, 8])
def test_load_store_vectors(slices):
    nb = 16 * slices
    rng = np.random.default_rng(slices)
    mem = np.zeros(MEM, np.uint8)
    mem[DATA:DATA + nb] = rng.integers(0, 256, nb, dtype=np.uint8)
    src = f"li r1, {DATA}\n li r2, {nb}\n fxvlax 7, 0, r1\n fxvstax 7, r1, r2, 2\n wait\n"
    status, _, v, m = _run(src, I.new_vector_state(slices), mem=mem)
    assert status == I.Status.SLEEPING
    assert np.array_equal(_reg(v, 7), mem[DATA:DATA + nb])
    assert np.array_equal(m[DATA + nb:DATA + 2 * nb], m[DATA:DATA + nb])     # C is ignored


@settings(max_examples=40, deadline=None)
@given(hs.lists(vector_case(), min_size=4, max_size=12))
def test_numba_matches_reference_on_vector_programs(cases):
    slices = cases[0][6].size // 35 // 16
    src = "".join(_operands(n, rt, ra, rb, c, sh) for n, rt, ra, rb, c, sh, *_ in cases) + WAIT
    vec, gprs = cases[0][6], cases[0][7]
    s1, st1, v1, _ = _run(src, vec, gprs)
    s2, st2, v2, _ = _run(src, vec, gprs, impl=R)
    assert s1 == s2 == I.Status.SLEEPING
    assert np.array_equal(st1, st2) and np.array_equal(v1, v2), slices


# --------------------------------------------------------------------------- directed values
def _vec(slices=1):
    return I.new_vector_state(slices)


def _reg(vec, r):
    nb = len(vec) // 35
    return vec[r * nb:(r + 1) * nb]


def test_design_encodings_assemble_and_run():
    img = assemble("fxvaddbm 3,1,2\nfxvshb 1,1,-1\nfxvsel 4,4,5,2\nfxvlax 0,0,1\n").image()
    assert np.frombuffer(img, ">u4").tolist() == [0x10611734, 0x1021FCF4, 0x10842CFE, 0x10000FB0]
    vec = _vec()
    _reg(vec, 1)[:] = np.arange(16) * 16          # 0x00, 0x10, ... 0xF0
    _reg(vec, 2)[:] = 0x81
    _reg(vec, 4)[:] = 0xAA
    _reg(vec, 5)[:] = 0x55
    vec[34 * 16:] = np.where(np.arange(16) % 2, 2, 1)      # odd bytes: lt
    mem = np.zeros(MEM, np.uint8)
    mem[DATA:DATA + 16] = np.arange(100, 116)
    src = ("fxvaddbm 3,1,2\n fxvshb 1,1,-1\n fxvsel 4,4,5,2\n li r1,%d\n fxvlax 0,0,1\n wait\n" % DATA)
    status, st, v, _ = _run(src, vec, mem=mem)
    assert status == I.Status.SLEEPING
    assert _reg(v, 3).tolist() == [(16 * k + 0x81) & 0xFF for k in range(16)]
    assert _reg(v, 1).tolist() == [8 * k for k in range(16)]                # logical >> 1
    assert _reg(v, 4).tolist() == [0xAA, 0x55] * 8
    assert _reg(v, 0).tolist() == list(range(100, 116))


@pytest.mark.parametrize("name, a, b, want", [
    ("fxvmulhfs", 0x8000, 0x8000, 0x7FFF),      # -1 * -1 saturates
    ("fxvmulhfs", 0x4000, 0x4000, 0x2000),      # 0.5 * 0.5 = 0.25
    ("fxvmulhfs", 0xC000, 0x0001, 0xFFFF),      # -0.5 * 2**-15: truncated (floor), not rounded to 0
    ("fxvmulbfs", 0x80, 0x80, 0x7F),
    ("fxvaddhfs", 0x7000, 0x7000, 0x7FFF), ("fxvaddhfs", 0x9000, 0x9000, 0x8000),
    ("fxvsubbfs", 0x80, 0x01, 0x80), ("fxvaddbm", 0xF0, 0x20, 0x10), ("fxvmulhm", 0x0101, 0x0101, 0x0201),
])
def test_fractional_saturation_values(name, a, b, want):
    w = 2 if "h" in name[6:8] else 1
    vec = _vec()
    _reg(vec, 1)[:] = np.frombuffer(a.to_bytes(w, "big") * (16 // w), np.uint8)
    _reg(vec, 2)[:] = np.frombuffer(b.to_bytes(w, "big") * (16 // w), np.uint8)
    _, _, v, _ = _run(f"{name} 3,1,2\n wait\n", vec)
    assert _reg(v, 3).tobytes() == want.to_bytes(w, "big") * (16 // w)


def test_accumulator_chain_and_compare_masks():
    # acc = a*b ; acc += a*b ; t = acc + 0 via fxvaddachm with a = 0
    vec = _vec()
    _reg(vec, 1)[:] = np.frombuffer(np.array([3, -4, 100, -100, 0, 1, 2, 300], ">i2").tobytes(), np.uint8)
    _reg(vec, 2)[:] = np.frombuffer(np.array([5] * 8, ">i2").tobytes(), np.uint8)
    src = ("fxvmultachm 0,1,2\n fxvmatachm 0,1,2\n fxvaddachm 3,0,0\n"
           "fxvcmph 1\n fxvsplath 4,r5\n fxvaddhm 4,4,4,1\n wait\n")
    _, _, v, _ = _run(src, vec, gprs=[0, 0, 0, 0, 0, 7])
    assert np.frombuffer(_reg(v, 3).tobytes(), ">i2").tolist() == [30, -40, 1000, -1000, 0, 10, 20, 3000]
    # 4 = 7 everywhere, doubled only where element of VR1 > 0
    assert np.frombuffer(_reg(v, 4).tobytes(), ">i2").tolist() == [14, 7, 14, 7, 7, 14, 14, 14]
    acc = np.frombuffer(v[32 * 16:34 * 16].tobytes(), ">i4")
    assert acc.tolist() == [30, -40, 1000, -1000, 0, 10, 20, 3000]


def test_pack_unpack_round_trip_six_bit():
    rng = np.random.default_rng(1)
    vec = _vec(8)
    a, b = rng.integers(0, 256, 128, dtype=np.uint8), rng.integers(0, 256, 128, dtype=np.uint8)
    _reg(vec, 1)[:], _reg(vec, 2)[:] = a, b
    src = ("fxvupckbl 3,1,2,2\n fxvupckbr 4,1,2,2\n fxvpckbu 5,3,4,2\n fxvpckbl 6,3,4,2\n wait\n")
    _, _, v, _ = _run(src, vec)
    assert np.array_equal(_reg(v, 5), a & 63) and np.array_equal(_reg(v, 6), b & 63)
    h = np.frombuffer(_reg(v, 3)[:16].tobytes(), ">u2")
    assert int(h[0]) == ((int(a[0]) & 63) << 10) | ((int(b[0]) & 63) << 4)


# --------------------------------------------------------------------------- vector I/O
@pytest.mark.parametrize("slices, rows, columns", [(1, 32, 32), (8, 256, 256)])
def test_vector_io_address_decoding(slices, rows, columns):
    nb = 16 * slices
    space = I.io_space_of(slices)
    assert space == (0x4000 if slices == 1 else 0x4_0000)
    io = I.VectorIO.empty(rows, columns, slices)
    rng = np.random.default_rng(slices)
    io.weights[:] = rng.integers(0, 2**32, io.weights.shape, dtype=np.uint32)
    io.labels[:] = rng.integers(0, 2**32, io.labels.shape, dtype=np.uint32)
    io.causal[:] = rng.integers(0, 256, io.causal.shape, dtype=np.uint8)
    io.acausal[:] = rng.integers(0, 256, io.acausal.shape, dtype=np.uint8)
    w0 = io.weights.copy()
    row, half = rows - 3, 1
    idx = row * 2 + half
    cols = np.arange(half * nb, (half + 1) * nb)
    byte_of = lambda words: ((words[row, cols // 4] >> (8 * (cols % 4))) & 0xFF).astype(np.uint8)
    src = f"""
        lis r1, {space >> 16}
        ori r1, r1, {space & 0xFFFF}
        li r2, {idx}
        fxvinx 1, 0, r2          # weights: EA = idx
        add r3, r1, r2
        fxvinx 2, 0, r3          # labels: space + idx
        add r5, r1, r1
        fxvinx 3, r5, r2         # causal: RA + RB
        add r4, r5, r1
        fxvinx 4, r4, r2         # acausal
        fxvaddbm 5, 1, 1         # 2 * weights
        fxvcmpb 3                # flags from causal (signed)
        fxvoutx 5, 0, r2, 1      # write where causal > 0
        fxvoutx 3, r5, r2        # causal space: reset requests where the byte is non-zero
        wait
    """
    status, st, v, _ = _run(src, I.new_vector_state(slices), io=io, mem=np.zeros(MEM, np.uint8))
    assert status == I.Status.SLEEPING, hex(int(st[I.S_FAULT]))
    assert np.array_equal(_reg(v, 1), byte_of(w0))
    assert np.array_equal(_reg(v, 2), byte_of(io.labels))
    assert np.array_equal(_reg(v, 3), io.causal[row, cols])
    assert np.array_equal(_reg(v, 4), io.acausal[row, cols])
    causal = io.causal[row, cols].astype(np.int8)
    want = np.where(causal > 0, (byte_of(w0).astype(int) * 2) & 0xFF, byte_of(w0))
    assert np.array_equal(byte_of(io.weights), want)
    other = np.ones(io.weights.shape, bool)
    other[row, cols // 4] = False
    assert np.array_equal(io.weights[other], w0[other])
    assert io.touched[0, row] == 1 and io.touched[0].sum() == 1
    assert np.array_equal(io.resets[row, cols], (io.causal[row, cols] != 0).astype(np.uint8))
    assert io.resets.sum() == (io.causal[row, cols] != 0).sum()


@pytest.mark.parametrize("src, status, fault", [
    ("li r2,0x801\n fxvlax 1,0,r2\n", I.Status.ALIGNMENT, 0x801),
    ("lis r2,1\n fxvstax 1,0,r2\n", I.Status.BUS_ERROR, 0x10000),
    ("li r2,64\n fxvinx 1,0,r2\n", I.Status.BUS_ERROR, 64),          # row 32 of a 32-row array
    ("lis r2,1\n fxvoutx 1,0,r2\n", I.Status.BUS_ERROR, 0x10000),     # space 4
])
def test_vector_faults(src, status, fault):
    for impl in (I, R):
        s, st, _, _ = _run(src + WAIT, _vec(), impl=impl)
        assert (s, int(st[I.S_FAULT])) == (status, fault)
