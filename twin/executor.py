"""The FPGA-like playback executor: runs a program of wire words on a chip.

The program is cut into segments of one kind, each handled over whole arrays:

* register-bus segments (address/data words): paired, then applied as runs of
  writes and runs of reads through the register bus, in program order;
* timed segments (wait-until and spike packs): event times are the running
  maximum of the wait-until targets, and the chip advances through all of the
  segment's input in one call;
* control words (reset, timer reset, system-time init, barrier, loopback),
  one at a time.

Responses carry the index of the program word they answer; they are returned
in program order.  A rejected word yields an `error` notification naming its
index and the reason, and changes nothing.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from isa import wire
from isa.wire import Direction, ErrorReason, H

from .chip import Activity, Chip

_OMNI, _TIMED, _CONTROL, _INVALID = 0, 1, 2, 3
_CATEGORY = np.full(256, _INVALID, dtype=np.uint8)
for _name in ("omnibus_address", "omnibus_data"):
    _CATEGORY[H[_name]] = _OMNI
for _name in ("wait_until", "spike_pack_1", "spike_pack_2", "spike_pack_3"):
    _CATEGORY[H[_name]] = _TIMED
for _name in ("reset", "timer_reset", "system_time_init", "barrier", "loopback"):
    _CATEGORY[H[_name]] = _CONTROL

_U56 = np.uint64(wire.PAYLOAD_BITS)
_TIMER_MASK = (1 << 32) - 1


class Executor:
    """Runs programs on one chip; keeps the playback timer between programs.

    `advance(until, in_times, in_labels) -> Activity` moves the chip's clock
    (default `chip.advance`; twin.session.ChipHost passes its own, which
    shares the chip with other clients' programs while this one waits)."""

    def __init__(self, chip: Chip, advance: Callable[[int, np.ndarray, np.ndarray], Activity] | None = None):
        self.chip = chip
        self.advance = chip.advance if advance is None else advance
        self.timer_base = 0            # chip tick at the last timer reset
        self.halted = False

    @property
    def timer(self) -> int:
        return self.chip.now - self.timer_base

    def run(self, words: np.ndarray) -> np.ndarray:
        """Execute one program; returns the response words (chip -> host)."""
        words = np.asarray(words, dtype=np.uint64)
        out = _Responses()
        headers = (words >> _U56).astype(np.intp)
        invalid = wire.invalid_bulk(words, Direction.TO_CHIP)
        if invalid.any():
            bad = np.flatnonzero(invalid)
            known_to_chip = wire.KNOWN_HEADER[headers[bad]] & wire.TO_CHIP_HEADER[headers[bad]]
            reasons = np.where(known_to_chip, ErrorReason.RESERVED_PAYLOAD, ErrorReason.UNKNOWN_MESSAGE)
            out.errors(bad, reasons, headers[bad])
        cat = np.where(invalid, _INVALID, _CATEGORY[headers])
        # Segment boundaries (a control word is a segment of its own).  Invalid
        # words break segments too, so a write pair split by garbage is rejected.
        change = np.flatnonzero((cat[1:] != cat[:-1]) | (cat[1:] == _CONTROL)) + 1
        bounds = np.concatenate([[0], change, [len(words)]])
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            if a == b:
                continue
            kind = cat[a]
            idx = np.arange(a, b)
            if kind == _OMNI:
                self._omnibus(words[a:b], idx, out)
            elif kind == _TIMED:
                self._timed(words[a:b], idx, out)
            elif kind == _CONTROL:
                self._control(int(words[a]), a, out)
        self.chip.link_counters["word_errors"] += out.n_errors
        self.chip.link_counters["programs"] += 1
        return out.collect()

    # ------------------------------------------------------------------ register bus
    def _omnibus(self, w: np.ndarray, idx: np.ndarray, out: "_Responses") -> None:
        h = (w >> _U56).astype(np.uint8)
        is_addr = h == H["omnibus_address"]
        is_data = ~is_addr
        is_read = is_addr & (wire.field_bulk("omnibus_address", "is_read", w) == 1)
        wr_addr = is_addr & ~is_read
        nxt_data = np.zeros_like(is_data)
        nxt_data[:-1] = is_data[1:]
        paired = wr_addr & nxt_data
        missing = wr_addr & ~nxt_data
        prev_paired = np.zeros_like(paired)
        prev_paired[1:] = paired[:-1]
        orphan = is_data & ~prev_paired
        if missing.any():
            out.errors(idx[missing], ErrorReason.MISSING_DATA, H["omnibus_address"])
        if orphan.any():
            out.errors(idx[orphan], ErrorReason.ORPHAN_DATA, H["omnibus_data"])
        op_pos = np.flatnonzero(paired | is_read)        # positions of the address words
        if not len(op_pos):
            return
        address = wire.field_bulk("omnibus_address", "address", w[op_pos]).astype(np.uint64)
        be = wire.field_bulk("omnibus_address", "byte_enables", w[op_pos]).astype(np.uint8)
        reads = is_read[op_pos]
        data = np.zeros(len(op_pos), dtype=np.uint32)
        wsel = ~reads
        data[wsel] = wire.field_bulk("omnibus_data", "data", w[op_pos[wsel] + 1])
        # Runs of writes and runs of reads, in program order.
        change = np.flatnonzero(reads[1:] != reads[:-1]) + 1
        bounds = np.concatenate([[0], change, [len(op_pos)]])
        bus = self.chip.bus
        for a, b in zip(bounds[:-1], bounds[1:]):
            pos = idx[op_pos[a:b]]
            if reads[a]:
                res = bus.read(address[a:b], be[a:b])
                ok = res.reason == 0
                out.add(pos[ok], wire.encode_bulk("read_data", data=res.values[ok]))
                if not ok.all():
                    out.errors(pos[~ok], res.reason[~ok], H["omnibus_address"])
            else:
                res = bus.write(address[a:b], data[a:b], be[a:b])
                bad = res.reason != 0
                if bad.any():
                    out.errors(pos[bad], res.reason[bad], H["omnibus_address"])

    # ------------------------------------------------------------------ timed input
    def _timed(self, w: np.ndarray, idx: np.ndarray, out: "_Responses") -> None:
        h = (w >> _U56).astype(np.uint8)
        start_timer = self.timer
        is_wait = h == H["wait_until"]
        target = np.where(is_wait, wire.field_bulk("wait_until", "time", w).astype(np.int64), 0)
        # Timer value at each word: the running maximum of the targets so far.
        timer_at = np.maximum.accumulate(np.maximum(target, start_timer))
        n_labels = np.zeros(len(w), dtype=np.int64)
        for k in (1, 2, 3):
            n_labels[h == H[f"spike_pack_{k}"]] = k
        times, labels, src = [], [], []
        for k in (1, 2, 3):
            sel = np.flatnonzero(n_labels == k)
            if not len(sel):
                continue
            f = wire.fields_bulk(f"spike_pack_{k}", w[sel])
            for j in range(k):  # label0 first in time order within a pack
                times.append(timer_at[sel])
                labels.append(f[f"label{j}"])
                src.append(sel * 4 + j)
        base = self.timer_base
        if times:
            order = np.argsort(np.concatenate(src), kind="stable")
            in_t = np.concatenate(times)[order] + base
            in_l = np.concatenate(labels)[order].astype(np.uint16)
        else:
            in_t, in_l = np.zeros(0, np.int64), np.zeros(0, np.uint16)
        end = max(int(timer_at[-1]), start_timer) + base
        act = self.advance(end, in_t, in_l)
        # Attach each output to the word during whose wait it occurred.
        word_time = timer_at + base
        self._activity(act, idx, word_time, out)

    def _activity(self, act, idx: np.ndarray, word_time: np.ndarray, out: "_Responses") -> None:
        base = self.timer_base
        if len(act.spike_times):
            at = idx[np.minimum(np.searchsorted(word_time, act.spike_times, side="left"), len(idx) - 1)]
            out.add(at, wire.encode_bulk("spike", label=act.spike_labels,
                                         time=(act.spike_times - base) & _TIMER_MASK))
        if len(act.madc_times):
            at = idx[np.minimum(np.searchsorted(word_time, act.madc_times, side="left"), len(idx) - 1)]
            out.add(at, wire.encode_bulk("madc_sample", value=act.madc_values,
                                         time=(act.madc_times - base) & _TIMER_MASK))
        if act.events_dropped:      # the output FIFO overflowed: never silent
            at = idx[min(int(np.searchsorted(word_time, act.drop_time, side="left")), len(idx) - 1)]
            word = wire.encode("event_loss", dropped=min(act.events_dropped, (1 << 20) - 1),
                               time=(act.drop_time - base) & _TIMER_MASK)
            out.add(np.array([at]), np.array([word], dtype=np.uint64))

    # ------------------------------------------------------------------ control
    def _control(self, word: int, index: int, out: "_Responses") -> None:
        msg, f = wire.decode(word)
        if msg.name == "reset":
            if f["active"]:
                self.chip.reset()
        elif msg.name == "timer_reset":
            self.timer_base = self.chip.now
        elif msg.name == "system_time_init":
            pass  # the twin's system time is the FPGA timer; nothing to align
        elif msg.name == "barrier":
            pass  # register-bus accesses complete synchronously in the twin
        elif msg.name == "loopback":
            if f["halt"]:
                # Events in flight up to now leave the chip before the echo.
                act = self.advance(self.chip.now, np.zeros(0, np.int64), np.zeros(0, np.uint16))
                self._activity(act, np.array([index]), np.array([self.chip.now]), out)
            out.add(np.array([index]), np.array([wire.encode("loopback_echo", **f)], dtype=np.uint64))


class _Responses:
    """Response words tagged with the program index they answer."""

    def __init__(self) -> None:
        self._idx: list[np.ndarray] = []
        self._words: list[np.ndarray] = []
        self.n_errors = 0

    def add(self, idx: np.ndarray, words: np.ndarray) -> None:
        if len(words):
            self._idx.append(np.broadcast_to(np.asarray(idx, dtype=np.int64), (len(words),)))
            self._words.append(np.asarray(words, dtype=np.uint64))

    def errors(self, idx: np.ndarray, reason, header) -> None:
        idx = np.asarray(idx, dtype=np.int64)
        reason = np.broadcast_to(np.asarray(reason, dtype=np.int64), idx.shape)
        header = np.broadcast_to(np.asarray(header, dtype=np.int64), idx.shape)
        self.n_errors += len(idx)
        self.add(idx, wire.encode_bulk("error", reason=reason, header=header, index=idx & _TIMER_MASK))

    def collect(self) -> np.ndarray:
        if not self._words:
            return np.zeros(0, dtype=np.uint64)
        idx = np.concatenate(self._idx)
        words = np.concatenate(self._words)
        if len(self._words) == 1:
            return words
        return words[np.argsort(idx, kind="stable")]
