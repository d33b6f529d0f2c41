"""The analog core's time-step loop, compiled with numba (cache=True).

One call advances every neuron, synapse row and correlation sensor of a chip by
`n_steps` integration steps of `step_ticks` FPGA ticks each.  Per step, in this
order (docs/model.md, "Time step"):

1. neurons: the synaptic currents, adaptation current and the membrane advance
   over the step from their values at its start.  The linear part (leak and
   exponentially decaying synaptic currents) is integrated exactly; the
   non-linear drive D = g_L Delta_T exp((V - V_T)/Delta_T) - w enters as its
   Heun (trapezoidal) average over the step, D = (D(V, w) + D(V*, w*)) / 2 with
   the predictor (V*, w*) from D(V, w):
       V' = E_l + (V - E_l) PLEAK + D QDRIVE + PEXC I_exc - PINH I_inh,
       w' = w WFAC + a ((V + V*)/2 - E_l) (1 - WFAC);
   a refractory neuron stays clamped at its reset potential; a membrane at or
   above threshold spikes, resets, starts its refractory counter, and
   increments its adaptation current and spike counter; the correlation
   sensors of its synapses pair the spike with their last presynaptic event;
2. events: recurrent spikes of the previous step, then input events whose tick
   lies in this step, reach their synapse-driver row and add weight x gain
   currents to the matching synapses' neurons (they act from the end of the
   step on); correlation sensors pair them with the last postsynaptic spike.

Parameter and state arrays are laid out by twin.analog.network; the row
constants below name the rows of the parameter and state matrices.  twin.analog.reference is
the plain-Python reference of this loop; tests check the two against each
other.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from isa.regmap import EVENT_ADDRESSES, LABEL_ROW_SHIFT
from isa.wire import FPGA_TICK_S

# Rows of the per-neuron parameter matrix P (shape (NPAR, neurons); float32 on a chip).
(EL, VRESET, VTH, VT, DELTA_T, GL, QDRIVE, PLEAK, PEXC, PINH, FEXC, FINH, ADAPT_A, ADAPT_B, WFAC, VCLIP,
 GEXC, GINH) = range(18)
NPAR = 18
# Rows of the state matrix S (shape (NSTATE, neurons); float32 on a chip).
V, W, IEXC, IINH = range(4)
NSTATE = 4
# Neuron flag bits.
F_ENABLE, F_EXC, F_INH, F_EXP, F_ADAPT, F_EMIT = 1, 2, 4, 8, 16, 32
# Row flag bits: bit 0 enable, bit 1 inhibitory, bits 2..4 accept source 0 (external),
# 1 (background), 2 (recurrent).
R_ENABLE, R_INH = 1, 2
SRC_EXTERNAL, SRC_BACKGROUND, SRC_RECURRENT = 0, 1, 2
#: Argument of exp() is capped here (the comparator threshold fires long before).
EXP_ARG_MAX = 30.0
TICK_S = FPGA_TICK_S
NEVER = -1e300
#: Spike pairs further apart than this many correlation time constants add
#: nothing (exp(-20) = 2e-9 of one pair, far below an ADC step) and are skipped.
CORR_CUTOFF = 20.0
#: Synaptic currents below this (amperes) are flushed to zero.
TINY = 1e-30
FLUSH_STEPS = 64


class Layout(NamedTuple):
    """The chip's shape and step, fixed by its profile."""
    step_ticks: int        # FPGA ticks per analog step
    rows: int              # synapse rows per array
    cols: int              # columns (neurons) per array
    label_mask: int        # the low label bits matched against the synapses' address labels


class Neurons(NamedTuple):
    """Per-neuron parameters and state (twin.analog.network lays them out)."""
    P: np.ndarray          # parameters (NPAR, neurons), rows EL .. GINH; float32 on a chip
    S: np.ndarray          # state (NSTATE, neurons), rows V, W, IEXC, IINH; float32 on a chip
    flags: np.ndarray      # uint8 F_* bits per neuron
    slow: np.ndarray       # int64 neurons with the exponential term or adaptation on
    refc: np.ndarray       # int32 refractory steps left (in place)
    ref_steps: np.ndarray  # int32 refractory steps after a spike
    counts: np.ndarray     # int64 spikes counted in this call (in place)
    nlabel: np.ndarray     # int32 label a neuron's spike carries into the routing (-1: none)


