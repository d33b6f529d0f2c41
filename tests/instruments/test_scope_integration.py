"""The virtual scope against the membrane ADC: pyvisa opens the twin's scope
by resource string, arms an edge trigger on a neuron's membrane (readout mux
on that neuron), the host plays spike input over TCP, and the captured trace
matches the membrane ADC's samples of the same run (source 1: the same pad)
within the stated noise of both and the trigger's timing resolution."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import host
from host import units
from host.instruments import InstrumentError, Oscilloscope
from isa.wire import FPGA_TICK_S
from twin.chip import Chip
from twin.scope import CODES_PER_DIV, NOISE_DIV, ScopeServer
from twin.server import TwinServer

ROOT = Path(__file__).resolve().parents[2]
NEURON = 5
LEVEL = 0.45
MADC_PERIOD = 8                         # ticks (64 ns)
V_DIV, OFFSET, T_DIV, POSITION = 0.05, -0.45, 5e-6, 20e-6


@pytest.fixture(scope="module")
def bench():
    from tools.demo import _cells

    chip = Chip("dls", 3)                                   # with fixed-pattern and temporal noise
    server = TwinServer(chip, shared=True).start()
    scope = ScopeServer(chip).start()
    conn = host.connect(server.url)
    p = conn.profile
    prog = conn.program()
    prog.write(host.ChipOnly(), host.CapMemConfig(enable=1))
    weights = np.zeros((p.synapse_arrays * p.rows, p.columns), np.int64)
    weights[0, NEURON] = conn.regmap.register("synapse", "weights").field("weight0").limit
    words = host.synapse_words(conn.regmap, weights, np.zeros_like(weights))
    prog.write_words(conn.regmap.addresses("synapse", "weights"), words[0].ravel())
    prog.write_words(conn.regmap.addresses("synapse", "labels"), words[1].ravel())
    prog.write(host.SynapseDriverOnChip(0, 0), host.SynapseDriverConfig(enable=1, inhibitory=0, gain=8, source=0))
    for name, value in _cells(p).items():
        prog.write(host.CapMemCellOnChip(NEURON, name), host.CapMemCell(value))
    prog.write(host.NeuronOnChip(NEURON), host.NeuronConfig(enable=1, refractory=40, refractory_clock=4, readout=1))
    prog.write(host.ChipOnly(), host.ReadoutMuxConfig(source=1, neuron=NEURON))
    conn.run(prog)
    yield conn, scope
    conn.close()
    scope.stop()
    server.stop()


def run_experiment(conn):
    settle = units.us(50).ticks()
    spikes = settle + np.array([0, 2000, 2600, 3000, 3200, 5000])
    prog = conn.program()
    prog.timer_reset()
    prog.write(host.ChipOnly(), host.MADCConfig(enable=1, source=1, neuron=NEURON, period=MADC_PERIOD))
    prog.spikes(np.zeros(len(spikes), np.int64), spikes)     # row 0: event address 0
    prog.wait_until(settle + 12000)
    prog.write(host.ChipOnly(), host.MADCConfig(enable=0))
    return conn.run(prog), settle


def test_scope_trace_matches_the_membrane_adc(bench):
    conn, server = bench
    p = conn.profile
    with Oscilloscope(server.resource) as scope:
        assert scope.idn.startswith("bss-twin")
        scope.configure(volts_per_div=V_DIV, offset=OFFSET, seconds_per_div=T_DIV, position=POSITION, points=1200)
        trace, (res, settle) = scope.capture(lambda: run_experiment(conn), level=LEVEL, slope="positive",
                                             speedup=p.speedup)
    dt = 12 * T_DIV / 1200
    assert len(trace.volts) == 1200 and trace.x_increment == pytest.approx(dt)
    assert trace.times[0] == pytest.approx(-(600 - POSITION / dt) * dt)
    assert np.allclose(trace.bio_times, trace.times * 1000.0)
    # the membrane ADC on the same pad
    mt = res.madc["time"] * FPGA_TICK_S
    mv = p.analog.madc_volts(res.madc["value"])
    after = np.flatnonzero((res.madc["time"] >= settle) & (mv >= LEVEL))
    assert len(after), "the membrane never reached the trigger level"
    i = after[0]
    t_cross = mt[i]                                          # the ADC's view of the trigger instant
    assert mv[i - 1] < LEVEL
    # timing resolution: the scope's sample interval, the ADC's period, and one analog step
    resolution = dt + MADC_PERIOD * FPGA_TICK_S + p.analog.step_ticks * FPGA_TICK_S
    # stated noise: the scope's (NOISE_DIV div rms) and the ADC's (madc_noise LSB rms), plus half a step of each
    lsb_m, lsb_s = p.analog.madc_lsb, V_DIV / CODES_PER_DIV
    sigma = np.hypot(NOISE_DIV * V_DIV, p.mismatch.madc_noise * lsb_m)
    t_abs = trace.times + t_cross
    inside = (t_abs >= mt[0] + resolution) & (t_abs <= mt[-1] - resolution)
    assert inside.sum() > 1100
    k = np.clip(np.searchsorted(mt, t_abs, "right") - 1, 0, len(mt) - 1)
    diff = trace.volts - mv[k]
    # how much the ADC's own trace moves within the timing resolution around each point
    w = int(np.ceil(resolution / (MADC_PERIOD * FPGA_TICK_S)))
    pad = np.pad(mv, w, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(pad, 2 * w + 1)[k]
    local = np.abs(windows - mv[k][:, None]).max(axis=1)
    bound = 4 * sigma + (lsb_m + lsb_s) / 2 + local
    assert np.all(np.abs(diff[inside]) <= bound[inside]), np.abs(diff[inside]).max()
    flat = inside & (local <= 2 * lsb_m)                     # where timing hardly matters (ADC noise only)
    assert flat.sum() > 500
    assert abs(diff[flat].mean()) < sigma / 2               # the same signal: no offset between the two
    assert diff[flat].std() < 1.5 * np.hypot(sigma, (lsb_m + lsb_s) / np.sqrt(12))   # noise and quantisation
    # the trigger point sits on the rising crossing of the scope's own trace
    pre = int(round(600 - POSITION / dt))
    assert trace.volts[pre - 1] < LEVEL + 4 * sigma + lsb_s and trace.volts[pre] >= LEVEL - 4 * sigma - lsb_s


def test_fetch_formats_agree(bench):
    conn, server = bench
    with Oscilloscope(server.resource) as scope:
        scope.configure(volts_per_div=V_DIV, offset=OFFSET, seconds_per_div=T_DIV, position=POSITION, points=30000)
        trace, _ = scope.capture(lambda: run_experiment(conn), level=LEVEL)
        for fmt in ("word", "ascii"):                      # ASCII in 15625-point chunks, as the DS1000Z wants
            other = scope.fetch(fmt)
            assert np.array_equal(other.times, trace.times)
            assert np.allclose(other.volts, trace.volts, atol=1e-6)


def test_no_trigger_times_out_with_a_clear_error(bench):
    conn, server = bench
    with Oscilloscope(server.resource) as scope:
        scope.configure(volts_per_div=V_DIV, offset=OFFSET, seconds_per_div=T_DIV)
        with pytest.raises(InstrumentError, match="no trigger"):
            scope.capture(lambda: run_experiment(conn), level=0.68, timeout=0.5)
        with pytest.raises(InstrumentError, match="-222"):
            scope.configure(volts_per_div=100.0, seconds_per_div=T_DIV)


def test_serve_with_scope_option(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "tools.cli", "serve", "--tcp", "0", "--scope", "0"]
    bad = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "--scope needs --shared" in bad.stderr
    bad = subprocess.run(cmd[:-1] + ["0.0.0.0:0", "--shared"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode != 0 and "needs a token" in bad.stderr
    proc = subprocess.Popen(cmd + ["--shared"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().startswith("listening on tcp://127.0.0.1:")
        line = proc.stdout.readline().strip()
        assert line.startswith("scope TCPIP0::127.0.0.1::") and line.endswith("::SOCKET")
        with Oscilloscope(line.split()[1]) as scope:
            assert scope.idn.startswith("bss-twin,virtual DS1000Z-subset scope,dls-0,")
            assert scope.status() == "AUTO"
    finally:
        proc.terminate()
        proc.wait(30)
    assert proc.returncode == 0


def test_demo_with_scope(tmp_path, capsys):
    from tools import demo

    png = tmp_path / "demo.png"
    assert demo.main(["--scope", "--png", str(png), "--duration", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "scope: 12000 points every" in out and png.stat().st_size > 10000
    assert demo.main(["tcp://127.0.0.1:1", "--scope"]) == 2       # a URL needs the scope's resource


def test_the_guide_example_runs_and_prints_what_the_guide_says(capsys):
    import re

    text = (ROOT / "docs" / "instruments.md").read_text()
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    exec(compile(code, "docs/instruments.md", "exec"), {})
    out = capsys.readouterr().out.strip()
    assert "`" + out + "`" in " ".join(text.split()), out
