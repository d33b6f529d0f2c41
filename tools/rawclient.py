"""A client that speaks only isa.frame and isa.wire: the tests' and benchmarks' probe of a server.

The host library hides the frame layer (it numbers, splits, retransmits and
decodes for its user); a test or a benchmark that must send exactly the bytes
it wants (broken frames, unfinished programs, floods) and see exactly what
comes back talks through `RawClient` instead.  One class for all of them:

    c = RawClient.tcp(("127.0.0.1", port))          # a plain socket (c.sock)
    c = RawClient.pty("/dev/pts/4")                 # the pty path through pyserial (c.port)
    c = RawClient.url("tcp://127.0.0.1:5555")       # any host URL: the reliable link layer,
                                                    # fault+ (host.transport.open_transport)
    data, notices = c.run(write_words + [read_word], tag=7)

Answers are decoded as they arrive: every word is counted by its header
(`counts`), notices (`error`, `timeout`, `limit_reached`) are kept as typed
tuples (`notices`, at most `max_notices`), read data in `data`, halt echoes
in `echoes`; with `keep=True` (default) every word also waits in `backlog`
until `until_echo` hands the words up to an echo to the caller.  A client
that must not hold a long answer (a recording of millions of samples) passes
`keep=False`.  Frames the client sends are built with the codec of
isa/frame.py unless `encode(words, seq, flags) -> bytes` builds them
otherwise (a test that checks the codec's own layout).

`wait_for(pred, timeout)` polls a condition (a server's counters, its log).
"""
from __future__ import annotations

import select
import socket
import time
from typing import Callable

import numpy as np

from isa import frame, wire
from isa.frame import FLAG_CONT, FLAG_END, FLAG_START, FLAG_TO_HOST, MAX_FRAME_WORDS
from isa.wire import ErrorReason, LimitKind, TimeoutReason

__all__ = ["RawClient", "NoAnswer", "ServerClosed", "notice", "wait_for", "NOTICE_HEADERS"]

_H_ERROR, _H_TIMEOUT, _H_LIMIT = wire.H["error"], wire.H["timeout"], wire.H["limit_reached"]
_H_ECHO, _H_READ = wire.H["loopback_echo"], wire.H["read_data"]
#: Headers of the words that report something (not data).
NOTICE_HEADERS = (_H_ERROR, _H_TIMEOUT, _H_LIMIT)


class NoAnswer(AssertionError):
    """What was waited for did not come in time (an AssertionError: a test fails with it)."""


class ServerClosed(ConnectionError):
    """The server closed the connection."""


