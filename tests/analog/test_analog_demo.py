"""`bss-twin demo` on the in-process dls twin: it configures, plays, records and plots."""
from __future__ import annotations

import re

from tools import demo


def test_demo_runs_and_writes_a_png(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("BSS_CONNECTION", raising=False)
    png = tmp_path / "demo.png"
    assert demo.main(["--png", str(png), "--duration", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "profile dls" in out and "read-back matches" in out
    spikes = int(re.search(r"output: (\d+) spikes", out).group(1))
    counters = int(re.search(r"spike counters (\d+)", out).group(1))
    assert spikes > 20 and counters >= spikes
    assert re.search(r"membrane of neuron 0: \d+ ADC samples", out)
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_help_describes_the_experiment(capsys):
    try:
        demo.main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    assert "membrane" in out and "--rate" in out and "--neuron" in out
