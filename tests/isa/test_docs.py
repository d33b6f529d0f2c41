"""Generated documentation (tools/gen_docs.py) must match the hardware contract."""
from __future__ import annotations

import re
import shutil

import pytest

from isa import wire
from isa.profiles import PROFILES
from isa.regmap import register_map
from tools import gen_docs

RERUN = "run `bss-twin gen-docs` (or `python -m tools.gen_docs`)"


def section(text: str, name: str) -> str:
    m = re.search(rf"<!-- {name}:begin -->\n(.*?)<!-- {name}:end -->", text, re.S)
    assert m, f"docs/wire.md lacks the {name} markers"
    return m.group(1)


def test_generated_docs_are_up_to_date():
    stale = gen_docs.stale_files()
    assert not stale, ("generated documentation out of date: "
                       + ", ".join(p.name for p in stale) + f"; {RERUN}")


def test_every_profile_has_a_register_doc_and_every_ppu_chip_an_include():
    names = {p.name for p in gen_docs.expected_files()}
    assert names == ({f"registers-{p}.md" for p in PROFILES} | {"wire.md", "firmware.md", "runtime.inc"}
                     | {f"{p}.inc" for p, prof in PROFILES.items() if prof.ppus})


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_register_doc_lists_every_register(name):
    text = (gen_docs.DOCS / f"registers-{name}.md").read_text(encoding="utf-8")
    for b, r in register_map(name).iter_registers():
        assert f"### {b.name}.{r.name}\n" in text
        assert f"`{b.base + r.offset:#010x}`" in text


def test_wire_doc_tables_cover_the_dictionary_and_reasons():
    text = (gen_docs.DOCS / "wire.md").read_text(encoding="utf-8")
    messages = section(text, "messages")
    for m in wire.MESSAGES:
        row = next((line for line in messages.splitlines() if f"| `{m.name}` |" in line), None)
        assert row is not None, f"{m.name} missing from the message table; {RERUN}"
        assert row.startswith(f"| `{m.header:#04x}` |")
        for fname, _ in m.fields:
            assert f"`{fname}`" in row
    reasons = section(text, "reasons")
    for cls in (wire.ErrorReason, wire.TimeoutReason):
        for r in cls:
            assert f"| {int(r)} | `{r.name}` |" in reasons, f"{cls.__name__}.{r.name} undocumented; {RERUN}"
    frame_part = section(text, "frame")
    assert "start marker" in frame_part and "CRC-32" in frame_part


def test_message_layout_bits():
    # 55:37 reserved, then is_read at 36, byte_enables 35..32, address 31..0 (docstring layout)
    layout = gen_docs.message_layout(wire.message("omnibus_address"))
    assert layout == "55:37 reserved, 36 `is_read`, 35:32 `byte_enables`, 31:0 `address`"
    assert gen_docs.message_layout(wire.message("timer_reset")) == "55:0 reserved"


@pytest.fixture
def docs_copy(tmp_path):
    shutil.copy(gen_docs.DOCS / "wire.md", tmp_path / "wire.md")
    shutil.copy(gen_docs.DOCS / "firmware.md", tmp_path / "firmware.md")
    assert gen_docs.main(["--docs", str(tmp_path)]) == 0
    return tmp_path


def test_check_passes_after_generation(docs_copy, capsys):
    capsys.readouterr()
    assert gen_docs.main(["--check", "--docs", str(docs_copy)]) == 0
    assert gen_docs.stale_files(docs_copy) == []


def test_check_names_stale_files_and_writes_nothing(docs_copy, capsys):
    dls = docs_copy / "registers-dls.md"
    dls.write_text(dls.read_text() + "hand edit\n")
    (docs_copy / "registers-hx.md").unlink()
    wire_md = docs_copy / "wire.md"
    edited_wire = wire_md.read_text().replace("| `reset` |", "| `reboot` |")
    wire_md.write_text(edited_wire)
    capsys.readouterr()
    assert gen_docs.main(["--check", "--docs", str(docs_copy)]) == 1
    err = capsys.readouterr().err
    stale = sorted(re.findall(r"^stale: .*/(\S+)$", err, re.M))
    assert stale == ["registers-dls.md", "registers-hx.md", "wire.md"]
    assert "`bss-twin gen-docs`" in err
    # --check wrote nothing
    assert not (docs_copy / "registers-hx.md").exists()
    assert wire_md.read_text() == edited_wire
    # regenerating repairs everything
    assert gen_docs.main(["--docs", str(docs_copy)]) == 0
    assert gen_docs.stale_files(docs_copy) == []


