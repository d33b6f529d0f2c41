"""Helpers to run Debian's PowerPC binutils/gcc as an independent oracle.

Missing tools skip the test with a reason, except under CI (environment
variable CI set), where a missing oracle is a failure.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

PREFIX = "powerpc-linux-gnu-"
# -me500mc gives the Power ISA 2.06 embedded encodings the nux uses (wait =
# 0x7C00007C, "at" branch hints); -many adds popcntb/prtyw.
AS_FLAGS = ["-mbig", "-a32", "-mregnames", "-me500mc", "-many"]
OBJDUMP_FLAGS = ["-d", "-Me500mc,any"]


def tool(name: str) -> str:
    path = shutil.which(PREFIX + name)
    if path is None:
        msg = f"{PREFIX}{name} not installed (apt-get install binutils-powerpc-linux-gnu gcc-powerpc-linux-gnu)"
        if os.environ.get("CI"):
            pytest.fail(msg + "; CI is set, so the GNU oracle is required")
        pytest.skip(msg)
    return path


def run(args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True, **kw)


def gnu_assemble(source: str, tmp: Path, name: str = "case") -> bytes:
    """Assemble with GNU as; return the raw .text bytes."""
    src, obj, binf = tmp / f"{name}.s", tmp / f"{name}.o", tmp / f"{name}.bin"
    src.write_text(source)
    run([tool("as"), *AS_FLAGS, src, "-o", obj])
    run([tool("objcopy"), "-O", "binary", "-j", ".text", obj, binf])
    return binf.read_bytes()


_LINE = re.compile(r"^\s*([0-9a-f]+):\s+((?:[0-9a-f]{2} ){4})\s*(.*)$")


def gnu_objdump(words: list[int], tmp: Path) -> dict[int, str]:
    """objdump -d text per address for big-endian words placed in .text at 0."""
    src, obj = tmp / "words.s", tmp / "words.o"
    src.write_text("".join(f" .long 0x{w:08x}\n" for w in words))
    run([tool("as"), *AS_FLAGS, src, "-o", obj])
    out = run([tool("objdump"), *OBJDUMP_FLAGS, obj]).stdout
    res = {}
    for line in out.splitlines():
        m = _LINE.match(line)
        if m:
            res[int(m.group(1), 16)] = m.group(3).strip()
    return res


def normalise(text: str) -> str:
    """Whitespace only: objdump pads the mnemonic with spaces or a tab."""
    return " ".join(text.split())


def gnu_link_image(source: str, tmp: Path, text_addr: int = 0, starts: dict | None = None,
                   include_dirs=(), name: str = "prog") -> bytes:
    """Assemble + link with GNU tools; flat image from address 0 (objcopy -O binary
    starts at the lowest section, so text must be at 0).  `starts` places other
    sections (name -> address) with --section-start."""
    src, obj, elf, binf = (tmp / f"{name}.{e}" for e in ("s", "o", "elf", "bin"))
    src.write_text(source)
    run([tool("as"), *AS_FLAGS, *[f"-I{d}" for d in include_dirs], src, "-o", obj])
    ld = [tool("ld"), "-EB", "-Ttext", hex(text_addr), "-e", "0", "-o", elf, obj]
    for sec, addr in (starts or {}).items():
        ld[1:1] = [f"--section-start={sec}={addr:#x}"]
    run(ld)
    run([tool("objcopy"), "-O", "binary", elf, binf])
    return binf.read_bytes()


def _checked(args, what: str) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if r.returncode:
        pytest.fail(f"GNU {what} rejected the case:\n{r.stderr}")
    return r


def gnu_text(source: str, tmp: Path, name: str = "case") -> tuple[bytes, str]:
    """GNU as -> (.text bytes of the object, as's messages); fails the test when as
    rejects the source.  For position-independent statements (no relocations)."""
    src, obj, binf = tmp / f"{name}.s", tmp / f"{name}.o", tmp / f"{name}.bin"
    src.write_text(source)
    msgs = _checked([tool("as"), *AS_FLAGS, src, "-o", obj], "as").stderr
    run([tool("objcopy"), "-O", "binary", "-j", ".text", obj, binf])
    return binf.read_bytes(), msgs


def gnu_image(source: str, tmp: Path, starts: dict | None = None, include_dirs=(),
              name: str = "prog") -> tuple[bytes, str]:
    """GNU as + ld (-Ttext 0, other output sections at `starts`) -> (flat image of
    the loaded sections with contents, as's messages); fails the test when as or
    ld rejects the source."""
    src, obj, elf, binf = (tmp / f"{name}.{e}" for e in ("s", "o", "elf", "bin"))
    src.write_text(source)
    msgs = _checked([tool("as"), *AS_FLAGS, *[f"-I{d}" for d in include_dirs], src, "-o", obj],
                    "as").stderr
    ld = [tool("ld"), "-EB", "-Ttext", "0", "-e", "0", "-o", elf, obj]
    for sec, addr in (starts or {}).items():
        ld[1:1] = [f"--section-start={sec}={addr:#x}"]
    _checked(ld, "ld")
    r = subprocess.run([str(a) for a in (tool("objcopy"), "-O", "binary", elf, binf)],
                       capture_output=True, text=True)
    return (binf.read_bytes() if r.returncode == 0 else b""), msgs
