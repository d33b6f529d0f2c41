"""The host <-> chip wire instruction set: one table, every codec derived from it.

A message is one 64-bit word: an 8-bit header (the message's index in the
dictionary below) and a payload right-aligned in the low 56 bits.  Fields are
listed most significant first; the last field sits at bit 0.  Payload bits above
the fields are reserved and must be zero.

Two codecs are derived from ``MESSAGES``:

* the single-message path (``encode`` / ``decode``), built on compiled
  bitstruct formats, for readability and as the reference;
* the bulk path (``encode_bulk`` / ``fields_bulk``), NumPy shifts and masks over
  whole arrays of words, for register dumps and long spike trains.

Tests check the two against each other on random inputs.
"""
from __future__ import annotations

import enum
import operator
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import bitstruct
import numpy as np

WORD_BITS = 64
HEADER_BITS = 8
PAYLOAD_BITS = WORD_BITS - HEADER_BITS
PAYLOAD_MASK = (1 << PAYLOAD_BITS) - 1

#: The FPGA clock (125 MHz) and one tick of it in seconds of hardware time (8 ns):
#: wait-until targets and event times count these ticks.
FPGA_CLOCK_HZ = 125_000_000
FPGA_TICK_S = 1 / FPGA_CLOCK_HZ


class Direction(enum.Enum):
    TO_CHIP = "to_chip"
    TO_HOST = "to_host"


class Kind(enum.Enum):
    """What a message is, and so which side handles it and how.

    To the chip (the executor, twin.executor, has a handler for each):

    * REGISTER: a register-bus word; consecutive ones are applied as runs of
      writes and reads, in program order;
    * TIMED: moves the playback timer or injects events at it; consecutive
      ones are one advance of the chip;
    * CONTROL: acts alone, between the segments of the other kinds.

    To the host (host.connection has a reader for each):

    * RESPONSE: output of the program (answers to reads, echoes, recorded
      events), returned in its result;
    * NOTICE: about the program or the link (a word rejected, a limit
      reached, events lost, a timeout): raised or listed in the result.
    """

    REGISTER = "register access"
    TIMED = "timed"
    CONTROL = "control"
    RESPONSE = "response"
    NOTICE = "notice"

    @property
    def direction(self) -> "Direction":
        return Direction.TO_HOST if self in (Kind.RESPONSE, Kind.NOTICE) else Direction.TO_CHIP


class ContractError(RuntimeError):
    """A side of the wire does not handle exactly the messages it must (raised at import)."""


class ErrorReason(enum.IntEnum):
    """Reason codes carried by the ``error`` notification (chip -> host)."""

    UNKNOWN_MESSAGE = 1      # header not in the to-chip dictionary
    RESERVED_PAYLOAD = 2     # payload bits above the message's fields are set
    ORPHAN_DATA = 3          # register-bus data word without a preceding write address
    MISSING_DATA = 4         # register-bus write address not followed by its data word
    UNKNOWN_ADDRESS = 5      # no register at this register-bus address
    READ_ONLY = 6            # write to a read-only register
    WRITE_ONLY = 7           # read of a write-only register
    FIELD_RANGE = 8          # a field value above the field's legal maximum
    RESERVED_BITS = 9        # bits set outside every field of the register
    BYTE_ENABLES = 10        # read with byte enables other than 0b1111
    FRAME_CRC = 16           # frame header or payload CRC mismatch (index = frame sequence)
    FRAME_TRUNCATED = 17     # frame ended before its announced length
    FRAME_OVERSIZED = 18     # frame length field above the maximum
    FRAME_VERSION = 19       # unknown frame-format version
    FRAME_SEQUENCE = 20      # frame sequence number skipped (frames lost)
    FRAME_DIRECTION = 21     # frame flagged as travelling the wrong way
    PROGRAM_OVERSIZED = 22   # a program exceeded the twin's buffer before its end
    BUSY = 23                # a block refused the access in its current state
    SERVER_FULL = 24         # the server refuses the connection: it serves its maximum of clients
    AUTH_REFUSED = 25        # the server refuses the connection: no valid token came first
    PROGRAM_LIMIT = 26       # the program reached a limit (the `limit_reached` word before names it) and ended at this word
    NOTICES_DROPPED = 27     # notices beyond the chip's rate were not sent; index: how many (counted in the link block)
    RECEIVE_BUFFER_FULL = 28  # the chip side holds its maximum of unfinished programs (all clients'); program dropped

    @property
    def text(self) -> str:
        return _REASON_TEXT[self]

    @property
    def names_frame(self) -> bool:
        """`index` is a frame's sequence number (a frame fault, or a program dropped by its frames)."""
        return self in _FRAME_REASONS

    @property
    def names_word(self) -> bool:
        """`index` is the position of a word in the program (the word was rejected, or the program ended there)."""
        return self < ErrorReason.FRAME_CRC or self in (ErrorReason.BUSY, ErrorReason.PROGRAM_LIMIT)


