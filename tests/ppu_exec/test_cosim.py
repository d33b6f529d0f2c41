"""The compiled co-simulation (twin.cosim): firmware sees the network at its
cycle, within one analog step, while spikes arrive; vector I/O acts at its
time; register-bus reads see the network at the cycle they execute.

Oracles: a second chip with the same serial and input, advanced from Python
to the tick at which the firmware acted, read over the register bus (ideal
chips, mismatch off: the column ADC adds no noise, so readings are exact)."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "analog"))
from _analog_helpers import Bench, lsb_for_tau, lsb_for_volts, pair_bench  # noqa: E402

from isa.ppu.asm import assemble  # noqa: E402
from twin.ppu import interp as I  # noqa: E402

STEP = 12                                       # dls analog step, FPGA ticks
PRE, TEACH = (0 << 6) | 5, (1 << 6) | 0         # row 0 label 5: measured synapse; row 1: forces a spike
SETTLE = STEP * 1000


def bench() -> Bench:
    """Neuron 0 spikes on a TEACH event; synapse (row 0, column 0) pairs PRE with it;
    cells settled (SETTLE), so later spans run as one chunk."""
    return pair_bench(serial=9)


T_PRE, T_TEACH = SETTLE + 100 * STEP, SETTLE + 104 * STEP


def post_spike_tick() -> int:
    b = bench()
    act = b.advance(SETTLE + 300 * STEP, [T_PRE, T_TEACH], [PRE, TEACH])
    t_post = act.spike_times[act.spike_labels == 0x3FF]
    assert len(t_post) == 1
    return int(t_post[0])


def start_firmware(b: Bench, src: str) -> None:
    image = np.frombuffer(assemble(src).image(), ">u4")
    b.write("ppu", "memory", np.arange(len(image)), image)
    b.write("ppu", "control", [0], b.field_words("ppu", "control", inhibit_reset=1))


def causal_code(b: Bench) -> int:
    """Column-ADC reading of synapse (0, 0)'s causal sensor over the register bus."""
    return int(b.read("correlation", "causal", [0])[0]) & 0xFF


def test_fxvinx_reads_the_sensors_of_its_cycle():
    t_post = post_spike_tick()
    b = bench()
    cpt = b.p.ppu_clock_hz * 8e-9
    t_start = b.chip.now
    # Two reads: 1.5 analog steps before the postsynaptic spike, and half a step after.
    targets = [int((t - t_start) * cpt) for t in (t_post - 1.5 * STEP, t_post + 0.5 * STEP)]
    start_firmware(b, f"""
        lis 3, 0
        ori 3, 3, 0x8000         # causal space, row 0 half 0
        li 4, 0
        li 7, 0x1000             # log: vector, then the cycle of the read
        lis 20, {targets[0] >> 16}
        ori 20, 20, {targets[0] & 0xFFFF}
        lis 21, {targets[1] >> 16}
        ori 21, 21, {targets[1] & 0xFFFF}
    1:  mfspr 5, 284
        cmplw 5, 20
        blt 1b
        mfspr 6, 284
        fxvinx 1, 3, 4           # executes at cycle r6 + 1
        stw 6, 0x1010(0)
        fxvstax 1, 0, 7
    2:  mfspr 5, 284
        cmplw 5, 21
        blt 2b
        mfspr 6, 284
        fxvinx 1, 3, 4
        stw 6, 0x1030(0)
        li 7, 0x1020
        fxvstax 1, 0, 7
        wait
    """)
    b.advance(SETTLE + 300 * STEP, [T_PRE, T_TEACH], [PRE, TEACH])     # one call for the whole span
    ppu = b.chip.ppus[0]
    assert ppu.sleeping, "the firmware did not finish"
    mem = ppu.mem
    seen = [int(mem[0x1000]), int(mem[0x1020])]
    read_ticks = [t_start + (int(mem[a:a + 4].view(">u4")[0]) + 1) / cpt for a in (0x1010, 0x1030)]
    # The oracle: the same chip advanced from Python to each read's tick, read over the bus.
    o = bench()
    want = []
    events = [(T_PRE, PRE), (T_TEACH, TEACH)]
    for t in read_ticks:
        until = int(np.floor(t))
        now = [(ti, lab) for ti, lab in events if ti <= until]
        events = [e for e in events if e[0] > until]
        o.advance(until, [e[0] for e in now], [e[1] for e in now])
        want.append(causal_code(o))
    assert seen == want
    assert want[1] < want[0], "no causal trace after the spike: the test would not tell the times apart"


