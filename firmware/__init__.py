"""PPU firmware: the runtime, the plasticity-rule library, and its build.

    import firmware
    image = firmware.build("stdp_mult", chip="dls")          # bytes, a memory image from 0
    mb = firmware.mailbox("stdp_mult", "dls", command="periodic", period_us=100,
                          theta=2, lambda_pos=40, lambda_neg=20, w_max=63, offset_stride=0)
    ppu.load(image); ppu.write_memory(firmware.MAILBOX_ADDRESS, mb); ppu.start()

A build assembles, with the project's assembler (isa.ppu.asm), in this order:
a prelude (the chip's generated include file firmware/include/<chip>.inc, the
rule's parameter symbols P_<NAME> and the vector macros of lib/vector.s),
crt0.s, lib/rule_loop.s and rules/<name>.s.  Images are cached on disk,
keyed by the text of every source and of the assembler, in
$BSS_TWIN_CACHE_DIR/firmware (default ~/.cache/bss-twin/firmware); nothing
built is committed.  docs/firmware.md describes the runtime, the mailbox and
the rules.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import tempfile

import numpy as np

from isa.cache import cache_folder
from isa.ppu.iomap import MAILBOX_ADDRESS, MAILBOX_COMMANDS, MAILBOX_LAYOUT, MAILBOX_SIZE, MAILBOX_STATES
from isa.profiles import PROFILES

from .rules import CHIP_LIMITS, RULES, Rule

__all__ = ["build", "program", "mailbox", "param_word", "RULES", "Rule", "MAILBOX_ADDRESS", "MAILBOX_SIZE", "field",
           "FIRMWARE_DIR", "RuleOnChip", "RuleError"]

FIRMWARE_DIR = pathlib.Path(__file__).resolve().parent
_ISA_PPU = FIRMWARE_DIR.parent / "isa" / "ppu"
_built: dict[tuple[str, str], bytes] = {}


def _rule(name: str) -> Rule:
    if name not in RULES:
        raise ValueError(f"unknown firmware rule {name!r}; the library has: {', '.join(sorted(RULES))}")
    return RULES[name]


def _profile(chip: str):
    if chip not in PROFILES or not PROFILES[chip].ppus:
        with_ppu = sorted(n for n, p in PROFILES.items() if p.ppus)
        raise ValueError(f"chip {chip!r} has no PPU; firmware builds for: {', '.join(with_ppu)}")
    return PROFILES[chip]


def _sources(name: str, chip: str) -> list[tuple[str, str]]:
    rule = _rule(name)
    _profile(chip)
    prelude = [f'    .include "include/{chip}.inc"']
    prelude += [f"    .set P_{p.name.upper()}, MB_PARAMS + {4 * i}" for i, p in enumerate(rule.params)]
    prelude += ['    .include "lib/vector.s"']
    files = [FIRMWARE_DIR / "crt0.s", FIRMWARE_DIR / "lib" / "rule_loop.s", FIRMWARE_DIR / "rules" / f"{name}.s"]
    return [(f"<firmware.build {name} {chip}>", "\n".join(prelude) + "\n")] + \
           [(str(f), f.read_text(encoding="utf-8")) for f in files]


def program(name: str, chip: str = "dls"):
    """The assembled isa.ppu.asm.Program of rule `name` for `chip` (symbols
    included), not cached.  Raises isa.ppu.asm.AsmError with file:line:col."""
    from isa.ppu.asm import assemble
    return assemble(_sources(name, chip), include_dirs=[str(FIRMWARE_DIR)])


def _key(name: str, chip: str) -> str:
    h = hashlib.sha256()
    for fname, text in _sources(name, chip):
        h.update(fname.encode() + b"\0" + text.encode())
    for f in sorted([*FIRMWARE_DIR.rglob("*.s"), *FIRMWARE_DIR.rglob("*.inc"), *_ISA_PPU.glob("*.py")]):
        h.update(str(f.relative_to(FIRMWARE_DIR.parent)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:24]


def _cache_dir() -> pathlib.Path | None:
    return cache_folder("firmware", "firmware is assembled each time")


def build(name: str, chip: str = "dls") -> bytes:
    """The memory image (from address 0) of rule `name` with the runtime, for
    `chip` ("dls" or "hx"): assembled on first use, then read from the cache."""
    key = _key(name, chip)
    if (key, chip) in _built:
        return _built[key, chip]
    folder = _cache_dir()
    path = folder / f"{name}-{chip}-{key}.bin" if folder else None
    if path is not None and path.exists():
        image = path.read_bytes()
    else:
        image = program(name, chip).image()
        if len(image) > MAILBOX_ADDRESS - 0x1000:          # leave the stack its room
            raise ValueError(f"firmware {name} for {chip}: {len(image)} bytes reach into the stack "
                             f"below {MAILBOX_ADDRESS:#x}")
        if path is not None:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=path.name, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(image)
            os.replace(tmp, path)                           # readers never see half a file
    _built[key, chip] = image
    return image


def field(name: str) -> tuple[int, int]:
    """(address, size in bytes) of a mailbox field (isa.ppu.iomap.MAILBOX_LAYOUT)."""
    for n, off, size, _ in MAILBOX_LAYOUT:
        if n == name:
            return MAILBOX_ADDRESS + off, size
    raise ValueError(f"no mailbox field {name!r}; fields: {', '.join(n for n, *_ in MAILBOX_LAYOUT)}")


def _limit(p, profile) -> int:
    return CHIP_LIMITS[p.hi][1](profile) if isinstance(p.hi, str) else int(p.hi)


def param_word(name: str, chip: str, param: str, value: int) -> tuple[int, bytes]:
    """(address, big-endian word) of parameter `param` of rule `name` set to
    `value`, checked against its range; negative values as two's complement.
    For the host to rewrite a parameter the rule reads at each update (e.g.
    stdp_reward's reward; `RuleOnChip.set`)."""
    rule, profile = _rule(name), _profile(chip)
    for i, p in enumerate(rule.params):
        if p.name == param:
            v, hi = int(value), _limit(p, profile)
            if not p.lo <= v <= hi:
                raise ValueError(f"rule {name}: {p.name} = {v} out of range {p.lo}..{hi} ({p.doc})")
            return field("params")[0] + 4 * i, (v & 0xFFFFFFFF).to_bytes(4, "big")
    raise ValueError(f"rule {name} has no parameter {param!r} (its parameters: "
                     f"{', '.join(p.name for p in rule.params)})")


def mailbox(name: str, chip: str = "dls", *, command: str = "once", period_us: int = 0, iterations: int = 0,
            data: bytes | np.ndarray = b"", **params: int) -> bytes:
    """The mailbox (MAILBOX_SIZE bytes, to write at MAILBOX_ADDRESS before the
    start) asking rule `name` to run: `command` ("once" or "periodic"), the
    period and count of updates, the rule's parameters by name (all of them)
    and the bytes of the data area (e.g. offsets)."""
    rule = _rule(name)
    _profile(chip)
    if command not in MAILBOX_COMMANDS:
        raise ValueError(f"unknown mailbox command {command!r}; commands: {', '.join(MAILBOX_COMMANDS)}")
    names = [p.name for p in rule.params]
    unknown = sorted(set(params) - set(names))
    for p in rule.params:                   # parameters with a default may be left out
        if p.name not in params and p.default is not None:
            params[p.name] = CHIP_LIMITS[p.default][1](_profile(chip)) if isinstance(p.default, str) else p.default
    missing = [n for n in names if n not in params]
    if unknown or missing:
        raise ValueError(f"rule {name}: " + "; ".join(
            ([f"unknown parameter(s) {', '.join(unknown)}"] if unknown else [])
            + ([f"missing parameter(s) {', '.join(missing)}"] if missing else []))
            + f" (its parameters: {', '.join(names)})")
    mb = np.zeros(MAILBOX_SIZE, np.uint8)

    def put(field_name: str, value: int) -> None:
        addr, size = field(field_name)
        mb[addr - MAILBOX_ADDRESS:addr - MAILBOX_ADDRESS + 4] = np.frombuffer(int(value).to_bytes(4, "big"),
                                                                               np.uint8)

    for what, v in (("period_us", period_us), ("iterations", iterations)):
        if not 0 <= int(v) < 1 << 31:
            raise ValueError(f"{what} = {v} out of range 0..{(1 << 31) - 1}")
    put("command", MAILBOX_COMMANDS[command])
    put("period_us", period_us)
    put("iterations", iterations)
    for n in names:
        addr, word = param_word(name, chip, n, params[n])
        mb[addr - MAILBOX_ADDRESS:addr - MAILBOX_ADDRESS + 4] = np.frombuffer(word, np.uint8)
    data = np.frombuffer(bytes(data), np.uint8) if not isinstance(data, np.ndarray) else data.ravel().view(np.uint8)
    addr, size = field("data")
    if len(data) > size:
        raise ValueError(f"data of {len(data)} bytes does not fit the mailbox's data area ({size} bytes)")
    mb[addr - MAILBOX_ADDRESS:addr - MAILBOX_ADDRESS + len(data)] = data
    return mb.tobytes()


STATES = {v: k for k, v in MAILBOX_STATES.items()}

from .run import RuleError, RuleOnChip  # noqa: E402  (uses build, field, mailbox, param_word above)
