"""The chip's register bus: storage for every register of the map, with access
semantics, applied to whole arrays of accesses at once.

Storage is one flat uint32 array with a slot per register element, laid out in
the order of the map's RangeTable.  Blocks with behaviour (status registers,
counters, the analog core, the PPU) attach read and write hooks to registers,
and read or modify their registers through `view()`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from isa.regmap import RegisterMap
from isa.wire import ErrorReason

RW, RO, WO = 0, 1, 2

#: byte_enables bit i enables bits 8i .. 8i+7 of the data word.
BYTE_MASKS = np.array([sum(0xFF << (8 * i) for i in range(4) if be >> i & 1) for be in range(16)],
                      dtype=np.uint32)

ReadHook = Callable[[np.ndarray], np.ndarray]            # element indices -> values
WriteHook = Callable[[np.ndarray, np.ndarray], None]     # element indices, new values (after the write)


@dataclass
class AccessResult:
    """Outcome of a vector of accesses: `reason` is 0 where the access succeeded,
    else an ErrorReason; `values` holds read data (reads only)."""

    reason: np.ndarray
    values: np.ndarray | None = None


class RegisterBus:
    def __init__(self, regmap: RegisterMap, reset_overrides: dict[tuple[str, str], int] | None = None):
        self.map = regmap
        self.table = t = regmap.ranges
        self.storage = np.zeros(t.slots, dtype=np.uint32)
        self._range_of = {(b.name, r.name): k for k, (b, r) in enumerate(t.locations)}
        self._reset_image = np.repeat(t.reset, t.count).astype(np.uint32)
        for (block, reg), value in (reset_overrides or {}).items():
            self._reset_image[self.slots(block, reg)] = value
        self._read_hooks: dict[int, ReadHook] = {}
        self._write_hooks: dict[int, WriteHook] = {}
        # Fields with a legal maximum below their width, per range: (lsb, width, max).
        self._limits: dict[int, list[tuple[int, int, int]]] = {}
        for k, (_, r) in enumerate(t.locations):
            lim = [(f.lsb, f.width, f.maximum) for f in r.fields if f.maximum is not None
                   and f.maximum < (1 << f.width) - 1]
            if lim:
                self._limits[k] = lim
        self._limited = np.zeros(len(t.start), dtype=bool)
        self._limited[list(self._limits)] = True
        self._hooked_read = np.zeros(len(t.start), dtype=bool)
        self._hooked_write = np.zeros(len(t.start), dtype=bool)
        self.reset()

    # ------------------------------------------------------------------ setup
    def reset(self) -> None:
        self.storage[:] = self._reset_image

    def slots(self, block: str, register: str) -> slice:
        k = self._range_index(block, register)
        s = int(self.table.slot[k])
        return slice(s, s + int(self.table.count[k]))

    def view(self, block: str, register: str) -> np.ndarray:
        """Writable view of a register array's storage, shaped like the register."""
        r = self.map.register(block, register)
        v = self.storage[self.slots(block, register)]
        return v.reshape(r.shape) if r.shape else v

    def on_read(self, block: str, register: str, hook: ReadHook) -> None:
        k = self._range_index(block, register)
        self._read_hooks[k] = hook
        self._hooked_read[k] = True

    def on_write(self, block: str, register: str, hook: WriteHook) -> None:
        k = self._range_index(block, register)
        self._write_hooks[k] = hook
        self._hooked_write[k] = True

    def _range_index(self, block: str, register: str) -> int:
        self.map.register(block, register)  # clear KeyError for wrong names
        return self._range_of[(block, register)]

    # ------------------------------------------------------------------ access
    def write(self, addresses: np.ndarray, data: np.ndarray, byte_enables: np.ndarray) -> AccessResult:
        """Apply writes in order; rejected writes leave state untouched."""
        addresses = np.asarray(addresses, dtype=np.uint64)
        data = np.asarray(data, dtype=np.uint32)
        be = np.asarray(byte_enables, dtype=np.uint8)
        t = self.table
        slot, kk, reason = self._resolve(addresses, RO, ErrorReason.READ_ONLY)
        bmask = BYTE_MASKS[be]
        reason[(reason == 0) & ((data & bmask & ~t.defined[kk]) != 0)] = ErrorReason.RESERVED_BITS
        ok = reason == 0
        if not ok.any():
            return AccessResult(reason)
        oi = np.flatnonzero(ok)
        s, d, m = slot[oi], data[oi], bmask[oi]
        full = bool((m == 0xFFFFFFFF).all())
        independent = full and len(np.unique(s)) == len(s)   # no write depends on another
        limited = self._limited[kk[oi]]
        if independent:
            merged = d
            bad = self._check_limits(kk[oi], merged) if limited.any() else None
        else:
            # Partial or repeated writes: each one is judged against the state
            # the accepted writes before it left (a rejected one changes nothing).
            merged, bad = self._merge_sequential(s, d, m, kk[oi] if limited.any() else None)
        if bad is not None and bad.any():
            reason[oi[bad]] = ErrorReason.FIELD_RANGE
            keep = ~bad
            oi, s, merged = oi[keep], s[keep], merged[keep]
        self._store(s, merged)
        # Hooks see each accepted write, in program order.
        if len(oi) and self._hooked_write[kk[oi]].any():
            ks = kk[oi]
            for kh in np.unique(ks[self._hooked_write[ks]]):
                sel = ks == kh
                local = s[sel] - t.slot[kh]
                self._write_hooks[int(kh)](local, merged[sel])
        return AccessResult(reason)

    def read(self, addresses: np.ndarray, byte_enables: np.ndarray | None = None) -> AccessResult:
        addresses = np.asarray(addresses, dtype=np.uint64)
        t = self.table
        slot, kk, reason = self._resolve(addresses, WO, ErrorReason.WRITE_ONLY)
        if byte_enables is not None:
            reason[(reason == 0) & (np.asarray(byte_enables) != 0xF)] = ErrorReason.BYTE_ENABLES
        ok = reason == 0
        values = np.zeros(len(addresses), dtype=np.uint32)
        values[ok] = self.storage[slot[ok]]
        if ok.any() and self._hooked_read[kk[ok]].any():
            for kh in np.unique(kk[ok & self._hooked_read[kk]]):
                sel = ok & (kk == kh)
                values[sel] = self._read_hooks[int(kh)](slot[sel] - t.slot[kh])
        return AccessResult(reason, values)

    # ------------------------------------------------------------------ internals
    def _resolve(self, addresses: np.ndarray, forbidden_access: int, forbidden_reason: ErrorReason):
        """Storage slot, range number (0 where unmapped) and rejection reason per access."""
        k, slot = self.table.resolve(addresses)
        reason = np.zeros(len(addresses), dtype=np.uint8)
        mapped = k >= 0
        reason[~mapped] = ErrorReason.UNKNOWN_ADDRESS
        kk = np.where(mapped, k, 0)
        reason[mapped & (self.table.access[kk] == forbidden_access)] = forbidden_reason
        return slot, kk, reason

    def _merge_sequential(self, slots: np.ndarray, data: np.ndarray, masks: np.ndarray,
                          ranges: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Resolve partial and repeated writes in order: each write sees the
        result of the accepted writes before it to the same slot.  With
        `ranges`, writes that leave a field above its legal maximum are
        rejected and leave the slot as it was.  Returns the value each write
        leaves behind and the mask of rejected writes (None without `ranges`)."""
        out = np.empty(len(slots), dtype=np.uint32)
        bad = None if ranges is None else np.zeros(len(slots), dtype=bool)
        current: dict[int, int] = {}
        st = self.storage
        rs = [None] * len(slots) if ranges is None else ranges.tolist()
        for i, (s, d, m, k) in enumerate(zip(slots.tolist(), data.tolist(), masks.tolist(), rs)):
            old = current.get(s, int(st[s]))
            new = (old & ~m & 0xFFFFFFFF) | (d & m)
            if k is not None and any((new >> lsb) & ((1 << width) - 1) > maximum
                                     for lsb, width, maximum in self._limits.get(k, ())):
                bad[i] = True
                new = old
            current[s] = new
            out[i] = new
        return out, bad

    def _store(self, slots: np.ndarray, values: np.ndarray) -> None:
        if len(np.unique(slots)) == len(slots):
            self.storage[slots] = values
            return
        # Last write wins: keep the final occurrence of every slot.
        rev_unique, rev_first = np.unique(slots[::-1], return_index=True)
        self.storage[rev_unique] = values[::-1][rev_first]

    def _check_limits(self, ranges: np.ndarray, words: np.ndarray) -> np.ndarray:
        bad = np.zeros(len(words), dtype=bool)
        for k in np.unique(ranges[self._limited[ranges]]):
            sel = ranges == k
            w = words[sel]
            b = np.zeros(len(w), dtype=bool)
            for lsb, width, maximum in self._limits[int(k)]:
                b |= ((w >> np.uint32(lsb)) & np.uint32((1 << width) - 1)) > maximum
            bad[sel] = b
        return bad
