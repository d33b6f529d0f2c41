"""Generate the reference documentation from the hardware contract in `isa/`.

Writes `docs/registers-<profile>.md` for every chip profile and fills the
generated sections of `docs/wire.md` (the text between
``<!-- name:begin -->`` and ``<!-- name:end -->`` markers; the prose around
them is written by hand).  ``--check`` writes nothing and exits with status 1
naming every file that is out of date.

Run as ``bss-twin gen-docs`` or ``python -m tools.gen_docs``.
"""
from __future__ import annotations

import argparse
import enum
import inspect
import re
import sys
from pathlib import Path
from typing import Callable

from isa import frame, wire
from isa.profiles import PROFILES
from isa.regmap import register_map, to_markdown

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
WIRE_DOC = "wire.md"
RERUN = "run `bss-twin gen-docs` (or `python -m tools.gen_docs`) and commit the result"


# --------------------------------------------------------------------------- wire.md sections
def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _bits(hi: int, lo: int) -> str:
    return f"{hi}:{lo}" if hi != lo else f"{lo}"


def message_layout(msg: wire.Message) -> str:
    """Payload bits of one message, most significant first."""
    parts = []
    if msg.width < wire.PAYLOAD_BITS:
        parts.append(f"{_bits(wire.PAYLOAD_BITS - 1, msg.width)} reserved")
    for fname, width in msg.fields:
        lo = msg.shifts[fname]
        parts.append(f"{_bits(lo + width - 1, lo)} `{fname}`")
    return ", ".join(parts)


def messages_section() -> str:
    arrow = {wire.Direction.TO_CHIP: "host -> chip", wire.Direction.TO_HOST: "chip -> host"}
    rows = ["| header | message | direction | payload bits (55..0) | description |",
            "|---|---|---|---|---|"]
    for m in _messages_in_order():
        rows.append(f"| `{m.header:#04x}` | `{m.name}` | {arrow[m.direction]} | "
                    f"{message_layout(m)} | {_cell(m.doc)} |")
    return "\n".join(rows)


def _messages_in_order() -> list[wire.Message]:
    return sorted(wire.MESSAGES, key=lambda m: (m.direction is not wire.Direction.TO_CHIP, m.header))


def _member_notes(cls: type[enum.Enum]) -> dict[str, str]:
    """The comment after each member in the enum's source (its one description)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    return {m.group(1): m.group(2).strip()
            for m in re.finditer(r"^\s*([A-Z_][A-Z0-9_]*)\s*=\s*[^#\n]+#\s*(.*)$", source, re.M)}


def _reason_table(cls: type[enum.IntEnum]) -> list[str]:
    notes = _member_notes(cls)
    has_text = all(hasattr(r, "text") for r in cls)
    head = "| code | name | meaning |" + (" short text |" if has_text else "")
    rows = [head, "|---|---|---|" + ("---|" if has_text else "")]
    for r in cls:
        meaning = notes.get(r.name) or (r.text if has_text else "")
        row = f"| {int(r)} | `{r.name}` | {_cell(meaning)} |"
        if has_text:
            row += f" {_cell(r.text)} |"
        rows.append(row)
    return rows


def reasons_section() -> str:
    return "\n".join(
        ["Error reasons (`error.reason`, enum `isa.wire.ErrorReason`):", ""]
        + _reason_table(wire.ErrorReason)
        + ["", "Timeout reasons (`timeout.reason`, enum `isa.wire.TimeoutReason`):", ""]
        + _reason_table(wire.TimeoutReason))


def frame_section() -> str:
    """The frame layout block of isa/frame.py's docstring, plus its constants."""
    doc = frame.__doc__ or ""
    m = re.search(r"::\n\n((?:[ \t]+.*\n|\n)+?)(?=\S)", doc)
    layout = inspect.cleandoc(m.group(1)) if m else "(layout block not found in isa/frame.py)"
    flags = sorted((v, n) for n, v in vars(frame).items() if n.startswith("FLAG_") and isinstance(v, int))
    return "\n".join([
        "```", layout, "```", "",
        f"- start marker `{frame.MAGIC.hex(' ').upper()}`, format version {frame.VERSION}",
        f"- header {frame.HEADER_SIZE} bytes, trailer {frame.TRAILER_SIZE} bytes, "
        f"at most {frame.MAX_FRAME_WORDS} words per frame",
        "- flags: " + ", ".join(f"`{n}` = `{v:#04x}`" for v, n in flags),
        "- CRC-32 is zlib's / IEEE 802.3 CRC-32 (`zlib.crc32`)",
    ])


SECTIONS: dict[str, Callable[[], str]] = {
    "messages": messages_section,
    "reasons": reasons_section,
    "frame": frame_section,
}


def fill_sections(text: str, sections: dict[str, Callable[[], str]] = SECTIONS, where: str = WIRE_DOC) -> str:
    """Replace the body of every ``<!-- name:begin -->`` / ``<!-- name:end -->`` pair."""
    for name, make in sections.items():
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
            raise ValueError(f"{where}: needs exactly one {begin} followed by one {end}")
        head, rest = text.split(begin)
        _, tail = rest.split(end)
        text = f"{head}{begin}\n{make().rstrip()}\n{end}{tail}"
    return text


# --------------------------------------------------------------------------- files
def expected_files(docs: Path = DOCS) -> dict[Path, str]:
    """Every generated file and the text it must have."""
    out = {docs / f"registers-{p}.md": to_markdown(register_map(p)) for p in PROFILES}
    wire_doc = docs / WIRE_DOC
    if not wire_doc.exists():
        raise FileNotFoundError(f"{wire_doc}: missing; it holds the hand-written text around the "
                                "generated wire tables")
    out[wire_doc] = fill_sections(wire_doc.read_text(encoding="utf-8"), where=str(wire_doc))
    return out


def stale_files(docs: Path = DOCS) -> list[Path]:
    """Generated files whose text on disk differs from what gen-docs would write."""
    return [path for path, text in expected_files(docs).items()
            if not path.exists() or path.read_text(encoding="utf-8") != text]


def _show(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bss-twin gen-docs",
        description="Generate docs/registers-<profile>.md and the tables of docs/wire.md from isa/.")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 and name the files that are out of date")
    parser.add_argument("--docs", type=Path, default=DOCS, help=f"documentation folder (default {DOCS})")
    args = parser.parse_args(argv)
    try:
        files = expected_files(args.docs)
    except (FileNotFoundError, ValueError) as exc:
        print(f"gen-docs: error: {exc}", file=sys.stderr)
        return 2
    stale = [p for p, text in files.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    if args.check:
        if stale:
            for p in stale:
                print(f"stale: {_show(p)}", file=sys.stderr)
            print(f"gen-docs: {len(stale)} generated file(s) out of date; {RERUN}", file=sys.stderr)
            return 1
        print(f"gen-docs: {len(files)} generated files up to date")
        return 0
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(files[p], encoding="utf-8")
        print(f"wrote {_show(p)}")
    if not stale:
        print(f"gen-docs: {len(files)} generated files up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