class Synapses(NamedTuple):
    """The synapse array and the event routing onto its driver rows."""
    syn_label: np.ndarray  # int16 (rows of all arrays, columns): address label, -1 lost
    syn_amp: np.ndarray    # float32 (rows, columns): amplitude (weight x gain x fixed pattern)
    row_flags: np.ndarray  # uint8 per row: R_ENABLE, R_INH, accepted sources (4 << source)
    routes: np.ndarray     # int32 rows per event address (event_routes)


class EventInput(NamedTuple):
    """Events into the drivers: input events of this run, recurrent spikes, loss."""
    ev_tick: np.ndarray    # int64 ticks (sorted)
    ev_label: np.ndarray   # int32 labels
    ev_src: np.ndarray     # int32 sources (SRC_*)
    ev_pos: np.ndarray     # int64 [index of the next unprocessed event] (in place)
    carry: np.ndarray      # int32 neurons that spiked in the previous step (recurrent)
    carry_n: np.ndarray    # int64 [how many] (in place)
    rec_on: bool           # recurrent routing on
    loss_p: float          # probability of losing an event into a driver
    rng: np.ndarray        # uint64 [xorshift state] of the loss (in place)
    lost: np.ndarray       # int64 [events lost] (in place)


class Correlation(NamedTuple):
    """Correlation sensors: the acausal side laid out like the synapse array
    (rows, columns), the causal side neuron-major (neurons, rows of the
    neuron's array) so that a postsynaptic spike walks contiguous memory;
    row_last[label, row] is the time of the last event with that label at the row."""
    corr_on: bool
    corr_sat: float        # trace saturation
    corr_scale: np.ndarray  # float64 [eta scale, 1 / tau scale]
    row_last: np.ndarray
    lab_t: np.ndarray      # int16 synapse labels, neuron-major
    last_post: np.ndarray  # float64 time of each neuron's last spike
    causal: np.ndarray
    acausal: np.ndarray
    eta_c: np.ndarray
    eta_a: np.ndarray
    itau_c: np.ndarray
    itau_a: np.ndarray


class Observed(NamedTuple):
    """What a call records: probe traces and the spikes."""
    probe: np.ndarray      # int32 [membrane-ADC neuron, readout-mux neuron] (-1: none)
    probe_out: np.ndarray  # float32 (steps, 4): V and I_exc - I_inh of each probe after each step
    out_step: np.ndarray   # int64 step of each spike written
    out_neuron: np.ndarray  # int32 its neuron


_LOG2E = np.float32(1.4426950408889634)
_LN2 = np.float32(0.6931471805599453)


