"""Byte transports to a chip.  All of them carry the same framed bytes.

URL forms understood by `open_transport`:

    twin:PROFILE?serial=N&seed=S    in-process twin (default twin:dls); also mismatch=0 (an ideal
                                    chip), spike_loss=P, synapse_loss=F (BrainScaleS-1 distortions)
    tcp://HOST:PORT                 a twin server or a board bridge speaking the protocol
    twin://PROFILE?serial=N         in-process twin through pyserial's serial_for_url
    serial:///dev/ttyUSB0?baud=B    a serial line (any pyserial URL: socket://, loop://, ...)
    /dev/pts/N, /dev/ttyUSB0        a device path (serial line or the twin server's pty)
    fault+URL?flip=P&drop=P&...     any of these through injected faults (host/fault.py)

Option arq=0|1 on any of them: the reliable link layer (host/arq.py) off or on.
Option token=T (or $BSS_TWIN_TOKEN) on tcp://: the shared secret of a server that requires one.
"""
from __future__ import annotations

import abc
import os
import socket
import time
from urllib.parse import parse_qs, urlparse

from .errors import LinkError

#: Environment variable with the token of a server that requires one (else token=... in the URL).
ENV_TOKEN = "BSS_TWIN_TOKEN"


class Transport(abc.ABC):
    url: str

    @abc.abstractmethod
    def write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    def read(self, timeout: float) -> bytes:
        """Bytes available within `timeout` seconds (b"" when none came)."""

    def close(self) -> None:
        pass


