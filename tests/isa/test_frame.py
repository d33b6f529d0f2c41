"""The frame layer (isa/frame.py): round trips, corruption, resynchronisation.

The mutation tests build a byte stream of good frames, damaged frames and
garbage, predict from the frame format alone (module docstring) what a
receiver must report for each piece, and compare with what the decoder reports
when fed all at once, byte by byte and in random chunks.
"""
from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from isa import frame
from isa.frame import (FLAG_CONT, FLAG_END, FLAG_START, FLAG_TO_HOST, KNOWN_FLAGS, MAX_FRAME_WORDS, Frame,
                       FrameDecoder, FrameFault, FrameProblem)

MAGIC = b"\xb5\x5a"
U32 = 0xFFFF_FFFF
UNKNOWN_FLAG = next(1 << i for i in range(8) if not (1 << i) & KNOWN_FLAGS)


# --------------------------------------------------------------------------- reference
def reference_frame(words, seq: int, flags: int, *, version: int = 1, length: int | None = None) -> bytes:
    """A frame built from the documented layout, without isa.frame.

    `version` and `length` let a test forge headers that still carry a valid
    header CRC."""
    words = [int(w) for w in words]
    head = MAGIC + struct.pack(">BBII", version, flags, seq & U32, len(words) if length is None else length)
    payload = b"".join(w.to_bytes(8, "big") for w in words)
    return head + struct.pack(">I", zlib.crc32(head)) + payload + struct.pack(">I", zlib.crc32(payload))


def run(decoder: FrameDecoder, chunks) -> tuple[list, list]:
    """Feed `chunks`, then declare whatever is left incomplete until nothing is."""
    frames, faults = [], []
    for chunk in chunks:
        fr, fa = decoder.feed(bytes(chunk))
        frames += fr
        faults += fa
    guard = 0
    while decoder.pending:
        fr, fa = decoder.flush_incomplete()
        frames += fr
        faults += fa
        guard += 1
        assert guard < 100, "flush_incomplete makes no progress"
    return frames, faults


def frame_key(f) -> tuple:
    return f.seq, f.flags, [int(w) for w in f.words]


def fault_key(f: FrameFault) -> tuple:
    return f.problem, f.seq, f.offset


def expand(faults, stream: bytes) -> list:
    """One fault per start marker: a run of `count` header faults (a flood of
    markers) stands for one fault at each of the `count` markers from its offset on."""
    out = []
    for f in faults:
        at = f.offset
        for k in range(f.count):
            if k:
                at = stream.index(MAGIC, at + 1)
            out.append(f._replace(offset=at, count=1))
    return out


# --------------------------------------------------------------------------- round trips
words_st = st.lists(st.integers(0, (1 << 64) - 1), max_size=12)


@settings(max_examples=100, deadline=None)
@given(words=words_st, seq=st.integers(0, U32), end=st.booleans(), to_host=st.booleans(),
       start=st.booleans(), cont=st.booleans())
def test_single_frame_round_trip(words, seq, end, to_host, start, cont):
    flags = ((FLAG_END if end else 0) | (FLAG_TO_HOST if to_host else 0) | (FLAG_START if start else 0)
             | (FLAG_CONT if cont else 0))
    data = frame.encode_frame(np.array(words, dtype=np.uint64), seq, flags)
    assert data == reference_frame(words, seq, flags)
    assert len(data) == 16 + 8 * len(words) + 4
    dec = FrameDecoder(expect_to_host=to_host)
    frames, faults = dec.feed(data)
    assert faults == []
    assert [frame_key(f) for f in frames] == [(seq, flags, words)]
    assert (frames[0].end, frames[0].start, frames[0].cont) == (end, start, cont)
    assert frames[0].offset == 0
    assert frames[0].words.dtype == np.uint64
    assert dec.pending == 0
    assert dec.stats.as_dict() == {"frames": 1, "words": len(words), "crc_errors": 0, "truncated": 0,
                                   "oversized": 0, "bad_version": 0, "sequence_gaps": 0,
                                   "wrong_direction": 0, "bytes_discarded": 0}


def test_golden_empty_frame():
    # start marker, version 1, flags END, sequence 7, length 0
    head = bytes([0xB5, 0x5A, 0x01, 0x01, 0, 0, 0, 7, 0, 0, 0, 0])
    expected = head + zlib.crc32(head).to_bytes(4, "big") + zlib.crc32(b"").to_bytes(4, "big")
    assert frame.encode_frame(np.zeros(0, dtype=np.uint64), 7, FLAG_END) == expected


