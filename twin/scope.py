"""A virtual oscilloscope on the twin's analog readout pad, speaking SCPI on
a raw TCP socket like a LAN scope (VISA resource `TCPIP0::HOST::PORT::SOCKET`).

It follows a subset of the Rigol MSO1000Z/DS1000Z programming guide
(chapter 2, "Command System": IEEE 488.2 common commands, :RUN/:STOP/:SINGle,
:ACQuire, :CHANnel<n>, :SYSTem, :TIMebase, :TRIGger, :WAVeform);
docs/instruments.md lists the commands, where the twin differs, its noise and
its limits.

What it samples: channel 1 is wired to the readout pad, the signal the
membrane ADC converts with source 1 (twin.events.readout: `readout_mux`), one value per
analog step held until the next (the same zero-order hold the membrane ADC
sees).  The scope takes that signal at its own sample clock (record length
`:ACQuire:MDEPth` points over the 12 horizontal divisions) in chip time, adds
its own input noise (NOISE_DIV divisions rms) and quantises to 8 bit
(25 codes per division, code 127 at the screen centre).  The chip calls
`Scope._feed` after each advance (`ReadoutPad.listeners`,
twin/events/readout.py), so nothing the pad shows while the scope runs is
missed.
"""
from __future__ import annotations

import hmac
import ipaddress
import math
import selectors
import socket
import threading
import time
from dataclasses import dataclass

import numpy as np

from isa.wire import FPGA_TICK_S

from . import scpi
from .scpi import Command, ErrorQueue, Parser, ScpiError

__all__ = ["Scope", "ScopeServer", "NOISE_DIV", "CODES_PER_DIV", "Y_REFERENCE"]

#: Horizontal divisions of the screen (the record spans them).
H_DIVS = 12
#: 8-bit ADC: codes per vertical division and the code at the screen centre.
CODES_PER_DIV = 25
Y_REFERENCE = 127
#: Input-referred noise of the scope, in vertical divisions rms (added before quantisation).
NOISE_DIV = 0.01
#: Ranges of the settings (the twin's own; docs/instruments.md).
V_SCALE = (1e-3, 10.0)                  # V/div
T_SCALE = (5e-9, 1e-3)                  # s/div (hardware time)
MDEPTH = (100, 1_200_000)               # points per record
#: A NORMal/AUTO scope finishing more records than this in one chip advance skips to its end.
MAX_RECORDS_PER_FEED = 64
#: Longest program message line; a longer one is dropped with -223.
MAX_LINE = 1 << 16
#: Seconds a client of a scope with a token has to send it.
AUTH_SECONDS = 5.0

_SLOPES = ("POSitive", "NEGative", "RFALl")
_SWEEPS = ("AUTO", "NORMal", "SINGle")
_FORMATS = ("WORD", "BYTE", "ASCii")
_MODES = ("NORMal", "MAXimum", "RAW")


@dataclass
class Settings:
    """Front-panel state after *RST."""

    v_scale: float = 1.0          # :CHANnel1:SCALe, V/div
    v_offset: float = 0.0         # :CHANnel1:OFFSet, V (the screen centre is at -offset)
    display: bool = True          # :CHANnel1:DISPlay
    t_scale: float = 1e-6         # :TIMebase:MAIN:SCALe, s/div
    t_offset: float = 0.0         # :TIMebase:MAIN:OFFSet, s: screen centre relative to the trigger
    mdepth: int = 1200            # :ACQuire:MDEPth, points
    sweep: str = "AUTO"           # :TRIGger:SWEep
    slope: str = "POSitive"       # :TRIGger:EDGe:SLOPe
    level: float = 0.0            # :TRIGger:EDGe:LEVel, V
    wav_format: str = "BYTE"      # :WAVeform:FORMat
    wav_mode: str = "NORMal"      # :WAVeform:MODE
    wav_start: int = 1            # :WAVeform:STARt (1-based)
    wav_stop: int = 1200          # :WAVeform:STOP
    mode: str = "EDGE"            # :TRIGger:MODE (edge only)