def _twin_params(url: str, spec: str) -> tuple[str, int, int, dict]:
    """Profile, serial, seed and chip options (mismatch=0|1, spike_loss=P,
    synapse_loss=F) of a twin URL."""
    parsed = urlparse(spec)
    profile = (parsed.path or parsed.netloc or "dls").strip("/") or "dls"
    q = parse_qs(parsed.query)
    unknown = set(q) - {"serial", "seed", "mismatch", "spike_loss", "synapse_loss", "arq"}
    if unknown:
        raise ValueError(f"{url}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                         "a twin URL takes serial=N, seed=S, mismatch=0|1, spike_loss=P and synapse_loss=F")
    try:
        serial = int(q.get("serial", ["0"])[0], 0)
        seed = int(q.get("seed", ["0"])[0], 0)
    except ValueError:
        raise ValueError(f"{url}: serial and seed must be integers") from None
    options: dict = {}
    try:
        if "mismatch" in q:
            options["mismatch"] = bool(int(q["mismatch"][0]))
        for name in ("spike_loss", "synapse_loss"):
            if name in q:
                options[name] = float(q[name][0])
    except ValueError:
        raise ValueError(f"{url}: mismatch must be 0 or 1, spike_loss and synapse_loss numbers") from None
    return profile, serial, seed, options


class InProcessTransport(Transport):
    """A private twin in this process (imported lazily: host never needs twin otherwise)."""

    def __init__(self, url: str):
        from twin.link import LocalLink  # the only place host reaches the twin: a byte pipe

        self.url = url
        profile, serial, seed, options = _twin_params(url, url.split(":", 1)[1] if ":" in url else "")
        self._link = LocalLink(profile, serial, seed, **options)

    def write(self, data: bytes) -> None:
        self._link.write(data)

    def read(self, timeout: float) -> bytes:
        return self._link.read(timeout=timeout)

    def close(self) -> None:
        self._link.close()


class TcpTransport(Transport):
    def __init__(self, url: str, connect_timeout: float = 5.0):
        self.url = url
        parsed = urlparse(url)
        if not parsed.hostname or not parsed.port:
            raise ValueError(f"{url}: expected tcp://HOST:PORT")
        try:
            self._sock = socket.create_connection((parsed.hostname, parsed.port), timeout=connect_timeout)
        except OSError as exc:
            raise LinkError(f"cannot connect to {url}: {exc}; is `bss-twin serve --tcp` "
                            "(or the board bridge) running?") from exc
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise LinkError(f"{self.url}: connection lost while sending: {exc}") from exc

    def read(self, timeout: float) -> bytes:
        try:
            self._sock.settimeout(timeout)
            data = self._sock.recv(1 << 20)
        except (socket.timeout, BlockingIOError):     # (timeout 0: a poll, which raises EAGAIN)
            return b""
        except OSError as exc:
            raise LinkError(f"{self.url}: connection lost while receiving: {exc}") from exc
        if not data:
            raise LinkError(f"{self.url}: the peer closed the connection")
        return data

    def close(self) -> None:
        try:                                 # tell the peer now, and wake a thread blocked reading
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


class SerialTransport(Transport):
    """Any pyserial URL or device path, including the `twin://` scheme."""

    def __init__(self, url: str):
        import serial

        from . import protocol_twin  # noqa: F401  (registers twin:// with pyserial)

        self.url = url
        target, kwargs = url, {}
        if url.startswith("serial://"):
            parsed = urlparse(url)
            target = parsed.path
            q = parse_qs(parsed.query)
            if "baud" in q:
                kwargs["baudrate"] = int(q["baud"][0])
        try:
            self._port = serial.serial_for_url(target, timeout=0.05, **kwargs)
        except (serial.SerialException, ValueError) as exc:
            raise LinkError(f"cannot open {url}: {exc}") from exc

    def write(self, data: bytes) -> None:
        import serial

        try:
            self._port.write(data)
            self._port.flush()
        except serial.SerialException as exc:
            raise LinkError(f"{self.url}: write failed: {exc}") from exc

    def read(self, timeout: float) -> bytes:
        import serial

        deadline = time.monotonic() + timeout
        try:
            while True:
                n = self._port.in_waiting
                if n:
                    return self._port.read(n)
                self._port.timeout = max(0.0, min(0.05, deadline - time.monotonic()))
                data = self._port.read(1)
                if data:
                    return data + self._port.read(self._port.in_waiting)
                if time.monotonic() >= deadline:
                    return b""
        except serial.SerialException as exc:
            raise LinkError(f"{self.url}: read failed: {exc}") from exc

    def close(self) -> None:
        self._port.close()


def _plain_transport(url: str) -> Transport:
    if url.startswith("twin:") and not url.startswith("twin://"):
        return InProcessTransport(url)
    if url.startswith("tcp://"):
        transport = TcpTransport(url)
        token = (parse_qs(urlparse(url).query).get("token") or [os.environ.get(ENV_TOKEN)])[-1]
        if token:
            from isa.arq import auth
            transport.write(auth(token))      # a server with a token wants it first (docs/transports.md)
        return transport
    if url.startswith(("twin://", "serial://", "socket://", "loop://", "rfc2217://", "spy://",
                       "hwgrep://", "alt://", "/")):
        return SerialTransport(url)
    raise ValueError(f"unknown connection URL {url!r}; use twin:PROFILE?serial=N, tcp://HOST:PORT, "
                     "twin://PROFILE, serial:///dev/ttyUSB0?baud=B, socket://HOST:PORT or a device path, "
                     "optionally behind fault+ (host/fault.py)")


def _arq_option(url: str) -> bool | None:
    """The URL's arq=0|1 option; None when it has none."""
    values = parse_qs(urlparse(url).query).get("arq")
    if not values:
        return None
    if values[-1] not in ("0", "1"):
        raise ValueError(f"{url}: arq={values[-1]!r}: 0 (plain frames) or 1 (the reliable link layer)")
    return values[-1] == "1"


def _resume_option(url: str) -> bool:
    values = parse_qs(urlparse(url).query).get("resume")
    if not values:
        return False
    if values[-1] not in ("0", "1"):
        raise ValueError(f"{url}: resume={values[-1]!r}: 0 or 1 (go on with the link over a new connection "
                         "when it breaks)")
    return values[-1] == "1"


def open_transport(url: str) -> Transport:
    """The transport of a connection URL (module docstring).  Byte streams that
    can lose or damage bytes (TCP, serial lines, the pty, anything behind
    fault+) open the reliable link layer (host/arq.py) unless `arq=0`; the
    lossless in-process links (twin:, twin://) speak plain frames unless `arq=1`."""
    from .arq import ArqTransport
    arq = _arq_option(url)
    resume = _resume_option(url)
    if url.startswith("fault+"):
        from .fault import FaultTransport, split_fault_url
        inner_url, options = split_fault_url(url)
        reopen = lambda: FaultTransport(_plain_transport(inner_url), url, **options)
        lossy = True
    else:
        reopen = lambda: _plain_transport(url)
        lossy = not url.startswith("twin:")
    transport = reopen()
    if resume and not (lossy if arq is None else arq):
        raise ValueError(f"{url}: resume=1 needs the reliable link layer (not with arq=0)")
    return ArqTransport(transport, reopen=reopen if resume else None) if (lossy if arq is None else arq) \
        else transport
