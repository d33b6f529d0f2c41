"""The reward-modulated STDP rule (firmware/rules/stdp_reward.s) against its
NumPy reference (firmware.rules.stdp_reward_reference), bit for bit, in the
twin's PPU interpreter on dls and hx; the edge cases also state the expected
result in their own terms (reward 0 changes nothing, -R undoes +R, the
reward is read at every update)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import firmware
from firmware.rules import stdp_reward_reference
from isa.ppu.iomap import MAILBOX_ADDRESS, RETURN_CODES
from isa.profiles import PROFILES

from _rule_harness import assert_same_bytes, offsets_data, random_arrays, run_rule, trace_readings, update_cycles

CHIPS = ("dls", "hx")


def check(chip, causal, acausal, synapses, offsets, per_synapse=False, **params):
    """One update by the firmware, held to the reference: (new synapse bytes, reset mask)."""
    o = run_rule("stdp_reward", chip, synapses, causal, acausal, data=offsets_data(offsets, per_synapse),
                 offset_stride=PROFILES[chip].columns if per_synapse else 0, **params)
    want, want_resets = stdp_reward_reference(causal, acausal, synapses, offsets,
                                              weight_bits=PROFILES[chip].weight_bits, **params)
    assert o.rc == RETURN_CODES["ok"] and o.updates == 1
    assert_same_bytes(o.synapses, want)
    assert (o.resets == want_resets).all()
    return o.synapses, o.resets


_params = st.tuples(st.integers(-128, 127), st.integers(0, 127), st.integers(0, 127), st.integers(0, 63),
                    st.integers(0, 63)).map(lambda t: dict(reward=t[0], theta=t[1], eta=t[2],
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


@pytest.mark.parametrize("chip", CHIPS)
def test_reward_zero_changes_nothing_and_keeps_the_sensors(chip):
    c, a, w, off = random_arrays(chip, 7)                  # weights outside the bounds stay as well
    got, resets = check(chip, c, a, w, off, reward=0, theta=0, eta=127, w_min=10, w_max=50)
    assert (got == w).all() and not resets.any()


@pytest.mark.parametrize("chip", CHIPS)
def test_dead_zone_and_zero_eligibility_change_nothing(chip):
    w = np.full((PROFILES[chip].rows, PROFILES[chip].columns), 0x80 | 30, np.uint8)
    zero = np.zeros(w.shape, int)
    for diff in (0, 4, -4):
        c, a = trace_readings(chip, diff)
        for reward in (127, -128):
            got, resets = check(chip, c, a, w, zero, reward=reward, theta=5, eta=127, w_min=0, w_max=63)
            assert (got == w).all() and not resets.any()


@pytest.mark.parametrize("chip", CHIPS)
def test_a_negative_reward_reverses_the_change(chip):
    """With a' = 40 and eta = 64 the eligibility is 20; a reward of +-64 moves
    every weight by +-10 (causal) or -+10 (acausal), calibration bits kept."""
    p = PROFILES[chip]
    w = (np.random.default_rng(8).integers(15, 48, (p.rows, p.columns)) | 0x40).astype(np.uint8)
    zero = np.zeros(w.shape, int)
    for diff, sign in ((40, 1), (-40, -1)):
        c, a = trace_readings(chip, diff)
        for reward in (64, -64):
            got, resets = check(chip, c, a, w, zero, reward=reward, theta=1, eta=64, w_min=0, w_max=63)
            assert (got.astype(int) - w == 10 * sign * np.sign(reward)).all() and resets.all()


def test_minus_r_undoes_plus_r_for_any_eligibility():
    c, a, _, off = random_arrays("dls", 9)
    off = np.broadcast_to(off[0] // 4, c.shape)            # one row of offsets for all
    w = np.full(c.shape, 32, np.uint8)     # |change| <= floor(floor(127 * 60 / 128) * 60 / 128) = 27
    for reward in (5, 37, 60):
        up, _ = check("dls", c, a, w, off, reward=reward, theta=2, eta=60, w_min=0, w_max=63)
        down, _ = check("dls", c, a, w, off, reward=-reward, theta=2, eta=60, w_min=0, w_max=63)
        assert (up.astype(int) - 32 == 32 - down.astype(int)).all()
        assert (up != 32).any()


@pytest.mark.parametrize("chip", CHIPS)
def test_bounds_hold_and_keep_calibration_bits(chip):
    c, a, w, _ = random_arrays(chip, 10)
    cal = w & ~np.uint8(63)
    zero = np.zeros(w.shape, int)
    c, a = trace_readings(chip, 60)
    for reward, bound in ((127, 40), (-128, 5)):
        got, resets = check(chip, c, a, w, zero, reward=reward, theta=1, eta=127, w_min=5, w_max=40)
        assert (got == (cal | bound)).all() and resets.all()


def test_the_reward_is_read_at_every_update():
    """The host rewrites the reward while the rule sleeps between updates:
    +64, then 0 (nothing changes), then -64 (back where it started)."""
    c, a = trace_readings("dls", 40)
    w = np.full(c.shape, 30, np.uint8)
    at, _ = firmware.param_word("stdp_reward", "dls", "reward", 0)
    seen = []

    def rewrite(mem, updates):
        seen.append(updates)
        mem[at:at + 4] = np.frombuffer(firmware.param_word("stdp_reward", "dls", "reward",
                                                           {1: 0, 2: -64}[updates])[1], np.uint8)

    params = dict(reward=64, theta=1, eta=64, w_min=0, w_max=63, offset_stride=0)
    for n, want in ((1, 40), (2, 40), (3, 30)):
        o = run_rule("stdp_reward", "dls", w, c, a, command="periodic", period_us=200, iterations=n,
                     between=rewrite, **params)
        assert o.rc == RETURN_CODES["ok"] and o.updates == n and (o.synapses == want).all()
    assert seen == [1, 1, 2]


@pytest.mark.parametrize("chip", CHIPS)
def test_bad_parameters_return_their_code(chip):
    c, a, w, _ = random_arrays(chip, 5)
    good = dict(reward=10, theta=2, eta=10, w_min=0, w_max=63, offset_stride=0)
    o = run_rule("stdp_reward", chip, w, c, a, **dict(good, w_min=41, w_max=40))
    assert o.rc == RETURN_CODES["bad_parameter"] and o.updates == 0 and (o.synapses == w).all()
    mb = bytearray(firmware.mailbox("stdp_reward", chip, **good))
    at = firmware.field("params")[0] - MAILBOX_ADDRESS
    for raw in (128, -129):                                # the reward word, past the host-side check
        mb[at:at + 4] = (raw & 0xFFFFFFFF).to_bytes(4, "big")
        assert run_rule("stdp_reward", chip, w, c, a, mb=bytes(mb)).rc == RETURN_CODES["bad_parameter"]
    assert run_rule("stdp_reward", chip, w, c, a, **dict(good, offset_stride=8)).rc == RETURN_CODES["bad_parameter"]


def test_host_side_checks_and_signed_words():
    good = dict(reward=-1, theta=2, eta=10, w_min=0, w_max=63, offset_stride=0)
    mb = firmware.mailbox("stdp_reward", "dls", **good)
    at = firmware.field("params")[0] - MAILBOX_ADDRESS
    assert mb[at:at + 4] == b"\xff\xff\xff\xff"
    assert firmware.param_word("stdp_reward", "dls", "reward", -128) == (at + MAILBOX_ADDRESS, b"\xff\xff\xff\x80")
    with pytest.raises(ValueError, match="reward = -129 out of range -128..127"):
        firmware.mailbox("stdp_reward", "dls", **dict(good, reward=-129))
    with pytest.raises(ValueError, match="reward = 128 out of range"):
        firmware.param_word("stdp_reward", "dls", "reward", 128)
    with pytest.raises(ValueError, match="no parameter 'rate'"):
        firmware.param_word("stdp_reward", "dls", "rate", 1)


@pytest.mark.parametrize("chip", CHIPS)
def test_update_cost_in_cycles(chip):
    """docs/firmware.md cites these: one update, hx with its column-ADC reads; with reward 0 it returns at once."""
    c, a, w, _ = random_arrays(chip, 6)
    cost = {reward: update_cycles("stdp_reward", chip, w, c, a, corr_cycles=PROFILES[chip].ppu_cadc_read_cycles,
                                  reward=reward, theta=2, eta=10, w_min=0, w_max=63, offset_stride=0)
            for reward in (0, 50)}
    assert cost == {"dls": {0: 19, 50: 9309}, "hx": {0: 19, 50: 483869}}[chip]
