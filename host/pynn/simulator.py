"""The state of the PyNN front end: the chip connection, the network built
from the PyNN objects at each run, and the last run's recordings.

Units follow PyNN (ms, mV, nA, nF); the chip's are converted here (docs/pynn.md):

    V_chip = V_OFFSET + V_SCALE * V_pynn        (volts; V_pynn in mV)
    t_chip = t_pynn / speedup                   (the network layer does it)
    I_chip = c_mem * V_SCALE * speedup * I_pynn / cm
"""
from __future__ import annotations

import warnings

import numpy as np

from pyNN import common, errors

from ..calibration_fit import CELL_MAX   # the largest refreshed cell value

name = "bss-twin"

#: The affine map of PyNN's millivolts onto the chip's volts: -65 mV (PyNN's
#: default v_rest) lands on 0.40 V (the network layer's default leak), one mV
#: of the model is 10 mV on the chip; the chip's 0 .. 1.2 V hold -105 .. +15 mV.
V_OFFSET = 1.05      # V
V_SCALE = 0.01       # V per mV


def mv_to_chip(mv):
    return V_OFFSET + V_SCALE * np.asarray(mv, float)


def chip_to_mv(volts):
    return (np.asarray(volts, float) - V_OFFSET) / V_SCALE


class MembraneRecordingError(errors.RecordingError):
    """More than one membrane asked for: the chip has one membrane ADC."""

    def __init__(self, message):
        Exception.__init__(self, message)
        self.message = message

    def __str__(self):
        return self.message


class ID(int, common.IDMixin):
    def __init__(self, n):
        int.__init__(n)
        common.IDMixin.__init__(self)


class State(common.control.BaseState):
    def __init__(self):
        common.control.BaseState.__init__(self)
        self.mpi_rank = 0
        self.num_processes = 1
        self.conn = None
        self.dt = 0.1
        self.clear()

    # ---------------------------------------------------------------- set-up
    def connect(self, url, calibration, seed):
        import host
        self.close()
        self.conn = host.connect(url)
        self.profile = self.conn.profile
        self.calibration = calibration
        self.seed = int(seed)
        p = self.profile
        #: one integration step of the chip in biological ms: the latency of every synapse
        self.chip_step = p.hw_to_bio(p.step_seconds) * 1e3

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def clear(self):
        self.recorders = set()
        self.populations = []
        self.projections = []
        self.id_counter = 0
        self.segment_counter = -1
        self.result = None
        self.warned_delay = False
        self.rule_updates, self.rule_overruns = [], []
        self.reset()

    def reset(self):
        self.running = False
        self.t = 0.0
        self.t_start = 0.0
        self.segment_counter += 1
        self.result = None
        for pop in self.populations:
            if hasattr(pop.celltype, "reset_trains"):
                pop.celltype.reset_trains(pop)
        for proj in self.projections:       # PyNN's reset: synaptic weights back to their initial values
            proj.restore_weights()

    # ---------------------------------------------------------------- running
    def run(self, simtime):
        self.run_until(self.t + simtime)

    def run_until(self, tstop):
        if self.conn is None:
            raise RuntimeError("call setup() first")
        self.t = float(tstop)
        self.running = True
        self.result = build_and_run(self, self.t)


state = State()


# ============================================================================ the chip mapping
def _need(cond, what, value, lo, hi, unit, why=""):
    if not cond:
        raise errors.InvalidParameterValueError(
            f"{what} = {value:g} {unit} is outside the chip's range {lo:g} .. {hi:g} {unit}{why}")


def voltage_range_mv(profile):
    """The chip's voltage cells span 0 .. v_max: in PyNN mV."""
    return float(chip_to_mv(0.0)), float(chip_to_mv(profile.analog.v_max))


def tau_range_ms(profile):
    """Time constants a current cell reaches (cells 1 .. 1022), biological ms."""
    a = profile.analog
    lo = profile.hw_to_bio(a.tau_full_scale) * 1e3
    return lo, lo * CELL_MAX


def chip_amps_per_na(profile, cm):
    """Chip amperes per PyNN nA into a cell of capacitance cm (nF): the same
    dV/dt, scaled by V_SCALE in volts and by the speed-up in time."""
    return profile.analog.c_mem * V_SCALE * 1e3 * profile.speedup / np.asarray(cm, float)


def max_weight_na(profile, cm):
    """The largest synaptic current step (nA) the chip gives a cell of capacitance cm (nF)."""
    a = profile.analog
    return a.i_max / (a.c_mem * V_SCALE * 1e3 * profile.speedup) * np.asarray(cm, float)