@dataclass
class Record:
    """One completed acquisition: 8-bit codes and the settings it was taken with."""

    codes: np.ndarray             # uint8
    x_increment: float            # s
    x_origin: float               # s, time of point 0 relative to the trigger
    y_increment: float            # V per code
    y_origin: float               # codes (Rigol: V = (code - yorigin - yreference) * yincrement)
    triggered: bool
    trigger_tick: float           # chip tick of the trigger point (float: the sample clock is not tick-aligned)


class Scope:
    """The instrument: settings, acquisition on the chip's readout pad, the
    SCPI command table.  `execute(line)` runs one program message."""

    def __init__(self, chip, seed: int = 0):
        self.chip = chip
        self.seed = seed
        self.lock = threading.RLock()
        self.errors = ErrorQueue()
        self.step_ticks = chip.profile.analog.step_ticks
        self.records = 0               # acquisitions completed since the scope was made
        self.skipped = 0               # times a NORMal/AUTO scope skipped chip time (only the last record is kept)
        self._reset()
        self.parser = Parser(self._table(), self.errors)
        self._attached = False
        self.attach()

    # ------------------------------------------------------------------ wiring
    def attach(self) -> None:
        if not self._attached:
            self.chip.core.readout.listeners.append(self._feed)
            self._attached = True

    def detach(self) -> None:
        if self._attached:
            self.chip.core.readout.listeners.remove(self._feed)
            self._attached = False

    def execute(self, line: str) -> bytes | None:
        with self.lock:
            return self.parser.execute(line)

    # ------------------------------------------------------------------ state
    def _reset(self) -> None:
        self.s = Settings()
        self.running = True             # a scope after *RST runs (AUTO sweep)
        self.record: Record | None = None
        self._rearm()

    def _rearm(self) -> None:
        """Start a new acquisition: forget the pad history and the trigger."""
        self._chunks: list[tuple[np.ndarray, np.ndarray]] = []   # pad steps (ticks, volts) still needed
        self._last_tick: float | None = None  # the last step seen
        self._last_volt: float | None = None
        self._origin: float | None = None     # sample clock: tick of sample 0
        self._arm_tick: float | None = None   # a record may start no earlier than this
        self._trig: tuple[float, bool] | None = None   # (tick of the trigger sample, triggered)

    @property
    def dt_s(self) -> float:
        return H_DIVS * self.s.t_scale / self.s.mdepth

    @property
    def pre(self) -> int:
        """Record points before the trigger point."""
        return int(round(self.s.mdepth / 2 - self.s.t_offset / self.dt_s))

    def status(self) -> str:
        """:TRIGger:STATus? -- TD, WAIT, RUN, AUTO or STOP."""
        if not self.running:
            return "STOP"
        if self._trig is not None and self._trig[1]:
            return "TD"
        if self.s.sweep == "AUTO":
            return "AUTO"
        if self._origin is None or self._last_tick - self._arm_tick < self.pre * self.dt_s / FPGA_TICK_S:
            return "RUN"                        # the pre-trigger part not filled yet
        return "WAIT"

    # ------------------------------------------------------------------ acquisition
    def _feed(self, ticks: np.ndarray, volts: np.ndarray) -> None:
        """The pad's values after each step of one chip advance (ticks of the step boundaries)."""
        if not len(ticks):
            return
        with self.lock:
            if not self.running:
                return
            ticks, volts = ticks.astype(np.int64), volts.astype(np.float64)
            if self._origin is None:
                self._origin = self._arm_tick = float(ticks[0])
            if self.s.sweep != "SINGle" and self._trig is None:
                # only the last record is kept: a long advance is searched in its last few record lengths
                horizon = float(ticks[-1]) - 4 * (self.pre + self.s.mdepth) * self.dt_s / FPGA_TICK_S
                if horizon > self._arm_tick:
                    self._arm_tick = horizon
                    self.skipped += 1
            prev = self._last_volt
            self._chunks.append((ticks, volts))
            self._last_tick, self._last_volt = float(ticks[-1]), float(volts[-1])
            done = 0
            while self.running and self._acquire(ticks, volts, prev):
                done += 1
                if done >= MAX_RECORDS_PER_FEED:
                    self._trig = None
                    self._arm_tick = self._last_tick
                    self.skipped += 1
                    break
            self._prune()

    def _grid_after(self, tick: float) -> float:
        """The first sample-clock time at or after `tick`."""
        dtt = self.dt_s / FPGA_TICK_S
        return self._origin + math.ceil((tick - self._origin) / dtt - 1e-9) * dtt

    def _acquire(self, T: np.ndarray, V: np.ndarray, prev: float | None) -> bool:
        """Look for the trigger in the newest steps (T, V; `prev` the value
        before them), finish the record when the history covers it; True when
        a record was completed (and the scope re-armed or stopped)."""
        s, dtt = self.s, self.dt_s / FPGA_TICK_S
        pre, n = self.pre, s.mdepth
        if self._trig is None:
            earliest = self._arm_tick + pre * dtt          # the pre-trigger part lies after arming
            j = int(np.searchsorted(T, earliest, "left"))
            if j < len(T):
                cur = V[j:]
                before = V[j - 1:-1] if j > 0 else np.concatenate([[np.nan if prev is None else prev], V[:-1]])
                if s.slope == "POSitive":
                    hit = (before < s.level) & (cur >= s.level)
                elif s.slope == "NEGative":
                    hit = (before > s.level) & (cur <= s.level)
                else:
                    hit = ((before < s.level) & (cur >= s.level)) | ((before > s.level) & (cur <= s.level))
                k = np.flatnonzero(hit)
                if len(k):
                    self._trig = (self._grid_after(max(float(T[j + k[0]]), earliest)), True)
            if self._trig is None and s.sweep == "AUTO" and self._last_tick - self._arm_tick >= (pre + n) * dtt:
                # no trigger for a record length past the pre-trigger part: a record anyway
                last = self._origin + math.floor((self._last_tick - self._origin) / dtt + 1e-9) * dtt
                self._trig = (last - (n - 1 - pre) * dtt, False)
            if self._trig is None:
                return False
        t_trig, triggered = self._trig
        t_end = t_trig + (n - 1 - pre) * dtt
        if self._last_tick < t_end:
            return False
        HT = np.concatenate([c[0] for c in self._chunks]) if len(self._chunks) > 1 else self._chunks[0][0]
        HV = np.concatenate([c[1] for c in self._chunks]) if len(self._chunks) > 1 else self._chunks[0][1]
        times = t_trig + (np.arange(n) - pre) * dtt
        idx = np.clip(np.searchsorted(HT, times, "right") - 1, 0, len(HT) - 1)
        self._finish(HV[idx], triggered, t_trig)
        self._trig = None
        if s.sweep == "SINGle":
            self.running = False
            return True
        self._arm_tick = t_end + dtt
        return True

    def _finish(self, volts: np.ndarray, triggered: bool, t_trig: float) -> None:
        s = self.s
        yinc = s.v_scale / CODES_PER_DIV
        rng = np.random.default_rng([self.seed, self.records])
        code = Y_REFERENCE + (volts + s.v_offset) / yinc + rng.standard_normal(len(volts)) * (NOISE_DIV * CODES_PER_DIV)
        codes = np.clip(np.rint(code), 0, 255).astype(np.uint8)
        self.record = Record(codes, self.dt_s, -self.pre * self.dt_s, yinc, s.v_offset / yinc, triggered, t_trig)
        self.records += 1

    def _prune(self) -> None:
        """Keep the steps a record (its pre-trigger part, or a whole AUTO record) may still need."""
        if not self._chunks:
            return
        dtt = self.dt_s / FPGA_TICK_S
        if not self.running:
            self._chunks = []
            return
        if self._trig is not None:           # the pending record starts pre points before its trigger
            keep_from = self._trig[0] - (self.pre + 1) * dtt
        elif self.s.sweep == "AUTO":         # an untriggered record ends now
            keep_from = self._last_tick - (self.s.mdepth + 2) * dtt
        else:                                # a trigger still to come lies after now
            keep_from = self._last_tick - (self.pre + 2) * dtt
        keep_from -= self.step_ticks
        drop = 0                             # whole chunks whose successor starts at or before keep_from
        while drop + 1 < len(self._chunks) and self._chunks[drop + 1][0][0] <= keep_from:
            drop += 1
        if drop:
            del self._chunks[:drop]
        t, v = self._chunks[0]
        j = max(0, int(np.searchsorted(t, keep_from, "right")) - 2)
        if j and len(self._chunks) == 1 and len(t) > 4096:
            self._chunks[0] = (t[j:], v[j:])   # a long advance: keep its tail only

    # ------------------------------------------------------------------ setting helpers
    def _changed(self) -> None:
        """A setting of the acquisition changed: a running scope starts over."""
        self._rearm()

    def _real(self, attr: str, lo, hi, unit: str, rearm: bool = True):
        def command(_, params):
            value = scpi.number(scpi.one(params, attr), unit)
            a, b = (lo() if callable(lo) else lo), (hi() if callable(hi) else hi)
            if not a <= value <= b:
                raise ScpiError(-222, f"{value:g} outside {a:g}..{b:g} {unit}")
            setattr(self.s, attr, value)
            if rearm:
                self._changed()

        def query(_):
            return scpi.nr3(getattr(self.s, attr))
        return command, query

    def _choice(self, attr: str, choices, rearm: bool = True, after=None):
        def command(_, params):
            setattr(self.s, attr, scpi.choice(scpi.one(params, attr), choices))
            if rearm:
                self._changed()
            if after:
                after()

        def query(_):
            return scpi.short_form(getattr(self.s, attr))
        return command, query

    def _offset_limit(self) -> float:
        return 2.0 if self.s.v_scale < 0.5 else 100.0

    def _check_t_offset(self) -> None:
        half = H_DIVS / 2 * self.s.t_scale
        self.s.t_offset = min(max(self.s.t_offset, -half), half)

    # ------------------------------------------------------------------ the table
    def _table(self) -> list[Command]:
        s = self

        def simple(fn):
            def command(_, params):
                scpi.none(params, "command")
                fn()
            return command

        def run():
            s.running = True
            s._rearm()

        def stop():
            s.running = False
            s._rearm()

        def single():
            s.s.sweep = "SINGle"
            run()

        def cls():
            s.errors.clear()

        def esr(_):
            value, s.errors.esr = s.errors.esr, 0
            return str(value)

        def opc():
            s.errors.esr |= scpi.ESR_OPC

        def idn(_):
            c = s.chip
            return f"bss-twin,virtual DS1000Z-subset scope,{c.profile.name}-{c.serial},0.1"

        def channel_source(attr):
            def command(_, params):
                scpi.choice(scpi.one(params, attr), ("CHANnel1",))
            return command, lambda _: "CHAN1"

        def mdepth(_, params):
            text = scpi.one(params, "MDEPth")
            value = scpi.integer(text)
            if not MDEPTH[0] <= value <= MDEPTH[1]:
                raise ScpiError(-222, f"{value} points outside {MDEPTH[0]}..{MDEPTH[1]}")
            s.s.mdepth = value
            s._changed()

        def t_scale(_, params):
            value = scpi.number(scpi.one(params, "SCALe"), "s")
            if not T_SCALE[0] <= value <= T_SCALE[1]:
                raise ScpiError(-222, f"{value:g} outside {T_SCALE[0]:g}..{T_SCALE[1]:g} s/div")
            s.s.t_scale = value
            s._check_t_offset()
            s._changed()

        def v_scale(_, params):
            value = scpi.number(scpi.one(params, "SCALe"), "V")
            if not V_SCALE[0] <= value <= V_SCALE[1]:
                raise ScpiError(-222, f"{value:g} outside {V_SCALE[0]:g}..{V_SCALE[1]:g} V/div")
            s.s.v_scale = value
            lim = s._offset_limit()
            s.s.v_offset = min(max(s.s.v_offset, -lim), lim)
            s._changed()

        def display(_, params):
            s.s.display = scpi.boolean(scpi.one(params, "DISPlay"))

        def wav_index(attr):
            def command(_, params):
                value = scpi.integer(scpi.one(params, attr))
                if not 1 <= value <= MDEPTH[1]:
                    raise ScpiError(-222, f"{value} outside 1..{MDEPTH[1]}")
                setattr(s.s, attr, value)
            return command, lambda _: str(getattr(s.s, attr))

        half = lambda: H_DIVS / 2 * s.s.t_scale
        return [
            Command("*IDN", query=idn),
            Command("*RST", command=simple(s._reset)),
            Command("*CLS", command=simple(cls)),
            Command("*ESR", query=esr),
            Command("*OPC", command=simple(opc), query=lambda _: "1"),
            Command("*WAI", command=simple(lambda: None)),
            Command(":RUN", command=simple(run)),
            Command(":STOP", command=simple(stop)),
            Command(":SINGle", command=simple(single)),
            Command(":ACQuire:MDEPth", command=mdepth, query=lambda _: str(s.s.mdepth)),
            Command(":ACQuire:SRATe", query=lambda _: scpi.nr3(1 / s.dt_s)),
            Command(":CHANnel<n>:SCALe", command=v_scale, query=lambda _: scpi.nr3(s.s.v_scale)),
            Command(":CHANnel<n>:OFFSet", *s._real("v_offset", lambda: -s._offset_limit(), s._offset_limit, "V")),
            Command(":CHANnel<n>:DISPlay", command=display, query=lambda _: str(int(s.s.display))),
            Command(":TIMebase[:MAIN]:SCALe", command=t_scale, query=lambda _: scpi.nr3(s.s.t_scale)),
            Command(":TIMebase[:MAIN]:OFFSet", *s._real("t_offset", lambda: -half(), half, "s")),
            Command(":TRIGger:MODE", *s._choice("mode", ("EDGE",), rearm=False)),
            Command(":TRIGger:SWEep", *s._choice("sweep", _SWEEPS)),
            Command(":TRIGger:STATus", query=lambda _: s.status()),
            Command(":TRIGger:EDGe:SOURce", *channel_source("SOURce")),
            Command(":TRIGger:EDGe:SLOPe", *s._choice("slope", _SLOPES, rearm=False)),
            Command(":TRIGger:EDGe:LEVel", *s._real("level", lambda: -5 * s.s.v_scale - s.s.v_offset,
                                                             lambda: 5 * s.s.v_scale - s.s.v_offset, "V", rearm=False)),
            Command(":WAVeform:SOURce", *channel_source("SOURce")),
            Command(":WAVeform:MODE", *s._choice("wav_mode", _MODES, rearm=False)),
            Command(":WAVeform:FORMat", *s._choice("wav_format", _FORMATS, rearm=False)),
            Command(":WAVeform:STARt", *wav_index("wav_start")),
            Command(":WAVeform:STOP", *wav_index("wav_stop")),
            Command(":WAVeform:DATA", query=lambda _: s._data()),
            Command(":WAVeform:PREamble", query=lambda _: s._preamble()),
            Command(":WAVeform:XINCrement", query=lambda _: scpi.nr3(s._rec().x_increment)),
            Command(":WAVeform:XORigin", query=lambda _: scpi.nr3(s._window()[2])),
            Command(":WAVeform:XREFerence", query=lambda _: "0"),
            Command(":WAVeform:YINCrement", query=lambda _: scpi.nr3(s._rec().y_increment)),
            Command(":WAVeform:YORigin", query=lambda _: scpi.nr3(s._rec().y_origin)),
            Command(":WAVeform:YREFerence", query=lambda _: str(Y_REFERENCE)),
            Command(":SYSTem:ERRor[:NEXT]", query=lambda _: s.errors.pop()),
        ]

    # ------------------------------------------------------------------ waveform transfer
    def _rec(self) -> Record:
        if self.record is None:
            raise ScpiError(-230, "no waveform acquired yet")
        return self.record

    def _window(self) -> tuple[int, int, float]:
        """(first, last+1) point of :WAVeform:STARt..STOP in the record, and its x origin."""
        rec = self._rec()
        first = min(self.s.wav_start, len(rec.codes)) - 1
        last = min(self.s.wav_stop, len(rec.codes))
        if last <= first:
            raise ScpiError(-221, f":WAVeform:STARt {self.s.wav_start} after :WAVeform:STOP {self.s.wav_stop}")
        return first, last, rec.x_origin + first * rec.x_increment

    def _data(self) -> bytes:
        try:
            first, last, _ = self._window()
        except ScpiError as exc:
            self.errors.push(exc.code, exc.detail)
            return scpi.ieee_block(b"")           # an empty block, so that a reader is not left waiting
        rec = self.record
        codes = rec.codes[first:last]
        if self.s.wav_format == "BYTE":
            body = codes.tobytes()
        elif self.s.wav_format == "WORD":      # two bytes per point, the low byte valid (DS1000Z)
            body = codes.astype("<u2").tobytes()
        else:
            volts = (codes.astype(np.float64) - rec.y_origin - Y_REFERENCE) * rec.y_increment
            body = ",".join(f"{v:.6e}" for v in volts).encode()
        return scpi.ieee_block(body)

    def _preamble(self) -> str:
        first, last, x0 = self._window()
        rec = self.record
        fmt = {"BYTE": 0, "WORD": 1, "ASCii": 2}[self.s.wav_format]
        mode = {"NORMal": 0, "MAXimum": 1, "RAW": 2}[self.s.wav_mode]
        return ",".join([str(fmt), str(mode), str(last - first), "1", scpi.nr3(rec.x_increment), scpi.nr3(x0), "0",
                         scpi.nr3(rec.y_increment), scpi.nr3(rec.y_origin), str(Y_REFERENCE)])