_FRAME_REASONS = frozenset({ErrorReason.FRAME_CRC, ErrorReason.FRAME_TRUNCATED, ErrorReason.FRAME_OVERSIZED,
                            ErrorReason.FRAME_VERSION, ErrorReason.FRAME_SEQUENCE, ErrorReason.FRAME_DIRECTION,
                            ErrorReason.PROGRAM_OVERSIZED, ErrorReason.RECEIVE_BUFFER_FULL})

_REASON_TEXT = {
    ErrorReason.UNKNOWN_MESSAGE: "unknown message header",
    ErrorReason.RESERVED_PAYLOAD: "reserved payload bits set",
    ErrorReason.ORPHAN_DATA: "register-bus data word without a write address before it",
    ErrorReason.MISSING_DATA: "register-bus write address without its data word",
    ErrorReason.UNKNOWN_ADDRESS: "no register at this address",
    ErrorReason.READ_ONLY: "write to a read-only register",
    ErrorReason.WRITE_ONLY: "read of a write-only register",
    ErrorReason.FIELD_RANGE: "field value above its legal maximum",
    ErrorReason.RESERVED_BITS: "bits set outside every field of the register",
    ErrorReason.BYTE_ENABLES: "reads must enable all four bytes",
    ErrorReason.FRAME_CRC: "frame CRC mismatch",
    ErrorReason.FRAME_TRUNCATED: "frame truncated",
    ErrorReason.FRAME_OVERSIZED: "frame length above the maximum",
    ErrorReason.FRAME_VERSION: "unknown frame version",
    ErrorReason.FRAME_SEQUENCE: "frame sequence gap (frames lost)",
    ErrorReason.FRAME_DIRECTION: "frame travelling the wrong direction",
    ErrorReason.PROGRAM_OVERSIZED: "program too large for the playback buffer",
    ErrorReason.BUSY: "block busy, access refused",
    ErrorReason.SERVER_FULL: "the server serves its maximum number of clients; try again later",
    ErrorReason.AUTH_REFUSED: "the server requires its token first (token=... in the URL, or $BSS_TWIN_TOKEN)",
    ErrorReason.PROGRAM_LIMIT: "the program reached one of its limits and was ended here",
    ErrorReason.NOTICES_DROPPED: "notices not sent (over the chip's rate)",
    ErrorReason.RECEIVE_BUFFER_FULL: "the chip side's buffer for programs being received is full; send it again later",
}


class TimeoutReason(enum.IntEnum):
    """Reason codes carried by the ``timeout`` notification."""

    FRAME_RECEIVE = 1        # a frame started but its remaining bytes never arrived
    PROGRAM_END = 2          # a program's frames stopped arriving before its last frame
    PROGRAM_RECEIVE = 3      # a program's frames kept arriving without its last frame beyond the receive budget


