"""Cell and synapse types of the PyNN front end: PyNN's standard types that
map onto the chip, and `TwinNeuron`, the chip's own neuron (cell values, as
pynn-brainscales' HXNeuron).  docs/pynn.md gives every mapping and range."""
from __future__ import annotations

import warnings

import numpy as np

from pyNN import errors
from pyNN.parameters import ParameterSpace
from pyNN.standardmodels import cells, receptors, synapses, build_translations, StandardCellType

from . import simulator
from .simulator import state


def _values(pop, name):
    v = pop._parameters[name]
    return np.broadcast_to(np.asarray(v), (pop.size,)) if np.ndim(v) == 0 else np.asarray(v)


def _identity(names):
    return build_translations(*[(n, n) for n in names])


def _group(keys):
    """Indices of equal keys, in order of first appearance."""
    out = {}
    for i, k in enumerate(keys):
        out.setdefault(k, []).append(i)
    return [(np.array(v, np.int64), k) for k, v in out.items()]


class IF_curr_exp(cells.IF_curr_exp):
    __doc__ = cells.IF_curr_exp.__doc__ + """
    On the chip: the LIF mode of its AdEx neuron with exponential current
    synapses, the same equations.  i_offset enters as the shift of the rest
    potential it causes (v_rest + i_offset tau_m / cm: exact for this model);
    cm scales the weights (the chip's capacitance is fixed).  Initial values of
    v other than v_rest are not available: the chip starts at rest."""
    translations = _identity(cells.IF_curr_exp.default_parameters)
    kind = "neuron"

    def cm_of(self, pop):
        return _values(pop, "cm").astype(float)

    def chip_groups(self, pop, profile, t_ms):
        return _neuron_groups(self, pop, profile, simulator.lif_params)


class EIF_cond_exp_isfa_ista(cells.EIF_cond_exp_isfa_ista):
    __doc__ = cells.EIF_cond_exp_isfa_ista.__doc__ + """
    On the chip: its AdEx neuron with the exponential term and adaptation on
    (docs/pynn.md "EIF_cond_exp_isfa_ista").  The neuron maps exactly:
    v_thresh is V_T of the exponential term, v_spike the spike threshold;
    i_offset enters as the rest v_rest + i_offset / (g_L + a), g_L = cm /
    tau_m (exact, with the adaptation current shifted by a constant: the
    chip's neuron starts at the model's rest with i_offset, v = that rest and
    w = a i_offset / (g_L + a)).  The synapses are conductance-based, the
    chip's current-based: a weight g (uS) acts as the current g x |e_rev -
    v_rest| (the driving force at rest); a warning per run names the size of
    the approximation.  v and spikes are recordable (not w, gsyn)."""
    translations = _identity(cells.EIF_cond_exp_isfa_ista.default_parameters)
    recordable = ["spikes", "v"]
    kind = "neuron"

    def cm_of(self, pop):
        return _values(pop, "cm").astype(float)

    def chip_groups(self, pop, profile, t_ms):
        pop._warned_conductance = set()
        return _neuron_groups(self, pop, profile, simulator.adex_params)

    def weight_current(self, pop, receptor, w, index):
        """Conductance weights (uS) onto neurons `index` -> currents (nA) at the
        driving force at rest; warns once per run and receptor with the relative
        change of the driving force between v_rest and v_thresh."""
        rest = _values(pop, "v_rest").astype(float)[index]
        e_rev = _values(pop, "e_rev_E" if receptor == "excitatory" else "e_rev_I").astype(float)[index]
        force = e_rev - rest
        wrong = force <= 0 if receptor == "excitatory" else force >= 0
        if np.any(wrong):
            k = int(np.flatnonzero(wrong)[0])
            name = "e_rev_E" if receptor == "excitatory" else "e_rev_I"
            raise errors.InvalidParameterValueError(
                f"{pop.label}[{int(index[k])}]: {name} = {e_rev[k]:g} mV with v_rest = {rest[k]:g} mV: the chip's "
                f"{receptor} synapses are current-based, the driving force at rest must be "
                f"{'positive' if receptor == 'excitatory' else 'negative'}")
        if receptor not in getattr(pop, "_warned_conductance", set()):
            pop._warned_conductance = getattr(pop, "_warned_conductance", set()) | {receptor}
            thresh = _values(pop, "v_thresh").astype(float)[index]
            change = np.max(np.abs(thresh - rest) / np.abs(force))
            warnings.warn(f"{pop.label}: EIF_cond_exp_isfa_ista {receptor} synapses are conductance-based, the "
                          f"chip's current-based: a weight g (uS) acts as the current g x |e_rev - v_rest| (the "
                          f"driving force at rest); between v_rest and v_thresh the driving force changes by up to "
                          f"{change:.0%}")
        return w * np.abs(force)