@intrinsic
def _f32_from_bits(typingctx, bits):
    """The float32 whose bit pattern is the int32 `bits` (a register move)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@njit(cache=True, fastmath=True, inline="always")
def _exp_neg(x):
    """exp(-x) in float32 for 0 <= x <= CORR_CUTOFF, relative error below 2e-6,
    without a library call or a table lookup (so that the loops calling it
    vectorise without gathers):
    exp(-x) = 2**-k * exp(-f ln 2), k = round(x log2 e), |f| <= 1/2, degree-6 Taylor;
    2**-k is built from its exponent bits (k <= 29: a normal float)."""
    y = x * _LOG2E
    k = np.int32(y + np.float32(0.5))
    z = (np.float32(k) - y) * _LN2
    p = np.float32(1.0) + z * (np.float32(1.0) + z * (np.float32(0.5) + z * (
        np.float32(1.0 / 6.0) + z * (np.float32(1.0 / 24.0) + z * (np.float32(1.0 / 120.0)
                                                                    + z * np.float32(1.0 / 720.0))))))
    return _f32_from_bits((np.int32(127) - k) << np.int32(23)) * p


@njit(cache=True)
def _xorshift(state):
    x = state[0]
    x ^= (x << np.uint64(13)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    x ^= x >> np.uint64(7)
    x ^= (x << np.uint64(17)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    state[0] = x
    return (x >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, fastmath=True)
def _add_matching(cols, base, lab, row, syn_label, syn_amp, g_row, P, t_row, S):
    """S[t_row, base + c] += syn_amp[row, c] * P[g_row, base + c] where
    syn_label[row, c] == lab (branch-free).  The column index base + c is
    unsigned: a signed one carries numba's negative-index wraparound per
    element, which keeps the loop scalar (or turns its loads into gathers);
    the matrices are indexed in place because row views cost reference
    counting per event."""
    for c in range(cols):
        i = np.uint64(base + c)
        m = np.float32(1.0) if syn_label[row, c] == lab else np.float32(0.0)
        S[t_row, i] += (m * syn_amp[row, c]) * P[g_row, i]


@njit(cache=True, fastmath=True)
def _acausal(cols, base, lab, row, t_pre, syn_label, last_post, acausal, eta, itau, eta_scale, itau_scale, inv_sat):
    """Acausal traces of row `row`'s synapses matching `lab`: pair the event at
    t_pre with each neuron's last spike (branch-free, vectorisable; unsigned
    neuron index as in _add_matching)."""
    cut = np.float32(CORR_CUTOFF)
    for c in range(cols):
        tp = last_post[np.uint64(base + c)]
        ok = (syn_label[row, c] == lab) & (tp > NEVER)
        d = t_pre - tp if ok else 0.0
        x = np.float32(d * itau_scale) * itau[row, c]
        ok = ok & (x < cut)
        e = _exp_neg(x if x < cut else cut)
        a = acausal[row, c]
        inc = eta_scale * eta[row, c] * e * (np.float32(1.0) - a * inv_sat)
        acausal[row, c] = a + (inc if ok else np.float32(0.0))


@njit(cache=True, fastmath=True)
def _causal(rows, r0, n, t_post, lab_t, row_last, causal, eta, itau, eta_scale, itau_scale, inv_sat, t_pre):
    """Causal traces of neuron n's synapses (one column: rows r0 .. r0+rows-1,
    neuron-major arrays indexed in place, as in _add_matching): pair its spike
    at t_post with each synapse's last presynaptic event.  The last events
    are gathered into the scratch array `t_pre` first: with the label-indexed
    load in it, the arithmetic loop does not vectorise (3x slower)."""
    for rr in range(rows):
        lab = lab_t[n, rr]
        t_pre[rr] = row_last[lab, r0 + rr] if lab >= 0 else NEVER
    cut = np.float32(CORR_CUTOFF)
    for rr in range(rows):
        tp = t_pre[rr]
        ok = tp > NEVER
        d = t_post - tp if ok else 0.0
        x = np.float32(d * itau_scale) * itau[n, rr]
        ok = ok & (x < cut)
        e = _exp_neg(x if x < cut else cut)
        a = causal[n, rr]
        inc = eta_scale * eta[n, rr] * e * (np.float32(1.0) - a * inv_sat)
        causal[n, rr] = a + (inc if ok else np.float32(0.0))


@njit(cache=True, inline="always")
def _deliver(row, lab, t_pre, rows, cols, syn_label, syn_amp, row_flags, P, S,
             corr_on, corr_sat, corr_scale, row_last, last_post, acausal, eta_a, itau_a):
    """An event reaches driver row `row` with address `lab`: matching synapses
    add their amplitude to their neuron's input; their correlation sensors
    pair it with the neuron's last spike (acausal) and remember it."""
    inh = (row_flags[row] & R_INH) != 0
    base = (row // rows) * cols
    _add_matching(cols, base, lab, row, syn_label, syn_amp, GINH if inh else GEXC, P, IINH if inh else IEXC, S)
    if corr_on:
        _acausal(cols, base, lab, row, t_pre, syn_label, last_post, acausal, eta_a, itau_a,
                 np.float32(corr_scale[0]), corr_scale[1], np.float32(1.0 / corr_sat))
    if corr_on:
        row_last[lab, row] = t_pre


@njit(cache=True)
def _drive(P, n, v, w, use_exp, use_w):
    """Non-linear drive of a membrane (A): exponential term minus adaptation."""
    d = 0.0
    if use_w:
        d -= w
    if use_exp:
        arg = (v - P[VT, n]) / P[DELTA_T, n]
        if arg > EXP_ARG_MAX:
            arg = EXP_ARG_MAX
        d += P[GL, n] * P[DELTA_T, n] * np.exp(arg)
    return d


@njit(cache=True, fastmath=True)
def _membranes(N, P, S, drive, use_drive, tmp, hits):
    """Linear part of every membrane over one step, and the decay of the
    synaptic currents.  Returns how many membranes are at or above their
    threshold (refractory ones included) and lists them in `hits`.  One pass
    over the neurons: the loop is bound by its loads and stores (ten per
    neuron), so nothing is read twice.  The rail constants are taken in the
    array's precision (0.0 would promote the clamps to float64); the upper
    rail is the same for every neuron (P[VCLIP, 0]).  Rows are indexed in
    place (P[EL, n]), not taken as views: each view costs reference counting
    per call, which on a small chip is more than the arithmetic.  `tmp` is
    unused (kept for the call signature of twin.cosim)."""
    vclip = P[VCLIP, 0]
    zero = vclip - vclip
    above = 0
    for n in range(N):
        ie = S[IEXC, n]
        ii = S[IINH, n]
        x = P[EL, n] + (S[V, n] - P[EL, n]) * P[PLEAK, n] + P[PEXC, n] * ie - P[PINH, n] * ii
        if use_drive:
            x += P[QDRIVE, n] * drive[n]
        x = x if x > zero else zero
        x = x if x < vclip else vclip
        S[V, n] = x
        S[IEXC, n] = ie * P[FEXC, n]
        S[IINH, n] = ii * P[FINH, n]
        above += x >= P[VTH, n]
    if above:
        k = 0
        for n in range(N):
            if S[V, n] >= P[VTH, n]:
                hits[k] = n
                k += 1
                if k == above:
                    break
    return above


@njit(cache=True)
def _flush(N, S):
    """Synaptic currents decayed below TINY become zero (no denormal
    arithmetic after long silences); run every FLUSH_STEPS steps."""
    ie, ii = S[IEXC], S[IINH]
    for n in range(N):
        if abs(ie[n]) < TINY:
            ie[n] = 0.0
        if abs(ii[n]) < TINY:
            ii[n] = 0.0


class Work(NamedTuple):
    """Working memory of the step loop, kept between calls of `advance` (one
    kernel call may advance in many pieces: twin.cosim)."""
    new_buf: np.ndarray    # int32 neurons that spiked in this step and emit (the next step's carry)
    drive: np.ndarray      # non-linear drive of each membrane over the step (Heun average)
    tmp: np.ndarray        # unused (kept for _membranes' signature)
    hits: np.ndarray       # int64 membranes at or above threshold
    spiked: np.ndarray     # int64 neurons that spiked in this step
    t_pre: np.ndarray      # float64 (rows,) scratch of _causal
    ref_list: np.ndarray   # int32 neurons with a running refractory counter (the first n_ref)


def work(lay, nrn):
    """The working memory of `advance` for a call (allocated here, outside
    numba: the kernels that run the step loop, _run_steps and
    twin.cosim.run_span, are compiled without reference counting and so
    allocate nothing), and how many neurons have a running refractory counter
    (listed first in Work.ref_list, in neuron order)."""
    P, refc = nrn.P, nrn.refc
    N = P.shape[1]
    running = np.flatnonzero(refc > 0)
    ref_list = np.zeros(N, np.int32)
    ref_list[:running.size] = running
    wk = Work(np.empty(N, np.int32), np.zeros(N, P.dtype), np.empty(N, P.dtype), np.empty(N, np.int64),
              np.empty(N, np.int64), np.empty(lay.rows, np.float64), ref_list)
    return wk, int(running.size)


@njit(cache=True, inline="always")
def advance(k0, k, k_stop, n_out, n_ref, lay, nrn, syn, ev, corr, obs, wk):
    """The step loop: steps k .. k_stop-1 of a call that started at step k0
    (probe_out row k - k0 receives the probes after step k), with `n_out`
    spikes written so far and `n_ref` neurons in wk.ref_list.  Returns (step
    reached, n_out, n_ref); the step reached is below k_stop when obs.out_step
    is full.  Inlined (numba IR) into _run_steps and twin.cosim.run_span,
    which are compiled without reference counting (_nrt=False): run_span runs
    it once per span between two PPU meeting points, and taking out and
    releasing the references of every array the records hold cost more than
    the steps of a short span on a small chip (the dls sweep of
    tools/bench/cosim.py ran 1.7x slower so)."""
    step_ticks, rows, cols, label_mask = lay.step_ticks, lay.rows, lay.cols, lay.label_mask
    P, S, flags, slow, refc, ref_steps, counts, nlabel = (nrn.P, nrn.S, nrn.flags, nrn.slow, nrn.refc,
                                                          nrn.ref_steps, nrn.counts, nrn.nlabel)
    syn_label, syn_amp, row_flags, routes = syn.syn_label, syn.syn_amp, syn.row_flags, syn.routes
    ev_tick, ev_label, ev_src, ev_pos = ev.ev_tick, ev.ev_label, ev.ev_src, ev.ev_pos
    carry, carry_n, rec_on, loss_p, rng, lost = ev.carry, ev.carry_n, ev.rec_on, ev.loss_p, ev.rng, ev.lost
    corr_on, corr_sat, corr_scale, row_last = corr.corr_on, corr.corr_sat, corr.corr_scale, corr.row_last
    lab_t, last_post, causal, acausal = corr.lab_t, corr.last_post, corr.causal, corr.acausal
    eta_c, eta_a, itau_c, itau_a = corr.eta_c, corr.eta_a, corr.itau_c, corr.itau_a
    probe, probe_out, out_step, out_neuron = obs.probe, obs.probe_out, obs.out_step, obs.out_neuron
    new_buf, drive, tmp, hits, spiked, t_pre, ref_list = (wk.new_buf, wk.drive, wk.tmp, wk.hits, wk.spiked,
                                                          wk.t_pre, wk.ref_list)
    N = P.shape[1]
    cap = out_step.shape[0]
    n_ev = ev_tick.shape[0]
    step_s = step_ticks * TICK_S
    v_arr, w_arr = S[V], S[W]
    vreset = P[VRESET]
    n_probe = 0
    for q in range(probe.shape[0]):
        if probe[q] >= 0:
            n_probe += 1
    while k < k_stop:
        if n_out + N > cap:
            break
        s = k - k0
        t_end = (k + 1) * step_s
        n_new = 0
        # ---------------------------------------------------------------- neurons
        for j in range(slow.shape[0]):          # exponential term and adaptation: Heun over the step
            n = slow[j]
            f = flags[n]
            v0 = v_arr[n]
            w0 = w_arr[n]
            use_exp = (f & F_EXP) != 0 and refc[n] == 0
            use_w = (f & F_ADAPT) != 0
            d0 = _drive(P, n, v0, w0, use_exp, use_w)
            vp = (P[EL, n] + (v0 - P[EL, n]) * P[PLEAK, n] + P[PEXC, n] * S[IEXC, n] - P[PINH, n] * S[IINH, n]
                  + P[QDRIVE, n] * d0)
            if use_w:
                wp = w0 * P[WFAC, n] + P[ADAPT_A, n] * (v0 - P[EL, n]) * (1.0 - P[WFAC, n])
                w_arr[n] = w0 * P[WFAC, n] + P[ADAPT_A, n] * (0.5 * (v0 + vp) - P[EL, n]) * (1.0 - P[WFAC, n])
            else:
                wp = w0
            drive[n] = 0.5 * (d0 + _drive(P, n, vp, wp, use_exp, use_w))
        above = _membranes(N, P, S, drive, slow.shape[0] > 0, tmp, hits)
        if (k & (FLUSH_STEPS - 1)) == 0:
            _flush(N, S)
        n_spiked = 0
        for h in range(above):                  # threshold crossings of non-refractory neurons
            n = hits[h]
            if refc[n] == 0:
                f = flags[n]
                v_arr[n] = vreset[n]
                spiked[n_spiked] = n
                n_spiked += 1
                if (f & F_ADAPT) != 0:
                    w_arr[n] += P[ADAPT_B, n]
                counts[n] += 1
                out_step[n_out] = k
                out_neuron[n_out] = n
                n_out += 1
                if rec_on and (f & F_EMIT) != 0 and nlabel[n] >= 0:
                    new_buf[n_new] = n
                    n_new += 1
                if corr_on:
                    _causal(rows, (n // cols) * rows, n, t_end, lab_t, row_last, causal, eta_c, itau_c,
                            np.float32(corr_scale[0]), corr_scale[1], np.float32(1.0 / corr_sat), t_pre)
                    last_post[n] = t_end
        # refractory clamp: neurons refractory at the start of this step
        j = 0
        for i in range(n_ref):
            n = ref_list[i]
            v_arr[n] = vreset[n]
            refc[n] -= 1
            if refc[n] > 0:
                ref_list[j] = n
                j += 1
        n_ref = j
        for h in range(n_spiked):               # neurons that spiked now count from the next step
            n = spiked[h]
            refc[n] = ref_steps[n]
            if refc[n] > 0:
                ref_list[n_ref] = n
                n_ref += 1
        # ---------------------------------------------------------------- events
        t_rec = k * step_s
        for j in range(carry_n[0]):
            lab_full = nlabel[carry[j]]
            addr = lab_full >> LABEL_ROW_SHIFT
            if addr >= EVENT_ADDRESSES:
                continue
            for i in range(routes[addr], routes[addr + 1]):
                row = routes[i]
                rf = row_flags[row]
                if (rf & R_ENABLE) == 0 or (rf & (4 << SRC_RECURRENT)) == 0:
                    continue
                if loss_p > 0.0 and _xorshift(rng) < loss_p:
                    lost[0] += 1
                    continue
                _deliver(row, lab_full & label_mask, t_rec, rows, cols, syn_label, syn_amp, row_flags, P, S,
                         corr_on, corr_sat, corr_scale, row_last, last_post, acausal, eta_a, itau_a)
        for j in range(n_new):
            carry[j] = new_buf[j]
        carry_n[0] = n_new
        p = ev_pos[0]
        last_tick = (k + 1) * step_ticks
        while p < n_ev and ev_tick[p] < last_tick:
            lab_full = ev_label[p]
            src = ev_src[p]
            p += 1
            addr = lab_full >> LABEL_ROW_SHIFT
            if addr >= EVENT_ADDRESSES:
                continue
            for i in range(routes[addr], routes[addr + 1]):
                row = routes[i]
                rf = row_flags[row]
                if (rf & R_ENABLE) == 0 or (rf & (4 << src)) == 0:
                    continue
                if loss_p > 0.0 and _xorshift(rng) < loss_p:
                    lost[0] += 1
                    continue
                _deliver(row, lab_full & label_mask, t_end, rows, cols, syn_label, syn_amp, row_flags, P, S,
                         corr_on, corr_sat, corr_scale, row_last, last_post, acausal, eta_a, itau_a)
        ev_pos[0] = p
        # ---------------------------------------------------------------- probes
        if n_probe:
            for q in range(probe.shape[0]):
                n = probe[q]
                if n >= 0:
                    probe_out[s, 2 * q] = v_arr[n]
                    probe_out[s, 2 * q + 1] = S[IEXC, n] - S[IINH, n]
        k += 1
    return k, n_out, n_ref


def run_steps(k0, n_steps, lay, nrn, syn, ev, corr, obs):
    """Advance steps k0 .. k0+n_steps-1 of the analog core whose records are
    `lay` (Layout), `nrn` (Neurons), `syn` (Synapses), `ev` (EventInput),
    `corr` (Correlation) and `obs` (Observed).  Returns (steps done, spikes
    written); stops early (steps done < n_steps) when obs.out_step is full.
    ev.ev_pos[0] is the index of the next unprocessed input event and is
    advanced in place.  P and S are float32 on a chip (memory traffic decides
    the speed; float64 in the precision tests, the same code compiled for
    both).  Disabled neurons have PLEAK = PEXC = PINH = QDRIVE = 0 and VTH =
    inf: they sit at E_l.  The step loop is `advance`, compiled in _run_steps."""
    wk, n_ref = work(lay, nrn)
    return _run_steps(k0, n_steps, lay, nrn, syn, ev, corr, obs, wk, n_ref)


@njit(cache=True, _nrt=False)
def _run_steps(k0, n_steps, lay, nrn, syn, ev, corr, obs, wk, n_ref):
    """run_steps with its working memory `wk` (Work) and `n_ref` (see work)."""
    k, n_out, n_ref = advance(k0, k0, k0 + n_steps, 0, n_ref, lay, nrn, syn, ev, corr, obs, wk)
    return k - k0, n_out


def event_routes(address: np.ndarray) -> np.ndarray:
    """The rows each event address reaches, for run_steps: address[row] is the
    address row `row` takes; returns int32 r with the rows of address a at
    r[r[a]:r[a + 1]] (the first EVENT_ADDRESSES + 1 entries index into r itself)."""
    address = np.asarray(address, np.int64)
    order = np.argsort(address, kind="stable")
    start = np.concatenate([[0], np.cumsum(np.bincount(address, minlength=EVENT_ADDRESSES))])
    return np.concatenate([start + EVENT_ADDRESSES + 1, order]).astype(np.int32)


@njit(cache=True)
def cadc_code(volts, offset, noise, v_max, full):
    """The column ADC: code of an input voltage with the column's offset (LSB)
    and a noise sample (LSB), rounded and clipped to 0 .. full-1 (docs/model.md)."""
    code = np.rint(volts / v_max * full + offset + noise)
    return min(max(code, 0.0), full - 1.0)


@njit(cache=True)
def cadc_codes(volts, offset, noise, v_max, full):
    """cadc_code over arrays of the same shape (flattened); uint32 codes."""
    v, o, z = volts.ravel(), offset.ravel(), noise.ravel()
    out = np.empty(v.shape[0], np.uint32)
    for i in range(v.shape[0]):
        out[i] = np.uint32(cadc_code(v[i], o[i], z[i], v_max, full))
    return out.reshape(volts.shape)


@njit(cache=True)
def spike_counter_word(word, spikes, count_bits, overflow_lsb):
    """A spike-counter register word after `spikes` more spikes: the count
    saturates at its field's maximum and sets the sticky overflow bit."""
    limit = (np.int64(1) << count_bits) - 1
    over = (np.int64(word) >> overflow_lsb) & 1
    new = (np.int64(word) & limit) + spikes
    if new > limit:
        new = limit
        over = 1
    return new | (over << overflow_lsb)


@njit(cache=True)
def add_spike_counts(counters, counts, count_bits, overflow_lsb):
    """spike_counter_word over every neuron's register, in place."""
    for n in range(counters.shape[0]):
        counters[n] = spike_counter_word(counters[n], counts[n], count_bits, overflow_lsb)


@njit(cache=True)
def fifo(times, depth, drain, free_at, level_out):
    """The output event FIFO: an event (sorted times, FPGA ticks) enters if
    fewer than `depth` events are waiting; one event leaves every `drain`
    ticks while the FIFO is not empty.  Returns the mask of accepted events.
    free_at[0], the tick at which the last accepted event leaves, carries the
    queue between calls (while busy, departures are `drain` apart, so the
    fill level at t is ceil((free_at - t) / drain)); level_out[0] is the fill
    level after the last event."""
    n = times.shape[0]
    keep = np.zeros(n, np.bool_)
    last = free_at[0]
    for i in range(n):
        t = times[i]
        queued = (last - t + drain - 1) // drain if last > t else 0
        if queued < depth:
            last = (last if last > t else t) + drain
            keep[i] = True
    level = 0
    if n > 0 and last > times[n - 1]:
        level = (last - times[n - 1] + drain - 1) // drain
    level_out[0] = level
    free_at[0] = last
    return keep
