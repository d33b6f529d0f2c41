"""`bss-twin demo pynn` runs and writes its PNG (a short run on an ideal hx chip)."""
from tools.demo import main


def test_demo_pynn(tmp_path, capsys):
    png = tmp_path / "pynn.png"
    assert main(["pynn", "twin:hx?mismatch=0", "--uncalibrated", "--duration", "200", "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "exc" in out and "Hz" in out and "CV" in out
    assert png.stat().st_size > 10_000


def test_the_docs_example_runs(capsys):
    import pathlib
    import re
    doc = pathlib.Path(__file__).resolve().parents[2] / "docs" / "pynn.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), re.S)
    exec(compile(blocks[0], str(doc), "exec"), {})
    out = capsys.readouterr().out
    assert re.search(r"[0-9.]+ mV", out), out