class LimitKind(enum.IntEnum):
    """What a program may use at most (`limit` asks for less, `limit_reached` reports one)."""

    SECONDS = 1              # wall time on the chip, in milliseconds (`value`); waiting for the chip not counted
    TICKS = 2                # chip time the program's waits advance, in FPGA ticks
    OUTPUT_WORDS = 3         # response words: read data, spikes, MADC samples, event losses

    @property
    def text(self) -> str:
        return _LIMIT_TEXT[self]

    def describe(self, value: int) -> str:
        """The limit and its value in words, e.g. 'hardware-time limit of 1000 ticks (8 us)'."""
        if self is LimitKind.SECONDS:
            return f"{self.text} of {value / 1000:g} s"
        if self is LimitKind.TICKS:
            return f"{self.text} of {value} ticks ({value * FPGA_TICK_S:.3g} s of chip time)"
        return f"{self.text} of {value} words"


_LIMIT_TEXT = {
    LimitKind.SECONDS: "wall-time limit",
    LimitKind.TICKS: "hardware-time limit",
    LimitKind.OUTPUT_WORDS: "output limit",
}


@dataclass(frozen=True)
class Message:
    """One entry of the wire dictionary."""

    name: str
    direction: Direction
    header: int
    fields: tuple[tuple[str, int], ...]
    doc: str
    kind: Kind
    # Derived in __post_init__:
    width: int = field(init=False)
    shifts: Mapping[str, int] = field(init=False)
    _format: bitstruct.CompiledFormat = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        width = sum(w for _, w in self.fields)
        if width > PAYLOAD_BITS:
            raise ValueError(f"{self.name}: payload {width} bits > {PAYLOAD_BITS}")
        if not 0 <= self.header < 256:
            raise ValueError(f"{self.name}: header {self.header} does not fit 8 bits")
        if not isinstance(self.kind, Kind) or self.kind.direction is not self.direction:
            raise ValueError(f"{self.name}: kind {self.kind!r} is not a Kind of a message travelling "
                             f"{self.direction.value}")
        shifts, pos = {}, width
        for fname, w in self.fields:
            pos -= w
            shifts[fname] = pos
        fmt = f">u{HEADER_BITS}p{PAYLOAD_BITS - width}" + "".join(f"u{w}" for _, w in self.fields)
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "shifts", shifts)
        object.__setattr__(self, "_format", bitstruct.compile(fmt))

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.fields)

    def limit(self, fname: str) -> int:
        """The largest value field `fname` holds (2**width - 1)."""
        try:
            return (1 << dict(self.fields)[fname]) - 1
        except KeyError:
            raise WireError(f"{self.name} has no field {fname!r}; fields: {', '.join(self.field_names)}") from None

    @property
    def reserved_mask(self) -> int:
        """Payload bits that must be zero."""
        return PAYLOAD_MASK & ~((1 << self.width) - 1)


_TC, _TH = Direction.TO_CHIP, Direction.TO_HOST
REGISTER, TIMED, CONTROL, RESPONSE, NOTICE = Kind.REGISTER, Kind.TIMED, Kind.CONTROL, Kind.RESPONSE, Kind.NOTICE