def _neuron_groups(celltype, pop, profile, to_network):
    """Network-layer parameter groups of a neuron population: neurons with
    equal parameters share a part; a range error names the neuron."""
    names = list(celltype.default_parameters)
    arrays = {n: _values(pop, n).astype(float) for n in names}
    keys = []
    for i in range(pop.size):
        p = {n: float(arrays[n][i]) for n in names}
        try:
            keys.append(tuple(sorted(to_network(profile, p).items())))
        except errors.InvalidParameterValueError as e:
            raise errors.InvalidParameterValueError(f"{pop.label}[{i}]: {e}") from None
    return [(idx, dict(k)) for idx, k in _group(keys)]


class LIF(cells.LIF):
    __doc__ = cells.LIF.__doc__ + """
    A component of PointNeuron (with CurrExpPostSynapticResponse receptors):
    the chip's neuron in its LIF mode, mapped as IF_curr_exp."""
    translations = _identity(cells.LIF.default_parameters)


class AdExp(cells.AdExp):
    __doc__ = cells.AdExp.__doc__ + """
    A component of PointNeuron (with CurrExpPostSynapticResponse receptors):
    the chip's AdEx neuron, mapped as EIF_cond_exp_isfa_ista's neuron."""
    translations = _identity(cells.AdExp.default_parameters)


class CurrExpPostSynapticResponse(receptors.CurrExpPostSynapticResponse):
    __doc__ = receptors.CurrExpPostSynapticResponse.__doc__ + """
    The chip's synapse: a PointNeuron takes one named 'excitatory' and one
    named 'inhibitory' (its two synaptic inputs)."""
    translations = _identity(receptors.CurrExpPostSynapticResponse.default_parameters)


def _getter(name):
    """A translation by name (the flat names of PointNeuron have dots: no expression)."""
    return lambda **p: p[name]


#: PointNeuron's neuron components and the mapping of each (with the receptors' tau_syn).
_COMPONENTS = {"LIF": "lif_params", "AdExp": "adex_params"}


