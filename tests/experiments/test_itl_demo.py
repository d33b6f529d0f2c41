"""`bss-twin demo itl` (tools/experiments/itl.py) end to end on a short run:
the command line, its table, and the PNG.  What the training achieves is
tested in tests/host/test_itl.py."""
from __future__ import annotations

import pytest

from tools.experiments import itl as demo


def test_short_run_prints_the_table_and_writes_the_plot(tmp_path, capsys):
    png = tmp_path / "itl.png"
    assert demo.main(["--serials", "3", "--iterations", "1", "--no-calibration", "--no-control",
                      "--png", str(png)]) == 0
    out = capsys.readouterr().out
    rows = [ln.split("|")[1:-1] for ln in out.splitlines() if ln.startswith("| 3 ")]
    assert len(rows) == 1 and rows[0][1].strip() == "in the loop"
    before, after, best = (float(c) for c in rows[0][2:])
    assert 0 <= before <= 1 and 0 <= after <= best <= 1 and best >= max(before, after)
    assert "software network: test accuracy" in out and png.stat().st_size > 10_000


def test_table_gives_mean_and_spread_over_serials():
    res = {"software": 0.98, "runs": [
        dict(serial=1, update=True, iteration=[0, 5], test=[0.5, 0.9]),
        dict(serial=2, update=True, iteration=[0, 5], test=[0.7, 0.95]),
        dict(serial=1, update=False, iteration=[0, 5], test=[0.5, 0.52])]}
    text = demo.summary(res)
    assert "| mean ± sd | in the loop | 0.600 ± 0.100 | 0.925 ± 0.025 | 0.925 ± 0.025 |" in text
    assert "mean ± sd | control" not in text                       # one control run: no spread to give


def test_help_explains_the_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        demo.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for option in ("--serials", "--iterations", "--loss", "--no-calibration", "--no-control", "--png"):
        assert option in out
