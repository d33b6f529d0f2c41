"""SCPI conformance of the virtual scope (twin.scope), through pyvisa.

The scope's input is fed by hand with step signals (Scope._feed, what the
chip calls after each advance), so every expected value follows from the
settings by hand: dt = 12 div * scale / points, code = 127 + (V + offset) /
(scale / 25), a rising edge at tick E triggers at the first sample-clock time
at or after E, the trigger point is record point points/2 - position/dt.
"""
from __future__ import annotations

import numpy as np
import pytest
from pyvisa.util import from_ieee_block

from _scope_helpers import step_signal
from twin.scope import NOISE_DIV

TICK = 8e-9


def errors(inst) -> list[int]:
    out = []
    while True:
        code = int(inst.query(":SYSTem:ERRor?").split(",")[0])
        if code == 0:
            return out
        out.append(code)


def setup_capture(inst, *, points=1200, t_scale=1e-6, v_scale=0.1, offset=-0.4, level=0.4, slope="POS",
                  sweep=":SINGle", position=0.0):
    inst.write(f":ACQuire:MDEPth {points}")
    inst.write(f":TIMebase:MAIN:SCALe {t_scale}")
    inst.write(f":TIMebase:MAIN:OFFSet {position}")
    inst.write(f":CHANnel1:SCALe {v_scale}")
    inst.write(f":CHANnel1:OFFSet {offset}")
    inst.write(f":TRIGger:EDGe:SOURce CHANnel1;SLOPe {slope};LEVel {level}")
    inst.write(sweep)
    assert errors(inst) == []


def codes(inst, fmt="BYTE"):
    inst.write(f":WAVeform:FORMat {fmt}")
    if fmt == "ASCii":
        inst.write(":WAVeform:DATA?")
        body = bytes(from_ieee_block(inst.read_raw(), datatype="B", container=bytearray)).decode()
        return np.array([float(v) for v in body.split(",")])
    return inst.query_binary_values(":WAVeform:DATA?", datatype="B" if fmt == "BYTE" else "H",
                                    is_big_endian=False, container=np.array)


def test_common_commands(visa, scope_server):
    assert visa.query("*IDN?").startswith("bss-twin,virtual DS1000Z-subset scope,dls-1,")
    assert visa.query("*OPC?") == "1"
    assert visa.query("*ESR?") == "0"
    visa.write("*OPC")
    assert visa.query("*ESR?") == "1"              # OPC bit, cleared by the read
    assert visa.query("*ESR?") == "0"
    visa.write(":BOGus")                           # -113: a command error (CME, 32)
    visa.write(":CHANnel1:SCALe 99")               # -222: an execution error (EXE, 16)
    assert visa.query("*ESR?") == str(32 | 16)
    visa.write("*CLS")
    assert visa.query(":SYSTem:ERRor?") == '0,"No error"'
    visa.write(":CHANnel1:SCALe 0.2")
    visa.write("*RST")
    assert float(visa.query(":CHANnel1:SCALe?")) == 1.0
    assert visa.query(":TRIGger:SWEep?") == "AUTO"
    visa.write("*WAI")
    assert errors(visa) == []


@pytest.mark.parametrize("command, query, value, expect", [
    (":CHANnel1:SCALe", ":CHAN1:SCAL?", "0.05", 0.05),
    (":chan:scal", ":CHANNEL1:SCALE?", "50mV", 0.05),
    (":CHANnel1:OFFSet", ":CHAN1:OFFS?", "-0.45", -0.45),
    (":TIMebase:MAIN:SCALe", ":TIM:SCAL?", "5us", 5e-6),
    (":TIMebase:SCALe", ":TIMebase:MAIN:SCALe?", "2e-7", 2e-7),
    (":TIMebase:MAIN:OFFSet", ":TIM:OFFS?", "1e-7", 1e-7),
    (":TRIGger:EDGe:LEVel", ":TRIG:EDG:LEV?", "0.5", 0.5),
    (":ACQuire:MDEPth", ":ACQ:MDEP?", "12000", 12000),
    (":WAVeform:STARt", ":WAV:STAR?", "5", 5),
    (":WAVeform:STOP", ":WAV:STOP?", "500", 500),
])
def test_numeric_settings(visa, command, query, value, expect):
    visa.write(f"{command} {value}")
    assert float(visa.query(query)) == pytest.approx(expect, rel=1e-9)
    assert errors(visa) == []


