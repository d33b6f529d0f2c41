"""The host side of the reliable link layer (isa/arq.py): a Transport over
another one.  On open it says HELLO; a peer that answers HELLO_ACK carries
every byte after that in the layer's packets (retransmitted until
acknowledged, delivered once and in order), so a program crosses a lossy link
exactly once.  A peer that does not answer within `hello_timeout` (a board
bridge that does not speak the layer) is talked to in plain frames, as
without the layer: `negotiated` tells which.  URL option `arq=0` skips it."""
from __future__ import annotations

import time

from isa import arq
from isa.frame import MAGIC as FRAME_MAGIC

from .errors import LinkError
from .transport import Transport


class ArqTransport(Transport):
    def __init__(self, inner: Transport, hello_timeout: float = 1.0, hello_every: float = 0.1):
        self.inner, self.url = inner, inner.url
        self.endpoint: arq.ArqEndpoint | None = None
        self._plain = bytearray()           # what a plain peer sent during the negotiation
        self._closed: LinkError | None = None     # the peer closed during the negotiation
        session = arq.new_session()
        while FRAME_MAGIC in arq.hello(session):     # a plain peer must not read a frame into it
            session = arq.new_session()
        parser = arq.PacketParser(arq.ArqStats())
        deadline = time.monotonic() + hello_timeout
        next_hello = 0.0
        while time.monotonic() < deadline:
            now = time.monotonic()
            try:
                if now >= next_hello:
                    inner.write(arq.hello(session))
                    next_hello = now + hello_every
                raw = inner.read(max(0.0, min(next_hello, deadline) - time.monotonic()))
            except LinkError as exc:        # the peer closed: what it said first (a refusal) is read plain
                self._closed = exc
                self._drain()
                break
            if not raw:
                continue
            self._plain += raw
            got, rest = arq.find_hello(parser, raw, arq.HELLO_ACK)
            if got == session:
                self.endpoint = arq.ArqEndpoint(session)
                parser.stats = self.endpoint.stats
                self.endpoint.parser = parser
                out = bytearray()
                for pkt in rest:
                    self.endpoint.handle(pkt, out)
                self._delivered = bytearray(out)
                self._plain.clear()
                return
        self._delivered = bytearray()

    def _drain(self) -> None:
        """What a closing peer sent before it closed."""
        for _ in range(16):
            try:
                raw = self.inner.read(0.05)
            except LinkError:
                return
            if not raw:
                return
            self._plain += raw

    @property
    def negotiated(self) -> bool:
        return self.endpoint is not None

    def stats(self) -> dict[str, int]:
        return {} if self.endpoint is None else self.endpoint.stats.as_dict()

    def write(self, data: bytes) -> None:
        if self.endpoint is None:
            self.inner.write(data)
            return
        self.endpoint.send(data)
        self._flush()

    def _flush(self) -> None:
        out = self.endpoint.take_outbox()
        if out:
            self.inner.write(out)

    def read(self, timeout: float) -> bytes:
        if self.endpoint is None:
            if self._plain:
                data, self._plain = bytes(self._plain), bytearray()
                return data
            if self._closed is not None:
                raise self._closed
            return self.inner.read(timeout)
        ep = self.endpoint
        deadline = time.monotonic() + timeout
        while True:
            if self._delivered:
                data, self._delivered = bytes(self._delivered), bytearray()
                return data
            now = time.monotonic()
            if now >= deadline:
                return b""
            due = ep.next_deadline()
            wait = deadline - now if due is None else max(0.0, min(deadline, due) - now)
            try:
                raw = self.inner.read(wait)
            except LinkError:
                raise
            if raw:
                self._delivered += ep.receive(raw)
            ep.poll()
            self._flush()

    def close(self) -> None:
        self.inner.close()
