"""Data model of a register map: fields inside registers inside blocks.

A register map is pure data.  The twin's register bus, the host's coordinates
and containers, and the generated documentation all read it through the query
API below; none of them restates an address or a bit position.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterator

import numpy as np

ACCESS = ("rw", "ro", "wo")


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    doc: str
    reset: int = 0
    maximum: int | None = None      # legal maximum when below 2**width - 1

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb

    @property
    def limit(self) -> int:
        """Largest legal value."""
        return (1 << self.width) - 1 if self.maximum is None else self.maximum

    def extract(self, word):
        return (word >> self.lsb) & ((1 << self.width) - 1)


@dataclass(frozen=True)
class Register:
    """One register, or a contiguous array of identical registers.

    `shape` gives the array's dimensions (row-major); an index into the array is
    a tuple of that many integers, or a flat integer."""

    name: str
    offset: int                     # word offset of element 0 within the block
    fields: tuple[Field, ...]
    doc: str
    access: str = "rw"
    shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.access not in ACCESS:
            raise ValueError(f"{self.name}: access {self.access!r} not in {ACCESS}")

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    @cached_property
    def reset(self) -> int:
        return sum((f.reset << f.lsb) for f in self.fields)

    @cached_property
    def defined_mask(self) -> int:
        m = 0
        for f in self.fields:
            m |= f.mask
        return m

    @cached_property
    def by_name(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}

    def field(self, name: str) -> Field:
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(f"register {self.name} has no field {name!r}; fields: "
                           f"{', '.join(self.by_name)}") from None

    def flat_index(self, index) -> int:
        """Flat element number of `index` (int or tuple), range-checked."""
        if isinstance(index, (tuple, list)):
            if len(index) != len(self.shape):
                raise IndexError(f"{self.name}: index {tuple(index)} needs {len(self.shape)} "
                                 f"components for shape {self.shape}")
            flat = 0
            for i, n in zip(index, self.shape):
                if not 0 <= i < n:
                    raise IndexError(f"{self.name}: index {tuple(index)} outside shape {self.shape}")
                flat = flat * n + i
            return flat
        if not 0 <= index < max(self.count, 1):
            raise IndexError(f"{self.name}: index {index} outside 0..{self.count - 1}")
        return index

    def encode(self, **values: int) -> int:
        """Pack field values (missing ones take their reset value) into a word."""
        word = 0
        for f in self.fields:
            v = values.pop(f.name, f.reset)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ValueError(f"{self.name}.{f.name}={v!r} is not an integer (a field holds 0..{f.limit})")
            if not 0 <= v <= f.limit:
                raise ValueError(f"{self.name}.{f.name}={v} outside 0..{f.limit}")
            word |= v << f.lsb
        if values:
            raise KeyError(f"register {self.name} has no field(s) {', '.join(values)}")
        return word

    def decode(self, word: int) -> dict[str, int]:
        return {f.name: (word >> f.lsb) & ((1 << f.width) - 1) for f in self.fields}

    def lanes(self, prefix: str) -> tuple[Field, ...]:
        """Fields prefix0, prefix1, ... of a register that packs several
        elements (a synapse quad's weights, its correlation readings)."""
        out = []
        while f"{prefix}{len(out)}" in self.by_name:
            out.append(self.by_name[f"{prefix}{len(out)}"])
        if not out:
            raise KeyError(f"register {self.name} has no fields {prefix}0, {prefix}1, ...")
        return tuple(out)

    def pack_lanes(self, prefix: str, values) -> np.ndarray:
        """(..., n * lanes) element values -> (..., n) register words (other fields 0)."""
        lanes = self.lanes(prefix)
        v = np.asarray(values, dtype=np.int64)
        v = v.reshape(*v.shape[:-1], -1, len(lanes))
        limit = np.array([f.limit for f in lanes])
        if v.size and ((v < 0) | (v > limit)).any():
            raise ValueError(f"{self.name}.{prefix}*: values outside 0..{int(limit.max())}")
        shifts = np.array([f.lsb for f in lanes], dtype=np.int64)
        return (v << shifts).sum(axis=-1).astype(np.uint32)

    def unpack_lanes(self, prefix: str, words) -> np.ndarray:
        """(..., n) register words -> (..., n * lanes) element values."""
        lanes = self.lanes(prefix)
        w = np.asarray(words, dtype=np.uint32)[..., None]
        shifts = np.array([f.lsb for f in lanes], dtype=np.uint32)
        masks = np.array([(1 << f.width) - 1 for f in lanes], dtype=np.uint32)
        return ((w >> shifts) & masks).reshape(*w.shape[:-2], -1)


@dataclass(frozen=True)
class Block:
    name: str
    base: int
    registers: tuple[Register, ...]
    doc: str

    @cached_property
    def by_name(self) -> dict[str, Register]:
        return {r.name: r for r in self.registers}

    def register(self, name: str) -> Register:
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(f"block {self.name} has no register {name!r}; registers: "
                           f"{', '.join(self.by_name)}") from None


@dataclass(frozen=True)
class Location:
    """What lives at one address."""

    block: Block
    register: Register
    index: int                       # flat element index

    @property
    def address(self) -> int:
        return self.block.base + self.register.offset + self.index

    def __str__(self) -> str:
        r = self.register
        if r.shape:
            idx = np.unravel_index(self.index, r.shape)
            return f"{self.block.name}.{r.name}[{', '.join(str(int(i)) for i in idx)}]"
        return f"{self.block.name}.{r.name}"


@dataclass(frozen=True)
class RangeTable:
    """The map flattened into sorted address ranges for vectorised lookups.

    Range k covers addresses start[k] .. start[k]+count[k]-1 and occupies
    storage slots slot[k] .. slot[k]+count[k]-1."""

    start: np.ndarray      # uint64
    count: np.ndarray      # int64
    slot: np.ndarray       # int64
    access: np.ndarray     # uint8: 0 rw, 1 ro, 2 wo
    defined: np.ndarray    # uint32: defined-bit mask
    reset: np.ndarray      # uint32: reset word
    locations: tuple[tuple[Block, Register], ...]

    @property
    def slots(self) -> int:
        return int(self.slot[-1] + self.count[-1]) if len(self.slot) else 0

    def resolve(self, addresses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Range number and storage slot of each address; range -1 where unmapped."""
        a = np.asarray(addresses, dtype=np.uint64)
        k = np.searchsorted(self.start, a, side="right").astype(np.int64) - 1
        kc = np.maximum(k, 0)
        off = a.astype(np.int64) - self.start[kc].astype(np.int64)
        ok = (k >= 0) & (off < self.count[kc])
        k = np.where(ok, k, -1)
        return k, np.where(ok, self.slot[kc] + off, -1)


@dataclass(frozen=True)
class RegisterMap:
    profile: str
    blocks: tuple[Block, ...]
    doc: str = ""

    @cached_property
    def by_name(self) -> dict[str, Block]:
        return {b.name: b for b in self.blocks}

    def block(self, name: str) -> Block:
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(f"{self.profile} has no block {name!r}; blocks: {', '.join(self.by_name)}") from None

    def register(self, block: str, register: str) -> Register:
        return self.block(block).register(register)

    def has(self, block: str, register: str | None = None) -> bool:
        b = self.by_name.get(block)
        return b is not None and (register is None or register in b.by_name)

    def address(self, block: str, register: str, index=0) -> int:
        b = self.block(block)
        r = b.register(register)
        return b.base + r.offset + r.flat_index(index)

    def addresses(self, block: str, register: str, flat_indices=None) -> np.ndarray:
        """Addresses of many elements of one register array (flat indices)."""
        b = self.block(block)
        r = b.register(register)
        base = b.base + r.offset
        if flat_indices is None:
            return np.arange(base, base + r.count, dtype=np.uint64)
        idx = np.asarray(flat_indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= r.count):
            raise IndexError(f"{block}.{register}: indices outside 0..{r.count - 1}")
        return (base + idx).astype(np.uint64)

    def iter_registers(self) -> Iterator[tuple[Block, Register]]:
        for b in self.blocks:
            for r in b.registers:
                yield b, r

    @cached_property
    def ranges(self) -> RangeTable:
        entries = sorted(((b.base + r.offset, b, r) for b, r in self.iter_registers()),
                         key=lambda e: e[0])
        start, count, slot, access, defined, reset, locs = [], [], [], [], [], [], []
        s = 0
        for addr, b, r in entries:
            n = max(r.count, 1)
            start.append(addr)
            count.append(n)
            slot.append(s)
            access.append(ACCESS.index(r.access))
            # masked so that check() can report fields beyond bit 31 instead of crashing here
            defined.append(r.defined_mask & 0xFFFF_FFFF)
            reset.append(r.reset & 0xFFFF_FFFF)
            locs.append((b, r))
            s += n
        return RangeTable(np.array(start, dtype=np.uint64), np.array(count, dtype=np.int64),
                          np.array(slot, dtype=np.int64), np.array(access, dtype=np.uint8),
                          np.array(defined, dtype=np.uint32), np.array(reset, dtype=np.uint32),
                          tuple(locs))

    def lookup(self, address: int) -> Location | None:
        k, _ = self.ranges.resolve(np.array([address], dtype=np.uint64))
        if k[0] < 0:
            return None
        b, r = self.ranges.locations[int(k[0])]
        return Location(b, r, int(address - (b.base + r.offset)))

    def describe(self, address: int) -> str:
        loc = self.lookup(address)
        return f"{address:#010x} ({loc})" if loc else f"{address:#010x} (unmapped)"

    def check(self) -> list[str]:
        """Consistency problems: overlaps, fields outside 32 bits or overlapping,
        reset values that do not fit, addresses beyond 32 bits."""
        problems = []
        t = self.ranges
        ends = t.start.astype(np.int64) + t.count
        for k in range(len(t.start) - 1):
            if ends[k] > int(t.start[k + 1]):
                (b1, r1), (b2, r2) = t.locations[k], t.locations[k + 1]
                problems.append(f"{b1.name}.{r1.name} overlaps {b2.name}.{r2.name}")
        if len(ends) and ends[-1] > 1 << 32:
            problems.append("addresses beyond 32 bits")
        for b, r in self.iter_registers():
            seen = 0
            for f in r.fields:
                where = f"{b.name}.{r.name}.{f.name}"
                if f.lsb < 0 or f.width < 1 or f.lsb + f.width > 32:
                    problems.append(f"{where}: bits {f.lsb}+{f.width} outside 0..31")
                if seen & f.mask:
                    problems.append(f"{where}: overlaps another field")
                seen |= f.mask
                if not 0 <= f.reset <= f.limit:
                    problems.append(f"{where}: reset {f.reset} outside 0..{f.limit}")
                if f.maximum is not None and not 0 <= f.maximum < (1 << f.width):
                    problems.append(f"{where}: maximum {f.maximum} does not fit {f.width} bits")
        return problems


def field_table(*specs: tuple) -> tuple[Field, ...]:
    """Fields from compact (name, lsb, width, doc[, reset[, maximum]]) tuples."""
    return tuple(Field(*s) for s in specs)
