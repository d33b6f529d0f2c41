"""A small table-driven SCPI parser: program messages, headers, parameters,
the error/event queue.

An instrument is a table of `Command`s, each a header pattern in the SCPI
mixed-case notation (`:TIMebase[:MAIN]:SCALe`, `:CHANnel<n>:OFFSet`,
`*IDN`) with a handler for its command form and/or its query form.  The
parser follows IEEE 488.2 / SCPI-99 for what it accepts:

- a program message is one line; units are separated by `;`, a unit whose
  header does not start with `:` (or `*`) continues the path of the previous
  unit (`:TRIG:EDG:SLOP POS;LEV 0.5`);
- a mnemonic matches its short form (the upper-case letters) or its long
  form, case-insensitively; `[...]` nodes are optional; `<n>` takes a
  numeric suffix (default 1);
- parameters are separated by `,`: decimal numbers (NR1/NR2/NR3, with an
  optional unit suffix such as `mV`, `us`), character data (mnemonics),
  booleans (ON/OFF/1/0), quoted strings;
- the responses of the queries of one message are joined by `;`.

Errors go to an `ErrorQueue` with the SCPI-99 codes and texts (volume 2,
chapter 21 "Error Messages"); a command error (-1xx) ends the parsing of its
message, an execution error (-2xx) only its unit.  docs/instruments.md lists
the codes used.
"""
from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Callable, Sequence

#: SCPI-99 error texts of the codes this parser and its instruments raise.
ERROR_TEXT = {
    0: "No error",
    -100: "Command error",
    -101: "Invalid character",
    -102: "Syntax error",
    -103: "Invalid separator",
    -104: "Data type error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -113: "Undefined header",
    -114: "Header suffix out of range",
    -131: "Invalid suffix",
    -141: "Invalid character data",
    -203: "Command protected",
    -221: "Settings conflict",
    -222: "Data out of range",
    -223: "Too much data",
    -230: "Data corrupt or stale",
    -350: "Queue overflow",
    -410: "Query INTERRUPTED",
}

#: Standard event status register bits (IEEE 488.2).
ESR_OPC, ESR_QYE, ESR_DDE, ESR_EXE, ESR_CME = 1, 4, 8, 16, 32

#: Unit suffixes accepted after a number, with their multipliers (SCPI-99 volume 1).
UNIT_MULTIPLIERS = {"": 1.0, "V": 1.0, "MV": 1e-3, "UV": 1e-6, "S": 1.0, "MS": 1e-3, "US": 1e-6,
                    "NS": 1e-9, "PS": 1e-12}


class ScpiError(Exception):
    """An error with its SCPI code; `detail` is appended to the standard text."""

    def __init__(self, code: int, detail: str = ""):
        super().__init__(f"{code},{ERROR_TEXT[code]}" + (f"; {detail}" if detail else ""))
        self.code = code
        self.detail = detail


class ErrorQueue:
    """The error/event queue (SCPI-99 volume 2, chapter 21): first in, first out, at
    most `size` entries; when full, the newest entry becomes -350 Queue
    overflow.  Also keeps the standard event status register."""

    def __init__(self, size: int = 20):
        self.size = size
        self.queue: deque[tuple[int, str]] = deque()
        self.esr = 0
        self.overflows = 0          # errors lost to a full queue since the last clear

    def push(self, code: int, detail: str = "") -> None:
        self.esr |= (ESR_CME if -199 <= code <= -100 else ESR_EXE if -299 <= code <= -200
                     else ESR_DDE if -399 <= code <= -300 else ESR_QYE if -499 <= code <= -400 else 0)
        detail = "".join(c if c.isprintable() and c != '"' else "?" for c in detail)[:120]
        if len(self.queue) >= self.size:
            self.overflows += 1
            self.queue[-1] = (-350, "")
            return
        self.queue.append((code, detail))

    def pop(self) -> str:
        code, detail = self.queue.popleft() if self.queue else (0, "")
        return f'{code},"{ERROR_TEXT[code]}' + (f"; {detail}" if detail else "") + '"'

    def clear(self) -> None:
        self.queue.clear()
        self.esr = 0
        self.overflows = 0


# ---------------------------------------------------------------------------- headers
@dataclass(frozen=True)
class _Node:
    short: str
    long: str
    optional: bool
    suffix: bool