def test_fxvoutx_reset_acts_at_its_time():
    """A correlation reset written by the firmware right after the spike clears the
    trace from then on: a host read after the span sees the baseline, unlike a
    chip without the reset."""
    t_post = post_spike_tick()
    plain = bench()
    plain.advance(SETTLE + 300 * STEP, [T_PRE, T_TEACH], [PRE, TEACH])
    b = bench()
    cpt = b.p.ppu_clock_hz * 8e-9
    target = int((t_post + 2 * STEP - b.chip.now) * cpt)
    start_firmware(b, f"""
        lis 3, 0
        ori 3, 3, 0x8000
        li 4, 0
        li 8, 0x1000
        li 9, 1
        stb 9, 0(8)              # a reset request for column 0 only
        fxvlax 2, 0, 8
        lis 20, {target >> 16}
        ori 20, 20, {target & 0xFFFF}
    1:  mfspr 5, 284
        cmplw 5, 20
        blt 1b
        fxvoutx 2, 3, 4
        wait
    """)
    b.advance(SETTLE + 300 * STEP, [T_PRE, T_TEACH], [PRE, TEACH])
    assert b.chip.ppus[0].sleeping
    baseline = causal_code(bench())
    assert causal_code(plain) < baseline
    assert causal_code(b) == baseline


def test_register_bus_read_sees_the_spike_within_one_step():
    """Firmware polls neuron 0's spike counter over the register bus and logs the
    cycle at which it first reads 1: no earlier than the spike, and no later than
    one analog step plus the polling loop."""
    t_post = post_spike_tick()
    b = bench()
    cpt = b.p.ppu_clock_hz * 8e-9
    t_start = b.chip.now
    bus = 0x80000000 | (b.rm.address("neuron", "spike_counter", 0) << 2)
    start_firmware(b, f"""
        lis 5, {bus >> 16:#x}
        ori 5, 5, {bus & 0xFFFF:#x}
    1:  lwz 4, 0(5)
        cmpwi 4, 0
        beq 1b
        mfspr 3, 284
        stw 3, 0x2ffc(0)
        wait
    """)
    b.advance(SETTLE + 300 * STEP, [T_PRE, T_TEACH], [PRE, TEACH])
    ppu = b.chip.ppus[0]
    assert ppu.sleeping
    cycles = int(ppu.mem[0x2FFC:0x3000].view(">u4")[0])
    seen = t_start + cycles / cpt
    loop_ticks = 8 / cpt                        # lwz (2) + cmpwi + beq + mfspr, and rounding
    assert t_post <= seen <= t_post + STEP + loop_ticks, (seen, t_post)


