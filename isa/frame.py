"""Frame layer for byte streams (TCP, serial lines, the in-process link).

A frame carries a block of 64-bit wire words::

    offset size  field
    0      2     start marker 0xB5 0x5A
    2      1     format version (1)
    3      1     flags: bit 0 END (last frame of a program / response),
                        bit 1 TO_HOST (set on chip -> host frames),
                        bit 2 START (first frame of a connection: the
                        receiver takes its sequence number as the new origin),
                        bit 3 CONT (continues a program or response begun in
                        an earlier frame; a receiver that lost the beginning
                        discards CONT frames until the next frame without it)
    4      4     sequence number (per direction and connection, +1 per frame)
    8      4     payload length in 64-bit words (<= MAX_FRAME_WORDS)
    12     4     CRC-32 of bytes 0..11
    16     8*n   payload words, big-endian
    16+8n  4     CRC-32 of the payload

All integers are big-endian.  The header has its own CRC so that a corrupted
length field is caught before the receiver waits for bytes that never come.
A receiver that finds a bad frame counts it, reports it, and resynchronises by
searching for the next start marker after the bad frame's first byte, so the
next good frame is found even when it lies inside the bad frame's announced span.
"""
from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

MAGIC = b"\xb5\x5a"
VERSION = 1
HEADER = struct.Struct(">2sBBIII")
HEADER_SIZE = HEADER.size  # 16
TRAILER_SIZE = 4
MAX_FRAME_WORDS = 1 << 16

FLAG_END = 0x01
FLAG_TO_HOST = 0x02
FLAG_START = 0x04
FLAG_CONT = 0x08
KNOWN_FLAGS = FLAG_END | FLAG_TO_HOST | FLAG_START | FLAG_CONT


def encode_frame(words: np.ndarray, seq: int, flags: int = 0) -> bytes:
    """One frame around `words` (at most MAX_FRAME_WORDS of them)."""
    words = np.asarray(words, dtype=np.uint64)
    if len(words) > MAX_FRAME_WORDS:
        raise ValueError(f"{len(words)} words exceed the frame maximum {MAX_FRAME_WORDS}")
    head = struct.pack(">2sBBII", MAGIC, VERSION, flags, seq & 0xFFFFFFFF, len(words))
    payload = words.astype(">u8").tobytes()
    return b"".join((head, struct.pack(">I", zlib.crc32(head)), payload,
                     struct.pack(">I", zlib.crc32(payload))))


def encode_frames(words: np.ndarray, first_seq: int, flags: int = 0) -> tuple[bytes, int]:
    """Split `words` into as many frames as needed; END (if asked) marks the last.

    END (if asked) marks the last frame only, START (if asked) the first only;
    every frame after the first carries CONT.
    Returns the bytes and the next free sequence number."""
    words = np.asarray(words, dtype=np.uint64)
    chunks = [words[i:i + MAX_FRAME_WORDS] for i in range(0, len(words), MAX_FRAME_WORDS)] or [words]
    out, seq = [], first_seq
    for i, chunk in enumerate(chunks):
        f = flags
        if i != len(chunks) - 1:
            f &= ~FLAG_END
        if i != 0:
            f = (f & ~FLAG_START) | FLAG_CONT
        out.append(encode_frame(chunk, seq, f))
        seq = (seq + 1) & 0xFFFFFFFF
    return b"".join(out), seq


#: Bytes examined at once for a run of bad headers (FrameDecoder._bad_headers).
_BULK_WINDOW = 1 << 16


