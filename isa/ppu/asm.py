"""Two-pass assembler for the PPU, compatible with GNU as for PowerPC as far as
the firmware uses it (see docs/ppu.md for the supported subset).

Pass 1 lays out every section (instruction and data sizes never depend on
symbol values defined later); sections are then placed like GNU ld with
-Ttext/-Tdata; pass 2 runs the same statements again with final addresses
and is the only pass that reports diagnostics, so each is reported once.
The output is a linked program: no relocations remain.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from ._expr import ExprError, Result, Token, Undefined, evaluate
from .codec import EncodingError, alias_fields, encode_instruction
from .instructions import CR_BIT_NAMES, Instruction, Operand, lookup

__all__ = ["Diagnostic", "AsmError", "Section", "Program", "assemble", "assemble_file"]

NOP = 0x60000000


# --------------------------------------------------------------------------
# Diagnostics


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int           # 1-based
    col: int            # 1-based
    length: int
    message: str
    source: str         # the source line the span points into
    severity: str = "error"
    notes: tuple[str, ...] = ()

    def format(self) -> str:
        caret_pad = "".join("\t" if c == "\t" else " " for c in self.source[:self.col - 1])
        out = [f"{self.file}:{self.line}:{self.col}: {self.severity}: {self.message}",
               self.source, caret_pad + "^" * max(1, self.length)]
        return "\n".join(out + list(self.notes))


class AsmError(Exception):
    """Assembly failed; `diagnostics` holds every error found."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__(self.format())

    def format(self) -> str:
        return "\n".join(d.format() for d in self.diagnostics) + "\n"


class _StmtError(Exception):
    def __init__(self, message: str, col: int, length: int = 1):
        super().__init__(message)
        self.col, self.length = col, length


# --------------------------------------------------------------------------
# Output


@dataclass
class Section:
    name: str
    data: bytearray = field(default_factory=bytearray)
    align: int = 1             # GNU as: grows with instructions (4) and alignment directives
    code: bool = False
    nobits: bool = False       # .bss: occupies memory, no file contents
    address: int = 0
    alloc: bool = True         # occupies memory (GNU as: flag "a", or a known name)

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class Program:
    sections: dict[str, Section]
    symbols: dict[str, int]            # name -> absolute address/value
    globals: set[str]
    symbol_sections: dict[str, str]    # label -> section name (absent for absolute symbols)
    entry: int = 0

    def image(self) -> bytes:
        """Flat memory image from address 0 covering every placed section."""
        placed = [s for s in self.sections.values() if s.size]
        end = max((s.address + s.size for s in placed), default=0)
        buf = bytearray(end)
        for s in placed:
            if not s.nobits:
                buf[s.address:s.address + s.size] = s.data
        return bytes(buf)

    def to_elf(self) -> bytes:
        from .elf import write_elf
        return write_elf(self)


# --------------------------------------------------------------------------
# Source handling


@dataclass(frozen=True)
class _Line:
    file: str
    lineno: int
    text: str
    note: str | None = None       # "in expansion of macro ..." context
    # Where `text` came from when it is not one source line verbatim (comments
    # removed, character constants replaced, lines joined by a comment):
    # (offset in text, line number, column in that line, that line's text).
    origin: tuple[tuple[int, int, int, str], ...] = ()
    # An error found while reading the line: (line number, column, length, message,
    # source line), reported when the line is reached.
    error: tuple[int, int, int, str, str] | None = None

    def locate(self, col: int) -> tuple[int, int, str]:
        """Column in `text` -> (line number, column, source line)."""
        for off, lineno, pcol, src in reversed(self.origin):
            if col >= off:
                return lineno, min(pcol + col - off, len(src)), src
        return self.lineno, col, self.text


@dataclass
class _Macro:
    name: str
    params: list["_Param"]
    body: list[_Line]


# Escapes in a character constant, as GNU as's input scrubber reads them
# (app.c, process_escape): any other character stands for itself, so '\0' is '0'.
_CHAR_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "'": "'", '"': '"'}
_PLAIN = re.compile(r"[^\"'#/]+|/")


def _scrub(name: str, text: str) -> list[_Line]:
    """Source text -> statement lines, like GNU as's input scrubber (app.c).

    '#' starts a comment to the end of the line; '/* */' comments may appear
    anywhere and become one space, and a comment spanning lines joins them into
    one line (text before it and after it form one statement line, as in GNU as);
    a character constant 'c (or 'c') becomes its decimal value.  Strings are kept
    verbatim.  An unterminated '/*' is an error that names where it began.
    """
    phys = text.splitlines()
    out: list[_Line] = []
    k = 0
    while k < len(phys):
        first = k
        src, i = phys[k], 0
        buf: list[str] = []
        n = 0
        origin = [(0, k + 1, 0, src)]
        changed = False
        error = None
        while i < len(src):
            c = src[i]
            if c == '"':
                j = i + 1
                while j < len(src) and src[j] != '"':
                    j += 2 if src[j] == "\\" else 1
                j = min(j + 1, len(src))
            elif c == "'":
                j = i + 1
                if j < len(src):
                    ch = src[j]
                    j += 1
                    if ch == "\\" and j < len(src):
                        ch = _CHAR_ESCAPES.get(src[j], src[j])
                        j += 1
                else:
                    ch = "\n"          # GNU as takes the newline itself
                if j < len(src) and src[j] == "'":
                    j += 1
                v = str(ord(ch) if ord(ch) < 256 else ch.encode("utf-8")[0])
                buf.append(v)
                n += len(v)
                i = j
                origin.append((n, k + 1, i, src))
                changed = True
                continue
            elif c == "#":
                changed = True
                break
            elif src.startswith("/*", i):
                start = (k + 1, i, src)
                j = src.find("*/", i + 2)
                while j < 0 and k + 1 < len(phys):
                    k += 1
                    src = phys[k]
                    j = src.find("*/")
                if j < 0:
                    error = (start[0], start[1], 2, "unterminated comment: '/*' without '*/'",
                             start[2])
                    break
                i = j + 2
                buf.append(" ")
                n += 1
                origin.append((n, k + 1, i, src))
                changed = True
                continue
            else:
                j = _PLAIN.match(src, i).end()
            buf.append(src[i:j])
            n += j - i
            i = j
        k += 1
        if changed or error:
            out.append(_Line(name, first + 1, "".join(buf), origin=tuple(origin), error=error))
        else:
            out.append(_Line(name, first + 1, src))
    return out


def _split_statements(text: str) -> list[tuple[str, int]]:
    """Split a line at ';' outside strings -> [(statement, col)] (stripped)."""
    pieces, start, i = [], 0, 0
    while i < len(text):
        c = text[i]
        if c == '"':
            i += 1
            while i < len(text) and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c == ";":
            pieces.append((start, i))
            start = i + 1
        i += 1
    pieces.append((start, len(text)))
    out = []
    for a, b in pieces:
        seg = text[a:b]
        out.append((seg.strip(), a + len(seg) - len(seg.lstrip())))
    return out


def _split_top(text: str, sep: str, base: int) -> list[tuple[str, int]]:
    """Split at `sep` outside parentheses and strings -> [(piece, col)] (stripped)."""
    pieces, depth, start, in_str = [], 0, 0, False
    i = 0
    while i < len(text):
        c = text[i]
        if in_str:
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == sep and depth == 0:
            pieces.append((start, i))
            start = i + 1
        i += 1
    pieces.append((start, len(text)))
    out = []
    for a, b in pieces:
        seg = text[a:b]
        lead = len(seg) - len(seg.lstrip())
        out.append((seg.strip(), base + a + lead))
    return out


