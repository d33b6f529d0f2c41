"""Reliable link layer under the frame layer (isa/frame.py), for byte streams
that lose, corrupt, duplicate or reorder bytes: TCP through a proxy, serial
lines, a pty.  Modelled on HostARQ (the BrainScaleS host <-> FPGA link):
sequence numbers, cumulative acknowledgements, a sliding window,
retransmission on timeout and on a detected gap, duplicate suppression on
both sides.  Sans-IO: `ArqEndpoint` turns received bytes into delivered bytes
and keeps what it must transmit in `outbox`; the transports (host/arq.py,
the twin server) move the bytes and call `poll` on a clock.

A packet::

    offset size  field
    0      2     marker 0xA5 0x96 (a frame starts 0xB5 0x5A)
    2      1     kind: HELLO 1, HELLO_ACK 2, DATA 3, ACK 4, NAK 5 (an ACK sent because damaged
                 bytes arrived: the sender goes back at once instead of waiting for its timer),
                 AUTH 6 (the first packet to a server that requires a token: payload the token;
                 with or without the layer), RESUME 7 / RESUME_ACK 8 / RESUME_REFUSED 9 (a link
                 goes on over a new connection, below), BYE 10 (the client is done: its session
                 is not kept for a resume)
    3      1     version (1)
    4      4     seq: DATA: stream offset of its first payload byte; HELLO/HELLO_ACK: 0
    8      4     ack: the next stream offset this side expects from the peer (cumulative)
    12     2     payload length in bytes (<= MAX_PAYLOAD)
    14     2     epoch: DATA: the sender's go-back count (mod 2**16); ACK/NAK: the epoch of
                 the last DATA packet received (a NAK about an earlier flight is stale)
    16     4     CRC-32 of bytes 0..15
    20     n     payload (HELLO / HELLO_ACK: session id, 8 bytes)
    20+n   4     CRC-32 of the payload

Integers big-endian; offsets count bytes modulo 2**32 per direction from 0.
Sequence numbers count bytes, as TCP's do, so that a retransmission can use
smaller packets than the lost one: the packet size adapts to the link (halved
on each loss, doubled after a run of clean acknowledgements), which keeps a
link at 1e-2 byte errors usable.  The receiver delivers in order only; a
packet beyond a gap is dropped and answered with the acknowledgement it
still waits for (the sender goes back to that offset after two such
duplicates or a timeout: go-back-N).

Negotiation: a client sends HELLO and waits for HELLO_ACK; a peer that does
not speak the layer never answers (its frame decoder discards the bytes: they
hold no frame marker), and the client falls back to plain frames.

Resume: a client whose connection broke opens a new one and sends RESUME
(payload its session id, `ack` the next offset it expects from the server).
A server that kept the session answers RESUME_ACK (payload the session id,
`ack` the next offset it expects from the client), and both sides send again
everything the other has not acknowledged (`ArqEndpoint.resume`): the byte
streams go on as if nothing happened, each byte delivered once.  Else it
answers RESUME_REFUSED (payload the session id and one byte, an
isa.wire.ErrorReason: RESUME_UNKNOWN, RESUME_EXPIRED, RESUME_LOST).
"""
from __future__ import annotations

import os
import struct
import time
import zlib
from dataclasses import dataclass

MARKER = b"\xa5\x96"
VERSION = 1
HELLO, HELLO_ACK, DATA, ACK, NAK, AUTH = 1, 2, 3, 4, 5, 6
RESUME, RESUME_ACK, RESUME_REFUSED, BYE = 7, 8, 9, 10
KINDS = {HELLO: "hello", HELLO_ACK: "hello_ack", DATA: "data", ACK: "ack", NAK: "nak", AUTH: "auth",
         RESUME: "resume", RESUME_ACK: "resume_ack", RESUME_REFUSED: "resume_refused", BYE: "bye"}
MAX_TOKEN = 256                    # bytes of a shared-secret token
HEAD = struct.Struct(">2sBBIIHH")
HEAD_SIZE = HEAD.size + 4          # 20: header and its CRC
TRAIL_SIZE = 4
MAX_PAYLOAD = 16384
MIN_PAYLOAD = 64
WINDOW = 1 << 18                   # bytes in flight at most
WINDOW_PACKETS = 32                # and at most this many packets of the present size
RTO_MIN, RTO_MAX = 0.05, 0.4       # retransmission timer (s): doubled on each expiry up to RTO_MAX
# (a point-to-point link to a board loses packets to damage, not to congestion: no long back-off)
MOD = 1 << 32


