"""One client's byte stream to a chip: frames in, programs executed, frames out.

Every transport (in-process link, TCP, pseudo-terminal) wraps a Session, so
all of them carry the same bytes and behave the same.  Frames accumulate until
a frame flagged END completes the program; the program then runs under the
chip's lock, so programs of several clients never interleave.
"""
from __future__ import annotations

import threading

import numpy as np

from isa import frame, wire
from isa.frame import FrameProblem
from isa.wire import ErrorReason, TimeoutReason

from .chip import Chip
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


class ChipHost:
    """A chip with its executor, the lock that serialises programs, and the
    lock that guards the link counters shared by all sessions."""

    def __init__(self, chip: Chip):
        self.chip = chip
        self.executor = Executor(chip)
        self.lock = threading.Lock()
        self.stats_lock = threading.Lock()

    def run(self, words: np.ndarray) -> np.ndarray:
        with self.lock:
            return self.executor.run(words)


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
                out.append(self._send(self.host.run(words)))
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
