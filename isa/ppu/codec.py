"""Encode and decode PPU instruction words, derived from `instructions`.

`encode` takes assembly-level operand values (branch targets as addresses,
SPR numbers as written); `decode` returns the same.  `decode_tables` exports
the table as flat numpy arrays for the numba interpreter's predecoder, and
`predecode` is the vectorised numpy version that tests hold against `decode`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .instructions import (ALIAS_BY_MNEMONIC, BY_MNEMONIC, FIELDS, INSTRUCTIONS, Alias,
                           Instruction, Operand, lookup)

__all__ = ["EncodingError", "IllegalInstruction", "Decoded", "encode", "encode_instruction",
           "alias_fields", "decode", "decode_tables", "predecode", "operand_field_value",
           "operand_value"]


class EncodingError(ValueError):
    """An operand does not fit its field, or the mnemonic/operand count is wrong."""

    def __init__(self, message: str, operand: int | None = None):
        super().__init__(message)
        self.operand = operand    # index of the offending operand, when known


class IllegalInstruction(ValueError):
    """The word is not an instruction of the PPU (would raise a program interrupt)."""

    def __init__(self, word: int, reason: str):
        super().__init__(f"illegal instruction 0x{word:08x}: {reason}")
        self.word = word


def _fill_optional(ops: Sequence[Operand], values: Sequence[int], mnemonic: str) -> list[int]:
    """Insert defaults for omitted optional operands (GNU as: all or none)."""
    required = sum(not o.optional for o in ops)
    if len(values) == len(ops):
        return list(values)
    if len(values) == required:
        it = iter(values)
        return [o.default if o.optional else next(it) for o in ops]
    want = str(len(ops)) if required == len(ops) else f"{required} or {len(ops)}"
    raise EncodingError(f"'{mnemonic}' takes {want} operands, got {len(values)}")


def operand_field_value(op: Operand, value: int, pc: int, index: int | None = None,
                        check: bool = True) -> int:
    """Assembly value -> raw field bits (unshifted), with range checks."""
    k = op.kind
    if k.relative:
        value = value - pc
        if -(1 << 31) <= value < 0 or value >= (1 << 31):
            value = ((value + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
    if check:
        lo, hi = op.value_range()
        if not lo <= value <= hi:
            what = "branch displacement" if k.relative else "operand"
            raise EncodingError(f"{what} out of range: {value} not in {lo}..{hi}", index)
        if k.scale > 1 and value % k.scale:
            raise EncodingError(f"branch target not a multiple of {k.scale}: {value}", index)
    value //= k.scale
    if k.spr:
        value = ((value & 0x1F) << 5) | ((value >> 5) & 0x1F)
    return value & ((1 << op.field.width) - 1)


def operand_value(op: Operand, raw: int, pc: int) -> int:
    """Raw field bits -> assembly value (inverse of operand_field_value)."""
    k, w = op.kind, op.field.width
    if k.spr:
        raw = ((raw & 0x1F) << 5) | ((raw >> 5) & 0x1F)
    if k.signed and raw & (1 << (w - 1)):
        raw -= 1 << w
    raw *= k.scale
    if k.relative:
        raw = (raw + pc) & 0xFFFFFFFF
    return raw


def encode_instruction(insn: Instruction, values: Sequence[int], pc: int = 0) -> int:
    values = _fill_optional(insn.operands, values, insn.mnemonic)
    word = insn.opcode_value
    for i, (op, v) in enumerate(zip(insn.operands, values)):
        word |= op.field.insert(operand_field_value(op, v, pc, i))
    return word


def alias_fields(alias: Alias, values: Sequence[int]) -> dict[str, int]:
    """Base field values (assembly level) for an alias's operand values."""
    values = _fill_optional(alias.operands, values, alias.mnemonic)
    for i, (op, v) in enumerate(zip(alias.operands, values)):
        if op.kind.relative or op.kind.scale > 1:
            continue  # checked by the base operand, relative to the pc
        lo, hi = op.value_range()
        if not lo <= v <= hi:
            raise EncodingError(f"operand out of range: {v} not in {lo}..{hi}", i)
    env = {op.name: v for op, v in zip(alias.operands, values)}
    return {f: fn(**env) for f, fn in alias.compiled()}


