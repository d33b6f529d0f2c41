"""Every PPU state is bounded: interrupt entry costs cycles, so a handler that
faults again uses up the budget; a compiled call returns to Python after
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
from isa.ppu.iomap import INTERRUPT_ENTRY_CYCLES
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


def test_ppu_run_stops_the_hostile_image_at_the_cycle_limit(capsys):
    rc = cli_main(["ppu-run", str(HOSTILE), "--max-cycles", "5"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "error: the core did not sleep within the cycle limit (5 cycles; stopped at pc=0x0000001c" in err


def test_host_run_until_sleep_times_out_on_the_hostile_image():
    with host.connect("twin:hx") as conn:
        ppu = host.PPU(conn, 1)
        ppu.load(HOSTILE.read_bytes())
        ppu.start()
        with pytest.raises(host.PPUTimeout, match=r"^PPU 1 did not sleep within 0.0001 s of hardware time"):
            ppu.run_until_sleep(1e-4)
        s = ppu.status()
        assert s.running and not s.sleeping and s.pc == 0x1C
        assert s.cycles >= 1e-4 * ppu.clock_hz                 # hardware time passed: the core was clocked


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
