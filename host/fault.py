"""Fault injection as a transport: a bad link for testing code against it.

    fault+tcp://127.0.0.1:5555?flip=1e-3&drop=1e-4&seed=7
    fault+twin://dls?flip=1e-2                 (any byte-stream URL after "fault+")

wraps the transport of the URL after "fault+" and, in both directions
(`dir=up` host -> chip only, `dir=down` chip -> host only), at the given rates:

    flip=P      each byte has one random bit flipped with probability P
    erase=P     each byte is lost with probability P
    drop=P      each chunk (what one write carries: one or more frames or link
                packets; on the way down what arrived together) is lost with probability P
    dup=P       each chunk is delivered twice with probability P
    reorder=P   each chunk is held back and delivered after the next one with probability P
    delay=S     every chunk arrives S seconds late
    seed=N      the random sequence (default 0): the same seed, the same faults

Counters of what was done: `FaultTransport.injected`.  The reliable link
layer (host/arq.py) runs above it, so `fault+tcp://...` tests the layer and
everything over it; `arq=0` in the URL turns the layer off to see the raw
damage.
"""
from __future__ import annotations

import time
from collections import Counter
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np

from .transport import Transport

OPTIONS = {"flip": float, "erase": float, "drop": float, "dup": float, "reorder": float, "delay": float,
           "seed": int, "dir": str}


def split_fault_url(url: str) -> tuple[str, dict]:
    """("the wrapped URL", fault options) of a fault+URL; the fault options are
    taken out of the query, the others stay."""
    if not url.startswith("fault+"):
        raise ValueError(f"{url!r} is not a fault+URL")
    inner = url[len("fault+"):]
    parts = urlsplit(inner)
    keep, opts = [], {}
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        if k in OPTIONS:
            try:
                opts[k] = OPTIONS[k](v)
            except ValueError:
                raise ValueError(f"{url}: fault option {k}={v!r} is not a {OPTIONS[k].__name__}") from None
        else:
            keep.append((k, v))
    for k in ("flip", "erase", "drop", "dup", "reorder"):
        if not 0 <= opts.get(k, 0.0) <= 1:
            raise ValueError(f"{url}: fault option {k}={opts[k]} must be a probability in 0..1")
    if opts.get("delay", 0.0) < 0:
        raise ValueError(f"{url}: fault option delay={opts['delay']} must be >= 0 seconds")
    if opts.get("dir", "both") not in ("both", "up", "down"):
        raise ValueError(f"{url}: fault option dir={opts['dir']!r}: both, up or down")
    return urlunsplit(parts._replace(query=urlencode(keep))), opts


class FaultInjector:
    """The damage of one direction (sans-IO: chunks in, (release time, chunk) out)."""

    def __init__(self, rng: np.random.Generator, counts: Counter, direction: str, flip=0.0, erase=0.0,
                 drop=0.0, dup=0.0, reorder=0.0, delay=0.0):
        self.rng, self.counts, self.direction = rng, counts, direction
        self.flip, self.erase, self.drop, self.dup, self.reorder, self.delay = flip, erase, drop, dup, reorder, delay
        self._held: bytes | None = None

    def apply(self, chunk: bytes, now: float) -> list[tuple[float, bytes]]:
        if not chunk:
            return []
        c, d = self.counts, self.direction
        if self.drop and self.rng.random() < self.drop:
            c[f"{d}_chunks_dropped"] += 1
            return []
        data = np.frombuffer(chunk, np.uint8).copy()
        if self.flip:
            hit = np.nonzero(self.rng.random(len(data)) < self.flip)[0]
            data[hit] ^= (1 << self.rng.integers(0, 8, len(hit))).astype(np.uint8)
            c[f"{d}_bits_flipped"] += len(hit)
        if self.erase:
            keep = self.rng.random(len(data)) >= self.erase
            c[f"{d}_bytes_erased"] += int((~keep).sum())
            data = data[keep]
        out = [data.tobytes()]
        if self.dup and self.rng.random() < self.dup:
            c[f"{d}_chunks_duplicated"] += 1
            out.append(out[0])
        if self._held is not None:
            out.append(self._held)
            self._held = None
        elif self.reorder and self.rng.random() < self.reorder:
            c[f"{d}_chunks_reordered"] += 1
            self._held, out = out[0], out[1:]
        return [(now + self.delay, b) for b in out if b]

    def release_held(self, now: float) -> list[tuple[float, bytes]]:
        """A chunk held back for reordering that no later chunk followed."""
        held, self._held = self._held, None
        return [(now + self.delay, held)] if held else []


class FaultTransport(Transport):
    def __init__(self, inner: Transport, url: str, seed: int = 0, dir: str = "both", **rates):
        self.inner, self.url = inner, url
        self.injected: Counter = Counter()
        rng = np.random.default_rng([seed, 0xFA17])
        none = dict.fromkeys(("flip", "erase", "drop", "dup", "reorder", "delay"), 0.0)
        self._up = FaultInjector(rng, self.injected, "up", **(rates if dir in ("both", "up") else none))
        self._down = FaultInjector(rng, self.injected, "down", **(rates if dir in ("both", "down") else none))
        self._out: list[tuple[float, bytes]] = []
        self._in: list[tuple[float, bytes]] = []

    def _flush_out(self, now: float) -> None:
        due = [b for t, b in self._out if t <= now]
        self._out = [(t, b) for t, b in self._out if t > now]
        for b in due:
            self.inner.write(b)

    def write(self, data: bytes) -> None:
        now = time.monotonic()
        self._out += self._up.apply(data, now)
        self._flush_out(now)

    def read(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            self._flush_out(now)
            if not self._out:
                self._out += self._up.release_held(now)
            due = b"".join(b for t, b in self._in if t <= now)
            self._in = [(t, b) for t, b in self._in if t > now]
            if due:
                return due
            left = deadline - now
            if left <= 0:
                self._in += self._down.release_held(now)
                return b""
            waits = [t - now for t, _ in self._out + self._in]
            raw = self.inner.read(max(0.0, min([left] + waits)))
            if raw:
                self._in += self._down.apply(raw, time.monotonic())

    def close(self) -> None:
        self.inner.close()
