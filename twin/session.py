"""One client's byte stream to a chip: frames in, programs executed, frames out.

Every transport (in-process link, TCP, pseudo-terminal) wraps a Session, so
all of them carry the same bytes and behave the same.  Frames accumulate until
a frame flagged END completes the program; the program then runs on the chip
when it is this session's turn (`ChipHost`).

Sharing one chip between clients (`ChipHost`): a program runs alone, in
program order, except while it waits in a timed segment (`wait_until`) for the
chip's clock.  Then, when another client's program waits for the chip and the
clock has moved for `SLICE_SECONDS` of wall time, the chip goes to that
program at the next point where the chip's loop returns to Python (every few
ms while a PPU computes, at each register-bus access of the firmware), and
comes back after it.  Nobody's clock is overtaken: the chip only ever runs to
the earliest target of all waiting segments, so every program's words after a
wait run at exactly the tick it waited for.  Whoever moves the clock plays the
input events of every waiting segment at their times, and every segment
receives all output (spikes, MADC samples, FIFO losses) of its wait, whoever
moved the clock then.  Each session has its own playback timer (Executor).
Without another client nothing changes: the chip's loop runs through as before.
"""
from __future__ import annotations

import collections
import signal
import threading
import time
from typing import Callable

import numpy as np

from isa import frame, wire
from isa.frame import FrameProblem
from isa.wire import ErrorReason, TimeoutReason

from .chip import Activity, Chip
from .executor import Executor

_FAULT_REASON = {
    FrameProblem.CRC: ErrorReason.FRAME_CRC,
    FrameProblem.TRUNCATED: ErrorReason.FRAME_TRUNCATED,
    FrameProblem.OVERSIZED: ErrorReason.FRAME_OVERSIZED,
    FrameProblem.VERSION: ErrorReason.FRAME_VERSION,
    FrameProblem.SEQUENCE: ErrorReason.FRAME_SEQUENCE,
    FrameProblem.DIRECTION: ErrorReason.FRAME_DIRECTION,
}
_STAT_COUNTER = {  # FrameStats field -> link block counter
    "frames": "frames", "crc_errors": "crc_errors", "truncated": "truncated",
    "oversized": "oversized", "bad_version": "bad_version", "wrong_direction": "wrong_direction",
    "sequence_gaps": "sequence_gaps", "bytes_discarded": "bytes_discarded",
}
_FAULT_STAT = {  # FrameProblem -> FrameStats field it increments
    FrameProblem.CRC: "crc_errors", FrameProblem.TRUNCATED: "truncated",
    FrameProblem.OVERSIZED: "oversized", FrameProblem.VERSION: "bad_version",
    FrameProblem.SEQUENCE: "sequence_gaps", FrameProblem.DIRECTION: "wrong_direction",
}

#: Index of a notice whose frame sequence number could not be read.
_NO_INDEX = 0xFFFFFFFF

#: Largest program the playback buffer takes (words); beyond it the program is dropped and reported.
MAX_PROGRAM_WORDS = 1 << 24


#: Wall time a waiting program keeps the chip's clock moving while another
#: client's program waits for the chip (then the chip changes hands at the
#: loop's next return to Python).
SLICE_SECONDS = 0.02


class ProgramCancelled(Exception):
    """A program given up at a point where the chip is consistent (its
    session's `cancel_check` said why: e.g. the server stops)."""


