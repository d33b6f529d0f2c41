"""In-process link: a twin behind a byte pipe.

The host's in-process transport and the pyserial `twin://` handler both use
this; they see only bytes, exactly what a TCP or serial peer would send."""
from __future__ import annotations

import time

from .arq_link import ServerLink
from .chip import Chip
from .session import ChipHost, Session


class LocalLink:
    """A private twin chip reachable through write(bytes) / read() -> bytes."""

    def __init__(self, profile: str = "dls", serial: int = 0, seed: int = 0, **options):
        self.session = Session(ChipHost(Chip(profile, serial, seed, **options)))
        self.link = ServerLink()          # plain frames until the host opens the reliable link layer
        self._rx = bytearray()

    def write(self, data: bytes) -> int:
        _, wire = self.link.incoming(bytes(data), self.session.receive)
        self._rx += wire
        return len(data)

    def read(self, size: int = -1, timeout: float = 0.0) -> bytes:
        """Bytes the twin has answered so far.  The twin answers synchronously;
        only the link layer's retransmissions come with time: with nothing to
        read, wait up to `timeout` for the next one.  A read while a frame is
        incomplete runs the receive timeout, like a board whose line went quiet."""
        if not self._rx and self.session.decoder.pending and not self.link.reliable:
            self._rx += self.session.receive_timeout()
        if not self._rx and self.link.reliable:
            due = self.link.deadline()
            if due is not None and timeout > 0:
                time.sleep(max(0.0, min(due - time.monotonic(), timeout)))
            self._rx += self.link.poll()
        n = len(self._rx) if size < 0 else min(size, len(self._rx))
        out = bytes(self._rx[:n])
        del self._rx[:n]
        return out

    @property
    def in_waiting(self) -> int:
        return len(self._rx)

    def close(self) -> None:
        self.session.close()