#: The wire dictionary.  Headers are unique across both directions so that a
#: word sent the wrong way is recognised as such.
MESSAGES: tuple[Message, ...] = (
    # host -> chip
    Message("reset", _TC, 0x01, (("active", 1),),
            "Chip reset: active=1 returns every register and the analog state to reset values.", kind=CONTROL),
    Message("timer_reset", _TC, 0x02, (),
            "Set the playback timer to zero; wait-until and event times count from here.", kind=CONTROL),
    Message("wait_until", _TC, 0x03, (("time", 32),),
            "Hold the playback until the timer reaches `time` (FPGA ticks of 8 ns); the chip runs meanwhile.", kind=TIMED),
    Message("system_time_init", _TC, 0x04, (("enable", 1),),
            "Initialise the chip's system time counter from the FPGA timer.", kind=CONTROL),
    Message("barrier", _TC, 0x05, (("mask", 3),),
            "Wait until outstanding register-bus (bit 0), JTAG (bit 1) and system-time (bit 2) operations completed.", kind=CONTROL),
    Message("loopback", _TC, 0x06, (("halt", 1), ("tag", 16)),
            "Echoed back as `loopback_echo`; halt=1 ends the program.", kind=CONTROL),
    Message("omnibus_address", _TC, 0x07, (("is_read", 1), ("byte_enables", 4), ("address", 32)),
            "Register-bus access: word address; a read yields one `read_data`, a write takes the next `omnibus_data`.", kind=REGISTER),
    Message("omnibus_data", _TC, 0x08, (("data", 32),),
            "Data word of the preceding register-bus write.", kind=REGISTER),
    Message("spike_pack_1", _TC, 0x09, (("label0", 16),),
            "One spike event injected at the current timer value.", kind=TIMED),
    Message("spike_pack_2", _TC, 0x0A, (("label1", 16), ("label0", 16)),
            "Two spike events injected at the current timer value.", kind=TIMED),
    Message("spike_pack_3", _TC, 0x0B, (("label2", 16), ("label1", 16), ("label0", 16)),
            "Three spike events injected at the current timer value.", kind=TIMED),
    Message("limit", _TC, 0x0C, (("kind", 8), ("value", 40)),
            "Lower one of this program's limits (LimitKind) to `value`, counted from the program's start, "
            "from this word on; above the chip's own limit the chip's holds.", kind=CONTROL),
    # chip -> host
    Message("read_data", _TH, 0x81, (("data", 32),),
            "Answer to one register-bus read, in the order the reads were issued.", kind=RESPONSE),
    Message("loopback_echo", _TH, 0x82, (("halt", 1), ("tag", 16)),
            "Echo of a `loopback`; with halt=1 the program is complete.", kind=RESPONSE),
    Message("spike", _TH, 0x83, (("label", 16), ("time", 32)),
            "Recorded spike: 16-bit label and timestamp in FPGA ticks since the last timer reset.", kind=RESPONSE),
    Message("madc_sample", _TH, 0x84, (("value", 10), ("time", 32)),
            "Membrane-ADC sample: 10-bit value taken at `time` (FPGA ticks since the last timer reset).", kind=RESPONSE),
    Message("timeout", _TH, 0x85, (("reason", 8), ("index", 32)),
            "An operation did not complete in time (see TimeoutReason); index: frame sequence or word index.", kind=NOTICE),
    Message("event_loss", _TH, 0x87, (("dropped", 20), ("time", 32)),
            "Output events were dropped because the chip's event FIFO was full: `dropped` events (saturating) "
            "up to `time` (FPGA ticks since the last timer reset); also counted in routing.fifo_status.", kind=NOTICE),
    Message("error", _TH, 0x86, (("reason", 8), ("header", 8), ("index", 32)),
            "The word at `index` of the program (or frame with that sequence number) was rejected; state untouched.", kind=NOTICE),
    Message("limit_reached", _TH, 0x88, (("kind", 8), ("value", 40)),
            "The program reached its limit `kind` (LimitKind) of `value`: the next word, `error PROGRAM_LIMIT`, "
            "names the word where it ended; nothing after that word ran except its halting loopbacks (echoed).", kind=NOTICE),
)

BY_NAME: dict[str, Message] = {m.name: m for m in MESSAGES}
BY_HEADER: dict[int, Message] = {m.header: m for m in MESSAGES}
if len(BY_NAME) != len(MESSAGES) or len(BY_HEADER) != len(MESSAGES):
    raise RuntimeError("wire dictionary: duplicate name or header")

#: Header value of every message, by name (handy as constants: H["omnibus_data"]).
H: dict[str, int] = {m.name: m.header for m in MESSAGES}


