"""Plasticity from PyNN: a synapse type whose weights a firmware rule of
firmware/ (run by the chip's PPUs from the correlation sensors) changes while
the network runs, and whose learned weights Projection.get returns.

    rule = sim.FirmwareRule("stdp_mult", period=100.0, w_max=2.0, theta=2, lambda_pos=32, lambda_neg=64)
    proj = sim.Projection(stim, cells, sim.AllToAllConnector(),
                          sim.PlasticSynapse(weight=1.0, plasticity_rule=rule))
    sim.run(5000.0)
    proj.get("weight", format="array")          # the weights the chip holds at the end of the run

pynn-brainscales attaches its PPU kernels the same way (a `PlasticSynapse`
with a `plasticity_rule`); here the rule is one of the firmware library's.
docs/pynn.md "Plasticity" states the mapping and its limits.
"""
from __future__ import annotations

import warnings

import numpy as np

from pyNN import errors
from pyNN.standardmodels import StandardSynapseType, build_translations, synapses
from pyNN.standardmodels.synapses import (SpikePairRule, AdditiveWeightDependence,  # noqa: F401
                                          MultiplicativeWeightDependence)

from isa.wire import FPGA_TICK_S as TICK_S

from ..calibration_fit import CELL_MAX
from .simulator import state

#: Rules a PyNN run can drive: their parameters set once at the start.  stdp_reward needs
#: the host to write the reward while the network runs, homeostasis counts spikes.
RUNNABLE = ("stdp_mult", "stdp_add")
#: Rule parameters in PyNN weight units (nA, uS onto conductance-based cells, integers onto TwinNeuron).
WEIGHT_PARAMS = ("w_min", "w_max")
#: eta_corr's default, a fraction of the sensors' full scale: v_correlation_store at 200 of 1022 (CELL_MAX),
#: the hybrid-plasticity experiment's setting (tools/experiments/stdp.py).
ETA_DEFAULT = 200 / CELL_MAX
#: Rule parameters the front end sets itself.
DERIVED = ("offset_stride", "rows")


class FirmwareRule:
    """A rule of the firmware library (firmware.RULES; stdp_mult or stdp_add)
    run by the PPU of every synapse array holding synapses of the projections
    that carry it.

    period   ms (biological) between updates; each update reads every plastic
             synapse's correlation sensors, changes its weight and resets the
             sensors it used (firmware/rules/<name>.s)
    w_max, w_min
             weight bounds in the projection's weight unit (nA onto
             IF_curr_exp, uS onto EIF_cond_exp_isfa_ista, integers of the
             weight field onto TwinNeuron)
    tau_corr ms: the sensors' time constant (one for the chip: the global
             i_bias_correlation cell)
    eta_corr V: the sensors' trace step per spike pair (the global
             v_correlation_store cell)
    the rule's own parameters (theta, lambda_pos, lambda_neg / eta_pos, eta_neg):
             integers as firmware.RULES[name] states them."""

    def __init__(self, name: str = "stdp_mult", *, period: float = 1000.0, w_max: float = 1.0, w_min: float = 0.0,
                 tau_corr: float = 15.0, eta_corr: float | None = None,
                 **params: int):
        import firmware
        if name not in firmware.RULES:
            raise errors.InvalidParameterValueError(f"unknown firmware rule {name!r}; the library has: "
                                                    f"{', '.join(sorted(firmware.RULES))}")
        if name not in RUNNABLE:
            why = ("it needs the host to write the reward while the network runs" if name == "stdp_reward"
                   else "it is not a correlation rule")
            raise errors.InvalidParameterValueError(
                f"firmware rule {name!r} cannot be driven from a PyNN run ({why}); rules for PlasticSynapse: "
                f"{', '.join(RUNNABLE)}.  firmware.RuleOnChip runs any rule on a host.connect() connection")
        rule = firmware.RULES[name]
        own = [p.name for p in rule.params if p.name not in DERIVED + WEIGHT_PARAMS]
        unknown = sorted(set(params) - set(own))
        missing = [n for n in own if n not in params]
        if unknown or missing:
            raise errors.InvalidParameterValueError(
                f"FirmwareRule({name!r}): " + "; ".join(
                    ([f"unknown parameter(s) {', '.join(unknown)}"] if unknown else [])
                    + ([f"missing parameter(s) {', '.join(missing)}"] if missing else []))
                + f" (its parameters: {', '.join(own)}, and w_max{', w_min' if 'w_min' in _names(rule) else ''}, "
                "period, tau_corr, eta_corr)")
        for p in rule.params:
            if p.name in params and isinstance(p.hi, int) and not p.lo <= int(params[p.name]) <= p.hi:
                raise errors.InvalidParameterValueError(f"FirmwareRule({name!r}): {p.name} = {params[p.name]} "
                                                        f"outside {p.lo} .. {p.hi} ({p.doc})")
        if not period > 0:
            raise errors.InvalidParameterValueError(f"FirmwareRule: period = {period:g} ms; it must be > 0")
        if "w_min" not in _names(rule) and w_min != 0:
            raise errors.InvalidParameterValueError(f"FirmwareRule({name!r}): the rule's lower bound is 0 "
                                                    f"(w_min = {w_min:g} given)")
        if not 0 <= w_min <= w_max or not w_max > 0:
            raise errors.InvalidParameterValueError(f"FirmwareRule: w_min = {w_min:g}, w_max = {w_max:g}; "
                                                    "0 <= w_min <= w_max and w_max > 0")
        self.name, self.period = name, float(period)
        self.w_max, self.w_min = float(w_max), float(w_min)
        self.tau_corr, self.eta_corr = float(tau_corr), eta_corr
        self.params = {k: int(v) for k, v in params.items()}

    def key(self):
        """Rules with equal keys can share a PPU."""
        return (self.name, self.period, self.w_max, self.w_min, self.tau_corr, self.eta_corr,
                tuple(sorted(self.params.items())))

    def __repr__(self):
        extra = "".join(f", {k}={v}" for k, v in self.params.items())
        return f"FirmwareRule({self.name!r}, period={self.period:g}, w_max={self.w_max:g}{extra})"


