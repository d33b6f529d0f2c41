"""A busy PPU on a shared twin server: other clients are served while it runs,
nobody's wait is overtaken, and the server stops promptly (twin.session,
twin.server, `bss-twin serve`).

The busy firmware reads a register over the chip's register bus in a loop:
every access leaves the compiled loop for Python, so the twin runs it orders
of magnitude slower than real time and one `run_until_sleep` program of it
lasts for minutes: without the slicing, every other client would wait for it.
"""
from __future__ import annotations

import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import host
from isa.ppu.asm import assemble
from isa.ppu.iomap import REGISTER_BUS_BIT, STOP_INTERRUPT_LOOP
from isa.regmap import register_map
from isa.wire import FPGA_TICK_S
from twin.chip import Chip
from twin.server import TwinServer

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ROOT / "tests" / "data" / "ppu_hostile" / "illegal_vector.bin"
GUARD = 60.0           # hang guard (seconds): nothing here should come near it


def _bus_loop(profile: str) -> bytes:
    ea = REGISTER_BUS_BIT | register_map(profile).address("chip_id", "serial") << 2
    return assemble(f"""
        lis r4, {ea >> 16}
        ori r4, r4, {ea & 0xFFFF}
    1:  lwz r5, 0(r4)
        addi r6, r6, 1
        b 1b
    """).image()


GOOD = assemble("li r5, 42\nwait\n").image()


class _Busy(threading.Thread):
    """A client that runs the bus loop on `ppu` and waits for it to sleep (never)."""

    def __init__(self, url: str, profile: str, ppu: int = 0):
        super().__init__(daemon=True)
        self.url, self.profile, self.ppu = url, profile, ppu
        self.started = threading.Event()
        self.error: BaseException | None = None

    def run(self):
        try:
            with host.connect(self.url, timeout=3600) as conn:
                p = host.PPU(conn, self.ppu)
                p.load(_bus_loop(self.profile))
                p.start()
                self.started.set()
                p.run_until_sleep(10.0, poll_interval=1.0)      # hours of wall time
        except BaseException as exc:          # noqa: BLE001 - handed to the test
            self.error = exc
        finally:
            self.started.set()


def _wait_running(url: str, ppu: int, conn) -> None:
    """Until the busy client's core has run some cycles (its long program is on)."""
    p = host.PPU(conn, ppu)
    for _ in range(10_000):
        s = p.status()
        if s.running and s.cycles > 1000:
            return
    raise AssertionError(f"the busy core on {url} never ran")


def test_other_clients_are_served_while_a_ppu_is_busy():
    log: list[str] = []
    with TwinServer(Chip("hx", serial=5), log=log.append, shared=True) as srv:
        busy = _Busy(srv.url, "hx", ppu=0)
        busy.start()
        assert busy.started.wait(GUARD) and busy.error is None
        with host.connect(srv.url, timeout=GUARD) as conn:
            _wait_running(srv.url, 0, conn)
            p0 = host.PPU(conn, 0)
            before = p0.status().cycles
            # Register-only programs, and a timed one on the other PPU, finish
            # while the busy program goes on.
            p1 = host.PPU(conn, 1)
            p1.load(GOOD)
            p1.start()
            s = p1.run_until_sleep(1e-3)
            assert s.sleeping and p1.registers()[5] == 42
            assert p0.status().cycles > before                    # the busy core kept running meanwhile
            assert busy.is_alive() and busy.error is None         # inside its one long program
            # A wait of this client ends at exactly its target, though the busy
            # program waits for a much later one: the cycle counter of the
            # sleeping PPU 1 follows the chip's clock.
            prog = conn.program()
            prog.timer_reset()
            cycles = np.array([p1._addr("debug_cycles")], np.uint64)
            c0 = prog.read_words(cycles)
            prog.wait_until(1_250)                                # 10 us
            c1 = prog.read_words(cycles)
            conn.run(prog)
            cpt = p1.clock_hz * FPGA_TICK_S
            assert abs(int(c1.values[0]) - int(c0.values[0]) - 1_250 * cpt) <= 1
        assert busy.is_alive()
    # stop() gave the busy program up at a slice point; its client was disconnected.
    busy.join(GUARD)
    assert not busy.is_alive()
    assert isinstance(busy.error, host.LinkError), busy.error
    assert any(re.search(r"program cancelled at tick \d+ \(the server is stopping\)", line) for line in log), log


