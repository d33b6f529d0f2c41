"""Generated sources for the GNU as comparison (test_ppu_gnu_forms.py).

Every case is assembled by GNU as and by isa.ppu.asm and the bytes compared;
nothing here states an expected encoding.  Mnemonics and operand kinds come
from the instruction table; spellings, directives and comment placements are
generated from the forms GNU as's manual documents ("Using as", chapters
"Syntax", "Expressions", "Assembler Directives", "PowerPC Dependent Features").
"""
from __future__ import annotations

import random
import re

from isa.ppu.instructions import INSTRUCTIONS

from _ppu_cases import scalar_cases

# --------------------------------------------------------------------------
# Single statements (one instruction each; batched into one GNU as run)

# Comments GNU as removes; each must leave the statement intact.
COMMENTS = ("/* c */", "/**/", "/* # ; , */", "/* \" ' */", "/* / * */", "/***/")
MULTILINE = ("/* spans\n   lines */", "/*\n*/", "/* one\n two\n three */")

_NUM = re.compile(r"(?<![\w.$%'])(\d+)(?![\w.$])")


def _equivalent(rng: random.Random, n: int) -> str:
    """Another spelling GNU as evaluates to n (>= 0)."""
    # Parenthesised where an operator is involved: the spelling replaces a number
    # inside a larger expression (4*cr3, .-8).
    forms = [hex(n), f"({n})", f"({n + 1}-1)", f"({n}*1)", f"(({n}<<1)>>1)", f"({n}+0)"]
    if n < 64:
        forms.append(f"0b{n:b}")
    if 0 < n < 0o1000:
        forms.append(f"0{n:o}")
    if 33 <= n <= 126 and chr(n) not in "\\'\"#;/*":
        forms.append(f"'{chr(n)}")
        forms.append(f"'{chr(n)}'")
    return rng.choice(forms)


def _respell_numbers(rng: random.Random, stmt: str) -> str:
    mn, sep, ops = stmt.partition(" ")
    return mn + sep + _NUM.sub(lambda m: _equivalent(rng, int(m.group(1))), ops)


def _with_comment(rng: random.Random, stmt: str, where: str, comment: str) -> str:
    mn, _, ops = stmt.partition(" ")
    if where == "before":
        return f"{comment} {stmt}"
    if where == "after_mnemonic":
        return f"{mn}{comment}{ops}" if ops else f"{mn}{comment}"
    if where == "after_commas" and "," in ops:
        return f"{mn} " + ("," + comment).join(ops.split(","))
    if where == "before_commas" and "," in ops:
        return f"{mn} " + (comment + ",").join(ops.split(","))
    if where == "inside_operand" and ops:
        # between the characters of an operand expression: only next to an operator
        k = ops.find("+")
        if k > 0:
            return f"{mn} {ops[:k]}{comment}+{comment}{ops[k + 1:]}"
        return f"{mn} {comment}{ops}{comment}"
    return f"{stmt} {comment}"


COMMENT_PLACES = ("before", "after_mnemonic", "after_commas", "before_commas",
                  "inside_operand", "after")


def statement_cases(seed: int = 11) -> list[str]:
    """Every instruction and extended mnemonic GNU as knows (representative
    operands from _ppu_cases), each also respelled: numbers as other expressions,
    upper case, block comments (one-line and spanning lines) in every position,
    '#' comments and ';' separators."""
    rng = random.Random(seed)
    base = scalar_cases(per_instruction=1, per_alias=1, seed=seed)
    out = list(base)
    for i, stmt in enumerate(base):
        place = COMMENT_PLACES[i % len(COMMENT_PLACES)]
        kind = i % 8
        if kind == 0:
            out.append(_respell_numbers(rng, stmt))
        elif kind == 1:
            out.append(stmt.upper())
        elif kind in (2, 3):
            out.append(_with_comment(rng, stmt, place, rng.choice(COMMENTS)))
        elif kind == 4:
            out.append(_with_comment(rng, stmt, place, rng.choice(MULTILINE)))
        elif kind == 5:
            out.append(f"{stmt} # {rng.choice(COMMENTS)} ; not a statement")
        elif kind == 6:
            out.append(f"{_respell_numbers(rng, stmt)} ; nop /* after */")
        else:
            out.append(_with_comment(rng, _respell_numbers(rng, stmt), place,
                                     rng.choice(COMMENTS + MULTILINE)))
    return out


