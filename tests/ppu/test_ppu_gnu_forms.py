"""Everything the assembler accepts of GNU as's syntax, byte for byte against GNU as.

Generated cases (tests/ppu/_gnu_forms.py): every instruction and extended
mnemonic GNU as knows with representative operands and respelled (other
expressions, upper case, block comments in every position, comments spanning
lines, '#' comments, ';' separators), the L-omitted compares, and whole
programs for each directive and expression form.  GNU as (and ld, for
programs) is the oracle: each case must assemble there without any message,
and our bytes must equal GNU's.
"""
from __future__ import annotations

import pytest

import _ppu_gnu as gnu
from _gnu_forms import compare_cases, instruction_count, program_cases, statement_cases
from isa.ppu.asm import assemble, assemble_file

STATEMENTS = statement_cases() + compare_cases()
PROGRAMS = program_cases()
# Appended to every program: its image then always ends in .text contents.
SENTINEL = "\n\t.text\n\t.long 0x5ca1ab1e\n"


def _image(prog) -> bytes:
    """Our flat image of the loaded sections with contents (objcopy -O binary's view)."""
    end = max((s.address + s.size for s in prog.sections.values() if s.size and not s.nobits),
              default=0)
    return prog.image()[:end]


def test_case_counts():
    assert len(STATEMENTS) >= 2 * instruction_count()
    assert len(PROGRAMS) >= 250


def test_statements_match_gnu(tmp_path):
    src = "".join(f"\t{c}\n" for c in STATEMENTS)
    theirs, msgs = gnu.gnu_text(src, tmp_path)
    assert msgs == "", msgs
    ours = bytes(assemble(src, "statements.s").sections[".text"].data)
    if ours != theirs:
        bad, off = [], 0
        for c in STATEMENTS:
            n = len(assemble(f"\t{c}\n").sections[".text"].data)
            if ours[off:off + n] != theirs[off:off + n]:
                bad.append(f"{c!r}: gnu {theirs[off:off + n].hex()} ours {ours[off:off + n].hex()}")
            off += n
        pytest.fail("\n".join(bad[:40] or [f"lengths: gnu {len(theirs)} ours {len(ours)}"]))


@pytest.mark.parametrize("name,src", PROGRAMS, ids=[n for n, _ in PROGRAMS])
def test_program_matches_gnu(name, src, tmp_path):
    src += SENTINEL
    prog = assemble(src, f"{name}.s")
    # ld places the other output sections where ours went (placement is tested
    # elsewhere): .data.x goes into output section .data, and so on.
    starts: dict[str, int] = {}
    for n, s in prog.sections.items():
        out = next((o for o in (".rodata", ".data", ".bss") if n == o or n.startswith(o + ".")),
                   None)
        if out and s.size:
            starts[out] = min(starts.get(out, s.address), s.address)
    theirs, msgs = gnu.gnu_image(src, tmp_path, starts)
    assert msgs == "", msgs
    assert _image(prog).hex() == theirs.hex()


def test_include_matches_gnu(tmp_path):
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "defs.inc").write_text("/* header\n */ .set BASE, 0x3000\n.macro ret\n blr\n.endm\n")
    (tmp_path / "local.inc").write_text("li r9, 9 # local\n")
    (inc / "blob.bin").write_bytes(bytes(range(7, 40)))
    src = ('.include "defs.inc"\n.include "local.inc"\nlis r3, BASE@ha\nret\n'
           '.data\n.incbin "blob.bin"\n.incbin "blob.bin", 5\n.incbin "blob.bin", 3, 4\n')
    main = tmp_path / "main.s"
    main.write_text(src)
    prog = assemble_file(str(main), include_dirs=[str(inc)])
    theirs, msgs = gnu.gnu_image(src, tmp_path, {".data": prog.sections[".data"].address},
                                 include_dirs=[inc, tmp_path], name="inc_main")
    assert msgs == "", msgs
    assert _image(prog).hex() == theirs.hex()