def encode_packet(kind: int, seq: int, ack: int, payload: bytes = b"", epoch: int = 0) -> bytes:
    head = HEAD.pack(MARKER, kind, VERSION, seq % MOD, ack % MOD, len(payload), epoch & 0xFFFF)
    return b"".join((head, struct.pack(">I", zlib.crc32(head)), payload, struct.pack(">I", zlib.crc32(payload))))


@dataclass(frozen=True)
class Packet:
    kind: int
    seq: int
    ack: int
    payload: bytes
    epoch: int = 0


@dataclass
class ArqStats:
    """Counters (bss-twin info shows them)."""
    packets_sent: int = 0
    packets_received: int = 0
    bytes_delivered: int = 0
    retransmissions: int = 0        # packets sent again (timeouts and go-backs)
    timeouts: int = 0               # retransmission timer expiries
    duplicates: int = 0             # packets received again (already delivered bytes)
    gaps: int = 0                   # packets received beyond a gap (dropped, re-requested)
    bad_packets: int = 0            # CRC or header faults
    bytes_discarded: int = 0        # bytes between packets and of bad ones
    resumes: int = 0                # the link went on over a new connection (RESUME)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _after(a: int, b: int) -> int:
    """a - b modulo 2**32 as a signed distance."""
    d = (a - b) % MOD
    return d - MOD if d >= MOD // 2 else d


class PacketParser:
    """Incremental parser: bytes in, good packets out; every other byte is
    counted (stats.bytes_discarded, stats.bad_packets)."""

    def __init__(self, stats: ArqStats):
        self.stats = stats
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Packet]:
        buf = self._buf
        buf += data
        out, pos = [], 0
        while True:
            start = buf.find(MARKER, pos)
            if start < 0:
                keep = 1 if len(buf) > pos and buf[-1] == MARKER[0] else 0
                self.stats.bytes_discarded += len(buf) - keep - pos
                pos = len(buf) - keep
                break
            self.stats.bytes_discarded += start - pos
            pos = start
            if len(buf) - pos < HEAD_SIZE:
                break
            _, kind, version, seq, ack, length, epoch = HEAD.unpack_from(buf, pos)
            (hcrc,) = struct.unpack_from(">I", buf, pos + HEAD.size)
            if zlib.crc32(bytes(buf[pos:pos + HEAD.size])) != hcrc or kind not in KINDS or version != VERSION \
                    or length > MAX_PAYLOAD:
                self.stats.bad_packets += 1
                self.stats.bytes_discarded += 1
                pos += 1
                continue
            total = HEAD_SIZE + length + TRAIL_SIZE
            if len(buf) - pos < total:
                break
            payload = bytes(buf[pos + HEAD_SIZE:pos + HEAD_SIZE + length])
            (pcrc,) = struct.unpack_from(">I", buf, pos + total - TRAIL_SIZE)
            if zlib.crc32(payload) != pcrc:
                self.stats.bad_packets += 1
                self.stats.bytes_discarded += 1
                pos += 1
                continue
            out.append(Packet(kind, seq, ack, payload, epoch))
            self.stats.packets_received += 1
            pos += total
        del buf[:pos]
        return out


