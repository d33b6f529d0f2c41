"""Connections: open a chip by URL, run programs, collect their results."""
from __future__ import annotations

import dataclasses
import os
import random
import time
from dataclasses import dataclass, field

import numpy as np

from isa import frame, wire
from isa.profiles import PROFILE_BY_CODE, Profile
from isa.regmap import register_map
from isa.regmap import CHIP_ID_BASE
from isa.wire import ErrorReason, H, LimitKind, TimeoutReason

from .errors import ChipError, LinkError, LinkTimeout, ProgramLimit, RejectedWord
from .program import Program
from .transport import Transport, open_transport

DEFAULT_URL = "twin:dls"

#: Error reasons whose index names a word of the program (a rejected word, or where a limit ended it).
_WORD_REASONS = np.array([int(r) for r in ErrorReason if r.names_word], dtype=np.uint32)


def _reason(code: int) -> ErrorReason | None:
    try:
        return ErrorReason(code)
    except ValueError:
        return None
ENV_URL = "BSS_CONNECTION"

SPIKE_DTYPE = np.dtype([("time", np.int64), ("label", np.uint16)])
MADC_DTYPE = np.dtype([("time", np.int64), ("value", np.uint16)])


@dataclass
class RunResult:
    """What a program brought back.  Times are FPGA ticks since the last timer reset."""

    spikes: np.ndarray = field(default_factory=lambda: np.zeros(0, SPIKE_DTYPE))
    madc: np.ndarray = field(default_factory=lambda: np.zeros(0, MADC_DTYPE))
    notices: list[str] = field(default_factory=list)   # link-level notices not tied to this program
    events_dropped: int = 0    # output events the chip's event FIFO dropped during this program
    words_sent: int = 0
    words_received: int = 0
    wall_seconds: float = 0.0


