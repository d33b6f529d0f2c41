"""Plain-Python reference of the analog kernels (twin.analog.kernel).

Written for clarity, step by step and neuron by neuron, with the semantics
documented in the kernel module; tests run both on random networks and
require the same spikes, the same states (to rounding) and the same counters.
"""
from __future__ import annotations

import math

import numpy as np

from isa.regmap import EVENT_ADDRESSES, LABEL_ROW_SHIFT

from . import kernel as K

_M64 = (1 << 64) - 1


def _uniform(rng: np.ndarray) -> float:
    """xorshift64 as in the kernel; advances rng[0]."""
    x = int(rng[0])
    x ^= (x << 13) & _M64
    x ^= x >> 7
    x ^= (x << 17) & _M64
    rng[0] = np.uint64(x)
    return (x >> 11) * (1.0 / 9007199254740992.0)


def run_steps_ref(k0, n_steps, lay, nrn, syn, ev, corr, obs):
    """run_steps (twin.analog.kernel) step by step and neuron by neuron, on the same records."""
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
    N = P.shape[1]
    step_s = step_ticks * K.TICK_S
    spikes = []
    slow_set = set(int(n) for n in slow)

    def deliver(row, lab, t_pre):
        inh = bool(row_flags[row] & K.R_INH)
        array = row // rows
        for c in range(cols):
            if syn_label[row, c] != lab:
                continue
            n = array * cols + c
            if inh:
                S[K.IINH, n] += float(syn_amp[row, c]) * P[K.GINH, n]
            else:
                S[K.IEXC, n] += float(syn_amp[row, c]) * P[K.GEXC, n]
            if corr_on and last_post[n] > K.NEVER:
                x = float(np.float32((t_pre - last_post[n]) * corr_scale[1]) * itau_a[row, c])
                if x < K.CORR_CUTOFF:
                    a = float(acausal[row, c])
                    acausal[row, c] = a + corr_scale[0] * float(eta_a[row, c]) * math.exp(-x) * (1 - a / corr_sat)
        if corr_on:
            row_last[lab, row] = t_pre

    def accepts(row, src):
        rf = int(row_flags[row])
        return bool(rf & K.R_ENABLE) and bool(rf & (4 << src))

    def rows_of(label):
        """The rows taking the event address of `label`, in row order."""
        addr = label >> LABEL_ROW_SHIFT
        if addr >= EVENT_ADDRESSES:
            return []
        return [int(routes[i]) for i in range(int(routes[addr]), int(routes[addr + 1]))]

    for s in range(n_steps):
        k = k0 + s
        t_end = (k + 1) * step_s
        refractory_at_start = [refc[n] > 0 for n in range(N)]
        # 1. neurons: every state variable advances from its value at the step start
        v0 = S[K.V].copy()
        w0 = S[K.W].copy()
        fired = []
        for n in range(N):
            f = int(flags[n])
            drive = 0.0
            if n in slow_set:
                use_exp = bool(f & K.F_EXP) and not refractory_at_start[n]
                use_w = bool(f & K.F_ADAPT)

                def nonlinear(v, w):
                    d = -w if use_w else 0.0
                    if use_exp:
                        arg = min((v - P[K.VT, n]) / P[K.DELTA_T, n], K.EXP_ARG_MAX)
                        d += P[K.GL, n] * P[K.DELTA_T, n] * math.exp(arg)
                    return d

                d0 = nonlinear(v0[n], w0[n])
                v_pred = (P[K.EL, n] + (v0[n] - P[K.EL, n]) * P[K.PLEAK, n] + P[K.PEXC, n] * S[K.IEXC, n]
                          - P[K.PINH, n] * S[K.IINH, n] + P[K.QDRIVE, n] * d0)
                decay = P[K.WFAC, n]
                w_pred = w0[n]
                if use_w:
                    a = P[K.ADAPT_A, n]
                    w_pred = w0[n] * decay + a * (v0[n] - P[K.EL, n]) * (1 - decay)
                    S[K.W, n] = w0[n] * decay + a * ((v0[n] + v_pred) / 2 - P[K.EL, n]) * (1 - decay)
                drive = (d0 + nonlinear(v_pred, w_pred)) / 2
            ie, ii = S[K.IEXC, n], S[K.IINH, n]
            v = (P[K.EL, n] + (v0[n] - P[K.EL, n]) * P[K.PLEAK, n] + P[K.PEXC, n] * ie - P[K.PINH, n] * ii
                 + P[K.QDRIVE, n] * drive)
            S[K.V, n] = min(max(v, 0.0), P[K.VCLIP, n])
            S[K.IEXC, n] = ie * P[K.FEXC, n]
            S[K.IINH, n] = ii * P[K.FINH, n]
            if k % K.FLUSH_STEPS == 0:
                for j in (K.IEXC, K.IINH):
                    if abs(S[j, n]) < K.TINY:
                        S[j, n] = 0.0
            if refractory_at_start[n]:
                S[K.V, n] = P[K.VRESET, n]
                refc[n] -= 1
            elif S[K.V, n] >= P[K.VTH, n]:
                fired.append(n)
        for n in fired:
            f = int(flags[n])
            S[K.V, n] = P[K.VRESET, n]
            refc[n] = ref_steps[n]
            if f & K.F_ADAPT:
                S[K.W, n] += P[K.ADAPT_B, n]
            counts[n] += 1
            spikes.append((k, n))
            if corr_on:
                array = n // cols
                for rr in range(rows):
                    lab = int(lab_t[n, rr])
                    tp = row_last[lab, array * rows + rr] if lab >= 0 else K.NEVER
                    if tp > K.NEVER:
                        x = float(np.float32((t_end - tp) * corr_scale[1]) * itau_c[n, rr])
                        if x < K.CORR_CUTOFF:
                            a = float(causal[n, rr])
                            causal[n, rr] = a + corr_scale[0] * float(eta_c[n, rr]) * math.exp(-x) * (1 - a / corr_sat)
                last_post[n] = t_end
        # 2. events: recurrent spikes of the previous step, then this step's input
        for j in range(int(carry_n[0])):
            full = int(nlabel[carry[j]])
            for row in rows_of(full):
                if accepts(row, K.SRC_RECURRENT):
                    if loss_p > 0 and _uniform(rng) < loss_p:
                        lost[0] += 1
                    else:
                        deliver(row, full & label_mask, k * step_s)
        new = [n for n in fired if rec_on and flags[n] & K.F_EMIT and nlabel[n] >= 0]
        carry[:len(new)] = new
        carry_n[0] = len(new)
        while ev_pos[0] < len(ev_tick) and ev_tick[ev_pos[0]] < (k + 1) * step_ticks:
            p = int(ev_pos[0])
            ev_pos[0] += 1
            full = int(ev_label[p])
            for row in rows_of(full):
                if accepts(row, int(ev_src[p])):
                    if loss_p > 0 and _uniform(rng) < loss_p:
                        lost[0] += 1
                    else:
                        deliver(row, full & label_mask, t_end)
        for q in range(len(probe)):
            if probe[q] >= 0:
                probe_out[s, 2 * q] = S[K.V, probe[q]]
                probe_out[s, 2 * q + 1] = S[K.IEXC, probe[q]] - S[K.IINH, probe[q]]
    for i, (k, n) in enumerate(spikes):
        out_step[i], out_neuron[i] = k, n
    return n_steps, len(spikes)


def fifo_ref(times, depth, drain, free_at, level_out):
    """The output FIFO as an explicit queue of departure times."""
    queue: list[int] = []           # departure ticks of the events waiting
    last = int(free_at[0])
    # a queue left by an earlier call: departures every `drain` ticks up to free_at
    keep = np.zeros(len(times), bool)
    first_t = int(times[0]) if len(times) else last
    d = last
    while d > first_t:
        queue.insert(0, d)
        d -= drain
    for i, t in enumerate(int(x) for x in times):
        queue = [q for q in queue if q > t]
        if len(queue) < depth:
            start = max(queue[-1] if queue else t, t)
            queue.append(start + drain)
            keep[i] = True
    level_out[0] = len([q for q in queue if q > int(times[-1])]) if len(times) else 0
    free_at[0] = queue[-1] if queue else last
    return keep