def test_golden_flag_bits():
    assert (FLAG_END, FLAG_TO_HOST, FLAG_START, FLAG_CONT) == (0x01, 0x02, 0x04, 0x08)
    assert KNOWN_FLAGS == 0x0F
    data = frame.encode_frame(np.zeros(0, dtype=np.uint64), 7, FLAG_CONT | FLAG_END)
    assert data[3] == 0x09
    f = Frame(7, FLAG_CONT, np.zeros(0, dtype=np.uint64))
    assert (f.cont, f.start, f.end, f.offset) == (True, False, False, -1)


def test_golden_payload_is_big_endian():
    data = frame.encode_frame(np.array([0x0102_0304_0506_0708], dtype=np.uint64), 0)
    assert data[8:12] == b"\x00\x00\x00\x01"
    assert data[16:24] == bytes([1, 2, 3, 4, 5, 6, 7, 8])


@pytest.mark.parametrize("flags", [FLAG_END, 0, FLAG_END | FLAG_TO_HOST, FLAG_START | FLAG_END, FLAG_START,
                                   FLAG_START | FLAG_END | FLAG_TO_HOST, FLAG_CONT | FLAG_END])
def test_encode_frames_splits_and_marks_only_the_last_end(flags):
    """END only on the last frame, START only on the first, CONT on every frame
    after the first (a CONT asked for by the caller stays on the first too)."""
    n = 2 * MAX_FRAME_WORDS + 5
    words = np.arange(n, dtype=np.uint64) * np.uint64(0x0101_0101)
    data, next_seq = frame.encode_frames(words, U32 - 1, flags)   # wraps the sequence number
    assert next_seq == 1
    dec = FrameDecoder(expect_to_host=bool(flags & FLAG_TO_HOST))
    frames, faults = dec.feed(data)
    assert faults == []
    assert [f.seq for f in frames] == [U32 - 1, U32, 0]
    assert [len(f.words) for f in frames] == [MAX_FRAME_WORDS, MAX_FRAME_WORDS, 5]
    assert [f.end for f in frames] == [False, False, bool(flags & FLAG_END)]
    assert [f.start for f in frames] == [bool(flags & FLAG_START), False, False]
    assert [f.cont for f in frames] == [bool(flags & FLAG_CONT), True, True]
    assert [f.flags for f in frames] == [flags & ~FLAG_END,
                                         (flags & ~(FLAG_END | FLAG_START)) | FLAG_CONT,
                                         (flags & ~FLAG_START) | FLAG_CONT]
    sizes = [16 + 8 * len(f.words) + 4 for f in frames]
    assert [f.offset for f in frames] == [0, sizes[0], sizes[0] + sizes[1]]
    assert np.array_equal(np.concatenate([f.words for f in frames]), words)
    assert len(data) == sum(16 + 8 * len(f.words) + 4 for f in frames)


@settings(max_examples=50, deadline=None)
@given(words=words_st, seq=st.integers(0, U32),
       flags=st.sampled_from([FLAG_END, FLAG_START | FLAG_END, 0, FLAG_TO_HOST | FLAG_END]))
def test_encode_frames_small_is_one_frame(words, seq, flags):
    data, next_seq = frame.encode_frames(np.array(words, dtype=np.uint64), seq, flags)
    assert data == reference_frame(words, seq, flags)         # one frame: no CONT
    assert next_seq == (seq + 1) & U32


def test_encode_frame_refuses_oversized_payload():
    with pytest.raises(ValueError, match=rf"^{MAX_FRAME_WORDS + 1} words exceed the frame maximum {MAX_FRAME_WORDS}$"):
        frame.encode_frame(np.zeros(MAX_FRAME_WORDS + 1, dtype=np.uint64), 0)


# --------------------------------------------------------------------------- single defects
def test_sequence_gap_is_reported_but_the_frame_delivered():
    dec = FrameDecoder()
    frames, faults = dec.feed(reference_frame([1], 5, 0) + reference_frame([2], 7, 0) + reference_frame([3], 8, 0))
    assert [f.seq for f in frames] == [5, 7, 8]
    assert [f.offset for f in frames] == [0, 28, 56]
    assert [fault_key(f) for f in faults] == [(FrameProblem.SEQUENCE, 7, 28)]
    assert str(faults[0]) == "frame seq 7 at stream byte 28: sequence: expected sequence 6, got 7"
    assert dec.stats.sequence_gaps == 1 and dec.stats.dropped() == 0