def _compile(pattern: str) -> tuple[bool, tuple[_Node, ...]]:
    """`:TIMebase[:MAIN]:SCALe` -> (common?, nodes)."""
    if pattern.startswith("*"):
        return True, (_Node(pattern.upper(), pattern.upper(), False, False),)
    nodes = []
    for part in re.findall(r"\[?:[A-Za-z]+(?:<n>)?\]?", pattern):
        optional = part.startswith("[")
        name = part.strip("[]:")
        suffix = name.endswith("<n>")
        name = name.removesuffix("<n>")
        short = "".join(c for c in name if c.isupper() or c.isdigit())
        nodes.append(_Node(short, name.upper(), optional, suffix))
    if "".join(("[" if n.optional else "") + ":" + n.long for n in nodes).replace("[", "") != \
            re.sub(r"<n>|\[|\]", "", pattern).upper():
        raise ValueError(f"bad SCPI header pattern {pattern!r}")
    return False, tuple(nodes)


@dataclass
class Command:
    """One header of an instrument: `query(suffixes)` answers `HEADER?`,
    `command(suffixes, params)` executes `HEADER params`.  `suffix_range`
    is the range of every `<n>` suffix."""

    pattern: str
    command: Callable[[tuple[int, ...], list[str]], None] | None = None
    query: Callable[[tuple[int, ...]], str | bytes] | None = None
    suffix_range: range = range(1, 2)

    def __post_init__(self):
        self.common, self.nodes = _compile(self.pattern)


_TOKEN = re.compile(r"([A-Za-z]+?)(\d*)")


def _match(nodes: Sequence[_Node], tokens: Sequence[tuple[str, str]], suffixes: tuple[int, ...] = ()):
    """Suffixes of the `<n>` nodes when `tokens` match `nodes`, else None."""
    if not nodes:
        return suffixes if not tokens else None
    node, rest = nodes[0], nodes[1:]
    if tokens:
        name, digits = tokens[0]
        if name in (node.short, node.long) and (node.suffix or not digits):
            got = _match(rest, tokens[1:], suffixes + ((int(digits) if digits else 1,) if node.suffix else ()))
            if got is not None:
                return got
    if node.optional:
        return _match(rest, tokens, suffixes)
    return None


# ---------------------------------------------------------------------------- parameters
_NUMBER = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)")
_MNEMONIC = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def number(text: str, unit: str = "") -> float:
    """A decimal numeric parameter (with an optional suffix of `unit`)."""
    m = _NUMBER.fullmatch(text)
    if m is None:
        raise ScpiError(-104, f"{text[:40]!r} is not a number")
    suffix = m.group(2).upper()
    if suffix and (suffix not in UNIT_MULTIPLIERS or not suffix.endswith(unit.upper()) or not unit):
        raise ScpiError(-131, f"{m.group(2)!r} after a number" + (f" in {unit}" if unit else ""))
    return float(m.group(1)) * UNIT_MULTIPLIERS[suffix]


def integer(text: str) -> int:
    value = number(text)
    if value != int(value):
        raise ScpiError(-104, f"{text[:40]!r} is not an integer")
    return int(value)


def boolean(text: str) -> bool:
    t = text.upper()
    if t in ("ON", "1"):
        return True
    if t in ("OFF", "0"):
        return False
    raise ScpiError(-104, f"{text[:40]!r} is not a boolean (ON, OFF, 1, 0)")


def choice(text: str, choices: Sequence[str]) -> str:
    """Character data: the mixed-case choice `text` names (short or long form)."""
    if not _MNEMONIC.fullmatch(text):
        raise ScpiError(-104, f"{text[:40]!r} is not character data")
    t = text.upper()
    for c in choices:
        short = "".join(ch for ch in c if ch.isupper() or ch.isdigit())
        if t in (short, c.upper()):
            return c
    raise ScpiError(-141, f"{text[:40]!r} is not one of {', '.join(choices)}")


def short_form(c: str) -> str:
    return "".join(ch for ch in c if ch.isupper() or ch.isdigit())


def string(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1].replace(text[0] * 2, text[0])
    raise ScpiError(-104, "expected a quoted string")


def nr3(value: float) -> str:
    return f"{value:.10e}"


def ieee_block(data: bytes) -> bytes:
    """An IEEE 488.2 definite length arbitrary block response: #<n><len><data>."""
    length = str(len(data))
    return b"#" + str(len(length)).encode() + length.encode() + data