def by_kind(kind: Kind, messages: Iterable[Message] = MESSAGES) -> tuple[Message, ...]:
    """The messages of one kind, in dictionary order."""
    return tuple(m for m in messages if m.kind is kind)


def check_handlers(handlers: Mapping[str, object], direction: Direction, where: str,
                   messages: Iterable[Message] = MESSAGES) -> None:
    """The contract check of a side of the wire: `handlers` (message name ->
    handler) must name every message travelling `direction`, each with a
    handler that is not None, and no other message.  Raises ContractError
    naming what is missing or extra; each side runs it at import on its
    table, so a message without a handler fails there instead of being
    dropped at run time."""
    messages = tuple(messages)
    expected = {m.name for m in messages if m.direction is direction}
    missing = sorted(n for n in expected if handlers.get(n) is None)
    extra = sorted(set(handlers) - expected)
    problems = []
    if missing:
        problems.append(f"no handler for the {direction.value} message(s) {', '.join(missing)}")
    if extra:
        problems.append(f"handlers for {', '.join(extra)}, which {'is' if len(extra) == 1 else 'are'} not a "
                        f"{direction.value} message of the wire dictionary (isa/wire.py)")
    if problems:
        raise ContractError(f"{where}: " + "; ".join(problems))


class WireError(ValueError):
    """A word that is not a valid message of the dictionary."""


def message(name: str) -> Message:
    try:
        return BY_NAME[name]
    except KeyError:
        raise WireError(f"unknown message {name!r}; known: {', '.join(BY_NAME)}") from None


# --------------------------------------------------------------------------- single path
def encode(name: str, **values: int) -> int:
    """Encode one message to its 64-bit word."""
    msg = message(name)
    missing = set(msg.field_names) - values.keys()
    extra = values.keys() - set(msg.field_names)
    if missing or extra:
        raise WireError(f"{name}: expected fields {msg.field_names}, "
                        f"missing {sorted(missing)}, unexpected {sorted(extra)}")
    for fname, width in msg.fields:
        v = values[fname]
        if not 0 <= v < (1 << width):
            raise WireError(f"{name}.{fname}={v} does not fit {width} bits")
    raw = msg._format.pack(msg.header, *(values[f] for f in msg.field_names))
    return int.from_bytes(raw, "big")


def decode(word: int, direction: Direction | None = None) -> tuple[Message, dict[str, int]]:
    """Decode one 64-bit word; raises WireError for unknown headers or reserved bits."""
    word = operator.index(word)  # also numpy integers, e.g. words from the frame layer
    if not 0 <= word < (1 << WORD_BITS):
        raise WireError(f"word {word:#x} does not fit 64 bits")
    header = word >> PAYLOAD_BITS
    msg = BY_HEADER.get(header)
    if msg is None:
        raise WireError(f"word {word:#018x}: unknown header {header:#04x}")
    if direction is not None and msg.direction is not direction:
        raise WireError(f"word {word:#018x}: {msg.name} travels {msg.direction.value}, not {direction.value}")
    if word & msg.reserved_mask:
        raise WireError(f"word {word:#018x}: {msg.name} has reserved payload bits set")
    unpacked = msg._format.unpack(word.to_bytes(8, "big"))
    return msg, dict(zip(msg.field_names, unpacked[1:]))


# --------------------------------------------------------------------------- bulk path
def encode_bulk(name: str, **arrays: Iterable[int] | np.ndarray | int) -> np.ndarray:
    """Encode many messages of one kind; scalars broadcast. Returns uint64 words."""
    msg = message(name)
    missing = set(msg.field_names) - arrays.keys()
    extra = arrays.keys() - set(msg.field_names)
    if missing or extra:
        raise WireError(f"{name}: expected fields {msg.field_names}, "
                        f"missing {sorted(missing)}, unexpected {sorted(extra)}")
    cols = {k: np.asarray(v) for k, v in arrays.items()}
    shape = np.broadcast_shapes(*(c.shape for c in cols.values())) if cols else (1,)
    out = np.full(shape, np.uint64(msg.header) << np.uint64(PAYLOAD_BITS), dtype=np.uint64)
    for fname, width in msg.fields:
        col = cols[fname]
        if col.size and (col.min() < 0 or col.max() >= (1 << width)):
            bad = col[(col < 0) | (col >= (1 << width))].flat[0]
            raise WireError(f"{name}.{fname}={bad} does not fit {width} bits")
        out |= col.astype(np.uint64) << np.uint64(msg.shifts[fname])
    return out


