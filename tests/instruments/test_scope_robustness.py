"""The virtual scope under bad clients: a disconnect in the middle of a
transfer, a second client, 10 MB of garbage, an unread response, over-long
lines, tokens; and a fuzz test of the command parser."""
from __future__ import annotations

import os
import socket
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from _scope_helpers import step_signal
from twin.chip import Chip
from twin.scope import MAX_LINE, V_SCALE, T_SCALE, MDEPTH, Scope, ScopeServer


def connect(server, timeout=5.0) -> socket.socket:
    s = socket.create_connection(server.address, timeout=timeout)
    return s


def ask(sock: socket.socket, line: bytes) -> bytes:
    sock.sendall(line + b"\n")
    out = b""
    while not out.endswith(b"\n"):
        chunk = sock.recv(1 << 16)
        assert chunk, "the scope closed the connection"
        out += chunk
    return out[:-1]


def drain(sock: socket.socket, quiet=0.5) -> bytes:
    sock.settimeout(quiet)
    out = b""
    try:
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    sock.settimeout(5.0)
    return out


def wait_for(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.01)


def big_record(server):
    """A completed record of 1.2 M points (ASCII: about 16 MB)."""
    scope = server.scope
    scope.execute(":ACQ:MDEP 1200000;:TIM:SCAL 1e-3;:CHAN1:SCAL 0.1;:CHAN1:OFFS -0.4;:TRIG:EDG:LEV 0.4;:SING;"
                  ":WAV:STAR 1;STOP 1200000")
    scope._feed(*step_signal(800_004, 0.2, 0.6, 1_700_004))
    assert scope.record is not None and len(scope.record.codes) == 1_200_000


def errors(sock) -> list[int]:
    out = []
    while True:
        code = int(ask(sock, b":SYST:ERR?").split(b",")[0])
        if code == 0:
            return out
        out.append(code)


def test_disconnect_in_the_middle_of_a_transfer(scope_server):
    big_record(scope_server)
    s = connect(scope_server)
    s.sendall(b":WAV:FORM ASC;:WAV:DATA?\n")
    s.recv(1000)                                    # the transfer has begun
    s.close()
    wait_for(lambda: scope_server.broken == 1)
    with connect(scope_server) as s2:
        assert ask(s2, b"*IDN?").startswith(b"bss-twin")
        s2.sendall(b":WAV:FORM BYTE;:WAV:DATA?\n")
        head = s2.recv(11)
        while len(head) < 11:
            head += s2.recv(11 - len(head))
        assert head.startswith(b"#71200000")
        body = head[9:]
        s2.settimeout(60.0)
        while len(body) < 1_200_001:                        # the points and the terminator
            chunk = s2.recv(1 << 20)
            assert chunk, "the scope closed the connection"
            body += chunk
        assert len(body) == 1_200_001 and body.endswith(b"\n")


def test_an_unread_response_is_interrupted_by_the_next_message(scope_server):
    big_record(scope_server)
    with connect(scope_server) as s:
        s.sendall(b":WAV:FORM ASC;:WAV:DATA?\n")
        time.sleep(2.0)                             # the response is being built and waits for a reader
        s.sendall(b"*IDN?\n")
        got = b""
        s.settimeout(60.0)
        while not (got.endswith(b"\n") and b"bss-twin" in got.rsplit(b"\n", 2)[-2]):
            chunk = s.recv(1 << 20)          # the part of the waveform already sent, then the answer
            assert chunk, "the scope closed the connection"
            got += chunk
        s.settimeout(5.0)
        assert len(got) < 15_000_000                # the rest of the waveform was dropped
        assert errors(s) == [-410]
    assert scope_server.interrupted == 1


def test_a_second_client_is_refused_while_one_is_connected(scope_server):
    with connect(scope_server) as first:
        assert ask(first, b"*IDN?").startswith(b"bss-twin")
        second = connect(scope_server)
        second.settimeout(5.0)
        try:
            assert second.recv(100) == b""         # closed at once
        except ConnectionResetError:
            pass
        second.close()
        assert scope_server.refused == 1
        assert ask(first, b"*OPC?") == b"1"         # the first is served on
    wait_for(lambda: scope_server._client is None)
    with connect(scope_server) as third:
        assert ask(third, b"*IDN?").startswith(b"bss-twin")


