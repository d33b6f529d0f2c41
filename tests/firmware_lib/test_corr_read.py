"""The correlation readout firmware (firmware/rules/corr_read.s)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import firmware
from _rule_harness import run_rule
from firmware.rules import corr_read_reference
from isa.ppu.iomap import RETURN_CODES
from isa.profiles import PROFILES


@pytest.mark.parametrize("chip", ["dls", "hx"])
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), reset=st.integers(0, 1), data=st.data())
def test_readings_land_in_the_mailbox(chip, seed, reset, data):
    p = PROFILES[chip]
    limit = 3072 // (2 * p.columns)
    rows = data.draw(st.integers(1, min(limit, p.rows)))
    first = data.draw(st.integers(0, p.rows - rows))
    rng = np.random.default_rng(seed)
    c, a = (rng.integers(0, 256, (p.rows, p.columns), dtype=np.uint8) for _ in range(2))
    zero = np.zeros((p.rows, p.columns), np.uint8)
    o = run_rule("corr_read", chip, zero, c, a, first_row=first, rows=rows, reset=reset)
    assert o.rc == RETURN_CODES["ok"]
    want, mask = corr_read_reference(c, a, first_row=first, rows=rows, reset=reset)
    base, _ = firmware.field("data")
    mem = o.memory
    assert (mem[base:base + len(want)] == want).all()
    assert (o.resets == mask).all()
    # stated directly: the first causal byte is row `first`, column 0
    assert mem[base] == c[first, 0] and mem[base + rows * p.columns] == a[first, 0]


def test_rows_that_do_not_fit_are_refused():
    with pytest.raises(ValueError, match="rows = 33 out of range 1..32"):
        firmware.mailbox("corr_read", "dls", first_row=0, rows=33, reset=0)
    for chip, first, rows in (("hx", 0, 7), ("dls", 31, 2)):       # 7 x 512 bytes > 3 KiB; past row 31
        p = PROFILES[chip]
        o = run_rule("corr_read", chip, np.zeros((p.rows, p.columns), np.uint8), first_row=first, rows=rows, reset=0)
        assert o.rc == RETURN_CODES["bad_parameter"]