def compare_cases() -> list[str]:
    """cmp/cmpl/cmpi/cmpli in the L-omitted (32-bit) forms and with L written."""
    out = []
    imm = {"cmpi": (-32768, -1, 0, 128, 32767), "cmpli": (0, 12, 0x8000, 65535)}
    regs = ("3", "r4", "%r31", "0")
    for bf in range(8):
        bfs = (str(bf), f"cr{bf}")[bf % 2]
        ra = regs[bf % len(regs)]
        rb = regs[(bf + 1) % len(regs)]
        for mn in ("cmp", "cmpl"):
            out.append(f"{mn} {bfs}, {ra}, {rb}")
            out.append(f"{mn} {bfs}, {bf % 2}, {ra}, {rb}")
        for mn, vals in imm.items():
            v = vals[bf % len(vals)]
            out.append(f"{mn} {bfs}, {ra}, {v}")
            out.append(f"{mn} {bfs}, 0, {ra}, {v}")
            out.append(f"{mn} {bfs},{ra},{hex(v) if v >= 0 else v}")
    out += ["cmpi 0, 4, 128", "cmpli 1, 4, 12", "cmp 0, 3, 4", "cmpl 1, 3, 4",
            "cmpi cr7, r31, -32768", "cmpli 4*1+3, 0, 7", "cmp 2, /* L omitted */ 5, 6",
            "cmpl 7,\t1,\t2"]
    return out


# --------------------------------------------------------------------------
# Whole programs (one GNU as + ld run each)

def _data_cases(rng):
    sizes = {".byte": 1, ".short": 2, ".hword": 2, ".2byte": 2, ".word": 2, ".long": 4,
             ".int": 4, ".4byte": 4, ".quad": 8, ".8byte": 8}
    for d, n in sizes.items():
        bits = 8 * min(n, 4)
        lo, hi = -(1 << (bits - 1)), (1 << bits) - 1
        vals = [str(lo), str(hi), "0", "-1", "'a", "'\\n'", "2*3+1", "~0x10 & 0xff",
                "sym", "sym + 1", "(1 << 3) | 1"]
        yield f"data{d}", (f"sym = 5\nlab: .long 7\n\t{d} " + ", ".join(vals) + "\n")
        if n in (2, 4):     # ELF32 PowerPC has 16- and 32-bit absolute relocations
            yield f"data{d}_labels", f"a: .long 0\n\t{d} a, b, b - a, lab - .\nb:\nlab:\n"
    yield "data_empty_operand_lists", ".long\n.byte\n.short\n"
    yield "data_byte_string", '.byte "ab\\0"\n.byte ""\n.byte "x" \n'
    yield "data_suffixes", ("x: nop\n.long x@l, x@h, x@ha, (x+0x8000)@ha, x@l+4\n"
                            ".short x@l, 0x12345678@h, 0x1234fffe@L+4\n")


def _string_cases(rng):
    escapes = ['"plain"', '"tab\\tnl\\ncr\\rbs\\bff\\fvt\\v"', '"\\101\\60\\0\\08\\777"',
               '"\\x41\\x4a\\X7f\\x123"', '"\\\\ \\" \\z \\q"', '""', '"a" "b"', '"a""b"',
               '"it\'s /* not */ # a comment ; really"']
    for d in (".ascii", ".asciz", ".string"):
        for i, e in enumerate(escapes):
            yield f"str{d}_{i}", f"\t{d} {e}\n"
        yield f"str{d}_list", f'\t{d} "a", "bc" , "d" "e"\n'


def _fill_space_cases(rng):
    for rep in (0, 1, 3):
        for size in (1, 2, 3, 4, 5, 8):
            for value in ("0x0102030405", "-1", "0x7f"):
                yield f"fill_{rep}_{size}_{value}", f".byte 0x55\n.fill {rep}, {size}, {value}\n"
    yield "fill_defaults", ".fill 3\n.fill 2, 2\n"
    for d in (".skip", ".space"):
        yield f"{d[1:]}", f".byte 1\n{d} 3\n{d} 2, 0xab\n{d} 1, -1\n{d} 2 * 2, 'x\n"
    yield "zero", ".byte 1\n.zero 5\n"


