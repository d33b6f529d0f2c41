"""The additive STDP rule (firmware/rules/stdp_add.s) against its NumPy
reference (firmware.rules.stdp_add_reference), bit for bit, in the twin's PPU
interpreter on dls and hx; the edge cases also state the expected result in
their own terms (a fixed step whatever the weight, bounds held, dead zone)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import firmware
from firmware.rules import stdp_add_reference
from isa.ppu.iomap import MAILBOX_ADDRESS, RETURN_CODES
from isa.profiles import PROFILES

from _rule_harness import assert_same_bytes, offsets_data, random_arrays, run_rule, trace_readings, update_cycles

CHIPS = ("dls", "hx")


def check(chip, causal, acausal, synapses, offsets, per_synapse=False, **params):
    """One update by the firmware, held to the reference: (new synapse bytes, reset mask)."""
    o = run_rule("stdp_add", chip, synapses, causal, acausal, data=offsets_data(offsets, per_synapse),
                 offset_stride=PROFILES[chip].columns if per_synapse else 0, **params)
    want, want_resets = stdp_add_reference(causal, acausal, synapses, offsets,
                                           weight_bits=PROFILES[chip].weight_bits, **params)
    assert o.rc == RETURN_CODES["ok"] and o.updates == 1
    assert_same_bytes(o.synapses, want)
    assert (o.resets == want_resets).all()
    return o.synapses, o.resets


_params = st.tuples(st.integers(0, 127), st.integers(0, 127), st.integers(0, 127), st.integers(0, 63),
                    st.integers(0, 63)).map(lambda t: dict(theta=t[0], eta_pos=t[1], eta_neg=t[2],
                                                           w_min=min(t[3:]), w_max=max(t[3:])))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32 - 1), params=_params, per_synapse=st.booleans(),
       offset_scale=st.sampled_from([0, 8, 128]))
def test_random_cases_dls(seed, params, per_synapse, offset_scale):
    c, a, w, off = random_arrays("dls", seed)
    off = (off * offset_scale) // 128
    if not per_synapse:
        off[:] = off[0]
    check("dls", c, a, w, off, per_synapse, **params)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32 - 1), params=_params)
def test_random_cases_hx(seed, params):
    c, a, w, off = random_arrays("hx", seed)
    off[:] = off[0] // 8               # one row of offsets: hx's per-synapse table does not fit the memory
    check("hx", c, a, w, off, **params)


def _synapses(chip, lo, hi, seed=3):
    """Synapse bytes with weights lo..hi and random calibration bits."""
    p = PROFILES[chip]
    rng = np.random.default_rng(seed)
    shape = (p.rows, p.columns)
    return (rng.integers(lo, hi + 1, shape) | rng.integers(0, 4, shape) << p.weight_bits).astype(np.uint8)


@pytest.mark.parametrize("chip", CHIPS)
def test_dead_zone_and_zero_change_nothing(chip):
    w = _synapses(chip, 10, 50)
    zero = np.zeros(w.shape, int)
    for diff in (0, 4, -4):
        c, a = trace_readings(chip, diff)
        got, resets = check(chip, c, a, w, zero, theta=5, eta_pos=127, eta_neg=127, w_min=10, w_max=50)
        assert (got == w).all() and not resets.any()
    c, a = trace_readings(chip, 0)                         # a = 0 with theta = 0: no change, no reset
    got, resets = check(chip, c, a, w, zero, theta=0, eta_pos=127, eta_neg=127, w_min=10, w_max=50)
    assert (got == w).all() and not resets.any()


@pytest.mark.parametrize("chip", CHIPS)
def test_the_step_does_not_depend_on_the_weight(chip):
    """a' = 40: potentiation by floor(40 * 64 / 128) = 20, depression by
    floor(40 * 32 / 128) = 10, for every weight that stays inside the bounds."""
    w = _synapses(chip, 12, 40)
    zero = np.zeros(w.shape, int)
    bits = ~np.uint8(63)
    c, a = trace_readings(chip, 40)
    up, resets = check(chip, c, a, w, zero, theta=1, eta_pos=64, eta_neg=127, w_min=0, w_max=63)
    assert ((up & 63).astype(int) - (w & 63) == 20).all() and ((up & bits) == (w & bits)).all() and resets.all()
    c, a = trace_readings(chip, -40)
    down, resets = check(chip, c, a, w, zero, theta=1, eta_pos=127, eta_neg=32, w_min=0, w_max=63)
    assert ((w & 63).astype(int) - (down & 63) == 10).all() and ((down & bits) == (w & bits)).all() and resets.all()


@pytest.mark.parametrize("chip", CHIPS)
def test_bounds_hold_and_keep_calibration_bits(chip):
    w = _synapses(chip, 0, 63)
    cal = w & ~np.uint8(63)
    zero = np.zeros(w.shape, int)
    c, a = trace_readings(chip, 60)                        # strong causal correlation
    got, resets = check(chip, c, a, w, zero, theta=1, eta_pos=127, eta_neg=127, w_min=5, w_max=40)
    assert (got == (cal | 40)).all() and resets.all()     # every weight at w_max
    c, a = trace_readings(chip, -60)                       # strong acausal correlation
    got, _ = check(chip, c, a, w, zero, theta=1, eta_pos=127, eta_neg=127, w_min=5, w_max=40)
    assert (got == (cal | 5)).all()                        # every weight at w_min
    c, a = trace_readings(chip, 2)                         # a weak correlation moves nothing ...
    got, resets = check(chip, c, a, w, zero, theta=1, eta_pos=10, eta_neg=10, w_min=5, w_max=40)
    assert (got == (cal | np.clip(w & 63, 5, 40))).all() and resets.all()   # ... but the bounds hold


def test_eta_zero_changes_no_weight_but_resets_the_sensors():
    w = _synapses("dls", 0, 63)
    zero = np.zeros(w.shape, int)
    for diff in (30, -30):
        c, a = trace_readings("dls", diff)
        got, resets = check("dls", c, a, w, zero, theta=3, eta_pos=0, eta_neg=0, w_min=0, w_max=63)
        assert (got == w).all() and resets.all()


@pytest.mark.parametrize("chip", CHIPS)
def test_bad_parameters_return_their_code(chip):
    p = PROFILES[chip]
    c, a, w, _ = random_arrays(chip, 5)
    good = dict(theta=2, eta_pos=10, eta_neg=10, w_min=0, w_max=63, offset_stride=0)
    o = run_rule("stdp_add", chip, w, c, a, **dict(good, w_min=41, w_max=40))
    assert o.rc == RETURN_CODES["bad_parameter"] and o.updates == 0 and (o.synapses == w).all()
    mb = bytearray(firmware.mailbox("stdp_add", chip, **good))
    at = firmware.field("params")[0] - MAILBOX_ADDRESS + 4            # eta_pos, past the host-side check
    mb[at:at + 4] = (128).to_bytes(4, "big")
    assert run_rule("stdp_add", chip, w, c, a, mb=bytes(mb)).rc == RETURN_CODES["bad_parameter"]
    assert run_rule("stdp_add", chip, w, c, a, **dict(good, offset_stride=8)).rc == RETURN_CODES["bad_parameter"]
    assert run_rule("stdp_add", chip, w, c, a, **dict(good, offset_stride=p.columns)).rc == \
        (RETURN_CODES["ok"] if chip == "dls" else RETURN_CODES["bad_parameter"])   # hx: past MB_DATA


@pytest.mark.parametrize("chip", CHIPS)
def test_update_cost_in_cycles(chip):
    """docs/firmware.md cites these: one update, hx with its column-ADC reads."""
    c, a, w, _ = random_arrays(chip, 6)
    cycles = update_cycles("stdp_add", chip, w, c, a, corr_cycles=PROFILES[chip].ppu_cadc_read_cycles,
                           theta=2, eta_pos=10, eta_neg=10, w_min=0, w_max=63, offset_stride=0)
    assert cycles == {"dls": 9106, "hx": 482322}[chip]
