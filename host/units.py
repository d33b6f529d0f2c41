"""One unit system for time.

Integers in the playback API are FPGA ticks (8 ns, 125 MHz).  `Time` values
carry hardware seconds and convert to ticks and, through a profile's speed-up,
to biological seconds:

    from host.units import hw, bio, us
    prog.wait_until(hw(10e-6))          # 10 us of hardware time
    prog.wait_until(bio(5e-3))          # 5 ms biological = 5 us on a 1000x chip
    prog.wait_until(us(10))             # shorthand for hardware microseconds
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

from isa.profiles import Profile
from isa.wire import FPGA_CLOCK_HZ, FPGA_TICK_S


@dataclass(frozen=True)
class Time:
    """A hardware time, or a biological time converted on use."""

    seconds: float
    biological: bool = False

    def hw_seconds(self, profile: Profile | None) -> float:
        if not self.biological:
            return self.seconds
        if profile is None:
            raise ValueError("a biological time needs a chip profile (its speed-up) to convert")
        return profile.bio_to_hw(self.seconds)

    def ticks(self, profile: Profile | None = None) -> int:
        return seconds_to_ticks(self.hw_seconds(profile))


def hw(seconds: float) -> Time:
    return Time(seconds)


def bio(seconds: float) -> Time:
    return Time(seconds, biological=True)


def us(microseconds: float) -> Time:
    return Time(microseconds * 1e-6)


def ms(milliseconds: float) -> Time:
    return Time(milliseconds * 1e-3)


def seconds_to_ticks(seconds: float) -> int:
    return int(round(seconds * FPGA_CLOCK_HZ))


def ticks_to_seconds(ticks) -> float:
    return ticks * FPGA_TICK_S


def to_ticks(value, profile: Profile | None = None) -> int:
    """Ticks from an int (already ticks) or a Time."""
    if isinstance(value, Time):
        return value.ticks(profile)
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)      # int and numpy integers; not floats, strings, bools
    except TypeError:
        raise TypeError(f"time {value!r}: give FPGA ticks as an integer, or a host.units.Time "
                        "(hw(s), bio(s), us(x), ms(x))") from None


def ticks_to_bio(ticks, profile: Profile) -> float:
    return profile.hw_to_bio(ticks_to_seconds(ticks))
