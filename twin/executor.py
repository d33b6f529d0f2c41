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

Bounded memory (twin.limits): a long wait runs in pieces of chip time
(`Pieces`), register-bus segments in windows of `BUS_WINDOW` words, and
the responses produced so far are handed to `emit` (streamed to the client)
whenever `FLUSH_WORDS` of them are ready, so what a program holds at once does
not grow with its output.  A program that reaches one of its limits
(twin.limits.Budget) ends at that word: `limit_reached` and `error
PROGRAM_LIMIT` name the limit and the word, its halting loopbacks are echoed,
nothing else after that word runs.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from isa import wire
from isa.wire import Direction, ErrorReason, H, Kind, LimitKind

from .activity import Activity
from .chip import Chip
from .limits import Budget, LimitExceeded, Limits

_U56 = np.uint64(wire.PAYLOAD_BITS)
#: Largest values of the response fields the executor fills (from the wire dictionary).
_TIMER_MASK = wire.message("spike").limit("time")          # event times: the playback timer's range
_INDEX_MASK = wire.message("error").limit("index")
_VALUE_MAX = wire.message("limit_reached").limit("value")
_DROPPED_MAX = wire.message("event_loss").limit("dropped")

#: Responses are handed to `emit` once at least this many are ready (one frame's worth).
FLUSH_WORDS = 1 << 16
#: Register-bus words applied at once (a window's answers are at most this many).
BUS_WINDOW = 1 << 16
#: Timed words (waits, spike packs) whose input events are prepared at once.
TIMED_WINDOW = 1 << 16
#: A cell of the piece grid holds this many neuron-steps (neurons x analog steps): the
#: spikes, probe traces and samples one chip advance collects are bounded by it.
PIECE_NEURON_STEPS = 1 << 20
#: A piece spans up to this many cells while the network is quiet (fewer calls), one when it fires.
PIECE_CELLS_MAX = 4
#: Wall time a piece should take at most: pieces are shortened while the twin runs slowly
#: (firmware on the register bus, every neuron firing), so that limits are checked, and the
#: chip can change hands, at least this often.
PIECE_SECONDS = 0.05


