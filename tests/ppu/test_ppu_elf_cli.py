"""ELF write/read round trip, reading GNU-built images, and the CLI handlers."""
from __future__ import annotations

import argparse
import struct

import pytest

import _ppu_gnu as gnu
from isa.ppu.asm import assemble
from isa.ppu.elf import ElfError, read_elf

SRC = """
    .globl _start
_start:
    lis r3, buf@ha
    addi r3, r3, buf@l
    bl helper
    wait
helper:
    blr
    .set LIMIT, 42
    .data
buf: .long 1, 2
    .bss
scratch: .space 16
"""


def test_elf_round_trip():
    prog = assemble(SRC, "rt.s")
    data = prog.to_elf()
    # Header fields read by hand: ELF32, big-endian, ET_EXEC, EM_PPC.
    assert data[:6] == b"\x7fELF\x01\x02"
    assert struct.unpack(">HH", data[16:20]) == (2, 20)
    elf = read_elf(data)
    assert elf.entry == prog.symbols["_start"] == 0
    assert elf.image() == prog.image()
    assert {k: elf.symbols[k] for k in ("_start", "helper", "buf", "scratch", "LIMIT")} == {
        "_start": 0, "helper": 16, "buf": 20, "scratch": 28, "LIMIT": 42}
    assert [(s.address, s.memsize) for s in elf.segments] == [(0, 20), (20, 8), (28, 16)]


def test_gnu_tools_read_our_elf(tmp_path):
    path = tmp_path / "ours.elf"
    path.write_bytes(assemble(SRC, "rt.s").to_elf())
    syms = gnu.run([gnu.tool("nm"), path]).stdout
    assert "00000010 t helper" in syms and "00000000 T _start" in syms
    listing = gnu.run([gnu.tool("objdump"), *gnu.OBJDUMP_FLAGS, path]).stdout
    assert "bl      10 <helper>" in listing


def test_read_errors():
    with pytest.raises(ElfError, match=r"^not an ELF file \(bad magic\)$"):
        read_elf(b"\0" * 64)
    with pytest.raises(ElfError, match=r"^not ELF32 big-endian \(EI_CLASS/EI_DATA\)$"):
        read_elf(b"\x7fELF\x02\x01" + b"\0" * 58)


C_SOURCE = """
int table[4] = {1, 2, 3, 4};
int sum(int n) { int s = 0; for (int i = 0; i < n; i++) s += table[i & 3] * i; return s; }
void _start(void) { volatile int *out = (int *)0x2ffc; *out = sum(10); for (;;) {} }
"""


def test_read_gcc_elf(tmp_path):
    gcc = gnu.tool("gcc")
    (tmp_path / "p.c").write_text(C_SOURCE)
    elf_path = tmp_path / "p.elf"
    gnu.run([gcc, "-O2", "-ffreestanding", "-nostdlib", "-mcpu=powerpc", "-static",
             "-Wl,-Ttext=0", "-o", elf_path, tmp_path / "p.c"])
    elf = read_elf(elf_path.read_bytes())
    nm = gnu.run([gnu.tool("nm"), elf_path]).stdout.split("\n")
    expected = {parts[2]: int(parts[0], 16) for parts in (l.split() for l in nm) if len(parts) == 3}
    assert elf.symbols["sum"] == expected["sum"] and elf.symbols["_start"] == expected["_start"]
    assert elf.entry == expected["_start"]
    # Every word of .text disassembles exactly as objdump does (our decoder sees real gcc code).
    from isa.ppu.disasm import format_instruction, Symbolizer
    addr, text, _ = elf.sections[".text"]
    listing = gnu.run([gnu.tool("objdump"), *gnu.OBJDUMP_FLAGS, "-j", ".text", elf_path]).stdout
    theirs = {}
    for line in listing.splitlines():
        m = gnu._LINE.match(line)
        if m:
            theirs[int(m.group(1), 16)] = gnu.normalise(m.group(3))
    sym = Symbolizer(elf.symbols)
    for off in range(0, len(text), 4):
        w = int.from_bytes(text[off:off + 4], "big")
        mn, ops = format_instruction(w, addr + off, sym)
        assert gnu.normalise(f"{mn} {ops}") == theirs[addr + off], hex(addr + off)
    # The loadable image matches objcopy's.
    binf = tmp_path / "p.bin"
    gnu.run([gnu.tool("objcopy"), "-O", "binary", elf_path, binf])
    assert elf.image()[min(s.address for s in elf.segments):] == binf.read_bytes()


def _cli(argv):
    from tools.ppu_cli import add_parsers
    p = argparse.ArgumentParser(prog="bss-twin")
    add_parsers(p.add_subparsers(required=True))
    args = p.parse_args(argv)
    return args.func(args)


def test_cli_asm_and_disasm(tmp_path, capsys):
    src = tmp_path / "a.s"
    src.write_text("start: li r3, N\n b start\n")
    out = tmp_path / "a.bin"
    assert _cli(["asm", str(src), "-o", str(out), "--defsym", "N=7"]) == 0
    assert out.read_bytes() == bytes.fromhex("38600007" "4bfffffc")
    assert _cli(["disasm", str(out), "--start", "0x100"]) == 0
    assert capsys.readouterr().out == ("     100:\t38 60 00 07 \tli      r3,7\n"
                                       "     104:\t4b ff ff fc \tb       0x100\n")
    elf = tmp_path / "a.elf"
    assert _cli(["asm", str(src), "-o", str(elf), "--format", "elf", "--defsym", "N=1",
                 "-Ttext", "0x40"]) == 0
    assert _cli(["disasm", str(elf)]) == 0
    text = capsys.readouterr().out
    assert "00000040 <start>:" in text and "b       40 <start>" in text


def test_cli_asm_errors_exit_nonzero(tmp_path, capsys):
    src = tmp_path / "bad.s"
    src.write_text("nop\nbogus r1\n")
    assert _cli(["asm", str(src), "-o", str(tmp_path / "x.bin")]) == 1
    err = capsys.readouterr().err
    assert err.endswith("bogus r1\n^^^^^\n1 error\n")
    assert not (tmp_path / "x.bin").exists()


@pytest.mark.parametrize("name", ["prog.s", "prog_text"])
def test_ppu_run_of_assembly_source_says_to_assemble_it(tmp_path, capsys, name):
    from tools import cli
    path = tmp_path / name
    path.write_text("li r3, 1\nwait\n")
    assert cli.main(["ppu-run", str(path)]) == 1
    err = capsys.readouterr().err
    assert "looks like assembly source" in err and f"bss-twin asm {path} -o program.bin" in err
