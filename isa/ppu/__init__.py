"""PPU ("nux") instruction-set toolchain: table, codec, assembler, disassembler, ELF.

The instruction table (`isa.ppu.instructions`) is the only description of the
instruction set; everything here is derived from it.
"""
from .codec import Decoded, EncodingError, IllegalInstruction, decode, decode_tables, encode, predecode

__all__ = ["Decoded", "EncodingError", "IllegalInstruction", "decode", "decode_tables", "encode",
           "predecode", "assemble", "AsmError", "disassemble"]


def __getattr__(name):
    # The assembler and disassembler load lazily so `import isa.ppu` stays cheap.
    if name in ("assemble", "AsmError"):
        from . import asm
        return getattr(asm, name)
    if name == "disassemble":
        from .disasm import disassemble
        return disassemble
    raise AttributeError(name)