def _names(rule):
    return [p.name for p in rule.params]


class PlasticSynapse(StandardSynapseType):
    """A synapse whose weight a FirmwareRule changes while the network runs.
    Weights and delays as StaticSynapse; `Projection.get("weight")` after a
    run returns the weights the chip holds at its end (quantised to the
    chip's weight step), `reset()` returns to the weights at the start.
    docs/pynn.md "Plasticity"."""
    default_parameters = {"weight": 0.0, "delay": None}
    translations = build_translations(("weight", "weight"), ("delay", "delay"))

    def __init__(self, plasticity_rule: FirmwareRule | None = None, **parameters):
        if not isinstance(plasticity_rule, FirmwareRule):
            raise errors.InvalidParameterValueError(
                "PlasticSynapse needs plasticity_rule=FirmwareRule(...), e.g. FirmwareRule('stdp_mult', period=100.0, "
                "w_max=1.0, theta=2, lambda_pos=32, lambda_neg=64)")
        StandardSynapseType.__init__(self, **parameters)
        self.plasticity_rule = plasticity_rule

    def _get_minimum_delay(self):
        return state.min_delay


class STDPMechanism(synapses.STDPMechanism):
    """PyNN's STDP description: refused.  It defines a rule per spike pair,
    evaluated exactly by a software simulator; on the chip the PPU computes a
    rule from the correlation sensors' accumulated traces with 8-bit
    arithmetic at each period, which PlasticSynapse(plasticity_rule=
    FirmwareRule(...)) states explicitly (docs/pynn.md, Plasticity)."""

    def __init__(self, *args, **kwargs):
        raise errors.NoModelAvailableError(
            "STDPMechanism: the chip does not compute PyNN's per-pair STDP; its plasticity is PlasticSynapse with a "
            "firmware rule (PlasticSynapse(weight=..., plasticity_rule=FirmwareRule('stdp_mult', period=..., "
            "w_max=..., theta=..., lambda_pos=..., lambda_neg=...)); docs/pynn.md, Plasticity)")


class TsodyksMarkramSynapse(synapses.TsodyksMarkramSynapse):
    """Short-term plasticity: refused, the chip's synapses have none (docs/pynn.md)."""

    def __init__(self, *args, **kwargs):
        raise errors.NoModelAvailableError("TsodyksMarkramSynapse: the chip's synapses have no short-term "
                                           "plasticity (StaticSynapse, or PlasticSynapse with a firmware rule)")


# ============================================================================ on the chip
def cell_of(profile, full_scale_value, value, what, unit):
    """A cell value 1..cell_max for a quantity proportional to the cell (full_scale_value: its value at
    cell_max), or, given -full_scale_value, inversely proportional (a time constant: tau = fs cell_max / cell);
    raises with the range."""
    cmax = profile.cell_max
    if full_scale_value < 0:
        lo, hi = -full_scale_value, -full_scale_value * cmax
        cell = round(-full_scale_value * cmax / value) if value > 0 else 0
    else:
        lo, hi = full_scale_value / cmax, full_scale_value
        cell = round(value / full_scale_value * cmax)
    if not (1 <= cell <= cmax) or not lo * 0.999 <= value <= hi * 1.001:
        raise errors.InvalidParameterValueError(f"FirmwareRule: {what} = {value:g} {unit} is outside the chip's "
                                                f"{lo:g} .. {hi:g} {unit}")
    return int(cell)


