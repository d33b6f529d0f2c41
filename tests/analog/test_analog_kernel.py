"""The compiled step loop against its plain-Python reference on random
networks (hypothesis): same spikes, same counters, same states to rounding.
Also the output FIFO against an explicit queue."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.analog import kernel as K
from twin.analog.network import apply_flags, neuron_matrix
from twin.analog.reference import fifo_ref, run_steps_ref

ARRAYS, ROWS, COLS = 2, 4, 4
N = ARRAYS * COLS
R = ARRAYS * ROWS
STEP_TICKS = 12
DT = STEP_TICKS * 8e-9


def random_case(seed: int, loss: bool, corr: bool, recurrent: bool):
    rng = np.random.default_rng(seed)
    u = lambda lo, hi, n=N: rng.uniform(lo, hi, n)
    P = neuron_matrix(DT, 2e-12, u(0.3, 0.4), u(0.25, 0.3), u(0.5, 0.6), u(0.45, 0.55), u(0.005, 0.03),
                      u(2e-6, 20e-6), u(1e-6, 10e-6), u(1e-6, 10e-6), u(0, 2e-7), u(0, 5e-9), u(5e-6, 50e-6),
                      u(2e-7, 1e-6), u(2e-8, 3e-7), 1.8)
    flags = (rng.random(N) < 0.9).astype(np.uint8) * K.F_ENABLE
    for bit in (K.F_EXC, K.F_INH, K.F_EMIT):
        flags |= (rng.random(N) < 0.8).astype(np.uint8) * bit
    for bit in (K.F_EXP, K.F_ADAPT):
        flags |= (rng.random(N) < 0.5).astype(np.uint8) * bit
    P = apply_flags(P, flags)
    slow = np.flatnonzero(((flags & K.F_ENABLE) != 0) & ((flags & (K.F_EXP | K.F_ADAPT)) != 0)).astype(np.int64)
    S = np.zeros((K.NSTATE, N))
    S[K.V] = P[K.EL]
    refc = rng.integers(0, 3, N).astype(np.int32)
    ref_steps = rng.integers(0, 6, N).astype(np.int32)
    nlabel = np.where(rng.random(N) < 0.8, rng.integers(0, R + 1, N) << 6 | rng.integers(0, 4, N), -1).astype(np.int32)
    syn_label = rng.integers(-1, 4, (R, COLS)).astype(np.int16)
    syn_amp = rng.uniform(0, 1, (R, COLS)).astype(np.float32)
    row_flags = ((rng.random(R) < 0.9) | (rng.integers(0, 2, R) << 1) | (rng.integers(1, 8, R) << 2)).astype(np.uint8)
    # half the rows take another row's event address (fan-out: one event, several rows)
    address = np.where(rng.random(R) < 0.5, np.arange(R), rng.integers(0, R + 1, R))
    n_ev = int(rng.integers(50, 300))
    ev_tick = np.sort(rng.integers(0, 60 * STEP_TICKS, n_ev)).astype(np.int64)
    ev_label = (rng.integers(0, R + 1, n_ev) << 6 | rng.integers(0, 4, n_ev)).astype(np.int32)
    ev_src = rng.integers(0, 2, n_ev).astype(np.int32)
    lab_t = np.ascontiguousarray(syn_label.reshape(ARRAYS, ROWS, COLS).transpose(0, 2, 1).reshape(N, ROWS))
    f32 = lambda x: x.astype(np.float32)
    state = dict(
        P=P, S=S, flags=flags, slow=slow, refc=refc, ref_steps=ref_steps, counts=np.zeros(N, np.int64),
        nlabel=nlabel, syn_label=syn_label, syn_amp=syn_amp, row_flags=row_flags, routes=K.event_routes(address),
        ev_tick=ev_tick, ev_label=ev_label, ev_src=ev_src, ev_pos=np.zeros(1, np.int64),
        carry=np.zeros(N, np.int32), carry_n=np.zeros(1, np.int64),
        rng=np.array([12345 + seed], np.uint64), lost=np.zeros(1, np.int64),
        corr_scale=np.array([0.05, 1 / 20e-6]), row_last=np.full((64, R), K.NEVER), lab_t=lab_t,
        last_post=np.full(N, K.NEVER), causal=np.zeros((N, ROWS), np.float32), acausal=np.zeros((R, COLS), np.float32),
        eta_c=f32(u(0.5, 1.5, (N, ROWS))), eta_a=f32(u(0.5, 1.5, (R, COLS))),
        itau_c=f32(u(0.5, 2, (N, ROWS))), itau_a=f32(u(0.5, 2, (R, COLS))),
        probe=np.array([0, N - 1], np.int32))
    scalars = dict(loss_p=0.2 if loss else 0.0, corr_on=corr, rec_on=recurrent, corr_sat=0.9)
    return state, scalars


def run(fn, state, scalars, n_steps, k0=0):
    st_ = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()}
    probe_out = np.zeros((n_steps, 4), np.float32)
    out_step = np.zeros(N * n_steps + N, np.int64)
    out_neuron = np.zeros(N * n_steps + N, np.int32)
    done, n_out = fn(k0, n_steps, K.Layout(STEP_TICKS, ROWS, COLS, 3),
                     K.Neurons(*(st_[f] for f in K.Neurons._fields)),
                     K.Synapses(*(st_[f] for f in K.Synapses._fields)),
                     K.EventInput(*(st_.get(f, scalars.get(f)) for f in K.EventInput._fields)),
                     K.Correlation(*(st_.get(f, scalars.get(f)) for f in K.Correlation._fields)),
                     K.Observed(st_["probe"], probe_out, out_step, out_neuron))
    assert done == n_steps
    st_["spikes"] = sorted(zip(out_step[:n_out].tolist(), out_neuron[:n_out].tolist()))
    st_["probe_out"] = probe_out
    return st_


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), loss=st.booleans(), corr=st.booleans(), recurrent=st.booleans(),
       k0=st.integers(0, 100))
def test_kernel_matches_the_reference(seed, loss, corr, recurrent, k0):
    state, scalars = random_case(seed, loss, corr, recurrent)
    n_steps = 80
    a = run(K.run_steps, state, scalars, n_steps, k0)
    b = run(run_steps_ref, state, scalars, n_steps, k0)
    assert a["spikes"] == b["spikes"]
    for key in ("counts", "refc", "carry_n", "ev_pos", "lost", "rng"):
        assert np.array_equal(a[key], b[key]), key
    # same arithmetic up to the order of floating-point operations
    np.testing.assert_allclose(a["S"], b["S"], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(a["probe_out"], b["probe_out"], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(a["causal"], b["causal"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(a["acausal"], b["acausal"], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(a["row_last"], b["row_last"])
    np.testing.assert_array_equal(a["last_post"], b["last_post"])


def test_random_cases_exercise_spikes_loss_and_correlation():
    """The random cases above are not vacuous: they spike, lose events and correlate."""
    totals = dict(spikes=0, lost=0, causal=0.0, acausal=0.0)
    for seed in range(10):
        state, scalars = random_case(seed, True, True, True)
        a = run(K.run_steps, state, scalars, 80)
        totals["spikes"] += len(a["spikes"])
        totals["lost"] += int(a["lost"][0])
        totals["causal"] += float(a["causal"].sum())
        totals["acausal"] += float(a["acausal"].sum())
    assert totals["spikes"] > 20 and totals["lost"] > 5
    assert totals["causal"] > 0 and totals["acausal"] > 0


def test_kernel_split_into_calls_equals_one_call():
    state, scalars = random_case(7, False, True, True)
    whole = run(K.run_steps, state, scalars, 80)
    first = run(K.run_steps, state, scalars, 30)
    rest = run(K.run_steps, {k: first[k] for k in state}, scalars, 50, k0=30)
    assert first["spikes"] + rest["spikes"] == whole["spikes"]
    np.testing.assert_array_equal(rest["S"], whole["S"])


@settings(max_examples=200, deadline=None)
@given(gaps=st.lists(st.integers(0, 9), max_size=60), depth=st.integers(1, 6), drain=st.integers(1, 5),
       split=st.integers(0, 60))
def test_fifo_matches_an_explicit_queue(gaps, depth, drain, split):
    times = np.cumsum(np.array(gaps, np.int64)) + 100
    split = min(split, len(times))
    got, want = [], []
    for fn, out in ((K.fifo, got), (fifo_ref, want)):
        free_at, level = np.zeros(1, np.int64), np.zeros(1, np.int64)
        for part in (times[:split], times[split:]):      # two calls: the queue carries over
            if len(part):
                out.append(fn(part, depth, drain, free_at, level).tolist())
                out.append(int(level[0]))
    assert got == want


def test_fifo_drops_only_when_full():
    t = np.zeros(10, np.int64)                         # ten events at once into a 4-deep FIFO
    keep = K.fifo(t, 4, 2, np.zeros(1, np.int64), np.zeros(1, np.int64))
    assert keep.tolist() == [True] * 4 + [False] * 6
    spaced = np.arange(10, dtype=np.int64) * 2         # exactly the drain rate: nothing lost
    assert K.fifo(spaced, 1, 2, np.zeros(1, np.int64), np.zeros(1, np.int64)).all()


def test_sensor_exponential_is_exp_within_its_stated_error():
    """The correlation sensors' exp(-x) (2**-k from exponent bits times a
    polynomial) over 0 .. CORR_CUTOFF: relative error below 2e-6."""
    xs = np.linspace(0.0, K.CORR_CUTOFF, 20001).astype(np.float32)
    got = np.array([K._exp_neg(x) for x in xs[::7]] + [K._exp_neg(xs[-1])], np.float64)
    want = np.exp(-np.concatenate([xs[::7], xs[-1:]]).astype(np.float64))
    assert np.all(np.abs(got / want - 1.0) < 2e-6)