class ArqEndpoint:
    """One side of an established link (after HELLO / HELLO_ACK).

    send(data)       queue bytes for the peer
    receive(raw)     parse received bytes; returns the bytes delivered in order
    poll(now)        (re)transmit what is due; the bytes land in `outbox`
    take_outbox()    the bytes to write to the stream now
    idle             nothing unacknowledged or unsent
    """

    def __init__(self, session: bytes, rto: float = RTO_MIN, rto_max: float = RTO_MAX, clock=time.monotonic):
        self.session = session
        self.stats = ArqStats()
        self.parser = PacketParser(self.stats)
        self.clock = clock
        self.rto_min, self.rto_max = rto, rto_max
        self.rto = rto
        # sending: sendbuf holds bytes from offset `base` (unacknowledged, then unsent)
        self.sendbuf = bytearray()
        self.base = 0
        self.sent = 0                    # bytes of sendbuf transmitted since the last go-back
        self.high = 0                    # bytes of sendbuf ever transmitted (beyond: first sendings)
        self.segment = 4096
        self.clean = 0                   # acknowledgements without a loss since the last change
        self.last_progress = clock()
        self.dup_acks = 0
        self.epoch = 0                   # go-backs so far (mod 2**16): DATA packets carry it
        self.peer_epoch = 0              # the epoch of the last DATA packet received: ACK/NAK echo it
        # receiving
        self.expected = 0
        self.ack_due = False
        self.peer_restarted: bytes | None = None
        self.peer_bye = False            # the peer said BYE: it will not resume
        self.outbox = bytearray()

    # ---------------------------------------------------------------- sending
    def send(self, data: bytes) -> None:
        if not self.sendbuf:
            self.last_progress = self.clock()
        self.sendbuf += data
        self._transmit()

    @property
    def idle(self) -> bool:
        return not self.sendbuf

    def _emit(self, kind: int, seq: int, payload: bytes = b"") -> None:
        epoch = self.epoch if kind == DATA else self.peer_epoch
        self.outbox += encode_packet(kind, seq, self.expected, payload, epoch)
        self.stats.packets_sent += 1
        self.ack_due = False

    def _transmit(self) -> None:
        window = min(WINDOW, WINDOW_PACKETS * self.segment)
        while self.sent < len(self.sendbuf) and self.sent < window:
            n = min(self.segment, len(self.sendbuf) - self.sent, window - self.sent)
            if self.sent < self.high:
                self.stats.retransmissions += 1
            self._emit(DATA, self.base + self.sent, bytes(self.sendbuf[self.sent:self.sent + n]))
            self.sent += n
            self.high = max(self.high, self.sent)

    def _go_back(self) -> None:
        """Send again from the oldest unacknowledged byte, in smaller packets."""
        if not self.sendbuf:
            return
        self.segment = max(MIN_PAYLOAD, self.segment // 2)
        self.clean = 0
        self.sent = 0
        self.epoch = (self.epoch + 1) & 0xFFFF
        self.dup_acks = 0
        self.last_progress = self.clock()
        self._transmit()

    def _acknowledged(self, ack: int, duplicate_possible: bool) -> None:
        """A cumulative acknowledgement.  A pure ACK that repeats the last one
        while bytes are in flight answers a packet beyond a gap (DATA packets
        repeat it whenever the peer has sent nothing new to acknowledge)."""
        done = _after(ack, self.base)
        if done <= 0 or done > len(self.sendbuf):
            if done == 0 and duplicate_possible and self.sendbuf and self.sent:
                self.dup_acks += 1
                if self.dup_acks >= 2:       # the peer saw packets beyond a gap
                    self._go_back()
            return
        del self.sendbuf[:done]
        self.base = (self.base + done) % MOD
        self.sent = max(0, self.sent - done)
        self.high = max(0, self.high - done)
        self.dup_acks = 0
        self.rto = self.rto_min
        self.last_progress = self.clock()
        self.clean += 1
        if self.clean >= 16 and self.segment < MAX_PAYLOAD:
            self.segment *= 2
            self.clean = 0

    # ---------------------------------------------------------------- receiving
    def receive(self, raw: bytes) -> bytes:
        out = bytearray()
        damage = self.stats.bad_packets + self.stats.bytes_discarded
        for pkt in self.parser.feed(raw):
            self.handle(pkt, out)
        self._transmit()
        if self.stats.bad_packets + self.stats.bytes_discarded > damage:
            self._emit(NAK, self.base + self.sent)
        elif self.ack_due:
            self._emit(ACK, self.base + self.sent)
        return bytes(out)

    def resume(self, peer_ack: int) -> None:
        """The link goes on over a new byte stream: the peer holds everything
        before `peer_ack`; what it does not hold is sent again (ValueError if
        `peer_ack` lies outside the bytes this side still keeps)."""
        done = _after(peer_ack, self.base)
        if not 0 <= done <= len(self.sendbuf):
            raise ValueError(f"resume: the peer expects offset {peer_ack % MOD}, this side keeps "
                             f"{self.base}..{(self.base + len(self.sendbuf)) % MOD}")
        del self.sendbuf[:done]
        self.base = (self.base + done) % MOD
        self.high = len(self.sendbuf)            # what goes out again counts as retransmitted
        self.sent = 0
        self.rto = self.rto_min
        self.dup_acks = 0
        self.epoch = (self.epoch + 1) & 0xFFFF
        self.last_progress = self.clock()
        self.stats.resumes += 1
        self.ack_due = True
        self._transmit()
        if self.ack_due:
            self._emit(ACK, self.base + self.sent)

    def handle(self, pkt: Packet, out: bytearray) -> None:
        if pkt.kind == BYE:
            self.peer_bye = pkt.payload == self.session
            return
        if pkt.kind == RESUME:
            if pkt.payload == self.session:      # the peer did not get our RESUME_ACK: answer again
                self.outbox += resume_ack(self.session, self.expected)
            return
        if pkt.kind in (RESUME_ACK, RESUME_REFUSED, AUTH):
            return
        if pkt.kind == HELLO:
            if pkt.payload == self.session:  # the peer did not get our HELLO_ACK: answer again
                self.outbox += hello_ack(self.session)
            elif len(pkt.payload) == 8:
                self.peer_restarted = pkt.payload      # the peer starts a new link (the owner decides)
            return
        if pkt.kind == HELLO_ACK:
            return
        self._acknowledged(pkt.ack, duplicate_possible=pkt.kind == ACK)
        if pkt.kind == NAK and self.sendbuf and self.sent and pkt.epoch == self.epoch:
            self._go_back()             # damage in the present flight (a NAK about an earlier one is stale)
        if pkt.kind != DATA:
            return
        self.ack_due = True
        self.peer_epoch = pkt.epoch
        lead = _after(self.expected, pkt.seq)        # bytes of this packet already delivered
        if lead < 0:
            self.stats.gaps += 1                     # beyond a gap: drop, ask again
            return
        if lead >= len(pkt.payload):
            if pkt.payload:
                self.stats.duplicates += 1
            return
        fresh = pkt.payload[lead:]
        out += fresh
        self.expected = (self.expected + len(fresh)) % MOD
        self.stats.bytes_delivered += len(fresh)

    # ---------------------------------------------------------------- timers
    def poll(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        if self.sendbuf and self.sent and now - self.last_progress >= self.rto:
            self.stats.timeouts += 1
            self.rto = min(self.rto * 2, self.rto_max)
            self._go_back()
        else:
            self._transmit()

    def next_deadline(self) -> float | None:
        """When poll has work next (None: only when bytes arrive or are sent)."""
        return self.last_progress + self.rto if self.sendbuf and self.sent else None

    def take_outbox(self) -> bytes:
        data = bytes(self.outbox)
        self.outbox.clear()
        return data


def new_session() -> bytes:
    return os.urandom(8)


def hello(session: bytes) -> bytes:
    return encode_packet(HELLO, 0, 0, session)


def hello_ack(session: bytes) -> bytes:
    return encode_packet(HELLO_ACK, 0, 0, session)


def resume(session: bytes, expected: int) -> bytes:
    """RESUME: go on with `session`; `expected` is the next offset this side expects."""
    return encode_packet(RESUME, 0, expected, session)


def resume_ack(session: bytes, expected: int) -> bytes:
    return encode_packet(RESUME_ACK, 0, expected, session)


def resume_refused(session: bytes, reason: int) -> bytes:
    """RESUME_REFUSED: payload the session id and the reason (an isa.wire.ErrorReason)."""
    return encode_packet(RESUME_REFUSED, 0, 0, session + bytes([int(reason)]))


def bye(session: bytes) -> bytes:
    return encode_packet(BYE, 0, 0, session)


def find_opening(parser: PacketParser, raw: bytes) -> tuple[Packet | None, list[Packet]]:
    """Feed raw bytes; the first HELLO or RESUME packet (8-byte session id) and the packets after it."""
    pkts = parser.feed(raw)
    for i, p in enumerate(pkts):
        if p.kind in (HELLO, RESUME) and len(p.payload) == 8:
            return p, pkts[i + 1:]
    return None, []


def find_hello(parser: PacketParser, raw: bytes, kind: int = HELLO) -> tuple[bytes | None, list[Packet]]:
    """Feed raw bytes; the session of the first packet of `kind` and the packets after it."""
    pkts = parser.feed(raw)
    for i, p in enumerate(pkts):
        if p.kind == kind and len(p.payload) == 8:
            return p.payload, pkts[i + 1:]
    return None, []


def auth(token: str) -> bytes:
    """The AUTH packet carrying a shared-secret token."""
    data = token.encode()
    if not 0 < len(data) <= MAX_TOKEN:
        raise ValueError(f"a token has 1..{MAX_TOKEN} bytes, not {len(data)}")
    return encode_packet(AUTH, 0, 0, data)
