"""A network layer on the host library: populations, projections, spike
sources and recordings, placed onto a chip and run over any connection.

    import host
    from host.network import Network, AllToAll, FixedProbability

    net = Network()
    stim = net.poisson_source(16, rate=20.0)                      # Hz, biological
    exc = net.population(32, tau_mem=10e-3, v_leak=0.40, v_threshold=0.60, v_reset=0.35)
    net.project(stim, exc, AllToAll(), weight=20)                 # signed integer weights
    exc.record("spikes")
    with host.connect("twin:dls") as conn:
        res = net.run(conn, duration=1.0)                         # biological seconds
        times, neurons = res.spikes(exc)                          # numpy arrays, biological s

Units: times and time constants in biological seconds (the chip runs
`profile.speedup` times faster); potentials in volts on the chip (0 ..
v_max); weights as signed integers in -w_max .. w_max of the chip's weight
field (6 bit on dls/hx, 4 bit on hicann), the sign choosing an excitatory or
an inhibitory synapse row.  Parameters become parameter-cell values through a
resolver: by default the chip's documented transfer functions (docs/model.md,
"Parameter cells"), i.e. uncalibrated; a calibration can stand in for it
(`Network(resolver=...)`, see `CellResolver`).

Placement (`Network.place(profile)`, done by `run`): populations take
neuron circuits in order (hx: array 0, then array 1), or those of the array
they are pinned to; every presynaptic
source (a spike-source channel or a neuron of a population that projects)
gets its own event address and, in each synapse array that holds its
targets, one excitatory row if any of its weights there is positive and one
inhibitory row if any is negative; the rows take the source's address
(`synapse_driver.config.use_address`), so one spike reaches all of them.
What does not fit (neurons, rows of an array, event addresses, weights
beyond the field, more than one membrane recording) raises PlacementError
naming the resource and by how much.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from isa.regmap import EVENT_ADDRESSES, LABEL_ROW_SHIFT, register_map
from isa.wire import FPGA_TICK_S

from .calibration_fit import ROLE as _ROLE

TICK_S = FPGA_TICK_S


class PlacementError(ValueError):
    """The network does not fit the chip; the message names the resource."""


# --------------------------------------------------------------------------- connectors
class Connector(ABC):
    """Which (pre, post) pairs a projection connects."""

    @abstractmethod
    def mask(self, n_pre: int, n_post: int) -> np.ndarray:
        """Boolean (n_pre, n_post): True where a synapse is."""


class AllToAll(Connector):
    def mask(self, n_pre, n_post):
        return np.ones((n_pre, n_post), bool)


class OneToOne(Connector):
    def mask(self, n_pre, n_post):
        if n_pre != n_post:
            raise ValueError(f"OneToOne needs equal sizes, got {n_pre} -> {n_post}")
        return np.eye(n_pre, dtype=bool)


@dataclass
class FixedProbability(Connector):
    p: float
    seed: int = 0

    def mask(self, n_pre, n_post):
        if not 0 <= self.p <= 1:
            raise ValueError(f"FixedProbability p = {self.p} outside 0..1")
        return np.random.default_rng(self.seed).random((n_pre, n_post)) < self.p


@dataclass
class FromMatrix(Connector):
    """Explicit weights: the matrix (n_pre, n_post) is the weight; 0 = no synapse."""
    weights: np.ndarray

    def mask(self, n_pre, n_post):
        w = np.asarray(self.weights)
        if w.shape != (n_pre, n_post):
            raise ValueError(f"FromMatrix weights of shape {w.shape}, the projection is {n_pre} x {n_post}")
        return w != 0


# --------------------------------------------------------------------------- network parts
#: The AdEx terms (docs/model.md "Neurons"), off (None) unless given: the
#: exponential term needs v_exp (V_T, chip volts) and delta_t (Delta_T, volts);
#: adaptation needs tau_w (biological s), with a (siemens, chip) and b
#: (amperes, chip) 0 unless given.  `adex_cells` has their transfers and ranges.
ADEX_DEFAULTS = dict(v_exp=None, delta_t=None, a=None, b=None, tau_w=None)
NEURON_DEFAULTS = dict(v_leak=0.40, v_reset=0.35, v_threshold=0.60, tau_mem=10e-3, tau_syn_exc=5e-3,
                       tau_syn_inh=5e-3, tau_refrac=2e-3, gm_exc=100, gm_inh=100, **ADEX_DEFAULTS)


def adex_modes(params: dict) -> dict:
    """The NeuronConfig switches a population's parameters ask for:
    {"exp_enable": 1} with v_exp and delta_t, {"adapt_enable": 1} with
    tau_w (and a, b); empty for the LIF.  Raises ValueError naming what
    is missing."""
    given = {k for k in ADEX_DEFAULTS if params.get(k) is not None}
    out = {}
    if given & {"v_exp", "delta_t"}:
        missing = sorted({"v_exp", "delta_t"} - given)
        if missing:
            raise ValueError(f"the exponential term needs v_exp and delta_t; {', '.join(missing)} not given")
        out["exp_enable"] = 1
    if given & {"a", "b", "tau_w"}:
        if "tau_w" not in given:
            raise ValueError("adaptation (a, b) needs tau_w")
        out["adapt_enable"] = 1
    return out


def adex_ranges(profile) -> dict:
    """(lo, hi, unit, transfer) of each AdEx parameter on the chip: the cell
    transfers of docs/model.md "Parameter cells" over cells 0 .. cell_max
    (tau_w and delta_t: 1 .. cell_max; the exponential term divides by Delta_T)."""
    a = profile.analog
    tau_lo = profile.hw_to_bio(a.tau_full_scale)
    return {"v_exp": (0.0, a.v_max, "V", f"V_T = cell / {profile.cell_max} x {a.v_max:g} V"),
            "delta_t": (a.delta_t_full_scale / profile.cell_max, a.delta_t_full_scale, "V",      # cell 0: no slope
                        f"Delta_T = cell / {profile.cell_max} x {a.delta_t_full_scale:g} V, cell >= 1"),
            "a": (0.0, a.c_mem / a.tau_full_scale, "S",
                  f"a = cell / {profile.cell_max} x c_mem / tau_full_scale = cell / {profile.cell_max} x "
                  f"{a.c_mem / a.tau_full_scale:g} S"),
            "b": (0.0, a.adapt_b_full_scale, "A", f"b = cell / {profile.cell_max} x {a.adapt_b_full_scale:g} A"),
            "tau_w": (tau_lo, tau_lo * profile.cell_max, "s",
                      f"tau_w = {tau_lo:g} s x {profile.cell_max} / cell, biological")}


def adex_cells(profile, params: dict) -> dict[str, int]:
    """Cell values of the AdEx parameters that are given (the nominal transfers
    of docs/model.md, the same on every neuron).  A value outside the chip's
    range raises PlacementError naming the parameter, the value and the range."""
    modes = adex_modes(params)
    if not modes:
        return {}
    a, top = profile.analog, profile.cell_max
    ranges = adex_ranges(profile)
    values = {k: params.get(k) for k in ADEX_DEFAULTS}
    if "adapt_enable" in modes:
        values["a"] = values["a"] if values["a"] is not None else 0.0
        values["b"] = values["b"] if values["b"] is not None else 0.0
    role = {"v_exp": "v_t", "delta_t": "i_exp", "a": "i_a", "b": "i_b", "tau_w": "i_tau_w"}
    out = {}
    for name, v in values.items():
        if v is None:
            continue
        v = float(v)
        lo, hi, unit, transfer = ranges[name]
        if not lo <= v <= hi:
            raise PlacementError(f"{name} = {v:g} {unit} is outside the {profile.name} chip's range {lo:g} .. "
                                 f"{hi:g} {unit} ({transfer})")
        if name == "tau_w":
            cell = round(a.tau_full_scale * top / profile.bio_to_hw(v))
        else:                                   # proportional to the cell: hi is the full scale
            cell = round(v / hi * top)
        out[profile.cell_for(role[name])] = int(cell)
    return out


#: Membrane samples a run records at most, through the membrane ADC (its period) or the column ADCs
#: (the reads' spacing): longer runs are sampled coarser.  The cost of a column sample is a piece
#: of chip advance (under 1 ms of wall time on dls, docs/performance.md), so this bounds a run's.
SAMPLES_PER_RUN = 4000


@dataclass(eq=False)
class Population:
    """n neurons with the same parameters (NEURON_DEFAULTS names them)."""
    size: int
    params: dict
    label: str
    array: int | None = None      # synapse array (neuron block) to place it on; None: the next free neurons
    recording: set = field(default_factory=set)
    v_neuron: int | None = None
    column_neurons: np.ndarray | None = None

    def record(self, what: str, neuron: int = 0, neurons=None) -> "Population":
        """'spikes'; 'v': the membrane of one neuron through the membrane ADC
        (10 bit, one per chip); 'v_column': the membranes of `neurons` (default
        all) through their column ADCs (8 bit, every neuron; dls and hx),
        sampled every `column_period` of Network.run."""
        if what == "spikes":
            self.recording.add("spikes")
        elif what == "v":
            if not 0 <= neuron < self.size:
                raise ValueError(f"{self.label}: neuron {neuron} outside 0..{self.size - 1}")
            self.v_neuron = neuron
        elif what == "v_column":
            idx = np.arange(self.size) if neurons is None else np.unique(np.asarray(neurons, np.int64))
            if idx.size and (idx.min() < 0 or idx.max() >= self.size):
                raise ValueError(f"{self.label}: neurons outside 0..{self.size - 1}")
            self.column_neurons = idx
        else:
            raise ValueError(f"cannot record {what!r}: 'spikes', 'v' or 'v_column'")
        return self


@dataclass(eq=False)
class SpikeSource:
    """n channels of spikes from the host: explicit times (a list of arrays,
    biological s) or Poisson trains (rate per channel, Hz) drawn per run."""
    size: int
    label: str
    times: list | None = None
    rate: np.ndarray | None = None
    seed: int = 0

    def trains(self, duration: float, seed: int) -> list[np.ndarray]:
        """One array of times per channel; Poisson channels drawn from (seed, source seed, channel)."""
        if self.times is not None:
            return [np.sort(np.asarray(t, float)) for t in self.times]
        rate = np.broadcast_to(np.asarray(self.rate, float), (self.size,))
        out = []
        for ch, r in enumerate(rate):
            rng = np.random.default_rng([seed, self.seed, ch])
            out.append(np.sort(rng.uniform(0, duration, rng.poisson(r * duration))))
        return out


@dataclass(eq=False)
class Projection:
    pre: SpikeSource | Population
    post: Population
    weights: np.ndarray           # (pre.size, post.size) signed integers, 0 = none
    label: str
    plastic: bool = False         # its rows come first in each array (a firmware rule updates rows 0 .. k-1)
    mask: np.ndarray | None = None    # synapses, where weight 0 is one too (plastic ones may start at 0)
    inhibitory: bool = False      # the row sign of its synapses of weight 0


#: Population parameter -> the calibrated quantity that sets it (host.calibration_fit.QUANTITIES).
PARAMETER_QUANTITY = {"v_leak": "leak", "v_reset": "reset", "v_threshold": "threshold", "tau_mem": "tau_mem",
                      "tau_syn_exc": "tau_syn_exc", "tau_syn_inh": "tau_syn_inh", "gm_exc": "psp_exc",
                      "gm_inh": "psp_inh"}


class CellResolver:
    """Parameter-cell values for a population's neurons: the documented,
    uncalibrated transfer functions of the chip (docs/model.md); gm_exc and
    gm_inh are cell values as they stand.  CalibratedResolver gives each
    neuron its own."""

    def check(self, conn) -> None:
        """Raise if this resolver does not belong to the chip behind `conn`."""

    def available(self, profile) -> np.ndarray | None:
        """Neurons placement may use (a boolean mask), None: all."""
        return None

    def cells(self, profile, neurons: np.ndarray, params: dict) -> dict[str, np.ndarray]:
        from .calibration_fit import nominal_cell
        n = len(neurons)
        out = {}
        for param, q in PARAMETER_QUANTITY.items():
            cell = profile.cell_for(_ROLE[q])
            if param.startswith("gm_"):
                out[cell] = np.full(n, int(params[param]))
            else:
                out[cell] = np.full(n, int(nominal_cell(q, _hardware(profile, param, params[param]), profile, None)))
        out.update({cell: np.full(n, v) for cell, v in adex_cells(profile, params).items()})
        return out


class CalibratedResolver(CellResolver):
    """Cells from a calibration of the chip (host.calibration.Calibration): each
    neuron gets the cell that puts it where the parameter says (its calibrated
    cell at the calibration's targets, elsewhere its transfer line,
    `Calibration.cells_for`).  gm_exc / gm_inh keep their meaning of the
    nominal resolver, a cell value of an ideal neuron: each neuron gets the PSP
    height an ideal one has at that cell (the nominal cell of the PSP target:
    the calibrated cells).  Placement uses only the neurons the
    calibration covers and calls usable (`Calibration.usable`), as the real
    stacks leave blacklisted neurons out."""

    def __init__(self, calibration):
        self.calibration = calibration

    def check(self, conn) -> None:
        c = self.calibration
        if (conn.profile.name, conn.serial) != (c.profile, c.serial):
            raise ValueError(f"the network's calibration is of {c.profile} serial {c.serial}, the connection "
                             f"{conn.url} is {conn.profile.name} serial {conn.serial}: calibrate that chip")

    def available(self, profile) -> np.ndarray:
        mask = np.zeros(profile.neurons, bool)
        mask[self.calibration.neurons[self.calibration.usable]] = True
        return mask

    def cells(self, profile, neurons: np.ndarray, params: dict) -> dict[str, np.ndarray]:
        from .calibration_fit import nominal_cell, nominal_slope
        c = self.calibration
        index = np.searchsorted(c.neurons, neurons)
        if np.any(index >= len(c.neurons)) or np.any(c.neurons[np.minimum(index, len(c.neurons) - 1)] != neurons):
            raise ValueError("neurons outside the calibration: place the network with this resolver")
        out = {}
        for param, q in PARAMETER_QUANTITY.items():
            value = _hardware(profile, param, params[param])
            if param.startswith("gm_"):                     # the PSP an ideal neuron has at that cell
                target = getattr(c.targets, q)
                value = (target if int(params[param]) == int(nominal_cell(q, target, profile, c.targets))
                         else float(params[param]) * nominal_slope(q, profile, c.targets))
            out[profile.cell_for(_ROLE[q])] = c.cells_for(q, value)[index]
        # A calibration has no AdEx quantities: their nominal transfer (docs/network.md).
        out.update({cell: np.full(len(neurons), v) for cell, v in adex_cells(profile, params).items()})
        return out


def _hardware(profile, param: str, value: float) -> float:
    """A population parameter in hardware units: time constants through the speed-up."""
    return profile.bio_to_hw(value) if param.startswith("tau_") else float(value)


# --------------------------------------------------------------------------- placement
@dataclass
class Placement:
    """Where everything went: neuron circuit of each population's neuron,
    event address of each source channel, rows of each (source, array, sign)."""
    neurons: dict                 # Population -> int array of neuron circuits
    addresses: dict               # SpikeSource | Population -> int array of event addresses
    rows: dict                    # (source part, channel, array, sign) -> row (array * rows + r)
    weights: np.ndarray           # (arrays * rows, columns) magnitudes
    drivers: dict                 # row -> (address, inhibitory, source)
    labels_of: dict               # neuron circuit -> address
    plastic_rows: np.ndarray = None   # per array: rows 0 .. k-1 carry the plastic projections' synapses


class Network:
    def __init__(self, resolver: CellResolver | None = None, calibration=None):
        """`calibration` (host.calibration.Calibration of the chip to run on):
        shorthand for resolver=CalibratedResolver(calibration)."""
        if calibration is not None and resolver is not None:
            raise ValueError("give a resolver or a calibration, not both")
        self.populations: list[Population] = []
        self.sources: list[SpikeSource] = []
        self.projections: list[Projection] = []
        self.resolver = resolver or (CalibratedResolver(calibration) if calibration is not None else CellResolver())

    # ---------------------------------------------------------------- building
    def population(self, size: int, label: str | None = None, array: int | None = None, **params) -> Population:
        """`size` neurons; `array`: place them on that synapse array's neurons
        (its rows then carry their inputs), else on the next free ones."""
        unknown = sorted(set(params) - set(NEURON_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown neuron parameter(s) {', '.join(unknown)}; "
                             f"parameters: {', '.join(NEURON_DEFAULTS)}")
        pop = Population(int(size), dict(NEURON_DEFAULTS, **params), label or f"population{len(self.populations)}",
                         array)
        try:
            adex_modes(pop.params)
        except ValueError as e:
            raise ValueError(f"{pop.label}: {e}") from None
        self.populations.append(pop)
        return pop

    def spike_source(self, times: list, label: str | None = None) -> SpikeSource:
        src = SpikeSource(len(times), label or f"source{len(self.sources)}", times=list(times))
        self.sources.append(src)
        return src

    def poisson_source(self, size: int, rate, label: str | None = None, seed: int = 0) -> SpikeSource:
        src = SpikeSource(int(size), label or f"source{len(self.sources)}", rate=np.asarray(rate, float), seed=seed)
        self.sources.append(src)
        return src

    def project(self, pre, post: Population, connector: Connector, weight=None, label: str | None = None,
                plastic: bool = False, mask: np.ndarray | None = None, inhibitory: bool = False) -> Projection:
        """Synapses pre -> post where the connector says; `weight` a signed
        integer or a (pre, post) matrix (FromMatrix carries its own).
        `plastic`: its rows are placed first in each synapse array, before
        every static row, so that a firmware rule given `rows` =
        Placement.plastic_rows[array] updates these synapses and no others.
        `mask` (pre, post): the synapses, including weight-0 ones (which
        then sit on an `inhibitory` or excitatory row); default: weight != 0."""
        synapses = None if mask is None else np.asarray(mask, bool)
        mask = connector.mask(pre.size, post.size)
        if isinstance(connector, FromMatrix):
            w = np.asarray(connector.weights)
        else:
            if weight is None:
                raise ValueError("project: give `weight` (or use FromMatrix)")
            w = np.broadcast_to(np.asarray(weight), mask.shape)
        w = np.where(mask, w, 0)
        if not np.all(np.asarray(w) == np.round(w)):
            raise ValueError("weights are integers of the chip's weight field (signed: the sign picks the row)")
        if synapses is not None and (synapses.shape != w.shape or np.any(w[~synapses] != 0)):
            raise ValueError(f"project: the mask ({synapses.shape}) must hold every weight != 0 of the {w.shape} "
                             "projection")
        proj = Projection(pre, post, w.astype(np.int64), label or f"projection{len(self.projections)}", plastic,
                          synapses, bool(inhibitory))
        self.projections.append(proj)
        return proj

    # ---------------------------------------------------------------- placement
    def place(self, profile) -> Placement:
        p = profile
        wmax = (1 << p.weight_bits) - 1
        total = sum(pop.size for pop in self.populations)
        if total > p.neurons:
            raise PlacementError(f"the network has {total} neurons, the {p.name} chip {p.neurons} "
                                 f"({total - p.neurons} too many)")
        ok = self.resolver.available(p)
        ok = np.ones(p.neurons, bool) if ok is None else ok
        usable = int(ok.sum())
        if total > usable:
            raise PlacementError(f"the network has {total} neurons, the {p.name} chip {usable} usable ones "
                                 f"(calibrated and within their bands; {total - usable} too many)")
        free = [[n for n in range(a * p.columns, (a + 1) * p.columns) if ok[n]] for a in range(p.synapse_arrays)]
        neurons = {}
        for pop in sorted(self.populations, key=lambda q: q.array is None):     # pinned populations first
            if pop.array is not None:
                if not 0 <= pop.array < p.synapse_arrays:
                    raise PlacementError(f"{pop.label}: array {pop.array}; the {p.name} chip has arrays "
                                         f"0..{p.synapse_arrays - 1}")
                pool = free[pop.array]
                if len(pool) < pop.size:
                    raise PlacementError(f"{pop.label}: {pop.size} neurons on array {pop.array}, {len(pool)} "
                                         f"{'usable ones ' if usable < p.neurons else ''}left there "
                                         f"({pop.size - len(pool)} too many)")
            else:
                pool = [n for f in free for n in f]
            take = pool[:pop.size]
            neurons[pop] = np.array(take, np.int64)
            taken = set(take)
            for f in free:
                f[:] = [n for n in f if n not in taken]
        for proj in self.projections:
            over = np.abs(proj.weights).max(initial=0)
            if over > wmax:
                raise PlacementError(f"{proj.label}: weight {over} beyond the {p.weight_bits}-bit weight field "
                                     f"(|w| <= {wmax})")
            if proj.post not in neurons or (isinstance(proj.pre, Population) and proj.pre not in neurons):
                raise ValueError(f"{proj.label}: a population of another network")
        # Event addresses: source channels first, then every neuron (spikes to the host carry one).
        addresses, nxt = {}, 0
        for src in self.sources:
            addresses[src] = np.arange(nxt, nxt + src.size)
            nxt += src.size
        labels_of = {}
        for pop in self.populations:
            addresses[pop] = np.arange(nxt, nxt + pop.size)
            for n, a in zip(neurons[pop], addresses[pop]):
                labels_of[int(n)] = int(a)
            nxt += pop.size
        if nxt > EVENT_ADDRESSES:
            raise PlacementError(f"the network needs {nxt} event addresses (source channels and neurons), "
                                 f"the chip has {EVENT_ADDRESSES} ({nxt - EVENT_ADDRESSES} too many)")
        # Rows: one per (source channel, array, sign) with synapses there.
        syn = {}                      # (pre, channel, array, sign) -> {column: magnitude}
        plastic = {}                  # the same keys -> whether their synapses are plastic
        for proj in self.projections:
            post = neurons[proj.post]
            for i, j in zip(*np.nonzero(proj.weights if proj.mask is None else proj.mask)):
                w = int(proj.weights[i, j])
                arr, col = divmod(int(post[j]), p.columns)
                key = (proj.pre, int(i), arr, 1 if w < 0 or (w == 0 and proj.inhibitory) else 0)
                cols = syn.setdefault(key, {})
                if col in cols:
                    raise PlacementError(f"{proj.label}: {proj.pre.label}[{i}] reaches {proj.post.label}[{j}] "
                                         "through two projections of the same sign; merge them into one")
                cols[col] = abs(w)
                if plastic.setdefault(key, proj.plastic) != proj.plastic:
                    raise PlacementError(f"{proj.label}: {proj.pre.label}[{i}] has plastic and static synapses of one "
                                         f"sign in array {arr}; they would share a row, and a rule updates whole rows: "
                                         "use separate sources for the plastic and the static synapses")
        used = np.zeros(p.synapse_arrays, int)
        rows, drivers = {}, {}
        weights = np.zeros((p.synapse_arrays * p.rows, p.columns), np.int64)
        for key in sorted(syn, key=lambda k: (k[2], not plastic[k], self._order(k[0]), k[1], k[3])):
            pre, ch, arr, inh = key
            if used[arr] >= p.rows:
                need = sum(1 for k in syn if k[2] == arr)
                raise PlacementError(f"synapse array {arr} needs {need} rows (one per source channel and sign), "
                                     f"the {p.name} chip has {p.rows} ({need - p.rows} too many)")
            row = arr * p.rows + used[arr]
            used[arr] += 1
            rows[key] = row
            for col, w in syn[key].items():
                weights[row, col] = w
            drivers[row] = (int(addresses[pre][ch]), inh, 2 if isinstance(pre, Population) else 0)
        v = [(pop, pop.v_neuron) for pop in self.populations if pop.v_neuron is not None]
        if len(v) > 1:
            raise PlacementError(f"{len(v)} membrane recordings ({', '.join(q.label for q, _ in v)}); the chip has "
                                 "one membrane ADC (1 too many)" if len(v) == 2 else
                                 f"{len(v)} membrane recordings; the chip has one membrane ADC ({len(v) - 1} too many)")
        plastic_rows = np.zeros(p.synapse_arrays, np.int64)
        for key, row in rows.items():
            if plastic[key]:
                plastic_rows[key[2]] += 1
        return Placement(neurons, addresses, rows, weights, drivers, labels_of, plastic_rows)

    def _order(self, part) -> int:
        parts = self.sources + self.populations
        return next(i for i, q in enumerate(parts) if q is part)

    # ---------------------------------------------------------------- configuration
    def configure(self, conn) -> Placement:
        """Place the network and write it to the chip (one program)."""
        import host
        p, rm = conn.profile, conn.regmap
        self.resolver.check(conn)
        pl = self.place(p)
        cell_addresses, cell_words = self._changed_cells(conn, pl, self.populations)
        prog = conn.program()
        prog.write(host.ChipOnly(), host.CapMemConfig(enable=1))
        words = host.synapse_words(rm, pl.weights, np.zeros_like(pl.weights))
        prog.write_words(rm.addresses("synapse", "weights"), words[0].ravel())
        prog.write_words(rm.addresses("synapse", "labels"), words[1].ravel())
        for a in range(p.synapse_arrays):
            for r in range(p.rows):
                row = a * p.rows + r
                if row in pl.drivers:
                    addr, inh, src = pl.drivers[row]
                    cfg = host.SynapseDriverConfig(enable=1, inhibitory=inh, gain=8, source=src, use_address=1,
                                                   address=addr)
                else:
                    cfg = host.SynapseDriverConfig(enable=0, inhibitory=0, gain=8, source=0, use_address=0,
                                                   address=0)
                prog.write(host.SynapseDriverOnChip(r, a), cfg)
        prog.write_words(cell_addresses, cell_words)
        placed = set()
        deferred = []                 # neurons switched on after the settling wait: they start the run at rest
        for pop in self.populations:
            ref_ticks = int(round(p.bio_to_hw(pop.params["tau_refrac"]) / TICK_S))
            clock = 0
            while -((-ref_ticks) >> clock) > 255:          # the counter holds 8 bits: coarser clock
                clock += 1
            if clock > 15:
                raise PlacementError(f"{pop.label}: tau_refrac {pop.params['tau_refrac']} s beyond the refractory "
                                     "counter")
            for k, n in enumerate(pl.neurons[pop]):
                n = int(n)
                placed.add(n)
                modes = adex_modes(pop.params)
                cfg = host.NeuronConfig(enable=1, refractory=-((-ref_ticks) >> clock), refractory_clock=clock,
                                        readout=int(pop.v_neuron == k), **modes)
                prog.write(host.NeuronOnChip(n), host.NeuronConfig(enable=0))
                deferred.append((n, cfg))
                prog.write(host.NeuronOnChip(n), host.NeuronLabel(label=pl.labels_of[n] << LABEL_ROW_SHIFT,
                                                                  enable=1))
        for n in range(p.neurons):
            if n not in placed:
                prog.write(host.NeuronOnChip(n), host.NeuronConfig(enable=0))
        prog.write(host.ChipOnly(), host.CrossbarConfig(loopback=0, recurrent=1, record=1))
        prog.timer_reset()
        prog.wait_until(int(round(200e-6 / TICK_S)))          # parameter cells settle
        for n, cfg in deferred:       # on now: at rest (V = E_l, w = 0) when the run starts
            prog.write(host.NeuronOnChip(n), cfg)
        conn.run(prog)
        self._placed = (conn, pl)
        return pl

    def set_params(self, conn, pop: Population, **params) -> None:
        """Change neuron parameters of a placed population (its cells are
        rewritten; they settle for 200 us of hardware time)."""
        import host
        unknown = sorted(set(params) - set(NEURON_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown neuron parameter(s) {', '.join(unknown)}")
        pl = self._placement(conn)
        modes = adex_modes(pop.params)
        new = dict(pop.params, **params)
        try:
            new_modes = adex_modes(new)
        except ValueError as e:
            raise ValueError(f"{pop.label}: {e}") from None
        pop.params.update(params)
        if new_modes != modes:                          # the NeuronConfig switches change: write it all
            self.configure(conn)
            return
        prog = conn.program()
        prog.write_words(*self._changed_cells(conn, pl, [pop]))
        prog.timer_reset()
        prog.wait_until(int(round(200e-6 / TICK_S)))
        conn.run(prog)

    def _changed_cells(self, conn, pl: Placement, populations) -> tuple[np.ndarray, np.ndarray]:
        """(addresses, words) of the populations' parameter cells whose value
        differs from what the chip holds (read first): a floating gate lands
        with a fresh error on every write, so a cell already right (a
        calibration just applied) is left as it landed."""
        p, rm = conn.profile, conn.regmap
        memory = "capmem" if p.param_memory == "capmem" else "floating_gate"
        table = rm.addresses(memory, "neuron").reshape(p.neurons, len(p.neuron_cells))
        value = rm.register(memory, "neuron").field("value")
        addresses, values = [], []
        for pop in populations:
            try:
                cells = self.resolver.cells(p, pl.neurons[pop], pop.params)
            except PlacementError as e:
                raise PlacementError(f"{pop.label}: {e}") from None
            for name, v in cells.items():
                addresses.append(table[pl.neurons[pop], p.neuron_cells.index(name)])
                values.append(np.asarray(v, np.int64))
        if not addresses:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        addresses, values = np.concatenate(addresses), np.concatenate(values)
        if values.min() < 0 or values.max() > value.limit:
            raise PlacementError(f"a parameter needs cell value {int(values.min() if values.min() < 0 else values.max())}"
                                 f", outside the cells' 0..{value.limit}: choose a parameter the chip can reach")
        prog = conn.program()
        held = prog.read_words(addresses)
        conn.run(prog)
        change = value.extract(held.values.astype(np.int64)) != values
        return addresses[change], values[change] << value.lsb

    def _placement(self, conn) -> Placement:
        placed = getattr(self, "_placed", None)
        if placed is None or placed[0] is not conn:
            return self.configure(conn)
        return placed[1]

    # ---------------------------------------------------------------- weights
    def write_weights(self, conn, proj: Projection, weights) -> None:
        """New weights for a placed projection.  A weight may change sign or
        appear where the placement gave its source a row of that sign in the
        target's array (a source with weights of both signs there has both);
        otherwise PlacementError: place the network again."""
        import host
        pl = self._placement(conn)
        p = conn.profile
        w = np.asarray(weights)
        if w.shape != proj.weights.shape:
            raise ValueError(f"{proj.label}: weights of shape {w.shape}, the projection is {proj.weights.shape}")
        if not np.all(w == np.round(w)):
            raise ValueError(f"{proj.label}: weights are integers of the chip's weight field")
        wmax = (1 << p.weight_bits) - 1
        if np.abs(w).max(initial=0) > wmax:
            raise PlacementError(f"{proj.label}: weight {np.abs(w).max()} beyond the weight field (|w| <= {wmax})")
        post = pl.neurons[proj.post]
        changes = []
        for i, j in zip(*np.nonzero((w != 0) | (proj.weights != 0))):
            arr, col = divmod(int(post[j]), p.columns)
            new_row = pl.rows.get((proj.pre, int(i), arr, 1 if w[i, j] < 0 else 0)) if w[i, j] else None
            if w[i, j] and new_row is None:
                kind = "inhibitory" if w[i, j] < 0 else "excitatory"
                raise PlacementError(f"{proj.label}: {proj.pre.label}[{i}] has no {kind} row in array {arr} for "
                                     f"{proj.post.label}[{j}]; place the network again with that sign")
            old_row = pl.rows[(proj.pre, int(i), arr, 1 if proj.weights[i, j] < 0 else 0)] if proj.weights[i, j] \
                else None
            changes.append((old_row, new_row, col, abs(int(w[i, j]))))
        for old_row, new_row, col, mag in changes:
            if old_row is not None:
                pl.weights[old_row, col] = 0
            if new_row is not None:
                pl.weights[new_row, col] = mag
        proj.weights = np.asarray(w, np.int64)
        words = host.synapse_words(conn.regmap, pl.weights, np.zeros_like(pl.weights))
        prog = conn.program()
        prog.write_words(conn.regmap.addresses("synapse", "weights"), words[0].ravel())
        conn.run(prog)

    def read_weights(self, conn, proj: Projection) -> np.ndarray:
        """The projection's signed weights as the chip holds them (excitatory
        minus inhibitory synapse of each pair)."""
        return self.read_weights_of(conn, [proj])[0]

    def read_weights_of(self, conn, projs: list[Projection]) -> list[np.ndarray]:
        """read_weights of several projections from one read of the synapse memory."""
        import host
        pl = self._placement(conn)
        p, rm = conn.profile, conn.regmap
        prog = conn.program()
        tw = prog.read_words(rm.addresses("synapse", "weights"))
        tl = prog.read_words(rm.addresses("synapse", "labels"))
        conn.run(prog)
        w, _ = host.synapse_values(rm, tw.values.reshape(p.synapse_arrays * p.rows, -1),
                                   tl.values.reshape(p.synapse_arrays * p.rows, -1))
        outs = []
        for proj in projs:
            out = np.zeros(proj.weights.shape, np.int64)
            post = pl.neurons[proj.post]
            for i in range(proj.weights.shape[0]):
                for j in range(proj.weights.shape[1]):
                    arr, col = divmod(int(post[j]), p.columns)
                    exc, inh = (pl.rows.get((proj.pre, i, arr, sign)) for sign in (0, 1))
                    out[i, j] = ((int(w[exc, col]) if exc is not None else 0)
                                 - (int(w[inh, col]) if inh is not None else 0))
            outs.append(out)
        return outs

    # ---------------------------------------------------------------- running
    def run_trials(self, conn, rates: dict, duration: float, gap: float = 0.02, seed: int = 0) -> dict:
        """See `run_trials`: many Poisson trials counted with the spike counters."""
        return run_trials(self, conn, rates, duration, gap, seed)

    def run(self, conn, duration: float, seed: int = 0, column_period: float = 1e-4) -> "NetworkResult":
        """Play every source for `duration` biological seconds and record;
        membranes recorded with 'v_column' are read through the column ADC
        every `column_period` biological seconds, at most SAMPLES_PER_RUN times
        (register reads timed in the program: every sample costs a word per
        neuron on the link and a piece of chip advance)."""
        import host
        p = conn.profile
        pl = self._placement(conn)
        ticks, labels = [], []
        for src in self.sources:
            for ch, t in enumerate(src.trains(duration, seed)):
                t = t[(t >= 0) & (t < duration)]
                ticks.append(np.round(p.bio_to_hw(t) / TICK_S).astype(np.int64))
                labels.append(np.full(len(t), int(pl.addresses[src][ch]) << LABEL_ROW_SHIFT, np.int64))
        ticks = np.concatenate(ticks) if ticks else np.zeros(0, np.int64)
        labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)
        order = np.argsort(ticks, kind="stable")
        end = int(round(p.bio_to_hw(duration) / TICK_S))
        prog = conn.program()
        for n in range(p.neurons):
            prog.write(host.NeuronOnChip(n), host.SpikeCounterReset())
        v = [(pop, pop.v_neuron) for pop in self.populations if pop.v_neuron is not None]
        prog.timer_reset()
        if v:
            pop, k = v[0]
            period = max(1, end // SAMPLES_PER_RUN)
            prog.write(host.ChipOnly(), host.MADCConfig(enable=1, source=0, neuron=int(pl.neurons[pop][k]),
                                                        period=period))
        ticks, labels = ticks[order], labels[order]
        columns = [(pop, pl.neurons[pop][pop.column_neurons]) for pop in self.populations
                   if pop.column_neurons is not None and len(pop.column_neurons)]
        samples = []
        if columns:
            if not p.correlation:
                raise PlacementError(f"membranes through the column ADC: the {p.name} chip has none (dls and hx "
                                     "have one per column); record v of one neuron through the membrane ADC")
            step = max(int(round(p.bio_to_hw(column_period) / TICK_S)), 1, -(-end // SAMPLES_PER_RUN))
            addresses = conn.regmap.addresses("correlation", "membrane", np.concatenate([n for _, n in columns]))
            at = 0
            for s in range(0, end, step):                # spikes before each sample, then the reads at its time
                upto = int(np.searchsorted(ticks, s, side="left"))
                if upto > at:
                    prog.spikes(labels[at:upto], ticks[at:upto])
                    at = upto
                prog.wait_until(s)
                samples.append((s, prog.read_words(addresses)))
            ticks, labels = ticks[at:], labels[at:]
        prog.spikes(labels, ticks)
        prog.wait_until(end)
        if v:
            prog.write(host.ChipOnly(), host.MADCConfig(enable=0))
        res = conn.run(prog)
        return NetworkResult(self, pl, p, res, duration, columns, samples)


def _poisson_ticks(rates, duration_hw: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """(ticks, channel) of Poisson trains at `rates` (Hz, hardware) over duration_hw."""
    n = rng.poisson(np.asarray(rates, float) * duration_hw)
    ch = np.repeat(np.arange(len(n)), n)
    t = np.round(rng.uniform(0, duration_hw, len(ch)) / TICK_S).astype(np.int64)
    return t, ch


def run_trials(net: "Network", conn, rates: dict, duration: float, gap: float = 0.02, seed: int = 0) -> dict:
    """Many short trials in one program, counted with the spike counters (no
    spike traffic to the host: rate-coded experiments at 10 000x would
    overflow the event FIFO).  `rates`: source -> (trials, channels) Poisson
    rates in biological Hz; each trial plays `duration` biological seconds
    after a `gap` of silence.  Returns population -> (trials, size) counts."""
    import host
    p = conn.profile
    pl = net._placement(conn)
    trials = {len(r) for r in rates.values()}
    if len(trials) != 1:
        raise ValueError(f"every source needs the same number of trials, got {sorted(trials)}")
    n_trials = trials.pop()
    neurons = np.concatenate([pl.neurons[pop] for pop in net.populations])
    rm = conn.regmap
    counter = rm.addresses("neuron", "spike_counter", neurons)
    reset = rm.addresses("neuron", "spike_counter_reset", neurons)
    count_field = rm.register("neuron", "spike_counter").field("count")
    dur_hw, gap_hw = p.bio_to_hw(duration), p.bio_to_hw(gap)
    rng = np.random.default_rng(seed)
    prog = conn.program()
    prog.write(host.ChipOnly(), host.CrossbarConfig(loopback=0, recurrent=1, record=0))
    prog.timer_reset()
    tickets, t0 = [], 0
    for k in range(n_trials):
        start = t0 + int(round(gap_hw / TICK_S))
        prog.wait_until(start)
        prog.write_words(reset, 1)
        ticks, labels = [], []
        for src, r in rates.items():
            t, ch = _poisson_ticks(np.asarray(r[k], float) * p.speedup, dur_hw, rng)
            ticks.append(t + start + 1)
            labels.append(pl.addresses[src][ch] << LABEL_ROW_SHIFT)
        ticks, labels = np.concatenate(ticks), np.concatenate(labels)
        order = np.argsort(ticks, kind="stable")
        prog.spikes(labels[order], ticks[order])
        t0 = start + 1 + int(round(dur_hw / TICK_S))
        prog.wait_until(t0)
        tickets.append(prog.read_words(counter))
    prog.write(host.ChipOnly(), host.CrossbarConfig(loopback=0, recurrent=1, record=1))
    conn.run(prog)
    counts = np.stack([count_field.extract(t.values) for t in tickets]).astype(np.int64)
    out, at = {}, 0
    for pop in net.populations:
        out[pop] = counts[:, at:at + pop.size]
        at += pop.size
    return out


class NetworkResult:
    """Recorded spikes and membrane of a run, in biological time."""

    def __init__(self, net: Network, pl: Placement, profile, raw, duration: float, columns=(), samples=()):
        self.net, self.placement, self.profile, self.raw, self.duration = net, pl, profile, raw, duration
        self._columns = [pop for pop, _ in columns]
        self._column_sizes = [len(n) for _, n in columns]
        self._samples = samples
        self._addr = raw.spikes["label"].astype(np.int64) >> LABEL_ROW_SHIFT
        self._t = raw.spikes["time"].astype(np.int64) * TICK_S * profile.speedup
        self.events_dropped = raw.events_dropped

    def spikes(self, pop: Population) -> tuple[np.ndarray, np.ndarray]:
        """(times in biological s, neuron index within the population), by time."""
        a = self.placement.addresses[pop]
        sel = (self._addr >= a[0]) & (self._addr < a[0] + len(a))
        return self._t[sel], (self._addr[sel] - a[0]).astype(np.int64)

    def counts(self, pop: Population) -> np.ndarray:
        """Spikes per neuron of the population."""
        return np.bincount(self.spikes(pop)[1], minlength=pop.size)

    def rates(self, pop: Population) -> np.ndarray:
        return self.counts(pop) / self.duration

    def column_membranes(self, pop: Population) -> tuple[np.ndarray, np.ndarray]:
        """(times in biological s, volts (samples, neurons)) of the membranes recorded
        with 'v_column', in the order of pop.column_neurons; the nominal 8-bit
        transfer (profile.analog.cadc_volts), no per-column offset correction."""
        k = self._columns.index(pop)
        lo = sum(self._column_sizes[:k])
        field = register_map(self.profile.name).register("correlation", "membrane").field("value")
        codes = np.array([field.extract(tk.values.astype(np.int64)[lo:lo + self._column_sizes[k]])
                          for _, tk in self._samples])
        t = np.array([s for s, _ in self._samples], np.int64) * TICK_S * self.profile.speedup
        return t, self.profile.analog.cadc_volts(codes)

    def membrane(self) -> tuple[np.ndarray, np.ndarray]:
        """(times in biological s, volts) of the recorded membrane."""
        p = self.profile
        m = self.raw.madc
        volts = p.analog.madc_volts(m["value"])
        return m["time"].astype(np.int64) * TICK_S * p.speedup, volts