def test_prose_outside_the_markers_is_kept(docs_copy):
    wire_md = docs_copy / "wire.md"
    text = wire_md.read_text().replace("# The wire format", "# The wire format (edited)")
    wire_md.write_text(text)
    assert gen_docs.stale_files(docs_copy) == []
    assert gen_docs.main(["--docs", str(docs_copy)]) == 0
    assert wire_md.read_text().startswith("# The wire format (edited)\n")


def test_missing_markers_are_an_error(docs_copy, capsys):
    wire_md = docs_copy / "wire.md"
    wire_md.write_text(wire_md.read_text().replace("<!-- reasons:end -->", ""))
    capsys.readouterr()
    assert gen_docs.main(["--check", "--docs", str(docs_copy)]) == 2
    err = capsys.readouterr().err
    assert re.search(r"^gen-docs: error: .*wire\.md: needs exactly one <!-- reasons:begin --> "
                     r"followed by one <!-- reasons:end -->$", err, re.M), err


def test_missing_wire_doc_is_an_error(tmp_path, capsys):
    assert gen_docs.main(["--docs", str(tmp_path)]) == 2
    assert re.search(r"^gen-docs: error: .*wire\.md: missing; ", capsys.readouterr().err, re.M)
    assert list(tmp_path.iterdir()) == []


#: Literals that restate a hardware fact of isa/ (pattern, where it may not appear, what to read instead).
#: tools/bench is left to its own checks (its scenarios build labels by hand).
_RESTATED = (
    (r"(?<![\w.])8e-9\b", ("host", "twin", "tools", "firmware"), "isa.wire.FPGA_TICK_S"),
    (r"\b125_?000_?000\b", ("host", "twin", "tools", "firmware"), "isa.wire.FPGA_CLOCK_HZ"),
    (r"isa\.regmap\._|from \._(blocks|model) import", ("host", "twin", "tools", "firmware", "isa/ppu"),
     "the public names of isa.regmap"),
    (r"(<<|>>) ?6\b", ("host", "twin/analog", "twin/cosim.py", "twin/core.py", "twin/events", "twin/chip.py",
                       "twin/executor.py", "tools/demo.py", "tools/experiments"), "isa.regmap.LABEL_ROW_SHIFT"),
    (r"& ?0x3[Ff][Ff]\b", ("host", "twin", "tools", "firmware"), "the register field (Field.extract / limit)"),
    (r"\(1 << (20|24)\) - 1", ("host", "twin", "tools", "firmware"),
     "the field's limit (Field.limit, wire.Message.limit)"),
)


def test_hardware_facts_are_not_restated_outside_isa():
    """Hardware facts are read from isa/, not restated: `git grep` finds no
    8e-9 or 125 MHz literal, no import of isa.regmap's private modules, no
    hard-coded label-to-row shift in the twin's event path, the host or the
    experiments, and no field widths as masks (tests may restate facts to
    check them)."""
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[2]
    offenders = []
    for pattern, places, instead in _RESTATED:
        for place in places:
            path = root / place
            files = [path] if path.suffix == ".py" else sorted(path.rglob("*.py")) if path.exists() else []
            for f in files:
                if "tools/bench" in f.as_posix():
                    continue
                text = f.read_text()
                for m in re.finditer(pattern, text):
                    line = text.count("\n", 0, m.start()) + 1
                    offenders.append(f"{f.relative_to(root)}:{line}: {m.group(0)!r} (read {instead})")
    assert not offenders, "restated hardware facts:\n" + "\n".join(offenders)


def test_the_restated_facts_check_can_fail(tmp_path):
    """The patterns above do match the literals they are meant to catch."""
    samples = {r"(<<|>>) ?6\b": "addr = lab_full >> 6", r"& ?0x3[Ff][Ff]\b": "v & 0x3FF",
               r"\(1 << (20|24)\) - 1": "min(n, (1 << 24) - 1)", r"(?<![\w.])8e-9\b": "t * 8e-9",
               r"isa\.regmap\._|from \._(blocks|model) import": "from isa.regmap._blocks import X"}
    patterns = {p for p, _, _ in _RESTATED}
    for pattern, sample in samples.items():
        assert pattern in patterns
        assert re.search(pattern, sample), (pattern, sample)
