"""The chip's lock: a client keeps other clients' programs off a shared chip
across several programs of its own (docs/transports.md, "The chip's lock").

    with conn.lock(wait=5.0):          # LockTimeout if another client keeps it longer
        conn.run(prog_a)
        conn.run(prog_b)               # nobody else's program ran in between
                                       # (LockBroken if the server broke the lock meanwhile)

A lock program is one `lock` word and the halting loopback (isa/wire.py); the
chip side answers `lock_state`.  On a server whose clients each have a chip
of their own (the default) the lock is granted at once and never broken.
"""
from __future__ import annotations

import numpy as np

from isa import wire
from isa.wire import H, LockState

from .errors import LinkError, LockBroken, LockTimeout


class ChipLock:
    """A context manager; also `acquire()` / `release()`.  `ms_left` after
    acquiring: milliseconds the server lets it be held (None: no limit)."""

    def __init__(self, conn, wait: float = 10.0):
        if not 0 <= wait < (1 << 32) / 1000:
            raise ValueError(f"lock wait {wait} s outside 0 .. {(1 << 32) // 1000} s")
        self.conn, self.wait = conn, float(wait)
        self.ms_left: int | None = None
        self.held = False

    def acquire(self) -> "ChipLock":
        state, ms = self._exchange(acquire=1)
        if state is LockState.HELD:
            raise LockTimeout(self.conn.url, self.wait, ms)
        if state is not LockState.GRANTED:
            raise LinkError(f"{self.conn.url}: unexpected answer to a lock request: {state.name}")
        self.held = True
        self.conn._lock_broken = False
        self.ms_left = None if ms == wire.LOCK_NO_LIMIT else ms
        return self

    def release(self) -> None:
        """Give the lock back; LockBroken if the server broke it meanwhile."""
        if not self.held:
            return
        self.held = False
        state, _ = self._exchange(acquire=0)
        told = self.conn._lock_broken
        self.conn._lock_broken = False
        if state is LockState.BROKEN or told:
            raise LockBroken(self.conn.url)
        if state is LockState.NOT_HELD:      # broken and told with an answer already taken
            raise LockBroken(self.conn.url)

    def __enter__(self) -> "ChipLock":
        return self.acquire()

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            self.release()
            return
        try:                                 # an error already propagates: do not hide it
            self.release()
        except Exception:
            pass

    def _exchange(self, acquire: int) -> tuple[LockState, int]:
        conn = self.conn
        conn._tag = (conn._tag + 1) % 0xFFFF
        tag = conn._tag
        words = np.array([wire.encode("lock", acquire=acquire, wait_ms=int(self.wait * 1000) if acquire else 0),
                          wire.encode("loopback", halt=1, tag=tag)], dtype=np.uint64)
        saved = conn.timeout
        conn.timeout = saved + (self.wait if acquire else 0.0)      # the wait for the lock is not the link's
        try:
            resp = conn._exchange(words, tag, frame_seqs=True)
        finally:
            conn.timeout = saved
        resp, _ = conn._drop_stale(resp)
        h = resp >> np.uint64(wire.PAYLOAD_BITS)
        errors = resp[h == H["error"]]
        if len(errors):
            f = wire.fields_bulk("error", errors)
            for reason, index in zip(f["reason"].tolist(), f["index"].tolist()):
                r = wire.ErrorReason(reason)
                if r.names_word:
                    raise LinkError(f"{conn.url}: the chip rejected the lock request: {r.text} ({r.name}); "
                                    "does the peer know the lock (a board bridge may not)?")
        if conn._cancelled:
            conn._cancelled = False
            from .errors import ProgramCancelled
            raise ProgramCancelled(f"{conn.url}: the lock request was given up when the connection was lost")
        states = resp[h == H["lock_state"]]
        if not len(states):
            raise LinkError(f"{conn.url}: no answer to the lock request (lock_state); does the peer know it?")
        f = wire.fields_bulk("lock_state", states[-1:])
        return LockState(int(f["state"][0])), int(f["ms"][0])
