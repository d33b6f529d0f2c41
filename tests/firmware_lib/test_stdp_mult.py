"""The multiplicative STDP rule (firmware/rules/stdp_mult.s) against its NumPy
reference (firmware.rules.stdp_mult_reference), and the runtime it runs in.

The firmware runs in the twin's PPU interpreter on correlation readings and
synapse bytes handed to it directly (twin.ppu.interp.VectorIO), so both sides
see identical inputs; the edge cases also state the expected result in their
own terms (weights kept, clamped, sensors left alone)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import firmware
from firmware.rules import stdp_mult_reference
from isa.ppu.iomap import MAILBOX_ADDRESS, RETURN_CODES
from isa.profiles import PROFILES

from _rule_harness import assert_same_bytes, offsets_data, random_arrays, run_rule, trace_readings, update_cycles

CHIPS = ("dls", "hx")


def run_once(chip, causal, acausal, synapses, offsets, per_synapse, mb=None, **params):
    """One update by the firmware: (new synapse bytes, reset mask, return code, updates)."""
    params.setdefault("offset_stride", PROFILES[chip].columns if per_synapse else 0)   # 2 * VECTOR_BYTES
    o = run_rule("stdp_mult", chip, synapses, causal, acausal, mb=mb, data=offsets_data(offsets, per_synapse),
                 **params)
    return o.synapses, o.resets, o.rc, o.updates


def reference(chip, causal, acausal, synapses, offsets, **params):
    params.pop("offset_stride", None)
    return stdp_mult_reference(causal, acausal, synapses, offsets, weight_bits=PROFILES[chip].weight_bits,
                               **params)


def check(chip, causal, acausal, synapses, offsets, per_synapse, **params):
    got, resets, rc, updates = run_once(chip, causal, acausal, synapses, offsets, per_synapse, **params)
    want, want_resets = reference(chip, causal, acausal, synapses, offsets, **params)
    assert rc == RETURN_CODES["ok"] and updates == 1
    assert_same_bytes(got, want)
    assert (resets == want_resets).all()
    return got, resets


_params = st.fixed_dictionaries(dict(theta=st.integers(0, 127), lambda_pos=st.integers(0, 127),
                                     lambda_neg=st.integers(0, 127), w_max=st.integers(0, 63)))


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
    off[:] = off[0] // 8               # hx: 16 KiB of PPU memory hold one row of offsets, not 64 KiB
    check("hx", c, a, w, off, False, **params)


@pytest.mark.parametrize("chip", CHIPS)
def test_dead_zone_and_zero_change_nothing(chip):
    p = PROFILES[chip]
    w = np.random.default_rng(3).integers(0, 256, (p.rows, p.columns), dtype=np.uint8)
    zero = np.zeros((p.rows, p.columns), int)
    for diff in (0, 4, -4):
        c, a = trace_readings(chip, diff)
        got, resets = check(chip, c, a, w, zero, False, theta=5, lambda_pos=127, lambda_neg=127, w_max=63)
        assert (got == w).all() and not resets.any()
    c, a = trace_readings(chip, 0)                        # a = 0 with theta = 0: no change, no reset
    got, resets = check(chip, c, a, w, zero, False, theta=0, lambda_pos=127, lambda_neg=127, w_max=63)
    assert (got == w).all() and not resets.any()


@pytest.mark.parametrize("chip", CHIPS)
def test_saturation_at_both_ends_keeps_calibration_bits(chip):
    p = PROFILES[chip]
    shape = (p.rows, p.columns)
    cal = (np.random.default_rng(4).integers(0, 4, shape) << p.weight_bits).astype(np.uint8)
    zero = np.zeros(shape, int)
    c, a = trace_readings(chip, 60)                       # strong causal correlation
    got, resets = check(chip, c, a, (cal | 63).astype(np.uint8), zero, False,
                        theta=1, lambda_pos=127, lambda_neg=127, w_max=63)
    assert (got == (cal | 63)).all() and resets.all()      # stays at w_max
    got, _ = check(chip, c, a, (cal | 50).astype(np.uint8), zero, False,
                   theta=1, lambda_pos=127, lambda_neg=127, w_max=40)
    assert (got == (cal | 40)).all()                       # above w_max: clamped to it
    c, a = trace_readings(chip, -60)                      # strong acausal correlation
    got, resets = check(chip, c, a, cal, zero, False, theta=1, lambda_pos=127, lambda_neg=127, w_max=63)
    assert (got == cal).all() and resets.all()             # stays at 0
    got, _ = check(chip, c, a, (cal | 63).astype(np.uint8), zero, False,
                   theta=1, lambda_pos=127, lambda_neg=127, w_max=63)
    assert ((got & 63) < 63).all() and ((got & ~np.uint8(63)) == cal).all()   # depressed, bits kept


def test_multiplicative_dependence_on_the_weight():
    """Potentiation shrinks as w approaches w_max, depression grows with w."""
    p = PROFILES["dls"]
    shape = (p.rows, p.columns)
    w = np.tile(np.arange(0, 64, 2, dtype=np.uint8), (p.rows, 1))[:, :p.columns]
    zero = np.zeros(shape, int)
    c, a = trace_readings("dls", 40)
    up, _ = check("dls", c, a, w, zero, False, theta=0, lambda_pos=100, lambda_neg=100, w_max=63)
    c, a = trace_readings("dls", -40)
    down, _ = check("dls", c, a, w, zero, False, theta=0, lambda_pos=100, lambda_neg=100, w_max=63)
    gain = up[0].astype(int) - w[0]
    loss = w[0].astype(int) - down[0]
    assert (np.diff(gain) <= 0).all() and gain[0] > gain[-1] >= 0
    assert (np.diff(loss) >= 0).all() and loss[-1] > loss[0] == 0


def test_offsets_shift_the_dead_zone_per_synapse():
    p = PROFILES["dls"]
    shape = (p.rows, p.columns)
    w = np.full(shape, 30, np.uint8)
    off = np.zeros(shape, int)
    off[5, 7] = 20                                         # this synapse reads +20 with no correlation
    c, a = trace_readings("dls", 20)
    got, resets = check("dls", c, a, w, off, True, theta=3, lambda_pos=100, lambda_neg=100, w_max=63)
    assert got[5, 7] == 30 and not resets[5, 7]
    assert (np.delete(got.ravel(), 5 * p.columns + 7) > 30).all()


@pytest.mark.parametrize("chip", CHIPS)
def test_bad_parameters_and_commands_return_their_codes(chip):
    p = PROFILES[chip]
    c, a, w, off = random_arrays(chip, 5)
    good = dict(theta=2, lambda_pos=10, lambda_neg=10, w_max=63, offset_stride=0)
    mb = bytearray(firmware.mailbox("stdp_mult", chip, **good))
    theta_at = firmware.field("params")[0] - MAILBOX_ADDRESS
    mb[theta_at:theta_at + 4] = (200).to_bytes(4, "big")   # written raw, past the host-side check
    got, resets, rc, updates = run_once(chip, c, a, w, off, False, mb=bytes(mb))
    assert rc == RETURN_CODES["bad_parameter"] and updates == 0 and (got == w).all()
    too_far = dict(good, offset_stride=2 * 16 * p.ppu_slices * (8 if chip == "dls" else 1))
    rc = run_once(chip, c, a, w, off, False, mb=firmware.mailbox("stdp_mult", chip, **too_far))[2]
    assert rc == RETURN_CODES["bad_parameter"]
    mb = bytearray(firmware.mailbox("stdp_mult", chip, **good))
    mb[0:4] = (7).to_bytes(4, "big")
    assert run_once(chip, c, a, w, off, False, mb=bytes(mb))[2] == RETURN_CODES["bad_command"]


def test_host_side_checks_name_the_problem():
    good = dict(theta=2, lambda_pos=10, lambda_neg=10, w_max=63, offset_stride=0)
    with pytest.raises(ValueError, match="theta = 128 out of range 0..127"):
        firmware.mailbox("stdp_mult", "dls", **dict(good, theta=128))
    with pytest.raises(ValueError, match="w_max = 64 out of range 0..63"):
        firmware.mailbox("stdp_mult", "dls", **dict(good, w_max=64))
    with pytest.raises(ValueError, match="missing parameter.*lambda_neg"):
        firmware.mailbox("stdp_mult", "dls", **{k: v for k, v in good.items() if k != "lambda_neg"})
    with pytest.raises(ValueError, match="unknown parameter.*eta"):
        firmware.mailbox("stdp_mult", "dls", eta=1, **good)
    with pytest.raises(ValueError, match="unknown firmware rule 'stdp'.*stdp_mult"):
        firmware.build("stdp", "dls")
    with pytest.raises(ValueError, match="chip 'hicann' has no PPU"):
        firmware.build("stdp_mult", "hicann")
    with pytest.raises(ValueError, match="unknown mailbox command"):
        firmware.mailbox("stdp_mult", "dls", command="go", **good)


@pytest.mark.parametrize("chip", CHIPS)
def test_update_cost_in_cycles(chip):
    """docs/firmware.md cites these: one update, hx with its column-ADC reads."""
    c, a, w, _ = random_arrays(chip, 6)
    cycles = update_cycles("stdp_mult", chip, w, c, a, corr_cycles=PROFILES[chip].ppu_cadc_read_cycles,
                           theta=2, lambda_pos=40, lambda_neg=20, w_max=63, offset_stride=0)
    assert cycles == {"dls": 9362, "hx": 484370}[chip]


@pytest.mark.parametrize("chip", CHIPS)
@pytest.mark.parametrize("rule", ["stdp_mult", "stdp_add", "stdp_reward"])
def test_rows_limits_the_update_to_the_first_rows(chip, rule):
    """rows = k: rows k.. keep their bytes and their sensors (static synapses
    sharing the array with plastic ones), rows ..k-1 are updated as the reference says."""
    from firmware.rules import RULES
    p = PROFILES[chip]
    c, a = trace_readings(chip, 40)                   # strongly causal everywhere: every synapse would move
    w = np.full((p.rows, p.columns), 20, np.uint8)
    params = {"stdp_mult": dict(theta=2, lambda_pos=127, lambda_neg=127, w_max=63),
              "stdp_add": dict(theta=2, eta_pos=127, eta_neg=127, w_min=0, w_max=63),
              "stdp_reward": dict(reward=100, theta=2, eta=127, w_min=0, w_max=63)}[rule]
    k = 5
    o = run_rule(rule, chip, w, c, a, offset_stride=0, rows=k, **params)
    assert o.rc == RETURN_CODES["ok"] and o.updates == 1
    assert (o.synapses[k:] == 20).all() and not o.resets[k:].any()
    assert (o.synapses[:k] > 20).all() and o.resets[:k].all()
    want, want_resets = RULES[rule].reference(c, a, w, np.zeros_like(w, int), weight_bits=p.weight_bits, rows=k,
                                              **params)
    assert_same_bytes(o.synapses, want)
    assert (o.resets == want_resets).all()
    for bad in (0, p.rows + 1):                       # written raw, past the host-side check
        mb = bytearray(firmware.mailbox(rule, chip, offset_stride=0, **params))
        at = firmware.field("params")[0] - MAILBOX_ADDRESS + 4 * [q.name for q in RULES[rule].params].index("rows")
        mb[at:at + 4] = bad.to_bytes(4, "big")
        assert run_rule(rule, chip, w, c, a, mb=bytes(mb)).rc == RETURN_CODES["bad_parameter"]
    with pytest.raises(ValueError, match=f"rows = {p.rows + 1} out of range 1..{p.rows}"):
        firmware.mailbox(rule, chip, offset_stride=0, rows=p.rows + 1, **params)


def test_rows_lets_per_synapse_offsets_fit_on_hx():
    """hx: per-synapse offsets of all 256 rows do not fit MB_DATA; of 12 rows they do."""
    p = PROFILES["hx"]
    c, a, w, off = random_arrays("hx", 9)
    off[12:] = 0
    params = dict(theta=2, lambda_pos=40, lambda_neg=20, w_max=63)
    o = run_rule("stdp_mult", "hx", w, c, a, data=offsets_data(off[:12], True), offset_stride=p.columns, rows=12,
                 **params)
    assert o.rc == RETURN_CODES["ok"]
    want, _ = stdp_mult_reference(c, a, w, off, weight_bits=p.weight_bits, rows=12, **params)
    assert_same_bytes(o.synapses, want)
    assert run_rule("stdp_mult", "hx", w, c, a, offset_stride=p.columns, rows=13, **params).rc == \
        RETURN_CODES["bad_parameter"]