class _Turns:
    """The chip, handed from thread to thread in the order they asked for it."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._queue: collections.deque = collections.deque()
        self._owner: int | None = None

    @property
    def contended(self) -> bool:
        """Some thread waits for the chip."""
        return bool(self._queue)

    def owned(self) -> bool:
        return self._owner == threading.get_ident()

    def acquire(self, check: Callable[[], None]) -> None:
        with self._cond:
            self._wait_turn(check)

    def release(self) -> None:
        with self._cond:
            if self._owner == threading.get_ident():
                self._owner = None
                self._cond.notify_all()

    def pass_on(self, check: Callable[[], None]) -> None:
        """Let the threads waiting now have the chip first; return with it."""
        with self._cond:
            if not self._queue:
                return
            self._owner = None
            self._cond.notify_all()
            self._wait_turn(check)

    def _wait_turn(self, check: Callable[[], None]) -> None:
        me = threading.get_ident()
        self._queue.append(me)
        try:
            while self._owner is not None or self._queue[0] != me:
                check()                      # raises to give up
                self._cond.wait(0.05)
        except BaseException:
            self._queue.remove(me)
            self._cond.notify_all()
            raise
        self._queue.popleft()
        self._owner = me


class _Segment:
    """A timed segment waiting for the chip's clock to reach `until`."""

    def __init__(self, until: int, in_t: np.ndarray, in_l: np.ndarray):
        self.until = until
        self.in_t, self.in_l = in_t, in_l            # input events not played yet
        self.parts: list[Activity] = []


class ChipHost:
    """A chip shared by sessions (see the module docstring): whose turn it is,
    the timed segments waiting for its clock, and the lock that guards the
    link counters shared by all sessions.  `executor` runs programs given to
    `run` without an executor of their own."""

    def __init__(self, chip: Chip):
        self.chip = chip
        self.executor = Executor(chip, advance=self.advance)
        self.stats_lock = threading.Lock()
        self._turns = _Turns()
        self._open: list[_Segment] = []
        self._open_lock = threading.Lock()
        self._local = threading.local()

    def run(self, words: np.ndarray, executor: Executor | None = None,
            cancel_check: Callable[[], str | None] | None = None) -> np.ndarray:
        """Run one program when it is this thread's turn.  `cancel_check()`
        returning a reason gives the program up (ProgramCancelled) at the next
        point where the chip is consistent: before it starts, while it waits
        for its turn, between slices of a timed segment."""
        self._local.cancel = cancel_check
        self._turns.acquire(self._check)
        try:
            return (executor or self.executor).run(words)
        finally:
            self._turns.release()

    # ------------------------------------------------------------------ the clock
    def advance(self, until: int, in_t: np.ndarray, in_l: np.ndarray) -> Activity:
        """`Chip.advance` for a program that has the chip: returns the output
        of its wait, and lets other clients' programs in while it waits."""
        chip = self.chip
        if until <= chip.now:                # no time passes: output in flight leaves
            act = chip.advance(until, in_t, in_l)
            with self._open_lock:
                for seg in self._open:
                    seg.parts.append(act)
            return act
        me = _Segment(until, np.asarray(in_t, np.int64), np.asarray(in_l, np.uint16))
        with self._open_lock:
            self._open.append(me)
        try:
            with _DeferredSigint() as self._local.sigint:
                return self._wait(me)
        finally:
            self._local.sigint = None
            with self._open_lock:
                self._open.remove(me)

    def _wait(self, me: _Segment) -> Activity:
        """Move the clock (or let others move it) until `me.until`."""
        chip, until = self.chip, me.until
        while chip.now < until:
            self._check()
            with self._open_lock:
                segments = list(self._open)
            # Never past anyone's target.  A segment already reached belongs to a
            # program waiting for its turn (it goes first, through pass_on).
            limit = min(s.until for s in segments)
            if limit <= chip.now and not self._turns.contended:
                limit = min(s.until for s in segments if s.until > chip.now)
            if limit > chip.now:
                t, lab = self._inputs_until(segments, limit)
                started = time.monotonic()
                act = chip.advance(limit, t, lab, pause=lambda: self._pause(started))
                for s in segments:
                    s.parts.append(act)
            if chip.now < until:
                self._turns.pass_on(self._check)
        return Activity.merge(me.parts) if me.parts else Activity()

    @staticmethod
    def _inputs_until(segments: list[_Segment], limit: int) -> tuple[np.ndarray, np.ndarray]:
        """The input events of every waiting segment up to `limit`, in time order."""
        ts, ls = [], []
        for s in segments:
            if len(s.in_t):
                k = int(np.searchsorted(s.in_t, limit, side="right"))
                ts.append(s.in_t[:k])
                ls.append(s.in_l[:k])
                s.in_t, s.in_l = s.in_t[k:], s.in_l[k:]
        if not ts:
            return np.zeros(0, np.int64), np.zeros(0, np.uint16)
        if len(ts) == 1:
            return ts[0], ls[0]
        t, lab = np.concatenate(ts), np.concatenate(ls)
        order = np.argsort(t, kind="stable")
        return t[order], lab[order]

    def _pause(self, started: float) -> bool:
        """Asked by the chip's loop at each return to Python."""
        sigint = getattr(self._local, "sigint", None)
        if (sigint is not None and sigint.pending) or self._cancel_reason() is not None:
            return True
        return self._turns.contended and time.monotonic() - started >= SLICE_SECONDS

    def _cancel_reason(self) -> str | None:
        check = getattr(self._local, "cancel", None)
        return None if check is None else check()

    def _check(self) -> None:
        sigint = getattr(self._local, "sigint", None)
        if sigint is not None and sigint.pending:
            sigint.pending = False
            raise KeyboardInterrupt
        why = self._cancel_reason()
        if why is not None:
            raise ProgramCancelled(why)