def piece_ticks(chip: Chip) -> int:
    """Chip time (ticks) of one cell of the piece grid."""
    p = chip.profile
    return p.analog.step_ticks * max(64, PIECE_NEURON_STEPS // p.neurons)


class Pieces:
    """Where the next piece of a long wait ends.  Pieces end on a grid of
    chip time (`piece_ticks`): one cell after a piece in which the neurons
    spiked much (a piece's spikes are held at once: at most about one per
    neuron-step), up to PIECE_CELLS_MAX cells while they are quiet; and they
    are shortened while a piece takes longer than PIECE_SECONDS of wall time
    (starting short when a PPU begins to execute), lengthened again when they
    take much less.  A quiet chip (no neuron, sampling or generator on, no
    PPU executing) runs a wait in one piece; a quiet core whose PPUs execute
    runs pieces sized by the wall-time rule alone (no grid: nothing to bound).  Where a wait is cut does not change what it does: the
    pieces continue one run of the analog core (Chip.advance(new_run=False)),
    so the same spikes and samples come out, only in more or fewer parts."""

    def __init__(self, chip: Chip):
        self.chip = chip
        self.step = chip.profile.analog.step_ticks
        self.cell = piece_ticks(chip)
        self.cells = 1
        self.ticks = PIECE_CELLS_MAX * self.cell     # what the wall-time rule allows
        self._busy = PIECE_NEURON_STEPS // 16        # spikes per cell above which pieces are one cell
        self._ppus = False
        # Only PPUs run on a quiet core: no spikes or samples to bound, so pieces
        # follow the wall clock alone (the grid's 4 cells are a few hundred us of chip
        # time, and the call per piece cost firmware 2-3x of its speed).
        self._alone = False
        self.alone_ticks = self.ticks

    def end(self, now: int, until: int) -> int:
        """The end of the piece from `now` of a wait until `until` (the whole
        wait while the chip is quiet: twin.core.EventCore.quiet)."""
        ppus = any(p.executing for p in self.chip.ppus)
        if ppus and not self._ppus:                  # firmware can make chip time slow: start short
            self.ticks = min(self.ticks, max(self.step, self.cell // 64))
            self.alone_ticks = min(self.alone_ticks, self.ticks)
        self._ppus = ppus
        quiet = self.chip.core.quiet()
        if not ppus and quiet:
            return until
        self._alone = quiet
        if quiet:                                    # only the PPUs: wall time alone sizes the piece
            return min(until, max((now + self.alone_ticks) // self.step * self.step, now + 1))
        grid = (now // self.cell + self.cells) * self.cell
        short = (now + self.ticks) // self.step * self.step
        return min(until, grid, max(short, now + 1))

    def saw(self, act: Activity, ticks: int, seconds: float) -> None:
        """A piece of `ticks` ticks took `seconds` and produced `act`: size the next one."""
        if self._alone:
            if seconds > PIECE_SECONDS and ticks > self.step:
                self.alone_ticks = max(self.step, int(ticks * PIECE_SECONDS / seconds))
            elif seconds < PIECE_SECONDS / 4:
                self.alone_ticks = min(1 << 40, 2 * max(self.alone_ticks, ticks))
            return
        cells = max(1, -(-ticks // self.cell))
        if act.neuron_spikes > self._busy * cells:
            self.cells = 1
        else:
            self.cells = min(PIECE_CELLS_MAX, self.cells * 2)
        if seconds > PIECE_SECONDS and ticks > self.step:
            self.ticks = max(self.step, int(ticks * PIECE_SECONDS / seconds))
        elif seconds < PIECE_SECONDS / 4:
            self.ticks = min(PIECE_CELLS_MAX * self.cell, 2 * max(self.ticks, ticks))


class Executor:
    """Runs programs on one chip; keeps the playback timer between programs.

    `advance(until, in_times, in_labels, on_part) -> Activity` moves the chip's
    clock; with `on_part` it hands the output to `on_part` as it comes, in
    time order, at points where the chip is consistent (`on_part` may raise to
    end the program there) and returns an empty Activity.  The default runs
    the chip alone, in pieces; twin.session.ChipHost passes its own, which
    shares the chip with other clients' programs while this one waits."""

    def __init__(self, chip: Chip, advance: Callable[..., Activity] | None = None,
                 limits: Limits | None = None):
        self.chip = chip
        self.advance = self._advance_alone if advance is None else advance
        self._pieces = Pieces(chip)
        self.limits = Limits() if limits is None else limits
        self.timer_base = 0            # chip tick at the last timer reset
        self.halted = False
        #: Most response words the last program held at once (not yet handed to `emit`).
        self.peak_words = 0

    @property
    def timer(self) -> int:
        return self.chip.now - self.timer_base

    def run(self, words: np.ndarray, emit: Callable[[np.ndarray], None] | None = None,
            budget: Budget | None = None) -> np.ndarray:
        """Execute one program; returns the response words (chip -> host) not
        handed to `emit` yet (all of them without `emit`)."""
        words = np.asarray(words, dtype=np.uint64)
        budget = Budget(self.limits) if budget is None else budget
        out = _Responses(emit)
        headers = (words >> _U56).astype(np.uint8)
        invalid = np.empty(len(words), dtype=bool)
        for i in range(0, len(words), BUS_WINDOW):         # (bounded temporaries for a long program)
            invalid[i:i + BUS_WINDOW] = wire.invalid_bulk(words[i:i + BUS_WINDOW], Direction.TO_CHIP)
        cat = np.where(invalid, _INVALID, _CATEGORY[headers])      # the kind of each word (twin.executor.HANDLERS)
        # Segment boundaries (a control word is a segment of its own).  Invalid
        # words break segments too, so a write pair split by garbage is rejected.
        change = np.flatnonzero((cat[1:] != cat[:-1]) | (cat[1:] == _CONTROL)) + 1
        bounds = np.concatenate([[0], change, [len(words)]])
        try:
            for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
                if a == b:
                    continue
                budget.check_seconds(a)
                kind = cat[a]
                if kind == _INVALID:
                    self._invalid(headers[a:b], np.arange(a, b), out)
                elif kind == _CONTROL:
                    self._control(int(words[a]), a, out, budget)
                else:                  # a segment of register-access or timed words
                    _SEGMENT[kind](self, words, a, b, out, budget)
                out.settle()
        except LimitExceeded as lim:
            self._ended(words, headers, lim, out)
        self.chip.link_counters["word_errors"] += out.n_errors
        self.chip.link_counters["programs"] += 1
        rest = out.collect()
        self.peak_words = out.peak
        return rest

    def _ended(self, words: np.ndarray, headers: np.ndarray, lim: LimitExceeded, out: "_Responses") -> None:
        """The program reached a limit at word `lim.index`: say so, echo its halting loopbacks."""
        out.settle()
        i = lim.index
        notice = [wire.encode("limit_reached", kind=int(lim.kind), value=min(lim.value, _VALUE_MAX)),
                  wire.encode("error", reason=ErrorReason.PROGRAM_LIMIT, header=int(headers[i]),
                              index=i & _INDEX_MASK)]
        out.add(np.array([i, i]), np.array(notice, dtype=np.uint64))
        rest = words[i:]
        halts = np.flatnonzero((headers[i:] == H["loopback"])
                               & (wire.field_bulk("loopback", "halt", rest) == 1)
                               & ~wire.invalid_bulk(rest, Direction.TO_CHIP))
        if len(halts):
            f = wire.fields_bulk("loopback", rest[halts])
            out.add(halts + i, wire.encode_bulk("loopback_echo", halt=1, tag=f["tag"]))
        out.settle()
        self.chip.link_counters["program_limits"] += 1

    def _invalid(self, headers: np.ndarray, idx: np.ndarray, out: "_Responses") -> None:
        known_to_chip = wire.KNOWN_HEADER[headers] & wire.TO_CHIP_HEADER[headers]
        reasons = np.where(known_to_chip, ErrorReason.RESERVED_PAYLOAD, ErrorReason.UNKNOWN_MESSAGE)
        out.errors(idx, reasons, headers)

    # ------------------------------------------------------------------ the clock, alone
    def _advance_alone(self, until: int, in_t: np.ndarray, in_l: np.ndarray,
                       on_part: Callable[[Activity], None] | None = None, continues: bool = False) -> Activity:
        """`chip.advance` in pieces of chip time (`Pieces`); `continues`: the
        wait goes on from the previous call (the same run of the analog core)."""
        chip = self.chip
        parts = []
        if until <= chip.now:
            parts.append(chip.advance(until, in_t, in_l, new_run=not continues))
        pieces = self._pieces
        new_run = not continues
        while chip.now < until:
            start, limit = chip.now, pieces.end(chip.now, until)
            k = int(np.searchsorted(in_t, limit, side="right"))
            t0 = time.monotonic()
            parts.append(chip.advance(limit, in_t[:k], in_l[:k], new_run=new_run))
            pieces.saw(parts[-1], limit - start, time.monotonic() - t0)
            new_run = False                     # the next piece continues this run
            in_t, in_l = in_t[k:], in_l[k:]
            if on_part is not None:
                on_part(parts.pop())
        if on_part is not None:
            for act in parts:
                on_part(act)
            return Activity()
        return Activity.merge(parts) if parts else Activity()

    # ------------------------------------------------------------------ register bus
    def _omnibus_windows(self, words: np.ndarray, a: int, b: int, out: "_Responses", budget: Budget) -> None:
        """A register-bus segment in windows of at most BUS_WINDOW words, never
        cut between a write address and its data word (the pairing is the same)."""
        while a < b:
            e = min(b, a + BUS_WINDOW)
            if e < b and words[e] >> _U56 == H["omnibus_data"] and words[e - 1] >> _U56 == H["omnibus_address"]:
                e += 1                  # keep the write pair together (e - 1 is an address, e its data)
            self._omnibus(words[a:e], np.arange(a, e), out, budget)
            if e < b:
                out.settle()
                budget.check_seconds(e)
            a = e

    def _omnibus(self, w: np.ndarray, idx: np.ndarray, out: "_Responses", budget: Budget) -> None:
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
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            pos = idx[op_pos[a:b]]
            if reads[a]:
                while a < b:            # never more read answers than the output limit leaves
                    n = min(b - a, budget.output_left)
                    if n == 0:
                        self._drop_pending_after(out, int(idx[op_pos[a]]))
                        raise budget.over_output(int(idx[op_pos[a]]))
                    pos = idx[op_pos[a:a + n]]
                    res = bus.read(address[a:a + n], be[a:a + n])
                    ok = res.reason == 0
                    out.add(pos[ok], wire.encode_bulk("read_data", data=res.values[ok]))
                    budget.output_used += int(ok.sum())
                    if not ok.all():
                        out.errors(pos[~ok], res.reason[~ok], H["omnibus_address"])
                    a += n
            else:
                res = bus.write(address[a:b], data[a:b], be[a:b])
                bad = res.reason != 0
                if bad.any():
                    out.errors(pos[bad], res.reason[bad], H["omnibus_address"])

    @staticmethod
    def _drop_pending_after(out: "_Responses", index: int) -> None:
        """Answers of words at or after `index` of this window (notices of
        unpaired words found ahead) are not part of a program that ends there."""
        out.keep_before(index)

    # ------------------------------------------------------------------ timed input
    def _timed_windows(self, words: np.ndarray, a: int, b: int, out: "_Responses", budget: Budget) -> None:
        """A timed segment in windows of at most TIMED_WINDOW words (its input
        events and times are computed a window at a time); the windows
        continue one wait, as the whole segment would."""
        first = True
        while a < b:
            e = min(b, a + TIMED_WINDOW)
            self._timed(words[a:e], np.arange(a, e), out, budget, continues=not first)
            first = False
            a = e

    def _timed(self, w: np.ndarray, idx: np.ndarray, out: "_Responses", budget: Budget,
               continues: bool = False) -> None:
        h = (w >> _U56).astype(np.uint8)
        start_timer = self.timer
        is_wait = h == H["wait_until"]
        target = np.where(is_wait, wire.field_bulk("wait_until", "time", w).astype(np.int64), 0)
        # Timer value at each word: the running maximum of the targets so far.
        timer_at = np.maximum.accumulate(np.maximum(target, start_timer))
        times, labels, src = [], [], []
        for pack in _SPIKE_PACKS:
            sel = np.flatnonzero(h == pack.header)
            if not len(sel):
                continue
            f = wire.fields_bulk(pack.name, w[sel])
            for j in range(len(pack.fields)):  # label0 first in time order within a pack
                times.append(timer_at[sel])
                labels.append(f[f"label{j}"])
                src.append(sel * _PACK_SLOTS + j)
        base = self.timer_base
        if times:
            order = np.argsort(np.concatenate(src), kind="stable")
            in_t = np.concatenate(times)[order] + base
            in_l = np.concatenate(labels)[order].astype(np.uint16)
        else:
            in_t, in_l = np.zeros(0, np.int64), np.zeros(0, np.uint16)
        word_time = timer_at + base
        start = self.chip.now
        end = max(int(timer_at[-1]), start_timer) + base
        stop = None
        allowed = start + budget.ticks_left
        if end > allowed:               # the hardware-time limit ends the program inside this segment
            k = int(np.searchsorted(word_time, allowed, side="right"))
            stop = int(idx[k])          # the first word whose time lies beyond the limit
            keep = in_t <= allowed
            in_t, in_l = in_t[keep], in_l[keep]
            end = allowed

        def on_part(act: Activity) -> None:
            # Attach each output to the word during whose wait it occurred.
            self._activity(act, idx, word_time, out, budget)
            out.settle()
            k = int(np.searchsorted(word_time, self.chip.now, side="right"))
            if k < len(idx):
                budget.check_seconds(int(idx[k]))

        if continues:
            self.advance(end, in_t, in_l, on_part, continues=True)
        else:
            self.advance(end, in_t, in_l, on_part)
        budget.ticks_used += end - start
        if stop is not None:
            raise budget.over_ticks(stop)

    def _activity(self, act, idx: np.ndarray, word_time: np.ndarray, out: "_Responses",
                  budget: Budget) -> None:
        base = self.timer_base
        at, words = [], []
        if len(act.spike_times):
            at.append(idx[np.minimum(np.searchsorted(word_time, act.spike_times, side="left"), len(idx) - 1)])
            words.append(wire.encode_bulk("spike", label=act.spike_labels,
                                          time=(act.spike_times - base) & _TIMER_MASK))
        if len(act.madc_times):
            at.append(idx[np.minimum(np.searchsorted(word_time, act.madc_times, side="left"), len(idx) - 1)])
            words.append(wire.encode_bulk("madc_sample", value=act.madc_values,
                                          time=(act.madc_times - base) & _TIMER_MASK))
        if act.events_dropped:      # the output FIFO overflowed: never silent
            at.append(np.array([idx[min(int(np.searchsorted(word_time, act.drop_time, side="left")), len(idx) - 1)]]))
            words.append(np.array([wire.encode("event_loss", dropped=min(act.events_dropped, _DROPPED_MAX),
                                               time=(act.drop_time - base) & _TIMER_MASK)], dtype=np.uint64))
        if not at:
            return
        at = np.concatenate(at) if len(at) > 1 else at[0]
        words = np.concatenate(words) if len(words) > 1 else words[0]
        left = budget.output_left
        if len(words) > left:           # the output limit: what fits goes out, the program ends at the next
            order = np.argsort(at, kind="stable")
            keep = order[:left]
            out.add(at[keep], words[keep])
            budget.output_used += left
            raise budget.over_output(int(at[order[left]]))
        out.add(at, words)
        budget.output_used += len(words)

    # ------------------------------------------------------------------ control
    def _control(self, word: int, index: int, out: "_Responses", budget: Budget) -> None:
        msg, f = wire.decode(word)
        _CONTROL_HANDLERS[msg.header](self, f, index, out, budget)

    def _reset(self, f: dict, index: int, out: "_Responses", budget: Budget) -> None:
        if f["active"]:
            self.chip.reset()

    def _timer_reset(self, f: dict, index: int, out: "_Responses", budget: Budget) -> None:
        self.timer_base = self.chip.now

    def _system_time_init(self, f: dict, index: int, out: "_Responses", budget: Budget) -> None:
        """The twin's system time is the FPGA timer: nothing to align."""

    def _barrier(self, f: dict, index: int, out: "_Responses", budget: Budget) -> None:
        """Register-bus accesses complete synchronously in the twin: nothing is outstanding."""

    def _limit(self, f: dict, index: int, out: "_Responses", budget: Budget) -> None:
        try:
            kind = LimitKind(f["kind"])
        except ValueError:
            out.errors(np.array([index]), ErrorReason.FIELD_RANGE, H["limit"])
            return
        budget.lower(kind, f["value"], index)

    def _lock(self, f: dict, index: int, out: "_Responses", budget: Budget) -> None:
        """The chip's lock is the session's (twin.session: a program of lock words is done there and
        never comes here); a lock word among other words is rejected (the session does that first)."""
        out.errors(np.array([index]), ErrorReason.LOCK_PLACEMENT, H["lock"])

    def _loopback(self, f: dict, index: int, out: "_Responses", budget: Budget) -> None:
        if f["halt"]:
            # Events in flight up to now leave the chip before the echo.
            act = self.advance(self.chip.now, np.zeros(0, np.int64), np.zeros(0, np.uint16))
            self._activity(act, np.array([index]), np.array([self.chip.now]), out, budget)
        out.add(np.array([index]), np.array([wire.encode("loopback_echo", **f)], dtype=np.uint64))


#: The executor's handler of every message to the chip.  Register-access and
#: timed words are handled a segment (a run of words of that kind) at a time,
#: by their kind's segment handler; control words one at a time.  isa.wire's
#: check_handlers holds this table to the wire dictionary at import
#: (`dispatch_table`): a message without a handler fails there, naming it.
HANDLERS = {
    "omnibus_address": Executor._omnibus_windows,
    "omnibus_data": Executor._omnibus_windows,
    "wait_until": Executor._timed_windows,
    "spike_pack_1": Executor._timed_windows,
    "spike_pack_2": Executor._timed_windows,
    "spike_pack_3": Executor._timed_windows,
    "reset": Executor._reset,
    "timer_reset": Executor._timer_reset,
    "system_time_init": Executor._system_time_init,
    "barrier": Executor._barrier,
    "loopback": Executor._loopback,
    "limit": Executor._limit,
    "lock": Executor._lock,
}

_REGISTER, _TIMED, _CONTROL, _INVALID = 0, 1, 2, 3
_KIND_CODE = {Kind.REGISTER: _REGISTER, Kind.TIMED: _TIMED, Kind.CONTROL: _CONTROL}


def dispatch_table(handlers: dict, messages=wire.MESSAGES):
    """The executor's dispatch derived from the message kinds: (kind code per
    header, segment handler per kind code, control handler per header).
    Raises isa.wire.ContractError when `handlers` misses a message to the chip
    (or names another), or when the words of one segment kind would need
    different handlers."""
    messages = tuple(messages)
    wire.check_handlers(handlers, Direction.TO_CHIP, "twin.executor.HANDLERS", messages)
    category = np.full(256, _INVALID, dtype=np.uint8)
    segment, control = {}, {}
    for m in messages:
        if m.direction is not Direction.TO_CHIP:
            continue
        code = _KIND_CODE[m.kind]
        category[m.header] = code
        if code == _CONTROL:
            control[m.header] = handlers[m.name]
        elif segment.setdefault(code, handlers[m.name]) is not handlers[m.name]:
            raise wire.ContractError(f"twin.executor.HANDLERS: {m.name} is a {m.kind.value} message, whose "
                                     f"segments one handler runs; it names another")
    return category, segment, control


_CATEGORY, _SEGMENT, _CONTROL_HANDLERS = dispatch_table(HANDLERS)
#: Spike packs: every timed message but wait_until; its fields label0, label1, ... are its events in time order.
_SPIKE_PACKS = tuple(m for m in wire.by_kind(Kind.TIMED) if m.name != "wait_until")
_PACK_SLOTS = max(len(m.fields) for m in _SPIKE_PACKS) + 1


class _Responses:
    """Response words tagged with the program index they answer.  What a
    segment (or a window or piece of one) adds is put in program order by
    `settle`; settled words are handed to `emit` once FLUSH_WORDS are ready."""

    def __init__(self, emit: Callable[[np.ndarray], None] | None = None) -> None:
        self._idx: list[np.ndarray] = []
        self._words: list[np.ndarray] = []
        self._ready: list[np.ndarray] = []
        self._n_pending = 0
        self._n_ready = 0
        self._emit = emit
        self.n_errors = 0
        self.peak = 0

    def add(self, idx: np.ndarray, words: np.ndarray) -> None:
        if len(words):
            self._idx.append(np.broadcast_to(np.asarray(idx, dtype=np.int64), (len(words),)))
            self._words.append(np.asarray(words, dtype=np.uint64))
            self._n_pending += len(words)
            self.peak = max(self.peak, self._n_pending + self._n_ready)

    def errors(self, idx: np.ndarray, reason, header) -> None:
        idx = np.asarray(idx, dtype=np.int64)
        reason = np.broadcast_to(np.asarray(reason, dtype=np.int64), idx.shape)
        header = np.broadcast_to(np.asarray(header, dtype=np.int64), idx.shape)
        self.n_errors += len(idx)
        self.add(idx, wire.encode_bulk("error", reason=reason, header=header, index=idx & _INDEX_MASK))

    def keep_before(self, index: int) -> None:
        """Forget pending words answering words at or after `index`."""
        kept_i, kept_w = [], []
        for i, w in zip(self._idx, self._words):
            sel = i < index
            if sel.any():
                kept_i.append(i[sel])
                kept_w.append(w[sel])
            if w.dtype == np.uint64 and not sel.all():
                errs = (w[~sel] >> _U56) == H["error"]
                self.n_errors -= int(errs.sum())
        self._idx, self._words = kept_i, kept_w
        self._n_pending = sum(len(w) for w in kept_w)

    def settle(self) -> None:
        if not self._words:
            return
        if len(self._words) == 1:
            words = self._words[0]
        else:
            idx = np.concatenate(self._idx)
            words = np.concatenate(self._words)[np.argsort(idx, kind="stable")]
        self._idx, self._words = [], []
        self._ready.append(words)
        self._n_ready += len(words)
        self._n_pending = 0
        if self._emit is not None and self._n_ready >= FLUSH_WORDS:
            self._emit(self._take())

    def _take(self) -> np.ndarray:
        if not self._ready:
            return np.zeros(0, dtype=np.uint64)
        words = self._ready[0] if len(self._ready) == 1 else np.concatenate(self._ready)
        self._ready, self._n_ready = [], 0
        return words

    def collect(self) -> np.ndarray:
        self.settle()
        return self._take()
