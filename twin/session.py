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
import contextlib
import signal
import threading
import time
from typing import Callable

import numpy as np

from isa import frame, wire
from isa.frame import FrameProblem
from isa.wire import LOCK_NO_LIMIT, ErrorReason, LockState, TimeoutReason

from .chip import Activity, Chip
from .executor import Executor, Pieces
from .limits import MAX_PROGRAM_WORDS, Budget, Limits  # noqa: F401 (MAX_PROGRAM_WORDS: re-exported)

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
_H_LOCK, _H_LOOPBACK = wire.H["lock"], wire.H["loopback"]
#: What a rejected `lock` word among other words is replaced with: a word that does nothing.
_NO_OP = wire.encode("barrier", mask=0)
_LOCK_BROKEN = wire.encode("error", reason=ErrorReason.LOCK_BROKEN, header=_H_LOCK, index=_NO_INDEX)

#: Notices (link faults, dropped programs) a session sends per second at most, and at once
#: after a quiet spell; the rest are counted (link block `notices_dropped`) and summed up in
#: one `error NOTICES_DROPPED` when notices may go out again.
NOTICE_RATE = 250.0
NOTICE_BURST = 1000


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
    the timed segments waiting for its clock, the chip's lock a session can
    hold across programs (the others' programs wait meanwhile; broken after
    `max_lock_seconds`), and the lock that guards the link counters shared
    by all sessions.  `executor` runs programs given to
    `run` without an executor of their own.  `limits` (twin.limits) are what a
    program gets unless it asks for less."""

    def __init__(self, chip: Chip, limits: Limits | None = None, max_lock_seconds: float | None = None):
        self.chip = chip
        self.limits = Limits() if limits is None else limits
        self.executor = Executor(chip, advance=self.advance, limits=self.limits)
        self.stats_lock = threading.Lock()
        self._turns = _Turns()
        self._open: list[_Segment] = []
        self._open_lock = threading.Lock()
        self._local = threading.local()
        self._pieces = Pieces(chip)
        self._buffered = 0            # words of unfinished programs all sessions hold (limits.receive_buffer_words)
        self._buffered_lock = threading.Lock()
        self._consistent = True       # the last chip advance reached its target (no input left queued)
        self._continues = False       # the next chip advance continues the last one's run (a piece of it)
        #: Most response words one program held at once (not yet streamed), over all programs run.
        self.peak_output_words = 0
        #: Seconds a client may hold the chip's lock before it is broken (None: never; a chip of its own).
        self.max_lock_seconds = max_lock_seconds
        #: Told one line per lock event: (owner, text); the server logs it naming the client.
        self.on_lock_event: Callable[[object, str], None] | None = None
        self._lock_cond = threading.Condition(threading.Lock())
        self._lock_owner: object | None = None
        self._lock_since = 0.0
        self._lock_broken: set = set()           # owners whose lock was broken, not told yet
        #: Lock events since the chip host was made.
        self.lock_counts = {"granted": 0, "released": 0, "broken": 0, "refused": 0, "waits": 0}

    def run(self, words: np.ndarray, executor: Executor | None = None,
            cancel_check: Callable[[], str | None] | None = None,
            emit: Callable[[np.ndarray], None] | None = None, limits: Limits | None = None,
            owner: object | None = None) -> np.ndarray:
        """Run one program when it is this thread's turn.  `cancel_check()`
        returning a reason gives the program up (ProgramCancelled) at the next
        point where the chip is consistent: before it starts, while it waits
        for its turn, between slices of a timed segment.  Responses go to
        `emit` as they come (twin.executor.FLUSH_WORDS at a time); the rest is
        returned.  The program's limits (`limits`, else the executor's) count
        from when it has the chip.  While another `owner` holds the chip's
        lock the program waits (not counted against its limits)."""
        self._local.cancel = cancel_check
        while True:
            self._turns.acquire(self._check)
            if self._lock_free_for(owner):
                break
            self._turns.release()
            self._wait_lock(owner, self._check, None)
        ex = executor or self.executor
        try:
            self._local.budget = Budget(ex.limits if limits is None else limits)
            rest = ex.run(words, emit=emit, budget=self._local.budget)
            self.peak_output_words = max(self.peak_output_words, ex.peak_words)
            return rest
        finally:
            self._local.budget = None
            self._turns.release()

    @contextlib.contextmanager
    def exclusive(self):
        """No program runs on the chip meanwhile (e.g. while its state is read)."""
        self._turns.acquire(lambda: None)
        try:
            yield self.chip
        finally:
            self._turns.release()

    # ------------------------------------------------------------------ the chip's lock
    def lock(self, owner: object, wait: float, cancel_check: Callable[[], str | None] | None = None
             ) -> tuple[LockState, int]:
        """Take the chip's lock for `owner` once no program of another owner
        runs, waiting up to `wait` seconds for a lock another owner holds:
        (GRANTED, ms it may be held) or (HELD, ms until the holder's may be
        broken).  Taking it again keeps the time it was first taken."""
        self._local.cancel = cancel_check
        deadline = time.monotonic() + wait
        waited = False
        while True:
            self._turns.acquire(self._check)          # a program of another owner finishes first
            try:
                with self._lock_cond:
                    self._expire()
                    if self._lock_owner is None or self._lock_owner is owner:
                        if self._lock_owner is None:
                            self._lock_owner, self._lock_since = owner, time.monotonic()
                            self._lock_broken.discard(owner)
                            self.lock_counts["granted"] += 1
                            self._event(owner, "lock acquired" + (" after waiting" if waited else ""))
                        return LockState.GRANTED, self._ms_left()
            finally:
                self._turns.release()
            if time.monotonic() >= deadline or not self._wait_lock(owner, self._check, deadline):
                with self._lock_cond:
                    self.lock_counts["refused"] += 1
                    self._event(owner, f"lock refused: held by another client after waiting {wait:g} s")
                    return LockState.HELD, self._ms_left()
            waited = True

    def unlock(self, owner: object, why: str = "") -> LockState:
        """Give the lock back: RELEASED, BROKEN (it was broken meanwhile) or NOT_HELD."""
        with self._lock_cond:
            self._expire()
            if self._lock_owner is owner:
                self._lock_owner = None
                self.lock_counts["released"] += 1
                self._event(owner, "lock released" + (f" ({why})" if why else ""))
                self._lock_cond.notify_all()
                return LockState.RELEASED
            if owner in self._lock_broken:
                self._lock_broken.discard(owner)
                return LockState.BROKEN
            return LockState.NOT_HELD

    def mark_lost(self, owner: object) -> None:
        """`owner` lost the lock other than by giving it back: tell it with its next answer."""
        with self._lock_cond:
            self._lock_broken.add(owner)

    def lock_broken(self, owner: object) -> bool:
        """Whether `owner`'s lock was broken since it was last told (told now)."""
        with self._lock_cond:
            self._expire()
            if owner in self._lock_broken:
                self._lock_broken.discard(owner)
                return True
            return False

    @property
    def lock_holder(self) -> object | None:
        with self._lock_cond:
            self._expire()
            return self._lock_owner

    def _lock_free_for(self, owner: object | None) -> bool:
        with self._lock_cond:
            self._expire()
            return self._lock_owner is None or self._lock_owner is owner

    def _wait_lock(self, owner: object | None, check: Callable[[], None], deadline: float | None) -> bool:
        """Wait until the lock is free for `owner` (True) or `deadline` passes (False)."""
        with self._lock_cond:
            self.lock_counts["waits"] += 1
            while True:
                self._expire()
                if self._lock_owner is None or self._lock_owner is owner:
                    return True
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    return False
                check()                               # raises to give up (client gone, server stopping)
                self._lock_cond.wait(0.05 if deadline is None else min(0.05, deadline - now))

    def _expire(self) -> None:
        """Break a lock held longer than max_lock_seconds (with _lock_cond held)."""
        if (self._lock_owner is not None and self.max_lock_seconds is not None
                and time.monotonic() - self._lock_since >= self.max_lock_seconds):
            owner, self._lock_owner = self._lock_owner, None
            self._lock_broken.add(owner)
            self.lock_counts["broken"] += 1
            self.chip.link_counters["locks_broken"] += 1
            self._event(owner, f"lock broken: held longer than {self.max_lock_seconds:g} s (--max-lock-seconds)")
            self._lock_cond.notify_all()

    def _ms_left(self) -> int:
        if self.max_lock_seconds is None:
            return LOCK_NO_LIMIT
        left = self.max_lock_seconds - (time.monotonic() - self._lock_since) if self._lock_owner is not None \
            else self.max_lock_seconds
        return max(0, min(LOCK_NO_LIMIT - 1, int(left * 1000)))

    def _event(self, owner: object, text: str) -> None:
        if self.on_lock_event is not None:
            try:
                self.on_lock_event(owner, text)
            except Exception:          # reporting never takes the chip down
                pass

    # ------------------------------------------------------------------ programs being received
    def reserve(self, words: int, bound: int) -> bool:
        """Room for `words` more words of an unfinished program, the unfinished
        programs of all sessions holding at most `bound` (False: no room)."""
        with self._buffered_lock:
            if self._buffered + words > bound:
                return False
            self._buffered += words
            return True

    def unreserve(self, words: int) -> None:
        with self._buffered_lock:
            self._buffered -= words

    @property
    def buffered_words(self) -> int:
        """Words of unfinished programs held now (all sessions)."""
        return self._buffered

    # ------------------------------------------------------------------ the clock
    def advance(self, until: int, in_t: np.ndarray, in_l: np.ndarray,
                on_part: Callable[[Activity], None] | None = None, continues: bool = False) -> Activity:
        """`Chip.advance` for a program that has the chip: the output of its
        wait (handed to `on_part` as it comes when given, at points where the
        chip is consistent), letting other clients' programs in while it waits.
        `continues`: the wait goes on from this program's previous call (the
        same run of the analog core: a timed segment in windows)."""
        chip = self.chip
        if continues:
            self._continues = True
        if until <= chip.now:                # no time passes: output in flight leaves
            act = chip.advance(until, in_t, in_l, new_run=not self._continues)
            with self._open_lock:
                for seg in self._open:
                    seg.parts.append(act)
            if on_part is None:
                return act
            on_part(act)
            return Activity()
        me = _Segment(until, np.asarray(in_t, np.int64), np.asarray(in_l, np.uint16))
        with self._open_lock:
            self._open.append(me)
        try:
            with _DeferredSigint() as self._local.sigint:
                return self._wait(me, on_part)
        finally:
            self._local.sigint = None
            with self._open_lock:
                self._open.remove(me)

    def _wait(self, me: _Segment, on_part: Callable[[Activity], None] | None) -> Activity:
        """Move the clock (or let others move it) until `me.until`, in pieces of
        chip time on a fixed grid (twin.executor.piece_ticks: a piece's output
        and traces are bounded)."""
        chip, until = self.chip, me.until
        held = time.monotonic()
        while True:
            if on_part is not None and me.parts and self._consistent:
                parts, me.parts = me.parts, []
                on_part(Activity.merge(parts))       # may end the program: nothing of ours is queued
            if chip.now >= until:
                break
            self._check()
            with self._open_lock:
                segments = list(self._open)
            # Never past anyone's target.  A segment already reached belongs to a
            # program waiting for its turn (it goes first, through pass_on).
            limit = min(s.until for s in segments)
            if limit <= chip.now and not self._turns.contended:
                limit = min(s.until for s in segments if s.until > chip.now)
            if limit > chip.now:
                piece_end = self._pieces.end(chip.now, limit)
                cut = piece_end < limit
                limit = min(limit, piece_end)
                t, lab = self._inputs_until(segments, limit)
                start, t0 = chip.now, time.monotonic()
                act = chip.advance(limit, t, lab, pause=lambda: self._pause(held), new_run=not self._continues)
                self._pieces.saw(act, chip.now - start, time.monotonic() - t0)
                self._consistent = chip.now >= limit
                # A wait cut by the piece grid (or paused) goes on as the same run of the analog core.
                self._continues = cut or not self._consistent
                for s in segments:
                    s.parts.append(act)
            if chip.now < until and self._turns.contended and (
                    not self._consistent or time.monotonic() - held >= SLICE_SECONDS
                    or any(s.until <= chip.now for s in segments if s is not me)):
                waited = time.monotonic()
                self._turns.pass_on(self._check)
                budget = getattr(self._local, "budget", None)
                if budget is not None:
                    budget.exclude(time.monotonic() - waited)
                held = time.monotonic()
        if on_part is not None:
            return Activity()
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

    def _pause(self, held: float) -> bool:
        """Asked by the chip's loop at each return to Python."""
        sigint = getattr(self._local, "sigint", None)
        if (sigint is not None and sigint.pending) or self._cancel_reason() is not None:
            return True
        return self._turns.contended and time.monotonic() - held >= SLICE_SECONDS

    def _cancel_reason(self) -> str | None:
        check = getattr(self._local, "cancel", None)
        return None if check is None else check()

    def _check(self) -> None:
        sigint = getattr(self._local, "sigint", None)
        if sigint is not None and sigint.pending:
            sigint.deliver()
        why = self._cancel_reason()
        if why is not None:
            raise ProgramCancelled(why)


