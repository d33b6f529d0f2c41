"""What one program may use of the chip, and its account against it.

Every program runs under three limits (isa.wire.LimitKind):

* SECONDS: wall time while it has the chip (the time it waits for its turn,
  and while another client's program has the chip in the middle of its wait,
  is not counted);
* TICKS: chip time its waits advance (FPGA ticks of 8 ns);
* OUTPUT_WORDS: response words it produces: read data, spikes, MADC samples,
  event losses (notices of rejected words are not counted: there is at most
  one per program word, and the program's size is bounded already).

The chip side (a server, or the in-process twin) has its own values (`Limits`,
`bss-twin serve --max-program-seconds/--max-program-ticks/--max-output-words`);
a program may ask for less with `limit` words (host: `Program.limit`), never
for more.  A program that reaches a limit ends there: the executor answers
`limit_reached` (which limit, its value) and `error PROGRAM_LIMIT` naming the
word where it ended, echoes its halting loopbacks, and the chip stays usable.

`receive_seconds`, `program_words` and `receive_buffer_words` bound a program
before it runs: its frames must all arrive within `receive_seconds` of its
first (else it is dropped with `timeout PROGRAM_RECEIVE`), it may hold at most
`program_words` words (else `error PROGRAM_OVERSIZED`), and the unfinished
programs of all clients of a chip together at most `receive_buffer_words`
(else the program whose frame does not fit is dropped with `error
RECEIVE_BUFFER_FULL`), so clients that trickle frames without ever ending
their programs pin at most that much memory for that long.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

from isa.wire import LimitKind

#: Wall time a program may hold the chip (s).
DEFAULT_PROGRAM_SECONDS = 60.0
#: Chip time a program's waits may advance (ticks): one period of the playback timer (34.4 s).
DEFAULT_PROGRAM_TICKS = 1 << 32
#: Response words a program may produce (2 Mi words, 16 MiB on the wire).
DEFAULT_OUTPUT_WORDS = 1 << 21
#: Wall time from a program's first frame to its END frame (s).
DEFAULT_RECEIVE_SECONDS = 10.0
#: Largest program the playback buffer takes (words).
MAX_PROGRAM_WORDS = 1 << 24
#: Words of unfinished programs (frames received, END frame not yet) all clients together may hold.
DEFAULT_RECEIVE_BUFFER_WORDS = 1 << 25
#: Largest value a `limit` word carries.
_VALUE_MAX = (1 << 40) - 1


@dataclass(frozen=True)
class Limits:
    """The chip side's limits: what a program gets unless it asks for less."""

    seconds: float = DEFAULT_PROGRAM_SECONDS
    ticks: int = DEFAULT_PROGRAM_TICKS
    output_words: int = DEFAULT_OUTPUT_WORDS
    receive_seconds: float = DEFAULT_RECEIVE_SECONDS
    program_words: int = MAX_PROGRAM_WORDS
    receive_buffer_words: int = DEFAULT_RECEIVE_BUFFER_WORDS

    def __post_init__(self) -> None:
        for name in ("seconds", "receive_seconds"):
            v = getattr(self, name)
            if not v > 0:
                raise ValueError(f"limit {name} must be positive, not {v}")
        for name in ("ticks", "output_words", "program_words", "receive_buffer_words"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ValueError(f"limit {name} must be a positive integer, not {v}")
        if self.program_words > MAX_PROGRAM_WORDS:
            raise ValueError(f"limit program_words {self.program_words} above the playback buffer "
                             f"({MAX_PROGRAM_WORDS} words)")

    def replace(self, **changes) -> "Limits":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def value(self, kind: LimitKind) -> int:
        """The limit as a `limit` / `limit_reached` word carries it (SECONDS: milliseconds)."""
        if kind is LimitKind.SECONDS:
            return min(int(round(self.seconds * 1000)), _VALUE_MAX)
        return min(int(self.ticks if kind is LimitKind.TICKS else self.output_words), _VALUE_MAX)


class LimitExceeded(Exception):
    """A program reached `kind`'s limit of `value` at word `index` (the program ends there)."""

    def __init__(self, kind: LimitKind, value: int, index: int):
        self.kind, self.value, self.index = kind, int(value), int(index)
        super().__init__(f"word {index}: {kind.describe(value)} reached")


class Budget:
    """One program's use of its limits; `limit` words of the program lower them."""

    def __init__(self, limits: Limits, clock=time.monotonic):
        self.clock = clock
        self.seconds = float(limits.seconds)
        self.ticks = int(limits.ticks)
        self.output_words = int(limits.output_words)
        self.started = clock()
        self._excluded = 0.0
        self.ticks_used = 0
        self.output_used = 0

    # ------------------------------------------------------------------ asking for less
    def lower(self, kind: LimitKind, value: int, index: int) -> None:
        """A `limit` word at `index`: never above the chip's own limit; a limit
        already used up ends the program at this word."""
        if kind is LimitKind.SECONDS:
            self.seconds = min(self.seconds, value / 1000)
            self.check_seconds(index)
        elif kind is LimitKind.TICKS:
            self.ticks = min(self.ticks, int(value))
            if self.ticks_used > self.ticks:
                raise LimitExceeded(kind, self.ticks, index)
        else:
            self.output_words = min(self.output_words, int(value))
            if self.output_used > self.output_words:
                raise LimitExceeded(kind, self.output_words, index)

    # ------------------------------------------------------------------ wall time
    def exclude(self, seconds: float) -> None:
        """Time the program waited for the chip (another client had it): not counted."""
        self._excluded += seconds

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started - self._excluded

    def check_seconds(self, index: int) -> None:
        if self.elapsed > self.seconds:
            raise LimitExceeded(LimitKind.SECONDS, min(int(round(self.seconds * 1000)), _VALUE_MAX), index)

    # ------------------------------------------------------------------ chip time and output
    @property
    def ticks_left(self) -> int:
        return max(0, self.ticks - self.ticks_used)

    @property
    def output_left(self) -> int:
        return max(0, self.output_words - self.output_used)

    def over_ticks(self, index: int) -> LimitExceeded:
        return LimitExceeded(LimitKind.TICKS, self.ticks, index)

    def over_output(self, index: int) -> LimitExceeded:
        return LimitExceeded(LimitKind.OUTPUT_WORDS, self.output_words, index)
