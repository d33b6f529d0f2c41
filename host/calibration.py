"""Per-neuron calibration of the analog neurons, over the wire.

    import host
    from host.calibration import Targets, calibrate

    with host.connect("twin:hx?serial=3") as conn:
        cal = calibrate(conn, Targets.default(conn.profile).replace(tau_mem=20e-6))
        print(cal.report())
        cal.cells["v_leak"]            # per-neuron cell values (numpy arrays)
        cal.measured["tau_mem"]        # per-neuron measured quantities
    with host.connect("twin:hx?serial=3") as conn:
        cal.apply(conn)                # writes the cells (floating gates: and verifies them)

Quantities and their cells (isa.profiles `cell_for`; docs/calibration.md):

    leak, reset, threshold      V     resting potential, reset (clamp) potential, spike threshold
    tau_mem, tau_syn_exc/inh    s     membrane and synaptic time constants, hardware seconds
    psp_exc, psp_inh            V     PSP height of one synapse at full weight and synapse-driver
                                      gain 8, as a neuron with the target time constants shows
                                      it: (I0 / C) * psp_peak_factor(tau_mem, tau_syn) with the
                                      targets; the gm cell sets the current I0

Potentials may be given in the real stack's ADC units too ("120cadc", "410madc";
Targets.parse): the nominal ADC transfer (code = V / adc_v_max * 2**bits).

The search is the same for every quantity: each is linear in its cell once
written as volts, 1 / tau or PSP height (host.calibration_fit); per neuron a
line through the measured points (priors: the documented transfer and the
profile's mismatch magnitudes) gives the next cell, until the measurement lies
within the quantity's band around the target (BANDS).  Floating gates (hicann)
land with a fresh write error on each write: a neuron outside the band is
written again (repeat writes), one inside is not touched, measurements of one
write are averaged into one point.  Neurons that end outside a band are
reported and left out of the statistics (Calibration.usable).

Results are cached per chip (profile, serial, model version, twin options),
targets, neurons, quantities and the calibration's own source, under
$BSS_TWIN_CACHE_DIR/calibration (default ~/.cache/bss-twin/calibration).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import re
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from isa.cache import cache_root

from .calibration_fit import (CELL_MAX, POTENTIALS, PSP_HEIGHTS, QUANTITIES, ROLE, TIME_CONSTANTS, TransferLine,
                              from_linearised, linearised, nominal_cell, nominal_slope)

UNITS = {q: "V" for q in POTENTIALS + PSP_HEIGHTS} | {q: "s" for q in TIME_CONSTANTS}


# =========================================================================== targets
@dataclass(frozen=True)
class Targets:
    """What to calibrate to, in hardware units: volts and hardware seconds."""

    leak: float
    reset: float
    threshold: float
    tau_mem: float
    tau_syn_exc: float
    tau_syn_inh: float
    psp_exc: float
    psp_inh: float

    @classmethod
    def default(cls, profile) -> "Targets":
        """Potentials of the demo (0.4 / 0.3 / 0.6 V), tau_mem 10 ms and tau_syn 5 ms
        biological (through the speed-up), PSPs of 50 mV (100 mV on floating gates:
        a write error of 8 LSB is 24 mV of PSP there, so smaller heights would
        hardly leave room above it)."""
        psp = 0.1 if profile.param_memory == "floating_gate" else 0.05
        return cls(leak=0.4, reset=0.3, threshold=0.6, tau_mem=profile.bio_to_hw(10e-3),
                   tau_syn_exc=profile.bio_to_hw(5e-3), tau_syn_inh=profile.bio_to_hw(5e-3),
                   psp_exc=psp, psp_inh=psp)

    def replace(self, **changes) -> "Targets":
        return dataclasses.replace(self, **changes)

    @classmethod
    def parse(cls, text: str, profile, base: "Targets | None" = None, biological: bool = False) -> "Targets":
        """Targets from "name=value,..." on top of `base` (default: Targets.default).
        Values take a unit: V, mV, s, ms, us, ns, or for potentials cadc / madc (ADC
        codes through the nominal ADC transfer); a bare number is volts or seconds.
        With `biological`, times are biological seconds (divided by the speed-up)."""
        base = base or cls.default(profile)
        names = [f.name for f in dataclasses.fields(cls)]
        changes = {}
        for item in filter(None, (s.strip() for s in text.split(","))):
            name, sep, value = item.partition("=")
            name = name.strip()
            if not sep or name not in names:
                raise ValueError(f"target {item!r}: expected NAME=VALUE with NAME one of {', '.join(names)}")
            changes[name] = _parse_value(name, value.strip(), profile, biological)
        return dataclasses.replace(base, **changes)

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


_UNIT_SCALE = {"v": 1.0, "mv": 1e-3, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def _parse_value(name: str, text: str, profile, biological: bool) -> float:
    m = re.fullmatch(r"([-+0-9.eE]+)\s*([a-zA-Z]*)", text)
    if not m:
        raise ValueError(f"target {name}={text!r}: not a number with an optional unit")
    number, unit = float(m.group(1)), m.group(2).lower()
    a = profile.analog
    if unit in ("cadc", "madc"):
        if name not in POTENTIALS:
            raise ValueError(f"target {name}={text}: ADC units apply to leak, reset and threshold only")
        if unit == "cadc" and not profile.correlation:
            raise ValueError(f"target {name}={text}: {profile.name} has no column ADC; use madc or volts")
        return number * (a.cadc_lsb if unit == "cadc" else a.madc_lsb)
    expected = "V" if UNITS[name] == "V" else "s"
    if unit and (unit not in _UNIT_SCALE or (unit[-1] == "v") != (expected == "V")):
        raise ValueError(f"target {name}={text}: unit {m.group(2)!r} is not a unit of "
                         f"{'voltage (V, mV, cadc, madc)' if expected == 'V' else 'time (s, ms, us, ns)'}")
    value = number * _UNIT_SCALE.get(unit, 1.0)
    if expected == "s" and biological:
        value = profile.bio_to_hw(value)
    return value


def check_targets(targets: Targets, profile) -> None:
    """Reject targets the cells cannot reach or the protocols cannot measure;
    the message names the target and what to change."""
    a = profile.analog
    v_hi = 0.9 * a.v_max
    for q in POTENTIALS:
        v = getattr(targets, q)
        if not 0.05 <= v <= v_hi:
            raise ValueError(f"target {q}={v:g} V outside 0.05..{v_hi:g} V, the range the {profile.name} "
                             "cells and ADCs cover")
    for q in TIME_CONSTANTS + PSP_HEIGHTS:
        v = getattr(targets, q)
        cell = linearised(q, v) / nominal_slope(q, profile, targets) if v > 0 else -1
        if not 3 <= cell <= CELL_MAX - 20:
            lo = "longer" if q in TIME_CONSTANTS else "larger"
            hi = "shorter" if q in TIME_CONSTANTS else "smaller"
            raise ValueError(f"target {q}={v:g} {UNITS[q]} needs a {ROLE[q]} cell near {cell:.0f} on an ideal "
                             f"{profile.name}, outside 3..{CELL_MAX - 20}: choose a "
                             f"{lo if cell > CELL_MAX - 20 else hi} target"
                             if cell >= 0 else f"target {q}={v:g} must be positive")
    if targets.leak < 0.15:
        raise ValueError(f"target leak={targets.leak:g} V: inhibitory PSPs are measured below the leak "
                         "potential, which needs at least 0.15 V")
    if profile.param_memory == "floating_gate":
        # every protocol runs at the calibration values (no cell is rewritten to measure)
        if targets.threshold < targets.leak + 0.05 - 1e-9:           # 1e-9: 0.6 - 0.55 is below 0.05 in floats
            raise ValueError(f"targets threshold={targets.threshold:g} V, leak={targets.leak:g} V: on "
                             f"{profile.name} the threshold must lie at least 50 mV above the leak potential "
                             "(the resting membrane and the PSPs are measured with it in place)")
        if abs(targets.reset - targets.leak) < 0.05 - 1e-9:
            raise ValueError(f"targets reset={targets.reset:g} V, leak={targets.leak:g} V: on {profile.name} "
                             "they must differ by at least 50 mV (tau_mem is measured on the relaxation "
                             "from one to the other)")


# =========================================================================== tolerances
#: Half-width of the band around each target within which a neuron counts as
#: calibrated: potentials in volts, the others relative.  Capacitive memory: a
#: few times the measurement's noise, and at least the cell's resolution;
#: floating gates: wide enough that a write lands in it often (its error is 8
#: LSB: 14 mV, 8 % of tau_mem, 4 % of tau_syn, 24 % of a 100 mV PSP).
BANDS = {
    "capmem": {"potential": 2e-3, "tau_mem": 0.015, "tau_syn": 0.02, "psp": 0.03},
    "floating_gate": {"potential": 6e-3, "tau_mem": 0.04, "tau_syn": 0.03, "psp": 0.08},
}
#: A neuron is usable within this many bands of every target (Calibration.usable).
USABLE_BANDS = 1.5
#: Rounds of measurement and rewrite after the first measurement.
MAX_ROUNDS = {"capmem": 6, "floating_gate": 40}


def band(q: str, profile, targets: Targets) -> float:
    """The band of quantity q (absolute volts for potentials, else relative),
    widened to 0.6 cell LSB where the cell's resolution at the target is coarser."""
    b = BANDS[profile.param_memory]
    base = b["potential"] if q in POTENTIALS else b["psp"] if q in PSP_HEIGHTS else \
        b["tau_mem"] if q == "tau_mem" else b["tau_syn"]
    lsb = nominal_slope(q, profile, targets)
    y = float(linearised(q, getattr(targets, q)))
    resolution = lsb if q in POTENTIALS else lsb / y
    return max(base, 0.6 * resolution)