class _DeferredSigint:
    """Ctrl-C while the chip's clock moves (main thread, default handler
    only): taken as KeyboardInterrupt at the chip loop's next return to
    Python, where the chip is consistent, instead of wherever Python was."""

    def __enter__(self) -> "_DeferredSigint":
        self.pending = False
        self._previous = None
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._on_signal)
        return self

    def _on_signal(self, signum, frame) -> None:
        self.pending = True

    def __exit__(self, kind, exc, tb) -> bool:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        if self.pending and kind is None:
            raise KeyboardInterrupt
        return False


class Session:
    """Program assembly rules (nothing runs half):

    * frames accumulate until one flagged END; then the program runs, and the
      link counters it reads cover exactly the bytes before its END frame's end;
    * a lost frame (any fault, or a sequence gap) drops the program being
      assembled; frames flagged CONT that follow are discarded and reported
      (FRAME_SEQUENCE, with their sequence number; only once for a frame whose
      sequence gap was just reported) until a frame without CONT begins the
      next program;
    * a frame without CONT while a program is still being assembled (its END
      never came), or a START frame (a new client), drops the unfinished
      program with a `timeout PROGRAM_END` notice naming its first frame.
    """

    def __init__(self, host: ChipHost, max_program_words: int = MAX_PROGRAM_WORDS):
        self.host = host
        #: This session's playback (its own timer; the chip is the host's).
        self.executor = Executor(host.chip, advance=host.advance)
        #: Asked while a program runs: a reason (str) gives it up (ProgramCancelled).
        self.cancel_check: Callable[[], str | None] | None = None
        self.decoder = frame.FrameDecoder(expect_to_host=False)
        self.max_program_words = max_program_words
        self._program: list[np.ndarray] = []
        self._program_words = 0
        self._program_first_seq: int | None = None   # None: no program being assembled
        self._skipping = False                       # discarding CONT frames after a loss
        self._tx_seq = 0
        self._started = False
        self._stats_seen = self.decoder.stats.as_dict()

    # ------------------------------------------------------------------ input
    def receive(self, data: bytes) -> bytes:
        """Feed received bytes; returns the bytes to send back."""
        frames, faults = self.decoder.feed(data)
        return self._handle(frames, faults)

    def receive_timeout(self) -> bytes:
        """No bytes arrived for a while: a partial frame is declared truncated,
        and a program whose END frame never came is dropped; both reported."""
        out = []
        if self.decoder.pending:
            frames, faults = self.decoder.flush_incomplete()
            idx = faults[0].seq if faults and faults[0].seq is not None else _NO_INDEX
            out.append(self._notice("timeout", reason=TimeoutReason.FRAME_RECEIVE, index=idx))
            out.append(self._handle(frames, faults))
        elif self._program_first_seq is not None:
            out.append(self._drop_unfinished())
            self._sync_stats()
        return b"".join(out)

    def close(self) -> None:
        """The client went away: whatever it left half-sent is counted as dropped."""
        if self.decoder.pending:
            self.decoder.flush_incomplete()
        self._reset_program()
        self._sync_stats()

    # ------------------------------------------------------------------ internals
    def _handle(self, frames, faults) -> bytes:
        out = []
        # Decoder counters as of the stream position reached (the decoder has
        # already counted the whole batch; a program must see only what came before it).
        seen = dict(self._stats_seen)
        gap_at = None            # offset of the frame whose sequence gap was just reported
        events = sorted([(f.offset, 0, i) for i, f in enumerate(faults)] +
                        [(fr.offset, 1, i) for i, fr in enumerate(frames)])
        for _, kind, i in events:
            if kind == 0:
                f = faults[i]
                seen[_FAULT_STAT[f.problem]] += 1
                gap_at = f.offset if f.problem is FrameProblem.SEQUENCE else None
                out.append(self._notice("error", reason=_FAULT_REASON[f.problem], header=0,
                                        index=f.seq if f.seq is not None else _NO_INDEX))
                self._lost()
                continue
            fr = frames[i]
            seen["frames"] += 1
            seen["words"] += len(fr.words)
            if fr.start and self._program_first_seq is not None:
                out.append(self._drop_unfinished())
            if fr.cont and (self._skipping or self._program_first_seq is None):
                self._skipping = True
                if fr.offset != gap_at:   # else already reported, as the gap before it
                    out.append(self._notice("error", reason=ErrorReason.FRAME_SEQUENCE, header=0, index=fr.seq))
                continue
            self._skipping = False
            if not fr.cont and self._program_first_seq is not None:
                out.append(self._drop_unfinished())
            if self._program_first_seq is None:
                self._program_first_seq = fr.seq
            if self._program_words + len(fr.words) > self.max_program_words:
                out.append(self._notice("error", reason=ErrorReason.PROGRAM_OVERSIZED, header=0,
                                        index=self._program_first_seq))
                self._reset_program()
                self._skipping = not fr.end
                continue
            self._program.append(fr.words)
            self._program_words += len(fr.words)
            if fr.end:
                words = np.concatenate(self._program) if len(self._program) != 1 else self._program[0]
                self._reset_program()
                # A program reading the link block sees exactly what came before its END
                # frame's last byte: every earlier byte was delivered in a frame or discarded.
                end = fr.offset + frame.HEADER_SIZE + 8 * len(fr.words) + frame.TRAILER_SIZE
                seen["bytes_discarded"] = (end - (frame.HEADER_SIZE + frame.TRAILER_SIZE) * seen["frames"]
                                           - 8 * seen["words"])
                self._sync_stats(seen)
                out.append(self._send(self.host.run(words, self.executor, self.cancel_check)))
        self._sync_stats()
        return b"".join(out)

    def _lost(self) -> None:
        """A frame went missing: the program being assembled cannot run."""
        if self._program_first_seq is not None:
            self._reset_program()
        self._skipping = True

    def _drop_unfinished(self) -> bytes:
        notice = self._notice("timeout", reason=TimeoutReason.PROGRAM_END, index=self._program_first_seq)
        self._reset_program()
        return notice

    def _reset_program(self) -> None:
        self._program, self._program_words, self._program_first_seq = [], 0, None

    def _notice(self, name: str, **fields) -> bytes:
        return self._send(np.array([wire.encode(name, **fields)], dtype=np.uint64))

    def _send(self, words: np.ndarray) -> bytes:
        flags = frame.FLAG_TO_HOST | frame.FLAG_END
        if not self._started:
            flags |= frame.FLAG_START
            self._started = True
        data, self._tx_seq = frame.encode_frames(words, self._tx_seq, flags)
        return data

    def _sync_stats(self, now: dict[str, int] | None = None) -> None:
        """Add the decoder's counts since the last sync (up to `now`, a snapshot
        of the decoder's counters, when given) to the chip's link counters."""
        now = self.decoder.stats.as_dict() if now is None else now
        with self.host.stats_lock:
            counters = self.host.chip.link_counters
            for k, name in _STAT_COUNTER.items():
                counters[name] += now[k] - self._stats_seen[k]
        self._stats_seen = dict(now)
