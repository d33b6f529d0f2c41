"""An oscilloscope through pyvisa: the Rigol MSO1000Z/DS1000Z command subset
of docs/instruments.md, over any VISA resource (`TCPIP0::HOST::PORT::SOCKET`
for a raw LAN socket, served by pyvisa-py's pure-Python backend `@py`).

    with Oscilloscope("TCPIP0::127.0.0.1::5025::SOCKET") as scope:
        scope.configure(volts_per_div=0.05, offset=-0.45, seconds_per_div=5e-6)
        trace = scope.capture(lambda: conn.run(prog), level=0.5, slope="positive",
                              speedup=conn.profile.speedup)
        trace.times, trace.volts, trace.bio_times
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

#: Points per :WAVeform:DATA? read, per format (the DS1000Z's largest reads of its memory).
CHUNK_POINTS = {"BYTE": 250_000, "WORD": 125_000, "ASCii": 15_625}
_SLOPES = {"positive": "POSitive", "negative": "NEGative", "either": "RFALl"}
_SWEEPS = {"single": "SINGle", "normal": "NORMal", "auto": "AUTO"}


class InstrumentError(RuntimeError):
    """The instrument reported errors (its :SYSTem:ERRor? queue) or did not answer in time."""


@dataclass
class Trace:
    """A captured record: `times` in seconds of the chip's (hardware) time
    relative to the trigger point, `volts` at the scope's input."""

    times: np.ndarray
    volts: np.ndarray
    x_increment: float            # s between points (the scope's sample interval)
    y_increment: float            # V per ADC code (the scope's quantisation step)
    speedup: float | None = None  # biological / hardware time of the chip, if given

    @property
    def bio_times(self) -> np.ndarray:
        """`times` in biological seconds (needs `speedup`)."""
        if self.speedup is None:
            raise ValueError("no speedup given: pass speedup=conn.profile.speedup to fetch/capture")
        return self.times * self.speedup


