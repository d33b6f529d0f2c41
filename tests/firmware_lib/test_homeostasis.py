"""The homeostasis rule (firmware/rules/homeostasis.s) against its NumPy
reference (firmware.rules.homeostasis_reference), bit for bit, in the twin's
PPU interpreter on dls and hx, with the spike counters served over the
register bus from an array; the edge cases also state the expected result in
their own terms (a step up or down or none, bounds, counters reset).  On a
chip through the host library: weights of neurons that fire too often go
down, of silent ones up."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import firmware
import host
from firmware.rules import homeostasis_reference
from isa.ppu.iomap import MAILBOX_ADDRESS, RETURN_CODES
from isa.profiles import PROFILES

from _rule_harness import assert_same_bytes, run_rule, update_cycles

CHIPS = ("dls", "hx")
OVERFLOWED = 1 << 24 | 0xFFFFFF            # a counter past its 24 bits: saturated, overflow bit set


def chip_counters(chip, ppu, counts, seed=0):
    """Counter words of every neuron of the chip: `counts` for PPU `ppu`'s
    neurons, random ones for the others (which the rule must not touch)."""
    p = PROFILES[chip]
    words = np.random.default_rng(seed).integers(0, 1000, p.neurons).astype(np.uint32)
    words[ppu * p.columns:(ppu + 1) * p.columns] = counts
    return words


def check(chip, counts, synapses, ppu=0, **params):
    """One update by the firmware, held to the reference; the rule reads and
    resets exactly this PPU's counters.  Returns the new synapse bytes."""
    p = PROFILES[chip]
    words = chip_counters(chip, ppu, counts)
    o = run_rule("homeostasis", chip, synapses, counters=words, ppu=ppu, **params)
    assert o.rc == RETURN_CODES["ok"] and o.updates == 1
    assert_same_bytes(o.synapses, homeostasis_reference(counts, synapses, weight_bits=p.weight_bits, **params))
    mine = np.zeros(p.neurons, bool)
    mine[ppu * p.columns:(ppu + 1) * p.columns] = True
    assert (o.counter_reads == mine).all() and (o.counter_resets == mine).all()
    assert (o.counters[mine] == 0).all() and (o.counters[~mine] == words[~mine]).all()
    return o.synapses


def _synapses(chip, lo, hi, seed=3):
    """Synapse bytes with weights lo..hi and random calibration bits."""
    p = PROFILES[chip]
    rng = np.random.default_rng(seed)
    shape = (p.rows, p.columns)
    return (rng.integers(lo, hi + 1, shape) | rng.integers(0, 4, shape) << p.weight_bits).astype(np.uint8)


def _random_counts(rng, columns, target, tolerance):
    """Counts on both sides of the tolerance band and on its edges, some
    overflowed, some with bits above the counter's fields set."""
    spread = 2 * tolerance + 3
    counts = np.clip(target + rng.integers(-spread, spread + 1, columns), 0, 0xFFFFFF)
    counts[rng.random(columns) < 0.05] = OVERFLOWED
    odd = rng.random(columns) < 0.05
    counts[odd] |= rng.integers(0, 128, odd.sum()) << 25
    return counts.astype(np.uint32)


_params = st.tuples(st.one_of(st.integers(0, 40), st.integers(0, 0xFFFFFF)), st.integers(0, 20),
                    st.integers(0, 63), st.integers(0, 63), st.integers(0, 63)).map(
    lambda t: dict(target=t[0], tolerance=t[1], step=t[2], w_min=min(t[3:]), w_max=max(t[3:])))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32 - 1), params=_params)
def test_random_cases_dls(seed, params):
    rng = np.random.default_rng(seed)
    p = PROFILES["dls"]
    w = rng.integers(0, 256, (p.rows, p.columns), dtype=np.uint8)
    check("dls", _random_counts(rng, p.columns, params["target"], params["tolerance"]), w, **params)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32 - 1), params=_params, ppu=st.sampled_from([0, 1]))
