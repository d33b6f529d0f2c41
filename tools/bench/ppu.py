"""PPU benchmarks: the twin's interpreter on a scalar loop and a vector kernel.

    .venv/bin/python -m tools.bench.ppu            # full run (about 20 s)
    .venv/bin/python -m tools.bench.ppu --quick    # shorter loops, 3 repeats

Scalar: instructions per second of `twin.ppu.interp` on a 4-instruction loop
(addi, xor, add, bdnz), predecoded, wall time of `interp.run`.  Same-run
reference: qemu-ppc-static on the same loop as a Linux user-mode binary
(assembled with powerpc-linux-gnu-as/ld); qemu's startup is subtracted by
timing two loop lengths (rate = extra instructions / extra seconds); the twin
is measured the same way.  Target: twin >= 25 % of qemu's rate.

Vector: a multiplicative STDP update of the whole dls synapse array (32 rows x
2 halves of 16 columns): read causal and acausal correlations and the weights
with fxvinx, w += eta+ * c+ * (wmax - w) - eta- * c- * w in fractional
arithmetic through the accumulator, clamp to 0..63, write the weights and
reset the correlations with fxvoutx.  Target: the twin's wall time is below
the real PPU's time for the same cycles (cycles / 98 MHz).

Figures are medians over the repeats; targets are reported, not asserted.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from isa.ppu.asm import assemble  # noqa: E402
from isa.profiles import PROFILES  # noqa: E402
from isa.regmap import register_map  # noqa: E402
from twin.ppu import interp as I  # noqa: E402

TARGET_STDP_FRACTION = 0.5     # the STDP kernel: twin wall <= half the real 98 MHz PPU's time
TARGET_QEMU_FRACTION = 0.25
LOOP_BODY = """
1:  addi 3, 3, 1
    xor 5, 3, 4
    add 6, 6, 5
    bdnz 1b
"""
LOOP_INSNS = 4


def _loop_twin(n: int) -> str:
    return (f"li 3, 0\n li 6, 0\n lis 4, {n >> 16}\n ori 4, 4, {n & 0xFFFF}\n mtctr 4\n"
            + LOOP_BODY + " wait\n")


def _loop_qemu(n: int) -> str:
    return (".globl _start\n_start:\n"
            f" li 3, 0\n li 6, 0\n lis 4, {n >> 16}\n ori 4, 4, {n & 0xFFFF}\n mtctr 4\n"
            + LOOP_BODY + " li 0, 1\n li 3, 0\n sc\n")


STDP = """
    # r20 causal space, r21 acausal space, r2 = row*2 + half, r22 = count
    lis r20, 0
    ori r20, r20, 0x8000
    lis r21, 0
    ori r21, r21, 0xC000
    li r5, 0
    fxvsplatb 0, r5          # zero
    li r5, 63
    fxvsplatb 10, r5         # wmax
    li r5, 16
    fxvsplatb 11, r5         # eta+ = 16/128
    li r5, 12
    fxvsplatb 12, r5         # eta- = 12/128
    li r5, 1
    fxvsplatb 13, r5         # reset request
    li r2, 0
    li r22, 64
    mtctr r22
loop:
    fxvinx 1, r20, r2        # causal (ADC, 8 bit unsigned)
    fxvinx 2, r21, r2        # acausal
    fxvinx 3, 0, r2          # weights
    fxvshb 1, 1, -1          # 0..127: positive fractions
    fxvshb 2, 2, -1
    fxvsubbm 4, 10, 3        # wmax - w
    fxvmulbfs 5, 1, 11       # eta+ c+
    fxvmulbfs 6, 2, 12       # eta- c-
    fxvsubbm 7, 0, 6         # -(eta- c-)
    fxvmtacbf 3              # acc = w << 8
    fxvmatacbfs 0, 5, 4         # acc += 2 eta+ c+ (wmax - w)
    fxvmatacbfs 0, 7, 3         # acc -= 2 eta- c- w
    fxvaddacbfs 8, 0, 0         # w' = upper byte of acc (saturated)
    fxvcmpb 8
    fxvsel 8, 8, 0, 2        # w' < 0 -> 0
    fxvsubbm 9, 8, 10
    fxvcmpb 9
    fxvsel 8, 8, 10, 1       # w' > wmax -> wmax
    fxvoutx 8, 0, r2         # write the weights
    fxvoutx 13, r20, r2      # reset the correlation sensors
    addi r2, r2, 1
    bdnz loop
    wait