def test_start_flag_sets_a_new_sequence_origin():
    dec = FrameDecoder()
    stream = (reference_frame([], 5, 0) + reference_frame([], 100, FLAG_START)
              + reference_frame([], 101, 0) + reference_frame([], 50, 0))
    frames, faults = run(dec, [stream])
    assert [f.seq for f in frames] == [5, 100, 101, 50]
    assert [fault_key(f) for f in faults] == [(FrameProblem.SEQUENCE, 50, 60)]


def test_sequence_wraps_without_a_gap():
    frames, faults = run(FrameDecoder(), [reference_frame([], U32, 0) + reference_frame([], 0, 0)])
    assert [f.seq for f in frames] == [U32, 0] and faults == []


def test_hidden_frame_inside_truncated_span_is_delivered_after_flush():
    big = reference_frame(range(10), 0, 0)             # announces 10 words = 100 bytes
    hidden = reference_frame([0xABCD], 1, FLAG_END)    # 28 bytes
    stream = big[:24] + hidden                         # 52 bytes: less than the announced span
    dec = FrameDecoder()
    frames, faults = dec.feed(stream)
    assert (frames, faults) == ([], [])
    assert dec.pending == len(stream)
    frames, faults = dec.flush_incomplete()
    assert [frame_key(f) for f in frames] == [(1, FLAG_END, [0xABCD])]
    assert frames[0].offset == 24                      # stream offset, across the flush
    assert [fault_key(f) for f in faults] == [(FrameProblem.TRUNCATED, 0, 0)]
    assert str(faults[0]) == "frame seq 0 at stream byte 0: truncated: 52 bytes of an incomplete frame"
    assert dec.pending == 0
    assert dec.stats.truncated == 1 and dec.stats.frames == 1
    assert dec.stats.bytes_discarded == 24


def test_truncated_frame_followed_by_enough_bytes_fails_its_payload_crc():
    big = reference_frame(range(3), 0, 0)              # 44 bytes announced
    tail = [reference_frame([i], i, 0) for i in (1, 2)]
    frames, faults = run(FrameDecoder(), [big[:20] + b"".join(tail)])
    assert [f.seq for f in frames] == [1, 2]
    assert [fault_key(f) for f in faults] == [(FrameProblem.CRC, 0, 0)]
    assert faults[0].detail == "payload CRC mismatch (3 words)"


@pytest.mark.parametrize("forge, problem, text", [
    (dict(version=2), FrameProblem.VERSION, r"^frame seq 3 at stream byte 5: version: version 2, this side speaks 1$"),
    (dict(length=MAX_FRAME_WORDS + 1), FrameProblem.OVERSIZED,
     rf"^frame seq 3 at stream byte 5: oversized: length {MAX_FRAME_WORDS + 1} words > maximum {MAX_FRAME_WORDS}$"),
    (dict(length=U32), FrameProblem.OVERSIZED,
     rf"^frame seq 3 at stream byte 5: oversized: length {U32} words > maximum {MAX_FRAME_WORDS}$"),
    (dict(flags=FLAG_TO_HOST), FrameProblem.DIRECTION,
     r"^frame seq 3 at stream byte 5: direction: flags 0x02 do not fit a host -> chip frame$"),
    (dict(flags=UNKNOWN_FLAG), FrameProblem.DIRECTION,
     rf"^frame seq 3 at stream byte 5: direction: flags {UNKNOWN_FLAG:#04x} do not fit a host -> chip frame$"),
])
def test_forged_header_with_valid_crc(forge, problem, text):
    flags = forge.pop("flags", 0)
    bad = reference_frame([1, 2], 3, flags, **forge)
    good = reference_frame([9], 4, FLAG_END)
    garbage = b"\x00\x11\x22\x33\x44"
    dec = FrameDecoder()
    frames, faults = run(dec, [garbage + bad + good])
    assert [frame_key(f) for f in frames] == [(4, FLAG_END, [9])]
    assert len(faults) == 1
    assert faults[0].problem is problem
    assert faults[0].offset == 5
    assert faults[0].seq == 3
    assert re.match(text, str(faults[0])), str(faults[0])
    assert dec.stats.dropped() == 1
    assert dec.stats.bytes_discarded == len(garbage) + len(bad)