class Oscilloscope:
    """A scope behind a VISA resource string.  `token`: a twin scope served
    beyond loopback wants it first (:SYSTem:TOKen)."""

    def __init__(self, resource: str, *, resource_manager=None, timeout: float = 10.0, token: str | None = None):
        import pyvisa

        self._own_rm = resource_manager is None
        self.rm = pyvisa.ResourceManager("@py") if resource_manager is None else resource_manager
        self.resource = resource
        try:
            self.inst = self.rm.open_resource(resource, read_termination="\n", write_termination="\n",
                                              timeout=int(timeout * 1000))
        except Exception as exc:
            raise InstrumentError(f"{resource}: cannot open ({exc})") from exc
        if token is not None:
            self.inst.write(f':SYSTem:TOKen "{token}"')
        self.idn = self.query("*IDN?")
        self.errors()                     # start with an empty error queue

    # ------------------------------------------------------------------ plumbing
    def write(self, command: str) -> None:
        self.inst.write(command)

    def query(self, command: str) -> str:
        try:
            return self.inst.query(command).strip()
        except Exception as exc:
            raise InstrumentError(f"{self.resource}: {command!r} got no answer ({exc})") from exc

    def errors(self) -> list[str]:
        """Empty the instrument's error queue; the entries it held."""
        out = []
        for _ in range(100):
            entry = self.query(":SYSTem:ERRor?")
            if entry.split(",", 1)[0].strip() in ("0", "+0"):
                break
            out.append(entry)
        return out

    def check(self, what: str) -> None:
        errs = self.errors()
        if errs:
            raise InstrumentError(f"{self.resource}: {what}: " + "; ".join(errs))

    def close(self) -> None:
        try:
            self.inst.close()
        finally:
            if self._own_rm:
                self.rm.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ settings
    def configure(self, *, volts_per_div: float, offset: float = 0.0, seconds_per_div: float,
                  position: float = 0.0, points: int | None = None, channel: int = 1) -> None:
        """Vertical scale (V/div) and offset (V: the screen centre shows
        -offset), time base (s/div of hardware time), the trigger's place
        (`position`: time of the screen centre after the trigger, s) and
        the record length."""
        if points is not None:
            self.write(f":ACQuire:MDEPth {int(points)}")
        self.write(f":CHANnel{channel}:DISPlay ON")
        self.write(f":CHANnel{channel}:SCALe {volts_per_div:.9e}")
        self.write(f":CHANnel{channel}:OFFSet {offset:.9e}")
        self.write(f":TIMebase:MAIN:SCALe {seconds_per_div:.9e}")
        self.write(f":TIMebase:MAIN:OFFSet {position:.9e}")
        self.check("configure")

    def arm(self, level: float, slope: str = "positive", sweep: str = "single", channel: int = 1) -> None:
        """An edge trigger on `channel` at `level` volts; `single` captures
        one record and stops, `normal` re-arms after each, `auto` also
        records without a trigger."""
        if slope not in _SLOPES or sweep not in _SWEEPS:
            raise ValueError(f"slope {slope!r} (one of {', '.join(_SLOPES)}), sweep {sweep!r} "
                             f"(one of {', '.join(_SWEEPS)})")
        self.write(":TRIGger:MODE EDGE")
        self.write(f":TRIGger:EDGe:SOURce CHANnel{channel}")
        self.write(f":TRIGger:EDGe:SLOPe {_SLOPES[slope]}")
        self.write(f":TRIGger:EDGe:LEVel {level:.9e}")
        self.write(f":TRIGger:SWEep {_SWEEPS[sweep]}")
        self.write(":SINGle" if sweep == "single" else ":RUN")
        self.check("arm")

    def status(self) -> str:
        """:TRIGger:STATus?: TD, WAIT, RUN, AUTO or STOP."""
        return self.query(":TRIGger:STATus?")

    def wait(self, timeout: float = 10.0, poll: float = 0.01) -> None:
        """Wait until a single capture is complete (the scope stopped)."""
        end = time.monotonic() + timeout
        while True:
            state = self.status()
            if state == "STOP":
                return
            if time.monotonic() > end:
                raise InstrumentError(f"{self.resource}: no trigger within {timeout:g} s (status {state})")
            time.sleep(poll)

    # ------------------------------------------------------------------ data
    def fetch(self, fmt: str = "BYTE", channel: int = 1, speedup: float | None = None) -> Trace:
        """The record in memory, read in chunks as the DS1000Z needs (RAW mode)."""
        from pyvisa.util import from_ieee_block

        fmt = {"byte": "BYTE", "word": "WORD", "ascii": "ASCii"}[fmt.lower()]
        self.write(f":WAVeform:SOURce CHANnel{channel}")
        self.write(":WAVeform:MODE RAW")
        self.write(f":WAVeform:FORMat {fmt}")
        depth = self.query(":ACQuire:MDEPth?")
        try:
            points = int(float(depth))
        except ValueError:                 # AUTO on a DS1000Z: depth = sample rate x 12 divisions x scale
            points = int(round(float(self.query(":ACQuire:SRATe?")) * 12 * float(self.query(":TIMebase:MAIN:SCALe?"))))
        parts, x0, xinc, yinc, yorg, yref = [], None, 0.0, 0.0, 0.0, 0.0
        for start in range(1, points + 1, CHUNK_POINTS[fmt]):
            stop = min(points, start + CHUNK_POINTS[fmt] - 1)
            self.write(f":WAVeform:STARt {start}")
            self.write(f":WAVeform:STOP {stop}")
            pre = self.query(":WAVeform:PREamble?").split(",")
            if len(pre) != 10:
                self.check("fetch")
                raise InstrumentError(f"{self.resource}: a preamble of {len(pre)} fields, not 10")
            xinc, xorg, xref = float(pre[4]), float(pre[5]), float(pre[6])
            yinc, yorg, yref = float(pre[7]), float(pre[8]), float(pre[9])
            if x0 is None:
                x0 = xorg - xref * xinc
            self.write(":WAVeform:DATA?")
            raw = self.inst.read_raw()
            if fmt == "ASCii":
                body = bytes(from_ieee_block(raw, datatype="B", container=bytearray)).decode()
                parts.append(np.array([float(v) for v in body.split(",") if v.strip()]))
            else:
                codes = from_ieee_block(raw, datatype="B" if fmt == "BYTE" else "H", is_big_endian=False,
                                        container=np.array).astype(np.float64)
                if fmt == "WORD":
                    codes = codes % 256            # the low byte holds the code
                parts.append((codes - yorg - yref) * yinc)
        self.check("fetch")
        volts = np.concatenate(parts) if parts else np.zeros(0)
        times = x0 + np.arange(len(volts)) * xinc
        return Trace(times, volts, xinc, yinc, speedup)

    def capture(self, experiment: Callable[[], object], *, level: float, slope: str = "positive",
                fmt: str = "BYTE", timeout: float = 10.0, speedup: float | None = None, channel: int = 1):
        """Arm a single edge trigger, run `experiment()`, wait for the record,
        fetch it: (trace, what experiment returned)."""
        self.arm(level, slope, "single", channel)
        result = experiment()
        self.wait(timeout)
        return self.fetch(fmt, channel, speedup), result
