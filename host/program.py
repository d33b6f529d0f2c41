"""Playback programs: what the host asks the chip to do, as wire words.

    prog = conn.program()
    prog.write(NeuronOnChip(3), NeuronConfig(enable=1))
    ticket = prog.read(NeuronOnChip(3), NeuronConfig)
    prog.timer_reset()
    prog.spikes(labels, times)          # times in FPGA ticks or host.units.Time
    prog.wait_until(us(100))
    result = conn.run(prog)             # appends the halt if done() was not called
    ticket.value                        # NeuronConfig(...)

Reads are answered in the order they were issued; each read remembers the
index of its word so that a rejection names it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from isa import wire
from isa.profiles import Profile
from isa.wire import LimitKind
from isa.regmap import RegisterMap

from .errors import ChipError
from .units import Time, to_ticks

_ALL_BYTES = 0xF


class Ticket:
    """Result of one read (`value`) or of a bulk read (`values`), filled by run()."""

    def __init__(self, first_word: int, count: int, decode: Callable[[np.ndarray], Any] | None, what: str):
        self.first_word = first_word       # program index of the first read's address word
        self.count = count
        self._decode = decode
        self.what = what
        self._values: np.ndarray | None = None
        self._error: ChipError | None = None

    @property
    def done(self) -> bool:
        return self._values is not None or self._error is not None

    @property
    def values(self) -> np.ndarray:
        """Raw register words (uint32), one per read."""
        if self._error is not None:
            raise self._error
        if self._values is None:
            raise RuntimeError(f"ticket for {self.what} is not filled yet: run the program first")
        return self._values

    @property
    def value(self):
        """The decoded result (a container, or an int for raw register reads)."""
        v = self.values
        return self._decode(v) if self._decode else (int(v[0]) if self.count == 1 else v)

    def _fill(self, values: np.ndarray | None, error: ChipError | None) -> None:
        self._values, self._error = values, error

    def __repr__(self) -> str:
        state = "filled" if self.done else "pending"
        return f"<Ticket {self.what} ({self.count} word(s), {state})>"


@dataclass
class _Ops:
    """Per chunk: what the host wants to remember about its words."""

    start: int          # program index of the chunk's first word
    words: np.ndarray
    describe: Callable[[int], str]   # offset within chunk -> description


class Program:
    def __init__(self, profile: Profile, regmap: RegisterMap):
        self.profile = profile
        self.regmap = regmap
        self._chunks: list[_Ops] = []
        self._n = 0
        self._reads: list[tuple[int, np.ndarray, Ticket]] = []  # (chunk start, read word indices, ticket)
        self._done = False

    # ------------------------------------------------------------------ building blocks
    def _append(self, words: np.ndarray, describe: Callable[[int], str]) -> int:
        if self._done:
            raise RuntimeError("the program is complete (done() was called); start a new one")
        words = np.asarray(words, dtype=np.uint64)
        start = self._n
        self._chunks.append(_Ops(start, words, describe))
        self._n += len(words)
        return start

    def _describe_address(self, address: int) -> str:
        return self.regmap.describe(int(address))

    # ------------------------------------------------------------------ register bus
    def write_words(self, addresses, values, byte_enables=_ALL_BYTES) -> None:
        """Write raw 32-bit words to register-bus addresses (vectorised)."""
        addresses = np.atleast_1d(np.asarray(addresses, dtype=np.uint64))
        values = np.broadcast_to(np.asarray(values, dtype=np.int64), addresses.shape)
        if values.size and (values.min() < 0 or values.max() > 0xFFFFFFFF):
            raise ValueError("register words must fit 32 bits")
        n = len(addresses)
        words = np.empty(2 * n, dtype=np.uint64)
        words[0::2] = wire.encode_bulk("omnibus_address", is_read=0, byte_enables=byte_enables,
                                       address=addresses)
        words[1::2] = wire.encode_bulk("omnibus_data", data=values)
        self._append(words, lambda off, a=addresses, v=values:
                     f"write {int(v[off // 2]):#010x} to {self._describe_address(a[off // 2])}")

    def read_words(self, addresses, decode: Callable[[np.ndarray], Any] | None = None,
                   what: str | None = None) -> Ticket:
        """Read raw words; the ticket's `values` holds them in order."""
        addresses = np.atleast_1d(np.asarray(addresses, dtype=np.uint64))
        words = wire.encode_bulk("omnibus_address", is_read=1, byte_enables=_ALL_BYTES, address=addresses)
        what = what or (self._describe_address(addresses[0]) if len(addresses) == 1
                        else f"{len(addresses)} words from {self._describe_address(addresses[0])}")
        start = self._append(words, lambda off, a=addresses: f"read {self._describe_address(a[off])}")
        ticket = Ticket(start, len(addresses), decode, what)
        self._reads.append((start, np.arange(start, start + len(addresses)), ticket))
        return ticket

    def write(self, coord, container, reference=None) -> None:
        """Write a configuration container at a coordinate: a full value, in
        which fields left None take their reset values (not what the chip
        holds; `Connection.update` changes some fields and keeps the others).
        With `reference` (the container believed to be on the chip), only
        differing words go out."""
        addresses = coord.addresses(self.regmap, type(container))
        words = np.asarray(container.encode(self.regmap), dtype=np.int64)
        if reference is not None:
            if type(reference) is not type(container):
                raise TypeError(f"reference is a {type(reference).__name__}, not a {type(container).__name__}")
            differ = words != np.asarray(reference.encode(self.regmap), dtype=np.int64)
            addresses, words = addresses[differ], words[differ]
        if len(addresses):
            self.write_words(addresses, words)

    def read(self, coord, container_type) -> Ticket:
        """Read a configuration container at a coordinate."""
        addresses = coord.addresses(self.regmap, container_type)
        return self.read_words(addresses, lambda v: container_type.decode(self.regmap, v),
                               what=f"{container_type.__name__} at {coord}")

    # ------------------------------------------------------------------ timing and events
    def timer_reset(self) -> None:
        """Set the playback timer to zero.  Every later `wait_until`, spike
        time and recorded event or sample time counts FPGA ticks (8 ns) from
        here; a program without one counts from the previous reset of the
        timer (by this or an earlier program)."""
        self._append(np.array([wire.encode("timer_reset")], np.uint64), lambda off: "timer reset")

    def wait_until(self, time) -> None:
        """Hold the playback until the timer reaches `time` (FPGA ticks, or a
        host.units.Time: hardware time unless made with `biological=True`);
        the chip runs meanwhile: neurons integrate, events are recorded, the
        PPU executes.  A time already passed holds nothing.  Words after it
        (register accesses, spikes) take effect at that timer value; a wait
        is the only word that moves the chip's clock."""
        t = to_ticks(time, self.profile)
        if not 0 <= t < 1 << 32:
            raise ValueError(f"wait_until({t} ticks) outside the 32-bit timer range")
        self._append(np.array([wire.encode("wait_until", time=t)], np.uint64), lambda off: f"wait until {t}")

    def spikes(self, labels, times) -> None:
        """Inject spike events: labels (16 bit) at times (ticks or Time, any order;
        sent sorted, equal times packed three to a word).  Each time becomes a
        `wait_until`: spikes go in at the timer value they name, and the
        program's later words come after the last of them.  A label's bits
        [15:6] pick the synapse-driver row, its low bits are matched against
        the synapses' address labels (docs/model.md, "Label convention")."""
        labels = np.atleast_1d(np.asarray(labels, dtype=np.int64))
        if isinstance(times, Time):
            times = to_ticks(times, self.profile)
        elif isinstance(times, (list, tuple)) and any(not isinstance(t, (int, np.integer)) for t in times):
            times = np.array([to_ticks(t, self.profile) for t in times], dtype=np.int64)
        times = np.asarray(times)
        if times.size and times.dtype.kind not in "iu":
            raise TypeError(f"spike times of dtype {times.dtype}: give FPGA ticks as integers, "
                            "or host.units.Time values")
        times = np.broadcast_to(np.atleast_1d(times.astype(np.int64)), labels.shape)
        if labels.size and (labels.min() < 0 or labels.max() > 0xFFFF):
            raise ValueError("spike labels must fit 16 bits")
        if times.size and (times.min() < 0 or times.max() >= 1 << 32):
            raise ValueError("spike times must be within the 32-bit timer range (ticks)")
        if not len(labels):
            return
        order = np.argsort(times, kind="stable")
        t, lab = times[order], labels[order]
        n = len(t)
        new_group = np.ones(n, dtype=bool)
        new_group[1:] = t[1:] != t[:-1]
        gid = np.cumsum(new_group) - 1
        group_start = np.flatnonzero(new_group)
        pos = np.arange(n) - group_start[gid]
        slot = pos % 3
        pack_id = np.cumsum(slot == 0) - 1                  # global pack number
        n_packs = int(pack_id[-1]) + 1
        pack_size = np.bincount(pack_id, minlength=n_packs)
        pack_group = gid[slot == 0]
        # Layout: per group one wait word followed by its packs.
        n_groups = len(group_start)
        packs_before_group = np.concatenate([[0], np.cumsum(np.bincount(pack_group, minlength=n_groups))[:-1]])
        wait_pos = np.arange(n_groups) + packs_before_group
        pack_pos = pack_group + 1 + np.arange(n_packs)
        words = np.empty(n_groups + n_packs, dtype=np.uint64)
        words[wait_pos] = wire.encode_bulk("wait_until", time=t[group_start])
        lab_by_slot = np.zeros((n_packs, 3), dtype=np.int64)
        lab_by_slot[pack_id, slot] = lab
        for k in (1, 2, 3):
            sel = pack_size == k
            if sel.any():
                fields = {f"label{j}": lab_by_slot[sel, j] for j in range(k)}
                words[pack_pos[sel]] = wire.encode_bulk(f"spike_pack_{k}", **fields)
        self._append(words, lambda off: "spike input")

    def limit(self, seconds: float | None = None, ticks: int | None = None,
              output_words: int | None = None) -> None:
        """Ask the chip for lower limits for this program (isa.wire.LimitKind),
        from here on, counted from the program's start: wall time on the chip
        (`seconds`), chip time its waits advance (`ticks`, or a host.units.Time),
        response words (`output_words`: read data, spikes, MADC samples, event
        losses).  Above the chip's own limits the chip's hold.  Reaching one
        ends the program at that word: `Connection.run` raises
        host.ProgramLimit."""
        asked = []
        if seconds is not None:
            if not seconds > 0:
                raise ValueError(f"limit seconds={seconds}: must be positive")
            asked.append((LimitKind.SECONDS, max(1, int(round(seconds * 1000)))))
        if ticks is not None:
            t = to_ticks(ticks, self.profile) if isinstance(ticks, Time) else int(ticks)
            asked.append((LimitKind.TICKS, t))
        if output_words is not None:
            asked.append((LimitKind.OUTPUT_WORDS, int(output_words)))
        if not asked:
            raise ValueError("limit(): give seconds, ticks or output_words")
        for kind, value in asked:
            if not 0 <= value < 1 << 40:
                raise ValueError(f"limit {kind.name.lower()}={value}: outside 0..2**40-1")
        kinds = [k for k, _ in asked]
        values = [v for _, v in asked]
        words = wire.encode_bulk("limit", kind=np.array(kinds, np.int64), value=np.array(values, np.int64))
        self._append(words, lambda off, a=asked: f"limit: {a[off][0].describe(a[off][1])}")

    def barrier(self, mask: int = 0b111) -> None:
        """Hold the playback until outstanding register-bus (bit 0), JTAG (bit 1)
        and system-time (bit 2) operations have completed.  The twin completes
        each register access as it executes it, so a barrier holds nothing
        there; keep it where a board needs it (before timing-critical input
        that follows configuration)."""
        self._append(np.array([wire.encode("barrier", mask=mask)], np.uint64), lambda off: "barrier")

    def reset(self) -> None:
        """Chip reset: every register back to its reset value."""
        self._append(np.array([wire.encode("reset", active=1)], np.uint64), lambda off: "chip reset")

    def done(self, tag: int = 0) -> None:
        """End the program with a halting loopback; run() waits for its echo."""
        self._append(np.array([wire.encode("loopback", halt=1, tag=tag)], np.uint64), lambda off: "halt")
        self._done = True

    # ------------------------------------------------------------------ for the connection
    @property
    def is_done(self) -> bool:
        return self._done

    def words(self) -> np.ndarray:
        if not self._chunks:
            return np.zeros(0, dtype=np.uint64)
        return np.concatenate([c.words for c in self._chunks])

    def describe_word(self, index: int) -> str:
        starts = [c.start for c in self._chunks]
        k = int(np.searchsorted(starts, index, side="right")) - 1
        if k < 0 or index >= self._n:
            return "<outside the program>"
        return self._chunks[k].describe(index - self._chunks[k].start)

    @property
    def reads(self):
        return self._reads

    def __len__(self) -> int:
        return self._n