def test_header_crc_fault_has_no_sequence_number():
    bad = bytearray(reference_frame([1], 3, 0))
    bad[7] ^= 0x01                                   # low bit of the sequence number
    frames, faults = run(FrameDecoder(), [bytes(bad) + reference_frame([2], 4, 0)])
    assert [f.seq for f in frames] == [4]
    assert [str(f) for f in faults] == ["frame at stream byte 0: crc: header CRC mismatch"]


def test_to_host_decoder_rejects_host_to_chip_frames():
    dec = FrameDecoder(expect_to_host=True)
    frames, faults = run(dec, [reference_frame([1], 0, FLAG_END) + reference_frame([1], 1, FLAG_END | FLAG_TO_HOST)])
    assert [f.seq for f in frames] == [1]
    assert [fault_key(f) for f in faults] == [(FrameProblem.DIRECTION, 0, 0)]
    assert faults[0].detail == "flags 0x01 do not fit a chip -> host frame"


def test_max_words_of_the_receiver_is_honoured():
    dec = FrameDecoder(max_words=4)
    frames, faults = run(dec, [reference_frame(range(5), 0, 0) + reference_frame(range(4), 1, 0)])
    assert [len(f.words) for f in frames] == [4]
    assert [fault_key(f) for f in faults] == [(FrameProblem.OVERSIZED, 0, 0)]


def _frame_with_last_byte(value: int) -> bytes:
    for seq in range(100_000):
        data = reference_frame([seq], seq, 0)
        if data[-1] == value:
            return data
    raise AssertionError("no such frame")


@pytest.mark.parametrize("chunked", [False, True], ids=["at_once", "byte_by_byte"])
def test_frame_ending_in_first_marker_byte_leaves_nothing_behind(chunked):
    """Regression: a delivered frame whose payload CRC ends in 0xB5 kept that byte
    buffered as a possible marker start; flush_incomplete then reported a bogus
    truncated frame and bytes_discarded counted a delivered byte."""
    data = _frame_with_last_byte(MAGIC[0])
    dec = FrameDecoder()
    frames, faults = dec.feed(data) if not chunked else run(dec, [bytes([b]) for b in data])
    assert len(frames) == 1 and faults == []
    assert dec.pending == 0
    assert dec.stats.bytes_discarded == 0
    assert dec.flush_incomplete() == ([], [])


def test_lone_trailing_marker_byte_is_kept_then_reported_on_flush():
    dec = FrameDecoder()
    frames, faults = dec.feed(b"\x01\x02" + MAGIC[:1])
    assert (frames, faults, dec.pending, dec.stats.bytes_discarded) == ([], [], 1, 2)
    # the marker completes in the next chunk
    frames, faults = dec.feed(reference_frame([5], 0, 0)[1:])
    assert [f.seq for f in frames] == [0] and faults == []
    assert dec.stats.bytes_discarded == 2


# --------------------------------------------------------------------------- mutations
KINDS = ("good", "good", "good", "header_flip", "payload_flip", "marker_flip", "truncate",
         "version", "oversized", "direction", "garbage")
GARBAGE_BYTES = st.integers(0, 255).filter(lambda b: b not in MAGIC)


@dataclass
class Segment:
    kind: str
    data: bytes
    seq: int | None = None
    flags: int = 0
    words: tuple = ()
    full_length: int = 0          # length of the undamaged frame
    kept: int = 0                 # bytes of a truncated frame
    original: bytes = b""         # the undamaged frame
    offset: int = 0


