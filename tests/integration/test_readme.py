"""The README's code examples run as printed and do what they say."""
import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_readme_example_runs(capsys):
    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    exec(compile(code, str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "SynapseDriverConfig(enable=1" in out and "gain=12" in out
    # three looped-back events, labels 1..3, all at the same time
    assert re.search(r"\(\s*(\d+), 1\) \(\s*\1, 2\) \(\s*\1, 3\)", out), out


def test_every_readme_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 4
    for code in blocks[1:]:
        exec(compile(code, str(README), "exec"), {})
    out = capsys.readouterr().out
    assert re.search(r"return code \d+ mailbox [0-9a-f]{32}", out), out
    assert re.search(r"\d+ spikes, mean rate [0-9.]+ Hz", out), out


HOST_GUIDE = README.parent / "docs" / "host.md"


def test_the_host_guide_example_runs_and_prints_what_the_guide_says(capsys):
    text = HOST_GUIDE.read_text()
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    exec(compile(code, str(HOST_GUIDE), "exec"), {})
    out = capsys.readouterr().out.strip()
    assert "`" + out + "`" in " ".join(text.split()), out      # the printed line is quoted in the guide


PYNN_GUIDE = README.parent / "docs" / "pynn.md"


def test_the_pynn_guide_examples_run(capsys):
    """Every example of docs/pynn.md but the calibration one (tests/host covers calibrate)."""
    blocks = [b for b in re.findall(r"```python\n(.*?)```", PYNN_GUIDE.read_text(), re.S) if "calibrate(" not in b]
    assert len(blocks) >= 2
    for code in blocks:
        exec(compile(code, str(PYNN_GUIDE), "exec"), {})
    out = capsys.readouterr().out
    m = re.search(r"causal inputs: 0.40 -> ([0-9.]+) \.\. ([0-9.]+) nA", out)
    assert m and float(m.group(1)) > 0.8, out          # pre-before-post pairs potentiate