def _align_cases(rng):
    forms = []
    for d, arg in ((".align", 3), (".p2align", 3), (".balign", 8), (".align", 0),
                   (".balign", 0), (".balign", 1), (".p2align", 4), (".balign", 16)):
        forms += [f"{d} {arg}", f"{d} {arg}, 0xee", f"{d} {arg},,3", f"{d} {arg},, 7",
                  f"{d} {arg}, 0x5a, 5", f"{d} {arg},,0"]
    forms += [".balignw 8, 0x1234", ".p2alignw 3, 0xabcd", ".balignl 16, 0x11223344",
              ".p2alignl 4, 0x55667788, 12", ".balignl 16, 0x11223344, 4"]
    for i, f in enumerate(forms):
        pre = rng.choice(("", ".byte 1", ".short 1", ".byte 1,2,3", ".long 1", "nop",
                          ".byte 1,2,3,4,5", ".long 1,2,3"))
        if ("w " in f and pre in (".byte 1", ".byte 1,2,3", ".byte 1,2,3,4,5")) or \
                ("l " in f and pre.startswith((".byte", ".short"))):
            pre = ".long 9"         # w/l patterns need whole units of padding
        yield f"align_text_{i}", f"{pre}\n{f}\n.byte 0x77\n"
        yield f"align_data_{i}", f".text\nnop\n.data\n{pre}\n{f}\n.byte 0x77\n"


def _symbol_cases(rng):
    yield "set_forms", (".set A, 5\n.equ B, A * 3\nC = (B << 2) | 1\n.equiv D, C - 1\n"
                        "E == D + 1\n.eqv F, E * 2\n.long A, B, C, D, E, F\n")
    yield "set_redefine", ".set A, 1\n.long A\n.set A, A + 1\n.long A\nA = A * 10\n.long A\n"
    yield "set_forward", "li 3, A\n.long A\n.set A, 5\n.long A\n.set A, 6\n.long A\n"
    yield "set_forward_label", ".long A\n.set A, later\nlater: .long A\n"
    yield "eqv_lazy", ".eqv F, X + 1\nX = 1\n.long F\nX = 5\n.long F\n"
    yield "label_after_set", "x = 5\n.long x\nx: nop\n.long x\n"
    yield "dot_assign", ".long 1\n. = 8\n.long 2\n. = . + 4\n.long 3\n.org 0x20, 0xaa\n.long 4\n"
    yield "dot_assign_data", ".text\nnop\n.data\n.long 1\n. = . + 6\n.byte 2\n.org 16\n.long 3\n"
    yield "labels_many", "a: b: c: nop\nd:\ne: .long a, b, c, d, e\n"
    yield "local_labels", ("1: nop\n2: b 1b\nb 1f\n1: b 2b\nbeq 1b\n10: bne 10f\n10: bdnz 10b\n"
                           "99: .long 99b\n")
    yield "symbol_chars", "x$y: nop\n.L1: b x$y\n_a.b: b .L1\n__c: .long _a.b, x$y, __c\n"
    yield "ha_lo", ("lis 4, table@ha\naddi 4, 4, table@l\nlwz 5, table@l(4)\n"
                    "lis 6, (table + 0x8123)@ha\nli 7, table@l+4\nlis 8, table@h\n"
                    ".data\n.long 0\ntable: .long 1, 2\n")
    yield "expressions", ("li 3, 1 + 2 * 3\nli 3, (1 + 2) * 3\nli 3, 10 % 3\nli 3, -10 / 3\n"
                          "li 3, -7 % 3\nli 3, 1 << 4 | 1\nli 3, 3 & 1 + 1\nli 3, 1 == 1\n"
                          "li 3, 1 != 1\nli 3, 1 <> 2\nli 3, 2 < 3\nli 3, 2 >= 3\nli 3, 1 && 0\n"
                          "li 3, 1 || 0\nli 3, !5\nli 3, ~5\nli 3, 7 ! 1\nli 3, - - 5\n"
                          "li 3, 0b101 + 0B11 + 0X1F + 017\nli 3, 'a + 'b'\nli 3, 8 >> 1 + 1\n")
    yield "register_names", ("mr %r3, %r4\nmr 3, R4\nmr sp, rtoc\nmtctr sp\nmtspr lr, 3\n"
                             "mfspr 3, ctr\nmtspr xer, 4\nmfspr 5, srr0\nmtspr srr1, 6\n"
                             "mtspr dec, 7\nmtspr dar, 8\nmtspr sdr1, 9\n"
                             "crand 4*cr1+lt, 4*cr2+gt, 4*cr7+so\nbc 12, cr1*4+eq, .\n"
                             "cmpw cr0+1, 3, 4\nbc 4, un, .+8\n")
    yield "globals_types", (".globl f\n.global g\n.type f, @function\n.type g, %function\n"
                            '.type h, "function"\n.type k, STT_FUNC\n.type o, @object\n'
                            "f: g: h: k: o: nop\n.size f, .-f\n.size g, 4\n.local q\n"
                            '.weak w\n.hidden f\n.file "x.c"\n.ident "test"\n'
                            ".gnu_attribute 4, 1\nw: blr\n.internal w\n.protected f\n"
                            '.list\n.nolist\n.title "t"\n.sbttl "s"\n.psize 60, 200\n.eject\n'
                            ".machine any\n.text 0\n.data 0\n.long 3\n")