@pytest.mark.parametrize("command, value, expect", [
    (":TRIGger:EDGe:SLOPe", "NEGative", "NEG"), (":TRIGger:EDGe:SLOPe", "rfal", "RFAL"),
    (":TRIGger:SWEep", "NORM", "NORM"), (":TRIGger:SWEep", "single", "SING"),
    (":TRIGger:MODE", "EDGE", "EDGE"), (":TRIGger:EDGe:SOURce", "CHAN1", "CHAN1"),
    (":WAVeform:SOURce", "CHANnel1", "CHAN1"), (":WAVeform:MODE", "RAW", "RAW"),
    (":WAVeform:FORMat", "ASCii", "ASC"), (":WAVeform:FORMat", "WORD", "WORD"),
    (":CHANnel1:DISPlay", "OFF", "0"), (":CHANnel1:DISPlay", "1", "1"),
])
def test_choice_settings(visa, command, value, expect):
    visa.write(f"{command} {value}")
    assert visa.query(f"{command}?") == expect
    assert errors(visa) == []


def test_compound_message_and_relative_paths(visa):
    assert visa.query(":TRIG:EDG:SLOP NEG;LEV 0.25;:CHAN1:SCAL 0.2;:TRIG:EDG:SLOP?;LEV?;*OPC?;:CHAN1:SCAL?") == \
        "NEG;2.5000000000e-01;1;2.0000000000e-01"
    assert errors(visa) == []


@pytest.mark.parametrize("message, code", [
    (":FOO:BAR 1", -113), ("*XYZ?", -113), (":CHANnel1:SCALe? 1", -108), (":CHANnel1:SCALe", -109),
    (":CHANnel1:SCALe 1,2", -108), (":CHANnel1:SCALe abc", -104), (":CHANnel1:SCALe 1kg", -131),
    (":CHANnel1:SCALe 100", -222), (":TIMebase:MAIN:SCALe 1", -222), (":ACQuire:MDEPth 10", -222),
    (":ACQuire:MDEPth 1.5", -104), (":TRIGger:EDGe:SLOPe SIDEways", -141), (":TRIGger:SWEep 7", -104),
    (":CHANnel2:SCALe 1", -114), (":CHANnel1:DISPlay MAYBE", -104), ("*RST?", -113),
    (":TRIGger:STATus", -113), (":RUN 1", -108), (":WAVeform:DATA?", -230), (":WAVeform:PREamble?", -230),
    (":CHAN1:SCAL \"0.1", -102), ("::CHAN1", -102), ("\x01*IDN?", -101), (":CHANnel1:SCALe ,1", -103),
])
def test_errors_land_in_the_queue(visa, scope_server, message, code):
    before = visa.query(":CHANnel1:SCALe?")
    visa.write(message)
    if message.endswith("DATA?"):                  # an empty block, so that the reader is not left waiting
        assert visa.read_raw() == b"#10\n"
    got = errors(visa)
    assert got == [code]
    assert visa.query(":CHANnel1:SCALe?") == before        # nothing changed
    assert visa.query("*IDN?").startswith("bss-twin")      # and it keeps working


def test_a_command_error_ends_the_message_an_execution_error_only_its_unit(visa):
    assert visa.query(":CHAN1:SCAL 100;:TRIG:EDG:LEV 0.3;:TRIG:EDG:LEV?") == "3.0000000000e-01"
    assert errors(visa) == [-222]
    visa.write(":BOGUS;:TRIG:EDG:LEV 0.1")
    assert errors(visa) == [-113]
    assert float(visa.query(":TRIG:EDG:LEV?")) == 0.3


def test_queue_overflow(visa):
    for _ in range(25):
        visa.write(":NOPE")
    got = errors(visa)
    assert len(got) == 20 and got[:19] == [-113] * 19 and got[-1] == -350