class PointNeuron(cells.PointNeuron):
    __doc__ = """A neuron composed of a neuron model and named post-synaptic
    responses (PyNN's composition API).  On the chip: LIF or AdExp with
    CurrExpPostSynapticResponse receptors named 'excitatory' and 'inhibitory'
    (one or both): exactly the chip's neuron and its two exponential current
    synapses.  Parameters are flat: the neuron's names and
    'excitatory.tau_syn', 'inhibitory.tau_syn' (pop.get, pop.set)."""
    kind = "neuron"
    conductance_based = False

    def __init__(self, neuron, **post_synaptic_receptors):
        kind = type(neuron).__name__
        if not isinstance(neuron, (LIF, AdExp)):
            raise errors.NoModelAvailableError(
                f"PointNeuron({kind}): the chip's neuron is LIF or AdExp (host.pynn.LIF, host.pynn.AdExp)")
        for name, psr in post_synaptic_receptors.items():
            if name not in ("excitatory", "inhibitory") or not isinstance(psr, CurrExpPostSynapticResponse):
                raise errors.NoModelAvailableError(
                    f"PointNeuron receptor {name}={type(psr).__name__}: the chip has one excitatory and one "
                    "inhibitory exponential current synapse per neuron: CurrExpPostSynapticResponse named "
                    "'excitatory' and 'inhibitory'")
        cells.PointNeuron.__init__(self, neuron, **post_synaptic_receptors)
        flat = dict(neuron.parameter_space.items())
        defaults = dict(neuron.default_parameters)
        for name, psr in post_synaptic_receptors.items():
            flat[f"{name}.tau_syn"] = psr.parameter_space["tau_syn"]
            defaults[f"{name}.tau_syn"] = psr.default_parameters["tau_syn"]
        self.default_parameters = defaults
        self.translations = {n: {"translated_name": n, "forward_transform": _getter(n),
                                 "reverse_transform": _getter(n), "type": "simple"} for n in defaults}
        self.parameter_space = ParameterSpace(flat, self.get_schema(), shape=None)
        self._map = getattr(simulator, _COMPONENTS[kind])

    recordable = ["spikes", "v"]

    @property
    def native_parameters(self):
        return self.translate(self.parameter_space)

    def simple_parameters(self):
        return list(self.default_parameters)

    def scaled_parameters(self):
        return []

    def computed_parameters(self):
        return []

    def computed_parameters_include(self, parameter_names):
        return False

    def get_native_names(self, *names):
        return list(names) if names else list(self.default_parameters)

    def cm_of(self, pop):
        return _values(pop, "cm").astype(float)

    def chip_groups(self, pop, profile, t_ms):
        return _neuron_groups(self, pop, profile, self._network_params)

    def _network_params(self, profile, p):
        p = dict(p)
        p["tau_syn_E"] = p.pop("excitatory.tau_syn", 5.0)     # an absent receptor: no synapse uses it
        p["tau_syn_I"] = p.pop("inhibitory.tau_syn", 5.0)
        return self._map(profile, p)


#: The hardware cell type's parameters: the chip's per-neuron cells by the role
#: they play (isa/profiles.py cell_roles), named as on dls/hx.
TWIN_CELLS = {"v_leak": "e_l", "v_reset": "v_reset", "v_threshold": "v_th", "i_bias_leak": "i_leak",
              "i_bias_syn_exc_tau": "i_tau_exc", "i_bias_syn_inh_tau": "i_tau_inh",
              "i_bias_syn_exc_gm": "i_gm_exc", "i_bias_syn_inh_gm": "i_gm_inh"}


class TwinNeuron(StandardCellType):
    """The chip's own neuron (the LIF mode of its AdEx circuit), set by cell
    values 0..1022 as they go to the parameter memory (pynn-brainscales'
    HXNeuron does the same with the BrainScaleS-2 cells), no calibration
    applied; tau_refrac in ms (the digital refractory counter).  Weights of
    projections onto it are integers of the weight field (0..63 on dls/hx,
    negative for inhibitory).  v is recorded in mV through the same map as
    IF_curr_exp (docs/pynn.md)."""
    default_parameters = dict(v_leak=341, v_reset=298, v_threshold=511, i_bias_leak=51, i_bias_syn_exc_tau=102,
                              i_bias_syn_inh_tau=102, i_bias_syn_exc_gm=100, i_bias_syn_inh_gm=100, tau_refrac=2.0)
    translations = _identity(default_parameters)
    recordable = ["spikes", "v"]
    conductance_based = False
    default_initial_values = {"v": -65.0}
    units = dict({k: "dimensionless" for k in TWIN_CELLS}, tau_refrac="ms", v="mV")
    kind = "chip"

    def chip_groups(self, pop, profile, t_ms):
        keys = []
        for i in range(pop.size):
            cells_ = {}
            for name, role in TWIN_CELLS.items():
                v = float(_values(pop, name)[i])
                if v != round(v) or not 0 <= v <= simulator.CELL_MAX:
                    raise errors.InvalidParameterValueError(
                        f"{pop.label}[{i}]: {name} = {v:g}; cell values are integers 0 .. {simulator.CELL_MAX}")
                cells_[profile.cell_for(role)] = int(v)
            tr = float(_values(pop, "tau_refrac")[i])
            if not 0 <= tr <= 1000.0:
                raise errors.InvalidParameterValueError(f"{pop.label}[{i}]: tau_refrac = {tr:g} ms outside 0 .. 1000 ms")
            keys.append((tuple(sorted(cells_.items())), tr))
        return [(idx, dict(tau_refrac=k[1] * 1e-3, _cells=dict(k[0]))) for idx, k in _group(keys)]


