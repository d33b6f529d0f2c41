"""Typed exceptions of the host library."""
from __future__ import annotations

from dataclasses import dataclass

from isa.wire import ErrorReason


class BssError(Exception):
    """Base of every error the host library raises."""


class LinkError(BssError):
    """The byte link failed: corrupted or lost frames, a closed connection."""


class LinkTimeout(LinkError):
    """No complete answer arrived in time."""


class CoordinateError(BssError, IndexError):
    """A coordinate outside the chip's range."""


@dataclass(frozen=True)
class RejectedWord:
    """One program word the chip rejected."""

    index: int                 # position of the word in the program
    reason: ErrorReason
    what: str                  # the host's description of the word (operation, address, register)

    def __str__(self) -> str:
        return f"word {self.index}: {self.what}: {self.reason.text} ({self.reason.name})"


class ChipError(BssError):
    """The chip rejected words of a program; nothing they asked for was done.

    `rejected` lists each word with its reason.  Tickets of reads that succeeded
    are still filled."""

    def __init__(self, rejected: list[RejectedWord], result=None):
        self.rejected = rejected
        self.result = result
        head = "; ".join(str(r) for r in rejected[:5])
        more = f" (and {len(rejected) - 5} more)" if len(rejected) > 5 else ""
        super().__init__(f"chip rejected {len(rejected)} word(s): {head}{more}")


class ProgramLimit(ChipError):
    """The chip ended the program at one of its limits (isa.wire.LimitKind:
    wall time, chip time, output words): `limit` and `value` say which and
    its value (`value` in the limit's unit: milliseconds, ticks, words),
    `index` and `what` name the word where it ended.  What the program did
    before that word was done and answered (`result`, tickets of reads before
    it); nothing after it ran.  The chip stays usable: the next program runs
    normally."""

    def __init__(self, url: str, limit, value: int, index: int, what: str,
                 rejected: list[RejectedWord] | None = None, result=None):
        self.url, self.limit, self.value, self.index, self.what = url, limit, int(value), int(index), what
        self.rejected = list(rejected or [])
        self.result = result
        more = ""
        if self.rejected:
            more = f"; the chip also rejected {len(self.rejected)} word(s): " + "; ".join(
                str(r) for r in self.rejected[:5]) + (" ..." if len(self.rejected) > 5 else "")
        BssError.__init__(self, f"{url}: the program ended at word {index} ({what}): it reached its "
                                f"{limit.describe(value)}; nothing after that word ran{more}")


class LockTimeout(BssError):
    """Another client holds the chip's lock and did not give it back in time
    (`ms_left`: milliseconds until the server may break the holder's lock)."""

    def __init__(self, url: str, wait: float, ms_left: int):
        self.url, self.wait, self.ms_left = url, wait, ms_left
        super().__init__(f"{url}: the chip's lock is held by another client and was not given back within "
                         f"{wait:g} s (the server breaks it in {ms_left / 1000:g} s at the latest)")


class LockBroken(BssError):
    """This client lost its lock on the chip: the server broke it (it was
    held longer than `bss-twin serve --max-lock-seconds`), or the connection
    broke (and was resumed).  Programs since then may have met other
    clients' programs on the chip.  `result`: the RunResult of the program
    whose answer told it (it ran; its tickets are filled), or None when the
    release told it."""

    def __init__(self, url: str, result=None):
        self.url, self.result = url, result
        super().__init__(f"{url}: this client lost its lock on the chip (the server broke it: held longer "
                         "than --max-lock-seconds, or the connection broke); other clients' programs may "
                         "have run since")


class ProgramCancelled(BssError):
    """The chip side gave the program up when the connection was lost (the
    link layer resumed afterwards): it may have run in part, its results are
    lost.  It is not run again."""