"""


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _fmt_rate(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g} "


def _mem_with(src: str, size: int = 16 * 1024) -> np.ndarray:
    img = assemble(src).image()
    mem = np.zeros(size, np.uint8)
    mem[:len(img)] = np.frombuffer(img, np.uint8)
    return mem


MEMORY_LOOP = """
    li 3, 0x1000
    lis 4, {hi}
    ori 4, 4, {lo}
    mtctr 4
1:  lwz 5, 0(3)
    addi 5, 5, 3
    stw 5, 0(3)
    rlwinm 6, 5, 3, 0, 28
    xor 7, 7, 6
    bdnz 1b
    wait
"""


def twin_scalar(n: int, repeats: int, translate: bool = True, src=None) -> tuple[float, int]:
    """(seconds, instructions) of the twin on the loop with n iterations."""
    mem = _mem_with(_loop_twin(n) if src is None else src.format(hi=n >> 16, lo=n & 0xFFFF))
    hot = None if translate else 0
    dec = I.predecode_memory(mem)
    I.run(mem.copy(), I.new_state(), decoded=dec, hot_threshold=hot)      # compile / warm up
    insns = []

    def once():
        st = I.new_state()
        I.run(mem, st, decoded=dec, hot_threshold=hot)
        insns.append(int(st[I.S_INSNS]))

    return _median_time(once, repeats), insns[-1]


def qemu_scalar(n: int, repeats: int, tmp: Path) -> float | None:
    qemu = shutil.which("qemu-ppc-static") or shutil.which("qemu-ppc")
    gas, ld = shutil.which("powerpc-linux-gnu-as"), shutil.which("powerpc-linux-gnu-ld")
    if not (qemu and gas and ld):
        return None
    src, obj, exe = tmp / f"loop{n}.s", tmp / f"loop{n}.o", tmp / f"loop{n}"
    src.write_text(_loop_qemu(n))
    subprocess.run([gas, str(src), "-o", str(obj)], check=True)
    subprocess.run([ld, str(obj), "-o", str(exe)], check=True)
    return _median_time(lambda: subprocess.run([qemu, str(exe)], check=True), repeats)


def stdp_kernel(repeats: int) -> tuple[float, int, int]:
    """(median wall seconds, cycles, instructions) of the dls STDP kernel."""
    p = PROFILES["dls"]
    mem = _mem_with(STDP)
    dec = I.predecode_memory(mem)
    rng = np.random.default_rng(0)
    io = I.VectorIO.empty(p.rows, p.columns, p.ppu_slices)
    w0 = rng.integers(0, 64, (p.rows, p.columns))
    io.weights[:] = register_map("dls").register("synapse", "weights").pack_lanes("weight", w0)
    io.causal[:] = rng.integers(0, 256, io.causal.shape, dtype=np.uint8)
    io.acausal[:] = rng.integers(0, 256, io.acausal.shape, dtype=np.uint8)
    vec = I.new_vector_state(p.ppu_slices)
    st = I.new_state()
    assert I.run(mem.copy(), st, decoded=dec.copy(), vec=vec, io=io) == I.Status.SLEEPING
    out = {}

    def once():
        s = I.new_state()
        I.run(mem, s, decoded=dec, vec=vec, io=io)
        out["st"] = s

    t = _median_time(once, repeats)
    return t, int(out["st"][I.S_CYCLES]), int(out["st"][I.S_INSNS])


CHIP_FIRMWARE = {
    "plain loop": "1: addi 3, 3, 1\n b 1b\n",
    "reads correlations (fxvinx)": "1: fxvinx 1, 0, 2\n b 1b\n",
}


def chip_advance(profile: str, source: str, span_us: float, repeats: int) -> float:
    """Wall seconds per microsecond of hardware time for a twin chip whose PPU 0
    executes `source`, driven over the in-process link (the chip and its PPU run
    in the compiled co-simulation loop; the network is idle).  Spans of 1 ms
    (200 us with --quick), so that one program's host-side overhead does not
    dominate; tools/bench/cosim.py measures the realistic case."""
    import host
    from host import units
    from isa.ppu.asm import assemble

    with host.connect(f"twin:{profile}") as conn:
        ppu = host.PPU(conn, 0)
        ppu.load(assemble(source).image())
        ppu.start()

        def once():
            p = conn.program()
            p.timer_reset()
            p.wait_until(units.us(span_us))
            conn.run(p)
        once()                                  # translation and first-call costs
        return _median_time(once, repeats) / span_us


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench.ppu",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter loops and 3 repeats")
    ap.add_argument("--repeats", type=int, default=None, metavar="N")
    args = ap.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    short, long = (1_000_000, 10_000_000) if args.quick else (2_000_000, 40_000_000)
    qshort, qlong = (10_000_000, 100_000_000) if args.quick else (10_000_000, 300_000_000)

    print(f"# PPU benchmark ({platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()})")
    print("\n## scalar loop (addi, xor, add, bdnz)\n")
    print(f"| runner | instructions (short / long) | seconds (short / long) | rate |")
    print("|---|---:|---:|---:|")
    rates = {}
    for label, tr, src, scale in (("twin, interpreter only", False, None, 10),
                                  ("twin (hot loop translated)", True, None, 1),
                                  ("twin, load/store loop, interpreter only", False, MEMORY_LOOP, 10),
                                  ("twin, load/store loop (translated)", True, MEMORY_LOOP, 1)):
        a, b = (short // scale, long // scale) if scale > 1 else (short, long)
        t1, i1 = twin_scalar(a, repeats, tr, src)
        t2, i2 = twin_scalar(b, repeats, tr, src)
        rates[label] = (i2 - i1) / (t2 - t1)
        print(f"| {label} | {i1:,} / {i2:,} | {t1:.4f} / {t2:.4f} | {_fmt_rate(rates[label])}IPS |")
    twin_rate = rates["twin (hot loop translated)"]
    with tempfile.TemporaryDirectory() as tmp:
        q1 = qemu_scalar(qshort, repeats, Path(tmp))
        q2 = qemu_scalar(qlong, repeats, Path(tmp)) if q1 is not None else None
    if q1 is None or q2 is None:
        print("\nqemu-ppc-static or powerpc-linux-gnu binutils missing: no qemu reference")
        ratio = None
    else:
        qi1, qi2 = LOOP_INSNS * qshort + 8, LOOP_INSNS * qlong + 8
        qemu_rate = (qi2 - qi1) / (q2 - q1)
        ratio = twin_rate / qemu_rate
        print(f"| qemu-ppc-static | {qi1:,} / {qi2:,} | {q1:.4f} / {q2:.4f} | {_fmt_rate(qemu_rate)}IPS |")
        verdict = "PASS" if ratio >= TARGET_QEMU_FRACTION else "MISS"
        print(f"\ntwin / qemu = {ratio:.3f} (target >= {TARGET_QEMU_FRACTION}: {verdict}); "
              f"interpreter only: {rates['twin, interpreter only'] / qemu_rate:.3f}")

    print("\n## vector STDP kernel (dls, 32 x 32 synapses)\n")
    t, cycles, insns = stdp_kernel(max(50, 10 * repeats))     # a 60-us kernel: many samples for a stable median
    hw = cycles / PROFILES["dls"].ppu_clock_hz
    verdict = "PASS" if t <= TARGET_STDP_FRACTION * hw else "MISS"
    print(f"| instructions | cycles | real PPU (98 MHz) | twin wall | twin / real | rate |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {insns:,} | {cycles:,} | {hw * 1e6:.1f} us | {t * 1e6:.1f} us | {t / hw:.2f} | "
          f"{_fmt_rate(insns / t)}IPS |")
    print(f"\ntarget: twin wall <= {TARGET_STDP_FRACTION} x the real PPU's time: {verdict}")

    print("\n## a chip with its PPU executing (in-process link, wall per us of hardware time)\n")
    print("| chip | firmware | wall per us | slower than real time |")
    print("|---|---|---:|---:|")
    for profile in ("dls", "hx"):
        for label, src in CHIP_FIRMWARE.items():
            t = chip_advance(profile, src, 200.0 if args.quick else 1000.0, max(1, repeats // 2))
            print(f"| {profile} | {label} | {t * 1e3:.2f} ms | {t / 1e-6:,.0f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