def encode(mnemonic: str, operands: Sequence[int] = (), pc: int = 0) -> int:
    """Encode one instruction or extended mnemonic at address `pc`."""
    entry = lookup(mnemonic)
    if entry is None:
        raise EncodingError(f"unknown mnemonic '{mnemonic}'")
    if isinstance(entry, Instruction):
        return encode_instruction(entry, operands, pc)
    fields = alias_fields(entry, operands)
    base = entry.instruction
    vals = []
    for op in base.operands:
        v = fields[op.field.name]
        # Alias arithmetic (e.g. srwi's 32-n) wraps in unsigned fields like GNU's macros.
        if not op.kind.signed and op.kind.scale == 1 and not op.kind.spr and op.kind.name != "suimm":
            v &= (1 << op.field.width) - 1
        vals.append(v)
    return encode_instruction(base, vals, pc)


# --------------------------------------------------------------------------
# Decoding


@dataclass(frozen=True)
class Decoded:
    instruction: Instruction
    values: tuple[int, ...]       # assembly-level operand values, in table order

    @property
    def mnemonic(self) -> str:
        return self.instruction.mnemonic


def _by_primary() -> dict[int, list[Instruction]]:
    out: dict[int, list[Instruction]] = {}
    for insn in INSTRUCTIONS:
        out.setdefault(insn.primary, []).append(insn)
    for lst in out.values():
        # Most specific pattern first (e.g. mfocrf before mfcr cannot clash, but
        # keeps the rule simple should overlapping rows ever be added).
        lst.sort(key=lambda i: -bin(i.opcode_mask).count("1"))
    return out


_PRIMARY = _by_primary()


def decode(word: int, pc: int = 0) -> Decoded:
    """Decode one 32-bit word; raise IllegalInstruction if it is not one."""
    word &= 0xFFFFFFFF
    primary = word >> 26
    cands = _PRIMARY.get(primary)
    if not cands:
        raise IllegalInstruction(word, f"primary opcode {primary} is not implemented")
    for insn in cands:
        if word & insn.opcode_mask == insn.opcode_value:
            vals = tuple(operand_value(op, op.field.extract(word), pc) for op in insn.operands)
            return Decoded(insn, vals)
    fields = {FIELDS[i.xo_field] for i in cands if i.xo_field}
    if fields and not any(FIELDS[i.xo_field].extract(word) == i.xo for i in cands if i.xo_field):
        widest = max(fields, key=lambda f: f.width)   # XO-form's 9 bits sit inside X-form's 10
        raise IllegalInstruction(word, f"no instruction with primary opcode {primary} and "
                                       f"extended opcode {widest.extract(word)}")
    raise IllegalInstruction(word, "reserved bits are set")


# --------------------------------------------------------------------------
# Flat tables for the numba interpreter


def decode_tables() -> dict[str, np.ndarray]:
    """The instruction table as flat arrays, in match-priority order.

    A word is instruction `opcode_id[k]` for the first k with
    `word & mask[k] == value[k]`; `opcode_id` indexes `INSTRUCTIONS`.  Operand
    fields are described per id by `field_shift`/`field_width`/`field_signed`
    (up to 5 operands, -1 when absent) so a predecoder needs no other source.
    """
    order = [insn for p in sorted(_PRIMARY) for insn in _PRIMARY[p]]
    index = {insn.mnemonic: k for k, insn in enumerate(INSTRUCTIONS)}
    n = len(INSTRUCTIONS)
    shift = np.full((n, 5), -1, np.int8)
    width = np.zeros((n, 5), np.int8)
    signed = np.zeros((n, 5), np.bool_)
    for k, insn in enumerate(INSTRUCTIONS):
        for j, op in enumerate(insn.operands):
            shift[k, j] = op.field.shift
            width[k, j] = op.field.width
            signed[k, j] = op.kind.signed
    return {
        "mask": np.array([i.opcode_mask for i in order], np.uint32),
        "value": np.array([i.opcode_value for i in order], np.uint32),
        "primary": np.array([i.primary for i in order], np.uint8),
        "opcode_id": np.array([index[i.mnemonic] for i in order], np.int32),
        # Per opcode id (not priority order):
        "xo": np.array([-1 if i.xo is None else i.xo for i in INSTRUCTIONS], np.int32),
        "cycles": np.array([i.cycles for i in INSTRUCTIONS], np.int32),
        "field_shift": shift, "field_width": width, "field_signed": signed,
    }


def predecode(words) -> np.ndarray:
    """Opcode id of each word (-1 for illegal words), vectorised with numpy."""
    t = decode_tables()
    w = np.asarray(words, dtype=np.uint32)
    ids = np.full(w.shape, -1, np.int32)
    for mask, value, oid in zip(t["mask"], t["value"], t["opcode_id"]):
        hit = (ids < 0) & ((w & mask) == value)
        ids[hit] = oid
    return ids


# Re-exported for tools that only need lookups.
MNEMONICS = tuple(BY_MNEMONIC) + tuple(ALIAS_BY_MNEMONIC)
