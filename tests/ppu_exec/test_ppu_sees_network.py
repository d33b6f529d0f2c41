"""The PPU runs interleaved with the analog core: firmware sees the network
change at the time it changes (within the 1 us interleave), not at the end of
the span the chip advanced in one call."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "analog"))
from _analog_helpers import Bench, lsb_for_tau, lsb_for_volts  # noqa: E402

from isa.ppu.asm import assemble  # noqa: E402

EVENT_TICK = 6250                  # 50 us: the input spike that makes neuron 0 fire


def firmware(counter_word_address: int) -> bytes:
    bus = 0x80000000 | (counter_word_address << 2)      # bit 31: the chip's register bus
    src = f"""
        lis 5, {bus >> 16:#x}
        ori 5, 5, {bus & 0xFFFF:#x}
    1:  lwz 4, 0(5)              # spike counter of neuron 0
        cmpwi 4, 0
        beq 1b
        mfspr 3, 284             # TBL: cycles since the core started
        stw 3, 0x2ffc(0)
        wait
    """
    return assemble(src).image()


def test_firmware_sees_a_spike_when_it_happens():
    b = Bench("dls", serial=1, mismatch=False)
    b.cells([0], v_leak=lsb_for_volts(b.p, 0.3), v_threshold=lsb_for_volts(b.p, 0.35),
            v_reset=lsb_for_volts(b.p, 0.25), i_bias_leak=lsb_for_tau(b.p, 10e-6),
            i_bias_syn_exc_tau=lsb_for_tau(b.p, 5e-6), i_bias_syn_exc_gm=100)
    b.neurons([0], enable=1)
    w = np.zeros((32, 32), int)
    w[0, 0] = 63
    b.synapses(w, np.zeros((32, 32), int))
    b.drivers([0], enable=1, gain=15)
    image = np.frombuffer(firmware(b.rm.address("neuron", "spike_counter", 0)), ">u4")
    b.write("ppu", "memory", np.arange(len(image)), image)
    b.write("ppu", "control", [0], b.field_words("ppu", "control", inhibit_reset=1))
    start = b.chip.now
    b.advance(start + 2 * EVENT_TICK, [start + EVENT_TICK], [0 << 6 | 0])   # one call: 100 us
    assert int(b.read("neuron", "spike_counter", [0])[0]) >= 1, "the neuron did not fire"
    ppu = b.chip.ppus[0]
    assert ppu.sleeping, "the firmware never saw the spike"
    cycles = int(ppu.mem[0x2FFC:0x3000].view(">u4")[0])
    seen_s = cycles / b.p.ppu_clock_hz
    event_s = EVENT_TICK * 8e-9
    # Not before the input event (a PPU run after the whole span would see the
    # count from its first instruction), and within the PSP's rise (< 10 us)
    # plus the 1 us interleave.
    assert event_s <= seen_s <= event_s + 11e-6, f"firmware saw the spike at {seen_s * 1e6:.2f} us"
