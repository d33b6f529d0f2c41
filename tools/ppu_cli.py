"""`bss-twin asm` and `bss-twin disasm`: the PPU toolchain on the command line.

The lead's tools/cli.py calls `add_parsers(subparsers)`; each handler is stored
as the parser's `func` default and returns an exit code.
"""
from __future__ import annotations

import argparse
import sys


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _defsym(text: str) -> tuple[str, int]:
    name, eq, value = text.partition("=")
    if not eq or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, _int(value)


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser(
        "asm", help="assemble PPU (nux) assembly into a memory image or ELF",
        description="Assemble PPU assembly (GNU as syntax for PowerPC plus the fxv vector "
                    "extension). Several files are assembled as one unit, in order. "
                    "Errors are printed as file:line:col with the source line and a caret.")
    p.add_argument("files", nargs="+", metavar="FILE", help="assembly source files")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file")
    p.add_argument("--format", choices=("bin", "elf"), default="bin",
                   help="bin: flat memory image from address 0 (default); elf: ELF32 big-endian "
                        "executable with a symbol table")
    p.add_argument("--defsym", action="append", type=_defsym, default=[], metavar="NAME=VALUE",
                   help="define an absolute symbol (repeatable)")
    p.add_argument("-I", dest="include", action="append", default=[], metavar="DIR",
                   help="add a directory searched by .include (repeatable)")
    p.add_argument("-Ttext", dest="text_addr", type=_int, default=0, metavar="ADDR",
                   help="address of .text (default 0)")
    p.add_argument("-Tdata", dest="data_addr", type=_int, default=None, metavar="ADDR",
                   help="address of .data (default: right after the text, aligned)")
    p.set_defaults(func=cmd_asm)

    d = subparsers.add_parser(
        "disasm", help="disassemble a PPU memory image or ELF file",
        description="Disassemble a flat big-endian memory image or an ELF32 file (detected by "
                    "its magic) in objdump -d style; ELF symbols label branch targets.")
    d.add_argument("image", metavar="IMAGE", help="binary image or ELF file")
    d.add_argument("--start", type=_int, default=0, metavar="ADDR",
                   help="address of the first byte of a flat image (default 0)")
    d.set_defaults(func=cmd_disasm)


def cmd_asm(args) -> int:
    from isa.ppu.asm import AsmError, assemble_file
    try:
        prog = assemble_file(args.files, include_dirs=args.include, defsyms=dict(args.defsym),
                             text_addr=args.text_addr, data_addr=args.data_addr)
    except AsmError as e:
        sys.stderr.write(e.format())
        n = len(e.diagnostics)
        sys.stderr.write(f"{n} error{'s' if n != 1 else ''}\n")
        return 1
    except OSError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    data = prog.to_elf() if args.format == "elf" else prog.image()
    with open(args.output, "wb") as f:
        f.write(data)
    return 0


def cmd_disasm(args) -> int:
    from isa.ppu.disasm import disassemble
    from isa.ppu.elf import ElfError, is_elf, read_elf
    try:
        with open(args.image, "rb") as f:
            data = f.read()
    except OSError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    if is_elf(data):
        try:
            elf = read_elf(data)
        except ElfError as e:
            sys.stderr.write(f"error: {args.image}: {e}\n")
            return 1
        for name, addr, body in elf.code_sections():
            sys.stdout.write(f"\nDisassembly of section {name}:\n\n")
            sys.stdout.write(disassemble(body, addr, elf.symbols))
        return 0
    sys.stdout.write(disassemble(data, args.start))
    return 0


def main(argv=None) -> int:
    """Stand-alone entry point (python -m tools.ppu_cli ...)."""
    parser = argparse.ArgumentParser(prog="ppu")
    add_parsers(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
