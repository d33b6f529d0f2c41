"""Every PPU state is bounded: interrupt entry costs cycles, so a handler that
faults again uses up the budget, and such a core is reported as stuck in
interrupt entry (with the vector); a compiled call returns to Python after
YIELD_INSNS instructions, so signals and other threads are served.

tests/data/ppu_hostile/illegal_vector.bin: word 0 (the reset address) and the
program-interrupt vector 0x1C both hold 0xFFFFFFFF, so the core takes the
program interrupt at 0x1C forever."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import host
from isa.ppu.asm import assemble
from isa.ppu.core import VECTORS
from isa.ppu.iomap import INTERRUPT_ENTRY_CYCLES, STOP_INTERRUPT_LOOP
from tools.cli import main as cli_main
from twin.ppu import interp as I
from twin.ppu import reference as R

HOSTILE = Path(__file__).resolve().parents[1] / "data" / "ppu_hostile" / "illegal_vector.bin"


def test_the_hostile_image_is_what_it_says():
    words = np.frombuffer(HOSTILE.read_bytes(), ">u4")
    assert words[0] == 0xFFFFFFFF and words[0x1C // 4] == 0xFFFFFFFF


@pytest.mark.parametrize("impl", [I, R], ids=["numba", "reference"])
def test_interrupt_loop_uses_up_the_cycle_budget(impl):
    mem = np.zeros(4096, np.uint8)
    mem[:32] = np.frombuffer(HOSTILE.read_bytes(), np.uint8)
    st = I.new_state()
    assert impl.run(mem, st, 1000) == I.Status.MAX_CYCLES
    assert 1000 <= st[I.S_CYCLES] < 1000 + INTERRUPT_ENTRY_CYCLES
    assert st[I.S_PC] == 0x1C and st[I.S_INSNS] == 0       # nothing ever retired
    assert st[I.S_ENTRY_LOOP] == VECTORS["program"]


def _words(n_words: int, at: dict[int, int]) -> np.ndarray:
    mem = np.zeros(4 * n_words, np.uint8)
    for addr, word in at.items():
        mem[addr:addr + 4] = np.frombuffer(word.to_bytes(4, "big"), np.uint8)
    return mem


def _word(src: str) -> int:
    return int.from_bytes(assemble(src).image()[:4], "big")


@pytest.mark.parametrize("impl", [I, R], ids=["numba", "reference"])
def test_a_cycle_through_two_vectors_is_stuck_too(impl):
    """0x18 (alignment) holds an illegal word, 0x1C (program) a misaligned load:
    program -> alignment -> program ...; found at the second entry of 0x1C."""
    mem = _words(1024, {0: 0xFFFFFFFF, VECTORS["alignment"]: 0xFFFFFFFF,
                        VECTORS["program"]: _word("lwz r4, 0(r1)")})
    st = I.new_state()
    st[1] = 2                                               # r1: a misaligned address
    assert impl.run(mem, st, 100) == I.Status.MAX_CYCLES
    assert st[I.S_INSNS] == 0 and st[I.S_ENTRY_LOOP] == VECTORS["program"]
    st2 = I.new_state()
    st2[1] = 2
    impl.run(mem.copy(), st2, 2 * INTERRUPT_ENTRY_CYCLES)     # entries 0x1C, 0x18: none twice yet
    assert st2[I.S_PC] == VECTORS["alignment"] and st2[I.S_ENTRY_LOOP] == 0
    impl.run(mem.copy(), st2, 3 * INTERRUPT_ENTRY_CYCLES)     # then 0x1C again
    assert st2[I.S_PC] == VECTORS["program"] and st2[I.S_ENTRY_LOOP] == VECTORS["program"]


@pytest.mark.parametrize("impl", [I, R], ids=["numba", "reference"])
def test_a_handler_loop_that_retires_is_not_stuck(impl):
    """An `rfi` at 0x18 returns to the misaligned load at 0x1C: a loop, but an
    instruction retires in it; and a second machine check stops the core."""
    mem = _words(1024, {0: 0xFFFFFFFF, VECTORS["alignment"]: _word("rfi"),
                        VECTORS["program"]: _word("lwz r4, 0(r1)")})
    st = I.new_state()
    st[1] = 2
    assert impl.run(mem, st, 1000) == I.Status.MAX_CYCLES
    assert st[I.S_INSNS] > 0 and st[I.S_ENTRY_LOOP] == 0
    # Machine check at its own vector: ME is cleared by the first, the second is a checkstop.
    mem = _words(1024, {0: _word("lwz r4, 0(r1)"), VECTORS["machine_check"]: _word("lwz r4, 0(r1)")})
    st = I.new_state()
    st[1], st[I.S_MSR] = 0x10000, I.MSR_ME
    assert impl.run(mem, st, 1000) == I.Status.BUS_ERROR
    assert st[I.S_ENTRY_LOOP] == 0 and st[I.S_FAULT] == 0x10000


def test_ppu_run_names_the_stuck_interrupt_entry(capsys):
    rc = cli_main(["ppu-run", str(HOSTILE), "--max-cycles", "5"])
    err = capsys.readouterr().err
    assert rc == 1
    assert ("error: PPU 0 is stuck in interrupt entry at 0x0000001c: the program interrupt's handler faults "
            "there (word 0xffffffff) before any instruction retires") in err


def test_host_run_until_sleep_reports_the_stuck_core():
    with host.connect("twin:hx") as conn:
        ppu = host.PPU(conn, 1)
        ppu.load(HOSTILE.read_bytes())
        ppu.start()
        with pytest.raises(host.PPUFault, match=r"^PPU 1 is stuck in interrupt entry at 0x0000001c") as e:
            ppu.run_until_sleep(1e-4)
        assert (e.value.reason, e.value.address, e.value.word) == (STOP_INTERRUPT_LOOP, 0x1C, 0xFFFFFFFF)
        s = ppu.status()
        assert s.running and not s.sleeping and not s.fault and s.pc == 0x1C
        assert s.reason == STOP_INTERRUPT_LOOP and s.fault_address == 0x1C
        assert s.cycles > 0                                     # the core is clocked: entries take time
        # Fixing the vector while it runs ends the loop: the next entry executes `wait`.
        ppu.write_memory(0x1C, assemble("wait").image()[:4])
        s = ppu.run_until_sleep(1e-4)
        assert s.sleeping and s.reason != STOP_INTERRUPT_LOOP


def test_run_until_sleep_waits_longer_than_the_timer_range():
    """Each poll is one program of at most 2**32 - 1 ticks (the timer's range)."""
    with host.connect("twin:dls") as conn:
        ppu = host.PPU(conn)
        ppu.load(assemble("1: b 1b").image())
        ppu.start()
        with pytest.raises(host.PPUTimeout, match=r"did not sleep within 70 s of hardware time"):
            ppu.run_until_sleep(70.0, poll_interval=30.0)
        assert ppu.status().cycles >= 70.0 * ppu.clock_hz - 1


def test_a_compiled_call_yields_to_python():
    """The loop returns (internally) after YIELD_INSNS instructions; `run` goes on."""
    mem = np.zeros(4096, np.uint8)
    mem[:4] = np.frombuffer(assemble("1: b 1b\n").image()[:4], np.uint8)
    st = I.new_state()
    dec = I.predecode_memory(mem)
    io = I.VectorIO.empty()
    vec = I.new_vector_state(1)
    status = I._run_at(I.run_loop_address(), dec, mem, st, np.int64(1 << 40), vec, io.weights, io.labels,
                       io.causal, io.acausal, io.resets, io.touched, np.int64(io.space), False, np.int64(0),
                       False, np.int64(0))
    assert status == I.ST_YIELD and st[I.S_INSNS] == I.YIELD_INSNS
    st2 = I.new_state()
    assert I.run(mem, st2, 3 * I.YIELD_INSNS, hot_threshold=0) == I.Status.MAX_CYCLES
    assert st2[I.S_CYCLES] == 3 * I.YIELD_INSNS


def _bus_loop() -> bytes:
    """Firmware that reads a chip register in a loop: every access goes to Python."""
    from isa.ppu.iomap import REGISTER_BUS_BIT
    from isa.regmap import register_map
    ea = REGISTER_BUS_BIT | register_map("dls").address("chip_id", "serial") << 2
    return assemble(f"lis r4, {ea >> 16}\nori r4, r4, {ea & 0xFFFF}\n1: lwz r5, 0(r4)\nb 1b\n").image()


@pytest.mark.parametrize("handler", ["default", "library"])
@pytest.mark.parametrize("image", ["hostile", "bus_loop", "spin"])
def test_ctrl_c_interrupts_a_run_of_the_in_process_twin(image, handler, request):
    """SIGINT while the chip runs firmware that never sleeps (for hours of wall
    time at these limits): KeyboardInterrupt soon after, and the twin serves
    the connection afterwards.  A second SIGINT 20 s later is the hang guard.
    `library`: a SIGINT handler of a library in front of the default one (as
    importing brian2 installs): the interrupt is still taken where the chip is
    consistent, and reaches that handler."""
    import os
    import signal
    import threading
    import time
    seen = []
    if handler == "library":
        def library_handler(signum, frame):
            seen.append(signum)
            signal.default_int_handler(signum, frame)
        previous = signal.signal(signal.SIGINT, library_handler)
        request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    data = {"hostile": HOSTILE.read_bytes(), "bus_loop": _bus_loop(), "spin": assemble("1: b 1b").image()}[image]
    sent = []
    kill = lambda: (sent.append(time.monotonic()), os.kill(os.getpid(), signal.SIGINT))
    with host.connect("twin:dls") as conn:
        ppu = host.PPU(conn)
        ppu.load(data)
        ppu.start()
        warm = conn.program()                     # the loops compile (uninterruptibly) on first use: before
        warm.timer_reset()                        # the timers, so that the bound measures the interruption
        warm.wait_until(1000)
        conn.run(warm)
        timers = [threading.Timer(1.0, kill), threading.Timer(20.0, kill)]
        for t in timers:
            t.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                if image == "hostile":            # stuck in interrupt entry: run_until_sleep would raise
                    while True:                   # at once, so poll the running core with long waits
                        prog = conn.program()
                        prog.timer_reset()
                        prog.wait_until((1 << 32) - 1)
                        conn.run(prog)
                else:
                    ppu.run_until_sleep(1e4, poll_interval=30.0)
            caught = time.monotonic()
        finally:
            for t in timers:
                t.cancel()
                t.join()
        assert len(sent) == 1 and caught - sent[0] < 10.0
        assert seen == ([signal.SIGINT] if handler == "library" else [])
        s = ppu.status()
        assert s.running and not s.sleeping and s.cycles > 0
        ppu.load(assemble("li r5, 7\nwait\n").image())
        ppu.start()
        assert ppu.run_until_sleep(1e-3).sleeping and ppu.registers()[5] == 7


def test_ppu_run_stops_on_sigint():
    """`bss-twin ppu-run` of firmware that never sleeps ends with status 130 on SIGINT."""
    import signal
    import subprocess
    import sys
    import tempfile
    import time
    root = Path(__file__).resolve().parents[2]
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(_bus_loop())
        f.flush()
        proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "ppu-run", f.name, "--max-cycles", str(10**12)],
                                cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(3.0)                       # started, and inside the run (it lasts for days)
            assert proc.poll() is None, proc.communicate()
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 130, err


def test_ctrl_c_is_deferred_also_in_front_of_a_library_handler():
    """Importing brian2 (pyNN.brian2, the comparison backend) installs its own SIGINT
    handler: Ctrl-C while the chip's clock moves must still wait for a consistent
    point (it used to be taken wherever Python was, which could leave a PPU unclocked),
    and then reach that handler."""
    import os
    import signal
    from twin.session import _DeferredSigint
    seen = []

    def library_handler(signum, frame):
        seen.append(signum)
        signal.default_int_handler(signum, frame)

    previous = signal.signal(signal.SIGINT, library_handler)
    held = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with _DeferredSigint() as d:
                os.kill(os.getpid(), signal.SIGINT)
                held.append((d.pending, list(seen)))         # reached only while the interrupt is held
        assert held == [(True, [])]
        assert seen == [signal.SIGINT]                       # then the library's handler ran
        assert signal.getsignal(signal.SIGINT) is library_handler
    finally:
        signal.signal(signal.SIGINT, previous)