class _DeferredSigint:
    """Ctrl-C while the chip's clock moves (main thread, a Python-level
    handler: the default one, or one a library installed, as brian2 does):
    taken at the chip loop's next return to Python, where the chip is
    consistent, instead of wherever Python was; there the handler that was
    installed runs (the default raises KeyboardInterrupt)."""

    def __enter__(self) -> "_DeferredSigint":
        self.pending = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            current = signal.getsignal(signal.SIGINT)
            if callable(current):                # not SIG_IGN / SIG_DFL / a handler set outside Python
                self._previous = signal.signal(signal.SIGINT, self._on_signal)
        return self

    def _on_signal(self, signum, frame) -> None:
        self.pending = True

    def deliver(self) -> None:
        """The deferred Ctrl-C, now: the handler that was installed (the default
        raises KeyboardInterrupt)."""
        self.pending = False
        if self._previous is None or self._previous is signal.default_int_handler:
            raise KeyboardInterrupt
        self._previous(signal.SIGINT, None)

    def __exit__(self, kind, exc, tb) -> bool:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        if self.pending and kind is None:
            self.deliver()
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
      program with a `timeout PROGRAM_END` notice naming its first frame;
    * a program whose frames keep coming for longer than `limits.receive_seconds`
      without its END frame is dropped with `timeout PROGRAM_RECEIVE` naming
      its first frame (its remaining CONT frames are discarded as after a loss);
    * a program of `lock` words and loopbacks only is done by the session (the
      chip host's lock, `ChipHost.lock`), without chip time; a `lock` word
      among other words is rejected (`LOCK_PLACEMENT`) and does nothing.  The
      holder of a lock that was broken (or lost with a broken connection) is
      told with its next answer (`error LOCK_BROKEN`).

    Answers: a program's responses go to `sink` as they come (a server streams
    them to its client, twin.executor.FLUSH_WORDS at a time), or, without a
    sink, are returned by `receive` with the rest.  Notices (faults, dropped
    programs) go out at NOTICE_RATE per second at most (bursts of
    NOTICE_BURST); the others are counted (link block `notices_dropped`) and
    summed up in one `error NOTICES_DROPPED` (index: how many) before the
    next notice or answer that goes out, so a flood of bad frames is answered
    by a trickle."""

    def __init__(self, host: ChipHost, max_program_words: int | None = None, limits: Limits | None = None,
                 clock: Callable[[], float] = time.monotonic, buffer: ChipHost | None = None):
        self.host = host
        self.limits = host.limits if limits is None else limits
        #: Keeps the account of unfinished programs (limits.receive_buffer_words) this session
        #: shares with others: its chip host's, or a server's (clients with chips of their own).
        self.buffer = host if buffer is None else buffer
        #: This session's playback (its own timer; the chip is the host's).
        self.executor = Executor(host.chip, advance=host.advance, limits=self.limits)
        #: Asked while a program runs: a reason (str) gives it up (ProgramCancelled).
        self.cancel_check: Callable[[], str | None] | None = None
        #: Takes the answer bytes of a running program as they come (see the class docstring).
        self.sink: Callable[[bytes], None] | None = None
        self.decoder = frame.FrameDecoder(expect_to_host=False)
        self.max_program_words = self.limits.program_words if max_program_words is None else max_program_words
        self.clock = clock
        self._program: list[np.ndarray] = []
        self._program_words = 0
        self._program_first_seq: int | None = None   # None: no program being assembled
        self._program_since = 0.0                    # when its first frame arrived
        self._reserved = 0                           # of its words, those counted in the host's buffer
        self._skipping = False                       # discarding CONT frames after a loss
        self._tx_seq = 0
        self._started = False
        self._stats_seen = self.decoder.stats.as_dict()
        self._tokens = float(NOTICE_BURST)
        self._tokens_at = clock()
        self._suppressed = 0                         # notices not sent since the last summary
        self._dropped_unsynced = 0                   # of those, not yet in the link counters
        #: Asked with the reason when a program is given up (ProgramCancelled): True answers it
        #: `error PROGRAM_CANCELLED` and its halting loopbacks instead of raising (a server whose
        #: client may resume); `cancelled` then says why, and the server ends the connection.
        self.report_cancel: Callable[[str], bool] | None = None
        self.cancelled: str | None = None

    # ------------------------------------------------------------------ input
    def receive(self, data: bytes) -> bytes:
        """Feed received bytes; returns the bytes to send back (those not given to `sink`)."""
        frames, faults = self.decoder.feed(data)
        return self._handle(frames, faults)

    def receive_timeout(self) -> bytes:
        """No bytes arrived for a while: a partial frame is declared truncated,
        and a program whose END frame never came is dropped; both reported.
        Notices held back by the rate are summed up."""
        out = []
        if self.decoder.pending:
            frames, faults = self.decoder.flush_incomplete()
            idx = faults[0].seq if faults and faults[0].seq is not None else _NO_INDEX
            out.append(self._notice("timeout", reason=TimeoutReason.FRAME_RECEIVE, index=idx))
            out.append(self._handle(frames, faults))
        elif self._program_first_seq is not None:
            out.append(self._drop_unfinished())
            self._sync_stats()
        out.append(self._summary())
        return b"".join(out)

    def close(self) -> None:
        """The client went away: whatever it left half-sent is counted as dropped,
        the chip's lock it held is given back."""
        self.release_lock("its client disconnected")
        if self.decoder.pending:
            self.decoder.flush_incomplete()
        self._reset_program()
        self._sync_stats()

    # ------------------------------------------------------------------ internals
    def _handle(self, frames, faults) -> bytes:
        if not frames:
            return self._faults_only(faults)
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
                seen[_FAULT_STAT[f.problem]] += f.count
                gap_at = f.offset if f.problem is FrameProblem.SEQUENCE else None
                out.append(self._notices(f.count, "error", reason=_FAULT_REASON[f.problem], header=0,
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
                self._program_since = self.clock()
            elif self.clock() - self._program_since > self.limits.receive_seconds:
                out.append(self._notice("timeout", reason=TimeoutReason.PROGRAM_RECEIVE,
                                        index=self._program_first_seq))
                self._reset_program()
                self._skipping = not fr.end
                continue
            if self._program_words + len(fr.words) > self.max_program_words:
                out.append(self._notice("error", reason=ErrorReason.PROGRAM_OVERSIZED, header=0,
                                        index=self._program_first_seq))
                self._reset_program()
                self._skipping = not fr.end
                continue
            if not fr.end and not self.buffer.reserve(len(fr.words), self.limits.receive_buffer_words):
                out.append(self._notice("error", reason=ErrorReason.RECEIVE_BUFFER_FULL, header=0,
                                        index=self._program_first_seq))
                self._reset_program()
                self._skipping = True
                continue
            self._reserved += 0 if fr.end else len(fr.words)
            self._program.append(fr.words)
            self._program_words += len(fr.words)
            if fr.end:
                words = self._assemble()
                self._reset_program()
                # A program reading the link block sees exactly what came before its END
                # frame's last byte: every earlier byte was delivered in a frame or discarded.
                end = fr.offset + frame.HEADER_SIZE + 8 * len(fr.words) + frame.TRAILER_SIZE
                seen["bytes_discarded"] = (end - (frame.HEADER_SIZE + frame.TRAILER_SIZE) * seen["frames"]
                                           - 8 * seen["words"])
                self._sync_stats(seen)
                self._run(words, out)
        self._sync_stats()
        return b"".join(out)

    def _assemble(self) -> np.ndarray:
        """The program's words in one array (each frame's words let go once copied)."""
        parts = self._program
        if len(parts) == 1:
            return parts[0]
        words = np.empty(self._program_words, dtype=np.uint64)
        pos = 0
        for i, part in enumerate(parts):
            words[pos:pos + len(part)] = part
            pos += len(part)
            parts[i] = None
        return words

    def _faults_only(self, faults) -> bytes:
        """Faults and no frame (e.g. a flood of bad bytes; they come in stream
        order): each run of the same fault answered in one go."""
        out = []
        i, n = 0, len(faults)
        while i < n:
            f = faults[i]
            count, j = f.count, i + 1
            while j < n and faults[j].problem is f.problem and faults[j].seq == f.seq:
                count += faults[j].count
                j += 1
            out.append(self._notices(count, "error", reason=_FAULT_REASON[f.problem], header=0,
                                     index=f.seq if f.seq is not None else _NO_INDEX))
            i = j
        if faults:
            self._lost()
        self._sync_stats()
        return b"".join(out)

    def _run(self, words: np.ndarray, out: list[bytes]) -> None:
        """Run a program; its answers stream to the sink (after what `out`
        holds so far) or are appended to `out`.  A program of `lock` words
        (and loopbacks) is the session's own business: the chip's lock."""
        out.append(self._summary())
        headers = wire.headers_bulk(words)
        locks = headers == _H_LOCK
        if locks.any():
            valid = ~wire.invalid_bulk(words, wire.Direction.TO_CHIP)
            locks &= valid
            if locks.any() and np.all(valid & (locks | (headers == _H_LOOPBACK))):
                out.append(self._lock_program(words))
                return
            if locks.any():                    # among other words: rejected, the others run
                at = np.flatnonzero(locks)
                out.append(self._send(wire.encode_bulk("error", reason=int(ErrorReason.LOCK_PLACEMENT),
                                                       header=_H_LOCK, index=at.astype(np.uint64))))
                words = words.copy()
                words[at] = _NO_OP
        if self.host.lock_broken(self):
            out.append(self._send(np.array([_LOCK_BROKEN], dtype=np.uint64)))
        streamed = False

        def emit(resp: np.ndarray) -> None:
            nonlocal streamed
            data = self._send(resp, end=False, cont=streamed)
            streamed = True
            if self.sink is None:
                out.append(data)
                return
            earlier = b"".join(out)
            out.clear()
            self.sink(earlier + data)

        try:
            rest = self.host.run(words, self.executor, self.cancel_check, emit=emit, limits=self.limits,
                                 owner=self)
        except ProgramCancelled as exc:
            if self.report_cancel is None or not self.report_cancel(str(exc)):
                raise
            out.append(self._cancelled(words, headers, str(exc), cont=streamed))
            return
        if self.host.lock_broken(self):        # broken while it ran: told with its answer
            rest = np.concatenate([np.array([_LOCK_BROKEN], dtype=np.uint64), rest])
        out.append(self._send(rest, cont=streamed))

    def _lock_program(self, words: np.ndarray) -> bytes:
        """`lock` words done in order, loopbacks echoed (no chip time passes)."""
        resp = []
        try:
            for w in words.tolist():
                msg, f = wire.decode(w)
                if msg.name == "loopback":
                    resp.append(wire.encode("loopback_echo", **f))
                elif f["acquire"]:
                    state, ms = self.host.lock(self, f["wait_ms"] / 1000.0, self.cancel_check)
                    resp.append(wire.encode("lock_state", state=int(state), ms=ms))
                else:
                    state = self.host.unlock(self, "given back by the client")
                    resp.append(wire.encode("lock_state", state=int(state), ms=0))
        except ProgramCancelled as exc:
            if self.report_cancel is None or not self.report_cancel(str(exc)):
                raise
            return self._cancelled(words, wire.headers_bulk(words), str(exc))
        return self._send(np.array(resp, dtype=np.uint64))

    def _cancelled(self, words: np.ndarray, headers: np.ndarray, why: str, cont: bool = False) -> bytes:
        """The answer of a program given up (see `report_cancel`): `error
        PROGRAM_CANCELLED`, then the echoes of its halting loopbacks."""
        self.cancelled = why
        halts = (headers == _H_LOOPBACK) & ~wire.invalid_bulk(words, wire.Direction.TO_CHIP)
        halts &= wire.field_bulk("loopback", "halt", words) == 1
        f = wire.fields_bulk("loopback", words[halts])
        resp = np.concatenate([np.array([wire.encode("error", reason=ErrorReason.PROGRAM_CANCELLED, header=0,
                                                     index=_NO_INDEX)], dtype=np.uint64),
                               wire.encode_bulk("loopback_echo", halt=1, tag=f["tag"])])
        return self._send(resp, cont=cont)

    def release_lock(self, why: str, tell: bool = False) -> None:
        """Give back the chip's lock if this session holds it (its client went
        away); with `tell`, its next answer says the lock was lost (a resume)."""
        if self.host.lock_holder is self:
            self.host.unlock(self, why)
            if tell:
                self.host.mark_lost(self)
                return
        if not tell:
            self.host.lock_broken(self)        # nobody left to tell

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
        if self._reserved:
            self.buffer.unreserve(self._reserved)
            self._reserved = 0

    def _notice(self, name: str, **fields) -> bytes:
        """A notice, if the notice rate allows (else counted, and summed up later)."""
        return self._notices(1, name, **fields)

    def _notices(self, count: int, name: str, **fields) -> bytes:
        """`count` copies of one notice, as many as the notice rate allows."""
        now = self.clock()
        self._tokens = min(float(NOTICE_BURST), self._tokens + (now - self._tokens_at) * NOTICE_RATE)
        self._tokens_at = now
        k = min(count, int(self._tokens))
        self._tokens -= k
        words = (self._summary_words() + [wire.encode(name, **fields)] * k) if k else []
        if k < count:                   # these come after the ones sent: summed up next time
            self._suppressed += count - k
            self._dropped_unsynced += count - k
        return self._send(np.array(words, dtype=np.uint64)) if words else b""

    def _summary_words(self) -> list[int]:
        if not self._suppressed:
            return []
        n, self._suppressed = self._suppressed, 0
        return [wire.encode("error", reason=ErrorReason.NOTICES_DROPPED, header=0, index=min(n, _NO_INDEX))]

    def _summary(self) -> bytes:
        """The count of notices held back by the rate, if any (one notice)."""
        words = self._summary_words()
        return self._send(np.array(words, dtype=np.uint64)) if words else b""

    def _send(self, words: np.ndarray, end: bool = True, cont: bool = False) -> bytes:
        flags = frame.FLAG_TO_HOST | (frame.FLAG_END if end else 0) | (frame.FLAG_CONT if cont else 0)
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
            counters["notices_dropped"] += self._dropped_unsynced
        self._dropped_unsynced = 0
        self._stats_seen = dict(now)