def _section_cases(rng):
    yield "sections_basic", ".text\nnop\n.data\n.long 1\n.bss\n.skip 8\n.text\nli 3, 1\n"
    yield "section_flags", ('.section .text.a,"ax",@progbits\nnop\n'
                            '.section .text.b,"ax"\nli 3, 1\n.section .text\nli 4, 1\n')
    yield "section_quoted", '.section ".text","ax",@progbits\nnop\n.section ".data"\n.long 5\n'
    yield "section_rodata", ('.section .rodata,"a"\nx: .long 5\n.text\nlis 3, x@ha\n'
                             "addi 3, 3, x@l\n")
    yield "section_bss", ('.section .bss,"aw",@nobits\ny: .skip 8\n.text\nlis 3, y@ha\n'
                          "addi 3, 3, y@l\n")
    yield "section_nobits_custom", ('.section .mybss,"aw",%nobits\n.skip 4\n'
                                    ".text\nnop\n")
    yield "section_not_allocated", ".section .foo\n.long 1\n.text\nnop\n.section .note.x\n.byte 1\n"
    yield "section_stack", (".text\nnop\n.pushsection .data\n.long 3\n.popsection\nnop\n"
                            ".data\n.long 1\n.text\n.previous\n.long 2\n.previous\nli 3, 3\n")
    yield "section_data_sub", ('.section .data.x,"aw"\n.long 9\n.text\nnop\n')
    yield "section_merge_alignment", ('.data\n.byte 1\n.section .data.x,"aw"\n.byte 2\n'
                                      '.section .rodata\n.byte 3\n.section .rodata.y,"a"\n'
                                      '.byte 4\n.text\nnop\n.section .text.z,"ax"\n.byte 5\n'
                                      '.section .data.w,"aw"\n.balign 4\n.long 6\n')
    yield "section_org_align", (".section .text\nf: nop\n.align 4\nblr\n.org 0x40\nwait\n"
                                ".section .rodata\nmsg: .asciz \"hello\"\n.data\nd: .long msg, f, d\n"
                                ".text\nlwz 3, d@l(0)\n.byte 1\n.align 2\n.p2align 3\ntrap\n")