class Connection:
    """A chip behind a transport.  Identifies the chip on open."""

    def __init__(self, transport: Transport, timeout: float = 30.0):
        self.transport = transport
        self.url = transport.url
        self.timeout = timeout
        self._decoder = frame.FrameDecoder(expect_to_host=True)
        # A random origin (announced by the START flag) keeps notices about another
        # client's frames from matching this client's sequence numbers.
        self._tx_seq = random.getrandbits(32)
        self._first_frame = True
        self._tag = 0
        self._rx_words: list[np.ndarray] = []
        self._stale_tags: set[int] = set()     # programs that timed out: their answers may come late
        self.notices: list[str] = []
        self._identify()

    # ------------------------------------------------------------------ identity
    def _identify(self) -> None:
        # chip_id sits at the same address on every generation.
        self.profile, self.regmap = None, None
        words = np.array([wire.encode("omnibus_address", is_read=1, byte_enables=0xF, address=CHIP_ID_BASE + i)
                          for i in range(2)] + [wire.encode("loopback", halt=1, tag=0xFFFF)], dtype=np.uint64)
        resp = self._exchange(words, tag=0xFFFF, frame_seqs=None)
        data = resp[(resp >> np.uint64(56)) == H["read_data"]]
        if len(data) != 2:
            raise LinkError(f"{self.url}: the peer did not identify itself (chip_id unreadable)")
        ident, serial = (int(x) for x in wire.field_bulk("read_data", "data", data))
        # The chip_id block has the same layout on every generation.
        fields = register_map(next(iter(PROFILE_BY_CODE.values())).name).register("chip_id", "id").decode(ident)
        code, version = fields["profile"], fields["version"]
        if code not in PROFILE_BY_CODE:
            raise LinkError(f"{self.url}: unknown chip profile code {code}")
        self.profile: Profile = PROFILE_BY_CODE[code]
        self.regmap = register_map(self.profile.name)
        self.serial = serial
        self.version = version

    # ------------------------------------------------------------------ programs
    def program(self) -> Program:
        return Program(self.profile, self.regmap)

    def update(self, coord, container_type, **fields):
        """Change some fields of a register and keep the others as the chip holds
        them: a read, then a write (two programs).  `Program.write` instead writes
        a full value, in which fields left None take their reset values.
        Returns the container as written."""
        prog = self.program()
        ticket = prog.read(coord, container_type)
        self.run(prog)
        current = ticket.value
        unknown = set(fields) - {f.name for f in dataclasses.fields(current)}
        if unknown:
            raise ValueError(f"{container_type.__name__} has no field(s) {', '.join(sorted(unknown))}")
        new = dataclasses.replace(current, **fields)
        prog = self.program()
        prog.write(coord, new)
        self.run(prog)
        return new

    def run(self, prog: Program) -> RunResult:
        """Send the program, wait for its halt echo, fill tickets, return events.

        Raises ChipError (after filling the tickets that succeeded) when the chip
        rejected words, LinkError / LinkTimeout when the link failed."""
        t0 = time.perf_counter()
        if not prog.is_done:
            self._tag = (self._tag + 1) % 0xFFFF
            prog.done(tag=self._tag)
        words = prog.words()
        tag = int(wire.field_bulk("loopback", "tag", words[-1:])[0])
        try:
            resp = self._exchange(words, tag, frame_seqs=True)
        except LinkTimeout:
            self._stale_tags.add(tag)      # its answer may still come: the next run must not take it
            raise
        resp, stale_note = self._drop_stale(resp)
        if stale_note:
            self.notices.append(stale_note)
        result = self._interpret(prog, resp)
        result.words_sent, result.words_received = len(words), len(resp)
        result.wall_seconds = time.perf_counter() - t0
        return result

    def _exchange(self, words: np.ndarray, tag: int, frame_seqs) -> np.ndarray:
        flags = frame.FLAG_END | (frame.FLAG_START if self._first_frame else 0)
        first = self._tx_seq
        data, self._tx_seq = frame.encode_frames(words, self._tx_seq, flags)
        mine = {(first + i) & 0xFFFFFFFF for i in range((self._tx_seq - first) & 0xFFFFFFFF)}
        self._first_frame = False
        self.transport.write(data)
        deadline = time.monotonic() + self.timeout
        chunks: list[np.ndarray] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LinkTimeout(f"{self.url}: no halt echo within {self.timeout:.1f} s "
                                  f"({sum(map(len, chunks))} response words so far); is the chip "
                                  "running, and did the program fit its time limit?")
            raw = self.transport.read(min(remaining, 0.5))
            if not raw:
                continue
            frames, faults = self._decoder.feed(raw)
            for f in faults:
                self.notices.append(f"response link: {f}")
            if faults and not frames:
                continue
            for fr in frames:
                chunks.append(fr.words)
                done = self._scan(fr.words, tag, first, mine)
                if done:
                    return np.concatenate(chunks)

    def _drop_stale(self, resp: np.ndarray) -> tuple[np.ndarray, str]:
        """Cut off the late answer of a program that timed out earlier: everything
        up to its halt echo (a program's answers all come before its echo, and
        the chip runs a client's programs in order).  Returns the rest and a
        notice naming what was dropped ("" when nothing was)."""
        if not self._stale_tags or not len(resp):
            return resp, ""
        h = resp >> np.uint64(56)
        at = np.nonzero(h == H["loopback_echo"])[0]
        if not len(at):
            return resp, ""
        tags = wire.field_bulk("loopback_echo", "tag", resp[at])
        halts = wire.field_bulk("loopback_echo", "halt", resp[at])
        stale = [(int(i), int(t)) for i, t, hl in zip(at, tags, halts) if hl == 1 and int(t) in self._stale_tags]
        if not stale:
            return resp, ""
        cut, _ = stale[-1]
        for _, t in stale:
            self._stale_tags.discard(t)
        return resp[cut + 1:], (f"link: dropped {cut + 1} late response word(s) of {len(stale)} program(s) that "
                                f"timed out earlier (tag{'s' if len(stale) > 1 else ''} "
                                f"{', '.join(str(t) for _, t in stale)}); they are not part of this result")

    def _scan(self, words: np.ndarray, tag: int, first: int, mine: set[int]) -> bool:
        """Check a response frame for the halt echo and for link failures of our frames.

        A sequence gap reported at this program's first frame (which has no CONT
        flag) only tells of frames lost before it: the program itself runs."""
        h = words >> np.uint64(56)
        for w in words[(h == H["error"]) | (h == H["timeout"])]:
            msg, f = wire.decode(int(w))
            if msg.name == "error" and f["reason"] in (ErrorReason.SERVER_FULL, ErrorReason.AUTH_REFUSED):
                raise LinkError(f"{self.url}: refused: {ErrorReason(f['reason']).text}")
            if msg.name == "error" and f["reason"] == ErrorReason.NOTICES_DROPPED:
                self.notices.append(f"chip side: {f['index']} notice(s) not sent (they came faster than "
                                    "the chip's notice rate; the link block counts them)")
            elif msg.name == "error" and _reason(f["reason"]) is not None and _reason(f["reason"]).names_frame:
                reason = ErrorReason(f["reason"])
                gap_before_us = reason is ErrorReason.FRAME_SEQUENCE and f["index"] == first
                if f["index"] in mine and not gap_before_us:
                    if reason in (ErrorReason.PROGRAM_OVERSIZED, ErrorReason.RECEIVE_BUFFER_FULL):
                        raise LinkError(f"{self.url}: the chip dropped this program: {reason.text} "
                                        f"({reason.name}); the program did not run")
                    raise LinkError(f"{self.url}: the chip dropped frame {f['index']} of this program: "
                                    f"{reason.text} ({reason.name}); the program did not run")
                self.notices.append(f"chip side: frame {f['index']}: {reason.text}")
            elif msg.name == "timeout":
                try:
                    reason = TimeoutReason(f["reason"])
                except ValueError:
                    self.notices.append(f"chip side: timeout reason {f['reason']} at {f['index']}")
                    continue
                if reason is TimeoutReason.PROGRAM_END and f["index"] in mine:
                    raise LinkError(f"{self.url}: the chip dropped this program: its last frame never "
                                    "arrived; the program did not run")
                if reason is TimeoutReason.PROGRAM_RECEIVE and f["index"] in mine:
                    raise LinkError(f"{self.url}: the chip dropped this program: its frames took longer "
                                    "to arrive than the chip's receive limit (PROGRAM_RECEIVE); the program "
                                    "did not run")
                self.notices.append(f"chip side: timeout {reason.name} at {f['index']}")
        echo = words[h == H["loopback_echo"]]
        if len(echo):
            tags = wire.field_bulk("loopback_echo", "tag", echo)
            halts = wire.field_bulk("loopback_echo", "halt", echo)
            return bool(((tags == tag) & (halts == 1)).any())
        return False

    def _interpret(self, prog: Program, resp: np.ndarray) -> RunResult:
        """The result of a program from its response words: each message the
        chip sends goes to its reader (`READERS`), the notices first (they
        decide which reads were answered), then the responses."""
        h = resp >> np.uint64(wire.PAYLOAD_BITS)
        reading = _Reading(self.url, prog, RunResult(notices=list(self.notices)))
        self.notices.clear()
        for kind in (wire.Kind.NOTICE, wire.Kind.RESPONSE):
            for msg in wire.by_kind(kind):
                READERS[msg.name](reading, resp[h == msg.header])
            if kind is wire.Kind.NOTICE:
                reading.conclude()
        if reading.error is not None:
            raise reading.error
        return reading.result

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Connection {self.url} {self.profile.name} serial={self.serial}>"


