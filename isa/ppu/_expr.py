"""Expression tokenizer and evaluator with GNU as precedence.

GNU as precedence (highest first): unary - ~ !; * / % << >>; | & ^ !;
+ - == != <> < > <= >=; && ||.  Values are Python ints; / and % truncate
toward zero like C.  A trailing `@l`, `@h`, `@ha` (any case) applies to the
whole expression before it, and a `+ expr` or `- expr` after the suffix is added
before the suffix is applied (`x@l+4` is `(x+4)@l`), as in GNU as's ppc_elf_suffix.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

__all__ = ["ExprError", "Undefined", "Token", "tokenize", "evaluate", "Result"]


class ExprError(Exception):
    def __init__(self, message: str, col: int, length: int = 1):
        super().__init__(message)
        self.col, self.length = col, length     # 0-based column within the text


class Undefined(ExprError):
    """A symbol has no value (yet)."""

    def __init__(self, name: str, col: int, length: int):
        super().__init__(f"undefined symbol '{name}'", col, length)
        self.name = name


@dataclass(frozen=True)
class Token:
    kind: str     # num, sym, local, op, str, suffix, end
    text: str
    col: int
    value: int = 0


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<local>\d+[bf])(?![\w.$])
  | (?P<num>0[xX][0-9a-fA-F]+|0[bB][01]+|\d+)(?![\w.$])
  | (?P<chr>'(\\.|[^\\])'?)
  | (?P<str>"(\\.|[^"\\])*")
  | (?P<suffix>@(?i:ha|h|l)\b)
  | (?P<sym>%?[A-Za-z_.$][\w.$]*)
  | (?P<op><<|>>|==|!=|<>|<=|>=|&&|\|\||[-+*/%&|^~!()<>,])
""", re.X)


def _char_value(body: str) -> int:
    if body.startswith("\\"):
        esc = {"n": 10, "t": 9, "r": 13, "0": 0, "\\": 92, "'": 39, '"': 34, "b": 8, "f": 12}
        return esc.get(body[1], ord(body[1]))
    return ord(body[0])


def tokenize(text: str, base_col: int = 0) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ExprError(f"unexpected character '{text[pos]}'", base_col + pos)
        kind = m.lastgroup
        s = m.group()
        col = base_col + pos
        pos = m.end()
        if kind == "ws":
            continue
        if kind == "num":
            v = int(s, 0) if s[:2].lower() in ("0x", "0b") else (int(s, 8) if s.startswith("0") and len(s) > 1 else int(s))
            out.append(Token("num", s, col, v))
        elif kind == "chr":
            out.append(Token("num", s, col, _char_value(s[1:].rstrip("'") or "'")))
        else:
            out.append(Token(kind, s, col))
    out.append(Token("end", "", base_col + len(text)))
    return out


@dataclass
class Result:
    value: int
    suffix: str | None = None       # 'l', 'h', 'ha' when an @ suffix was applied


# binary operator -> precedence level (higher binds tighter)
_BINARY = {"*": 3, "/": 3, "%": 3, "<<": 3, ">>": 3,
           "|": 2, "&": 2, "^": 2, "!": 2,
           "+": 1, "-": 1, "==": 1, "!=": 1, "<>": 1, "<": 1, ">": 1, "<=": 1, ">=": 1,
           "&&": 0, "||": 0}


def _tdiv(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _apply(op: str, a: int, b: int, tok: Token) -> int:
    if op in ("/", "%") and b == 0:
        raise ExprError("division by zero", tok.col, len(tok.text))
    return {
        "*": lambda: a * b, "/": lambda: _tdiv(a, b), "%": lambda: a - _tdiv(a, b) * b,
        "<<": lambda: a << b if b >= 0 else 0, ">>": lambda: a >> b if b >= 0 else 0,
        "|": lambda: a | b, "&": lambda: a & b, "^": lambda: a ^ b, "!": lambda: a | ~b,
        "+": lambda: a + b, "-": lambda: a - b,
        # GNU as comparisons yield -1 for true.
        "==": lambda: -(a == b), "!=": lambda: -(a != b), "<>": lambda: -(a != b),
        "<": lambda: -(a < b), ">": lambda: -(a > b), "<=": lambda: -(a <= b),
        ">=": lambda: -(a >= b), "&&": lambda: int(bool(a and b)), "||": lambda: int(bool(a or b)),
    }[op]()


class _Parser:
    def __init__(self, toks: list[Token], lookup: Callable[[Token], int]):
        self.toks, self.i, self.lookup = toks, 0, lookup

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def parse(self, level: int = 0) -> int:
        left = self.unary()
        while True:
            t = self.tok
            if t.kind != "op" or t.text not in _BINARY or _BINARY[t.text] < level:
                return left
            self.i += 1
            right = self.parse(_BINARY[t.text] + 1)
            left = _apply(t.text, left, right, t)

    def unary(self) -> int:
        t = self.tok
        if t.kind == "op" and t.text in "-~!+":
            self.i += 1
            v = self.unary()
            return {"-": -v, "~": ~v, "!": int(not v), "+": v}[t.text]
        if t.kind == "op" and t.text == "(":
            self.i += 1
            v = self.parse()
            if self.tok.text != ")":
                raise ExprError("missing ')'", self.tok.col, max(1, len(self.tok.text)))
            self.i += 1
            return v
        if t.kind == "num":
            self.i += 1
            return t.value
        if t.kind in ("sym", "local"):
            self.i += 1
            return self.lookup(t)
        if t.kind == "end":
            raise ExprError("expected an expression", t.col)
        raise ExprError(f"unexpected '{t.text}' in expression", t.col, max(1, len(t.text)))


def evaluate(text: str, base_col: int, lookup: Callable[[Token], int]) -> Result:
    """Evaluate `text`; `lookup(token)` gives a symbol's value or raises Undefined."""
    toks = tokenize(text, base_col)
    p = _Parser(toks, lookup)
    v = p.parse()
    suffix = None
    if p.tok.kind == "suffix":
        suffix = p.tok.text[1:].lower()
        p.i += 1
        if p.tok.kind == "op" and p.tok.text in "+-":
            v += p.parse()
        v = {"l": v & 0xFFFF, "h": (v >> 16) & 0xFFFF, "ha": ((v + 0x8000) >> 16) & 0xFFFF}[suffix]
    if p.tok.kind != "end":
        t = p.tok
        raise ExprError(f"junk '{text[t.col - base_col:].strip()}' after expression", t.col,
                        len(text.rstrip()) - (t.col - base_col))
    return Result(v, suffix)