_LABEL = re.compile(r"\s*([A-Za-z_.$][\w.$]*|\d+)\s*:(?!=)")
_REG = re.compile(r"%?(r|cr|v)(\d+)$", re.I)
_REG_ALIASES = {"sp": 1, "rtoc": 2}
# Special purpose register names GNU as (-mregnames) takes for an SPR operand.
_SPR_NAMES = {"xer": 1, "lr": 8, "ctr": 9, "dar": 19, "dec": 22, "sdr1": 25, "srr0": 26,
              "srr1": 27}

# String escapes (GNU as next_char_of_string): \\NNN takes up to three digits
# 0-9 in base 8, \\x all the hex digits that follow; others stand for themselves.
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v"}


def _parse_string(s: str, col: int) -> bytes:
    """One string operand: "..." strings, juxtaposed ones concatenated ("a" "b")."""
    out = bytearray()
    i = 0
    while True:
        if i >= len(s) or s[i] != '"':
            what = "expected a string in double quotes" if not out and i == 0 else \
                f"junk '{s[i:]}' after string"
            raise _StmtError(what, col + i, max(1, len(s) - i))
        start, i = i, i + 1
        while True:
            if i >= len(s):
                raise _StmtError("missing closing '\"'", col + start, len(s) - start)
            c = s[i]
            if c == '"':
                i += 1
                break
            if c == "\\" and i + 1 < len(s):
                n = s[i + 1]
                if n.isdigit():
                    m = re.match(r"[0-9]{1,3}", s[i + 1:])
                    v = 0
                    for d in m.group():
                        v = v * 8 + int(d)
                    out.append(v & 0xFF)
                    i += 1 + len(m.group())
                    continue
                if n in "xX":
                    m = re.match(r"[0-9a-fA-F]*", s[i + 2:])
                    out.append(int(m.group() or "0", 16) & 0xFF)
                    i += 2 + len(m.group())
                    continue
                out += _ESCAPES.get(n, n).encode("utf-8")
                i += 2
                continue
            out += c.encode("utf-8")
            i += 1
        while i < len(s) and s[i] in " \t":
            i += 1
        if i >= len(s):
            return bytes(out)


# --------------------------------------------------------------------------
# Macros, repeats and conditionals, read the way GNU as reads them (macro.c:
# do_formals, get_any_string, macro_expand; cond.c).


@dataclass(frozen=True)
class _Param:
    name: str
    default: str = ""
    required: bool = False
    vararg: bool = False


@dataclass
class _Cond:
    line: _Line
    col: int
    word: str
    active: bool
    taken: bool          # some branch of this .if has been assembled (or must be skipped)
    past_else: bool


class _ExitExpansion(Exception):
    """.exitm: leave the innermost macro or repeat expansion."""


_CONDITIONALS = frozenset((".if", ".ifdef", ".ifndef", ".ifnotdef", ".ifeq", ".ifne", ".ifgt",
                           ".ifge", ".iflt", ".ifle", ".ifb", ".ifnb", ".ifc", ".ifnc",
                           ".ifeqs", ".ifnes", ".else", ".elseif", ".endif"))
_REPEATS = (".rept", ".rep", ".irp", ".irep", ".irpc", ".irepc")
_NAME = re.compile(r"[A-Za-z_.$][\w.$]*")
_FIRST_WORD = re.compile(r"\s*(\.[A-Za-z_][\w$]*)(?![\w.$])")
_WORDISH = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.$%\"\\")
_ISSEP = frozenset(" \t,\";()<>")


def _string_end(text: str, i: int) -> int:
    """Index after the string starting at text[i] == '"' (or the end of the text)."""
    i += 1
    while i < len(text) and text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return min(i + 1, len(text))


