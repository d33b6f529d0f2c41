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

#: Largest program the playback buffer takes (words); beyond it the program is dropped and reported.
MAX_PROGRAM_WORDS = 1 << 24


class ChipHost:
    """A chip with its executor and the lock that serialises programs."""

    def __init__(self, chip: Chip):
        self.chip = chip
        self.executor = Executor(chip)
        self.lock = threading.Lock()

    def run(self, words: np.ndarray) -> np.ndarray:
        with self.lock:
            return self.executor.run(words)


class Session:
    def __init__(self, host: ChipHost, max_program_words: int = MAX_PROGRAM_WORDS):
        self.host = host
        self.decoder = frame.FrameDecoder(expect_to_host=False)
        self.max_program_words = max_program_words
        self._program: list[np.ndarray] = []
        self._program_words = 0
        self._program_overflow = False
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
            idx = faults[0].seq if faults and faults[0].seq is not None else 0
            out.append(self._notice("timeout", reason=TimeoutReason.FRAME_RECEIVE, index=idx))
            out.append(self._handle(frames, faults))
        elif self._program:
            out.append(self._notice("timeout", reason=TimeoutReason.PROGRAM_END, index=self._program_words))
            self._drop_program()
        return b"".join(out)

    def close(self) -> None:
        """The client went away: whatever it left half-sent is counted as dropped."""
        if self.decoder.pending:
            self.decoder.flush_incomplete()
        self._drop_program()
        self._sync_stats()

    # ------------------------------------------------------------------ internals
    def _handle(self, frames, faults) -> bytes:
        out = []
        for f in faults:
            reason = _FAULT_REASON[f.problem]
            out.append(self._notice("error", reason=reason, header=0,
                                    index=f.seq if f.seq is not None else 0xFFFFFFFF))
        for fr in frames:
            if self._program_overflow or self._program_words + len(fr.words) > self.max_program_words:
                if not self._program_overflow:
                    out.append(self._notice("error", reason=ErrorReason.PROGRAM_OVERSIZED, header=0,
                                            index=fr.seq))
                self._program_overflow = True
                self._drop_program(keep_overflow=True)
            else:
                self._program.append(fr.words)
                self._program_words += len(fr.words)
            if fr.end:
                if not self._program_overflow:
                    words = np.concatenate(self._program) if len(self._program) != 1 else self._program[0]
                    out.append(self._send(self.host.run(words)))
                self._program, self._program_words, self._program_overflow = [], 0, False
        self._sync_stats()
        return b"".join(out)

    def _drop_program(self, keep_overflow: bool = False) -> None:
        self._program, self._program_words = [], 0
        if not keep_overflow:
            self._program_overflow = False

    def _notice(self, name: str, **fields) -> bytes:
        return self._send(np.array([wire.encode(name, **fields)], dtype=np.uint64))

    def _send(self, words: np.ndarray) -> bytes:
        flags = frame.FLAG_TO_HOST | frame.FLAG_END
        if not self._started:
            flags |= frame.FLAG_START
            self._started = True
        data, self._tx_seq = frame.encode_frames(words, self._tx_seq, flags)
        return data

    def _sync_stats(self) -> None:
        now = self.decoder.stats.as_dict()
        counters = self.host.chip.link_counters
        for k, name in _STAT_COUNTER.items():
            counters[name] += now[k] - self._stats_seen[k]
        self._stats_seen = now
