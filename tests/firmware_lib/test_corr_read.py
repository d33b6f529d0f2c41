"""The correlation readout firmware (firmware/rules/corr_read.s)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import firmware
from _fwrun import run_rule
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
    mb = firmware.mailbox("corr_read", chip, first_row=first, rows=rows, reset=reset)
    mem, io, rc = run_rule(chip, "corr_read", mb, c, a)
    assert rc == RETURN_CODES["ok"]
    want, mask = corr_read_reference(c, a, first_row=first, rows=rows, reset=reset)
    base, _ = firmware.field("data")
    assert (mem[base:base + len(want)] == want).all()
    assert (((io.resets & 1) != 0) == mask).all()
    # stated directly: the first causal byte is row `first`, column 0
    assert mem[base] == c[first, 0] and mem[base + rows * p.columns] == a[first, 0]


def test_rows_that_do_not_fit_are_refused():
    with pytest.raises(ValueError, match="rows = 33 out of range 1..32"):
        firmware.mailbox("corr_read", "dls", first_row=0, rows=33, reset=0)
    mb = firmware.mailbox("corr_read", "hx", first_row=0, rows=7, reset=0)    # 7 x 512 bytes > 3 KiB
    assert run_rule("hx", "corr_read", mb)[2] == RETURN_CODES["bad_parameter"]
    mb = firmware.mailbox("corr_read", "dls", first_row=31, rows=2, reset=0)
    assert run_rule("dls", "corr_read", mb)[2] == RETURN_CODES["bad_parameter"]