def _macro_cases(rng):
    yield "macro_defaults", (".macro m a, b=2\nli 3, \\a + \\b\n.endm\nm 1\nm 1, 5\nm b=7, a=1\n"
                             "m 1 5\nm 1,\nm ,4\n")
    yield "macro_blank_separated", (".macro m a b c\n.long \\a, \\b, \\c\n.endm\nm 1 2 3\n"
                                    "m 1, 2, 3\nm 1,2 3\nm 1 , 2 , 3\nm 1 + 1 2 - 1 3 * 2\nm (1 + 1), 2, 3\n")
    yield "macro_space_rules", (".macro m a b\n.ascii \"[\\a|\\b]\"\n.endm\nm   1   2  \n"
                                "x: m 1 2\n.ascii \"\";  m 1 2\nm 1 +2\nm 1+ 2\nm (1 2) 3\n"
                                'm "a b" c\nm %r1 %r2\nm a[1] b\nm a: b\n')
    yield "macro_quoted", ('.macro m a, b\n.ascii "\\a|\\b"\n.endm\nm "x, y", "z"\n'
                           'm "a\\"b", c\n.macro n a\n.long \\a\n.endm\nn "1 + 2"\n'
                           'n "(3 * 4)"\n')
    yield "macro_quoted_default", '.macro m a="x y" b=z\n.ascii "\\a\\b"\n.endm\nm\nm , "q r"\n'
    yield "macro_req_vararg", (".macro m a:req, b:vararg\n.long \\a\n.ascii \"[\\b]\"\n.endm\n"
                               "m 1\nm 1, 2, 3\nm 1 2 3\nm 1,2 , 3\n")
    yield "macro_recursive", ('.macro sum from=0, to=5\n.long \\from\n.if \\to-\\from\n'
                              'sum "(\\from+1)",\\to\n.endif\n.endm\nsum 0, 5\nsum 3\n')
    yield "macro_exitm", (".macro m a\n.if \\a > 2\n.exitm\n.endif\nli 3, \\a\n.endm\nm 1\nm 5\n"
                          "m 2\n.macro n\n.rept 3\nnop\n.exitm\n.endr\nli 4, 4\n.endm\nn\n")
    yield "macro_counter_concat", (".macro count\nlbl\\@: b lbl\\@\n.endm\ncount\ncount\n"
                                   ".macro cat a, b\n.long \\a\\()\\b, \\(q)\\b\n.endm\n"
                                   "q2 = 7\nq4 = 8\ncat 1, 2\ncat 3, 4\n")
    yield "macro_ampersand", ".macro m a\n.long 3&a, 3&a&4, 4 & 1\n.endm\nm 1\n"
    yield "macro_tokens", (".macro m a, a1\n.long \\a1, \\a\n.ascii \"\\a.\\a's\\q\"\n.endm\n"
                           "m 5, 6\n")
    yield "macro_case", ".macro Mixed a\nli 3, \\a\n.endm\nmixed 1\nMIXED 2\nMixed 3\n"
    yield "macro_named_like_insn", ".macro li a, b\n.long \\a, \\b\n.endm\nli 3, 4\n"
    yield "macro_nested_def", (".macro outer name\n.macro \\name x\n.long \\x\n.endm\n.endm\n"
                               "outer inner\ninner 9\n.purgem inner\nouter inner\ninner 10\n")
    yield "macro_purgem", ".macro m\nnop\n.endm\nm\n.purgem m\n.macro m\nblr\n.endm\nm\n"
    yield "macro_nested_call", (".macro inner a b\n.ascii \"[\\a|\\b]\"\n.endm\n"
                                ".macro outer x y\ninner \\x \\y\n.endm\nouter 1 2\n")
    yield "macro_comma_after_name", ".macro m, a, b\n.long \\a, \\b\n.endm\nm 1, 2\n"
    yield "macro_comments", (".macro m a /* params */\nli 3, \\a /* body */ # tail\n"
                             ".endm /* end */\nm 5 /* invocation */\nm /* before */ 6\n")
    yield "macro_conditional_args", (".macro m a\n.ifc \\a, r3\nli 3, 1\n.else\nli 4, 1\n"
                                     ".endif\n.ifb \\a\nnop\n.endif\n.ifnb \\a\n.ascii \"\\a\"\n.balign 4\n"
                                     ".endif\n.endm\nm r3\nm 7\nm\n")
    yield "macro_labels_inside", (".macro loop n\n1: addic. 3, 3, -1\nbne 1b\n.endm\n"
                                  "li 3, 5\nloop\nloop\nb 1b\n")


