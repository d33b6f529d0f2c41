"""Assembler features, each checked byte for byte against GNU as + ld."""
from __future__ import annotations

import textwrap

import pytest

import _ppu_gnu as gnu
from isa.ppu.asm import AsmError, assemble, assemble_file

FEATURES = {
    "labels_and_local_labels": """
        .text
        .globl _start
    _start:
        li r3, 10
    1:  addic. r3, r3, -1
        bne 1b
        beq cr1, 1f
        b 2f
    1:  nop
    2:  bl func
        b 1b
    func:
        blr
    """,
    "ha_lo_and_data": """
        .text
        lis r4, table@ha
        addi r4, r4, table@l
        lwz r5, table@l(r4)
        li r6, (table + 0x8123)@l
        lis r7, (0x12348000)@ha
        lis r8, 0x12348000@h
        .data
    table:
        .long 1, 2, table, table + 4
        .short -1, 0x7fff
        .byte 1, 'A', -128
        .ascii "ab\\n"
        .asciz "cd\\x41\\101"
        .string "e"
        .align 2
        .word 0x1234
        .hword 5
        .int -1
        .fill 3, 2, 0x0102
        .space 3, 0xaa
        .skip 2
        .zero 1
        .balign 8, 0xee
        .p2align 3
        .long .
    """,
    "expressions_and_set": """
        .set A, 5
        .equ B, A * 3
        C = (B << 2) | 1
        li r3, A + B * 2
        li r3, -A / 2
        li r3, -7 % 3
        li r3, ~A & 0xff
        li r3, C ^ 0x10
        li r3, (1 | 2 + 3)
        li r3, 8 >> 1 + 1
        li r3, A > 3
        li r3, !0
        .set A, 7
        li r3, A
        li r3, end - start
    start: nop
        nop
    end:
    """,
    "macros": """
        .macro push reg, off=8
        stw \\reg, \\off(r1)
        .endm
        .macro pair a b
        addi \\a, \\a, 1
        addi \\b, \\b, 2
        .endm
        .macro count
    lbl\\@: b lbl\\@
        .endm
        push r3
        push r4, 16
        push reg=r5, off=4
        pair r6, r7
        count
        count
        .rept 3
        nop
        .endr
        .irp r, 8, 9
        li \\r, \\r
        .endr
    """,
    "conditionals": """
        .set FLAG, 1
        .if FLAG
        li r3, 1
        .else
        li r3, 2
        .endif
        .ifdef FLAG
        li r4, 1
        .endif
        .ifndef NOPE
        li r5, 1
        .if 0
        li r5, 2
        .elseif FLAG == 1
        li r5, 3
        .endif
        .endif
        .ifeq FLAG - 1
        li r6, 6
        .endif
    """,
    "sections_org_align": """
        .file "x.c"
        .ident "test"
        .gnu_attribute 4, 1
        .section .text
        .type f, @function
    f:  nop
        .align 4
        blr
        .size f, . - f
        .org 0x40
        wait
        .section .rodata
    msg: .asciz "hello"
        .data
    d:  .long msg, f, d
        .text
        lwz r3, d@l(0)
        .byte 1
        .align 2
        .p2align 3
        trap
    """,
    "operand_spellings": """
        mr %r3, %r4
        addi 3, 4, 5
        cmpw cr7, r3, r4
        cmpw 7, 3, 4
        crset 4*cr2+eq
        crnot 4*cr1+gt, so
        bt 4*cr3+lt, .+8
        lwz r3, 0(r1)
        lwz r3, (4+4)(r1)
        stwu sp, -16(sp)
        li r3, 'a'
        li r3, 0b101
        li r3, 017
        li r3, 0x1F
        mtspr 26, r3; mfspr r4, 27 ; nop   # separators and comments
        /* C comment */ nop
    """,
}


def _dedent(src: str) -> str:
    return textwrap.dedent(src).strip("\n") + "\n"


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_feature_matches_gnu(name, tmp_path):
    src = _dedent(FEATURES[name])
    prog = assemble(src, f"{name}.s")
    # Place GNU ld's sections where ours went (our default placement is checked below).
    starts = {n: s.address for n, s in prog.sections.items() if n != ".text" and s.size}
    theirs = gnu.gnu_link_image(src, tmp_path, 0, starts)
    ours = prog.image()
    assert ours.hex() == theirs.hex()


def test_include_and_defsym(tmp_path):
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "defs.inc").write_text(".set BASE, 0x3000\n.macro ret\n blr\n.endm\n")
    (tmp_path / "local.inc").write_text("li r9, 9\n")
    main = tmp_path / "main.s"
    main.write_text('.include "defs.inc"\n.include "local.inc"\nlis r3, BASE@ha\n'
                    "li r4, SIZE\nret\n")
    prog = assemble_file(str(main), include_dirs=[str(inc)], defsyms={"SIZE": 12})
    src = ".set SIZE, 12\n" + main.read_text()
    theirs = gnu.gnu_link_image(src, tmp_path, include_dirs=[inc, tmp_path], name="inc_main")
    assert prog.image().hex() == theirs.hex()


def test_text_and_data_placement():
    prog = assemble(".text\nnop\nnop\nnop\n.data\nx: .long x\n.text\nlis r3,x@ha\n")
    assert prog.sections[".data"].address == 16      # right after text, aligned
    assert prog.symbols["x"] == 16
    prog = assemble(".text\nnop\n.data\nx: .long x\n", text_addr=0x100, data_addr=0x2000)
    img = prog.image()
    assert len(img) == 0x2004 and img[0x100:0x104] == bytes.fromhex("60000000")
    assert img[0x2000:] == (0x2000).to_bytes(4, "big")


def test_several_errors_in_one_run():
    with pytest.raises(AsmError) as e:
        assemble("addi r3, r4\nfoo r1\nli r3, undefined_sym\n", "bad.s")
    assert [d.line for d in e.value.diagnostics] == [1, 2, 3]