def _tau_note(profile, tlo: float) -> str:
    return f" (a current cell of 1..{profile.cell_max}: tau = {tlo:g} ms x {profile.cell_max} / cell)"


def lif_params(profile, p: dict) -> dict:
    """IF_curr_exp parameters (PyNN units) of one neuron -> network-layer parameters."""
    lo, hi = voltage_range_mv(profile)
    tlo, thi = tau_range_ms(profile)
    for k in ("tau_m", "tau_syn_E", "tau_syn_I"):
        _need(tlo <= p[k] <= thi, k, p[k], tlo, thi, "ms", _tau_note(profile, tlo))
    _need(p["cm"] > 0, "cm", p["cm"], 0, np.inf, "nF")
    v_leak = p["v_rest"] + p["i_offset"] * p["tau_m"] / p["cm"]   # a constant current shifts the rest exactly
    _need(lo <= v_leak <= hi, "v_rest + i_offset * tau_m / cm" if p["i_offset"] else "v_rest", v_leak, lo, hi, "mV",
          f" (the chip's 0 .. {profile.analog.v_max:g} V through V = {V_OFFSET:g} V + {V_SCALE:g} V/mV x v)")
    for k in ("v_reset", "v_thresh"):
        _need(lo <= p[k] <= hi, k, p[k], lo, hi, "mV",
              f" (the chip's 0 .. {profile.analog.v_max:g} V through V = {V_OFFSET:g} V + {V_SCALE:g} V/mV x v)")
    _need(0 <= p["tau_refrac"] <= 1000.0, "tau_refrac", p["tau_refrac"], 0, 1000.0, "ms")
    return dict(v_leak=float(mv_to_chip(v_leak)), v_reset=float(mv_to_chip(p["v_reset"])),
                v_threshold=float(mv_to_chip(p["v_thresh"])), tau_mem=p["tau_m"] * 1e-3,
                tau_syn_exc=p["tau_syn_E"] * 1e-3, tau_syn_inh=p["tau_syn_I"] * 1e-3,
                tau_refrac=p["tau_refrac"] * 1e-3)


def adex_params(profile, p: dict) -> dict:
    """EIF_cond_exp_isfa_ista / AdExp parameters (PyNN units) of one neuron ->
    network-layer parameters (docs/pynn.md "EIF_cond_exp_isfa_ista").
    v_thresh is V_T of the exponential term, v_spike the chip's spike
    threshold V_th.  i_offset: the rest shifts to v_rest + i_offset / (g_L + a)
    (g_L = cm / tau_m), the exact equivalent with the adaptation current
    shifted by -a i_offset / (g_L + a); a, b scale like conductances and
    currents (a_chip / g_L,chip = a / g_L; b through chip_amps_per_na)."""
    lo, hi = voltage_range_mv(profile)
    tlo, thi = tau_range_ms(profile)
    a_ = profile.analog
    vmap = f" (the chip's 0 .. {a_.v_max:g} V through V = {V_OFFSET:g} V + {V_SCALE:g} V/mV x v)"
    for k in ("tau_m", "tau_syn_E", "tau_syn_I", "tau_w"):
        _need(tlo <= p[k] <= thi, k, p[k], tlo, thi, "ms", _tau_note(profile, tlo))
    _need(p["cm"] > 0, "cm", p["cm"], 0, np.inf, "nF")
    g_l = p["cm"] / p["tau_m"]                                      # uS
    a_max = p["cm"] / (a_.tau_full_scale * profile.speedup)         # nS: c_mem / tau_full_scale, a / g_L kept
    _need(0 <= p["a"] <= a_max, "a", p["a"], 0, a_max, "nS",
          f" (cm = {p['cm']:g} nF: a / g_L on the chip as in the model, a cell of 0 .. 1022 x "
          f"{a_.c_mem / a_.tau_full_scale / profile.cell_max:g} S)")
    b_max = float(a_.adapt_b_full_scale / chip_amps_per_na(profile, p["cm"]))
    _need(0 <= p["b"] <= b_max, "b", p["b"], 0, b_max, "nA",
          f" (cm = {p['cm']:g} nF: the chip's 0 .. {a_.adapt_b_full_scale:g} A through "
          "I_chip = c_mem x 10 x speedup x I / cm)")
    d_lo = a_.delta_t_full_scale / profile.cell_max / V_SCALE
    d_hi = a_.delta_t_full_scale / V_SCALE
    _need(p["delta_T"] == 0 or d_lo <= p["delta_T"] <= d_hi, "delta_T", p["delta_T"], d_lo, d_hi, "mV",
          f" (the chip's Delta_T up to {a_.delta_t_full_scale:g} V, {V_SCALE:g} V/mV; or 0: no exponential term)")
    v_leak = p["v_rest"] + p["i_offset"] / (g_l + p["a"] * 1e-3)    # mV: nA / uS
    _need(lo <= v_leak <= hi, "v_rest + i_offset / (cm / tau_m + a)" if p["i_offset"] else "v_rest", v_leak, lo,
          hi, "mV", vmap)
    for k in ("v_reset", "v_spike", "v_thresh"):
        _need(lo <= p[k] <= hi, k, p[k], lo, hi, "mV", vmap)
    _need(0 <= p["tau_refrac"] <= 1000.0, "tau_refrac", p["tau_refrac"], 0, 1000.0, "ms")
    # delta_T = 0: no exponential term, the spike at v_thresh (the limit NEST and NEURON implement)
    exp = {} if p["delta_T"] == 0 else dict(v_exp=float(mv_to_chip(p["v_thresh"])), delta_t=p["delta_T"] * V_SCALE)
    return dict(v_leak=float(mv_to_chip(v_leak)), v_reset=float(mv_to_chip(p["v_reset"])),
                v_threshold=float(mv_to_chip(p["v_spike"] if exp else p["v_thresh"])), tau_mem=p["tau_m"] * 1e-3,
                tau_syn_exc=p["tau_syn_E"] * 1e-3, tau_syn_inh=p["tau_syn_I"] * 1e-3,
                tau_refrac=p["tau_refrac"] * 1e-3, a=p["a"] * 1e-9 * a_.c_mem * profile.speedup / (p["cm"] * 1e-9),
                b=float(p["b"] * chip_amps_per_na(profile, p["cm"])), tau_w=p["tau_w"] * 1e-3, **exp)