def _collapse_ws(text: str) -> str:
    """Whitespace as GNU as's scrubber leaves it in operands: a run becomes one
    space between two word characters and disappears elsewhere (so `m 1 + 2`
    passes one macro argument, `m 1 2` two).  Strings are kept verbatim."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            j = _string_end(text, i)
            out.append(text[i:j])
            i = j
        elif c in " \t":
            j = i
            while j < len(text) and text[j] in " \t":
                j += 1
            if out and out[-1][-1] in _WORDISH and j < len(text) and text[j] in _WORDISH:
                out.append(" ")
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i] in " \t":
        i += 1
    return i


def _skip_comma(s: str, i: int) -> int:
    i = _skip_ws(s, i)
    if i < len(s) and s[i] == ",":
        i = _skip_ws(s, i + 1)
    return i


def _gnu_arg(s: str, i: int) -> tuple[str, int]:
    """One macro argument (GNU as get_any_string): a "quoted string" without its
    quotes ("" inside stands for "), or text up to a comma or, outside brackets,
    a space."""
    i = _skip_ws(s, i)
    if i < len(s) and s[i] == '"':
        out: list[str] = []
        i += 1
        esc = False
        while i < len(s):
            esc = (not esc) if s[i - 1] == "\\" else False
            if not esc and s[i] == '"':
                i += 1
                if i >= len(s) or s[i] != '"':
                    break
            out.append(s[i])
            i += 1
        return "".join(out), i
    start, brackets = i, []
    while i < len(s) and (brackets or s[i] not in " \t") and s[i] != ",":
        c = s[i]
        if c in "\"'":
            j = s.find(c, i + 1)
            if j < 0:
                return s[start:], len(s)
            i = j
        elif c in "([":
            brackets.append(c)
        elif brackets and brackets[-1] + c in ("()", "[]"):
            brackets.pop()
        i += 1
    return s[start:i], i


def _irp_values(s: str) -> list[str]:
    if not s:
        return [""]            # GNU as: the body once, with the parameter empty
    vals, i = [], 0
    while i < len(s):
        v, i = _gnu_arg(s, i)
        vals.append(v)
        i = _skip_comma(s, i)
    return vals


def _irpc_values(s: str) -> list[str]:
    """.irpc: one character at a time; blanks between them are skipped outside quotes."""
    if not s:
        return [""]
    quoted = s[0] == '"'
    vals, i = [], int(quoted)
    while i < len(s):
        c = s[i]
        if c == '"':
            quoted = not quoted
            if _skip_ws(s, i + 1) >= len(s):
                break
        vals.append(c)
        i += 1
        if not quoted:
            i = _skip_ws(s, i)
    return vals


def _find(text: str, needle: str, col: int, fallback: tuple[int, int]) -> tuple[int, int]:
    k = text.find(needle) if needle else -1
    return (col + k, len(needle)) if k >= 0 else fallback


def _parse_params(macro: str, text: str, col: int) -> list[_Param]:
    """.macro parameters: `name[:req|:vararg][=default]`, separated by commas or blanks."""
    s = _collapse_ws(text)
    whole = (col, max(1, len(text)))
    params: list[_Param] = []
    i = _skip_ws(s, 0)
    while i < len(s):
        m = _NAME.match(s, i)
        if not m:
            raise _StmtError(f"bad parameter list for macro '{macro}' at '{s[i:]}'",
                             *_find(text, s[i:i + 1], col, whole))
        name = m.group()
        where = _find(text, name, col, whole)
        i = _skip_ws(s, m.end())
        required = vararg = False
        if i < len(s) and s[i] == ":":
            q = _NAME.match(s, _skip_ws(s, i + 1))
            qual = q.group() if q else ""
            if qual not in ("req", "vararg"):
                where = _find(text, qual, col, where) if qual else where
                raise _StmtError(f"'{qual}' is not a parameter qualifier (req or vararg) for "
                                 f"'{name}' in macro '{macro}'" if qual else
                                 f"missing qualifier (req or vararg) after '{name}:' in macro "
                                 f"'{macro}'", *where)
            required, vararg = qual == "req", qual == "vararg"
            i = _skip_ws(s, q.end())
        default = ""
        if i < len(s) and s[i] == "=":
            default, i = _gnu_arg(s, i + 1)
            i = _skip_ws(s, i)
        if any(p.name == name for p in params):
            raise _StmtError(f"macro '{macro}' already has a parameter named '{name}'",
                             *_find(text[where[0] - col + 1:], name, where[0] + 1, where))
        if params and params[-1].vararg:
            raise _StmtError(f"only the last parameter of macro '{macro}' can be :vararg "
                             f"('{params[-1].name}' is)", *where)
        params.append(_Param(name, "" if required else default, required, vararg))
        nxt = _skip_comma(s, i)
        if nxt >= len(s) and nxt > _skip_ws(s, i):
            raise _StmtError(f"bad parameter list for macro '{macro}': nothing after ','",
                             col + text.rfind(","), 1)
        i = nxt
    return params


def _macro_args(macro: "_Macro", rest: str, rcol: int, col: int) -> dict[str, str]:
    """Arguments of an invocation -> parameter values (GNU as macro_expand):
    positional ones first, then `name=value` ones; blank means the default."""
    s = _collapse_ws(rest)
    whole = (rcol, max(1, len(rest))) if rest else (col, len(macro.name))
    names = {p.name for p in macro.params}
    actual: dict[str, str] = {}
    pos, keyword, i = 0, False, 0
    while i < len(s):
        scan = i
        while scan < len(s) and s[scan] not in _ISSEP and s[scan] != "=":
            scan += 1
        if scan < len(s) and s[scan] == "=":
            kw = s[i:scan]
            keyword = True
            if kw not in names:
                raise _StmtError(f"macro '{macro.name}' has no parameter named '{kw}'",
                                 *_find(rest, kw, rcol, whole))
            actual[kw], i = _gnu_arg(s, scan + 1)
        else:
            if keyword:
                raise _StmtError(f"positional argument after keyword arguments to macro "
                                 f"'{macro.name}'", *whole)
            if pos >= len(macro.params):
                raise _StmtError(f"too many arguments to macro '{macro.name}' (it takes "
                                 f"{len(macro.params)})", *whole)
            p = macro.params[pos]
            pos += 1
            if p.vararg:
                actual[p.name], i = s[i:], len(s)
            else:
                actual[p.name], i = _gnu_arg(s, i)
        i = _skip_comma(s, i)
    values = {}
    for p in macro.params:
        v = actual.get(p.name, "")
        if not v and p.required:
            raise _StmtError(f"missing required argument '{p.name}' to macro '{macro.name}'",
                             col, len(macro.name))
        values[p.name] = v or p.default
    return values


def _substitute(text: str, values: Mapping[str, str], counter: str | None) -> str:
    """Expand a macro or .irp body line (GNU as macro_expand_body): \\name (a whole
    name token; a ' right after it is dropped) and &name (an & right after it is
    dropped) become the parameter's value, \\@ the expansion counter, \\(text) the
    text; anything else is kept."""
    out: list[str] = []
    i = 0
    while True:
        j = min((k for k in (text.find("\\", i), text.find("&", i)) if k >= 0), default=-1)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        kind, i = text[j], j + 1
        if kind == "\\" and i < len(text) and text[i] == "(":
            k = text.find(")", i + 1)
            k = len(text) if k < 0 else k
            out.append(text[i + 1:k])
            i = k + 1
            continue
        if kind == "\\" and i < len(text) and text[i] == "@" and counter is not None:
            out.append(counter)
            i += 1
            continue
        m = _NAME.match(text, i)
        name = m.group() if m else ""
        i += len(name)
        ender = "'" if kind == "\\" else "&"
        dropped = i < len(text) and text[i] == ender
        i += dropped
        if name in values:
            out.append(values[name])
        elif kind == "&":
            out.append("&" + name + ("&" if dropped else ""))
        else:
            out.append("\\" + name)


def _scrub_text(text: str) -> str:
    lines = _scrub("", text)
    return lines[0].text if lines else ""


def _known_section(name: str) -> bool:
    """Names GNU as gives the "a" (allocated) flag by default (obj-elf.c)."""
    return any(name == p or name.startswith(p + ".") for p in (
        ".text", ".data", ".data1", ".rodata", ".rodata1", ".bss", ".sdata", ".sbss",
        ".sdata2", ".sbss2", ".init", ".fini", ".tdata", ".tbss", ".init_array", ".fini_array",
        ".preinit_array", ".ctors", ".dtors", ".got", ".got2", ".gnu.linkonce.t",
        ".gnu.linkonce.d", ".gnu.linkonce.r", ".gnu.linkonce.b"))


def _output_section(name: str) -> str:
    """The output section GNU ld's default script puts an input section in."""
    for p in (".text", ".rodata", ".data", ".bss", ".sdata", ".sbss"):
        if name == p or name.startswith(p + "."):
            return p
    return name


# Section ordering for placement: like GNU ld's default script.
def _section_rank(name: str) -> int:
    for rank, prefixes in enumerate(((".text", ".init", ".fini"), (".rodata",),
                                     (".data", ".sdata"), (".bss", ".sbss"))):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return rank
    return 2


# --------------------------------------------------------------------------
# The assembler


class _Assembler:
    def __init__(self, include_dirs: Sequence[str], defsyms: Mapping[str, int],
                 text_addr: int, data_addr: int | None, reader):
        self.include_dirs = list(include_dirs)
        self.defsyms = dict(defsyms)
        self.text_addr, self.data_addr = text_addr, data_addr
        self.read = reader
        self.bases: dict[str, int] = {}
        self.layout: dict[str, int] = {}
        self.labels: dict[str, tuple[str, int]] = {}    # pass 1 result: name -> (section, offset)
        self.final_values: dict[str, int] = {}          # pass 1 result: .set symbols at the end

    # ---- per pass state --------------------------------------------------
    def _reset(self, final: bool) -> None:
        self.final = final
        self.diags: list[Diagnostic] = []
        self.sections: dict[str, Section] = {}
        self.section_stack: list[str] = []
        self.cur: Section = self._section(".text")
        self.prev: Section = self.cur
        self.values: dict[str, int] = dict(self.defsyms)     # .set symbols
        self.defined: set[str] = set(self.defsyms)           # defined so far in this pass
        self.fixed: set[str] = set()                         # .equiv/.eqv: never redefined
        self.eqvs: dict[str, tuple[str, int]] = {}           # .eqv: expression, column
        self.evaluating: set[str] = set()
        self.first_values: dict[str, int] = {}               # first .set value of each name
        self.forward_names: set[str] = set()                 # used before being defined
        self.pass_labels: dict[str, tuple[str, int]] = {}
        self.globals: set[str] = set()
        self.macros: dict[str, _Macro] = {}
        self.local_counts: dict[str, int] = {}
        self.macro_counter = 0
        self._stmt_col, self._stmt_len = 0, 1
        self.expansions = 0       # macro and repeat expansions being read (for .exitm)
        self.ended = False

    def _section(self, name: str, flags: str | None = None, kind: str = "") -> Section:
        s = self.sections.get(name)
        if s is None:
            known = _known_section(name)
            s = Section(name, code=_section_rank(name) == 0 and not name.startswith(".rodata"),
                        nobits=_section_rank(name) == 3, alloc=known)
            self.sections[name] = s
        if flags is not None:       # GNU as: flags and type given on .section
            s.alloc = s.alloc or "a" in flags
            s.code = s.code or "x" in flags
        if kind:
            s.nobits = kind == "nobits"
        return s

    def error(self, line: _Line, col: int, length: int, message: str) -> None:
        lineno, c, src = line.locate(col)
        if line.origin:     # a span never runs past its source line
            length = min(length, max(1, len(src) - c))
        self._report(line.file, lineno, c, length, message, src, line.note)

    def _report(self, file, lineno, col, length, message, source, note=None) -> None:
        if self.final:
            self.diags.append(Diagnostic(file, lineno, col + 1, length, message, source,
                                         notes=(note,) if note else ()))

    # ---- symbols ---------------------------------------------------------
    def _symbol_value(self, tok: Token, strict: bool) -> int:
        name = tok.text
        if tok.kind == "local":
            n, d = name[:-1], name[-1]
            k = self.local_counts.get(n, 0) - (1 if d == "b" else 0)
            if k < 0:
                raise Undefined(name, tok.col, len(name))
            name = f"{n}\x02{k}"
        if name == ".":
            return self._here()
        if name in self.eqvs:
            if name in self.evaluating:
                raise ExprError(f"symbol '{name}' is defined in terms of itself", tok.col,
                                len(name))
            self.evaluating.add(name)
            try:
                return evaluate(self.eqvs[name][0], tok.col,
                                lambda t: self._symbol_value(t, strict)).value
            finally:
                self.evaluating.discard(name)
        if name in self.values and (name in self.defined or not strict):
            return self.values[name]
        if not strict and name not in self.pass_labels and name in self.final_values:
            return self.final_values[name]
        if not self.final and name not in self.pass_labels and name not in self.labels:
            self.forward_names.add(name)    # a later label, or a .set symbol
        lab = self.pass_labels.get(name) if strict else (self.pass_labels.get(name) or self.labels.get(name))
        if lab is not None:
            sec, off = lab
            return self.bases.get(sec, 0) + off
        bare = name.lstrip("%").lower()
        m = _REG.match(bare)
        if m:
            return int(m.group(2))
        if bare in CR_BIT_NAMES:
            return CR_BIT_NAMES[bare]
        if bare in _REG_ALIASES:
            return _REG_ALIASES[bare]
        raise Undefined(tok.text, tok.col, len(tok.text))

    def _is_symbol(self, name: str) -> bool:
        """A symbol of the program by that name (it wins over a register name)."""
        return any(name in d for d in (self.values, self.pass_labels, self.labels, self.eqvs,
                                       self.final_values))

    def _here(self) -> int:
        return self.bases.get(self.cur.name, 0) + self.cur.size

    def eval(self, text: str, col: int, strict: bool = False) -> Result:
        """Evaluate an expression. Pass 1 treats unknown symbols as 0 unless `strict`
        (sizes must not depend on symbols defined later)."""
        try:
            return evaluate(text, col, lambda t: self._symbol_value(t, strict))
        except Undefined as e:
            if not self.final and not strict:
                return Result(0)
            raise _StmtError(str(e) if not strict else
                             f"{e} (value must be known at this point)", e.col, e.length)
        except ExprError as e:
            raise _StmtError(str(e), e.col, e.length)

    def eval_abs(self, text: str, col: int) -> int:
        return self.eval(text, col, strict=True).value

    # ---- output helpers --------------------------------------------------
    def emit(self, data: bytes) -> None:
        if self.cur.nobits and any(data):
            raise _StmtError(f"attempt to store non-zero data in section '{self.cur.name}' "
                             "(it has no contents)", self._stmt_col, self._stmt_len)
        self.cur.data += data

    def align_to(self, boundary: int, fill: int | None, unit: int = 1,
                 max_skip: int | None = None) -> int:
        """Pad to `boundary` (GNU as do_align) -> the padding, or -1 when it would
        exceed `max_skip` (then nothing is emitted; the section alignment still grows)."""
        self.cur.align = max(self.cur.align, boundary)
        pad = (-self.cur.size) % boundary
        if max_skip and pad > max_skip:
            return -1
        if fill is None and self.cur.code:
            # GNU as (ppc_handle_align): nops when the padding is whole words, else zeros.
            self.emit(NOP.to_bytes(4, "big") * (pad // 4) if pad % 4 == 0 else bytes(pad))
        elif unit > 1 and pad % unit:
            return pad
        else:
            pattern = ((fill or 0) & ((1 << (8 * unit)) - 1)).to_bytes(unit, "big")
            self.emit(pattern * (pad // unit))
        return 0

    def define_label(self, line: _Line, name: str, col: int) -> None:
        if name.isdigit():
            k = self.local_counts.get(name, 0)
            self.local_counts[name] = k + 1
            name = f"{name}\x02{k}"
        elif name in self.pass_labels or name in self.fixed:
            self.error(line, col, len(name), f"symbol '{name}' is already defined")
            return
        else:
            self.values.pop(name, None)     # GNU as: a label may follow `name = value`
        self.pass_labels[name] = (self.cur.name, self.cur.size)
        self.defined.add(name)

    # ---- driver ----------------------------------------------------------
    def run(self, files: Sequence[tuple[str, str]]) -> None:
        """Pass 1 lays out; when a .set symbol was used before its first definition,
        a middle pass settles that definition's value (it may use later labels);
        the last pass emits and reports."""
        passes = [False, True]
        k = 0
        while k < len(passes):
            final = passes[k]
            self._reset(final)
            for name, text in files:
                self._lines(self._file_lines(name, text), depth=0)
                if self.ended:
                    break
            if not final:
                # GNU as: a reference before a symbol's first definition gets the value
                # of that definition (a later .set makes a new symbol).
                self.final_values = dict(self.first_values)
                if k == 0:
                    self.labels = dict(self.pass_labels)
                    self._place()
                    if not self.forward_names.isdisjoint(self.first_values):
                        passes.insert(1, False)
            k += 1
        for sec in self.sections.values():   # sizes must agree between passes
            if self.layout.get(sec.name) != sec.size:
                last = files[-1][0]
                self.diags.append(Diagnostic(last, 1, 1, 1, f"size of section '{sec.name}' "
                                             "changed between passes (a size depends on an "
                                             "address)", ""))

    def _file_lines(self, name: str, text: str) -> list[_Line]:
        return _scrub(name, text)

    def _place(self) -> None:
        """Addresses of sections after pass 1, like GNU ld with -Ttext/-Tdata."""
        self.layout = {n: s.size for n, s in self.sections.items()}
        groups: dict[str, int] = {}         # output section -> order of first appearance
        for s in self.sections.values():
            groups.setdefault(_output_section(s.name), len(groups))
        order = sorted((s for s in self.sections.values() if s.alloc),
                       key=lambda s: (_section_rank(s.name), groups[_output_section(s.name)]))
        addr, group = self.text_addr, None
        for s in order:
            rank = _section_rank(s.name)
            if rank == 2 and self.data_addr is not None and s.name == ".data":
                addr = self.data_addr
            # Input sections of one output section follow each other at their own
            # alignment (like ld); an output section starts word aligned at least.
            align = s.align if _output_section(s.name) == group else max(4, s.align)
            group = _output_section(s.name)
            addr = -(-addr // align) * align
            self.bases[s.name] = addr
            addr += s.size

    # ---- statements ------------------------------------------------------
    def _lines(self, lines: list[_Line], depth: int) -> None:
        i = 0
        cond: list[_Cond] = []
        while i < len(lines) and not self.ended:
            line = lines[i]
            i += 1
            if line.error:
                self._report(line.file, *line.error, line.note)
            for stmt, col in _split_statements(line.text):
                if not stmt:
                    continue
                # Labels may come first (`lab: .if 1`); the directive decides.
                k = 0
                while m := _LABEL.match(stmt, k):
                    k = m.end()
                body = stmt[k:].lstrip()
                word = body.split(None, 1)[0].lower() if body else ""
                active = not cond or cond[-1].active
                if k and active and (word in _CONDITIONALS or word == ".macro"
                                     or word in _REPEATS):
                    self._statement(line, stmt[:k], col, depth)
                    col, stmt = col + len(stmt) - len(body), body
                # Conditional assembly is tracked even in skipped regions.
                if word in _CONDITIONALS:
                    self._conditional(line, stmt, col, word, cond)
                    continue
                if not active:
                    continue
                if word == ".macro":
                    i = self._define_macro(lines, i, line, stmt, col)
                    break
                if word in _REPEATS:
                    i = self._repeat(lines, i, line, stmt, col, word, depth)
                    break
                try:
                    self._statement(line, stmt, col, depth)
                except _StmtError as e:
                    self.error(line, e.col, e.length, str(e))
                if self.ended:
                    break
        for c in cond:
            self.error(c.line, c.col, len(c.word), f"'{c.word}' without '.endif'")

    def _conditional(self, line, stmt, col, word, cond) -> None:
        rest = stmt[len(word):].strip()
        rcol = col + len(stmt) - len(stmt[len(word):].lstrip()) if rest else col + len(word)
        outer = all(c.active for c in cond)
        try:
            if word.startswith(".if"):
                frame = _Cond(line, col, word, False, True, False)
                cond.append(frame)      # a bad condition skips the block
                if outer:
                    frame.active = frame.taken = self._condition(word, rest, rcol, col)
            elif word in (".else", ".elseif"):
                if not cond:
                    raise _StmtError(f"'{word}' without '.if'", col, len(word))
                frame = cond[-1]
                if frame.past_else:
                    raise _StmtError(f"'{word}' after '.else'", col, len(word))
                parent = all(c.active for c in cond[:-1])
                if word == ".else":
                    frame.active, frame.past_else = parent and not frame.taken, True
                else:
                    frame.active = False
                    if parent and not frame.taken:
                        frame.active = self.eval_abs(rest, rcol) != 0
                    frame.taken = frame.taken or frame.active
            else:
                if not cond:
                    raise _StmtError("'.endif' without '.if'", col, len(word))
                cond.pop()
        except _StmtError as e:
            self.error(line, e.col, e.length, str(e))

    def _condition(self, word: str, rest: str, rcol: int, col: int) -> bool:
        """The value of an .if-family condition (GNU as, "7.46 .if")."""
        if word in (".ifdef", ".ifndef", ".ifnotdef"):
            if not _NAME.fullmatch(rest):
                raise _StmtError(f"'{word}' needs a symbol name", rcol if rest else col,
                                 len(rest) if rest else len(word))
            return (rest in self.defined) == (word == ".ifdef")
        if word in (".ifb", ".ifnb"):
            return (not rest) == (word == ".ifb")
        if word in (".ifc", ".ifnc"):
            text = _collapse_ws(rest)
            if "," not in text:
                raise _StmtError(f"'{word}' expects: string1, string2", rcol if rest else col,
                                 len(rest) if rest else len(word))
            a, _, b = text.partition(",")
            return (a.strip() == b.strip()) == (word == ".ifc")
        if word in (".ifeqs", ".ifnes"):
            args = _split_top(rest, ",", rcol)
            if len(args) != 2:
                raise _StmtError(f"'{word}' expects two strings in double quotes",
                                 rcol if rest else col, len(rest) if rest else len(word))
            a, b = (_parse_string(t, c) for t, c in args)
            return (a == b) == (word == ".ifeqs")
        x = self.eval_abs(rest, rcol)
        return {".if": x != 0, ".ifne": x != 0, ".ifeq": x == 0, ".ifgt": x > 0,
                ".ifge": x >= 0, ".iflt": x < 0, ".ifle": x <= 0}[word]

    def _collect_block(self, lines, i, start_words, end_word, line, col, what):
        """Body lines up to the matching end directive (first word of a line, as
        GNU as's buffer_and_nest looks for them) -> (body, index after it)."""
        body, depth = [], 1
        while i < len(lines):
            m = _FIRST_WORD.match(lines[i].text)
            w = m.group(1).lower() if m else ""
            if w in start_words:
                depth += 1
            elif w == end_word:
                depth -= 1
                if depth == 0:
                    return body, i + 1
            body.append(lines[i])
            i += 1
        self.error(line, col, len(what), f"'{what}' without '{end_word}'")
        return body, i

    def _define_macro(self, lines, i, line, stmt, col) -> int:
        """.macro name [params]: params as GNU as's do_formals reads them."""
        body, nxt = self._collect_block(lines, i, (".macro",), ".endm", line, col, ".macro")
        rest = stmt[len(".macro"):]
        rcol = col + len(".macro") + len(rest) - len(rest.lstrip())
        rest = rest.strip()
        try:
            m = _NAME.match(rest)
            if not m:
                raise _StmtError("macro name expected", rcol if rest else col,
                                 len(rest) if rest else len(".macro"))
            name = m.group().lower()
            params = _parse_params(name, rest[m.end():].lstrip().removeprefix(","),
                                   rcol + m.end())
            if name in self.macros:
                raise _StmtError(f"macro '{name}' is already defined (use .purgem first)",
                                 rcol, len(m.group()))
            self.macros[name] = _Macro(name, params, body)
        except _StmtError as e:
            self.error(line, e.col, e.length, str(e))
        return nxt

    def _repeat(self, lines, i, line, stmt, col, word, depth) -> int:
        body, nxt = self._collect_block(lines, i, _REPEATS, ".endr", line, col, word)
        rest = stmt[len(word):]
        rcol = col + len(word) + len(rest) - len(rest.lstrip())
        rest = rest.strip()
        try:
            if word in (".rept", ".rep"):
                n = self.eval_abs(rest, rcol) if rest else 0
                if n < 0:
                    raise _StmtError(f"negative count for '.rept': {n}", rcol, len(rest))
                note = f"{line.file}:{line.lineno}: note: in expansion of '{word}'"
                copies = [[_Line(b.file, b.lineno, b.text, note, b.origin, b.error) for b in body]
                          ] * n
            else:
                m = _NAME.match(rest)
                if not m:
                    raise _StmtError(f"'{word}' needs a parameter name", rcol if rest else col,
                                     len(rest) if rest else len(word))
                var = m.group()
                vals = _collapse_ws(rest[m.end():])
                vals = vals[_skip_comma(vals, 0):]
                values = _irpc_values(vals) if word.endswith("c") else _irp_values(vals)
                counter = str(self.macro_counter)
                note = f"{line.file}:{line.lineno}: note: in expansion of '{word}'"
                copies = [[self._substituted(b, {var: v}, counter, note) for b in body]
                          for v in values]
            self.expansions += 1
            try:
                for c in copies:
                    self._lines(c, depth + 1)
            except _ExitExpansion:
                pass
            finally:
                self.expansions -= 1
        except _StmtError as e:
            self.error(line, e.col, e.length, str(e))
        return nxt

    def _statement(self, line: _Line, stmt: str, col: int, depth: int) -> None:
        self._cur_line = line     # for secondary operand errors
        self._stmt_col, self._stmt_len = col, len(stmt)
        # Labels (possibly several) at the start.
        while True:
            m = _LABEL.match(stmt)
            if not m:
                break
            self.define_label(line, m.group(1), col + m.start(1))
            col += m.end()
            rest = stmt[m.end():]
            col += len(rest) - len(rest.lstrip())
            stmt = rest.strip()
        if not stmt:
            return
        # name = expr (.set), name == expr (.eqv), . = expr (.org)
        m = re.match(r"([A-Za-z_.$][\w.$]*)\s*(==?)(?!=)\s*(.*)$", stmt)
        if m:
            name, op, ecol = m.group(1), m.group(2), col + m.start(3)
            if name == "." and op == "=":
                self._org(m.group(3), ecol, None)
            elif op == "==":
                self._eqv(name, col, m.group(3), ecol)
            else:
                self._set(line, name, col, m.group(3), ecol)
            return
        head = stmt.split(None, 1)[0]
        rest = stmt[len(head):]
        rcol = col + len(head) + len(rest) - len(rest.lstrip())
        rest = rest.strip()
        lname = head.lower()
        # GNU as: built-in directives first, then macros, then instructions.
        if lname.startswith(".") and lname in _DIRECTIVES:
            self._directive(line, lname, col, rest, rcol, depth)
        elif lname in self.macros:
            self._expand(line, self.macros[lname], rest, rcol, col, depth)
        elif lname.startswith("."):
            self._directive(line, lname, col, rest, rcol, depth)
        else:
            self._instruction(line, head, col, rest, rcol)

    def _set(self, line, name, ncol, expr, ecol, fixed: bool = False) -> None:
        if name in self.pass_labels or name in self.fixed or (fixed and name in self.defined):
            raise _StmtError(f"symbol '{name}' is already defined", ncol, len(name))
        if not _NAME.fullmatch(name) or name == ".":
            raise _StmtError(f"bad symbol name '{name}'", ncol, max(1, len(name)))
        self.values[name] = self.eval(expr, ecol).value
        self.first_values.setdefault(name, self.values[name])
        self.defined.add(name)
        if fixed:
            self.fixed.add(name)

    def _eqv(self, name, ncol, expr, ecol) -> None:
        """.eqv / ==: the expression is evaluated again wherever the symbol is used."""
        if name in self.pass_labels or name in self.defined:
            raise _StmtError(f"symbol '{name}' is already defined", ncol, len(name))
        if not _NAME.fullmatch(name) or name == ".":
            raise _StmtError(f"bad symbol name '{name}'", ncol, max(1, len(name)))
        self.eval(expr, ecol)           # report errors here, where it is written
        self.eqvs[name] = (expr, ecol)
        self.defined.add(name)
        self.fixed.add(name)

    # ---- macros ----------------------------------------------------------
    def _expand(self, line, macro: _Macro, rest, rcol, col, depth) -> None:
        if depth > 100:
            raise _StmtError(f"macro '{macro.name}' nested too deeply", col, len(macro.name))
        values = _macro_args(macro, rest, rcol, col)
        counter = str(self.macro_counter)
        self.macro_counter += 1
        note = f"{line.file}:{line.lineno}: note: in expansion of macro '{macro.name}'"
        body = [self._substituted(b, values, counter, note) for b in macro.body]
        self.expansions += 1
        try:
            self._lines(body, depth + 1)
        except _ExitExpansion:
            pass
        finally:
            self.expansions -= 1

    def _substituted(self, b: _Line, values: Mapping[str, str], counter: str | None,
                     note: str | None) -> _Line:
        """A body line with \\name, \\@ and \\() replaced, read again like source (GNU as
        scrubs an expansion before reading it)."""
        text = _substitute(b.text, values, counter)
        if text == b.text:
            return _Line(b.file, b.lineno, b.text, note or b.note, b.origin, b.error)
        return _Line(b.file, b.lineno, _scrub_text(text), note or b.note)

    def _d_exitm(self, line, name, col, rest, rcol, args, depth) -> None:
        if not self.expansions:
            raise _StmtError("'.exitm' outside a macro", col, len(name))
        raise _ExitExpansion()

    def _d_purgem(self, line, name, col, rest, rcol, args, depth) -> None:
        key = rest.lower()
        if key not in self.macros:
            raise _StmtError(f"macro '{rest}' is not defined", rcol if rest else col,
                             len(rest) if rest else len(name))
        del self.macros[key]

    def _d_stray_end(self, line, name, col, rest, rcol, args, depth) -> None:
        opener = "'.macro'" if name == ".endm" else "'.rept', '.irp' or '.irpc'"
        raise _StmtError(f"'{name}' without {opener}", col, len(name))

    # ---- directives ------------------------------------------------------
    def _directive(self, line: _Line, name: str, col: int, rest: str, rcol: int, depth: int) -> None:
        args = _split_top(rest, ",", rcol) if rest else []
        handler = _DIRECTIVES.get(name)
        if handler is None and name.startswith(".cfi_"):
            return          # call frame information: .eh_frame only, no memory contents
        if handler is None:
            raise _StmtError(f"unknown directive '{name}'", col, len(name))
        handler(self, line, name, col, rest, rcol, args, depth)

    def _d_ignore(self, *a) -> None:
        pass

    def _d_section(self, line, name, col, rest, rcol, args, depth) -> None:
        kind = ""
        if name == ".section":
            if not args or not args[0][0]:
                raise _StmtError("section name expected", col, len(name))
            secname = args[0][0].strip('"')
            flags = args[1][0] if len(args) > 1 else None
            if flags is not None and not re.fullmatch(r'"[a-zA-Z?]*"', flags):
                raise _StmtError(f"section flags must be a string like \"ax\", not '{flags}'",
                                 args[1][1], max(1, len(flags)))
            if len(args) > 2:
                kind = args[2][0].lstrip("@%").lower()
                if kind not in ("progbits", "nobits", "note", "init_array", "fini_array",
                                "preinit_array"):
                    raise _StmtError(f"unknown section type '{args[2][0]}' (@progbits or "
                                     "@nobits)", args[2][1], max(1, len(args[2][0])))
                kind = kind if kind == "nobits" else "progbits"
            flags = flags.strip('"') if flags is not None else None
            if name == ".section":
                self.prev, self.cur = self.cur, self._section(secname, flags, kind)
                return
        elif name == ".previous":
            self.cur, self.prev = self.prev, self.cur
            return
        elif name == ".popsection":
            if not self.section_stack:
                raise _StmtError(".popsection without .pushsection", col, len(name))
            self.prev, self.cur = self.cur, self._section(self.section_stack.pop())
            return
        else:
            if name == ".pushsection" and not args:
                raise _StmtError("section name expected", col, len(name))
            secname = name if name != ".pushsection" else args[0][0].strip('"')
            sub = args[1:] if name == ".pushsection" else args
            if sub and sub[0][0] and self.eval_abs(*sub[0]) != 0:
                raise _StmtError(f"subsections ('{name} {rest}') are not supported",
                                 sub[0][1], len(sub[0][0]))
        if name == ".pushsection":
            self.section_stack.append(self.cur.name)
        self.prev, self.cur = self.cur, self._section(secname)

    def _d_globl(self, line, name, col, rest, rcol, args, depth) -> None:
        for a, _c in args:
            self.globals.add(a)

    def _d_data(self, line, name, col, rest, rcol, args, depth) -> None:
        size = _DATA_SIZES[name]
        if not args:
            return
        if name == ".byte" and rest.startswith('"'):
            # GNU as: `.byte "text"` (one string, nothing after it) emits the characters
            # up to the next '"' as they are (no escapes).
            end = rest.find('"', 1)
            if end < 0:
                raise _StmtError("missing closing '\"'", rcol, len(rest))
            junk = rest[end + 1:].strip()
            if junk:
                raise _StmtError(f"junk '{junk}' after the string of '.byte'",
                                 rcol + len(rest) - len(junk), len(junk))
            self.emit(rest[1:end].encode("utf-8"))
            return
        for a, c in args:
            if not a:
                raise _StmtError("expected an expression", c, 1)
            try:
                v = self.eval(a, c).value
            except _StmtError as e:
                self.error(line, e.col, e.length, str(e))
                v = 0
            lo, hi = -(1 << (8 * size - 1)), (1 << (8 * size)) - 1
            if not lo <= v <= hi and self.final and size < 8:
                self.error(line, c, len(a), f"value {v} does not fit in {size} byte"
                           + ("s" if size > 1 else ""))
            self.emit((v & ((1 << (8 * size)) - 1)).to_bytes(size, "big"))

    def _d_string(self, line, name, col, rest, rcol, args, depth) -> None:
        zero = name in (".asciz", ".string")
        for a, c in args:
            self.emit(_parse_string(a, c) + (b"\0" if zero else b""))

    def _d_align(self, line, name, col, rest, rcol, args, depth) -> None:
        """.align/.p2align[wl] N (2**N bytes: PowerPC ELF's .align is a power of two),
        .balign[wl] N; then [fill][, max]: fill is a byte (w: 2, l: 4 bytes, big
        endian), and no padding at all when more than max bytes would be needed."""
        if not args or not args[0][0]:
            raise _StmtError(f"'{name}' needs an alignment", col, len(name))
        if len(args) > 3:
            raise _StmtError(f"'{name}' takes at most 3 operands (alignment, fill, max)",
                             args[3][1], len(rest) - (args[3][1] - rcol))
        n = self.eval_abs(*args[0])
        fill = self.eval_abs(*args[1]) if len(args) > 1 and args[1][0] else None
        max_skip = self.eval_abs(*args[2]) if len(args) > 2 and args[2][0] else None
        unit = {"w": 2, "l": 4}.get(name[-1], 1) if name != ".align" else 1
        if name.startswith(".balign"):
            boundary = max(n, 1)
            if boundary & (boundary - 1):
                raise _StmtError(f"alignment {n} is not a power of 2", args[0][1],
                                 len(args[0][0]))
        else:
            if not 0 <= n <= 16:
                raise _StmtError(f"alignment too large: 2**{n} bytes (at most 2**16)"
                                 if n > 0 else f"bad alignment {n}", args[0][1], len(args[0][0]))
            boundary = 1 << n
        pad = self.align_to(boundary, fill, unit, max_skip)
        if pad > 0:
            raise _StmtError(f"alignment padding ({pad} bytes) is not a multiple of the "
                             f"{unit}-byte fill pattern", col, len(name))

    def _d_space(self, line, name, col, rest, rcol, args, depth) -> None:
        if not args:
            raise _StmtError(f"'{name}' needs a size", col, len(name))
        n = self.eval_abs(*args[0])
        fill = self.eval(*args[1]).value if len(args) > 1 else 0
        if n < 0:
            raise _StmtError(f"negative size {n}", args[0][1], len(args[0][0]))
        self.emit(bytes([fill & 0xFF]) * n)

    def _d_zero(self, line, name, col, rest, rcol, args, depth) -> None:
        self._d_space(line, name, col, rest, rcol, args[:1], depth)

    def _d_fill(self, line, name, col, rest, rcol, args, depth) -> None:
        if not args:
            raise _StmtError("'.fill' needs a repeat count", col, len(name))
        rep = self.eval_abs(*args[0])
        size = self.eval_abs(*args[1]) if len(args) > 1 else 1
        value = self.eval(*args[2]).value if len(args) > 2 else 0
        if rep < 0 or not 0 <= size <= 8:
            raise _StmtError("bad .fill repeat count or size", args[0][1], len(rest))
        # GNU as: the value is at most 4 bytes; each unit starts with its low
        # min(size, 4) bytes, big endian, and the rest of the unit is zero.
        k = min(size, 4)
        unit = (value & ((1 << (8 * k)) - 1)).to_bytes(k, "big") + bytes(size - k)
        self.emit(unit * rep)

    def _d_org(self, line, name, col, rest, rcol, args, depth) -> None:
        if not args:
            raise _StmtError("'.org' needs an address", col, len(name))
        fill = self.eval_abs(*args[1]) if len(args) > 1 else 0
        self._org(*args[0], fill)

    def _org(self, expr: str, ecol: int, fill: int | None) -> None:
        """.org / `. = expr`: a position in the current section, as in GNU as (an
        expression in this section's symbols counts from the section's start)."""
        base = self.bases.get(self.cur.name, 0)
        self.bases[self.cur.name] = 0
        try:
            target = self.eval_abs(expr, ecol)
        finally:
            self.bases[self.cur.name] = base
        if target < self.cur.size:
            raise _StmtError(f"attempt to move .org backwards ({target:#x} < {self.cur.size:#x})",
                             ecol, len(expr))
        self.emit(bytes([(fill or 0) & 0xFF]) * (target - self.cur.size))

    def _d_set(self, line, name, col, rest, rcol, args, depth) -> None:
        if len(args) != 2 or not args[0][0]:
            raise _StmtError(f"'{name}' expects: symbol, expression", col, len(name))
        if name == ".eqv":
            self._eqv(args[0][0], args[0][1], *args[1])
        else:
            self._set(line, args[0][0], args[0][1], *args[1], fixed=name == ".equiv")

    def _find_file(self, line, fname: str, rcol: int, rest: str) -> str:
        cands = [os.path.join(os.path.dirname(line.file), fname)] + \
                [os.path.join(d, fname) for d in self.include_dirs]
        for path in cands:
            if os.path.isfile(path):
                return path
        raise _StmtError(f"cannot find include file '{fname}'", rcol, len(rest))

    def _d_include(self, line, name, col, rest, rcol, args, depth) -> None:
        path = self._find_file(line, rest.strip().strip('"'), rcol, rest)
        if depth > 50:
            raise _StmtError(".include nested too deeply", rcol, len(rest))
        self._lines(self._file_lines(path, self.read(path)), depth + 1)

    def _d_incbin(self, line, name, col, rest, rcol, args, depth) -> None:
        """.incbin "file"[, skip[, count]]: the file's bytes, searched like .include."""
        if not args or not args[0][0].startswith('"') or len(args) > 3:
            raise _StmtError("'.incbin' expects: \"file\"[, skip[, count]]", col, len(name))
        path = self._find_file(line, args[0][0].strip('"'), args[0][1], args[0][0])
        with open(path, "rb") as f:
            data = f.read()
        skip = self.eval_abs(*args[1]) if len(args) > 1 else 0
        count = self.eval_abs(*args[2]) if len(args) > 2 else len(data) - skip
        if not 0 <= skip <= len(data) or not 0 <= count <= len(data) - skip:
            raise _StmtError(f"'.incbin' skip/count outside the file ({len(data)} bytes)",
                             args[1][1], len(rest) - (args[1][1] - rcol))
        self.emit(data[skip:skip + count])

    def _d_error(self, line, name, col, rest, rcol, args, depth) -> None:
        msg = _parse_string(rest, rcol).decode("latin-1") if rest else ".err encountered"
        raise _StmtError(msg, col, len(name))

    def _d_end(self, *a) -> None:
        self.ended = True

    # ---- instructions ----------------------------------------------------
    def _instruction(self, line: _Line, head: str, col: int, rest: str, rcol: int) -> None:
        here = self._here()
        self.cur.align = max(self.cur.align, 4)
        if self.cur.size % 4:
            self.error(line, col, len(head), "instruction address is not a multiple of 4")
        entry = lookup(head)
        word = 0
        try:
            if entry is None:
                raise _StmtError(f"unrecognized opcode '{head}'", col, len(head))
            word = self._encode(entry, rest, rcol, here, col, len(head))
        except _StmtError as e:
            self.error(line, e.col, e.length, str(e))
        self.emit(word.to_bytes(4, "big"))

    def _operand_texts(self, ops: Sequence[Operand], paren: int | None, rest: str, rcol: int):
        pieces = _split_top(rest, ",", rcol) if rest else []
        if paren is None:
            return pieces
        out: list[tuple[str, int]] = []
        for k, (p, c) in enumerate(pieces):
            # The memory operand is the last written piece: D(RA).
            if k == len(pieces) - 1 and p.endswith(")") and "(" in p:
                depth, j = 0, len(p) - 1
                while j >= 0:
                    depth += {")": 1, "(": -1}.get(p[j], 0)
                    if depth == 0:
                        break
                    j -= 1
                d, r = p[:j].strip(), p[j + 1:-1].strip()
                out.append((d or "0", c))
                out.append((r, c + j + 1 + (len(p[j + 1:-1]) - len(p[j + 1:-1].lstrip()))))
            else:
                out.append((p, c))
        return out

    def _operand_value(self, op: Operand, text: str, c: int) -> int:
        if not text:
            raise _StmtError("missing operand", c, 1)
        bare = text.lstrip("%").lower()
        if bare in _SPR_NAMES and not self._is_symbol(text):
            if not op.kind.spr:
                raise _StmtError(f"'{text}' names a special purpose register; this operand "
                                 "is not one", c, len(text))
            return _SPR_NAMES[bare]
        m = _REG.match(bare)
        if m and not self._is_symbol(text):
            cls, num = m.group(1).lower(), int(m.group(2))
            want = op.kind.regclass
            if want is None or cls != want:
                what = {"r": "a general purpose register", "cr": "a condition register field",
                        "v": "a vector register"}.get(want, "a number")
                raise _StmtError(f"expected {what}, not '{text}'", c, len(text))
            if num > 31 or (cls == "cr" and num > 7):
                raise _StmtError(f"invalid register '{text}'", c, len(text))
            return num
        res = self.eval(text, c)
        v = res.value
        if res.suffix and op.kind.signed and op.field.width == 16 and v & 0x8000:
            v -= 0x10000    # GNU as sign-extends @l/@h/@ha into signed fields
        return v

    def _encode(self, entry, rest: str, rcol: int, pc: int, col: int, hlen: int) -> int:
        ops = entry.operands
        texts = self._operand_texts(ops, entry.paren, rest, rcol)
        required = sum(not o.optional for o in ops)
        if len(texts) not in (len(ops), required):
            span = (rcol, len(rest)) if rest else (col, hlen)
            if required == len(ops):
                raise _StmtError(f"'{entry.mnemonic}' takes {len(ops)} operands, got {len(texts)}",
                                 *span)
            # Name both forms: optional operands are written all or none.
            short = ",".join(_op_name(o) for o in ops if not o.optional)
            full = ",".join(_op_name(o) for o in ops)
            raise _StmtError(f"'{entry.mnemonic}' takes {required} or {len(ops)} operands "
                             f"({entry.mnemonic} {short} or {entry.mnemonic} {full}), "
                             f"got {len(texts)}", *span)
        # Which operands were written (GNU as: optional ones only all-or-none).
        written = list(ops) if len(texts) == len(ops) else [o for o in ops if not o.optional]
        values, spans = {}, {}
        errors = []
        for op, (t, c) in zip(written, texts):
            try:
                values[op.name] = self._operand_value(op, t, c)
            except _StmtError as e:
                errors.append(e)
                values[op.name] = 0
            spans[op.name] = (c, max(1, len(t)))
        if errors:
            for e in errors[1:]:
                self.error(self._cur_line, e.col, e.length, str(e))
            raise errors[0]
        full = [values.get(o.name, o.default) for o in ops]
        all_span = (rcol, max(1, len(rest))) if rest else (col, hlen)
        try:
            if isinstance(entry, Instruction):
                return encode_instruction(entry, full, pc)
            fields = alias_fields(entry, full)
            base = entry.instruction
            vals = []
            for bop in base.operands:
                v = fields[bop.field.name]
                if not bop.kind.signed and bop.kind.scale == 1 and not bop.kind.spr \
                        and bop.kind.name != "suimm":
                    v &= (1 << bop.field.width) - 1
                vals.append(v)
            try:
                return encode_instruction(base, vals, pc)
            except EncodingError as e:
                # Point at the alias operand that feeds the offending base field.
                if e.operand is not None:
                    src = dict(entry.fields).get(base.operands[e.operand].field.name, "")
                    if src in spans:
                        raise _StmtError(str(e), *spans[src])
                raise _StmtError(str(e), *all_span)
        except EncodingError as e:
            if e.operand is not None and ops[e.operand].name in spans:
                raise _StmtError(str(e), *spans[ops[e.operand].name])
            raise _StmtError(str(e), *all_span)


def _op_name(op: Operand) -> str:
    """An operand's name as the Power ISA writes it: its field (D is SI or UI there)."""
    name = op.fieldname or op.name
    if name == "D":
        return "UI" if op.kind.name == "uimm" else "SI"
    return name


_DATA_SIZES = {".byte": 1, ".hword": 2, ".short": 2, ".2byte": 2, ".word": 2, ".long": 4,
               ".int": 4, ".4byte": 4, ".quad": 8, ".8byte": 8}

_DIRECTIVES = {
    **{n: _Assembler._d_section for n in (".text", ".data", ".bss", ".rodata", ".section",
                                           ".previous", ".pushsection", ".popsection")},
    **{n: _Assembler._d_data for n in _DATA_SIZES},
    **{n: _Assembler._d_string for n in (".ascii", ".asciz", ".string")},
    **{n: _Assembler._d_align for n in (".align", ".p2align", ".p2alignw", ".p2alignl", ".balign",
                                         ".balignw", ".balignl")},
    **{n: _Assembler._d_space for n in (".space", ".skip")},
    **{n: _Assembler._d_globl for n in (".globl", ".global")},
    **{n: _Assembler._d_set for n in (".set", ".equ", ".equiv", ".eqv")},
    # No effect on memory contents (symbol attributes, debug and listing control).
    **{n: _Assembler._d_ignore for n in (".type", ".size", ".file", ".ident", ".gnu_attribute",
                                          ".local", ".weak", ".machine", ".abiversion",
                                          ".loc", ".hidden", ".protected", ".internal",
                                          ".list", ".nolist", ".psize", ".title", ".sbttl",
                                          ".eject", ".lflags")},
    ".incbin": _Assembler._d_incbin,
    ".zero": _Assembler._d_zero,
    ".fill": _Assembler._d_fill, ".org": _Assembler._d_org, ".include": _Assembler._d_include,
    ".err": _Assembler._d_error, ".error": _Assembler._d_error, ".end": _Assembler._d_end,
    ".exitm": _Assembler._d_exitm, ".purgem": _Assembler._d_purgem,
    ".endm": _Assembler._d_stray_end, ".endr": _Assembler._d_stray_end,
}
# --------------------------------------------------------------------------
# Public API


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def assemble(source: str | Sequence[tuple[str, str]], filename: str = "<input>", *,
             include_dirs: Iterable[str] = (), defsyms: Mapping[str, int] | None = None,
             text_addr: int = 0, data_addr: int | None = None) -> Program:
    """Assemble source text (or [(filename, text), ...]) into a linked Program.

    Raises AsmError carrying every diagnostic when anything is wrong."""
    files = [(filename, source)] if isinstance(source, str) else list(source)
    a = _Assembler(list(include_dirs), defsyms or {}, text_addr, data_addr, _read)
    a.run(files)
    if a.diags:
        raise AsmError(a.diags)
    symbols = {n: a.bases[s] + off for n, (s, off) in a.pass_labels.items() if "\x02" not in n}
    sym_sections = {n: s for n, (s, _) in a.pass_labels.items() if "\x02" not in n}
    for n, v in a.values.items():
        if n not in a.defsyms or n in a.globals:
            symbols.setdefault(n, v)
    for s in a.sections.values():
        s.address = a.bases.get(s.name, 0)
    # Sections without the "a" flag are not loaded (GNU as/ld): not in the program.
    sections = {n: s for n, s in a.sections.items() if (s.size or n == ".text") and s.alloc}
    sym_sections = {n: s for n, s in sym_sections.items() if s in sections or s == ".text"}
    entry = symbols.get("_start", sections[".text"].address if ".text" in sections else 0)
    return Program(sections, symbols, set(a.globals), sym_sections, entry)


def assemble_file(paths: str | Sequence[str], **kw) -> Program:
    """Assemble one or more files (concatenated, like `as a.s b.s`)."""
    if isinstance(paths, str):
        paths = [paths]
    return assemble([(p, _read(p)) for p in paths], **kw)