def deviation(q: str, value, target) -> np.ndarray:
    """Measured minus target: volts for potentials, else relative."""
    value = np.asarray(value, np.float64)
    return value - target if q in POTENTIALS else value / target - 1.0


# =========================================================================== the result
@dataclass
class Calibration:
    """A calibration of one chip: cell values per neuron and what they give.

    cells        cell name -> cell values of `neurons` (int arrays)
    measured     quantity -> measured value at those cells (V or s; NaN: not measured)
    uncalibrated quantity -> measured value at the nominal cells (the documented
                 transfer functions, no calibration): the "before" of the report
    within_band  quantity -> which neurons lie within the band around the target
    usable       neurons within USABLE_BANDS bands of every target (a neuron just
                 outside a band is calibrated all the same); the others (cells
                 that cannot reach a target, a floating gate that did not land
                 well in the rounds allowed) are left out of the statistics and
                 are best left out of networks, as the real stacks' blacklists do
    readout      column-ADC lines of the calibrated neurons (dls, hx): volts =
                 (code - cadc_offset) / cadc_gain
    lines        quantity -> (2, neurons): each neuron's transfer line as the search
                 left it, linearised quantity = slope * cell + intercept
                 (host.calibration_fit); `cells_for` reaches other values through it
    """

    profile: str
    serial: int
    version: int
    variant: str
    targets: Targets
    neurons: np.ndarray
    quantities: tuple[str, ...]
    cells: dict[str, np.ndarray]
    measured: dict[str, np.ndarray]
    uncalibrated: dict[str, np.ndarray]
    within_band: dict[str, np.ndarray]
    bands: dict[str, float]
    readout: dict[str, np.ndarray] = field(default_factory=dict)
    lines: dict[str, np.ndarray] = field(default_factory=dict)
    rounds: int = 0
    seconds: float = 0.0
    key: str = ""                    # its cache key (cache_key): chip, targets, selection, method
    from_cache: bool = False

    @property
    def usable(self) -> np.ndarray:
        return np.logical_and.reduce([
            np.abs(deviation(q, self.measured[q], getattr(self.targets, q))) <= USABLE_BANDS * self.bands[q]
            for q in self.quantities])

    def cell(self, quantity: str) -> np.ndarray:
        """Cell values that set `quantity` (e.g. cell("tau_mem") is the i_bias_leak column)."""
        from isa.profiles import profile as lookup
        return self.cells[lookup(self.profile).cell_for(ROLE[quantity])]

    def cells_for(self, quantity: str, value) -> np.ndarray:
        """Per-neuron cell values that put `quantity` at `value` (V, hardware s, or
        a PSP height in V; a scalar or one value per neuron): at the target the
        calibrated cell (measured within its band), elsewhere each neuron's
        transfer line (exact where the transfer is linear; docs/calibration.md
        states how far it holds).  A quantity not calibrated takes the nominal cell."""
        from isa.profiles import profile as lookup
        value = np.broadcast_to(np.asarray(value, np.float64), self.neurons.shape)
        if quantity not in self.lines:
            return nominal_cell(quantity, value, lookup(self.profile), self.targets)
        slope, intercept = self.lines[quantity]
        line = np.clip(np.rint((linearised(quantity, value) - intercept) / slope), 0, CELL_MAX).astype(np.int64)
        target = getattr(self.targets, quantity)
        return np.where(np.isclose(value, target, rtol=1e-9, atol=0.0), self.cell(quantity), line)

    # ------------------------------------------------------------------ applying
    def apply(self, conn, verify: bool | None = None, progress: bool = False) -> "Calibration":
        """Write the calibrated cells to the chip behind `conn` (which must be the
        calibrated chip); returns the calibration as it stands on the chip.

        Capacitive memory holds what it is given: that is self.  On floating gates
        each write lands with a fresh error: with `verify` (their default) the
        chip is reset and set up as by calibrate(), and the search runs again
        from the stored cells: the neurons outside their bands are written again
        until they lie in them (several seconds).  The result carries these cells
        and measurements."""
        p = conn.profile
        if (p.name, conn.serial) != (self.profile, self.serial):
            raise ValueError(f"this calibration is of {self.profile} serial {self.serial}, the connection "
                             f"{conn.url} is {p.name} serial {conn.serial}: calibrate that chip instead")
        if verify is None:
            verify = p.param_memory == "floating_gate"
        if verify:
            cal = _run(conn, self.targets, self.neurons, self.quantities, progress, start=self)
            cal.key, cal.from_cache = self.key, self.from_cache
            return cal
        from .calibration_measure import Bench
        bench = Bench(conn, self.neurons, self.targets)
        prog = conn.program()
        for name, values in self.cells.items():
            bench.write_cell(prog, name, values)
        conn.run(prog)
        return self

    # ------------------------------------------------------------------ figures
    def summary(self) -> dict[str, dict[str, float]]:
        """Per quantity: target, mean and neuron-to-neuron standard deviation before
        and after (of the usable neurons), their ratio, and how many neurons lie
        within the band."""
        out = {}
        use = self.usable
        for q in self.quantities:
            b, a = self.uncalibrated[q][use], self.measured[q][use]
            with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)       # all-NaN columns give NaN
                out[q] = dict(target=getattr(self.targets, q), before_mean=float(np.nanmean(b)),
                              before_sd=float(np.nanstd(b)), after_mean=float(np.nanmean(a)),
                              after_sd=float(np.nanstd(a)), sd_ratio=float(np.nanstd(a) / np.nanstd(b)),
                              within=int(self.within_band[q].sum()), neurons=len(self.neurons))
        return out

    def report(self) -> str:
        """A table: before/after mean and spread of each quantity."""
        head = (f"{self.profile} serial {self.serial} (model version {self.version}"
                f"{', ' + self.variant if self.variant else ''}): {len(self.neurons)} neurons, "
                f"{self.rounds} rounds, {self.seconds:.1f} s{' (from the cache)' if self.from_cache else ''}")
        bad = self.neurons[~self.usable]
        if len(bad):
            listed = ", ".join(str(n) for n in bad[:20]) + (", ..." if len(bad) > 20 else "")
            head += (f"\n{len(bad)} neuron(s) beyond {USABLE_BANDS:g} bands of a target, left out of the "
                     f"statistics: {listed}")
        lines = [head, f"{'quantity':<12} {'target':>10}   {'uncalibrated mean ± sd':>24}   "
                       f"{'calibrated mean ± sd':>24}   {'sd ratio':>8}   within band"]
        for q, s in self.summary().items():
            scale, unit = (1e3, "mV") if UNITS[q] == "V" else (1e6, "us")
            f = lambda m, sd: f"{m * scale:9.3f} ± {sd * scale:7.3f} {unit}"
            bw = self.bands[q]
            bw_text = f"±{bw * 1e3:.1f} mV" if q in POTENTIALS else f"±{bw * 100:.1f} %"
            lines.append(f"{q:<12} {s['target'] * scale:7.3f} {unit}   {f(s['before_mean'], s['before_sd'])}   "
                         f"{f(s['after_mean'], s['after_sd'])}   {s['sd_ratio']:8.3f}   "
                         f"{s['within']}/{s['neurons']} ({bw_text})")
        return "\n".join(lines)

    def plot(self, path) -> None:
        """PNG histograms: each quantity before (grey) and after (colour), target dashed."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        qs = list(self.quantities)
        cols = min(4, len(qs))
        rows = -(-len(qs) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
        for ax in axes.ravel()[len(qs):]:
            ax.set_visible(False)
        use = self.usable
        for ax, q in zip(axes.ravel(), qs):
            scale, unit = (1e3, "mV") if UNITS[q] == "V" else (1e6, "us")
            b, a = self.uncalibrated[q][use] * scale, self.measured[q][use] * scale
            both = np.concatenate([b[np.isfinite(b)], a[np.isfinite(a)]])
            bins = np.linspace(both.min(), both.max(), 40) if len(both) and np.ptp(both) > 0 else 20
            ax.hist(b[np.isfinite(b)], bins=bins, color="0.6", label="uncalibrated")
            ax.hist(a[np.isfinite(a)], bins=bins, color="C0", alpha=0.8, label="calibrated")
            ax.axvline(getattr(self.targets, q) * scale, color="C3", ls="--", lw=1)
            ax.set_xlabel(f"{q} ({unit})")
        axes[0, 0].legend(fontsize=7)
        fig.suptitle(f"{self.profile} serial {self.serial}: {int(use.sum())} usable neurons, "
                     "before and after calibration", fontsize=10)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)

    # ------------------------------------------------------------------ storage
    def save(self, path) -> None:
        """Write to `path` (.npz) atomically: a temporary file in the same folder,
        then os.replace, so a reader never sees half a file."""
        path = pathlib.Path(path)
        meta = dict(profile=self.profile, serial=self.serial, version=self.version, variant=self.variant,
                    targets=self.targets.as_dict(), quantities=list(self.quantities), bands=self.bands,
                    rounds=self.rounds, seconds=self.seconds, cells=list(self.cells),
                    readout=list(self.readout), lines=list(self.lines), key=self.key)
        arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), np.uint8), "neurons": self.neurons}
        arrays.update({f"cell.{k}": v for k, v in self.cells.items()})
        for group in ("measured", "uncalibrated", "within_band", "readout", "lines"):
            arrays.update({f"{group}.{k}": v for k, v in getattr(self, group).items()})
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path) -> "Calibration":
        """Read a saved calibration; any damage (a truncated or corrupted file, a
        missing array) raises ValueError naming the file."""
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                group = lambda g, names: {k: np.array(z[f"{g}.{k}"]) for k in names}
                qs = tuple(meta["quantities"])
                cal = cls(profile=meta["profile"], serial=meta["serial"], version=meta["version"],
                          variant=meta["variant"], targets=Targets(**meta["targets"]),
                          neurons=np.array(z["neurons"]), quantities=qs, cells=group("cell", meta["cells"]),
                          measured=group("measured", qs), uncalibrated=group("uncalibrated", qs),
                          within_band=group("within_band", qs), bands=meta["bands"],
                          readout=group("readout", meta["readout"]), lines=group("lines", meta["lines"]),
                          rounds=meta["rounds"],
                          seconds=meta["seconds"], key=meta["key"])
                return cal
        except Exception as exc:           # zipfile, json, KeyError, OSError, ...: all mean "unusable"
            raise ValueError(f"{path}: not a readable calibration ({type(exc).__name__}: {exc})") from None


# =========================================================================== the cache
def cache_dir() -> pathlib.Path:
    return cache_root() / "calibration"


def chip_variant(conn) -> str:
    """Twin options that make a different chip under the same serial (an ideal
    chip, synapse loss): part of the cache key.  Empty for anything but a twin URL."""
    url = conn.url or ""
    if not url.startswith("twin:"):
        return ""
    from .transport import _twin_params
    spec = url.split("://", 1)[1] if url.startswith("twin://") else url.split(":", 1)[1]
    _, _, _, options = _twin_params(url, spec)
    return ",".join(f"{k}={options[k]:g}" if isinstance(options[k], float) else f"{k}={int(options[k])}"
                    for k in sorted(options))


def _method_hash() -> str:
    """The calibration's own source: a changed method is a different calibration."""
    h = hashlib.sha256()
    here = pathlib.Path(__file__).resolve().parent
    for name in ("calibration.py", "calibration_fit.py", "calibration_measure.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def cache_key(conn, targets: Targets, neurons: np.ndarray, quantities) -> str:
    parts = dict(profile=conn.profile.name, serial=conn.serial, version=conn.version, variant=chip_variant(conn),
                 targets={k: float(f"{v:.6g}") for k, v in targets.as_dict().items()},
                 neurons=hashlib.sha256(np.asarray(neurons, np.int64).tobytes()).hexdigest()[:16],
                 quantities=sorted(quantities), method=_method_hash())
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def cache_path(conn, key: str) -> pathlib.Path:
    return cache_dir() / f"{conn.profile.name}-serial{conn.serial}-v{conn.version}-{key}.npz"


# =========================================================================== the search
def _mismatch_sd(q: str, profile, targets: Targets) -> tuple[float, float, float]:
    """Standard deviations of a neuron's transfer for quantity q from the profile's
    mismatch magnitudes, in linearised units: (slope, offset, write error)."""
    m = profile.mismatch
    s0 = nominal_slope(q, profile, targets)
    if q in POTENTIALS:
        return m.cell_v_gain * s0, m.cell_v_offset, m.cell_write * s0
    per_ampere = s0 * CELL_MAX / profile.analog.i_max           # linearised units per ampere of cell current
    gain = m.cell_i_gain if q in TIME_CONSTANTS else float(np.hypot(m.cell_i_gain, m.synapse_amp / np.sqrt(8)))
    return gain * s0, m.cell_i_offset * per_ampere, m.cell_write * s0


def _transfer_line(q: str, profile, targets: Targets, n: int) -> TransferLine:
    s0 = nominal_slope(q, profile, targets)
    slope_sd, offset_sd, write_sd = _mismatch_sd(q, profile, targets)
    y_t = float(linearised(q, getattr(targets, q)))
    meas_sd = 0.5e-3 if q in POTENTIALS else 0.005 * y_t           # a measurement's noise, about
    # floors keep the priors finite for profiles without mismatch
    return TransferLine(n, s0, max(2 * slope_sd, 0.01 * s0), max(2 * offset_sd, 0.5 * s0),
                        float(np.hypot(meas_sd, write_sd)))


def cell_range(q: str, profile, targets: Targets) -> tuple[int, int]:
    """Cells a neuron may need for quantity q: the nominal cell x0 for a gain
    error of five standard deviations either way (x0 / (1 + 5 sd), x0 / (1 - 5 sd)),
    widened by five of the offset.  A search that leaves this range follows a
    faulty measurement; it is kept inside."""
    s0 = nominal_slope(q, profile, targets)
    x0 = float(linearised(q, getattr(targets, q))) / s0
    slope_sd, offset_sd, write_sd = _mismatch_sd(q, profile, targets)
    gain_sd, offset_sd, write_sd = slope_sd / s0, offset_sd / s0, write_sd / s0   # relative; cells; cells
    shift = 5 * offset_sd + 2                                   # write errors are not systematic
    lo, hi = x0 / (1 + 5 * gain_sd) - shift, x0 / max(1 - 5 * gain_sd, 0.25) + shift
    return int(max(0, np.floor(lo))), int(min(CELL_MAX, np.ceil(hi)))


# =========================================================================== the calibration
def calibrate(conn, targets: Targets | None = None, *, neurons=None, quantities=None, cache: bool = True,
              progress: bool = True) -> Calibration:
    """Calibrate the neurons of the chip behind `conn` to `targets` (default:
    Targets.default) and leave them calibrated.

    neurons     which neurons (default: all); the others are left alone
    quantities  which quantities to calibrate (default: all of QUANTITIES); the
                others keep the nominal cells of their targets
    cache       reuse a stored result for the same chip, targets, neurons and
                quantities (it is applied to the chip), store a new one
    progress    a progress bar on stderr

    The chip is reset first; afterwards the synapse rows, drivers and neuron
    settings the protocols used are back at their reset values
    (docs/calibration.md lists them) and the cells hold the calibration."""
    p = conn.profile
    targets = targets or Targets.default(p)
    check_targets(targets, p)
    neurons = np.arange(p.neurons) if neurons is None else np.unique(np.asarray(neurons, np.int64))
    if len(neurons) == 0 or neurons[0] < 0 or neurons[-1] >= p.neurons:
        raise ValueError(f"neurons must be a non-empty selection of 0..{p.neurons - 1}")
    quantities = QUANTITIES if quantities is None else tuple(q for q in QUANTITIES if q in set(quantities))
    unknown = set(quantities or ()) - set(QUANTITIES)
    if not quantities or unknown:
        raise ValueError(f"quantities must name some of {', '.join(QUANTITIES)}")
    key = cache_key(conn, targets, neurons, quantities)
    path = cache_path(conn, key)
    if cache and path.exists():
        try:
            cal = Calibration.load(path)
            if cal.key != key:
                raise ValueError(f"{path}: stored for another key")
        except ValueError as exc:
            warnings.warn(f"calibration cache entry is unusable, calibrating again: {exc}", stacklevel=2)
        else:
            cal.from_cache = True
            return cal.apply(conn, progress=progress)
    cal = _run(conn, targets, neurons, quantities, progress)
    cal.key = key
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            cal.save(path)
        except OSError as exc:
            print(f"bss-twin: cannot cache the calibration in {path.parent} ({exc}); "
                  "set BSS_TWIN_CACHE_DIR to a writable folder", file=sys.stderr)
    return cal


def _run(conn, targets: Targets, neurons: np.ndarray, quantities, progress: bool,
         start: Calibration | None = None) -> Calibration:
    """The search (module docstring), from the nominal cells or from those of
    `start` (a calibration being applied to a floating-gate chip)."""
    from tqdm import tqdm

    from .calibration_measure import ColumnADCBench, MembraneADCBench

    t0 = time.perf_counter()
    p = conn.profile
    kind = p.param_memory
    floating = kind == "floating_gate"
    bench = (MembraneADCBench if floating else ColumnADCBench)(conn, neurons, targets)
    n = len(neurons)
    if start is None:
        cells = {q: np.full(n, int(nominal_cell(q, getattr(targets, q), p, targets))) for q in QUANTITIES}
    else:
        cells = {q: start.cell(q).copy() for q in QUANTITIES}
    max_rounds = MAX_ROUNDS[kind]
    bar = tqdm(total=max_rounds + 1 + (0 if floating else 2), desc=f"calibrating {p.name} serial {conn.serial}",
               unit="round", disable=not progress, leave=False)
    for q in QUANTITIES:
        bench.set_cells(q, cells[q])
    if not floating:
        bench.reference(bar)
    bands = {q: band(q, p, targets) for q in quantities}
    lines = {q: _transfer_line(q, p, targets, n) for q in quantities}
    lo, hi = zip(*(cell_range(q, p, targets) for q in quantities))
    lo, hi = dict(zip(quantities, lo)), dict(zip(quantities, hi))
    measured = {q: np.full(n, np.nan) for q in QUANTITIES}
    uncalibrated = None
    written = {q: np.ones(n, bool) for q in quantities}
    settled = np.zeros(n, bool)             # capacitive memory: no better cell to try
    active = np.ones(n, bool)
    inside = {}
    rounds = 0
    for rounds in range(max_rounds + 1):
        m = bench.measure(quantities, active, bar)
        for q in QUANTITIES:
            measured[q] = np.where(active, m[q], measured[q])
        if uncalibrated is None:
            uncalibrated = {q: v.copy() for q, v in measured.items()}
        out = np.zeros(n, bool)
        for q in quantities:
            # the mean of all measurements of a neuron's present cell value
            lines[q].add(cells[q], np.where(active, linearised(q, m[q]), np.nan), written[q])
            measured[q] = from_linearised(q, lines[q].current())
            inside[q] = np.abs(deviation(q, measured[q], getattr(targets, q))) <= bands[q]
            out |= ~inside[q]
        out &= ~settled
        bar.set_postfix_str(f"{int(out.sum())} neurons outside a band")
        if not out.any() or rounds == max_rounds:
            break
        stuck = np.ones(n, bool)
        for q in quantities:
            redo = ~inside[q] & ~settled
            x = lines[q].solve(float(linearised(q, getattr(targets, q))))
            proposal = np.where(np.isfinite(x), np.clip(np.rint(x), lo[q], hi[q]), cells[q]).astype(np.int64)
            change = redo & (proposal != cells[q])
            write = redo if floating else change       # a floating gate is written again even unchanged
            stuck &= ~change | ~redo
            cells[q] = np.where(write, proposal, cells[q])
            written[q] = write
            bench.set_cells(q, cells[q], write)
        if not floating:
            settled |= out & stuck
        bench.adapt(measured, m, active)
        active = out if floating else np.ones(n, bool)
    bar.update(bar.total - bar.n)
    bar.close()
    bench.teardown()
    cal = Calibration(profile=p.name, serial=conn.serial, version=conn.version, variant=chip_variant(conn),
                      targets=targets, neurons=neurons, quantities=tuple(quantities),
                      cells={bench.cell[q]: cells[q] for q in QUANTITIES}, measured=measured,
                      uncalibrated=uncalibrated if start is None else start.uncalibrated,
                      within_band={q: inside[q] for q in quantities}, bands=bands,
                      readout=bench.readout(), lines={q: np.stack(lines[q].coefficients()) for q in quantities},
                      rounds=rounds, seconds=time.perf_counter() - t0)
    bad = cal.neurons[~cal.usable]
    if len(bad):
        far = {q: int((np.abs(deviation(q, measured[q], getattr(targets, q))) > USABLE_BANDS * bands[q]).sum())
               for q in quantities}
        warnings.warn(f"{p.name} serial {conn.serial}: {len(bad)} neuron(s) beyond {USABLE_BANDS:g} bands of a "
                      f"target after {rounds} rounds, not usable ({', '.join(f'{q} {k}' for q, k in far.items() if k)}"
                      f"): neurons {', '.join(str(n) for n in bad[:20])}{', ...' if len(bad) > 20 else ''}",
                      stacklevel=3)
    return cal
