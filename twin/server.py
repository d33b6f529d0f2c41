"""A twin chip served over TCP or a pseudo-terminal.

Both servers wrap `twin.session.Session`, so every transport carries the same
frames and behaves the same:

* `TwinServer` (TCP) shares one chip among all clients.  Each client gets a
  thread and a Session of its own; programs of different clients take turns
  on the chip (twin.session.ChipHost: one at a time, except that a program
  waiting in a long timed segment lets the others in every SLICE_SECONDS),
  and each client only ever sees the answers to its own programs.  A client
  that disconnects in the middle of a frame or of a program is counted in the
  chip's `link` block and the server keeps serving.
* `PtyServer` behaves like a board on a USB-serial line: one pseudo-terminal,
  one Session, clients may open and close the slave path as often as they like.

Receive timeout: when a client has sent part of a frame, or the first frames of
a program without its END frame, and then stays quiet for `receive_timeout`
seconds, the session declares the partial data lost and answers with a
`timeout` notification (plus `error FRAME_TRUNCATED` for a partial frame).

Every fault and notice is logged to `log` (stderr by default) as one line that
names the client.  Bad input never stops a server.

Stopping (`stop()`, SIGINT/SIGTERM of `bss-twin serve`): a program still
running is given up at its next slice point (ProgramCancelled; the chip's loop
returns there every few ms while a PPU computes), its client is told nothing
more and disconnected; the log names it.

    with TwinServer(chip=Chip("dls", serial=3)) as srv:
        print(srv.url)            # tcp://127.0.0.1:PORT
"""
from __future__ import annotations

import abc
import collections
import errno
import hmac
import ipaddress
import fcntl
import os
import select
import socket
import struct
import sys
import termios
import threading
import time
import tty
from typing import Callable, TextIO

import numpy as np

from isa import arq, frame, wire
from isa.wire import ErrorReason, TimeoutReason

from .arq_link import ServerLink
from .chip import Chip
from .limits import Limits
from .session import ChipHost, ProgramCancelled, Session
from .stream import fd_sink, tcp_sink

__all__ = ["TwinServer", "PtyServer", "DEFAULT_RECEIVE_TIMEOUT", "parse_tcp_address"]

#: Seconds of silence after which a partial frame or unfinished program is dropped.
DEFAULT_RECEIVE_TIMEOUT = 0.5
#: Clients a TCP server serves at once (one thread each); more are refused with SERVER_FULL.
DEFAULT_MAX_CLIENTS = 32
#: Seconds a refused client's socket stays half open (the refusal read before the close).
REFUSED_LINGER = 2.0
#: Seconds a client of a server with a token has to send it.
AUTH_SECONDS = 5.0


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host) if host not in ("::1",) else host).is_loopback
    except (OSError, ValueError):
        return False
#: At most this many notices are logged one per line for one batch of answers.
LOG_NOTICES_PER_BATCH = 5
#: The pty server stops reading input while this many answer bytes wait for a reader.
PTY_OUTPUT_HIGH_WATER = 1 << 20

_RECV_SIZE = 1 << 16
_H_ERROR = wire.H["error"]
_H_TIMEOUT = wire.H["timeout"]
_H_LIMIT = wire.H["limit_reached"]


