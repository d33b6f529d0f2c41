"""objdump-style disassembler, derived from the instruction table.

Extended mnemonics are found by solving each candidate alias's field
expressions back for its operands (each is linear in one unknown), then
re-encoding to confirm; the first alias in table order that reproduces the
word wins, which is the order objdump prefers.
"""
from __future__ import annotations

import bisect
import re
from typing import Iterable, Mapping

from .codec import Decoded, IllegalInstruction, decode, operand_field_value
from .instructions import DISASM_ALIASES, Alias, Operand, branch_hint

__all__ = ["format_instruction", "disassemble", "Symbolizer"]

_CR_BITS = ("lt", "gt", "eq", "so")
_IDENT = re.compile(r"\b[a-z_]\w*\b")


class Symbolizer:
    """Address -> `<label+0x..>` like objdump, from a {name: address} map."""

    def __init__(self, symbols: Mapping[str, int] | None = None):
        items = sorted(((a, n) for n, a in (symbols or {}).items()), key=lambda t: (t[0], t[1]))
        self.addrs = [a for a, _ in items]
        self.names = [n for _, n in items]

    def __bool__(self) -> bool:
        return bool(self.addrs)

    def at(self, addr: int) -> list[str]:
        i = bisect.bisect_left(self.addrs, addr)
        out = []
        while i < len(self.addrs) and self.addrs[i] == addr:
            out.append(self.names[i])
            i += 1
        return out

    def target(self, addr: int) -> str:
        if not self.addrs:
            return f"0x{addr:x}"
        i = bisect.bisect_right(self.addrs, addr) - 1
        if i < 0:
            return f"{addr:x}"
        off = addr - self.addrs[i]
        return f"{addr:x} <{self.names[i]}" + (f"+0x{off:x}>" if off else ">")


def _fmt(op: Operand, v: int, sym: Symbolizer) -> str:
    k = op.kind.name
    if k == "gpr":
        return f"r{v}"
    if k == "gpr0":
        return f"r{v}" if v else "0"
    if k == "crf":
        return f"cr{v}"
    if k == "crb":
        cr, bit = divmod(v, 4)
        return f"4*cr{cr}+{_CR_BITS[bit]}" if cr else _CR_BITS[bit]
    if k in ("bdrel", "bdabs"):
        return sym.target(v & 0xFFFFFFFF)
    if k == "suimm":   # addis/lis: objdump prints the field signed
        v &= 0xFFFF
        return str(v - 0x10000 if v & 0x8000 else v)
    return str(v)


def _operands(ops: tuple[Operand, ...], vals: tuple[int, ...], paren: int | None,
              sym: Symbolizer) -> str:
    parts: list[str] = []
    for i, (op, v) in enumerate(zip(ops, vals)):
        if op.optional and v == op.default:
            continue
        s = _fmt(op, v, sym)
        if paren is not None and i == paren:
            parts[-1] += f"({s})"
        else:
            parts.append(s)
    return ",".join(parts)


def _solve_alias(alias: Alias, dec: Decoded, pc: int) -> tuple[int, ...] | None:
    """Alias operand values reproducing `dec`, or None."""
    base_ops = {op.field.name: op for op in dec.instruction.operands}
    base_vals = {op.field.name: v for op, v in zip(dec.instruction.operands, dec.values)}
    env: dict[str, int] = {}
    exprs = [(f, fn, set(_IDENT.findall(src))) for (f, fn), (_, src)
             in zip(alias.compiled(), alias.fields)]
    ops = {o.name: o for o in alias.operands}
    progress = True
    while progress and len(env) < len(ops):
        progress = False
        for f, fn, names in exprs:
            unknown = names - env.keys()
            if len(unknown) != 1:
                continue
            (x,) = unknown
            c = fn(**env, **{x: 0})
            a = fn(**env, **{x: 1}) - c
            width = base_ops[f].field.width
            lo, hi = ops[x].value_range() if not ops[x].kind.relative else (-(1 << 32), 1 << 33)
            for target in (base_vals[f], base_vals[f] + (1 << width), base_vals[f] - (1 << width)):
                if a and (target - c) % a == 0 and lo <= (target - c) // a <= hi:
                    env[x] = (target - c) // a
                    progress = True
                    break
            else:
                return None
    if len(env) < len(ops):
        return None
    for f, fn, _ in exprs:   # confirm by re-encoding every field
        op = base_ops[f]
        if operand_field_value(op, fn(**env), pc, check=False) != \
                operand_field_value(op, base_vals[f], pc, check=False):
            return None
    return tuple(env[o.name] for o in alias.operands)


def format_instruction(word: int, pc: int = 0, symbols: Symbolizer | None = None) -> tuple[str, str]:
    """(mnemonic, operands) for one word; ('.long', '0x...') when illegal."""
    sym = symbols or Symbolizer()
    try:
        dec = decode(word, pc)
    except IllegalInstruction:
        return ".long", f"0x{word & 0xFFFFFFFF:x}"
    for alias in DISASM_ALIASES.get(dec.mnemonic, ()):
        vals = _solve_alias(alias, dec, pc)
        if vals is not None:
            return alias.mnemonic, _operands(alias.operands, vals, alias.paren, sym)
    insn = dec.instruction
    if insn.form in ("B", "XL") and insn.operands and insn.operands[0].name == "BO":
        return insn.mnemonic + branch_hint(dec.values[0]), _operands(insn.operands, dec.values,
                                                                     insn.paren, sym)
    return insn.mnemonic, _operands(insn.operands, dec.values, insn.paren, sym)


def disassemble(data: bytes, start: int = 0, symbols: Mapping[str, int] | None = None) -> str:
    """objdump -d style listing of big-endian words at address `start`."""
    sym = Symbolizer(symbols)
    lines: list[str] = []
    n = len(data) - len(data) % 4
    for off in range(0, n, 4):
        pc = start + off
        for name in sym.at(pc):
            lines += ["", f"{pc:08x} <{name}>:"]
        b = data[off:off + 4]
        word = int.from_bytes(b, "big")
        mn, ops = format_instruction(word, pc, sym)
        text = f"{mn:<7} {ops}".rstrip() if ops else mn
        lines.append(f"{pc:8x}:\t{b[0]:02x} {b[1]:02x} {b[2]:02x} {b[3]:02x} \t{text}")
    if n < len(data):
        tail = data[n:]
        lines.append(f"{start + n:8x}:\t{' '.join(f'{x:02x}' for x in tail)}")
    return "\n".join(lines).lstrip("\n") + "\n"


def iter_words(data: bytes) -> Iterable[int]:
    for off in range(0, len(data) - len(data) % 4, 4):
        yield int.from_bytes(data[off:off + 4], "big")
