"""The PPU on the chip: register block and clock (twin.ppu.block), the host
library over the in-process link (host.PPU), `bss-twin ppu-run` and the
firmware runtime."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import host
from isa.ppu.asm import assemble, assemble_file
from twin.chip import Chip
from twin.ppu import interp as I
from twin.ppu.block import attach_ppus

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"


def _words(src: str) -> np.ndarray:
    img = assemble(src).image()
    img += b"\0" * (-len(img) % 4)
    return np.frombuffer(img, ">u4").astype(np.uint32)


class Regs:
    def __init__(self, chip, block):
        self.chip, self.block = chip, block
        self.base = chip.regmap.block(block).base

    def addr(self, reg, index=0):
        return self.base + self.chip.regmap.register(self.block, reg).offset + index

    def write(self, reg, values, index=0):
        values = np.atleast_1d(np.asarray(values, np.uint32))
        a = np.arange(len(values)) + self.addr(reg, index)
        res = self.chip.bus.write(a.astype(np.uint64), values, np.full(len(values), 15, np.uint8))
        assert not res.reason.any()

    def read(self, reg, index=0, count=1):
        a = (np.arange(count) + self.addr(reg, index)).astype(np.uint64)
        res = self.chip.bus.read(a)
        assert not res.reason.any()
        return res.values if count > 1 else int(res.values[0])


def test_attach_one_block_per_ppu():
    assert [b.name for b in attach_ppus(Chip("hx"))] == ["ppu_top", "ppu_bottom"]
    blocks = attach_ppus(Chip("dls"))
    assert [b.name for b in blocks] == ["ppu"] and blocks[0].slices == 1


def test_block_runs_at_the_profile_clock():
    chip = Chip("dls")
    ppu = attach_ppus(chip)[0]
    r = Regs(chip, "ppu")
    r.write("memory", _words("li r3, 0\n1: addi r3, r3, 1\n b 1b\n"))
    assert r.read("memory", 1) == 0x38630001
    r.write("control", 1)
    ppu.advance(0, 12_500)                  # 100 us at 98 MHz: 9800 cycles
    assert ppu.state[I.S_CYCLES] == 9800 and r.read("debug_cycles") == 9800
    assert abs(int(ppu.state[3]) - 4900) <= 1
    assert r.read("status") == 0
    r.write("control", 0)                   # stop: registers reset, memory kept
    assert r.read("debug_pc") == 0 and r.read("memory", 1) == 0x38630001
    chip_hx = Chip("hx")
    top = attach_ppus(chip_hx)[0]
    Regs(chip_hx, "ppu_top").write("memory", _words("1: b 1b\n"))
    Regs(chip_hx, "ppu_top").write("control", 1)
    top.advance(0, 125)
    assert top.state[I.S_CYCLES] == 250     # 1 us at 250 MHz


def test_memory_control_status_and_debug_registers():
    chip = Chip("dls")
    ppu = attach_ppus(chip)[0]
    r = Regs(chip, "ppu")
    pc_ea = 0x80000000 | 4 * r.addr("debug_pc")
    mem_ea = 0x80000000 | 4 * r.addr("memory", 0x41)
    r.write("memory", _words(f"""
        b start
        .org 0x40                # vectors 0x04..0x30 stay 0: not installed
    start:
        li r3, 7
        stw r3, 0x100(0)
        lis r4, {pc_ea >> 16}
        ori r4, r4, {pc_ea & 0xFFFF}
        lwz r5, 0(r4)            # the core reads its own pc over the register bus
        lis r6, {mem_ea >> 16}
        ori r6, r6, {mem_ea & 0xFFFF}
        stw r5, 0(r6)            # and writes its own memory over the bus
        wait
        li r7, 1
        .long 0
    """))
    r.write("control", 1)
    ppu.advance(0, 1000)
    assert r.read("status") == 1 and r.read("debug_stop") == 1
    assert r.read("memory", 0x40) == 7                          # the core's store, read by the host
    assert ppu.state[5] == 0x54                                 # pc after the lwz retired
    assert r.read("memory", 0x41) == 0x54
    assert list(r.read("debug_gpr", 0, 32)[3:6]) == [7, pc_ea, 0x54]
    r.write("control", 1)                                       # release the wait
    ppu.advance(1000, 2000)
    assert r.read("status") == 2 and r.read("debug_gpr", 7) == 1   # fault: illegal word
    assert (r.read("debug_stop"), r.read("debug_fault")) == (2, 0x68)
    r.write("control", 0)                                       # restart from 0
    r.write("control", 1)
    assert r.read("status") == 0 and r.read("debug_pc") == 0


def test_debug_halt_and_single_step():
    chip = Chip("dls")
    ppu = attach_ppus(chip)[0]
    r = Regs(chip, "ppu")
    r.write("memory", _words("li r3, 1\n li r4, 2\n add r5, r3, r4\n wait\n"))
    r.write("debug", 1)
    r.write("control", 1)
    ppu.advance(0, 10_000)
    assert r.read("debug_pc") == 0 and r.read("debug_stop") == 10
    seen = []
    for _ in range(4):
        seen.append((r.read("debug_pc"), r.read("debug_instruction")))
        r.write("debug", 3)
        assert r.read("debug") == 1                             # step reads back 0
    assert [pc for pc, _ in seen] == [0, 4, 8, 12]
    assert seen[3][1] == 0x7C00007C and r.read("debug_gpr", 5) == 3
    assert r.read("debug_stop") == 1


def test_vector_io_reaches_the_synapse_registers():
    chip = Chip("dls")
    ppu = attach_ppus(chip)[0]
    r = Regs(chip, "ppu")
    weights = chip.bus.view("synapse", "weights")
    weights[0, 5] = 0x04030201                                  # columns 20..23 of row 5
    resets = []
    ppu.apply_resets = lambda array, req: resets.append(req)
    ppu.correlation_source = lambda array: (np.full((32, 32), 9, np.uint8), np.zeros((32, 32), np.uint8))
    r.write("memory", _words("""
        li r2, 11                # row 5, half 1: columns 16..31
        fxvinx 1, 0, r2
        fxvaddbm 1, 1, 1
        fxvoutx 1, 0, r2
        lis r3, 0
        ori r3, r3, 0x8000
        fxvinx 2, r3, r2         # causal readings
        fxvoutx 2, r3, r2        # reset them
        wait
    """))
    r.write("control", 1)
    ppu.advance(0, 1000)
    assert r.read("status") == 1
    syn = chip.regmap.block("synapse").base + chip.regmap.register("synapse", "weights").offset
    assert int(chip.bus.read(np.array([syn + 5 * 8 + 5], np.uint64)).values[0]) == 0x08060402
    nb = 16
    assert ppu.vec[2 * nb:3 * nb].tolist() == [9] * 16
    assert len(resets) == 1 and resets[0][5, 16:].tolist() == [1] * 16 and resets[0].sum() == 16


# ------------------------------------------------------------------------------ host library
SUM_SRC = """
    li r3, 0
    li r4, 100
    mtctr r4