def test_single_capture_rising_edge(visa, scope_server):
    scope = scope_server.scope
    setup_capture(visa)
    assert visa.query(":TRIGger:STATus?") == "RUN"          # nothing seen yet
    t, v = step_signal(24000, 0.2, 0.6, 60000)
    scope._feed(t[t <= 480], v[t <= 480])
    assert visa.query(":TRIGger:STATus?") == "RUN"          # pre-trigger part (600 points * 1.25 ticks) not filled
    scope._feed(t[(t > 480) & (t <= 12000)], v[(t > 480) & (t <= 12000)])
    assert visa.query(":TRIGger:STATus?") == "WAIT"
    scope._feed(t[(t > 12000) & (t <= 24300)], v[(t > 12000) & (t <= 24300)])
    assert visa.query(":TRIGger:STATus?") == "TD"           # triggered, the record not complete
    scope._feed(t[t > 24300], v[t > 24300])
    assert visa.query(":TRIGger:STATus?") == "STOP"
    pre = visa.query(":WAVeform:PREamble?").split(",")
    assert pre[:4] == ["0", "0", "1200", "1"] and pre[6] == "0" and pre[9] == "127"
    xinc, xorg, yinc, yorg = float(pre[4]), float(pre[5]), float(pre[7]), float(pre[8])
    assert xinc == pytest.approx(1e-8) and xorg == pytest.approx(-6e-6)
    assert yinc == pytest.approx(0.004) and yorg == pytest.approx(-100)
    c = codes(visa)
    assert c.dtype == np.uint8 and len(c) == 1200
    # 0.2 V -> code 127 + (0.2 - 0.4) / 0.004 = 77; 0.6 V -> 177; noise 0.25 code rms
    assert np.all(np.abs(c[:600].astype(int) - 77) <= 1) and np.all(np.abs(c[600:].astype(int) - 177) <= 1)
    assert abs(c[:600].mean() - 77) < 0.05 and abs(c[600:].mean() - 177) < 0.05
    assert 0.1 < c[:600].std() / (NOISE_DIV * 25) < 2     # the stated noise (after rounding)
    assert np.array_equal(codes(visa, "WORD"), c)
    volts = codes(visa, "ASCii")
    assert np.allclose(volts, (c.astype(float) - yorg - 127) * yinc, atol=1e-6)
    assert errors(visa) == []
    scope._feed(*step_signal(24000, 0.2, 0.6, 60000))       # stopped: no new record
    assert scope.records == 1


def test_waveform_start_stop_window(visa, scope_server):
    setup_capture(visa)
    scope_server.scope._feed(*step_signal(24000, 0.2, 0.6, 60000))
    visa.write(":WAVeform:STARt 101;STOP 200")
    pre = visa.query(":WAVeform:PREamble?").split(",")
    assert pre[2] == "100" and float(pre[5]) == pytest.approx(-5e-6)
    assert float(visa.query(":WAVeform:XORigin?")) == pytest.approx(-5e-6)
    assert float(visa.query(":WAVeform:XINCrement?")) == pytest.approx(1e-8)
    assert float(visa.query(":WAVeform:YINCrement?")) == pytest.approx(0.004)
    assert float(visa.query(":WAVeform:YORigin?")) == pytest.approx(-100)
    assert visa.query(":WAVeform:YREFerence?") == "127" and visa.query(":WAVeform:XREFerence?") == "0"
    assert float(visa.query(":ACQuire:SRATe?")) == pytest.approx(1e8)
    assert len(codes(visa)) == 100
    visa.write(":WAVeform:STARt 300;STOP 200")
    visa.query_binary_values(":WAVeform:DATA?", datatype="B")
    assert errors(visa) == [-221]


@pytest.mark.parametrize("slope, rising, falling", [("POS", True, False), ("NEG", False, True),
                                                     ("RFAL", True, True)])
def test_slopes(visa, scope_server, slope, rising, falling):
    """A pulse: up at 20000, down at 40000 ticks; the trigger point (600) sits on the edge the slope takes."""
    setup_capture(visa, slope=slope)
    t = np.arange(0, 80001, 12, dtype=np.int64)
    v = np.where((t >= 20004) & (t < 40008), 0.6, 0.2).astype(np.float32)
    scope_server.scope._feed(t, v)
    c = codes(visa).astype(int)
    first_edge = 20004 if rising else 40008
    assert abs(c[599] - (77 if rising else 177)) <= 1 and abs(c[600] - (177 if rising else 77)) <= 1
    assert scope_server.scope.record.trigger_tick == pytest.approx(np.ceil(first_edge / 1.25) * 1.25)