class _Resolver:
    """The network layer's resolver (nominal or calibrated), except for
    populations of the hardware cell type whose cells are given."""

    def __init__(self, base):
        self.base = base

    def check(self, conn):
        self.base.check(conn)

    def available(self, profile):
        return self.base.available(profile)

    def cells(self, profile, neurons, params):
        if "_cells" in params:
            return {name: np.full(len(neurons), int(v)) for name, v in params["_cells"].items()}
        return self.base.cells(profile, neurons, params)


def build_and_run(st: State, t_ms: float):
    """Build the network layer's Network from every population and projection
    and run it for the segment so far (0 .. t_ms)."""
    from host.network import Network, FromMatrix, CellResolver, CalibratedResolver
    p = st.profile
    base = CalibratedResolver(st.calibration) if st.calibration is not None else CellResolver()
    net = Network(resolver=_Resolver(base))
    duration = t_ms * 1e-3
    where = {}                          # PyNN population -> [(indices, network part)]
    kinds = {}
    for pop in st.populations:
        groups = pop.celltype.chip_groups(pop, p, t_ms)
        kinds[pop] = pop.celltype.kind
        parts = []
        for k, (idx, spec) in enumerate(groups):
            label = f"{pop.label}.{k}"
            if pop.celltype.kind == "source":
                part = net.spike_source([np.asarray(t, float) * 1e-3 for t in spec], label=label)
                part.ms = [np.asarray(t, float) for t in spec]           # as given, for the recording
            else:
                params = dict(spec)
                cells = params.pop("_cells", None)
                part = net.population(len(idx), label=label, **params)
                if cells is not None:
                    part.params["_cells"] = cells
            parts.append((np.asarray(idx), part))
        where[pop] = parts
    # Signed currents (chip amperes) or integer weights per (pre part, post part).
    pair = {}
    plastic = {}                        # pair key -> (PyNN projection, [(connection indices, rows a, columns b)])
    for proj in st.projections:
        pre_i, post_i, w, d = proj._connection_arrays()
        rule = getattr(proj.synapse_type, "plasticity_rule", None)
        if rule is not None:
            w = proj.segment_weights(w)  # a replayed segment starts from its first weights
        if len(w) == 0:
            continue
        bad = (d < -1e-9) | (d > st.max_delay + 1e-9)
        if np.any(bad):
            raise errors.ConnectionError(
                f"{proj.label}: delay {d[bad][0]:g} ms; the chip has no programmable delays: every synapse acts "
                f"after one integration step ({st.chip_step:g} ms); delays 0 .. {st.max_delay:g} ms (the larger of "
                "setup's min_delay and two steps) are accepted as that latency")
        if np.any(d > 2 * st.chip_step + 1e-9) and not st.warned_delay:
            st.warned_delay = True
            warnings.warn(f"delays up to {d.max():g} ms are realised as the chip's latency of one step "
                          f"({st.chip_step:g} ms): it has no programmable delays")
        pre_pop, post_pop = proj.pre_population, proj.post_population
        for (pi, ppart) in where[pre_pop]:
            for (qi, qpart) in where[post_pop]:
                sel = np.isin(pre_i, pi) & np.isin(post_i, qi)
                if not sel.any():
                    continue
                a = np.searchsorted(pi, pre_i[sel])
                b = np.searchsorted(qi, post_i[sel])
                key = (id(ppart), id(qpart)) if rule is None else (id(ppart), id(qpart), id(proj))
                if rule is not None:
                    if len(set(zip(a.tolist(), b.tolist()))) < len(a):
                        raise errors.ConnectionError(f"{proj.label}: two plastic connections between one pair of "
                                                     "neurons; the chip has one synapse per pair and row")
                    plastic.setdefault(key, (proj, []))[1].append((np.nonzero(sel)[0], a, b))
                entry = pair.setdefault(key, [ppart, qpart, np.zeros((ppart.size, qpart.size)),
                                              np.zeros((ppart.size, qpart.size))])
                ww = w[sel]
                if post_pop.celltype.kind == "chip":
                    ww = ww.astype(float)
                else:
                    cm = np.asarray(post_pop.celltype.cm_of(post_pop))[qi][b]
                    if hasattr(post_pop.celltype, "weight_current"):   # conductance-based cells: uS -> nA
                        ww = post_pop.celltype.weight_current(post_pop, proj.receptor_type, ww, qi[b])
                    ww = ww * chip_amps_per_na(p, cm)        # nA -> chip amperes
                target = entry[2] if proj.receptor_type == "excitatory" else entry[3]
                np.add.at(target, (a, b), np.abs(ww))
                if rule is not None:         # the bound the rule drives weights to must be representable
                    amps = _weight_scale(p, post_pop, qpart, where, proj.receptor_type)
                    entry.append((proj.receptor_type, rule.w_max * (1.0 if amps is None else amps)))
    # Gains: per post part and sign, the smallest gm cell that reaches the largest current.
    wmax = (1 << p.weight_bits) - 1
    i_max = p.analog.i_max
    dropped = 0
    gm = {}
    for key, (ppart, qpart, exc, inh, *bound) in pair.items():
        for which, m in (("gm_exc", exc), ("gm_inh", inh)):
            if "_cells" not in qpart.params:
                bounds = [b for r, b in bound if (r == "excitatory") == (which == "gm_exc")]
                top = max([float(m.max(initial=0))] + bounds)
                gm[(id(qpart), which)] = max(gm.get((id(qpart), which), 0.0), top)
    gm_cell = {}
    for pop, parts in where.items():
        if kinds[pop] != "neuron":
            continue
        for idx, part in parts:
            for which in ("gm_exc", "gm_inh"):
                top = gm.get((id(part), which), 0.0)
                if top == 0:
                    continue
                cell = int(np.ceil(top / i_max * CELL_MAX - 1e-9))
                if cell > CELL_MAX:
                    cm = np.asarray(pop.celltype.cm_of(pop))[idx]
                    raise errors.ConnectionError(
                        f"{pop.label}: a synaptic weight of {top / chip_amps_per_na(p, cm.min()):g} nA "
                        f"({'excitatory' if which == 'gm_exc' else 'inhibitory'}, summed over projections) is beyond "
                        f"the chip's 0 .. {max_weight_na(p, cm.min()):g} nA for cm = {cm.min():g} nF")
                part.params[which] = cell
                gm_cell[(id(part), which)] = cell
    plastic_parts = []                  # (network projection, PyNN projection, pieces, unit, rule, post part)
    for key, (ppart, qpart, exc, inh, *bound) in pair.items():
        chip = "_cells" in qpart.params
        for sign, m, which in ((1, exc, "gm_exc"), (-1, inh, "gm_inh")):
            if key in plastic:
                proj, pieces = plastic[key]
                if (sign < 0) != (proj.receptor_type != "excitatory"):
                    continue
                unit = 1.0 if chip else gm_cell[(id(qpart), which)] / CELL_MAX * i_max / wmax
                q = np.round(m / unit)
                if chip and (np.any(q != m) or q.max(initial=0) > wmax):
                    raise errors.ConnectionError(f"weights onto {qpart.label} (the hardware cell type) are integers of "
                                                 f"the weight field, 0 .. {wmax}; got {m.max():g}")
                mask = np.zeros(m.shape, bool)
                for _, a, b in pieces:
                    mask[a, b] = True
                nproj = net.project(ppart, qpart, FromMatrix(sign * q.astype(np.int64)), plastic=True, mask=mask,
                                    inhibitory=sign < 0, label=proj.label)
                plastic_parts.append((nproj, proj, pieces, unit, proj.synapse_type.plasticity_rule, qpart))
                continue
            if not m.any():
                continue
            if chip:
                q = m
                if np.any(q != np.round(q)) or q.max() > wmax:
                    raise errors.ConnectionError(
                        f"weights onto {qpart.label} (the hardware cell type) are integers of the weight field, "
                        f"0 .. {wmax}; got {q.max():g}")
            else:
                unit = gm_cell[(id(qpart), which)] / CELL_MAX * i_max / wmax
                q = np.round(m / unit)
                dropped += int(((m > 0) & (q == 0)).sum())
            if q.any():
                net.project(ppart, qpart, FromMatrix(sign * q.astype(np.int64)))
    if dropped:
        warnings.warn(f"{dropped} synapse(s) weaker than half the chip's weight step were left out")
    # Recording of v: one neuron through the membrane ADC, several through their column ADCs.
    vrec = []
    for rec in st.recorders:
        for var, ids in rec.recorded.items():
            if var.name == "v" and ids:
                vrec.append((rec.population, sorted(ids), float(rec.sampling_interval)))
    n_v = sum(len(ids) for _, ids, _ in vrec)
    if n_v > 1 and not p.correlation:
        raise MembraneRecordingError(f"v of {n_v} neurons; the {p.name} chip has one membrane ADC and no column "
                                     "ADCs: record 'v' of one neuron per run")
    v_parts = []                        # (PyNN population, ids, network part, positions in the part)
    for pop, ids, _ in vrec:
        k = np.asarray([pop.id_to_index(i) for i in ids], np.int64)
        for idx, part in where[pop]:
            inside = np.isin(k, idx)
            if inside.any():
                pos = np.searchsorted(idx, k[inside])
                v_parts.append((pop, [ids[j] for j in np.flatnonzero(inside)], part, pos))
                if n_v == 1:
                    part.record("v", neuron=int(pos[0]))
                else:
                    part.record("v_column", neurons=pos)
    column_period = min((dt for _, _, dt in vrec), default=st.dt) * 1e-3
    learning = None
    if plastic_parts:
        learning = _start_rules(st, net, plastic_parts, where)
    res = net.run(st.conn, duration, seed=st.seed + st.segment_counter, column_period=column_period)
    if learning is not None:
        _learned_weights(st, net, plastic_parts, where, learning)
    if res.events_dropped:
        warnings.warn(f"{res.events_dropped} spike events were dropped by the chip's event FIFO")
    return RunData(where, kinds, res, t_ms, v_parts, dropped, n_v == 1)