def parse_tcp_address(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """`[HOST:]PORT` -> (host, port); IPv6 hosts in brackets (`[::1]:0`)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host = default_host
    host = host.strip("[]") or default_host
    try:
        p = int(port)
    except ValueError:
        raise ValueError(f"TCP address {text!r}: port {port!r} is not a number ([HOST:]PORT)") from None
    if not 0 <= p < 65536:
        raise ValueError(f"TCP address {text!r}: port {p} outside 0..65535")
    return host, p


def _make_host(chip: Chip | ChipHost | None, profile: str, serial: int, seed: int) -> ChipHost:
    if isinstance(chip, ChipHost):
        return chip
    if chip is None:
        chip = Chip(profile, serial, seed)
    return ChipHost(chip)


class _Logger:
    """One line per fault or notice, naming the client."""

    def __init__(self, log: TextIO | Callable[[str], None] | None):
        if log is None:
            log = sys.stderr
        self._write = log if callable(log) else (lambda line, s=log: (s.write(line + "\n"), s.flush()))
        self._lock = threading.Lock()

    def __call__(self, who: str, text: str) -> None:
        with self._lock:
            try:
                self._write(f"bss-twin: {who}: {text}")
            except Exception:  # a closed log stream never takes the server down
                pass


class _Monitor:
    """Watches the answers sent to one client and logs their error and timeout
    notifications (the session decides them; this only reports)."""

    def __init__(self, who: str, log: _Logger):
        self.who = who
        self.log = log
        self._decoder = frame.FrameDecoder(expect_to_host=True)

    def __call__(self, out: bytes) -> None:
        if not out:
            return
        try:
            self._log_notices(out)
        except Exception as exc:  # reporting never takes the server down
            self.log(self.who, f"could not inspect an answer: {_one_line(exc)}")

    def _log_notices(self, out: bytes) -> None:
        frames, _ = self._decoder.feed(out)
        notices = []
        for fr in frames:
            h = wire.headers_bulk(fr.words)
            sel = np.flatnonzero((h == _H_ERROR) | (h == _H_TIMEOUT) | (h == _H_LIMIT))
            notices.extend(int(w) for w in fr.words[sel])
        for word in notices[:LOG_NOTICES_PER_BATCH]:
            self.log(self.who, _describe_notice(word))
        if len(notices) > LOG_NOTICES_PER_BATCH:
            self.log(self.who, f"... and {len(notices) - LOG_NOTICES_PER_BATCH} more notices in this answer")


def _describe_notice(word: int) -> str:
    msg, f = wire.decode(word)
    if msg.name == "limit_reached":
        try:
            return f"program limit reached: {wire.LimitKind(f['kind']).describe(f['value'])}"
        except ValueError:
            return f"program limit {f['kind']} reached: {f['value']}"
    if msg.name == "error":
        try:
            r = ErrorReason(f["reason"])
            reason = f"{r.name} ({r.text})"
        except ValueError:
            reason = f"reason {f['reason']}"
        return f"error {reason}, index {f['index']:#x}, header {f['header']:#04x}"
    try:
        reason = TimeoutReason(f["reason"]).name
    except ValueError:
        reason = f"reason {f['reason']}"
    return f"timeout {reason}, index {f['index']:#x}"


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".replace("\n", " | ")


class _ServerBase(abc.ABC):
    """start()/stop()/serve_forever() and the context-manager protocol."""

    def __init__(self, host: ChipHost, receive_timeout: float, log, limits: Limits | None = None):
        if receive_timeout <= 0:
            raise ValueError(f"receive_timeout must be positive, not {receive_timeout}")
        self.chip_host = host
        #: What each program may use (twin.limits); the chip host's unless given.
        self.limits = host.limits if limits is None else limits
        self.receive_timeout = float(receive_timeout)
        self.log = _Logger(log)
        self._started = False
        self._stopped = threading.Event()
        self._wake_r, self._wake_w = os.pipe()

    @property
    def chip(self) -> Chip:
        return self.chip_host.chip

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve until stop() is called (from another thread or a signal handler)."""
        if not self._started:
            self.start()
        try:
            while not self._stopped.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    @abc.abstractmethod
    def start(self): ...

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving (idempotent): wake the server threads, then let the
        subclass release what it holds."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._started:
            self._wake_all()
            self._shut_down(timeout)
        self._close_wake()

    @abc.abstractmethod
    def _shut_down(self, timeout: float) -> None:
        """Join the server's threads and close its endpoints."""

    def _wake_all(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _close_wake(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    # Sessions are safe to call from several client threads: programs are
    # serialised by the ChipHost lock, the shared link counters by its stats lock.
    def _session(self, own_chip: bool = False) -> Session:
        """A session whose programs are given up when the server stops; with
        `own_chip`, on a fresh instance of the server's chip (same fixed
        pattern) that only this session sees."""
        session = Session(ChipHost(self.chip_host.chip.fresh()) if own_chip else self.chip_host, limits=self.limits,
                          buffer=self.chip_host)           # unfinished programs: one account for all clients
        session.cancel_check = lambda: "the server is stopping" if self._stopped.is_set() else None
        return session

    def _receive(self, session: Session, data: bytes) -> bytes:
        return session.receive(data)

    def _timeout(self, session: Session) -> bytes:
        return session.receive_timeout()

    def _close_session(self, session: Session) -> None:
        session.close()


class _Hangup:
    """Asked while the client's program runs: "the client disconnected" once its
    socket shows end of file or an error (looked at most every 0.1 s, without
    consuming its bytes), so that a dead client's program is given up at its
    next safe point instead of running on for nobody."""

    def __init__(self, conn: socket.socket, every: float = 0.1):
        self.conn, self.every, self.next = conn, every, 0.0
        self.reason: str | None = None          # once gone, always gone

    def __call__(self) -> str | None:
        now = time.monotonic()
        if self.reason is not None or now < self.next:
            return self.reason
        self.next = now + self.every
        try:
            if hasattr(socket, "TCP_INFO"):       # Linux: the connection's state, whatever is buffered
                state = self.conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
                gone = state in _TCP_PEER_GONE
            else:
                ready, _, _ = select.select([self.conn], [], [], 0)
                gone = bool(ready) and not self.conn.recv(1, socket.MSG_PEEK)   # end of file, once read up to it
        except (OSError, ValueError):
            gone = True
        if gone:
            self.reason = "the client disconnected"
        return self.reason


#: TCP states (linux/tcp_states.h) in which the client has closed or reset the connection.
_TCP_PEER_GONE = {7, 8, 9}                      # TCP_CLOSE, TCP_CLOSE_WAIT, TCP_LAST_ACK


# ============================================================================ TCP
class TwinServer(_ServerBase):
    """A twin chip on a TCP port.

    `chip` may be a Chip or a ChipHost to share; otherwise one is made from
    `profile`, `serial` and `seed`.  By default (`shared=False`) every client
    gets its own instance of that chip (`Chip.fresh`: the same fixed pattern,
    at reset when it connects): no client sees another's registers, events,
    timer or PPUs.  `shared=True` (the default when a ChipHost is given) lets
    all clients use the one chip, taking turns (twin.session).  Port 0 picks a
    free port (see `address`)."""

    def __init__(self, chip: Chip | ChipHost | None = None, *, profile: str = "dls", serial: int = 0,
                 seed: int = 0, host: str = "127.0.0.1", port: int = 0,
                 receive_timeout: float = DEFAULT_RECEIVE_TIMEOUT, log=None, max_clients: int = DEFAULT_MAX_CLIENTS,
                 shared: bool | None = None, token: str | None = None, limits: Limits | None = None):
        super().__init__(_make_host(chip, profile, serial, seed), receive_timeout, log, limits)
        #: Whether clients share one chip (taking turns; they see each other's state) or each
        #: has its own instance of it (default; a ChipHost given to share means shared).
        self.shared = isinstance(chip, ChipHost) if shared is None else bool(shared)
        #: A shared secret every client must send first (an AUTH packet), or None.
        self.token = token
        if token is not None:
            arq.auth(token)                                   # checks its length
        elif not _loopback(host):
            raise ValueError(f"a server bound to {host} (beyond loopback) needs a token: any process that "
                             "reaches it could reset the chip; give token=... (bss-twin serve --token-file)")
        if max_clients < 1:
            raise ValueError(f"max_clients must be at least 1, not {max_clients}")
        self.max_clients = int(max_clients)
        self._refused: collections.deque = collections.deque()    # (close after, socket) of refused clients
        self._bind = (host, port)
        self._sock: socket.socket | None = None
        self._address: tuple[str, int] | None = None
        self._accept_thread: threading.Thread | None = None
        self._clients: dict[threading.Thread, socket.socket] = {}
        self._clients_lock = threading.Lock()

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the server listens on."""
        if self._address is None:
            raise RuntimeError("server not started")
        return self._address

    @property
    def url(self) -> str:
        host, port = self.address
        return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"

    @property
    def clients(self) -> int:
        """Clients connected right now."""
        with self._clients_lock:
            return len(self._clients)

    def start(self) -> "TwinServer":
        if self._started:
            return self
        host, port = self._bind
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        self._sock = socket.create_server((host, port), family=family, backlog=16)
        self._address = tuple(self._sock.getsockname()[:2])
        self._started = True
        self._accept_thread = threading.Thread(target=self._accept_loop, name="bss-twin-accept", daemon=True)
        self._accept_thread.start()
        return self

    def _shut_down(self, timeout: float) -> None:
        """Stop accepting, disconnect every client, wait for their threads."""
        if self._accept_thread is not None:
            self._accept_thread.join(timeout)
        self._close_refused(all_of_them=True)
        with self._clients_lock:
            clients = list(self._clients.items())
        for _, conn in clients:      # also unblocks a thread stuck sending to a client that stopped reading
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t, _ in clients:
            t.join(timeout)
        try:
            self._sock.close()
        except OSError:
            pass

    # ------------------------------------------------------------------ threads
    def _accept_loop(self) -> None:
        lsock = self._sock
        while not self._stopped.is_set():
            self._close_refused()
            try:
                ready, _, _ = select.select([lsock, self._wake_r], [], [], REFUSED_LINGER if self._refused else None)
            except (OSError, ValueError):
                break
            if not ready:
                continue
            if self._wake_r in ready or self._stopped.is_set():
                break
            try:
                conn, addr = lsock.accept()
            except OSError as exc:  # e.g. the peer reset before accept; keep serving
                if exc.errno not in (errno.ECONNABORTED, errno.EAGAIN, errno.EINTR):
                    self.log("tcp", f"accept failed: {_one_line(exc)}")
                    self._stopped.wait(0.1)      # e.g. out of file descriptors: do not spin
                continue
            who = f"tcp [{addr[0]}]:{addr[1]}" if ":" in addr[0] else f"tcp {addr[0]}:{addr[1]}"
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.clients >= self.max_clients:
                self._refuse(conn, who, f"{self.max_clients} clients connected (--max-clients)")
                continue
            t = threading.Thread(target=self._client_loop, args=(conn, who), name=f"bss-twin {who}",
                                 daemon=True)
            with self._clients_lock:
                self._clients[t] = conn
            try:
                t.start()
            except RuntimeError as exc:          # no thread to be had: refuse, keep accepting
                with self._clients_lock:
                    self._clients.pop(t, None)
                self._refuse(conn, who, f"cannot start a thread for it ({exc})")

    def _refuse(self, conn: socket.socket, who: str, why: str, reason: ErrorReason = ErrorReason.SERVER_FULL) -> None:
        """Tell a client it is not served (an `error SERVER_FULL` or `AUTH_REFUSED` frame) and close."""
        self.log(who, f"refused: {why}")
        notice = wire.encode("error", reason=reason, header=0, index=0xFFFFFFFF)
        try:
            conn.settimeout(1.0)
            conn.sendall(frame.encode_frame(np.array([notice], np.uint64), 0,
                                            frame.FLAG_TO_HOST | frame.FLAG_END | frame.FLAG_START))
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            conn.close()
            return
        # Closed only later: what the client still sends (its HELLO) then finds an open
        # socket instead of a reset, which could discard the refusal before it is read.
        self._refused.append((time.monotonic() + REFUSED_LINGER, conn))

    def _close_refused(self, all_of_them: bool = False) -> None:
        now = time.monotonic()
        while self._refused and (all_of_them or self._refused[0][0] <= now):
            self._refused.popleft()[1].close()

    def _authenticate(self, conn: socket.socket, who: str) -> bytes | None:
        """With a token: the client's first packet must be AUTH with it (within
        AUTH_SECONDS); returns the bytes after it, or None after refusing."""
        parser = arq.PacketParser(arq.ArqStats())
        deadline = time.monotonic() + AUTH_SECONDS
        buf = bytearray()
        while time.monotonic() < deadline:
            ready, _, _ = select.select([conn, self._wake_r], [], [], max(0.0, deadline - time.monotonic()))
            if self._wake_r in ready:
                return None
            if not ready:
                break
            try:
                data = conn.recv(_RECV_SIZE)
            except OSError:
                data = b""
            if not data:
                break
            buf += data
            start = buf.find(arq.MARKER)
            pkts = parser.feed(bytes(buf[start:])) if start >= 0 else []
            if pkts:
                first = pkts[0]
                if first.kind == arq.AUTH and hmac.compare_digest(first.payload, self.token.encode()):
                    end = start + arq.HEAD_SIZE + len(first.payload) + arq.TRAIL_SIZE
                    return bytes(buf[end:])
                break
            buf = buf[start:] if start >= 0 else bytearray()
            if len(buf) > arq.HEAD_SIZE + arq.MAX_TOKEN + arq.TRAIL_SIZE:
                break
        self._refuse(conn, who, "no valid token", ErrorReason.AUTH_REFUSED)
        return None

    def _client_loop(self, conn: socket.socket, who: str) -> None:
        first = b""
        if self.token is not None:
            first = self._authenticate(conn, who)
            if first is None:
                with self._clients_lock:
                    self._clients.pop(threading.current_thread(), None)
                return
        session = self._session(own_chip=not self.shared)
        stopping = session.cancel_check
        gone = _Hangup(conn)
        session.cancel_check = lambda: stopping() or gone()
        monitor = _Monitor(who, self.log)
        link = ServerLink()          # plain frames until the client opens the reliable link layer
        session.sink = tcp_sink(conn, link, monitor, session.cancel_check)   # a program's answers stream
        self.log(who, "connected" + (" (token accepted)" if self.token is not None else ""))
        quiet_since: float | None = None     # bytes arrived; the receive-timeout check is due after them
        reason = "disconnected"
        try:
            while True:
                data = b""
                now = time.monotonic()
                quiet = link.quiet_timeout(self.receive_timeout)
                due = [t for t in (None if quiet_since is None else quiet_since + quiet, link.deadline())
                       if t is not None]
                ready, _, _ = select.select([conn, self._wake_r], [], [],
                                            0.0 if first else max(0.0, min(due) - now) if due else None)
                if self._wake_r in ready:
                    reason = "server stopping"
                    break
                if first:                # what came after the token
                    data, first = first, b""
                    ready = [conn]
                if ready:
                    if not data:
                        try:
                            data = conn.recv(_RECV_SIZE)
                        except ConnectionError:
                            data = b""
                        if not data:
                            break
                    quiet_since = time.monotonic()
                    call = lambda: link.incoming(data, lambda b: self._receive(session, b))
                elif quiet_since is not None and time.monotonic() >= quiet_since + quiet:
                    quiet_since = None   # quiet for receive_timeout seconds
                    call = lambda: link.outgoing(self._timeout(session))
                else:                    # a retransmission of the link layer is due
                    call = lambda: link.outgoing(b"")
                try:
                    answer, out = call()
                    if session.decoder.pending and quiet_since is None:
                        quiet_since = time.monotonic()   # what the flush rescanned is partial again: re-arm
                except ProgramCancelled as exc:
                    reason = f"program cancelled at tick {session.host.chip.now} ({exc})"
                    break
                except Exception as exc:  # a twin bug must not take the server down
                    self.log(who, f"internal error, dropping the client: {_one_line(exc)}")
                    reason = "dropped after an internal error"
                    break
                if session.sink.broken:     # it took no answers (or its line broke) while they streamed
                    reason = f"{session.sink.broken}; {session.sink.dropped} answer bytes dropped"
                    break
                if answer:
                    monitor(answer)
                if out:
                    conn.sendall(out)
        except (ConnectionError, OSError) as exc:
            reason = f"connection lost ({_one_line(exc)})"
        finally:
            pending = session.decoder.pending
            try:
                self._close_session(session)
            except Exception as exc:
                self.log(who, f"internal error while closing: {_one_line(exc)}")
            note = f", {pending} bytes of an unfinished frame dropped" if pending else ""
            self.log(who, reason + note)
            try:
                conn.close()
            except OSError:
                pass
            with self._clients_lock:
                self._clients.pop(threading.current_thread(), None)


# ============================================================================ PTY
class PtyServer(_ServerBase):
    """A twin chip behind a pseudo-terminal, like a board on a USB-serial line.

    The slave side is put in raw mode and kept open by the server, so clients
    can open and close `address` (the slave path) repeatedly.  A new client's
    first frame carries the START flag, so sequence numbers restart cleanly.
    When a client flushes its input (pyserial does on open), answers not yet
    handed to the terminal are discarded, so a new client never reads the
    answers of a previous one, and the reliable link layer is off until the
    client says HELLO (a client with plain frames may follow one with the layer)."""

    def __init__(self, chip: Chip | ChipHost | None = None, *, profile: str = "dls", serial: int = 0,
                 seed: int = 0, receive_timeout: float = DEFAULT_RECEIVE_TIMEOUT, log=None,
                 limits: Limits | None = None):
        super().__init__(_make_host(chip, profile, serial, seed), receive_timeout, log, limits)
        self._master: int | None = None
        self._slave: int | None = None
        self._path: str | None = None
        self._packet_mode = False
        self._thread: threading.Thread | None = None
        self.session: Session | None = None

    @property
    def address(self) -> str:
        """Path of the pseudo-terminal's slave side (e.g. /dev/pts/4)."""
        if self._path is None:
            raise RuntimeError("server not started")
        return self._path

    @property
    def url(self) -> str:
        return self.address

    def start(self) -> "PtyServer":
        if self._started:
            return self
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self._path = os.ttyname(self._slave)
        try:  # packet mode reports the client's flushes (Linux, BSD)
            fcntl.ioctl(self._master, termios.TIOCPKT, struct.pack("i", 1))
            self._packet_mode = True
        except (AttributeError, OSError):
            self._packet_mode = False
        os.set_blocking(self._master, False)
        self.session = self._session()
        self._started = True
        self._thread = threading.Thread(target=self._loop, name=f"bss-twin pty {self._path}", daemon=True)
        self._thread.start()
        return self

    def _shut_down(self, timeout: float) -> None:
        """The pseudo-terminal disappears."""
        if self._thread is not None:
            self._thread.join(timeout)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def _loop(self) -> None:
        who = f"pty {self._path}"
        monitor = _Monitor(who, self.log)
        link = ServerLink()              # plain frames until a client opens the reliable link layer
        out = bytearray()
        self._sink = fd_sink(self._master, link, lambda: self._read_master(who), out, PTY_OUTPUT_HIGH_WATER,
                             monitor, lambda: self.session.cancel_check())   # a program's answers stream
        deadline: float | None = None    # receive-timeout check due (bytes arrived before it)
        master = self._master
        while True:
            rlist = [self._wake_r]
            if len(out) < PTY_OUTPUT_HIGH_WATER:
                rlist.append(master)
            wlist = [master] if out else []
            due = [t for t in (deadline, link.deadline()) if t is not None]
            timeout = max(0.0, min(due) - time.monotonic()) if due else None
            try:
                ready, writable, _ = select.select(rlist, wlist, [], timeout)
            except (OSError, ValueError) as exc:
                self.log(who, f"select failed, stopping: {_one_line(exc)}")
                break
            if self._wake_r in ready:
                break
            # Input first: a flush notice must drop stale answers before any more go out.
            if master in ready:
                data = self._read_master(who)
                if data is None:          # the client flushed its input
                    if out:
                        self.log(who, f"client flushed its input: {len(out)} unsent answer bytes dropped")
                        out.clear()
                    link.reset()          # a new client (pyserial flushes on open): it may speak plain frames
                elif data:
                    deadline = time.monotonic() + self.receive_timeout
                    answer, wire_bytes = link.incoming(data, lambda b: self._feed(who, b))
                    monitor(answer)
                    out += wire_bytes
            if writable and out:
                try:
                    del out[:os.write(master, out)]
                except BlockingIOError:
                    pass
                except OSError as exc:
                    self.log(who, f"write failed, {len(out)} answer bytes dropped: {_one_line(exc)}")
                    out.clear()
            if deadline is not None and time.monotonic() >= deadline:   # quiet for receive_timeout
                deadline = None
                try:
                    answer = self._timeout(self.session)
                except Exception as exc:
                    self.log(who, f"internal error in receive timeout, session reset: {_one_line(exc)}")
                    self._renew_session()
                    answer = b""
                answer, wire_bytes = link.outgoing(answer)
                monitor(answer)
                out += wire_bytes
                if self.session.decoder.pending:       # what the flush rescanned is partial again: re-arm
                    deadline = time.monotonic() + self.receive_timeout
            elif link.reliable and not out:
                out += link.poll()           # retransmissions due (none queued behind unsent bytes)
        try:
            self._close_session(self.session)
        except Exception as exc:
            self.log(who, f"internal error while closing: {_one_line(exc)}")

    def _read_master(self, who: str) -> bytes | None:
        """Bytes the client wrote; None when it flushed its input; b"" for nothing."""
        try:
            data = os.read(self._master, _RECV_SIZE)
        except BlockingIOError:
            return b""
        except OSError as exc:  # EIO: no slave open (cannot happen while the server holds it)
            if exc.errno != errno.EIO:
                self.log(who, f"read failed: {_one_line(exc)}")
            return b""
        if not self._packet_mode or not data:
            return data
        control, data = data[0], data[1:]
        if control == termios.TIOCPKT_DATA:
            return data
        if control & termios.TIOCPKT_FLUSHREAD:
            return None
        return b""

    def _feed(self, who: str, data: bytes) -> bytes:
        self.session.sink = self._sink
        try:
            answer = self._receive(self.session, data)
            if self._sink.broken:      # the reader took no answers (or flushed) while they streamed
                self.log(who, f"{self._sink.broken}; {self._sink.dropped + len(answer)} answer bytes dropped")
                self._sink.reset()
                return b""
            return answer
        except ProgramCancelled as exc:
            self.log(who, f"program cancelled at tick {self.chip.now} ({exc})")
            self._renew_session()
            return b""
        except Exception as exc:
            self.log(who, f"internal error, session reset: {_one_line(exc)}")
            self._renew_session()
            return b""

    def _renew_session(self) -> None:
        """A fresh session; the old one gives back what it held (its unfinished program)."""
        try:
            self.session.close()
        except Exception:
            pass
        self.session = self._session()