def test_random_cases_hx(seed, params, ppu):
    rng = np.random.default_rng(seed)
    p = PROFILES["hx"]
    w = rng.integers(0, 256, (p.rows, p.columns), dtype=np.uint8)
    check("hx", _random_counts(rng, p.columns, params["target"], params["tolerance"]), w, ppu=ppu, **params)


@pytest.mark.parametrize("chip", CHIPS)
def test_one_step_toward_the_target_and_none_within_the_tolerance(chip):
    p = PROFILES[chip]
    w = _synapses(chip, 10, 50)
    counts = np.array([0, 6, 7, 10, 13, 14, 30, OVERFLOWED] * (p.columns // 8), np.uint32)
    # target 10, tolerance 3: 0 and 6 too few, 7..13 within, 14 and up too many
    want = np.array([3, 3, 0, 0, 0, -3, -3, -3] * (p.columns // 8))
    for ppu in range(p.ppus):
        got = check(chip, counts, w, ppu=ppu, target=10, tolerance=3, step=3, w_min=0, w_max=63)
        assert (got.astype(int) - w == want).all()               # every row of a column alike, bits kept
    got = check(chip, np.zeros(p.columns, np.uint32), w, target=0, tolerance=0, step=3, w_min=0, w_max=63)
    assert (got == w).all()                                      # silent and meant to be
    got = check(chip, counts, w, target=10, tolerance=3, step=0, w_min=10, w_max=50)
    assert (got == w).all()                                      # step 0: counters reset, weights kept
    full = np.array([0xFFFFFF, OVERFLOWED] * (p.columns // 2), np.uint32)
    got = check(chip, full, w, target=0xFFFFFF, tolerance=0, step=3, w_min=0, w_max=63)
    assert (got.astype(int) - w == np.array([0, -3] * (p.columns // 2))).all()   # past the count: too many


@pytest.mark.parametrize("chip", CHIPS)
def test_bounds_hold_and_keep_calibration_bits(chip):
    p = PROFILES[chip]
    w = _synapses(chip, 0, 63)
    cal = w & ~np.uint8(63)
    few, many = np.zeros(p.columns, np.uint32), np.full(p.columns, 100, np.uint32)
    got = check(chip, few, w, target=50, tolerance=0, step=63, w_min=5, w_max=40)
    assert (got == (cal | 40)).all()
    got = check(chip, many, w, target=50, tolerance=0, step=63, w_min=5, w_max=40)
    assert (got == (cal | 5)).all()


def test_the_next_update_counts_from_the_reset():
    """Counts of 5 on target 5: no change; the rule reset the counters, so the
    next update reads 0, too few, and steps up."""
    w = _synapses("dls", 10, 50)
    counts = np.full(PROFILES["dls"].columns, 5, np.uint32)
    params = dict(target=5, tolerance=0, step=2, w_min=0, w_max=63, ppu=0)
    one, two = (run_rule("homeostasis", "dls", w, counters=counts, command="periodic", iterations=n, **params)
                for n in (1, 2))
    assert (one.synapses == w).all() and (two.synapses.astype(int) - w == 2).all()


@pytest.mark.parametrize("chip", CHIPS)
def test_bad_parameters_return_their_code(chip):
    p = PROFILES[chip]
    w = _synapses(chip, 0, 63)
    good = dict(target=10, tolerance=2, step=1, w_min=0, w_max=63, ppu=0)
    o = run_rule("homeostasis", chip, w, **dict(good, w_min=41, w_max=40))
    assert o.rc == RETURN_CODES["bad_parameter"] and o.updates == 0 and (o.synapses == w).all()
    assert not o.counter_reads.any()
    at = firmware.field("params")[0] - MAILBOX_ADDRESS
    for word, raw in ((0, 1 << 24), (1, 1 << 24), (2, 64), (5, p.ppus)):   # target, tolerance, step, ppu
        mb = bytearray(firmware.mailbox("homeostasis", chip, **good))
        mb[at + 4 * word:at + 4 * word + 4] = raw.to_bytes(4, "big")      # past the host-side check
        assert run_rule("homeostasis", chip, w, mb=bytes(mb)).rc == RETURN_CODES["bad_parameter"]
    with pytest.raises(ValueError, match=f"ppu = {p.ppus} out of range 0..{p.ppus - 1}"):
        firmware.mailbox("homeostasis", chip, **dict(good, ppu=p.ppus))


@pytest.mark.parametrize("chip", CHIPS)
def test_update_cost_in_cycles(chip):
    """docs/firmware.md cites these: one update, counts on both sides of the target."""
    p = PROFILES[chip]
    counts = np.arange(p.columns, dtype=np.uint32) % 20
    cycles = update_cycles("homeostasis", chip, _synapses(chip, 0, 63), counters=chip_counters(chip, 0, counts),
                           target=10, tolerance=3, step=1, w_min=0, w_max=63, ppu=0)
    assert cycles == {"dls": 3836, "hx": 30492}[chip]


# --------------------------------------------------------------------------- on a chip
def _weights(conn):
    """The synapse weights of every array, (arrays * rows, columns)."""
    prog = conn.program()
    words = prog.read_words(conn.regmap.addresses("synapse", "weights"))
    conn.run(prog)
    quads = words.values.reshape(-1, conn.profile.columns // 4)
    return host.synapse_values(conn.regmap, quads, np.zeros_like(quads))[0]


def _tonic_or_silent(conn, firing):
    """Neurons with the leak potential above the threshold fire on their own
    (no input; 13 to 16 spikes per 100 us on the dls and hx twins); the others
    rest below it."""
    p = conn.profile
    a = p.analog
    volts = lambda v: int(round(v / a.v_max * 1022))
    prog = conn.program()
    prog.write(host.ChipOnly(), host.CapMemConfig(enable=1))
    for n in range(p.neurons):
        cells = {"e_l": 0.7 if firing[n] else 0.4, "v_th": 0.6, "v_reset": 0.35}
        for name, v in cells.items():
            prog.write(host.CapMemCellOnChip(n, p.cell_for(name)), host.CapMemCell(volts(v)))
        prog.write(host.CapMemCellOnChip(n, p.cell_for("i_leak")), host.CapMemCell(400))
        prog.write(host.NeuronOnChip(n), host.NeuronConfig(enable=1, refractory=40, refractory_clock=4))
        prog.write(host.NeuronOnChip(n), host.SpikeCounterReset())
    conn.run(prog)


def _run_on_twin(chip, firing, period_us, iterations):
    """Weights (arrays * rows, columns) after `iterations` updates from 30, with
    the neurons in `firing` firing on their own and the others silent."""
    with host.connect(f"twin:{chip}") as conn:
        p = conn.profile
        _tonic_or_silent(conn, firing)
        start = np.full((p.synapse_arrays * p.rows, p.columns), 30)
        prog = conn.program()
        prog.write_words(conn.regmap.addresses("synapse", "weights"),
                         host.synapse_words(conn.regmap, start, np.zeros_like(start))[0].ravel())
        conn.run(prog)
        rule = firmware.RuleOnChip(conn, "homeostasis")
        rule.start("periodic", period_us=period_us, iterations=iterations, target=2, tolerance=1, step=2,
                   w_min=0, w_max=63)
        rule.wait(timeout_hw_seconds=2 * period_us * iterations * 1e-6)
        assert rule.updates() == [iterations] * p.ppus
        return _weights(conn)


def test_on_the_dls_twin_busy_neurons_lose_weight_silent_ones_gain():
    firing = np.arange(PROFILES["dls"].neurons) % 2 == 0
    w = _run_on_twin("dls", firing, period_us=100, iterations=5)
    assert (w == w[0]).all()                       # a neuron's column moves as one
    assert (w[0, ~firing] == 30 + 5 * 2).all()     # silent: a step up at every update
    assert (w[0, firing] < 30).all()


def test_on_the_hx_twin_each_ppu_adjusts_its_own_neurons():
    """Neurons 256..511 (PPU 1's) fire, 0..255 (PPU 0's) are silent."""
    p = PROFILES["hx"]
    firing = np.arange(p.neurons) >= p.columns
    w = _run_on_twin("hx", firing, period_us=200, iterations=3)
    assert (w[:p.rows] == 30 + 3 * 2).all() and (w[p.rows:] < 30).all()