# ---------------------------------------------------------------------------- messages
def _split(text: str, sep: str) -> list[str]:
    """Split at `sep` outside quoted strings; an unterminated quote is a syntax error."""
    parts, cur, quote = [], [], None
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            cur.append(ch)
        elif ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if quote:
        raise ScpiError(-102, "unterminated quoted string")
    parts.append("".join(cur))
    return parts


_HEADER = re.compile(r"\s*(\*[A-Za-z]+|:?[A-Za-z]+\d*(?::[A-Za-z]+\d*)*)(\?)?(?:(\s+)(.*))?\s*", re.S)


class Parser:
    """Executes program messages against a command table."""

    def __init__(self, commands: Sequence[Command], errors: ErrorQueue):
        self.commands = list(commands)
        self.errors = errors
        self.common = {c.nodes[0].long: c for c in self.commands if c.common}
        self.tree = [c for c in self.commands if not c.common]

    def execute(self, line: str) -> bytes | None:
        """Run one program message; the joined query responses (no terminator) or None."""
        responses: list[bytes] = []
        try:
            if any(not (ch.isprintable() or ch in " \t") or ord(ch) > 126 for ch in line):
                bad = next(ch for ch in line if not (ch.isprintable() or ch in " \t") or ord(ch) > 126)
                raise ScpiError(-101, f"character 0x{ord(bad):02x}")
            path: list[tuple[str, str]] = []
            for unit in _split(line, ";"):
                if not unit.strip():
                    if len(line.strip()):
                        continue
                    return None
                try:
                    out, path = self._unit(unit, path)
                except ScpiError as exc:
                    if exc.code <= -100 and exc.code > -200:
                        raise
                    self.errors.push(exc.code, exc.detail)
                    continue
                if out is not None:
                    responses.append(out if isinstance(out, bytes) else out.encode())
        except ScpiError as exc:
            self.errors.push(exc.code, exc.detail)
        return b";".join(responses) if responses else None

    def _unit(self, unit: str, path: list[tuple[str, str]]):
        m = _HEADER.fullmatch(unit)
        if m is None:
            raise ScpiError(-102, f"{unit.strip()[:40]!r}")
        header, is_query, params_text = m.group(1), bool(m.group(2)), m.group(4)
        params = [] if params_text is None or not params_text.strip() else [p.strip() for p in _split(params_text, ",")]
        if any(not p for p in params):
            raise ScpiError(-103 if params_text.strip().startswith(",") else -109, "empty parameter")
        if header.startswith("*"):
            cmd = self.common.get(header.upper())
            if cmd is None:
                raise ScpiError(-113, header)
            return self._run(cmd, (), header, is_query, params), path
        absolute = header.startswith(":")
        tokens = [(name.upper(), digits) for name, digits in
                  (_TOKEN.fullmatch(t).groups() for t in header.lstrip(":").split(":"))]
        candidates = [tokens] if absolute or not path else [path + tokens, tokens]
        for toks in candidates:
            for cmd in self.tree:
                suffixes = _match(cmd.nodes, toks)
                if suffixes is not None:
                    if any(s not in cmd.suffix_range for s in suffixes):
                        raise ScpiError(-114, f"{header}: suffix outside {cmd.suffix_range.start}.."
                                              f"{cmd.suffix_range.stop - 1}")
                    return self._run(cmd, suffixes, header, is_query, params), toks[:-1]
        raise ScpiError(-113, header)

    @staticmethod
    def _run(cmd: Command, suffixes, header: str, is_query: bool, params: list[str]):
        if is_query:
            if cmd.query is None:
                raise ScpiError(-113, f"{header} has no query form")
            if params:
                raise ScpiError(-108, f"{header}? takes no parameter")
            return cmd.query(suffixes)
        if cmd.command is None:
            raise ScpiError(-113, f"{header} is a query only ({header}?)")
        cmd.command(suffixes, params)
        return None


def one(params: list[str], header: str) -> str:
    """The single parameter of a setting command."""
    if not params:
        raise ScpiError(-109, f"{header} needs a value")
    if len(params) > 1:
        raise ScpiError(-108, f"{header} takes one value")
    return params[0]


def none(params: list[str], header: str) -> None:
    if params:
        raise ScpiError(-108, f"{header} takes no parameter")
