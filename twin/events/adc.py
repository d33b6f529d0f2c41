"""The chip's ADCs: the column ADC (correlation sensors and membranes, read
over the register bus or by the PPUs' vector unit) and the membrane ADC
(madc block: samples of one probe, the readout pad or a test ramp, sent to
the host)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from isa.profiles import Profile
from isa.regmap import RegisterMap

from ..analog import kernel as K
from ..analog.network import AnalogNetwork
from ..regbus import RegisterBus
from .readout import ReadoutPad


class ColumnADC:
    """Column-ADC conversions with the columns' offsets and noise (docs/model.md)."""

    def __init__(self, p: Profile, rm: RegisterMap, bus: RegisterBus, net: AnalogNetwork, clock: Callable[[], int]):
        self.p, self.rm, self.bus, self.net, self.clock = p, rm, bus, net, clock

    def codes(self, volts: np.ndarray, columns: np.ndarray) -> np.ndarray:
        a, m = self.p.analog, self.p.mismatch
        full = 1 << a.cadc_bits
        volts = np.asarray(volts, np.float64)
        offset = np.broadcast_to(self.net.fp.cadc_offset[columns], volts.shape).astype(np.float64)
        noise = (self.net.noise.standard_normal(volts.shape) * m.cadc_noise
                 if self.net.mismatch and m.cadc_noise > 0 else np.zeros(volts.shape))
        return K.cadc_codes(volts, offset, noise, float(a.adc_v_max), float(full))

    def _correlation_config(self) -> dict:
        return self.rm.register("correlation", "config").decode(int(self.bus.view("correlation", "config")[0]))

    def trace_codes(self, rows: np.ndarray, cols: np.ndarray, traces: np.ndarray) -> np.ndarray:
        """Column-ADC codes of sensors (global rows (n, 1), columns (n, k)):
        baseline minus trace, through the ADC with its offsets and noise."""
        p = self.p
        cfg = self._correlation_config()
        _, gcells = self.net.cell_outputs(self.clock(), bool(self.net.pm_config(self.bus)["enable"]))
        baseline = gcells[self.net.grole["corr_baseline"]]
        neurons = (rows // p.rows) * p.columns + cols
        code = self.codes(baseline - traces[rows, cols], neurons).astype(np.int64) + cfg["adc_offset"]
        return np.clip(code, 0, (1 << p.analog.cadc_bits) - 1).astype(np.uint32)

    def read_traces(self, idx: np.ndarray, traces: np.ndarray) -> np.ndarray:
        """Quads (flat (array, row, quad) indices) of a trace array as ADC words:
        one byte per synapse."""
        p = self.p
        q = np.asarray(idx, np.int64)
        rows = (q // p.quads_per_row)[:, None]
        cols = (q % p.quads_per_row)[:, None] * 4 + np.arange(4)
        code = self.trace_codes(rows, cols, traces)
        return self.rm.register("correlation", "causal").pack_lanes("causal", code)[:, 0]

    def correlation_readings(self, array: int) -> tuple[np.ndarray, np.ndarray]:
        """Column-ADC readings (uint8, rows x columns) of one synapse array's causal
        and acausal sensors, as the PPU's vector unit reads them."""
        p = self.p
        rows = np.arange(array * p.rows, (array + 1) * p.rows)[:, None]
        cols = np.arange(p.columns)[None, :]
        causal, acausal = self.net.traces()
        return (self.trace_codes(rows, cols, causal).astype(np.uint8),
                self.trace_codes(rows, cols, acausal).astype(np.uint8))

    def read_membrane(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, np.int64)
        return self.codes(self.net.S[K.V, idx], idx)

    def constants(self, pm_enabled: bool) -> tuple:
        """Column-ADC inputs of twin.cosim: ([baseline, full-scale volts], per-neuron
        offsets, noise sigma, the correlation config's adc_offset, code count)."""
        p, m = self.p, self.p.mismatch
        cfg = self._correlation_config()
        _, gcells = self.net.cell_outputs(self.clock(), pm_enabled)
        baseline = float(gcells[self.net.grole["corr_baseline"]])
        sd = float(m.cadc_noise) if self.net.mismatch and m.cadc_noise > 0 else 0.0
        return (np.array([baseline, p.analog.adc_v_max]), self.net.fp.cadc_offset.astype(np.float64), sd,
                float(cfg["adc_offset"]), float(1 << p.analog.cadc_bits))


class MembraneADC:
    """The membrane ADC (madc.config): a sample every `period` ticks while enabled."""

    def __init__(self, p: Profile, rm: RegisterMap, bus: RegisterBus, net: AnalogNetwork, pad: ReadoutPad):
        self.p, self.rm, self.net, self.pad = p, rm, net, pad
        self.config = bus.view("madc", "config")
        self.reset()

    def reset(self) -> None:
        self._next = 0                               # absolute tick of the next sample
        self._count = 0                              # samples taken since the ADC was enabled
        self._was_on = False

    def decoded(self) -> dict:
        return self.rm.register("madc", "config").decode(int(self.config[0]))

    def sample(self, start: int, until: int, trace: np.ndarray, k_next: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples of an advance from `start` to `until` (`trace`: the probe
        trace of its steps, up to step `k_next`)."""
        cfg = self.decoded()
        if not cfg["enable"]:
            self._was_on = False
            return np.zeros(0, np.int64), np.zeros(0, np.uint16)
        period = max(cfg["period"], 1)
        if not self._was_on:
            self._was_on = True
            self._next = start
            self._count = 0
        if self._next > until:
            return np.zeros(0, np.int64), np.zeros(0, np.uint16)
        n = (until - self._next) // period + 1
        times = self._next + period * np.arange(n, dtype=np.int64)
        if cfg["source"] == 2:      # test ramp
            values = ((self._count + np.arange(n)) % (1 << self.p.analog.madc_bits)).astype(np.uint16)
        else:
            if cfg["source"] == 0:
                volts = (self.pad.signal_at(times, trace, 0, k_next) if len(trace)
                         else np.full(n, self.net.S[K.V, cfg["neuron"]]))
            else:
                volts = self.pad.value(times, trace, k_next)
            a, m = self.p.analog, self.p.mismatch
            full = 1 << a.madc_bits
            code = volts / a.adc_v_max * full
            if self.net.mismatch and m.madc_noise > 0:
                code = code + self.net.noise.standard_normal(n) * m.madc_noise
            values = np.clip(np.rint(code), 0, full - 1).astype(np.uint16)
        self._next += n * period
        self._count += n
        return times, values