def test_position_moves_the_trigger_point(visa, scope_server):
    setup_capture(visa, position=2e-6)                       # pre-trigger: 600 - 2 us / 10 ns = 400 points
    scope_server.scope._feed(*step_signal(24000, 0.2, 0.6, 60000))
    c = codes(visa).astype(int)
    assert float(visa.query(":WAVeform:XORigin?")) == pytest.approx(-4e-6)
    assert np.all(np.abs(c[:400] - 77) <= 1) and np.all(np.abs(c[400:] - 177) <= 1)


def test_normal_sweep_rearms_and_auto_records_without_trigger(visa, scope_server):
    scope = scope_server.scope
    setup_capture(visa, sweep=":TRIGger:SWEep NORMal;:RUN")
    t = np.arange(0, 300001, 12, dtype=np.int64)
    v = np.where((t // 30000) % 2 == 1, 0.6, 0.2).astype(np.float32)   # rising edges at 30000, 90000, ..., 270000
    for k in range(0, len(t), 500):                                      # advances of 6000 ticks
        scope._feed(t[k:k + 500], v[k:k + 500])
    assert scope.records == 5 and scope.record.triggered
    assert visa.query(":TRIGger:STATus?") == "WAIT"
    late = np.where(t >= 296000, 0.6, 0.2).astype(np.float32)           # one rising edge, near the end
    scope._feed(t + 300012, late)         # one long advance: searched in its last record lengths only
    assert scope.records == 6 and scope.record.trigger_tick == pytest.approx(300012 + 296004, abs=1.25)
    setup_capture(visa, sweep=":TRIGger:SWEep AUTO;:RUN", level=0.9)  # never reached
    before = scope.records
    scope._feed(t + 600024, np.full(len(t), 0.3, np.float32))
    assert scope.records > before and not scope.record.triggered
    assert visa.query(":TRIGger:STATus?") == "AUTO"
    assert np.all(np.abs(codes(visa).astype(int) - 102) <= 1)         # 0.3 V -> 127 - 25
    visa.write(":STOP")
    assert visa.query(":TRIGger:STATus?") == "STOP"


def test_a_real_chip_advance_feeds_the_scope(visa, scope_server):
    """Readout mux on neuron 0's membrane (readout bit set): an AUTO scope records as the chip advances."""
    chip = scope_server.scope.chip
    rm = chip.regmap
    chip.bus.view("madc", "readout_mux")[0] = rm.register("madc", "readout_mux").encode(source=1, neuron=0, cell=0)
    cfg = chip.bus.view("neuron", "config")
    cfg[0] = int(cfg[0]) | rm.register("neuron", "config").field("readout").mask
    setup_capture(visa, sweep=":TRIGger:SWEep AUTO;:RUN", level=2.0, v_scale=0.5, offset=0.0)
    chip.advance(chip.now + 20000, np.zeros(0, np.int64), np.zeros(0, np.uint16))
    assert scope_server.scope.records >= 1
    assert len(codes(visa)) == 1200


def test_host_fetch_when_the_depth_reads_auto(scope_server):
    """A DS1000Z answers :ACQuire:MDEPth? with AUTO in auto depth: the host takes rate x 12 div x scale."""
    from host.instruments import Oscilloscope

    scope = scope_server.scope
    scope.execute(":TIM:SCAL 1e-6;:CHAN1:SCAL 0.1;:CHAN1:OFFS -0.4;:TRIG:EDG:LEV 0.4;:SING")
    scope._feed(*step_signal(24000, 0.2, 0.6, 60000))
    depth = next(c for c in scope.parser.tree if c.pattern == ":ACQuire:MDEPth")
    depth.query = lambda _: "AUTO"
    with Oscilloscope(scope_server.resource) as osc:
        trace = osc.fetch()
    assert len(trace.volts) == 1200 and trace.times[600] == pytest.approx(0.0, abs=1e-15)
    assert np.all(np.abs(trace.volts[:600] - 0.2) <= 0.0041) and np.all(np.abs(trace.volts[600:] - 0.6) <= 0.0041)