def wait_for(pred: Callable[[], object], timeout: float = 3.0, every: float = 0.01) -> bool:
    """Poll `pred` until it is true (True) or `timeout` seconds have passed (False)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


def notice(word: int) -> tuple:
    """A chip -> host word as a tuple: ("error", ErrorReason, index), ("timeout",
    TimeoutReason, index), ("limit_reached", LimitKind, value), else (name, fields)."""
    msg, f = wire.decode(int(word), wire.Direction.TO_HOST)
    if msg.name == "error":
        return ("error", ErrorReason(f["reason"]), f["index"])
    if msg.name == "timeout":
        return ("timeout", TimeoutReason(f["reason"]), f["index"])
    if msg.name == "limit_reached":
        return ("limit_reached", LimitKind(f["kind"]), f["value"])
    return (msg.name, f)


def _codec_frame(words: np.ndarray, seq: int, flags: int) -> bytes:
    return frame.encode_frame(words, seq, flags)


class RawClient:
    """Frames programs, sends them, sorts the answers (module docstring).
    `send(bytes)`, `recv(timeout) -> bytes` (b"" when nothing came; raises
    ServerClosed) and `close()` come from the transport."""

    def __init__(self, send: Callable[[bytes], None], recv: Callable[[float], bytes], close: Callable[[], None],
                 *, seq: int = 0, keep: bool = True, max_notices: int | None = None, timeout: float = 5.0,
                 encode: Callable[[np.ndarray, int, int], bytes] | None = None):
        self._send, self._recv, self._close = send, recv, close
        self.timeout = timeout              # how long the until_* methods wait unless told
        self.seq = seq & 0xFFFFFFFF
        self.first = True                   # the next frame carries START
        self.keep = keep
        self.max_notices = max_notices
        self._encode = encode or _codec_frame
        self.decoder = frame.FrameDecoder(expect_to_host=True)
        self.backlog: list[int] = []        # words received, not yet handed out (keep=True)
        self.counts: dict[int, int] = {}    # header -> words received
        self.notices: list[tuple] = []      # notice() of every error / timeout / limit_reached word
        self.notices_seen = 0               # all of them, also beyond max_notices
        self.data: list[int] = []           # read_data values, in order
        self.echoes: list[int] = []         # tags of the halt echoes received
        self._echoes_used = 0               # of those, handed out by until_echo (keep=False)
        self.frames_in = 0
        self.bytes_in = 0
        self.counter_notices: list[tuple] = []

    # ------------------------------------------------------------------ transports
    @classmethod
    def tcp(cls, address, connect_timeout: float = 5.0, **kw) -> "RawClient":
        """A plain TCP socket (no link layer) to `address`; the socket is `client.sock`."""
        sock = socket.create_connection(tuple(address), timeout=connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def recv(wait: float) -> bytes:
            if not select.select([sock], [], [], max(0.0, wait))[0]:
                return b""
            try:
                data = sock.recv(1 << 20)
            except ConnectionError as exc:
                raise ServerClosed(f"the connection broke: {exc}") from exc
            if not data:
                raise ServerClosed("the server closed the connection")
            return data

        c = cls(sock.sendall, recv, sock.close, **kw)
        c.sock = sock
        return c

    @classmethod
    def pty(cls, path: str, **kw) -> "RawClient":
        """The pty (or any serial) path through pyserial, plain frames; the port is `client.port`."""
        import serial
        port = serial.serial_for_url(path, timeout=0.05)

        def recv(wait: float) -> bytes:
            port.timeout = max(0.0, wait)
            first = port.read(1)
            return first + port.read(port.in_waiting) if first else b""

        def send(data: bytes) -> None:
            port.write(data)
            port.flush()

        c = cls(send, recv, port.close, **kw)
        c.port = port
        return c

    @classmethod
    def url(cls, url: str, **kw) -> "RawClient":
        """Any host connection URL (host.transport.open_transport): on TCP and
        serial lines the reliable link layer unless `arq=0`, `fault+...` for a
        damaged link.  The transport is `client.transport`."""
        from host.errors import LinkError
        from host.transport import open_transport
        t = open_transport(url)

        def recv(wait: float) -> bytes:
            try:
                return t.read(max(0.0, wait))
            except LinkError as exc:
                raise ServerClosed(str(exc)) from exc

        c = cls(t.write, recv, t.close, **kw)
        c.transport = t
        return c

    # ------------------------------------------------------------------ sending
    def frame(self, words, end: bool = True, cont: bool = False, start: bool | None = None) -> bytes:
        """One program's frames (several when it exceeds MAX_FRAME_WORDS)."""
        words = np.asarray(words, dtype=np.uint64)
        chunks = [words[i:i + MAX_FRAME_WORDS] for i in range(0, len(words), MAX_FRAME_WORDS)] or [words]
        return b"".join(self.frames(chunks, end, start, cont))

    def frames(self, chunks, end: bool = True, start: bool | None = None, cont: bool = False) -> list[bytes]:
        """One frame per chunk of words, as one program: START (by default on
        the client's first frame) on the first only, CONT on every frame after
        the first (and on the first with `cont`: it continues an earlier
        call's program), END (if asked) on the last only; consecutive sequence numbers."""
        start = self.first if start is None else start
        out = []
        for i, chunk in enumerate(chunks):
            flags = ((FLAG_END if end and i == len(chunks) - 1 else 0)
                     | (FLAG_START if start and i == 0 else 0) | (FLAG_CONT if i or cont else 0))
            out.append(self._encode(np.asarray(chunk, dtype=np.uint64), self.seq, flags))
            self.seq = (self.seq + 1) & 0xFFFFFFFF
        self.first = False
        return out

    def send(self, data: bytes) -> None:
        self._send(data)

    # ------------------------------------------------------------------ receiving
    def feed(self, data: bytes) -> bool:
        """Sort received bytes; True when a halt echo was among them.  Broken
        frames from the server are a failure (it must never send one)."""
        if not data:
            return False
        self.bytes_in += len(data)
        frames, faults = self.decoder.feed(data)
        if faults:
            raise AssertionError(f"the server sent broken frames: {faults}")
        echo = False
        for fr in frames:
            if not fr.flags & FLAG_TO_HOST:
                raise AssertionError(f"a frame without TO_HOST from the server: flags {fr.flags:#x}")
            self.frames_in += 1
            words = fr.words
            h = (words >> np.uint64(56)).astype(np.int64)
            for k, n in zip(*np.unique(h, return_counts=True)):
                self.counts[int(k)] = self.counts.get(int(k), 0) + int(n)
            sel = (h == _H_ERROR) | (h == _H_TIMEOUT) | (h == _H_LIMIT)
            if sel.any():
                for w in words[sel]:
                    self.notices_seen += 1
                    if self.max_notices is None or len(self.notices) < self.max_notices:
                        self.notices.append(notice(int(w)))
            if (h == _H_READ).any():
                self.data += [int(x) for x in wire.field_bulk("read_data", "data", words[h == _H_READ])]
            if (h == _H_ECHO).any():
                self.echoes += [int(x) for x in wire.field_bulk("loopback_echo", "tag", words[h == _H_ECHO])]
                echo = True
            if self.keep:
                self.backlog.extend(int(w) for w in words)
        return echo

    def pump(self, timeout: float) -> bool:
        """Read what comes within `timeout`; True when a halt echo was among it."""
        return self.feed(self._recv(timeout))

    def poll(self) -> None:
        """Sort whatever has arrived, without waiting."""
        while True:
            data = self._recv(0.0)
            if not data:
                return
            self.feed(data)

    def until_echo(self, tag: int | None = None, timeout: float | None = None) -> list[int]:
        """Wait for the halt echo with `tag` (any echo when None); returns
        every word up to and including it (keep=True; else [])."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            if self.keep:
                k = self._echo_index(tag)
                if k is not None:
                    out, self.backlog = self.backlog[:k + 1], self.backlog[k + 1:]
                    return out
            else:
                rest = self.echoes[self._echoes_used:]
                if (tag is None and rest) or (tag is not None and tag in rest):
                    self._echoes_used += (rest.index(tag) if tag is not None else 0) + 1
                    return []
            left = deadline - time.monotonic()
            if left <= 0:
                shown = [wire.describe(w) for w in self.backlog[-20:]] if self.keep else self.notices[-10:]
                raise NoAnswer(f"no echo of tag {tag} within {timeout} s; last answers {shown}")
            self.pump(min(left, 0.1))

    def _echo_index(self, tag: int | None) -> int | None:
        for k, w in enumerate(self.backlog):
            if w >> 56 == _H_ECHO and (tag is None or wire.decode(w, wire.Direction.TO_HOST)[1]["tag"] == tag):
                return k
        return None

    def until(self, pred: Callable[[], object], timeout: float | None = None) -> None:
        """Read until `pred()` holds (NoAnswer after `timeout`)."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise NoAnswer(f"not within {timeout} s; notices {self.notices[:10]}")
            self.pump(min(left, 0.1))

    def until_notices(self, n: int, timeout: float) -> list[tuple]:
        """Wait for at least `n` error / timeout notices in the backlog; returns
        them and takes them out of it (the other words stay)."""
        def is_notice(w: int) -> bool:
            return w >> 56 in (_H_ERROR, _H_TIMEOUT)
        deadline = time.monotonic() + timeout
        while sum(1 for w in self.backlog if is_notice(w)) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.pump(min(left, 0.05))
        found = [notice(w) for w in self.backlog if is_notice(w)]
        self.backlog = [w for w in self.backlog if not is_notice(w)]
        return found

    def run(self, words, tag: int, start: bool | None = None,
            timeout: float | None = None) -> tuple[list[int], list[tuple]]:
        """Run a program ending in a halt loopback with `tag`; returns (read
        data, error / timeout notices before the echo).  Anything else in the
        answer (spikes, limit notices) is a failure: this is for register programs."""
        self.send(self.frame(list(words) + [wire.encode("loopback", halt=1, tag=tag)], start=start))
        got = [notice(w) for w in self.until_echo(tag, timeout)]
        data = [g[1]["data"] for g in got if g[0] == "read_data"]
        notes = [g for g in got if g[0] in ("error", "timeout")]
        others = [g for g in got if g[0] not in ("read_data", "error", "timeout", "loopback_echo")]
        if others:
            raise AssertionError(f"unexpected answers {others}")
        return data, notes

    def counters(self, tag: int = 0xC0, profile: str = "dls", strict: bool = True) -> dict[str, int]:
        """The chip's link counters (its `link` register block), read by a program
        of this client; notices that came with the answer (a NOTICES_DROPPED
        summary of what came before) are in `counter_notices` (with `strict`, a failure)."""
        from isa.regmap import register_map
        rm = register_map(profile)
        names = [r.name for r in rm.block("link").registers]
        data, self.counter_notices = self.run([wire.encode("omnibus_address", is_read=1, byte_enables=0xF,
                                                           address=rm.address("link", n)) for n in names], tag)
        if len(data) != len(names) or (strict and self.counter_notices):
            raise AssertionError(f"reading the link counters: {data} {self.counter_notices}")
        return dict(zip(names, data))

    def close(self) -> None:
        self._close()