def headers_bulk(words: np.ndarray) -> np.ndarray:
    return (np.asarray(words, dtype=np.uint64) >> np.uint64(PAYLOAD_BITS)).astype(np.uint8)


def fields_bulk(name: str, words: np.ndarray) -> dict[str, np.ndarray]:
    """Extract every field of message `name` from words known to be of that kind."""
    msg = message(name)
    w = np.asarray(words, dtype=np.uint64)
    return {fname: ((w >> np.uint64(msg.shifts[fname])) & np.uint64((1 << width) - 1)).astype(
                np.uint32 if width <= 32 else np.uint64)
            for fname, width in msg.fields}


def field_bulk(name: str, fname: str, words: np.ndarray) -> np.ndarray:
    """Extract one field of message `name` from words known to be of that kind."""
    msg = message(name)
    width = dict(msg.fields)[fname]
    w = np.asarray(words, dtype=np.uint64)
    return ((w >> np.uint64(msg.shifts[fname])) & np.uint64((1 << width) - 1)).astype(
        np.uint32 if width <= 32 else np.uint64)


def _lookup_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    known = np.zeros(256, dtype=bool)
    to_chip = np.zeros(256, dtype=bool)
    reserved = np.zeros(256, dtype=np.uint64)
    for m in MESSAGES:
        known[m.header] = True
        to_chip[m.header] = m.direction is Direction.TO_CHIP
        reserved[m.header] = m.reserved_mask
    return known, to_chip, reserved


#: Per-header lookup tables for vectorised validation.
KNOWN_HEADER, TO_CHIP_HEADER, RESERVED_MASK_BY_HEADER = _lookup_tables()


def invalid_bulk(words: np.ndarray, direction: Direction) -> np.ndarray:
    """Boolean mask of words that are not valid messages travelling `direction`."""
    w = np.asarray(words, dtype=np.uint64)
    h = (w >> np.uint64(PAYLOAD_BITS)).astype(np.intp)
    ok = KNOWN_HEADER[h] & (TO_CHIP_HEADER[h] == (direction is Direction.TO_CHIP))
    ok &= (w & RESERVED_MASK_BY_HEADER[h]) == 0
    return ~ok


def decode_bulk(words: np.ndarray) -> list[tuple[Message, dict[str, int]]]:
    """Decode an array of words of mixed kinds via the bulk path (used to check
    it against the single path; hot paths use fields_bulk per kind)."""
    w = np.asarray(words, dtype=np.uint64)
    h = headers_bulk(w)
    out: list = [None] * len(w)
    for header in np.unique(h):
        msg = BY_HEADER.get(int(header))
        if msg is None:
            raise WireError(f"unknown header {int(header):#04x} at word {int(np.flatnonzero(h == header)[0])}")
        idx = np.flatnonzero(h == header)
        cols = fields_bulk(msg.name, w[idx])
        for j, i in enumerate(idx):
            out[i] = (msg, {k: int(v[j]) for k, v in cols.items()})
    return out


def describe(word: int) -> str:
    """Human-readable rendering of one word, never raising."""
    try:
        msg, vals = decode(int(word))
    except WireError as exc:
        return f"<invalid {int(word):#018x}: {exc}>"
    args = ", ".join(f"{k}={v:#x}" if k in ("address", "data") else f"{k}={v}" for k, v in vals.items())
    return f"{msg.name}({args})"
