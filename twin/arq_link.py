"""The server side of the reliable link layer (isa/arq.py) for one byte
stream (a TCP client, the pty).  A stream starts plain: its bytes go to the
session's frame decoder as they come.  When a valid HELLO packet arrives, the
stream switches to the link layer: HELLO_ACK goes back, and from then on only
the bytes the layer delivers (in order, once) reach the session, and the
session's answers travel as the layer's packets, retransmitted until
acknowledged.  A client that says HELLO again (it reconnected, or lost the
HELLO_ACK) with another session id starts a fresh link."""
from __future__ import annotations

import time
from typing import Callable

from isa import arq


class ServerLink:
    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.endpoint: arq.ArqEndpoint | None = None
        self._sniff = arq.PacketParser(arq.ArqStats())
        #: Bytes the layer delivered while a program's answers streamed (twin.stream): the
        #: session gets them after that program, in order, before anything received later.
        self.deferred = bytearray()

    def reset(self) -> None:
        """Plain frames again, until the next HELLO: a new client on a line that
        outlives its clients (the pty), which may not speak the layer."""
        self.endpoint = None
        self._sniff = arq.PacketParser(arq.ArqStats())
        self.deferred = bytearray()

    @property
    def reliable(self) -> bool:
        return self.endpoint is not None

    def incoming(self, data: bytes, deliver: Callable[[bytes], bytes]) -> tuple[bytes, bytes]:
        """Bytes from the stream -> (the session's answer frames, the bytes to write back).
        `deliver` feeds bytes to the session and returns its answer."""
        if self.endpoint is None:
            session, rest = arq.find_hello(self._sniff, data)
            if session is None:
                return (answer := deliver(data)), answer
            self._establish(session)
            delivered = bytearray()
            for pkt in rest:
                self.endpoint.handle(pkt, delivered)
            delivered = bytes(delivered)
        else:
            delivered = self._receive(data)
        if self.deferred:                      # bytes that came while the last program streamed go first
            delivered, self.deferred = bytes(self.deferred) + delivered, bytearray()
        answers = []
        while delivered:
            answer = deliver(delivered)
            if answer:                         # in order with what the session streamed meanwhile
                self.endpoint.send(answer)
                answers.append(answer)
            delivered, self.deferred = bytes(self.deferred), bytearray()
        return b"".join(answers), self.endpoint.take_outbox()

    def _receive(self, data: bytes) -> bytes:
        delivered = self.endpoint.receive(data)
        if self.endpoint.peer_restarted is not None:   # a new link from the client (it sends nothing
            self._establish(self.endpoint.peer_restarted)   # before our HELLO_ACK): start afresh
            return b""
        return delivered

    def _establish(self, session: bytes) -> None:
        parser = self.endpoint.parser if self.endpoint is not None else self._sniff
        self.endpoint = arq.ArqEndpoint(session, clock=self.clock)
        parser.stats = self.endpoint.stats
        self.endpoint.parser = parser
        self.endpoint.outbox += arq.hello_ack(session)

    def outgoing(self, answer: bytes) -> tuple[bytes, bytes]:
        """An answer the session gave on its own (a receive timeout), or b"":
        (the answer, the bytes to write: the answer and retransmissions due)."""
        if self.endpoint is None:
            return answer, answer
        if answer:
            self.endpoint.send(answer)
        return answer, self.poll()

    def poll(self) -> bytes:
        """Retransmissions due now: bytes to write."""
        if self.endpoint is None:
            return b""
        self.endpoint.poll()
        return self.endpoint.take_outbox()

    def quiet_timeout(self, receive_timeout: float) -> float:
        """Silence after which the session drops a partial frame: on the link
        layer longer by its longest retransmission interval, since a client
        whose packets are damaged resends at least that often."""
        return receive_timeout + (arq.RTO_MAX if self.reliable else 0.0)

    def deadline(self) -> float | None:
        return None if self.endpoint is None else self.endpoint.next_deadline()

    def stats(self) -> dict[str, int]:
        return {} if self.endpoint is None else self.endpoint.stats.as_dict()
