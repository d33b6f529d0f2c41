"""Chip state that outlives the server (`bss-twin serve --state DIR`).

What is kept: every read-write register of the chip's map except the PPUs'
control and debug registers, i.e. what a board keeps between host sessions
while it stays powered: the parameter memory (capmem cells on dls and hx,
floating gates on hicann) and its configuration, the PPUs' memory, synapse
weights and labels, synapse-driver, neuron, correlation, MADC and routing
configuration.  Not kept: the PPU cores themselves (their registers, program
counter, run state: a PPU comes back in reset, its memory as it was), the
analog state (membranes, traces, which settle again from the kept
parameters), the clock, spike counters and link counters.  The registers are
read and written through the register bus, so restoring a state is the same
as a host program writing those values.

One file per chip in DIR, named `PROFILE-serial-N.state`::

    offset  size  field
    0       16    magic b"BSS-TWIN-STATE\\n\\0"
    16      4     format version (big-endian; this twin writes and reads FORMAT_VERSION)
    20      4     header length H in bytes (big-endian)
    24      H     header: UTF-8 JSON {"profile", "serial", "model_version", "registers":
                  [[block, register, count], ...], "saved_at", "programs"}
    24+H    4n    the registers' values, in the header's order, uint32 big-endian
    end-4   4     CRC-32 of every byte before it (big-endian)

Writes are atomic: the file is written to `NAME.tmp`, flushed and fsync'ed,
then renamed over the old one (os.replace) and the directory fsync'ed, so a
crash leaves the old file or the new one, never a torn one.  A file that is
torn anyway (CRC), of another chip, of another register map or of a newer
format is refused with a StateError naming it.
"""
from __future__ import annotations

import json
import os
import struct
import threading
import time
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from .chip import Chip

MAGIC = b"BSS-TWIN-STATE\n\x00"
FORMAT_VERSION = 1
_HEAD = struct.Struct(">16sII")
#: Seconds between two saves at most (a save happens only after programs changed the state).
DEFAULT_SAVE_SECONDS = 5.0


class StateError(Exception):
    """A state file that cannot be used (the message names the file and why)."""


def kept_registers(chip: Chip) -> list[tuple[str, str, int]]:
    """(block, register, element count) of what a state keeps, in map order."""
    out = []
    for b in chip.regmap.blocks:
        ppu = {r.name for r in b.registers} >= {"memory", "control"}
        for r in b.registers:
            if r.access != "rw" or (ppu and r.name != "memory"):
                continue
            out.append((b.name, r.name, max(r.count, 1)))
    return out


def state_path(directory: str | os.PathLike, chip: Chip) -> Path:
    return Path(directory) / f"{chip.profile.name}-serial-{chip.serial}.state"


def snapshot(chip: Chip) -> np.ndarray:
    """The kept registers' values (uint32, in kept_registers order), read over the register bus."""
    parts = []
    for block, reg, _ in kept_registers(chip):
        res = chip.bus.read(chip.regmap.addresses(block, reg))
        if res.reason.any():
            raise StateError(f"reading {block}.{reg} for the state failed")
        parts.append(res.values)
    return np.concatenate(parts).astype(np.uint32)


def restore(chip: Chip, values: np.ndarray, where: str = "state") -> None:
    """Write kept values back over the register bus (as a host program would)."""
    pos = 0
    for block, reg, count in kept_registers(chip):
        addr = chip.regmap.addresses(block, reg)
        res = chip.bus.write(addr, values[pos:pos + count], np.full(count, 0xF, dtype=np.uint8))
        if res.reason.any():
            bad = int(np.flatnonzero(res.reason)[0])
            raise StateError(f"{where}: {block}.{reg}[{bad}] = {int(values[pos + bad]):#x} was refused by the "
                             f"chip (reason {int(res.reason[bad])})")
        pos += count