def _crc_table() -> np.ndarray:
    table = np.zeros(256, np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table[i] = c
    return table


_CRC_TABLE = _crc_table()
_BE32 = np.array([1 << 24, 1 << 16, 1 << 8, 1], np.uint32)


def _crc32_rows(rows: np.ndarray) -> np.ndarray:
    """zlib.crc32 of every row of a uint8 matrix, at once."""
    crc = np.full(len(rows), 0xFFFFFFFF, np.uint32)
    for i in range(rows.shape[1]):
        crc = _CRC_TABLE[(crc ^ rows[:, i]) & 0xFF] ^ (crc >> np.uint32(8))
    return crc ^ np.uint32(0xFFFFFFFF)


class FrameProblem(enum.Enum):
    CRC = "crc"
    TRUNCATED = "truncated"
    OVERSIZED = "oversized"
    VERSION = "version"
    SEQUENCE = "sequence"
    DIRECTION = "direction"


@dataclass(frozen=True)
class Frame:
    seq: int
    flags: int
    words: np.ndarray
    offset: int = -1         # stream offset of the frame's first byte (orders frames among faults)

    @property
    def end(self) -> bool:
        return bool(self.flags & FLAG_END)

    @property
    def cont(self) -> bool:
        return bool(self.flags & FLAG_CONT)

    @property
    def start(self) -> bool:
        return bool(self.flags & FLAG_START)


class FrameFault(NamedTuple):
    """A frame (or stretch of bytes) the decoder dropped, and why."""

    problem: FrameProblem
    seq: int | None          # sequence number from the header, when it was readable
    offset: int              # stream offset (bytes since the decoder started) of the fault
    detail: str
    count: int = 1           # this many of the same fault in a row, one at each start marker from `offset` on
    #                          (a flood of markers with bad headers); each one is counted in the stats

    def __str__(self) -> str:
        where = f"frame seq {self.seq}" if self.seq is not None else "frame"
        more = f" ({self.count} times, at each start marker from there on)" if self.count > 1 else ""
        return f"{where} at stream byte {self.offset}: {self.problem.value}: {self.detail}{more}"


@dataclass
class FrameStats:
    frames: int = 0
    words: int = 0
    crc_errors: int = 0
    truncated: int = 0
    oversized: int = 0
    bad_version: int = 0
    sequence_gaps: int = 0
    wrong_direction: int = 0
    bytes_discarded: int = 0

    def dropped(self) -> int:
        return self.crc_errors + self.truncated + self.oversized + self.bad_version + self.wrong_direction

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class FrameDecoder:
    """Incremental decoder: feed bytes, get frames and faults back.

    `expect_to_host` says which direction the frames must travel (a twin
    expects host -> chip frames).  Nothing is dropped silently: every dropped
    byte is counted in `stats.bytes_discarded` and every dropped frame yields a
    FrameFault."""

    expect_to_host: bool = False
    max_words: int = MAX_FRAME_WORDS
    stats: FrameStats = field(default_factory=FrameStats)
    _buf: bytearray = field(default_factory=bytearray)
    _consumed: int = 0          # stream offset of _buf[0]
    _next_seq: int | None = None

    @property
    def pending(self) -> int:
        """Bytes buffered but not yet part of a complete frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> tuple[list[Frame], list[FrameFault]]:
        self._buf += data
        frames: list[Frame] = []
        faults: list[FrameFault] = []
        buf = self._buf
        pos = 0
        while True:
            start = buf.find(MAGIC, pos)
            if start < 0:
                # Keep a trailing first marker byte; it may start the next frame
                # (only an unexamined one: not the last byte of a delivered frame).
                keep = 1 if len(buf) > pos and buf[-1] == MAGIC[0] else 0
                self._discard(len(buf) - keep - pos)
                pos = len(buf) - keep
                break
            if start > pos:
                self._discard(start - pos)
            pos = start
            if len(buf) - pos < HEADER_SIZE:
                break
            magic, version, flags, seq, nwords, hcrc = HEADER.unpack_from(buf, pos)
            if zlib.crc32(bytes(buf[pos:pos + 12])) != hcrc:
                pos = self._bad_headers(buf, pos, faults)
                continue
            if version != VERSION:
                faults.append(self._fault(FrameProblem.VERSION, seq, pos,
                                          f"version {version}, this side speaks {VERSION}"))
                self.stats.bad_version += 1
                self._discard(1)
                pos += 1
                continue
            if nwords > self.max_words:
                faults.append(self._fault(FrameProblem.OVERSIZED, seq, pos,
                                          f"length {nwords} words > maximum {self.max_words}"))
                self.stats.oversized += 1
                self._discard(1)
                pos += 1
                continue
            if bool(flags & FLAG_TO_HOST) != self.expect_to_host or flags & ~KNOWN_FLAGS:
                faults.append(self._fault(FrameProblem.DIRECTION, seq, pos,
                                          f"flags {flags:#04x} do not fit a "
                                          f"{'chip -> host' if self.expect_to_host else 'host -> chip'} frame"))
                self.stats.wrong_direction += 1
                self._discard(1)
                pos += 1
                continue
            total = HEADER_SIZE + 8 * nwords + TRAILER_SIZE
            if len(buf) - pos < total:
                break
            payload = bytes(buf[pos + HEADER_SIZE:pos + total - TRAILER_SIZE])
            (pcrc,) = struct.unpack_from(">I", buf, pos + total - TRAILER_SIZE)
            if zlib.crc32(payload) != pcrc:
                faults.append(self._fault(FrameProblem.CRC, seq, pos,
                                          f"payload CRC mismatch ({nwords} words)"))
                self.stats.crc_errors += 1
                self._discard(1)
                pos += 1
                continue
            if self._next_seq is not None and seq != self._next_seq and not flags & FLAG_START:
                faults.append(self._fault(FrameProblem.SEQUENCE, seq, pos,
                                          f"expected sequence {self._next_seq}, got {seq}"))
                self.stats.sequence_gaps += 1
            self._next_seq = (seq + 1) & 0xFFFFFFFF
            words = np.frombuffer(payload, dtype=">u8").astype(np.uint64)
            frames.append(Frame(seq, flags, words, self._consumed + pos))
            self.stats.frames += 1
            self.stats.words += nwords
            pos += total
        del buf[:pos]
        self._consumed += pos
        return frames, faults

    def flush_incomplete(self) -> tuple[list[Frame], list[FrameFault]]:
        """Declare buffered partial data lost (receive timeout or disconnect).

        Rescans the remainder after the partial frame's marker, so that a good
        frame hidden behind a truncated one is still delivered by the next feed."""
        if not self._buf:
            return [], []
        seq = None
        if len(self._buf) >= HEADER_SIZE and self._buf[:2] == MAGIC:
            _, _, _, s, _, hcrc = HEADER.unpack_from(self._buf, 0)
            if zlib.crc32(bytes(self._buf[:12])) == hcrc:
                seq = s
        fault = self._fault(FrameProblem.TRUNCATED, seq, 0,
                            f"{len(self._buf)} bytes of an incomplete frame")
        self.stats.truncated += 1
        # Drop the marker byte only; feed() rescans the rest.
        self._discard(1)
        rest = bytes(self._buf[1:])
        self._buf.clear()
        self._consumed += 1
        frames, faults = self.feed(rest)
        return frames, [fault] + faults

    # -- internals
    def _bad_headers(self, buf: bytearray, pos: int, faults: list[FrameFault]) -> int:
        """The header at `pos` is bad (CRC), and so may be those at the markers
        after it (a flood of markers): the consecutive ones are reported as one
        CRC fault with their `count` (each counted in the stats, its bytes
        discarded, as the loop in feed() would one by one), their header CRCs
        computed at once.  Returns where the search goes on: after the last
        bad header, before the first that may be good."""
        seg = np.frombuffer(bytes(buf[pos:pos + _BULK_WINDOW + HEADER_SIZE]), np.uint8)
        cand = np.flatnonzero((seg[:-1] == MAGIC[0]) & (seg[1:] == MAGIC[1]))
        cand = cand[cand + HEADER_SIZE <= len(seg)]          # marker 0 is the bad header at pos
        if len(cand) > 1:
            idx = cand[:, None] + np.arange(16)
            h = seg[idx]
            good = _crc32_rows(h[:, :12]) == (h[:, 12:16].astype(np.uint32) @ _BE32)
            n = int(np.argmax(good)) if good.any() else len(cand)
        else:
            n = 1
        faults.append(FrameFault(FrameProblem.CRC, None, self._consumed + pos, "header CRC mismatch", n))
        self.stats.crc_errors += n
        end = int(cand[n - 1]) + 1
        self._discard(end)
        return pos + end

    def _discard(self, n: int) -> None:
        if n > 0:
            self.stats.bytes_discarded += n

    def _fault(self, problem: FrameProblem, seq: int | None, pos: int, detail: str) -> FrameFault:
        return FrameFault(problem, seq, self._consumed + pos, detail)