def test_both_waiting_programs_receive_the_output_of_their_wait():
    """Loopback (crossbar) echoes the input spikes of one client's program; a
    second client whose wait covers that time, while the chip is busy and
    changes hands, receives them too."""
    rm = register_map("dls")
    xbar = rm.register("routing", "crossbar")
    with TwinServer(Chip("dls", serial=6), shared=True) as srv:
        with host.connect(srv.url, timeout=GUARD) as a, host.connect(srv.url, timeout=GUARD) as b:
            pa = host.PPU(a)
            pa.load(_bus_loop("dls"))                        # busy: the chip changes hands in slices
            pa.start()
            cfg = a.program()
            cfg.write_words(np.array([rm.address("routing", "crossbar")], np.uint64),
                            np.array([xbar.encode(loopback=1)], np.int64))
            a.run(cfg)
            got = {}

            def wait_a():
                prog = a.program()
                prog.timer_reset()
                prog.wait_until(50_000)                          # 400 us: seconds of wall time here
                got["a"] = a.run(prog)

            t = threading.Thread(target=wait_a, daemon=True)
            t.start()
            _wait_running(srv.url, 0, b)                     # a's program is waiting now
            prog = b.program()
            prog.timer_reset()
            prog.spikes([7, 9], [10, 20])
            prog.wait_until(100)
            got["b"] = b.run(prog)
            t.join(GUARD)
            assert not t.is_alive()
    echo_b = got["b"].spikes["label"].tolist()
    echo_a = got["a"].spikes["label"].tolist()
    assert echo_b == [7, 9]
    assert echo_a == [7, 9]                                   # emitted during a's wait as well


def _spawn(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "serve", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    r, _, _ = select.select([proc.stdout], [], [], GUARD)
    line = proc.stdout.readline().strip() if r else ""
    if not line:
        proc.kill()
        raise AssertionError(f"server printed no address; stderr: {proc.stderr.read()}")
    return proc, line.split()[-1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_server_subprocess_stops_while_a_hostile_program_runs(sig):
    proc, url = _spawn("--chip", "dls", "--tcp", "0", "--shared")
    busy = None
    try:
        with host.connect(url, timeout=GUARD) as conn:
            ppu = host.PPU(conn)
            # The hostile image is recognised, and the twin serves a good program after it.
            ppu.load(HOSTILE.read_bytes())
            ppu.start()
            with pytest.raises(host.PPUFault) as e:
                ppu.run_until_sleep(1e-3)
            assert e.value.reason == STOP_INTERRUPT_LOOP and e.value.address == 0x1C
            ppu.load(GOOD)
            ppu.start()
            assert ppu.run_until_sleep(1e-3).sleeping and ppu.registers()[5] == 42
            # Now a program that runs for minutes, and the signal while it runs.
            busy = _Busy(url, "dls")
            busy.start()
            assert busy.started.wait(GUARD) and busy.error is None
            _wait_running(url, 0, conn)
        proc.send_signal(sig)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise AssertionError(f"the server did not stop within 10 s of {sig.name}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert re.search(r"program cancelled at tick \d+ \(the server is stopping\)", err), err
    busy.join(GUARD)
    assert isinstance(busy.error, host.LinkError), busy.error


def test_a_disconnected_clients_program_is_cancelled():
    """A client whose program keeps a PPU busy disconnects: the server gives
    the program up (logged with the reason) and serves the next client."""
    log: list[str] = []
    with TwinServer(Chip("dls", serial=7), log=log.append) as srv:
        conn = host.connect(srv.url, timeout=GUARD)
        p = host.PPU(conn)
        p.load(_bus_loop("dls"))
        p.start()
        prog = conn.program()
        prog.timer_reset()
        prog.wait_until((1 << 32) - 1)                   # 34 s of hardware time: hours of wall time
        runner = threading.Thread(target=lambda: _swallow(conn.run, prog), daemon=True)
        runner.start()
        time.sleep(1.0)                                  # the program is on the chip
        conn.close()                                     # the client goes away mid-program
        deadline = time.monotonic() + GUARD
        while not any("the client disconnected" in line for line in log) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(re.search(r"program cancelled at tick \d+ \(the client disconnected\)", line) for line in log), log
        with host.connect(srv.url, timeout=GUARD) as other:
            assert other.serial == 7


def _swallow(fn, *args):
    try:
        fn(*args)
    except Exception:        # the connection closed under it: expected
        pass