def _network(profile: str, seed: int, mismatch: bool = True) -> Bench:
    """Random weights and labels, every neuron on, fixed-pattern noise on (unless
    `mismatch` is False), membrane ADC on neuron 3."""
    b = Bench(profile, serial=5, mismatch=mismatch)
    rng = np.random.default_rng(seed)
    p = b.p
    n = np.arange(p.neurons)
    b.write(b.pm, "config", [0], b.field_words(b.pm, "config", enable=1, settle=0))
    b.cells(n, v_leak=lsb_for_volts(p, 0.3), v_threshold=lsb_for_volts(p, 0.42),
            v_reset=lsb_for_volts(p, 0.28), i_bias_leak=lsb_for_tau(p, 10e-6),
            i_bias_syn_exc_tau=lsb_for_tau(p, 5e-6), i_bias_syn_inh_tau=lsb_for_tau(p, 5e-6),
            i_bias_syn_exc_gm=600, i_bias_syn_inh_gm=600)
    b.neurons(n, enable=1, exc_enable=1, inh_enable=1, spike_out=1, refractory=20)
    b.write("routing", "neuron_label", n, b.field_words("routing", "neuron_label", label=0x3FF, enable=1))
    R = p.synapse_arrays * p.rows
    b.synapses(rng.integers(0, 64, (R, p.columns)), rng.integers(0, 4, (R, p.columns)))
    rows = np.arange(R)
    for inh in (0, 1):
        b.drivers(rows[rows % 2 == inh], enable=1, gain=12, inhibitory=inh)
    b.write("madc", "config", [0], b.field_words("madc", "config", enable=1, neuron=3, period=4))
    b.global_cells(i_bias_correlation=600, v_correlation_store=800,
                   v_correlation_baseline=lsb_for_volts(p, 1.0))
    b.advance(SETTLE)
    return b


def _poisson(b: Bench, span: int, seed: int):
    rng = np.random.default_rng(seed)
    R = b.p.synapse_arrays * b.p.rows
    n = int(span * 8e-9 * 50e3 * R)              # 50 kHz (hardware) per row
    t = np.sort(rng.integers(b.chip.now + 1, b.chip.now + span, n))
    return t, (rng.integers(0, R, n) << 6) | rng.integers(0, 4, n)


def test_the_compiled_loop_runs_the_network_as_the_analog_kernel_does():
    """The co-simulation copies the analog step body of twin.analog.kernel.run_steps:
    a chip whose PPUs compute without touching the network (cosim path) must
    produce bit-identical spikes, membrane samples and sensor traces to the same
    chip with its PPUs stopped (run_steps path)."""
    for profile in ("dls", "hx"):
        a, b = _network(profile, 1), _network(profile, 1)
        for k in range(b.p.ppus):
            image = np.frombuffer(assemble("1: addi 3, 3, 1\n mullw 4, 3, 3\n b 1b\n").image(), ">u4")
            blk = "ppu" if b.p.ppus == 1 else ("ppu_top", "ppu_bottom")[k]
            b.write(blk, "memory", np.arange(len(image)), image)
            b.write(blk, "control", [0], b.field_words(blk, "control", inhibit_reset=1))
        span = 125 * 40                          # 40 us
        t, lab = _poisson(a, span, 2)
        until = a.chip.now + span
        ra, rb = a.advance(until, t, lab), b.advance(until, t, lab)
        assert all(p.executing for p in b.chip.ppus) and not any(p.executing for p in a.chip.ppus)
        assert len(ra.spike_times) > 10, "the network must spike for the comparison to mean something"
        np.testing.assert_array_equal(ra.spike_times, rb.spike_times)
        np.testing.assert_array_equal(ra.spike_labels, rb.spike_labels)
        np.testing.assert_array_equal(ra.madc_values, rb.madc_values)
        na, nb = a.chip.core.net, b.chip.core.net
        for name in ("S", "causal", "acausal", "row_last", "last_post", "refc"):
            np.testing.assert_array_equal(getattr(na, name), getattr(nb, name), err_msg=f"{profile}: {name}")
        assert (na.causal > 0).any()


def test_an_idle_chip_runs_its_ppus_alone_with_exact_clocks():
    """No neuron on and no input: the analog steps are skipped, the PPUs still run
    every cycle of the span (hx: 250 MHz) and see the register bus of their time."""
    b = Bench("hx", serial=2)
    src = "1: addi 3, 3, 1\n b 1b\n"
    image = np.frombuffer(assemble(src).image(), ">u4")
    for blk in ("ppu_top", "ppu_bottom"):
        b.write(blk, "memory", np.arange(len(image)), image)
        b.write(blk, "control", [0], b.field_words(blk, "control", inhibit_reset=1))
    start = b.chip.now
    b.advance(start + 12_500)                   # 100 us
    for ppu in b.chip.ppus:
        assert ppu.executing
        assert ppu.state[I.S_CYCLES] == 25_000
        assert abs(int(ppu.state[3]) - 12_500) <= 1          # one addi per two cycles
    assert b.chip.core.k_next == (start + 12_500) // b.p.analog.step_ticks