def _times(seq):
    return np.asarray(seq.value if hasattr(seq, "value") else seq, float)


class _PlayedSource:
    """A spike source drawn or given on the host and played into the chip as
    timed events.  The trains of a segment grow run by run: `extend` appends
    the spikes of [horizon, t_ms) to pop._trains; what was played stays, so a
    continued run() replays the same input (the chip replays the segment)."""
    kind = "source"

    def reset_trains(self, pop):
        pop._trains, pop._horizon = None, 0.0

    def check(self, pop):
        """Raise on parameters the source cannot play (before anything is drawn)."""

    def begin(self, pop):
        """The segment's first run: set up what `extend` keeps."""

    def chip_groups(self, pop, profile, t_ms):
        self.check(pop)
        if getattr(pop, "_trains", None) is None:
            pop._trains, pop._horizon = [np.zeros(0) for _ in range(pop.size)], 0.0
            self.begin(pop)
        if t_ms > pop._horizon:
            self.extend(pop, t_ms)
            pop._horizon = t_ms
        return [(np.arange(pop.size), [t[t < t_ms] for t in pop._trains])]


class SpikeSourceArray(_PlayedSource, cells.SpikeSourceArray):
    __doc__ = cells.SpikeSourceArray.__doc__ + """
    spike_times set between runs of a segment take effect from the current
    time on (the spikes already played stay), as on PyNN's software backends."""
    translations = _identity(["spike_times"])

    def check(self, pop):
        for i, seq in enumerate(_values(pop, "spike_times")):
            t = _times(seq)
            if np.any(t < 0):
                raise errors.InvalidParameterValueError(f"{pop.label}[{i}]: negative spike time {t.min():g} ms")
            if np.any(np.diff(t) < 0):
                raise errors.InvalidParameterValueError(f"{pop.label}[{i}]: spike times not in increasing order")

    def extend(self, pop, t_ms):
        for i, seq in enumerate(_values(pop, "spike_times")):
            t = _times(seq)
            pop._trains[i] = np.concatenate([pop._trains[i], t[(t >= pop._horizon) & (t < t_ms)]])


class SpikeSourcePoisson(_PlayedSource, cells.SpikeSourcePoisson):
    __doc__ = cells.SpikeSourcePoisson.__doc__ + """
    Drawn on the host (numpy, seeded by setup(seed=...), the population and the
    segment) and played into the chip as timed events; a later run() of the
    same segment keeps the spikes drawn so far and draws the new interval."""
    translations = _identity(["rate", "start", "duration"])

    def extend(self, pop, t_ms):
        rate = _values(pop, "rate").astype(float)
        start = _values(pop, "start").astype(float)
        stop = start + _values(pop, "duration").astype(float)
        if np.any(rate < 0):
            raise errors.InvalidParameterValueError(f"{pop.label}: negative rate {rate.min():g} Hz")
        rng = np.random.default_rng([state.seed, pop._index, state.segment_counter, int(round(pop._horizon * 1000))])
        for i in range(pop.size):
            a, b = max(pop._horizon, start[i]), min(t_ms, stop[i])
            if b > a and rate[i] > 0:
                new = np.sort(rng.uniform(a, b, rng.poisson(rate[i] * (b - a) * 1e-3)))
                pop._trains[i] = np.concatenate([pop._trains[i], new])


