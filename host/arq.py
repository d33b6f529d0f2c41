"""The host side of the reliable link layer (isa/arq.py): a Transport over
another one.  On open it says HELLO; a peer that answers HELLO_ACK carries
every byte after that in the layer's packets (retransmitted until
acknowledged, delivered once and in order), so a program crosses a lossy link
exactly once.  A peer that does not answer within `hello_timeout` (a board
bridge that does not speak the layer) is talked to in plain frames, as
without the layer: `negotiated` tells which.  URL option `arq=0` skips it.

Resume (URL option `resume=1`, `reopen` here): when the connection breaks
(the peer closed or reset it), a new one is opened and RESUME asks the
server to go on with this link; on RESUME_ACK both sides send again what the
other did not acknowledge, so a program sent before the break runs once and
its answer arrives once, as if nothing happened.  A server that did not keep
the session answers RESUME_REFUSED with its reason (ResumeRefused)."""
from __future__ import annotations

import time

from isa import arq
from isa.frame import MAGIC as FRAME_MAGIC

from isa.wire import ErrorReason

from .errors import LinkError
from .transport import Transport

#: Seconds a broken connection is tried again for a resume before the transport gives up.
RESUME_TIMEOUT = 10.0


class ResumeRefused(LinkError):
    """The connection broke and the server would not resume the link
    (`reason`, an isa.wire.ErrorReason): whether the program being sent or
    answered then ran is not known, and a chip of this client's own is gone."""

    def __init__(self, url: str, reason: int):
        try:
            self.reason: ErrorReason | int = ErrorReason(reason)
            what = f"{self.reason.text} ({self.reason.name})"
        except ValueError:
            self.reason, what = reason, f"reason {reason}"
        super().__init__(f"{url}: the connection broke and the server refused to resume the link: {what}; "
                         "whether the last program ran is not known")


class ArqTransport(Transport):
    def __init__(self, inner: Transport, hello_timeout: float = 1.0, hello_every: float = 0.1,
                 reopen=None, resume_timeout: float = RESUME_TIMEOUT):
        self.inner, self.url = inner, inner.url
        #: Opens a new inner transport to the same peer (a resume after a break), or None.
        self.reopen = reopen
        self.resume_timeout = resume_timeout
        #: What happened on the link that the next result should tell (a resume); see take_notices.
        self.notices: list[str] = []
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

    def take_notices(self) -> list[str]:
        notes, self.notices = self.notices, []
        return notes

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
            try:
                self.inner.write(out)
            except LinkError as exc:
                self._resume(exc)

    def _inner_read(self, timeout: float) -> bytes:
        try:
            return self.inner.read(timeout)
        except LinkError as exc:
            self._resume(exc)
            return b""

    def _resume(self, cause: LinkError) -> None:
        """The connection broke: go on with the link over a new one (see the
        module docstring), or raise `cause` (no `reopen`) / ResumeRefused /
        LinkError (no new connection within resume_timeout)."""
        if self.reopen is None or self.endpoint is None:
            raise cause
        ep = self.endpoint
        try:
            self.inner.close()
        except Exception:
            pass
        deadline = time.monotonic() + self.resume_timeout
        last: Exception = cause
        while time.monotonic() < deadline:
            try:
                inner = self.reopen()
            except (LinkError, OSError) as exc:
                last = exc
                time.sleep(0.2)
                continue
            parser = arq.PacketParser(ep.stats)
            try:
                answer, rest = self._ask_resume(inner, parser, deadline)
            except LinkError as exc:
                last = exc
                inner.close()
                time.sleep(0.2)
                continue
            if answer is None:
                inner.close()
                continue
            if answer.kind == arq.RESUME_REFUSED:
                inner.close()
                raise ResumeRefused(self.url, answer.payload[8] if len(answer.payload) > 8 else 0) from cause
            self.inner = inner
            ep.parser = parser
            ep.outbox.clear()                # what the broken connection did not carry
            unacked, had = len(ep.sendbuf), arq._after(answer.ack, ep.base)
            ep.resume(answer.ack)
            self.notices.append(
                f"link: the connection broke ({cause}) and was resumed over a new one: the chip side had "
                f"{had} of the {unacked} bytes this side had not seen acknowledged"
                + (f"; the other {unacked - had} were sent again (what they held had not arrived, and runs "
                   "now, once)" if unacked > had else "")
                + "; answers the chip side had sent and this side had not received come again")
            out = bytearray()
            for pkt in rest:
                ep.handle(pkt, out)
            self._delivered += out
            self._flush()
            return
        raise LinkError(f"{self.url}: the connection broke ({cause}) and could not be resumed within "
                        f"{self.resume_timeout:g} s ({last})") from cause

    def _ask_resume(self, inner: Transport, parser: arq.PacketParser, deadline: float):
        """RESUME until RESUME_ACK or RESUME_REFUSED comes: (that packet, the packets after it)."""
        ep = self.endpoint
        until = min(deadline, time.monotonic() + 2.0)
        next_ask = 0.0
        while time.monotonic() < until:
            if time.monotonic() >= next_ask:
                inner.write(arq.resume(ep.session, ep.expected))
                next_ask = time.monotonic() + 0.2
            raw = inner.read(max(0.0, min(next_ask, until) - time.monotonic()))
            if not raw:
                continue
            pkts = parser.feed(raw)
            for i, p in enumerate(pkts):
                if p.kind in (arq.RESUME_ACK, arq.RESUME_REFUSED) and p.payload[:8] == ep.session:
                    return p, pkts[i + 1:]
        return None, []

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
            raw = self._inner_read(wait)
            if raw:
                self._delivered += ep.receive(raw)
            ep.poll()
            self._flush()

    def close(self) -> None:
        if self.endpoint is not None:        # done: the server need not keep the session for a resume
            try:
                self.inner.write(arq.bye(self.endpoint.session))
            except Exception:
                pass
        self.inner.close()