class PlasticRun:
    """The firmware side of one run: sensors set, offsets measured, the rule
    started on every PPU with plastic rows; `finish` stops it and returns
    the updates and overruns."""

    OFFSET_READS = 8

    def __init__(self, conn, placement, rules: dict):
        """rules: array -> (FirmwareRule, integer w_max, integer w_min)."""
        self.conn, self.pl = conn, placement
        self.rules = rules
        self.arrays = sorted(rules)

    def start(self, profile):
        import firmware
        import host
        p = profile
        if not p.ppus or not p.correlation:
            raise errors.NoModelAvailableError(f"PlasticSynapse: the {p.name} chip has no plasticity processor and "
                                               "correlation sensors (dls and hx have)")
        first = self.rules[self.arrays[0]][0]
        for a in self.arrays:
            if self.rules[a][0].key() != first.key():
                raise errors.InvalidParameterValueError(
                    "PlasticSynapse: projections with different rules on one chip (one rule image runs on every PPU, "
                    f"the sensors' cells are global): {self.rules[a][0]!r} and {first!r}")
        an = p.analog
        corr_bias = cell_of(p, -p.hw_to_bio(an.corr_tau_full_scale) * 1e3, first.tau_corr, "tau_corr", "ms")
        eta = first.eta_corr if first.eta_corr is not None else ETA_DEFAULT * an.corr_eta_full_scale
        corr_store = cell_of(p, an.corr_eta_full_scale, eta, "eta_corr", "V")
        # Readings are baseline minus trace (docs/model.md, Correlation sensors): a baseline halfway between
        # the traces' saturation and the top of the cells keeps the whole 0 .. c_sat of a trace readable.
        baseline = cell_of(p, an.v_max, 0.5 * (an.corr_saturation + an.v_max), "v_correlation_baseline", "V")
        prog = self.conn.program()
        for name, value in (("i_bias_correlation", corr_bias), ("v_correlation_store", corr_store),
                            ("v_correlation_baseline", baseline)):
            prog.write(host.CapMemGlobalCellOnChip(name), host.CapMemGlobalCell(value))
        prog.write(host.ChipOnly(), host.CorrelationConfig(enable=1))
        prog.timer_reset()
        prog.wait_until(int(round(200e-6 / TICK_S)))                     # the global cells settle
        self.conn.run(prog)
        offsets = [self._offsets(p, a) for a in self.arrays]              # also resets the plastic rows' sensors
        rows = [int(self.pl.plastic_rows[a]) for a in self.arrays]
        data, stride = [], []
        for k, off in zip(rows, offsets):
            per_synapse = k * p.columns <= firmware.field("data")[1]      # hx: 12 rows of 256
            stride.append(p.columns if per_synapse else 0)                # 2 * VECTOR_BYTES: one row per row
            data.append((off if per_synapse else np.round(off.mean(axis=0))).astype(np.int8).view(np.uint8))
        params = dict(first.params, rows=rows, offset_stride=stride, w_max=[self.rules[a][1] for a in self.arrays])
        if "w_min" in [q.name for q in firmware.RULES[first.name].params]:
            params["w_min"] = [self.rules[a][2] for a in self.arrays]
        self.period_us = int(round(p.bio_to_hw(first.period * 1e-3) * 1e6))
        lo, hi = p.hw_to_bio(1e-6) * 1e3, p.hw_to_bio(((1 << 31) - 1) * 1e-6) * 1e3
        if not 1 <= self.period_us < 1 << 31:        # the mailbox's period word, whole us of chip time
            raise errors.InvalidParameterValueError(f"FirmwareRule: period = {first.period:g} ms is outside the "
                                                    f"chip's {lo:g} .. {hi:g} ms (1 us .. 2**31 us of chip time)")
        self.runner = firmware.RuleOnChip(self.conn, first.name, ppus=self.arrays)
        self.runner.start("periodic", period_us=self.period_us, data=data, **params)

    def _offsets(self, p, array):
        """Per plastic synapse of `array`, the rule's d = acausal/2 - causal/2 with no activity
        (mean of OFFSET_READS reads; each read resets the sensors it read)."""
        import firmware
        k = int(self.pl.plastic_rows[array])
        chunk = max(1, firmware.field("data")[1] // (2 * p.columns))     # corr_read's rows per call
        reader = firmware.RuleOnChip(self.conn, "corr_read", ppus=[array])
        d = np.zeros((k, p.columns))
        for n in range(self.OFFSET_READS):
            for first in range(0, k, chunk):
                rows = min(chunk, k - first)
                reader.start("once", first_row=first, rows=rows, reset=1, load=n == 0 and first == 0)
                reader.wait(timeout_hw_seconds=10e-3, step_hw_seconds=20e-6)
                raw = reader.data(2 * rows * p.columns).astype(np.int64)
                c, a = raw[:rows * p.columns], raw[rows * p.columns:]
                d[first:first + rows] += ((a >> 1) - (c >> 1)).reshape(rows, p.columns)
        return np.round(d / self.OFFSET_READS).astype(np.int64)

    def finish(self):
        """Stop the rule after its current update; (updates, overruns) per PPU."""
        self.runner.stop(timeout_hw_seconds=max(10e-3, 3 * self.period_us * 1e-6))
        updates, overruns = self.runner.updates(), self.runner.overruns()
        if any(overruns):
            warnings.warn(f"the plasticity rule overran its period {sum(overruns)} time(s) (an update took longer "
                          f"than {self.period_us} us of chip time): choose a longer period")
        return updates, overruns