# ---------------------------------------------------------------------------- the socket
def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host) if host != "::1" else host).is_loopback
    except (OSError, ValueError):
        return False


class _Client:
    def __init__(self, conn: socket.socket, who: str):
        self.conn, self.who = conn, who
        self.inbuf = bytearray()
        self.outbuf = b""             # the response being sent, from offset `sent`
        self.sent = 0
        self.dropping = False          # inside a line longer than MAX_LINE
        self.since = time.monotonic()
        self.authenticated = False
        self.kill: str | None = None   # why the connection is to be closed

    @property
    def pending(self) -> bool:
        return self.sent < len(self.outbuf)


class ScopeServer:
    """A Scope on a TCP port, one client at a time: a second client is
    refused (its connection closed at once, counted in `refused`) while one is
    connected.  `start()` returns self; `port`, `resource` (the VISA resource
    string) once started.  Beyond loopback it needs `token`: a client then
    sends `:SYSTem:TOKen "<token>"` first (until then every command fails
    with -203 Command protected; a wrong token closes the connection)."""

    def __init__(self, chip, host: str = "127.0.0.1", port: int = 0, token: str | None = None, seed: int = 0,
                 log=None):
        if token is None and not _loopback(host):
            raise ValueError(f"a scope bound to {host} (beyond loopback) needs a token (bss-twin serve --token-file)")
        self.scope = Scope(chip, seed)
        self.token = token
        self._bind = (host, port)
        self._log = log
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._client: _Client | None = None
        self.refused = 0               # connections refused while another client was connected
        self.dropped_lines = 0         # lines longer than MAX_LINE
        self.broken = 0                # clients gone while a response was being sent
        self.interrupted = 0           # responses discarded by -410

    @property
    def address(self) -> tuple[str, int]:
        if self._sock is None:
            raise RuntimeError("scope server not started")
        return tuple(self._sock.getsockname()[:2])

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def resource(self) -> str:
        host, port = self.address
        return f"TCPIP0::{host}::{port}::SOCKET"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self) -> "ScopeServer":
        if self._sock is None:
            host, port = self._bind
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
            self._sock = socket.create_server((host, port), family=family, backlog=8)
            self._sock.setblocking(False)
            self._thread = threading.Thread(target=self._loop, name="bss-twin-scope", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.scope.detach()

    def _say(self, text: str) -> None:
        if self._log is not None:
            self._log(text)

    # ------------------------------------------------------------------ loop
    def _loop(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._sock, selectors.EVENT_READ, None)
        try:
            while not self._stop.is_set():
                c = self._client
                if c is not None:
                    sel.modify(c.conn, selectors.EVENT_READ | (selectors.EVENT_WRITE if c.pending else 0), c)
                    if self.token is not None and not c.authenticated and time.monotonic() - c.since > AUTH_SECONDS:
                        self._close(sel, "no token in time")
                        continue
                for key, mask in sel.select(0.1):
                    if key.data is None:
                        self._accept(sel)
                    elif self._client is key.data:
                        try:
                            if mask & selectors.EVENT_WRITE:
                                self._send(key.data)
                            if mask & selectors.EVENT_READ:
                                data = key.data.conn.recv(1 << 16)
                                if not data:
                                    self._close(sel, "disconnected")
                                    continue
                                self._input(key.data, data)
                                if key.data.kill:
                                    self._close(sel, key.data.kill)
                        except (ConnectionError, OSError) as exc:
                            self._close(sel, f"connection lost ({exc.__class__.__name__})")
        finally:
            if self._client is not None:
                self._close(sel, "scope stopping")
            sel.close()
            self._sock.close()

    def _accept(self, sel) -> None:
        try:
            conn, addr = self._sock.accept()
        except OSError:
            return
        who = f"{addr[0]}:{addr[1]}"
        if self._client is not None:
            self.refused += 1
            self._say(f"scope: {who} refused ({self._client.who} is connected)")
            conn.close()
            return
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._client = _Client(conn, who)
        sel.register(conn, selectors.EVENT_READ, self._client)
        self._say(f"scope: {who} connected")

    def _close(self, sel, why: str) -> None:
        c, self._client = self._client, None
        if c.pending:
            self.broken += 1
        try:
            sel.unregister(c.conn)
        except (KeyError, ValueError):
            pass
        try:
            c.conn.close()
        except OSError:
            pass
        self._say(f"scope: {c.who} {why}")

    def _send(self, c: _Client) -> None:
        view = memoryview(c.outbuf)
        while c.sent < len(c.outbuf):
            try:
                c.sent += c.conn.send(view[c.sent:c.sent + (1 << 20)])
            except BlockingIOError:
                return
        c.outbuf, c.sent = b"", 0

    def _input(self, c: _Client, data: bytes) -> None:
        c.inbuf += data
        while True:
            i = c.inbuf.find(b"\n")
            if i < 0:
                break
            line = bytes(c.inbuf[:i])
            del c.inbuf[:i + 1]
            if c.dropping:                  # the end of an over-long line
                c.dropping = False
                continue
            if c.pending:                   # the last response was not read before this message
                c.outbuf, c.sent = b"", 0
                self.interrupted += 1
                with self.scope.lock:
                    self.scope.errors.push(-410, "a new message before the last response was read")
            if not self._authorised(c, line):
                if c.kill:
                    return
                continue
            response = self.scope.execute(line.rstrip(b"\r").decode("latin-1"))
            if response is not None:
                c.outbuf, c.sent = response + b"\n", 0
                self._send(c)
        if len(c.inbuf) > MAX_LINE:
            c.inbuf.clear()
            c.dropping = True
            self.dropped_lines += 1
            with self.scope.lock:
                self.scope.errors.push(-223, f"a line longer than {MAX_LINE} bytes dropped")

    def _authorised(self, c: _Client, line: bytes) -> bool:
        """With a token, until the client sent it: True when `line` is to be
        executed; the token line itself is not (a wrong one closes the connection)."""
        if self.token is None or c.authenticated:
            return True
        head, _, arg = line.strip().decode("latin-1").partition(" ")
        if head.upper().lstrip(":") in ("SYST:TOK", "SYSTEM:TOKEN", "SYST:TOKEN", "SYSTEM:TOK"):
            try:
                given = scpi.string(arg.strip())
            except ScpiError:
                given = ""
            if hmac.compare_digest(given.encode(), self.token.encode()):
                c.authenticated = True
            else:
                c.kill = "sent a wrong token"
            return False
        with self.scope.lock:
            self.scope.errors.push(-203, "send :SYSTem:TOKen first")
        return False