def encode(chip: Chip, values: np.ndarray) -> bytes:
    header = json.dumps({"profile": chip.profile.name, "serial": chip.serial, "model_version": chip.profile.version,
                         "registers": [list(r) for r in kept_registers(chip)],
                         "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         "programs": int(chip.link_counters.get("programs", 0))}).encode()
    body = _HEAD.pack(MAGIC, FORMAT_VERSION, len(header)) + header + values.astype(">u4").tobytes()
    return body + struct.pack(">I", zlib.crc32(body))


def decode(data: bytes, chip: Chip, where: str) -> np.ndarray:
    """The values of a state file's bytes, checked against `chip` (StateError naming `where`)."""
    if len(data) < _HEAD.size + 4 or not data.startswith(MAGIC):
        raise StateError(f"{where}: not a bss-twin state file (no magic at its start; {len(data)} bytes)")
    _, version, hlen = _HEAD.unpack_from(data)
    if version != FORMAT_VERSION:
        raise StateError(f"{where}: state format version {version}, this twin reads version {FORMAT_VERSION}"
                         + (" (written by a newer twin)" if version > FORMAT_VERSION else ""))
    (crc,) = struct.unpack_from(">I", data, len(data) - 4)
    if zlib.crc32(data[:-4]) != crc:
        raise StateError(f"{where}: the file is damaged or torn (CRC mismatch over {len(data)} bytes); move it "
                         "away to start from reset")
    try:
        header = json.loads(data[_HEAD.size:_HEAD.size + hlen])
    except ValueError as exc:
        raise StateError(f"{where}: unreadable header ({exc})") from None
    if header.get("profile") != chip.profile.name or header.get("serial") != chip.serial:
        raise StateError(f"{where}: the state of another chip ({header.get('profile')} serial "
                         f"{header.get('serial')}), not of this {chip.profile.name} serial {chip.serial}")
    if [tuple(r) for r in header.get("registers", [])] != kept_registers(chip):
        raise StateError(f"{where}: its registers do not match this twin's register map (model version "
                         f"{header.get('model_version')}, this twin's {chip.profile.version})")
    n = sum(c for _, _, c in kept_registers(chip))
    raw = data[_HEAD.size + hlen:-4]
    if len(raw) != 4 * n:
        raise StateError(f"{where}: {len(raw)} bytes of values, {4 * n} expected")
    return np.frombuffer(raw, dtype=">u4").astype(np.uint32)


def write_atomically(path: Path, data: bytes) -> None:
    """`data` to `path` so that a crash leaves the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class StateStore:
    """Loads a chip's state from DIR and saves it back: after programs ran, at
    most once every `every` seconds and only when the kept values changed,
    and at `close()`.  `exclusive` is a context-manager factory that keeps
    programs off the chip while a snapshot is taken (twin.session.ChipHost)."""

    def __init__(self, directory: str | os.PathLike, chip: Chip, exclusive: Callable | None = None,
                 log: Callable[[str], None] | None = None, every: float = DEFAULT_SAVE_SECONDS):
        if not every > 0:
            raise ValueError(f"state save interval must be positive, not {every}")
        self.dir = Path(directory)
        if not self.dir.is_dir():
            raise StateError(f"--state {self.dir}: not a directory")
        self.chip, self.exclusive, self.every = chip, exclusive, float(every)
        self.log = log or (lambda text: None)
        self.path = state_path(self.dir, chip)
        self.saves = 0                       # files written
        self.loaded = False
        self._saved: bytes | None = None      # values as last written or loaded
        self._programs = None                 # the chip's program count at the last look
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        stale = self.path.with_name(self.path.name + ".tmp")
        if stale.exists():                   # a save interrupted by a crash: the old file is whole
            self.log(f"removing {stale}, left by an interrupted save")
            stale.unlink()

    def load(self) -> bool:
        """Restore the chip from its file, if there is one (StateError if it cannot be used)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            self.log(f"no {self.path.name} in {self.dir} yet; the chip starts from reset")
            self._programs = self.chip.link_counters.get("programs", 0)
            return False
        except OSError as exc:
            raise StateError(f"{self.path}: {exc}") from None
        values = decode(data, self.chip, str(self.path))
        restore(self.chip, values, str(self.path))
        self._saved = values.tobytes()
        self._programs = self.chip.link_counters.get("programs", 0)
        self.loaded = True
        self.log(f"loaded {self.path}")
        return True

    def values(self) -> np.ndarray | None:
        """The values as loaded or last saved (None before either)."""
        return None if self._saved is None else np.frombuffer(self._saved, dtype=np.uint32)

    def start(self) -> "StateStore":
        self._thread = threading.Thread(target=self._loop, name="bss-twin state", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.save_if_changed()
            except Exception as exc:         # a full disk never takes the server down
                self.log(f"saving {self.path} failed: {type(exc).__name__}: {exc}")

    def save_if_changed(self, force_look: bool = False) -> bool:
        """Save when programs ran since the last look and the kept values changed."""
        with self._lock:
            programs = self.chip.link_counters.get("programs", 0)
            if programs == self._programs and not force_look:
                return False
            if self.exclusive is not None:
                with self.exclusive():
                    values = snapshot(self.chip)
            else:
                values = snapshot(self.chip)
            self._programs = programs
            raw = values.tobytes()
            if raw == self._saved:
                return False
            write_atomically(self.path, encode(self.chip, values))
            self._saved = raw
            self.saves += 1
            self.log(f"saved {self.path} ({len(raw)} bytes of registers)")
            return True

    def close(self) -> None:
        """Stop saving periodically; a last save if anything changed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.every + 5)
        try:
            self.save_if_changed(force_look=True)
        except Exception as exc:
            self.log(f"saving {self.path} at shutdown failed: {type(exc).__name__}: {exc}")
