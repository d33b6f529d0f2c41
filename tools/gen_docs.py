"""Generate the reference documentation from the hardware contract in `isa/`.

Writes `docs/registers-<profile>.md` for every chip profile, the firmware
include files `firmware/include/<profile>.inc` (constants for PPU assembly)
for every chip with PPUs, and fills the
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
from isa.ppu import core, iomap
from isa.profiles import PROFILES
from isa.regmap import register_map, to_markdown

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FIRMWARE_INCLUDE = ROOT / "firmware" / "include"
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
    rows = ["| header | message | direction | kind | payload bits (55..0) | description |",
            "|---|---|---|---|---|---|"]
    for m in _messages_in_order():
        rows.append(f"| `{m.header:#04x}` | `{m.name}` | {arrow[m.direction]} | {m.kind.value} | "
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
        + _reason_table(wire.TimeoutReason)
        + ["", "Program limits (`limit.kind`, `limit_reached.kind`, enum `isa.wire.LimitKind`):", ""]
        + _reason_table(wire.LimitKind)
        + ["", "Lock states (`lock_state.state`, enum `isa.wire.LockState`):", ""]
        + _reason_table(wire.LockState))


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


# --------------------------------------------------------------------------- firmware.md sections
FIRMWARE_DOC = "firmware.md"


def mailbox_section() -> str:
    rows = ["| symbol | address | bytes | meaning |", "|---|---|---:|---|"]
    for name, off, size, note in iomap.MAILBOX_LAYOUT:
        rows.append(f"| `MB_{name.upper()}` | `{iomap.MAILBOX_ADDRESS + off:#06x}` | {size} | {_cell(note)} |")
    rows += ["", "Commands (`MB_COMMAND`): " + ", ".join(f"`CMD_{n.upper()}` = {v}"
                                                       for n, v in iomap.MAILBOX_COMMANDS.items())
             + ".  States (`MB_STATE`): " + ", ".join(f"`STATE_{n.upper()}` = {v}"
                                                     for n, v in iomap.MAILBOX_STATES.items())
             + ".  Return codes of the runtime: " + ", ".join(f"`RC_{n.upper()}` = {v}"
                                                             for n, v in iomap.RETURN_CODES.items()) + "."]
    return "\n".join(rows)


def rules_section() -> str:
    from firmware.rules import CHIP_LIMITS, RULES
    out = []
    for rule in RULES.values():
        out += [f"`{rule.name}` ({rule.doc}), parameters at `MB_PARAMS` in this order:", "",
                "| word | symbol | range | meaning |", "|---:|---|---|---|"]
        for i, prm in enumerate(rule.params):
            hi = CHIP_LIMITS[prm.hi][0] if isinstance(prm.hi, str) else prm.hi
            out.append(f"| {i} | `P_{prm.name.upper()}` | {prm.lo}..{hi} | {_cell(prm.doc)} |")
        out.append("")
    return "\n".join(out)


FIRMWARE_SECTIONS: dict[str, Callable[[], str]] = {"mailbox": mailbox_section, "rules": rules_section}


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


# --------------------------------------------------------------------------- firmware include
class _Inc:
    """Lines of a generated assembler include file (with an include guard)."""

    def __init__(self, name: str, about: str):
        guard = "BSS_INC_" + name.upper().replace(".", "_")
        self.lines = [f"# Generated by `bss-twin gen-docs` from isa/: do not edit.", f"# {about}",
                      f"    .ifndef {guard}", f"    .set {guard}, 1"]

    def put(self, name: str, value: int, note: str = "", address: bool = False) -> None:
        text = f"    .set {name}, {value:#x}" if address else f"    .set {name}, {value}"
        self.lines.append(f"{text:<48} # {note}" if note else text)

    def head(self, title: str) -> None:
        self.lines.extend(["", f"# {title}"])

    def text(self) -> str:
        return "\n".join(self.lines + ["    .endif", ""])


def runtime_include() -> str:
    """firmware/include/runtime.inc: the chip-independent constants of the
    firmware runtime (memory layout, mailbox, interrupts, register bus)."""
    inc = _Inc("runtime.inc", "The PPU firmware runtime: memory layout, mailbox, interrupts, register bus.")
    inc.head("memory and runtime (firmware/crt0.s)")
    inc.put("STACK_TOP", iomap.STACK_TOP, "initial stack pointer (grows down)", True)
    inc.put("RETURN_CODE", iomap.RETURN_CODE_ADDRESS, "main's r3 is stored here before `wait`", True)
    inc.put("MAILBOX", iomap.MAILBOX_ADDRESS, address=True)
    inc.put("MAILBOX_SIZE", iomap.MAILBOX_SIZE, address=True)
    for name, off, size, note in iomap.MAILBOX_LAYOUT:
        inc.put(f"MB_{name.upper()}", iomap.MAILBOX_ADDRESS + off, note, True)
        inc.put(f"MB_{name.upper()}_SIZE", size, "bytes")
    for name, v in iomap.MAILBOX_COMMANDS.items():
        inc.put(f"CMD_{name.upper()}", v, "mailbox command")
    for name, v in iomap.MAILBOX_STATES.items():
        inc.put(f"STATE_{name.upper()}", v, "MB_STATE")
    for name, v in iomap.RETURN_CODES.items():
        inc.put(f"RC_{name.upper()}", v, "main's return code")
    inc.head("interrupts")
    for name, addr in core.VECTORS.items():
        inc.put(f"VEC_{name.upper()}", addr, address=True)
    inc.put("VECTOR_TABLE_END", max(core.VECTORS.values()) + 4, "first address after the vectors", True)
    inc.put("MSR_EE", core.MSR_EE, "external and decrementer interrupts enabled", True)
    inc.put("MSR_ME", core.MSR_ME, "machine check enabled", True)
    inc.put("MSR_CE", core.MSR_CE, "critical interrupts enabled", True)
    inc.put("MSR_DE", core.MSR_DE, "debug interrupts enabled", True)
    inc.put("MSR_WRITABLE", core.MSR_WRITABLE, "MSR bits that hold what is written (the others read 0)", True)
    inc.head("interrupt save/restore and syndrome SPRs (nux RTL pu_types_pkg.sv Spr_index, struct Esr)")
    for name in ("SPR_SRR0", "SPR_SRR1", "SPR_CSRR0", "SPR_CSRR1", "SPR_DEAR", "SPR_ESR", "SPR_MCSRR0",
                 "SPR_MCSRR1"):
        inc.put(name, getattr(core, name), "mfspr / mtspr")
    inc.put("ESR_PIL", core.ESR_PIL, "ESR: illegal instruction (program interrupt)", True)
    inc.put("ESR_PTR", core.ESR_PTR, "ESR: trap (program interrupt)", True)
    inc.put("ESR_PUO", core.ESR_PUO, "ESR: unimplemented operation (program interrupt)", True)
    inc.head("general-purpose pins and interrupt controller (pu_types_pkg.sv, pu_interrupt_pkg.sv)")
    inc.put("SPR_GIN", core.SPR_GIN, "mfspr: input pin levels (read-only)")
    inc.put("SPR_GOUT", core.SPR_GOUT, "mfspr / mtspr: output pins")
    inc.put("SPR_GOE", core.SPR_GOE, "mfspr / mtspr: output enables")
    inc.put("SPR_ICCR", core.SPR_ICCR, "mtspr only (mfspr reads 0): interrupt controller control")
    inc.put("ICCR_DOORBELL_EN", core.ICCR_DOORBELL_EN, "ICCR: doorbell enable (gates nothing in the RTL)", True)
    inc.put("ICCR_MASK_SHIFT", core.ICCR_MASK_SHIFT, "ICCR: pin i may interrupt: bit MASK_SHIFT + i")
    inc.put("ICCR_TRIGGER_SHIFT", core.ICCR_TRIGGER_SHIFT,
            "ICCR: pin i 0 high / rising, 1 low / falling: bit TRIGGER_SHIFT + i")
    inc.put("ICCR_SENSE_SHIFT", core.ICCR_SENSE_SHIFT, "ICCR: pin i 1 level, 0 edge: bit SENSE_SHIFT + i")
    inc.put("GPIO_INTERRUPT_PINS", core.GPIO_INTERRUPT_PINS, "pins 0 .. this - 1 can interrupt")
    inc.head("timer unit (nux RTL timer_unit.sv, pu_types_pkg.sv): SPR numbers and TCR / TSR bits")
    for name in ("SPR_DEC", "SPR_DECAR", "SPR_TBL", "SPR_TBU", "SPR_TSR", "SPR_TCR"):
        inc.put(name, getattr(core, name), "mfspr / mtspr")
    inc.put("TCR_DIE", core.TCR_DIE, "TCR: decrementer interrupt enable", True)
    inc.put("TCR_FIE", core.TCR_FIE, "TCR: fixed-interval timer interrupt enable", True)
    inc.put("TCR_ARE", core.TCR_ARE, "TCR: decrementer auto-reload from DECAR", True)
    inc.put("TCR_FP_SHIFT", core.TCR_FP_SHIFT, "TCR: FIT period select FP = (TCR >> this) & 3")
    inc.put("TSR_DIS", core.TSR_DIS, "TSR: decrementer expired (write 1 to clear)", True)
    inc.put("TSR_FIS", core.TSR_FIS, "TSR: FIT bit rose (write 1 to clear)", True)
    inc.head("register bus: a word load/store at REGBUS | (word address << 2)")
    inc.put("REGBUS", iomap.REGISTER_BUS_BIT, address=True)
    return inc.text()


def chip_include(profile: str) -> str:
    """firmware/include/<profile>.inc: runtime.inc and what firmware needs to
    know about one chip (clock, vector width, synapse array, vector-I/O
    spaces, registers it reaches over the register bus)."""
    p, rm = PROFILES[profile], register_map(profile)
    space = iomap.io_space_size(p.ppu_slices)
    inc = _Inc(f"{profile}.inc", f"PPU firmware constants of the `{profile}` chip.")
    inc.lines.append('    .include "runtime.inc"')
    inc.head("chip")
    inc.put(f"CHIP_{profile.upper()}", 1, "which chip this include is for")
    inc.put("PPU_CYCLES_PER_US", round(p.ppu_clock_hz / 1e6), f"PPU clock {p.ppu_clock_hz / 1e6:g} MHz")
    inc.put("PPU_MEMORY_BYTES", p.ppu_memory_bytes, address=True)
    inc.put("VECTOR_BYTES", 16 * p.ppu_slices, "bytes per vector register (16 per slice)")
    inc.put("SYNAPSE_ROWS", p.rows, "rows of the synapse array one PPU reaches")
    inc.put("SYNAPSE_COLUMNS", p.columns, "columns of that array (one neuron each)")
    inc.put("ROW_HALVES", 2 * p.rows, "vector-I/O row halves: EA % IO_SPACE = row * 2 + half")
    inc.put("WEIGHT_BITS", p.weight_bits, "weight field of a synapse byte (the bits above are calibration)")
    inc.put("WEIGHT_MAX", (1 << p.weight_bits) - 1)
    inc.put("NEURONS_PER_PPU", p.columns, "PPU k reaches neurons k * NEURONS_PER_PPU ...")
    inc.put("PPUS", p.ppus, "plasticity processors (PPU k: synapse array k)")
    inc.head("vector I/O (fxvinx / fxvoutx VRT, RA, RB: EA = RA + RB)")
    inc.put("IO_SPACE", space, "size of one space", True)
    for name, k in (("WEIGHTS", iomap.SPACE_WEIGHTS), ("LABELS", iomap.SPACE_LABELS),
                    ("CAUSAL", iomap.SPACE_CAUSAL), ("ACAUSAL", iomap.SPACE_ACAUSAL)):
        inc.put(f"IO_{name}", k * space, address=True)
    inc.head("registers")
    cnt = rm.register("neuron", "spike_counter")
    inc.put("REG_SPIKE_COUNTER", iomap.REGISTER_BUS_BIT | rm.address("neuron", "spike_counter", 0) << 2,
            f"neuron i at + 4 i ({cnt.count} neurons)", True)
    inc.put("REG_SPIKE_COUNTER_RESET",
            iomap.REGISTER_BUS_BIT | rm.address("neuron", "spike_counter_reset", 0) << 2,
            "write 1: clear neuron i's counter (+ 4 i)", True)
    for f in cnt.fields:
        inc.put(f"SPIKE_COUNTER_{f.name.upper()}_LSB", f.lsb)
        inc.put(f"SPIKE_COUNTER_{f.name.upper()}_BITS", f.width)
    return inc.text()


def firmware_includes(folder: Path = FIRMWARE_INCLUDE) -> dict[Path, str]:
    out = {folder / "runtime.inc": runtime_include()}
    out.update({folder / f"{name}.inc": chip_include(name) for name, p in PROFILES.items() if p.ppus})
    return out


# --------------------------------------------------------------------------- files
def expected_files(docs: Path = DOCS, include: Path = FIRMWARE_INCLUDE) -> dict[Path, str]:
    """Every generated file and the text it must have."""
    out = {docs / f"registers-{p}.md": to_markdown(register_map(p)) for p in PROFILES}
    out.update(firmware_includes(include))
    wire_doc = docs / WIRE_DOC
    if not wire_doc.exists():
        raise FileNotFoundError(f"{wire_doc}: missing; it holds the hand-written text around the "
                                "generated wire tables")
    out[wire_doc] = fill_sections(wire_doc.read_text(encoding="utf-8"), where=str(wire_doc))
    fw_doc = docs / FIRMWARE_DOC
    if not fw_doc.exists():
        raise FileNotFoundError(f"{fw_doc}: missing; it holds the hand-written text around the "
                                "generated firmware tables")
    out[fw_doc] = fill_sections(fw_doc.read_text(encoding="utf-8"), FIRMWARE_SECTIONS, where=str(fw_doc))
    return out


def stale_files(docs: Path = DOCS, include: Path = FIRMWARE_INCLUDE) -> list[Path]:
    """Generated files whose text on disk differs from what gen-docs would write."""
    return [path for path, text in expected_files(docs, include).items()
            if not path.exists() or path.read_text(encoding="utf-8") != text]


def _show(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bss-twin gen-docs",
        description="Generate docs/registers-<profile>.md, the tables of docs/wire.md and the firmware include files "
                    "firmware/include/<profile>.inc from isa/.")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 and name the files that are out of date")
    parser.add_argument("--docs", type=Path, default=DOCS, help=f"documentation folder (default {DOCS})")
    parser.add_argument("--firmware-include", type=Path, default=FIRMWARE_INCLUDE,
                        help=f"folder of the firmware include files (default {FIRMWARE_INCLUDE})")
    args = parser.parse_args(argv)
    try:
        files = expected_files(args.docs, args.firmware_include)
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
