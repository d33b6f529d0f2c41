"""Execution oracle: the twin against qemu-ppc-static on the same code.

Two legs.  Freestanding C kernels (progs/kernels.c) are compiled once and
linked twice: for qemu with a start that writes `result[]` to stdout, for the
twin at address 0 with a start that ends at `wait`; the twin's result array
(found through the ELF symbol table) must equal qemu's output.  Random
straight-line scalar sequences (our assembler's encodings, `_exec_cases`) are
wrapped in a harness that loads the initial registers, runs the words and
writes GPRs, CR, XER, LR, CTR and the data region to stdout.

qemu's 32-bit CPUs lack popcntb/prtyw, trap, and treat L=1 compares and
multi-field mfocrf/mtocrf differently, and stmw stores r31 (the data
address differs between the two), so those stay out of the qemu
sequences (the reference test covers them); SPR moves use LR/CTR only (qemu
keeps all XER bits written by mtxer).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as hs

import _ppu_gnu as gnu
from _exec_cases import DATA, DATA_SIZE, INDEX, instruction, setup
from isa.ppu.codec import decode
from isa.ppu.elf import read_elf
from twin.ppu import interp as I

PROGS = Path(__file__).parent / "progs"
CFLAGS = ["-O2", "-ffreestanding", "-nostdlib", "-static", "-mcpu=powerpc", "-msoft-float",
          "-mno-altivec", "-msdata=none", "-G", "0", "-fno-pic", "-fno-stack-protector",
          "-fno-tree-loop-distribute-patterns"]


def _qemu() -> str:
    path = shutil.which("qemu-ppc-static") or shutil.which("qemu-ppc")
    if path is None:
        msg = "qemu-ppc-static not installed (apt-get install qemu-user-static)"
        if os.environ.get("CI"):
            pytest.fail(msg + "; CI is set, so the qemu oracle is required")
        pytest.skip(msg)
    return path


def _qemu_run(exe: Path) -> bytes:
    return subprocess.run([_qemu(), str(exe)], check=True, capture_output=True, timeout=30).stdout


# --------------------------------------------------------------------------
# C kernels


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kernels")
    gcc = gnu.tool("gcc")
    obj = tmp / "kernels.o"
    gnu.run([gcc, *CFLAGS, "-c", PROGS / "kernels.c", "-o", obj])
    exes = {}
    for kind, extra in (("qemu", []),
                        ("twin", ["-Wl,-Ttext-segment=0", "-Wl,-z,max-page-size=0x1000"])):
        exe = tmp / f"kernels_{kind}"
        gnu.run([gcc, *CFLAGS, *extra, PROGS / f"crt_{kind}.s", obj, "-o", exe, "-lgcc"])
        exes[kind] = exe
    return exes


def test_c_kernels_match_qemu(kernels):
    want = _qemu_run(kernels["qemu"])
    assert len(want) == 1024
    img = read_elf(kernels["twin"].read_bytes())
    assert img.entry == img.symbols["_start"]
    flat = np.frombuffer(img.image(), np.uint8)
    mem = np.zeros(0x20000, np.uint8)
    assert len(flat) <= 0x1C000
    mem[:len(flat)] = flat
    res = img.symbols["result"]
    for hot in (0, 50):        # interpreter only; hot code translated (twin.ppu.jit)
        m = mem.copy()
        st = I.new_state(img.entry)
        dec = I.predecode_memory(m)
        status = I.run(m, st, max_cycles=10_000_000, decoded=dec, hot_threshold=hot)
        assert I.STATUS_NAMES[status] == "sleeping", hex(int(st[I.S_FAULT]))
        assert m[res:res + 1024].tobytes() == want
        assert hot == 0 or (dec[:, 9] > 0).any()


# --------------------------------------------------------------------------
# Random straight-line sequences


def _qemu_safe(word: int) -> bool:
    d = decode(word)
    mn = d.mnemonic.rstrip(".")
    if mn in ("popcntb", "prtyw", "stmw"):   # stmw would store r31 (addresses differ)
        return False
    if mn in ("cmp", "cmpi", "cmpl", "cmpli") and d.values[1]:
        return False
    if mn in ("mfocrf", "mtocrf") and bin(d.values[1 if mn == "mfocrf" else 0]).count("1") != 1:
        return False
    return True


_qemu_insn = instruction(sprs=(8, 9), traps=False).filter(_qemu_safe)


@hs.composite
def _qemu_machine(draw):
    words = draw(hs.lists(_qemu_insn, min_size=20, max_size=60))
    gprs = draw(hs.lists(hs.integers(0, 0xFFFFFFFF) | hs.sampled_from(
        [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]), min_size=30, max_size=30))
    cr = draw(hs.integers(0, 0xFFFFFFFF))
    xer = draw(hs.sampled_from([0, 0x20000000, 0xE0000000, 0x80000000, 0x40000000]))
    rng = np.random.default_rng(draw(hs.integers(0, 2**32 - 1)))
    data = rng.integers(0, 256, DATA_SIZE, dtype=np.uint8).tobytes()
    lr, ctr = draw(hs.integers(0, 0xFFFFFFFF)), draw(hs.integers(0, 0xFFFFFFFF))
    return words, gprs, cr, xer, data, lr, ctr


_OUT = 30 + 4   # GPR0-29, CR, XER, LR, CTR


def _harness(cases) -> str:
    """One qemu program running every case in turn, each writing its results."""
    out = [".text", ".globl _start", "_start:"]
    for k, (words, gprs, cr, xer, data, lr, ctr) in enumerate(cases):
        out += [f"lis 1, init{k}@ha", f"addi 1, 1, init{k}@l",
                "lwz 0, 120(1)", "mtcr 0", "lwz 0, 124(1)", "mtxer 0",
                "lwz 0, 128(1)", "mtlr 0", "lwz 0, 132(1)", "mtctr 0",
                "lmw 2, 8(1)", "lwz 0, 0(1)", "lwz 1, 4(1)",
                f"lis 31, data{k}@ha", f"addi 31, 31, data{k}@l", f"li 30, {INDEX}"]
        out += [f".long 0x{w:08x}" for w in words]
        out += [f"stw {r}, {DATA_SIZE + 4 * r}(31)" for r in range(30)]
        out += [f"mfcr 0", f"stw 0, {DATA_SIZE + 120}(31)", "mfxer 0",
                f"stw 0, {DATA_SIZE + 124}(31)", "mflr 0", f"stw 0, {DATA_SIZE + 128}(31)",
                "mfctr 0", f"stw 0, {DATA_SIZE + 132}(31)",
                "li 0, 4", "li 3, 1", "mr 4, 31", f"li 5, {DATA_SIZE + 4 * _OUT}", "sc"]
    out += ["li 0, 1", "li 3, 0", "sc", ".data"]
    for k, (words, gprs, cr, xer, data, lr, ctr) in enumerate(cases):
        init = list(gprs) + [cr, xer, lr, ctr]
        out += [".balign 4", f"init{k}:"] + [f".long {v}" for v in init]
        out += [f"data{k}:"] + [f".byte {', '.join(str(b) for b in data[i:i + 16])}"
                                for i in range(0, len(data), 16)]
        out += [f".space {4 * _OUT}"]
    return "\n".join(out) + "\n"


def _twin_case(words, gprs, cr, xer, data, lr, ctr) -> bytes:
    mem, st = setup(words, gprs, cr, xer, data)
    st[I.S_LR], st[I.S_CTR] = lr, ctr
    status = I.run(mem, st)
    assert I.STATUS_NAMES[status] == "sleeping"
    regs = [int(v) for v in st[:30]] + [int(st[I.S_CR]), int(st[I.S_XER]) & 0xE0000000,
                                        int(st[I.S_LR]), int(st[I.S_CTR])]
    return mem[DATA:DATA + DATA_SIZE].tobytes() + b"".join(v.to_bytes(4, "big") for v in regs)


# No shrinking: one qemu run checks a batch; the failure names the case and its words.
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck),
          phases=(Phase.explicit, Phase.generate))
@given(hs.lists(_qemu_machine(), min_size=8, max_size=8))
def test_random_sequences_match_qemu(tmp_path_factory, cases):
    tmp = tmp_path_factory.mktemp("seq")
    _qemu()
    src, obj, exe = tmp / "seq.s", tmp / "seq.o", tmp / "seq"
    src.write_text(_harness(cases))
    gnu.run([gnu.tool("as"), *gnu.AS_FLAGS, src, "-o", obj])
    gnu.run([gnu.tool("ld"), "-EB", obj, "-o", exe])
    out = _qemu_run(exe)
    size = DATA_SIZE + 4 * _OUT
    assert len(out) == size * len(cases)
    for k, case in enumerate(cases):
        theirs = bytearray(out[k * size:(k + 1) * size])
        xer_at = DATA_SIZE + 4 * 31
        theirs[xer_at:xer_at + 4] = (int.from_bytes(theirs[xer_at:xer_at + 4], "big")
                                     & 0xE0000000).to_bytes(4, "big")
        ours = _twin_case(*case)
        if bytes(theirs) != ours:
            regs_t = np.frombuffer(bytes(theirs[DATA_SIZE:]), ">u4")
            regs_o = np.frombuffer(ours[DATA_SIZE:], ">u4")
            bad = {i: (hex(a), hex(b)) for i, (a, b) in enumerate(zip(regs_t, regs_o)) if a != b}
            pytest.fail(f"case {k}: words {[hex(w) for w in case[0]]}: qemu vs twin {bad}; "
                        f"data equal: {theirs[:DATA_SIZE] == ours[:DATA_SIZE]}")
