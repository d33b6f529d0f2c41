"""Time units (host/units.py): ticks of 8 ns, hardware and biological seconds."""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from host import units
from host.units import Time, bio, hw, ms, to_ticks, us
from isa.profiles import PROFILES

HX, HICANN = PROFILES["hx"], PROFILES["hicann"]


def test_hardware_times():
    assert hw(1e-6).ticks() == 125
    assert us(10).ticks() == 1250
    assert ms(1).ticks() == 125_000
    assert hw(8e-9).ticks() == 1
    assert us(0).ticks() == 0
    assert us(1).ticks(HX) == 125         # a hardware time ignores the profile


def test_biological_times_use_the_speedup():
    assert bio(5e-3).ticks(HX) == 625          # 5 ms / 1000 = 5 us
    assert bio(8e-3).ticks(HICANN) == 100      # 8 ms / 10000 = 0.8 us
    assert bio(1.0).hw_seconds(HX) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match=r"^a biological time needs a chip profile \(its speed-up\) to convert$"):
        bio(1e-3).ticks()


def test_tick_conversions_back():
    assert units.ticks_to_seconds(125) == pytest.approx(1e-6)
    assert units.ticks_to_bio(125, HX) == pytest.approx(1e-3)
    assert units.seconds_to_ticks(1e-6) == 125


@given(st.integers(0, (1 << 32) - 1))
def test_ticks_round_trip(ticks):
    assert units.seconds_to_ticks(units.ticks_to_seconds(ticks)) == ticks
    assert bio(units.ticks_to_bio(ticks, HX)).ticks(HX) == ticks


@pytest.mark.parametrize("value", [0, 7, np.int64(9), np.uint32(11), 1 << 40])
def test_to_ticks_takes_integers(value):
    assert to_ticks(value) == int(value)
    assert type(to_ticks(value)) is int


def test_to_ticks_takes_times():
    assert to_ticks(us(2)) == 250
    assert to_ticks(bio(2e-3), HX) == 250


@pytest.mark.parametrize("value", [2.0, 2.5, np.float64(3.0), "5", True, None, Time])
def test_to_ticks_rejects_everything_else(value):
    with pytest.raises(TypeError, match=rf"^time {re.escape(repr(value))}: give FPGA ticks as an "
                                        r"integer, or a host\.units\.Time \(hw\(s\), bio\(s\), us\(x\), ms\(x\)\)$"):
        to_ticks(value)