1:  add r3, r3, r4
    addi r4, r4, -1
    bdnz 1b
    stw r3, 0x2FFC(0)
    li r5, 0x3000
    stw r3, 0(r5)
    wait
"""


def test_host_ppu_load_run_and_results(ppu_chips):
    with host.connect("twin:dls") as conn:
        ppu = host.PPU(conn)
        prog = assemble(SUM_SRC)
        ppu.load(prog.to_elf())
        assert ppu.read_memory(0, 4) == prog.image()[:4]
        ppu.start()
        s = ppu.run_until_sleep(timeout_hw_seconds=1e-3, poll_interval=10e-6)
        assert s.sleeping and not s.fault and s.reason_text == "sleeping"
        assert ppu.return_code() == 5050
        assert ppu.mailbox(4) == (5050).to_bytes(4, "big")
        assert s.wait_cycles == 3 + 3 * 100 + 4
        assert ppu.registers()[3] == 5050


@pytest.mark.parametrize("src, reason, address", [
    ("li r3, 1\n .long 0\n", "program interrupt", 4),
    ("li r3, 0x1001\n lwz r4, 0(r3)\n", "alignment interrupt", 0x1001),
    ("lis r3, 1\n lwz r4, 0(r3)\n", "machine check", 0x10000),
])
def test_host_faults_name_the_address(ppu_chips, src, reason, address):
    with host.connect("twin:dls") as conn:
        ppu = host.PPU(conn)
        ppu.load(assemble(src).image())
        ppu.start()
        with pytest.raises(host.PPUFault, match=rf"^PPU 0 stopped: {reason}.* at address 0x{address:08x} "):
            ppu.run_until_sleep(1e-3, 10e-6)


def test_host_timeout_and_trace(ppu_chips):
    with host.connect("twin:dls") as conn:
        ppu = host.PPU(conn)
        ppu.load(assemble("li r3, 1\n li r4, 2\n1: b 1b\n").image())
        ppu.start()
        with pytest.raises(host.PPUTimeout, match=r"did not sleep within 5e-05 s"):
            ppu.run_until_sleep(50e-6, 10e-6)
        ppu.load(assemble("li r3, 1\n addi r3, r3, 2\n wait\n").image())
        ppu.halt()
        ppu.start()
        steps = ppu.step(10)
        assert [(s.pc, s.text().split()[2]) for s in steps] == [(0, "li"), (4, "addi"), (8, "wait")]
        assert ppu.registers()[3] == 3 and ppu.status().sleeping


# ------------------------------------------------------------------------------ CLI + firmware
def _cli(argv, capsys):
    from tools.cli import main
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_firmware_example_through_ppu_run(ppu_chips, tmp_path, capsys):
    prog = assemble_file([str(FIRMWARE / "crt0.s"), str(FIRMWARE / "examples" / "vector_sum.s")])
    image = tmp_path / "vector_sum.bin"
    image.write_bytes(prog.image())
    elf = tmp_path / "vector_sum.elf"
    elf.write_bytes(prog.to_elf())
    dump = tmp_path / "mem.bin"
    rc, out, err = _cli(["ppu-run", str(image), "--regs", "--dump-mem", str(dump)], capsys)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[1] == "return code 1720"
    assert lines[0].startswith("cycles ") and int(lines[0].split()[1]) > 16 * 3
    assert lines[2 + 3] == f"r3=0x{1720:08x}" and len(lines) == 2 + 32
    mem = dump.read_bytes()
    assert len(mem) == 16 * 1024
    assert mem[0x3000:0x3010] == bytes(range(100, 116))
    assert mem[0x2FFC:0x3000] == (1720).to_bytes(4, "big")
    rc, out2, err = _cli(["ppu-run", str(elf)], capsys)
    assert rc == 0 and out2.splitlines() == lines[:2]


def test_ppu_run_cycle_limit_and_fault(ppu_chips, tmp_path, capsys):
    loop = tmp_path / "loop.bin"
    loop.write_bytes(assemble("li r3, 5\n1: b 1b\n").image())
    rc, out, err = _cli(["ppu-run", str(loop), "--max-cycles", "20000"], capsys)
    assert rc == 1 and out == ""
    assert "did not sleep within the cycle limit (20000 cycles; stopped at pc=0x00000004" in err
    bad = tmp_path / "bad.bin"
    bad.write_bytes(assemble("li r3, 5\n li r4, 0x1002\n stw r3, 0(r4)\n").image())
    rc, out, err = _cli(["ppu-run", str(bad), "--regs"], capsys)
    assert rc == 1
    assert err.strip() == ("bss-twin ppu-run: error: PPU 0 stopped: alignment interrupt (misaligned access) "
                           "at address 0x00001002 (no interrupt vector installed)")
    assert "r4=0x00001002" in out.splitlines()


def test_ppu_run_trace(ppu_chips, tmp_path, capsys):
    img = tmp_path / "t.bin"
    img.write_bytes(assemble("li r3, 1\n addi r3, r3, 2\n wait\n").image())
    rc, out, err = _cli(["ppu-run", str(img), "--trace", "--chip", "hx"], capsys)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["00000000:", "38600001", "li"]
    assert lines[2].split()[2] == "wait" and lines[3] == "cycles 3"


def test_sleeping_core_keeps_time_in_many_short_steps():
    """A sleeping core costs no interpreter call per step; time and DEC still run."""
    import time
    chip = Chip("dls")
    ppu = attach_ppus(chip)[0]
    r = Regs(chip, "ppu")
    r.write("memory", _words("li r4, 1000\n mtdec r4\n wait\n"))
    r.write("control", 1)
    ppu.advance(0, 12)
    assert r.read("status") == 1
    t0 = time.perf_counter()
    for k in range(1, 10_001):              # 10 000 analog steps of 96 ns
        ppu.advance(12 * k, 12 * (k + 1))
    assert time.perf_counter() - t0 < 1.0
    want = int(12 * 10_001 * 98e6 * 8e-9)
    assert abs(int(ppu.state[I.S_CYCLES]) - want) <= 1
    # DEC expired (TSR.DIS); TCR.DIE clear: no request, still asleep (nux RTL timer_unit.sv)
    assert ppu.state[I.S_DEC] == 0 and ppu.state[I.S_TSR] & I.TSR_DIS and r.read("status") == 1