def _repeat_cases(rng):
    yield "rept", ".rept 3\nnop\n.endr\n.rept 0\ntrap\n.endr\n.rept\ntrap\n.endr\n.rept 3-1\nli 3,1\n.endr\n"
    yield "rept_nested", ".rept 2\n.rept 2\nli 3, 1\n.endr\n.irp x,1,2\n.long \\x\n.endr\n.endr\n"
    yield "rep_alias", ".rep 2\nnop\n.endr\n.irep x,1,2\n.long \\x\n.endr\n.irepc x,12\n.long \\x\n.endr\n"
    yield "rept_exitm", ".rept 2\nnop\n.exitm\n.endr\nli 4, 4\n"
    yield "irp_forms", (".irp r, 1, 2, 3\nli \\r, \\r\n.endr\n.irp r 4 5\nli \\r, 0\n.endr\n"
                        ".irp r\n.long 5\n.endr\n.irp x, 1 ,, 3\n.ascii \"[\\x]\"\n.endr\n"
                        ".irp x, , 2\n.ascii \"[\\x]\"\n.endr\n.irp x, 1, 2, \n.ascii \"[\\x]\"\n.endr\n")
    yield "irp_strings", ('.irp x, "ab" c\n.ascii "[\\x]"\n.endr\n.irp x, "a\\"b", ""\n'
                          '.ascii "[\\x]"\n.endr\n.irp x, (1 2) 3\n.ascii "[\\x]"\n.endr\n')
    yield "irp_counter", ".irp x,1,2\n.long \\@, 4&x\n.endr\n"
    yield "irpc_forms", ('.irpc x, 123\nli 3, \\x\n.endr\n.irpc x, a b\n.ascii "\\x"\n.endr\n'
                         '.irpc x, "ab"\n.ascii "\\x"\n.endr\n.irpc x, "a b"\n.ascii "\\x"\n.endr\n'
                         ".irpc x, (a b)\n.ascii \"[\\x]\"\n.endr\n.irpc x\n.ascii \"\\x.\"\n.endr\n")


def _conditional_cases(rng):
    exprs = {".if": ("1", "0", "2 > 1", "A - 5"), ".ifne": ("0", "3"), ".ifeq": ("0", "A"),
             ".ifgt": ("1", "0", "-1"), ".ifge": ("0", "-1"), ".iflt": ("-1", "0"),
             ".ifle": ("0", "1")}
    for d, es in exprs.items():
        for e in es:
            yield f"cond{d}_{e}", (f"A = 5\n{d} {e}\nli 3, 1\n.else\nli 3, 2\n.endif\n"
                                  f"{d} {e}\nli 4, 1\n.elseif A == 5\nli 4, 2\n.else\nli 4, 3\n.endif\n")
    for d in (".ifdef", ".ifndef", ".ifnotdef"):
        yield f"cond{d}", (f"{d} A\nli 3, 1\n.endif\nA = 1\n{d} A\nli 3, 2\n.endif\n"
                           f"{d} lab\nli 3, 3\n.endif\nlab: {d} lab\nli 3, 4\n.endif\n"
                           f"{d} r3\nli 3, 5\n.endif\n")
    for d in (".ifc", ".ifnc"):
        pairs = ("a,a", "a,b", " a , a ", "a,a ", "A,a", ",", '"a b", "a b"', '"a b", a b',
                 "a b,a  b", "a+1, a + 1")
        body = "".join(f"{d} {p}\n.byte {i}\n.endif\n" for i, p in enumerate(pairs))
        yield f"cond{d}", body
    for d in (".ifeqs", ".ifnes"):
        pairs = ('"a", "a"', '"a", "b"', '"", ""', '"a\\"", "a\\""')
        body = "".join(f"{d} {p}\n.byte {i}\n.endif\n" for i, p in enumerate(pairs))
        yield f"cond{d}", body
    for d in (".ifb", ".ifnb"):
        body = "".join(f"{d}{a}\n.byte {i}\n.endif\n"
                       for i, a in enumerate(("", "   ", " x", " ,", " /* c */", " 0")))
        yield f"cond{d}", body
    yield "cond_nested", (".if 0\n.if 1\ntrap\n.else\ntrap\n.endif\n.elseif 1\n.if 0\ntrap\n"
                          ".elseif 1\nli 3, 1\n.endif\n.else\ntrap\n.endif\n")
    yield "cond_skipped_macro", ".if 0\n.macro m\ntrap\n.endm\n.endif\n.macro m\nnop\n.endm\nm\n"
    yield "cond_same_line", ".if 1 ; nop ; .endif\n.if 0 ; trap ; .endif\n"
    yield "cond_comments", ".if 1 /* cond */\nnop\n.else /* else */\ntrap\n.endif /* endif */\n"


