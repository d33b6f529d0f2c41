"""Many clients of one TCP server (twin/server.py) through the host library:
each sees only its own chip, and a client killed in the middle of a program
takes nothing from the others (the figures: tools/bench/service.py).

Expected values come from how the programs are built (the values each client
writes), never from the server; times appear only as hang guards.
"""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import host
from tools.bench.service import VICTIM
from tools.rawclient import wait_for
from twin.chip import Chip
from twin.server import TwinServer

ROOT = Path(__file__).resolve().parents[2]
GUARD = 60.0


def _value(client: int, k: int) -> int:
    return (client << 24) | (k << 8) | 0x5A


@pytest.mark.parametrize("shared", [False, True], ids=["a chip per client", "shared"])
def test_concurrent_clients_get_their_own_answers_and_by_default_their_own_chip(shared):
    """4 clients x 20 programs at once, all on the same register: each program
    reads it, writes a value of its own, reads it back.  The read-back is the
    program's value on either server (programs run whole); the first read is
    the client's own previous value only on the default server."""
    n_clients, n_programs = 4, 20
    failures: list[str] = []
    foreign = [0]
    with TwinServer(Chip("dls", 21), log=lambda line: None, shared=shared) as srv:
        conns = [host.connect(srv.url, timeout=GUARD) for _ in range(n_clients)]
        addr = np.array(conns[0].regmap.addresses("synapse", "weights")[:1], np.uint64)
        go = threading.Barrier(n_clients)

        def client(i: int) -> None:
            conn, last = conns[i], 0
            try:
                go.wait(GUARD)
                for k in range(n_programs):
                    value = _value(i, k)
                    prog = conn.program()
                    before = prog.read_words(addr)
                    prog.write_words(addr, np.array([value], np.uint64))
                    after = prog.read_words(addr)
                    conn.run(prog)
                    if int(after.values[0]) != value:
                        failures.append(f"client {i} program {k}: read back {int(after.values[0]):#x}")
                    if int(before.values[0]) != last:
                        foreign[0] += 1
                    last = value
            except Exception as exc:               # reported below
                failures.append(f"client {i}: {exc!r}")

        threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(GUARD)
        assert not any(t.is_alive() for t in threads)
        assert not failures, failures
        if not shared:
            assert foreign[0] == 0                     # no client saw another's write
        for conn in conns:
            conn.close()
        assert wait_for(lambda: srv.clients == 0, GUARD)


def test_a_killed_client_is_cancelled_and_leaves_nothing_behind():
    """A client process writes a value, starts a PPU loop and a long wait, and is
    killed (SIGKILL) while the wait runs: the server logs the program cancelled,
    the next client is served and sees neither the value nor a running PPU, and a
    client connected before keeps its own state and is served on."""
    log: list[str] = []
    with TwinServer(Chip("dls", 22), log=log.append) as srv:
        observer = host.connect(srv.url, timeout=GUARD)
        addr = np.array(observer.regmap.addresses("synapse", "weights")[:1], np.uint64)
        prog = observer.program()
        prog.write_words(addr, np.array([0x1234], np.uint64))
        observer.run(prog)
        victim = subprocess.Popen([sys.executable, "-c", VICTIM, srv.url], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            assert victim.stdout.readline().strip() == "running", victim.stderr.read()
            assert not wait_for(lambda: any("program cancelled" in line for line in log), 0.5)   # it runs on
            victim.send_signal(signal.SIGKILL)
            victim.wait(GUARD)
        finally:
            if victim.poll() is None:
                victim.kill()
                victim.wait()
        assert wait_for(lambda: any(re.search(r"program cancelled at tick \d+ \(the client disconnected\)", line)
                                    for line in log), GUARD), log
        with host.connect(srv.url, timeout=GUARD) as fresh:
            prog = fresh.program()
            t = prog.read_words(addr)
            fresh.run(prog)
            assert int(t.values[0]) == 0                       # not the victim's 0xDEADBEEF
            assert not host.PPU(fresh).status().running        # its PPU is not the victim's
        prog = observer.program()
        t = prog.read_words(addr)
        observer.run(prog)
        assert int(t.values[0]) == 0x1234
        observer.close()
        assert wait_for(lambda: srv.clients == 0, GUARD)
