"""The benchmark firmware of tools/bench/cosim.py does what it claims.

* firmware/bench/sweep.s assembles for dls and hx (library and `bss-twin asm
  --defsym` give the same image) and, run on an ideal twin (mismatch=0: no ADC
  read noise, so a reading over the wire equals the PPU's) through host.PPU,
  updates the weights of the row halves it has swept exactly as an independent
  NumPy model of the rule computes them from the weights and correlations read
  over the wire before, keeps the calibration bits, resets the correlation
  sensors of those row halves and leaves the others untouched.
* firmware/bench/mix.c builds for the PPU and for Linux and gives the same
  checksum on the twin (`bss-twin ppu-run --chip hx`) and under qemu-ppc-static.
  Without the GNU tools or qemu the test skips locally and fails when CI is set.

No timing assertions.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import host  # noqa: E402
from host import units  # noqa: E402
from isa.ppu.disasm import disassemble  # noqa: E402
from isa.profiles import PROFILES  # noqa: E402
from tools.bench import cosim  # noqa: E402

ETA = 32            # sweep.s default: dw = floor(d * ETA / 128)
WMAX = 63


# ---------------------------------------------------------------------------- assembly
@pytest.mark.parametrize("profile", ["dls", "hx"])
def test_sweep_assembles_like_the_cli(profile, tmp_path):
    image = cosim.sweep_image(profile)
    out = tmp_path / "sweep.bin"
    include = cosim.FIRMWARE / "include" / f"{profile}.inc"
    cmd = [sys.executable, "-m", "tools.cli", "asm", str(include), str(cosim.CRT0), str(cosim.SWEEP), "-o", str(out)]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    assert out.read_bytes() == image
    listing = disassemble(image)
    assert listing.count("fxvinx") == 3 and listing.count("fxvoutx") == 2
    assert len(image) <= PROFILES[profile].ppu_memory_bytes


def test_sweep_profile_constants_differ():
    dls, hx = cosim.sweep_image("dls"), cosim.sweep_image("hx")
    assert len(dls) == len(hx) and dls != hx


# ---------------------------------------------------------------------------- execution
def _read_state(conn):
    """Raw weight bytes split into (6-bit weight, calibration bits) and the two
    correlation readings, each (arrays * rows, columns), read over the wire."""
    rm, p = conn.regmap, conn.profile
    rows = p.synapse_arrays * p.rows
    prog = conn.program()
    tw = prog.read_words(rm.addresses("synapse", "weights"))
    tc = prog.read_words(rm.addresses("correlation", "causal"))
    ta = prog.read_words(rm.addresses("correlation", "acausal"))
    conn.run(prog)
    wreg = rm.register("synapse", "weights")
    shape = lambda v: v.reshape(rows, -1)
    w = wreg.unpack_lanes("weight", shape(tw.values)).astype(np.int64)
    cal = wreg.unpack_lanes("calib_amp", shape(tw.values)).astype(np.int64)
    c = rm.register("correlation", "causal").unpack_lanes("causal", shape(tc.values)).astype(np.int64)
    a = rm.register("correlation", "acausal").unpack_lanes("acausal", shape(ta.values)).astype(np.int64)
    return w, cal, c, a


def _rule(w, causal, acausal):
    """The sweep's rule, written from its description (not from the firmware):
    the ADC reads baseline minus trace, so d = acausal/2 - causal/2 is half the
    causal-minus-acausal trace difference; w += floor(d * eta / 128), clamped."""
    d = acausal // 2 - causal // 2
    return np.clip(w + np.floor_divide(d * ETA, 128), 0, WMAX)


def _setup(conn, rng):
    """Neurons that fire, random weights with calibration bits, strong input into every
    row, then a quiet period: the correlation traces hold a spread of values."""
    p, rm = conn.profile, conn.regmap
    a = p.analog
    rows = p.synapse_arrays * p.rows
    prog = conn.program()
    for n in range(p.neurons):
        for name, v in cosim.CELLS.items():
            prog.write(host.CapMemCellOnChip(n, name), host.CapMemCell(round(v / a.v_max * 1022)))
        for name, t in cosim.TAUS.items():
            prog.write(host.CapMemCellOnChip(n, name), host.CapMemCell(round(a.tau_full_scale / t * 1022)))
        prog.write(host.CapMemCellOnChip(n, "i_bias_syn_exc_gm"), host.CapMemCell(cosim.GM))
        prog.write(host.NeuronOnChip(n), host.NeuronConfig(enable=1, refractory=20, refractory_clock=4))
    for cell, v in cosim.CORRELATION_CELLS.items():
        prog.write(host.CapMemGlobalCellOnChip(cell), host.CapMemGlobalCell(v))
    W = rng.integers(0, 64, (rows, p.columns))
    W[::p.rows] = rng.choice([0, 1, 62, 63], (p.synapse_arrays, p.columns))   # row 0 of each array: near the clamp
    cal = rng.integers(0, 4, (rows, p.columns))
    wreg = rm.register("synapse", "weights")
    words = wreg.pack_lanes("weight", W) | wreg.pack_lanes("calib_amp", cal)
    prog.write_words(rm.addresses("synapse", "weights"), words.ravel())
    prog.write_words(rm.addresses("synapse", "labels"), np.zeros(words.size, np.int64))
    for r in range(rows):
        prog.write(host.SynapseDriverOnChip(r % p.rows, r // p.rows), host.SynapseDriverConfig(enable=1, gain=15))
    prog.timer_reset()
    prog.wait_until(units.us(100))      # parameter cells settle (the baseline sets the empty-trace reading)
    conn.run(prog)
    zero = _read_state(conn)            # readings of empty traces: what a reset returns to
    span = units.us(200).ticks()
    times = np.sort(rng.integers(0, span // 12, rows * 4)) * 12
    labels = rng.integers(0, rows, len(times)) << 6
    prog = conn.program()
    prog.timer_reset()
    prog.spikes(labels, times)
    prog.wait_until(span + units.us(100).ticks())
    res = conn.run(prog)
    assert len(res.spikes) > 0, "the neurons did not fire: no causal correlations to work with"
    return zero


def _swept_halves(c_now, a_now, zero_c, zero_a, half: int) -> int:
    """Number of leading row halves (row-major, half 0 then 1: the sweep's order)
    whose sensors read as reset.  A half that had empty traces before reads as
    reset anyway; the rule leaves its weights alone (d = 0), so counting it is harmless."""
    flat = lambda x: x.reshape(-1, half)
    reset = ((flat(c_now) == flat(zero_c)) & (flat(a_now) == flat(zero_a))).all(axis=1)
    return len(reset) if reset.all() else int(np.argmin(reset))


@pytest.mark.parametrize("profile", ["dls", "hx"])
def test_sweep_updates_weights_and_resets_correlations(profile):
    rng = np.random.default_rng(7)
    with host.connect(f"twin:{profile}?serial=5&mismatch=0", timeout=120.0) as conn:
        p = conn.profile
        zero_w, zero_cal, zero_c, zero_a = _setup(conn, rng)
        w0, cal0, c0, a0 = _read_state(conn)
        assert (_read_state(conn)[2] == c0).all(), "mismatch=0 should give noise-free readings"
        assert (c0 != zero_c).mean() > 0.2 and (a0 != zero_a).mean() > 0.2, "too few correlated synapses"
        expected = _rule(w0, c0, a0)
        assert (expected != w0).any()
        half = p.columns // 2
        ppus = [host.PPU(conn, k) for k in range(p.ppus)]
        image = cosim.sweep_image(p)
        for ppu in ppus:
            ppu.load(image)
            ppu.start()
        # Run a few microseconds at a time until every PPU has swept at least two
        # row halves (one full row) of its array; reading over the wire between
        # programs does not disturb the core.
        R = p.rows
        for _ in range(40):
            prog = conn.program()
            prog.timer_reset()
            prog.wait_until(units.us(5))
            conn.run(prog)
            w, cal, c, a = _read_state(conn)
            rows = lambda x, k: x[k * R:(k + 1) * R]
            done = [_swept_halves(rows(c, k), rows(a, k), rows(zero_c, k), rows(zero_a, k), half)
                    for k in range(p.synapse_arrays)]
            if min(done) >= 2:
                break
        else:
            pytest.fail(f"the sweep did not get through one row: swept halves {done}")
        for ppu in ppus:
            s = ppu.status()
            assert s.running and not s.fault and not s.sleeping, s
        assert (cal == cal0).all(), "calibration bits changed"
        flat = lambda x: x.reshape(-1, half)
        for k, m in enumerate(done):
            sl = slice(k * R * 2, (k + 1) * R * 2)          # row halves of array k
            W, E, W0 = flat(w)[sl], flat(expected)[sl], flat(w0)[sl]
            C, A, C0, A0 = flat(c)[sl], flat(a)[sl], flat(c0)[sl], flat(a0)[sl]
            ZC, ZA = flat(zero_c)[sl], flat(zero_a)[sl]
            np.testing.assert_array_equal(W[:m], E[:m], err_msg=f"array {k}: swept row halves")
            np.testing.assert_array_equal(C[:m], ZC[:m], err_msg=f"array {k}: causal sensors not reset")
            np.testing.assert_array_equal(A[:m], ZA[:m], err_msg=f"array {k}: acausal sensors not reset")
            # the half in flight has its weights either old or new; the rest is untouched
            if m < len(W):
                assert (W[m] == W0[m]).all() or (W[m] == E[m]).all()
            np.testing.assert_array_equal(W[m + 1:], W0[m + 1:], err_msg=f"array {k}: unswept halves")
            np.testing.assert_array_equal(C[m + 1:], C0[m + 1:])
            np.testing.assert_array_equal(A[m + 1:], A0[m + 1:])
            # the first row (extreme weights, see _setup) changed, and the clamp was needed there
            assert (W[:2] != W0[:2]).any()
            raw = flat(w0 + np.floor_divide((a0 // 2 - c0 // 2) * ETA, 128))[sl][:2]
            assert ((raw < 0) | (raw > WMAX)).any(), "test data: row 0 does not exercise the clamp"


# ---------------------------------------------------------------------------- mix.c
def _require_gnu():
    missing = cosim.missing_gnu_tools()
    if missing:
        msg = f"{', '.join(missing)} not installed (apt-get install gcc-powerpc-linux-gnu qemu-user-static)"
        if os.environ.get("CI"):
            pytest.fail(msg + "; CI is set, so the GNU/qemu oracle is required")
        pytest.skip(msg)
    return cosim.gnu_tools()


def test_mix_checksum_twin_equals_qemu(tmp_path):
    tools = _require_gnu()
    n = 3
    elf = cosim.build_mix(tmp_path, n, "ppu", tools)
    exe = cosim.build_mix(tmp_path, n, "linux", tools)
    from isa.ppu.elf import read_elf
    img = read_elf(elf.read_bytes())
    assert img.entry == 0 and len(img.image()) <= 0x2F00      # below crt0's stack
    twin = cosim.ppu_run(elf, "hx", max_cycles=50_000_000)
    _, qemu = cosim.qemu_run(exe, tools["qemu"])
    assert twin.checksum == qemu, f"twin 0x{twin.checksum:08x}, qemu 0x{qemu:08x}"
    assert twin.cycles > 100_000 * n // 2
    # the iteration count matters (the checksum is not a constant)
    _, qemu1 = cosim.qemu_run(cosim.build_mix(tmp_path, 1, "linux", tools), tools["qemu"])
    assert qemu1 != qemu
