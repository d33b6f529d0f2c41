"""Deterministic operand generation for the GNU as / objdump oracle tests.

Only mnemonics and operand kinds come from the table under test; every
expected encoding and listing comes from GNU binutils.
"""
from __future__ import annotations

import random

from isa.ppu.instructions import ALIASES, INSTRUCTIONS, Alias, Instruction

BO_POOL = (4, 12, 20, 16, 18, 0, 2, 8, 10, 6, 14, 7, 15, 24, 25)
SPR_POOL = (1, 8, 9, 22, 26, 27, 268, 269, 272, 273, 284, 285, 287, 100, 1023, 58)
SIMM_POOL = (-32768, -1, 0, 1, 2, 100, 32767, -1234)
SUIMM_POOL = (-32768, -1, 0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x1234)
# Alias operands with constraints between them: (n, b) pairs.
NB_ALIASES = {"extlwi", "extrwi", "inslwi", "insrwi"}
UPDATE_FORMS = {"lwzu", "lbzu", "lhzu", "lhau", "lwzux", "lbzux", "lhzux", "lhaux"}
STORE_UPDATE = {"stwu", "stbu", "sthu", "stwux", "stbux", "sthux"}
# Not in GNU's e500mc+any set with the same meaning (our own names).
NOT_GNU = {"subis"}


def _gpr(rng, n=None):
    n = rng.randrange(32) if n is None else n
    return rng.choice((f"r{n}", str(n), f"%r{n}")), n


def _value(rng, op, name):
    k = op.kind.name
    w = op.field.width
    if k in ("gpr", "gpr0"):
        return _gpr(rng)
    if k == "crf":
        n = rng.randrange(8)
        return rng.choice((f"cr{n}", str(n))), n
    if k == "crb":
        n = rng.randrange(32)
        if n >= 4 and rng.random() < 0.3:
            return f"4*cr{n // 4}+{('lt', 'gt', 'eq', 'so')[n % 4]}", n
        return str(n), n
    if k == "simm":
        v = rng.choice(SIMM_POOL + (rng.randrange(-32768, 32768),)) if w == 16 else \
            rng.randrange(-(1 << (w - 1)), 1 << (w - 1))
        return str(v), v
    if k == "suimm":
        v = rng.choice(SUIMM_POOL)
        return str(v), v
    if k == "spr":
        v = rng.choice(SPR_POOL)
        return str(v), v
    if k == "bdrel":
        span = 0x800 if op.field.name == "BD" else 0x100000
        k4 = rng.choice((-2, -1, 0, 1, 2, rng.randrange(-span, span)))
        return f".{k4 * 4:+d}" if k4 else ".", None
    if k == "bdabs":
        v = rng.choice((0, 4, 0x100, 0x7FFC)) if op.field.name == "BD" else rng.choice((0, 0x100, 0x1FFFFFC))
        return f"0x{v:x}", v
    # unsigned
    if name == "L":
        return "0", 0
    if name == "BO":
        v = rng.choice(BO_POOL)
        return str(v), v
    if name == "BH":
        return "0", 0
    v = rng.choice((0, (1 << w) - 1, rng.randrange(1 << w)))
    if name == "v" and w == 16:   # cmplwi immediate
        v = rng.choice((0, 1, 0xFFFF, 0x8000, rng.randrange(1 << 16)))
    return (hex(v) if rng.random() < 0.2 else str(v)), v


def _render(entry, texts) -> str:
    if entry.paren is not None and texts:
        texts = texts[:entry.paren - 1] + [f"{texts[entry.paren - 1]}({texts[entry.paren]})"] + \
            texts[entry.paren + 1:]
    return f"{entry.mnemonic} {','.join(texts)}".strip()


def _case(rng, entry) -> str:
    ops = list(entry.operands)
    if ops and ops[0].optional and rng.random() < 0.4:
        ops = ops[1:]           # omit the optional CR field
    if ops and ops[-1].optional and ops[-1].name == "BH":
        ops = ops[:-1]
    texts, vals = [], {}
    mn = entry.mnemonic.rstrip(".")
    for op in ops:
        t, v = _value(rng, op, op.name)
        texts.append(t)
        vals[op.name] = v
    names = [o.name for o in ops]
    # Constraints GNU as enforces.
    if mn in UPDATE_FORMS or mn in STORE_UPDATE or mn == "lmw":
        ra_i = names.index("RA")
        rt = vals.get("RT")
        if mn == "lmw":
            rt = rng.randrange(20, 32)
            texts[0] = f"r{rt}"
            ra = rng.randrange(1, rt)
        else:
            ra = rng.choice([r for r in range(1, 32) if r != rt or mn in STORE_UPDATE])
        texts[ra_i] = f"r{ra}"
    if mn in NB_ALIASES:
        n = rng.randrange(1, 32)
        b = rng.randrange(0, 33 - n)
        texts[2], texts[3] = str(n), str(b)
    if mn.startswith("bcctr") and "BO" in names:
        bo = rng.choice((4, 12, 20, 6, 14, 7, 15))   # decrementing bcctr is invalid
        texts[names.index("BO")] = str(bo)
    if mn in ("mfocrf", "mtocrf"):
        texts[names.index("FXM")] = str(1 << rng.randrange(8))   # exactly one field
    if mn == "clrlslwi":
        b = rng.randrange(0, 32)
        texts[2], texts[3] = str(b), str(rng.randrange(0, b + 1))
    if mn in ("slwi", "srwi", "clrrwi", "rotrwi", "clrlwi", "rotlwi") and texts[2] == "0x1f":
        texts[2] = "31"
    return _render(entry, texts)


def scalar_cases(per_instruction: int = 4, per_alias: int = 2, seed: int = 2024) -> list[str]:
    rng = random.Random(seed)
    out = []
    for insn in INSTRUCTIONS:
        if insn.primary == 4:
            continue
        n = 1 if not insn.operands else per_instruction
        out += [_case(rng, insn) for _ in range(n)]
    seen = set()
    for a in ALIASES:
        if a.instruction.primary == 4 or a.mnemonic in NOT_GNU or a.mnemonic in seen:
            continue
        seen.add(a.mnemonic)   # disassembly-only duplicates share the spelling
        n = 1 if not a.operands else per_alias
        out += [_case(rng, a) for _ in range(n)]
    return out