def test_an_idle_chip_runs_the_same_in_its_own_loop():
    """On an idle chip the PPUs run in twin.cosim.run_ppus, which carries a copy
    of run_span's PPU part: both loops leave the same PPU states, memories,
    vector registers, synapse weights and correlation traces (hx: both PPUs
    sweeping the array with sensor reads, weight writes and sensor resets)."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
    from tools.bench.cosim import sweep_image
    image = np.frombuffer(sweep_image("hx"), ">u4")
    out = []
    for own_loop in (True, False):
        b = Bench("hx", serial=2)
        b.chip.ppus[0].bank.use_run_ppus = own_loop
        for blk in ("ppu_top", "ppu_bottom"):
            b.write(blk, "memory", np.arange(len(image)), image)
            b.write(blk, "control", [0], b.field_words(blk, "control", inhibit_reset=1))
        b.advance(b.chip.now + 25_000)                 # 200 us
        bank = b.chip.ppus[0].bank
        out.append((bank.state.copy(), bank.mem.copy(), bank.vec.copy(),
                    b.chip.core.synapse_weights.copy(), *[t.copy() for t in b.chip.core.net.traces()]))
    assert 50_000 <= out[0][0][0, I.S_CYCLES] < 50_000 + 500     # the last instruction may cross the span
    for a, c in zip(*out):
        np.testing.assert_array_equal(a, c)


def test_spike_counters_served_in_compiled_code_as_over_the_bus():
    """Firmware that polls and resets spike counters while the network runs:
    the compiled loop serves those accesses itself (twin.cosim._serve_fast_bus);
    with that switched off every access goes to Python's register bus.  Both
    leave the same log in memory, registers, cycle count and counters.  (An
    ideal chip: with temporal noise, each return to Python draws the noise of
    the next span anew, so the Python path's network differs in its noise.)"""
    from twin.cosim import FB_N
    results = []
    for fast in (True, False):
        b = _network("dls", 3, mismatch=False)
        if not fast:
            b.chip.ppus[0].bank.fast_bus[FB_N] = 0
        counter = 0x80000000 | (b.rm.address("neuron", "spike_counter", 0) << 2)
        reset = 0x80000000 | (b.rm.address("neuron", "spike_counter_reset", 0) << 2)
        # 12 rounds: read the counters of neurons 0..7 into a log, reset the even ones
        start_firmware(b, f"""
            lis 5, {counter >> 16:#x}
            ori 5, 5, {counter & 0xFFFF:#x}
            lis 6, {reset >> 16:#x}
            ori 6, 6, {reset & 0xFFFF:#x}
            li 7, 0x1000
            li 8, 12
            mtctr 8
            li 10, 1
        1:  li 9, 0
        2:  slwi 11, 9, 2
            lwzx 4, 5, 11
            stw 4, 0(7)
            addi 7, 7, 4
            andi. 12, 9, 1
            bne 3f
            stwx 10, 6, 11
        3:  addi 9, 9, 1
            cmpwi 9, 8
            blt 2b
            li 13, 150
        4:  addic. 13, 13, -1
            bne 4b
            bdnz 1b
            wait
        """)
        span = 125 * 100
        t, lab = _poisson(b, span, 4)
        b.advance(b.chip.now + span, t, lab)
        ppu = b.chip.ppus[0]
        assert ppu.sleeping
        log = ppu.mem[0x1000:0x1000 + 4 * 96].view(">u4").copy()
        results.append((log, ppu.state.copy(), b.read("neuron", "spike_counter", np.arange(8))))
    (log1, st1, c1), (log2, st2, c2) = results
    assert log1.any(), "the network must spike for the comparison to mean something"
    np.testing.assert_array_equal(log1, log2)
    np.testing.assert_array_equal(st1, st2)
    np.testing.assert_array_equal(c1, c2)