def test_ten_megabytes_of_garbage(scope_server):
    rng = np.random.default_rng(7)
    with connect(scope_server) as s:
        s.settimeout(30.0)
        garbage = rng.integers(0, 256, 10 << 20, dtype=np.uint8).tobytes()
        for i in range(0, len(garbage), 1 << 20):
            s.sendall(garbage[i:i + (1 << 20)])
        s.sendall(b"A" * (3 * MAX_LINE))            # one over-long line
        s.sendall(b"\n")
        drain(s, 1.0)                               # whatever the garbage asked (it may hold a '?')
        assert ask(s, b"*IDN?").startswith(b"bss-twin")
        got = errors(s)
        assert len(got) == 20 and got[-1] == -350 and -101 in got
    assert scope_server.dropped_lines >= 1
    # the twin serves its chip, and the scope still acquires from it
    import host
    from twin.server import TwinServer

    scope = scope_server.scope
    scope.execute("*RST;:TIM:SCAL 1e-6;:CHAN1:SCAL 0.5;:TRIG:EDG:LEV 2;:TRIG:SWE AUTO;:RUN")
    before = scope.records
    with TwinServer(scope.chip, shared=True) as twin:
        conn = host.connect(twin.url)
        prog = conn.program()
        prog.write(host.NeuronOnChip(0), host.NeuronConfig(enable=1, readout=1))
        prog.write(host.ChipOnly(), host.ReadoutMuxConfig(source=1, neuron=0))
        prog.timer_reset()
        prog.wait_until(20000)
        conn.run(prog)
        conn.close()
    assert scope.records > before
    with connect(scope_server) as s:
        assert ask(s, b":TRIG:STAT?") == b"AUTO"


def test_long_line_is_dropped_with_223(scope_server):
    with connect(scope_server) as s:
        s.sendall(b":CHAN1:SCAL " + b"1" * (2 * MAX_LINE) + b"\n")
        assert ask(s, b"*OPC?") == b"1"
        assert errors(s) == [-223]


def test_token_beyond_loopback():
    chip = Chip("dls", 1, mismatch=False)
    with pytest.raises(ValueError, match="beyond loopback"):
        ScopeServer(chip, host="0.0.0.0")
    server = ScopeServer(chip, token="a-long-enough-secret").start()
    try:
        with connect(server) as s:
            s.sendall(b"*IDN?\n")                   # refused: -203, no answer
            s.sendall(b':SYSTem:TOKen "a-long-enough-secret"\n')
            assert ask(s, b"*IDN?").startswith(b"bss-twin")
            assert errors(s) == [-203]
        wait_for(lambda: server._client is None)
        with connect(server) as s:
            s.sendall(b':SYST:TOK "wrong"\n')
            assert s.recv(100) == b""               # closed
        assert ScopeServer(chip, host="0.0.0.0", token="x" * 20) is not None
    finally:
        server.stop()


_FRAGMENTS = [":", ";", ",", "?", " ", "*", "\"", "'", "CHAN1", "CHANnel2", "SCAL", "OFFS", "DISP", "TRIG", "EDG",
              "LEV", "SLOP", "SWE", "STAT", "MODE", "WAV", "DATA", "PRE", "FORM", "STAR", "STOP", "XINC", "ACQ", "MDEP",
              "SRAT", "TIM", "MAIN", "SYST", "ERR", "NEXT", "*IDN", "*RST", "*CLS", "*ESR", "*OPC", "RUN", "SING",
              "0", "1", "0.25", "-3", "1e9", "1e-12", "ON", "OFF", "POS", "NEG", "RFAL", "AUTO", "NORM", "BYTE",
              "WORD", "ASC", "mV", "us", "kg", "\t", "\x7f", "\u00e9"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=6)), max_size=24))
def test_fuzz_the_command_parser(parts):
    scope = _FUZZ_SCOPE
    line = "".join(parts)
    out = scope.execute(line)
    assert out is None or isinstance(out, bytes)
    assert len(scope.errors.queue) <= scope.errors.size
    s = scope.s
    assert V_SCALE[0] <= s.v_scale <= V_SCALE[1] and T_SCALE[0] <= s.t_scale <= T_SCALE[1]
    assert MDEPTH[0] <= s.mdepth <= MDEPTH[1] and abs(s.t_offset) <= 6 * s.t_scale * (1 + 1e-12)
    assert scope.execute("*IDN?").startswith(b"bss-twin")


_FUZZ_SCOPE = Scope(Chip("dls", 2, mismatch=False))
