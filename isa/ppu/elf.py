"""ELF32 big-endian (EM_PPC) images: write linked programs, read GNU-built ones.

Only what PPU firmware needs: ET_EXEC with one PT_LOAD per allocated section
and a symbol table on the writing side; PT_LOAD segments, sections and the
symbol table on the reading side.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = ["ElfError", "ElfImage", "Segment", "write_elf", "read_elf", "is_elf"]

EM_PPC = 20
ET_EXEC, ET_REL = 2, 1
PT_LOAD = 1
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_NOBITS = 1, 2, 3, 8
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4
PF_X, PF_W, PF_R = 1, 2, 4
SHN_ABS = 0xFFF1
STB_LOCAL, STB_GLOBAL = 0, 1
STT_NOTYPE, STT_FUNC, STT_SECTION, STT_FILE = 0, 2, 3, 4
MAGIC = b"\x7fELF"

_EHDR = struct.Struct(">16sHHIIIIIHHHHHH")
_PHDR = struct.Struct(">IIIIIIII")
_SHDR = struct.Struct(">IIIIIIIIII")
_SYM = struct.Struct(">IIIBBH")


class ElfError(ValueError):
    pass


def is_elf(data: bytes) -> bool:
    return data[:4] == MAGIC


@dataclass
class Segment:
    address: int
    data: bytes
    memsize: int
    flags: int


@dataclass
class ElfImage:
    entry: int
    segments: list[Segment]
    symbols: dict[str, int]
    sections: dict[str, tuple[int, bytes, int]] = field(default_factory=dict)  # name -> (addr, data, flags)

    def image(self) -> bytes:
        """Flat memory image from address 0 covering every PT_LOAD segment."""
        end = max((s.address + s.memsize for s in self.segments), default=0)
        buf = bytearray(end)
        for s in self.segments:
            buf[s.address:s.address + len(s.data)] = s.data
        return bytes(buf)

    def code_sections(self) -> list[tuple[str, int, bytes]]:
        return [(n, a, d) for n, (a, d, f) in self.sections.items() if f & SHF_EXECINSTR]


class _StrTab:
    def __init__(self):
        self.data = bytearray(b"\0")
        self.index: dict[str, int] = {"": 0}

    def add(self, s: str) -> int:
        if s not in self.index:
            self.index[s] = len(self.data)
            self.data += s.encode() + b"\0"
        return self.index[s]


def write_elf(program) -> bytes:
    """ELF32 BE executable of an assembled Program (see asm.Program)."""
    secs = [s for s in program.sections.values() if s.size]
    shstr, strtab = _StrTab(), _StrTab()
    ehsize, phnum = _EHDR.size, len(secs)
    off = ehsize + phnum * _PHDR.size
    layout = []                                   # (section, file offset)
    for s in secs:
        off = -(-off // 4) * 4
        layout.append((s, off))
        if not s.nobits:
            off += s.size
    sec_index = {s.name: i + 1 for i, s in enumerate(secs)}

    # Symbols: locals first (ELF rule), then globals.
    syms = [(0, 0, 0, 0, 0, 0)]
    names = sorted(program.symbols, key=lambda n: (n in program.globals, program.symbols[n], n))
    first_global = None
    for n in names:
        glob = n in program.globals
        if glob and first_global is None:
            first_global = len(syms)
        sec = program.symbol_sections.get(n)
        shndx = sec_index.get(sec, SHN_ABS) if sec else SHN_ABS
        typ = STT_FUNC if sec and program.sections.get(sec) and program.sections[sec].code else STT_NOTYPE
        syms.append((strtab.add(n), program.symbols[n] & 0xFFFFFFFF, 0,
                     ((STB_GLOBAL if glob else STB_LOCAL) << 4) | typ, 0, shndx))
    if first_global is None:
        first_global = len(syms)
    symdata = b"".join(_SYM.pack(*s) for s in syms)

    off = -(-off // 4) * 4
    symoff = off
    off += len(symdata)
    stroff = off
    off += len(strtab.data)
    for s in secs:
        shstr.add(s.name)
    for n in (".symtab", ".strtab", ".shstrtab"):
        shstr.add(n)
    shstroff = off
    off += len(shstr.data)
    off = -(-off // 4) * 4
    shoff = off
    shnum = len(secs) + 4

    out = bytearray()
    ident = MAGIC + bytes([1, 2, 1, 0]) + bytes(8)     # ELFCLASS32, ELFDATA2MSB, EV_CURRENT
    out += _EHDR.pack(ident, ET_EXEC, EM_PPC, 1, program.entry & 0xFFFFFFFF, ehsize, shoff, 0,
                      ehsize, _PHDR.size, phnum, _SHDR.size, shnum, shnum - 1)
    for s, o in layout:
        flags = PF_R | (PF_X if s.code else 0) | (0 if s.code else PF_W)
        out += _PHDR.pack(PT_LOAD, o, s.address, s.address, 0 if s.nobits else s.size,
                          s.size, flags, s.align)
    for s, o in layout:
        out += bytes(o - len(out))
        if not s.nobits:
            out += s.data
    out += bytes(symoff - len(out)) + symdata + strtab.data + shstr.data
    out += bytes(shoff - len(out))
    out += _SHDR.pack(*([0] * 10))
    for s, o in layout:
        flags = SHF_ALLOC | (SHF_EXECINSTR if s.code else SHF_WRITE)
        out += _SHDR.pack(shstr.index[s.name], SHT_NOBITS if s.nobits else SHT_PROGBITS, flags,
                          s.address, o, s.size, 0, 0, s.align, 0)
    nsec = len(secs)
    out += _SHDR.pack(shstr.index[".symtab"], SHT_SYMTAB, 0, 0, symoff, len(symdata),
                      nsec + 2, first_global, 4, _SYM.size)
    out += _SHDR.pack(shstr.index[".strtab"], SHT_STRTAB, 0, 0, stroff, len(strtab.data), 0, 0, 1, 0)
    out += _SHDR.pack(shstr.index[".shstrtab"], SHT_STRTAB, 0, 0, shstroff, len(shstr.data),
                      0, 0, 1, 0)
    return bytes(out)


def read_elf(data: bytes) -> ElfImage:
    """Read an ELF32 big-endian PowerPC image (ours or GNU ld's)."""
    if len(data) < _EHDR.size or not is_elf(data):
        raise ElfError("not an ELF file (bad magic)")
    if data[4] != 1 or data[5] != 2:
        raise ElfError("not ELF32 big-endian (EI_CLASS/EI_DATA)")
    (_, etype, machine, _, entry, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum,
     shstrndx) = _EHDR.unpack_from(data, 0)
    if machine != EM_PPC:
        raise ElfError(f"machine {machine} is not EM_PPC (20)")

    def chunk(off, size):
        if off + size > len(data):
            raise ElfError(f"truncated: {off + size} > {len(data)} bytes")
        return data[off:off + size]

    segs = []
    for i in range(phnum):
        (ptype, off, vaddr, paddr, filesz, memsz, flags, _) = _PHDR.unpack_from(
            chunk(phoff + i * phentsize, _PHDR.size))
        if ptype == PT_LOAD and memsz:
            # Firmware is loaded at its physical address (ld's AT>), usually = vaddr.
            segs.append(Segment(paddr, chunk(off, filesz), memsz, flags))
    shdrs = [_SHDR.unpack_from(chunk(shoff + i * shentsize, _SHDR.size)) for i in range(shnum)]
    names = chunk(shdrs[shstrndx][4], shdrs[shstrndx][5]) if shnum else b""

    def cstr(tab: bytes, i: int) -> str:
        return tab[i:tab.index(b"\0", i)].decode("utf-8", "replace")

    sections, symbols = {}, {}
    for sh in shdrs:
        name, typ, flags, addr, off, size, link, _, _, entsize = sh
        if flags & SHF_ALLOC and typ in (SHT_PROGBITS, SHT_NOBITS) and size:
            sections[cstr(names, name)] = (addr, bytes(size) if typ == SHT_NOBITS
                                           else chunk(off, size), flags)
        if typ == SHT_SYMTAB:
            strtab = chunk(shdrs[link][4], shdrs[link][5])
            tab = chunk(off, size)
            for k in range(1, size // _SYM.size):
                st_name, value, _, info, _, shndx = _SYM.unpack_from(tab, k * _SYM.size)
                if info & 0xF in (STT_SECTION, STT_FILE) or not st_name or shndx == 0:
                    continue
                symbols[cstr(strtab, st_name)] = value
    return ElfImage(entry, segs, symbols, sections)