class _RenewalSource(_PlayedSource):
    """A renewal process per channel drawn on the host: the first spike one
    interval after `start`, then interval after interval up to start +
    duration; one numpy stream per channel seeded by (setup's seed, the
    population, the segment, the channel), so a continued run() of the segment
    extends each train exactly as one longer run would."""

    def begin(self, pop):
        pop._rngs = [np.random.default_rng([state.seed, pop._index, state.segment_counter, i])
                     for i in range(pop.size)]
        pop._next = np.full(pop.size, np.nan)

    def extend(self, pop, t_ms):
        start = _values(pop, "start").astype(float)
        stop = start + _values(pop, "duration").astype(float)
        draw = self.intervals(pop)                 # channel -> (rng -> one interval, ms) or None: silent
        for i in range(pop.size):
            if draw[i] is None:
                continue
            rng = pop._rngs[i]
            if np.isnan(pop._next[i]):
                pop._next[i] = start[i] + draw[i](rng)
            end, t, new = min(t_ms, stop[i]), float(pop._next[i]), []
            while t < end:                  # one interval at a time: a continued run draws the same train
                new.append(t)
                t += draw[i](rng)
            pop._next[i] = t
            if new:
                pop._trains[i] = np.concatenate([pop._trains[i], new])


class SpikeSourceGamma(_RenewalSource, cells.SpikeSourceGamma):
    __doc__ = cells.SpikeSourceGamma.__doc__ + """
    Intervals drawn from Gamma(shape alpha, rate beta) (mean alpha / beta,
    PyNN's definition: rate beta / alpha, CV 1 / sqrt(alpha)), the first spike
    one interval after start, on the host (numpy, one stream per channel seeded
    by setup(seed=...), the population and the segment), played as timed
    events; a later run() of the same segment continues each renewal process
    where it stopped."""
    translations = _identity(["alpha", "beta", "start", "duration"])

    def intervals(self, pop):
        alpha = _values(pop, "alpha").astype(float)
        beta = _values(pop, "beta").astype(float)
        if np.any(alpha <= 0):
            raise errors.InvalidParameterValueError(f"{pop.label}: alpha = {alpha.min():g}; the shape must be > 0")
        if np.any(beta < 0):
            raise errors.InvalidParameterValueError(f"{pop.label}: negative beta {beta.min():g} Hz")
        return [None if b == 0 else (lambda rng, a=a, scale=1e3 / b: rng.gamma(a, scale))
                for a, b in zip(alpha, beta)]


class SpikeSourcePoissonRefractory(_RenewalSource, cells.SpikeSourcePoissonRefractory):
    __doc__ = cells.SpikeSourcePoissonRefractory.__doc__ + """
    Intervals tau_refrac + an exponential of mean 1000 / rate - tau_refrac ms
    (mean rate `rate`: PyNN's scenario's definition, NEST's dead time), the
    first spike one interval after start; drawn on the host like
    SpikeSourceGamma.  rate x tau_refrac must stay below 1 (1000 ms / s)."""
    translations = _identity(["rate", "tau_refrac", "start", "duration"])

    def intervals(self, pop):
        rate = _values(pop, "rate").astype(float)
        dead = _values(pop, "tau_refrac").astype(float)
        if np.any(rate < 0) or np.any(dead < 0):
            raise errors.InvalidParameterValueError(f"{pop.label}: negative rate or tau_refrac")
        too = rate * dead >= 1000.0
        if np.any(too):
            k = int(np.flatnonzero(too)[0])
            raise errors.InvalidParameterValueError(
                f"{pop.label}[{k}]: rate {rate[k]:g} Hz with tau_refrac {dead[k]:g} ms: the mean interval "
                f"{1000.0 / rate[k]:g} ms is not longer than the dead time")
        return [None if r == 0 else (lambda rng, d=d, mean=1e3 / r - d: d + rng.exponential(mean))
                for r, d in zip(rate, dead)]


class StaticSynapse(synapses.StaticSynapse):
    __doc__ = synapses.StaticSynapse.__doc__ + """
    Weights in nA (current-based cells; negative for inhibitory receptors) or,
    onto TwinNeuron, integers of the weight field.  The chip has no programmable
    delays: every synapse acts after one integration step; delays between 0
    and get_max_delay() (two steps) are accepted as that, others raise."""
    translations = build_translations(("weight", "weight"), ("delay", "delay"))

    def _get_minimum_delay(self):
        return state.min_delay
