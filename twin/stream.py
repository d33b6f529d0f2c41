"""A running program's answers, streamed to the client as they come.

A server gives each session a `StreamSink` (`Session.sink`): the executor
hands it the responses every twin.executor.FLUSH_WORDS words, and the sink
writes them to the client before the program goes on, so what the server
holds of a program's output is bounded (one batch, the socket's buffer, and
on the reliable link layer at most `ARQ_BACKLOG` unacknowledged bytes)
instead of growing with the output.

While it writes, the program keeps the chip.  A client that takes none of
its answers for `stall_seconds`, or whose connection breaks, cannot hold the
chip longer: the sink is `broken` from then on and drops (and counts) the
rest of the answers, the program runs to its end as every program does
(nothing runs half), and the server then disconnects the client, logging
what was dropped.  On the reliable link layer the sink also reads the
client's acknowledgements meanwhile; bytes the client sends in that time
(its next program) are kept for the session (`ServerLink.deferred`) and fed
to it when the program is done.  A stopping server (`cancel_check`) gives
the program up (twin.session.ProgramCancelled).
"""
from __future__ import annotations

import select
import time
from typing import Callable

from .arq_link import ServerLink
from .session import ProgramCancelled

#: Seconds without progress after which a client that does not take its answers loses its program.
OUTPUT_STALL_SECONDS = 5.0
#: Bytes the link layer may hold unacknowledged before the sink waits for the client.
ARQ_BACKLOG = 1 << 20
#: Bytes a client may send while its program streams (kept for later) before it is given up.
DEFERRED_MAX = 1 << 26


class StreamSink:
    """Writes answer bytes to one client; see the module docstring.

    `send_some(view) -> int` writes what it can without blocking (0: full);
    `recv_some() -> bytes` reads what arrived without blocking (b"": nothing;
    raises ConnectionError when the client closed); `fileno` is selectable;
    `pending` holds bytes not written yet (the pty server's output buffer, so
    answers stay in order), of which `high_water` may stay behind;
    `monitor(data)` sees every answer (the server logs its notices);
    `cancel_check()` says why to give up (the server stops)."""

    def __init__(self, link: ServerLink, fileno: int, send_some: Callable[[memoryview], int],
                 recv_some: Callable[[], bytes], monitor: Callable[[bytes], None] | None = None,
                 cancel_check: Callable[[], str | None] | None = None, pending: bytearray | None = None,
                 high_water: int = 0, stall_seconds: float | None = None):
        self.link = link
        self.fileno = fileno
        self.send_some, self.recv_some = send_some, recv_some
        self.monitor = monitor
        self.cancel_check = cancel_check
        self.pending = bytearray() if pending is None else pending
        self.high_water = high_water
        self.stall_seconds = OUTPUT_STALL_SECONDS if stall_seconds is None else stall_seconds
        #: Why the client gets no more answers (None: it does); `dropped`: answer bytes not sent since.
        self.broken: str | None = None
        self.dropped = 0
        #: Bytes streamed so far, and the most held back at once (pending + unacknowledged).
        self.bytes_streamed = 0
        self.peak_held = 0

    def reset(self) -> None:
        """A new client (the pty): answers go out again."""
        self.broken, self.dropped = None, 0

    def __call__(self, data: bytes) -> None:
        if self.monitor is not None:
            self.monitor(data)
        if self.broken is not None:
            self.dropped += len(data)
            return
        self.bytes_streamed += len(data)
        try:
            self._write(data)
        except _Broken as exc:
            self.broken = str(exc)
            self.dropped += len(self.pending)
            self.pending.clear()
        except OSError as exc:          # ConnectionError included: the client is gone
            self.broken = f"connection lost while its answers streamed ({type(exc).__name__}: {exc})"
            self.dropped += len(self.pending)
            self.pending.clear()

    def _write(self, data: bytes) -> None:
        ep = self.link.endpoint
        if ep is None:
            self.pending += data
            self._hold()
            self._drain()
            return
        ep.send(data)
        self.pending += ep.take_outbox()
        self._hold()
        self._drain(0)                  # packets not written cannot be acknowledged
        progress, base = time.monotonic(), ep.base
        while len(ep.sendbuf) > ARQ_BACKLOG:
            due = ep.next_deadline()
            wait = 0.1 if due is None else min(0.1, max(0.0, due - time.monotonic()))
            ready, _, _ = select.select([self.fileno], [], [], wait)
            if ready:
                raw = self.recv_some()
                if raw:
                    self.link.deferred += ep.receive(raw)
                    if len(self.link.deferred) > DEFERRED_MAX:
                        raise _Broken(f"the client sent more than {DEFERRED_MAX} bytes while its answers "
                                      "streamed")
            ep.poll()
            self.pending += ep.take_outbox()
            self._hold()
            self._drain(0)
            if ep.base != base:
                progress, base = time.monotonic(), ep.base
            self._check(progress)

    def _hold(self) -> None:
        held = len(self.pending) + (len(self.link.endpoint.sendbuf) if self.link.endpoint is not None else 0)
        self.peak_held = max(self.peak_held, held)

    def _drain(self, high_water: int | None = None) -> None:
        """Write until at most `high_water` bytes (default: the sink's) are left."""
        high_water = self.high_water if high_water is None else high_water
        progress = time.monotonic()
        while len(self.pending) > high_water:
            with memoryview(self.pending) as view:
                n = self.send_some(view)
            if n:
                del self.pending[:n]
                progress = time.monotonic()
                continue
            self._check(progress)
            select.select([], [self.fileno], [], 0.1)

    def _check(self, progress: float) -> None:
        why = self.cancel_check() if self.cancel_check is not None else None
        if why is not None:
            raise ProgramCancelled(why)
        if time.monotonic() - progress > self.stall_seconds:
            raise _Broken(f"the client took none of its answers for {self.stall_seconds:g} s")


class _Broken(Exception):
    """The client cannot take more answers (why)."""


def tcp_sink(conn, link: ServerLink, monitor=None, cancel_check=None) -> StreamSink:
    """A sink writing to a connected TCP socket (blocking or not)."""
    import socket

    def send_some(view: memoryview) -> int:
        try:
            return conn.send(view, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return 0

    def recv_some() -> bytes:
        try:
            data = conn.recv(1 << 16, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return b""
        if not data:
            raise ConnectionError("the client closed the connection while its answers streamed")
        return data

    return StreamSink(link, conn.fileno(), send_some, recv_some, monitor, cancel_check)


def fd_sink(fd: int, link: ServerLink, read: Callable[[], bytes | None], pending: bytearray,
            high_water: int, monitor=None, cancel_check=None) -> StreamSink:
    """A sink writing to a non-blocking file descriptor (the pty's master side)
    through the server's output buffer `pending`.  `read()` returns what the
    client wrote (b"": nothing), None when it flushed its input (a new client:
    the running program's answers are not for it)."""
    import os

    def send_some(view: memoryview) -> int:
        try:
            return os.write(fd, view)
        except (BlockingIOError, InterruptedError):
            return 0

    def recv_some() -> bytes:
        data = read()
        if data is None:
            raise _Broken("the client flushed its input (a new client) while the answers streamed")
        return data

    return StreamSink(link, fd, send_some, recv_some, monitor, cancel_check, pending, high_water)