def _weight_scale(p, pop, qpart, where, receptor):
    """Chip amperes per PyNN weight unit (nA, or uS onto conductance-based cells at their driving
    force) onto a post part's neurons: one value, because a rule's bounds are one integer per array;
    None onto the hardware cell type (integer weights)."""
    if pop.celltype.kind == "chip":
        return None
    idx = next(idx for idx, part in where[pop] if part is qpart)
    scale = chip_amps_per_na(p, np.asarray(pop.celltype.cm_of(pop), float)[idx])
    if hasattr(pop.celltype, "weight_current"):                 # uS -> nA at the driving force at rest
        scale = scale * pop.celltype.weight_current(pop, receptor, np.ones(len(idx)), idx)
    if np.ptp(scale) > 1e-9 * np.max(scale):
        raise errors.InvalidParameterValueError(
            f"{pop.label}: plastic synapses onto neurons whose weights map to different currents (cm, or v_rest and "
            "e_rev of a conductance-based cell, differ); the rule's weight bounds are one integer per synapse array: "
            "give those neurons one value")
    return float(scale[0])


def _start_rules(st, net, plastic_parts, where):
    """Place and configure the network, then start the rules on the PPUs of the arrays with plastic rows."""
    from .plasticity import PlasticRun
    p = st.profile
    pl = net.configure(st.conn)
    rules = {}
    for nproj, proj, pieces, unit, rule, qpart in plastic_parts:
        amps = _weight_scale(p, proj.post_population, qpart, where, proj.receptor_type)
        scale = 1.0 if amps is None else amps / unit                             # PyNN weight -> weight field
        bounds = (rule, int(np.floor(rule.w_max * scale + 1e-9)), int(np.ceil(rule.w_min * scale - 1e-9)))
        if amps is None and (bounds[1] != rule.w_max or bounds[2] != rule.w_min):
            raise errors.InvalidParameterValueError(f"{proj.label}: w_min and w_max onto the hardware cell type are "
                                                    "integers of the weight field")
        if bounds[1] < (1 << p.weight_bits) // 2:
            warnings.warn(f"{proj.label}: w_max = {rule.w_max:g} is {bounds[1]} of the {p.weight_bits}-bit weight "
                          "field, because a larger weight onto the same neurons sets the scale; the rule's 8-bit "
                          "steps (floor(m x 2 (w_max - w) / 128)) mostly vanish that low: keep static weights onto "
                          "plastic neurons at most w_max")
        for arr in np.unique(pl.neurons[qpart] // p.columns):
            old = rules.setdefault(int(arr), bounds)
            if old[0].key() != rule.key() or old[1:] != bounds[1:]:
                raise errors.InvalidParameterValueError(
                    f"{proj.label}: plastic synapses on synapse array {arr} with another rule or weight bounds in the "
                    f"chip's units (w_max {old[1]} and {bounds[1]} of the weight field): one rule runs per array; give "
                    "the projections onto it one rule and equal cm")
    run = PlasticRun(st.conn, pl, rules)
    run.start(p)
    return run


def _learned_weights(st, net, plastic_parts, where, learning):
    """Stop the rules, read the plastic synapses and write their weights (PyNN units) into the connections."""
    p = st.profile
    st.rule_updates, st.rule_overruns = learning.finish()
    held = net.read_weights_of(st.conn, [part[0] for part in plastic_parts])    # one read of the synapses
    for (nproj, proj, pieces, unit, rule, qpart), w in zip(plastic_parts, held):
        w = np.abs(w).astype(float) * unit                                       # chip amperes (or integers)
        post = proj.post_population
        amps = _weight_scale(p, post, qpart, where, proj.receptor_type)
        # PyNN's signs: inhibitory weights negative onto current-based cells, conductances positive
        sign = -1.0 if proj.receptor_type != "excitatory" and not post.celltype.conductance_based else 1.0
        for conn_idx, a, b in pieces:
            vals = w[a, b] if amps is None else w[a, b] / amps
            for k, v in zip(conn_idx, vals):
                proj.connections[k].weight = sign * float(v)


class RunData:
    """Spikes (ms, per PyNN population index) and the membrane of one run."""

    def __init__(self, where, kinds, res, t_ms, v_parts, dropped, one_membrane):
        self.t = t_ms
        self.dropped_synapses = dropped
        self.events_dropped = res.events_dropped
        self.spikes = {}
        for pop, parts in where.items():
            times, index = [], []
            for idx, part in parts:
                if kinds[pop] == "source":
                    for ch, tt in enumerate(part.ms):
                        tt = tt[tt < t_ms]
                        times.append(tt)
                        index.append(np.full(len(tt), idx[ch]))
                else:
                    t, i = res.spikes(part)
                    times.append(t * 1e3)
                    index.append(idx[i])
            t = np.concatenate(times) if times else np.zeros(0)
            i = np.concatenate(index).astype(np.int64) if index else np.zeros(0, np.int64)
            order = np.argsort(t, kind="stable")
            self.spikes[pop] = (t[order], i[order])
        #: PyNN population -> {id: (times ms, v mV)}: the membrane ADC's samples of one neuron, or the
        #: column ADCs' of several
        self.membranes = {}
        for pop, ids, part, pos in v_parts:
            if one_membrane:
                t, v = res.membrane()
                traces = [(t * 1e3, chip_to_mv(v))]
            else:
                t, v = res.column_membranes(part)
                order = np.searchsorted(part.column_neurons, pos)
                traces = [(t * 1e3, chip_to_mv(v[:, j])) for j in order]
            self.membranes.setdefault(pop, {}).update(zip(ids, traces))