@st.composite
def damaged_streams(draw, to_host: bool):
    first_seq = draw(st.integers(0, U32))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=7))
    direction_flag = FLAG_TO_HOST if to_host else 0
    segments = []
    seq = first_seq
    for i, kind in enumerate(kinds):
        if kind == "garbage":
            segments.append(Segment(kind, bytes(draw(st.lists(GARBAGE_BYTES, min_size=1, max_size=40)))))
            continue
        words = tuple(draw(st.lists(st.integers(0, (1 << 64) - 1), max_size=5)))
        start = draw(st.booleans() if i == 0 else st.sampled_from([False] * 5 + [True]))
        cont = not start and draw(st.booleans())
        flags = (direction_flag | (FLAG_END if i == len(kinds) - 1 else 0) | (FLAG_START if start else 0)
                 | (FLAG_CONT if cont else 0))
        good = reference_frame(words, seq, flags)
        data = bytearray(good)
        seg = Segment(kind, b"", seq & U32, flags, words, len(good), original=good)
        if kind == "header_flip":
            data[draw(st.integers(2, 15))] ^= 1 << draw(st.integers(0, 7))
        elif kind == "payload_flip":
            data[draw(st.integers(16, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
        elif kind == "marker_flip":
            data[draw(st.integers(0, 1))] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            seg.kept = draw(st.integers(2, len(data) - 1))
            data = data[:seg.kept]
        elif kind == "version":
            data = reference_frame(words, seq, flags, version=draw(st.integers(0, 255).filter(lambda v: v != 1)))
        elif kind == "oversized":
            data = reference_frame(words, seq, flags, length=draw(st.integers(MAX_FRAME_WORDS + 1, U32)))
        elif kind == "direction":
            bad_flags = draw(st.integers(0, 255).filter(
                lambda f: bool(f & FLAG_TO_HOST) != to_host or f & ~KNOWN_FLAGS))
            data = reference_frame(words, seq, bad_flags)
        seg.data = bytes(data)
        segments.append(seg)
        seq += 1
    offset = 0
    for seg in segments:
        seg.offset = offset
        offset += len(seg.data)
    stream = b"".join(s.data for s in segments)
    # No start marker may appear by accident (in a payload, a CRC, a flipped bit):
    # then every fault below is predictable.
    markers = {i for i in range(len(stream) - 1) if stream[i:i + 2] == MAGIC}
    assume(markers == {s.offset for s in segments if s.kind not in ("garbage", "marker_flip")})
    # A truncated frame must stay damaged: the bytes after the cut must not
    # happen to complete it again (e.g. the all-zero CRC of an empty payload).
    assume(all(stream[s.offset:s.offset + s.full_length] != s.original
               for s in segments if s.kind == "truncate"))
    return segments, stream


def expected_outcome(segments, stream):
    """What the frame format says a receiver must report, piece by piece."""
    frames, faults = [], []
    prev_seq = None
    for s in segments:
        available = len(stream) - s.offset
        if s.kind == "good":
            frames.append((s.seq, s.flags, list(s.words)))
            if prev_seq is not None and s.seq != (prev_seq + 1) & U32 and not s.flags & FLAG_START:
                faults.append((FrameProblem.SEQUENCE, s.seq, s.offset))
            prev_seq = s.seq
        elif s.kind == "header_flip":
            faults.append((FrameProblem.CRC, None, s.offset))
        elif s.kind == "payload_flip":
            faults.append((FrameProblem.CRC, s.seq, s.offset))
        elif s.kind == "version":
            faults.append((FrameProblem.VERSION, s.seq, s.offset))
        elif s.kind == "oversized":
            faults.append((FrameProblem.OVERSIZED, s.seq, s.offset))
        elif s.kind == "direction":
            faults.append((FrameProblem.DIRECTION, s.seq, s.offset))
        elif s.kind == "truncate":
            # the cut may fall inside the header; the bytes after it can still
            # complete a valid header by chance (e.g. a CRC ending in 0xB5)
            header_intact = stream[s.offset:s.offset + 16] == s.original[:16]
            needed = s.full_length if header_intact else 16
            seq = s.seq if header_intact else None
            if available >= needed:      # later bytes complete the span: the CRC cannot match
                faults.append((FrameProblem.CRC, seq, s.offset))
            else:                        # the stream ends inside the span: only a flush tells
                faults.append((FrameProblem.TRUNCATED, seq, s.offset))
        # garbage and marker_flip: not recognisable as a frame, only counted as bytes
    if stream and stream[-1] == MAGIC[0] and segments[-1].kind != "good":
        # a trailing first marker byte may start a frame: kept, then flushed as truncated
        faults.append((FrameProblem.TRUNCATED, None, len(stream) - 1))
    faults.sort(key=lambda f: f[2])
    return frames, faults


def check_stream(segments, stream, chunks, to_host):
    dec = FrameDecoder(expect_to_host=to_host)
    frames, faults = run(dec, chunks)
    faults = expand(faults, stream)
    exp_frames, exp_faults = expected_outcome(segments, stream)
    assert [frame_key(f) for f in frames] == exp_frames
    assert [f.offset for f in frames] == [s.offset for s in segments if s.kind == "good"]
    assert [fault_key(f) for f in faults] == exp_faults
    st_ = dec.stats
    count = lambda p: sum(1 for f in exp_faults if f[0] is p)
    delivered = sum(len(s.data) for s in segments if s.kind == "good")
    assert st_.frames == len(exp_frames)
    assert st_.words == sum(len(f[2]) for f in exp_frames)
    assert st_.crc_errors == count(FrameProblem.CRC)
    assert st_.truncated == count(FrameProblem.TRUNCATED)
    assert st_.oversized == count(FrameProblem.OVERSIZED)
    assert st_.bad_version == count(FrameProblem.VERSION)
    assert st_.wrong_direction == count(FrameProblem.DIRECTION)
    assert st_.sequence_gaps == count(FrameProblem.SEQUENCE)
    assert st_.dropped() == len(exp_faults) - count(FrameProblem.SEQUENCE)
    # nothing silently lost: every byte was delivered in a frame or counted as discarded
    assert dec.pending == 0
    assert st_.bytes_discarded == len(stream) - delivered
    return frames, faults, st_.as_dict()


@settings(max_examples=150, deadline=None)
@given(data=st.data(), to_host=st.booleans())
def test_damaged_stream_is_reported_and_resynchronised(data, to_host):
    segments, stream = data.draw(damaged_streams(to_host))
    at_once = check_stream(segments, stream, [stream], to_host)
    byte_by_byte = check_stream(segments, stream, [stream[i:i + 1] for i in range(len(stream))], to_host)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    pieces = [stream[a:b] for a, b in zip([0] + cuts, cuts + [len(stream)])]
    chunked = check_stream(segments, stream, pieces, to_host)

    def comparable(result):
        frames, faults, stats = result
        return [frame_key(f) for f in frames], [(fault_key(f), f.detail) for f in faults], stats

    assert comparable(at_once) == comparable(byte_by_byte) == comparable(chunked)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_good_frames_after_a_truncated_tail_survive_flush(data):
    """A truncated frame at the end of a burst hides complete frames in its span."""
    n_hidden = data.draw(st.integers(1, 3))
    big_words = data.draw(st.integers(20, 40))
    big = reference_frame(range(big_words), 0, 0)
    hidden = [reference_frame([i], i, 0) for i in range(1, n_hidden + 1)]
    kept = data.draw(st.integers(16, 60))      # header intact: only a flush can tell
    stream = big[:kept] + b"".join(hidden)
    assume(len(stream) < len(big) and stream[-1] != MAGIC[0])
    dec = FrameDecoder()
    frames, faults = run(dec, [stream])
    assert [f.seq for f in frames] == list(range(1, n_hidden + 1))
    assert [f.offset for f in frames] == [kept + 28 * i for i in range(n_hidden)]
    assert [fault_key(f) for f in faults] == [(FrameProblem.TRUNCATED, 0, 0)]
    assert dec.stats.bytes_discarded == kept


@pytest.mark.parametrize("n_markers", [1, 2, 5000, 40_000])
def test_a_flood_of_markers_is_one_run_of_header_faults(n_markers):
    """Start markers with nothing valid behind them (2 bytes each): reported as
    runs of CRC faults with their counts (one per marker, each counted), the
    good frame behind them delivered; the same whatever the chunks."""
    good = reference_frame([7], 3, 0)
    stream = MAGIC * n_markers + b"\x00" * 16 + good
    for chunks in ([stream], [stream[i:i + 4096] for i in range(0, len(stream), 4096)]):
        dec = FrameDecoder()
        frames, faults = run(dec, chunks)
        assert [frame_key(f) for f in frames] == [(3, 0, [7])]
        assert all(f.problem is FrameProblem.CRC and f.seq is None for f in faults)
        assert sum(f.count for f in faults) == n_markers == dec.stats.crc_errors
        assert [fault_key(f) for f in expand(faults, stream)] == [(FrameProblem.CRC, None, 2 * i)
                                                                 for i in range(n_markers)]
        assert dec.stats.bytes_discarded == len(stream) - len(good)
        if len(chunks) == 1:
            assert len(faults) == -(-n_markers // (1 << 15))     # one run per window of 64 KiB
    if n_markers > 1:
        assert f"({faults[0].count} times, at each start marker from there on)" in str(faults[0])