def _comment_cases(rng):
    yield "comment_block_lines", "nop\n/* multi\nline */\nnop\n/*\n * banner\n */\nli 3, 1\n"
    yield "comment_join_operands", "li 3, /* a\nb */ 4\nli 5, 6 /* x\ny */\naddi 3, /*\n*/ 4, 5\n"
    yield "comment_join_statements", "li 3, 1 /* a\nb\nc */ ; li 4, 2\n"
    yield "comment_before_label", "/* c */ label: nop\nlabel2: /* c */ nop\nb label\nb label2\n"
    yield "comment_in_directives", (".set /* c */ X, 1\n.long X /* c */, /* d */ 2\n"
                                    ".rept 2 /* count */\nnop /* body */\n.endr /* end */\n"
                                    ".irp r, /* x */ 1, 2\nli \\r, 0\n.endr\n")
    yield "comment_strings", '.ascii "/*", "*/", "#"\n.ascii "a" /* "b" */\n.byte \'#, \'/\n'
    yield "comment_hash_and_block", "li 3, 1 # /* not open\nnop\nli 4, 2 /* # */ ; li 5, 3\n"
    yield "comment_stars", ".long 1 /***/\n.long 2 /* ** / */\n/* a */ /* b */ nop /* c */\n"
    yield "comment_inside_macro_call", (".macro m a b\n.long \\a, \\b\n.endm\nm 1 /* x */ 2\n"
                                        "m 3, /* spans\n */ 4\n")
    yield "directive_case", (".LONG 1\n.Byte 2,3,4,5\n.MACRO M a\n.long \\a\n.ENDM\nm 3\n"
                             ".REPT 2\nnop\n.ENDR\n.IF 1\nnop\n.ELSE\ntrap\n.ENDIF\n"
                             ".IRP x,1\n.long \\x\n.ENDR\n.Set Q, 4\n.long Q\n")
    yield "separators", "nop ; nop;nop ;; li 3, ';' ; .byte ';', '#\n"
    yield "char_constants", ".byte '\\0', '\\n', '\\v', '\\a', '\\\\', '\\'', '\"', 'a'+1, 'a+1\n"


# Statements whose every blank and every comma gets a comment in turn (prefix and
# suffix lines make the statement's context).
GRID = (
    ("", ".long 1, 2 + 3, 4", ""),
    ("", ".set X, 3", ".long X"),
    ("", 'X = 7', ".long X"),
    ("", '.ascii "a b", "c"', ""),
    (".byte 1", ".balign 8, 0x11, 7", ""),
    ("", ".fill 2, 2, 0x0102", ""),
    ("", ".rept 2", "nop\n.endr"),
    ("", ".irp r, 3, 4", "li \\r, 1\n.endr"),
    ("", ".if 2 > 1", "nop\n.endif"),
    ("", ".ifc a, a", "nop\n.endif"),
    (".macro m a, b=2\n.long \\a, \\b\n.endm", "m 1, 5", ""),
    ("", ".macro m2 a b", ".long \\a, \\b\n.endm\nm2 6 7"),
    ("", "lab: addi 3, 4, lab@l", ""),
    ("", '.section .data, "aw"', ".long 1"),
    ("", "cmpi 1, 4, 12", ""),
)


def _grid_cases(rng):
    for i, (pre, stmt, post) in enumerate(GRID):
        outside = [stmt[:k].count('"') % 2 == 0 for k in range(len(stmt))]
        spots = [k for k, c in enumerate(stmt) if c == " " and outside[k]] + \
                [k + 1 for k, c in enumerate(stmt) if c == "," and outside[k]]
        for j, k in enumerate(sorted(set(spots))):
            for comment in ("/* c */", "/* spans\n lines */"):
                text = stmt[:k] + comment + stmt[k:]
                multi = "\n" in comment
                yield (f"grid_{i}_{j}_{'multi' if multi else 'one'}",
                       "\n".join(x for x in (pre, text, post) if x) + "\n")


def program_cases(seed: int = 5) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for gen in (_data_cases, _string_cases, _fill_space_cases, _align_cases, _symbol_cases,
                _section_cases, _macro_cases, _repeat_cases, _conditional_cases, _comment_cases,
                _grid_cases):
        out += list(gen(rng))
    names = [n for n, _ in out]
    assert len(names) == len(set(names)), "case names must be unique"
    return out


def instruction_count() -> int:
    """Instructions of the table GNU as can check (the fxv extension is nux-only)."""
    return sum(1 for i in INSTRUCTIONS if i.primary != 4)