class _Reading:
    """What `Connection._interpret` gathers from a program's response words."""

    def __init__(self, url: str, prog: Program, result: RunResult):
        self.url, self.prog, self.result = url, prog, result
        self.rejected: list[RejectedWord] = []
        self.failed_words = np.zeros(0, dtype=np.int64)
        self.stop: int | None = None              # the word where the program reached a limit
        self.limit = (LimitKind.OUTPUT_WORDS, 0)
        self.error: ChipError | None = None

    # ------------------------------------------------------------------ notices
    def error_words(self, words: np.ndarray) -> None:
        """Word-level rejections of this program (frame-level ones were taken while receiving)."""
        if not len(words):
            return
        f = wire.fields_bulk("error", words)
        word_level = np.isin(f["reason"], _WORD_REASONS)
        self.failed_words = f["index"][word_level].astype(np.int64)
        for idx, reason in zip(self.failed_words.tolist(), f["reason"][word_level].tolist()):
            self.rejected.append(RejectedWord(idx, ErrorReason(reason), self.prog.describe_word(idx)))
        at_limit = f["index"][f["reason"] == ErrorReason.PROGRAM_LIMIT]
        if len(at_limit):
            self.stop = int(at_limit[0])

    def limit_reached(self, words: np.ndarray) -> None:
        if len(words):
            f = wire.fields_bulk("limit_reached", words[:1])
            self.limit = (LimitKind(int(f["kind"][0])), int(f["value"][0]))

    def event_loss(self, words: np.ndarray) -> None:
        if not len(words):
            return
        f = wire.fields_bulk("event_loss", words)
        self.result.events_dropped = int(f["dropped"].sum())
        self.result.notices.append(f"chip side: the event FIFO dropped {self.result.events_dropped} output "
                                   f"event(s) (last at tick {int(f['time'][-1])}); see routing.fifo_status")

    def taken_while_receiving(self, words: np.ndarray) -> None:
        """Timeouts and halt echoes are read as the frames arrive
        (`Connection._scan`: a timeout of this program raises LinkError, one of
        another becomes a notice; the halt echo ends the exchange), nothing is
        left for the result."""

    def conclude(self) -> None:
        """After the notices: the error the program ends with, if any."""
        if self.stop is not None:
            kind, value = self.limit
            self.error = ProgramLimit(self.url, kind, value, self.stop, self.prog.describe_word(self.stop),
                                      [r for r in self.rejected if r.reason is not ErrorReason.PROGRAM_LIMIT],
                                      self.result)
        elif self.rejected:
            self.error = ChipError(self.rejected, self.result)

    # ------------------------------------------------------------------ responses
    def read_data(self, words: np.ndarray) -> None:
        """Read data, in the order of the reads that were not rejected (and came before a limit)."""
        data = wire.field_bulk("read_data", "data", words)
        pos = 0
        failed = len(self.failed_words) > 0
        for _, indices, ticket in self.prog.reads:
            unanswered = np.isin(indices, self.failed_words) if failed else np.zeros(len(indices), bool)
            if self.stop is not None:
                unanswered |= indices >= self.stop
            if unanswered.any():
                pos += int((~unanswered).sum())   # answers of its reads that succeeded
                ticket._fill(None, self.error)
            else:
                ticket._fill(data[pos:pos + len(indices)].astype(np.uint32), None)
                pos += len(indices)
        if pos != len(data):
            raise LinkError(f"{self.url}: {len(data)} read answers for {pos} accepted reads; "
                            "responses are out of step with the program")

    def spikes(self, words: np.ndarray) -> None:
        if len(words):
            f = wire.fields_bulk("spike", words)
            self.result.spikes = np.empty(len(words), SPIKE_DTYPE)
            self.result.spikes["time"], self.result.spikes["label"] = f["time"], f["label"]

    def madc_samples(self, words: np.ndarray) -> None:
        if len(words):
            f = wire.fields_bulk("madc_sample", words)
            self.result.madc = np.empty(len(words), MADC_DTYPE)
            self.result.madc["time"], self.result.madc["value"] = f["time"], f["value"]


#: The host's reader of every message from the chip (`Connection._interpret`
#: calls each with the words of its message, notices first).  isa.wire's
#: check_handlers holds this table to the wire dictionary at import: a message
#: without a reader fails there, naming it.
READERS = {
    "error": _Reading.error_words,
    "limit_reached": _Reading.limit_reached,
    "event_loss": _Reading.event_loss,
    "timeout": _Reading.taken_while_receiving,
    "read_data": _Reading.read_data,
    "loopback_echo": _Reading.taken_while_receiving,
    "spike": _Reading.spikes,
    "madc_sample": _Reading.madc_samples,
}
wire.check_handlers(READERS, wire.Direction.TO_HOST, "host.connection.READERS")


def connect(url: str | None = None, timeout: float = 30.0) -> Connection:
    """Open a chip.  Without a URL: $BSS_CONNECTION, else the in-process twin `twin:dls`."""
    url = url or os.environ.get(ENV_URL) or DEFAULT_URL
    return Connection(open_transport(url), timeout=timeout)
