"""The analog core as a chip: event routing, generators, recurrent routing,
the output FIFO, parameter-cell dynamics, readout, BrainScaleS-1 distortions,
and the whole path over the wire through the host library."""
from __future__ import annotations

import math

import numpy as np

import host
from _analog_helpers import Bench, lsb_for_tau, lsb_for_volts, volts
from twin.analog import kernel as K

STEP = 12


def quiet_dls(**opts):
    """Ideal dls: every neuron at 0.4 V, tau 10 us, far from threshold."""
    b = Bench("dls", serial=3, mismatch=False, **opts)
    b.write(b.pm, "config", [0], b.field_words(b.pm, "config", enable=1, settle=0))
    n = np.arange(32)
    b.cells(n, v_leak=lsb_for_volts(b.p, 0.4), v_threshold=1000, v_reset=lsb_for_volts(b.p, 0.3),
            i_bias_leak=lsb_for_tau(b.p, 10e-6), i_bias_syn_exc_tau=lsb_for_tau(b.p, 5e-6),
            i_bias_syn_inh_tau=lsb_for_tau(b.p, 5e-6), i_bias_syn_exc_gm=100, i_bias_syn_inh_gm=100)
    b.neurons(n, enable=1)
    b.advance(STEP * 500)
    return b


def input_currents(b):
    return b.chip.core.net.S[K.IEXC].copy(), b.chip.core.net.S[K.IINH].copy()


def test_label_convention_row_label_sign_and_source():
    """Label bits [15:6] pick the row, the low 6 bits must equal the synapse's
    address label; an inhibitory row drives the inhibitory input; a driver
    accepts only the sources its `source` field names."""
    b = quiet_dls()
    W = np.zeros((32, 32), int)
    L = np.zeros((32, 32), int)
    W[4, :] = 30
    L[4, :] = np.arange(32) % 8                     # synapse c of row 4 answers to label c % 8
    W[5, :] = 30
    b.synapses(W, L)
    b.drivers([4], enable=1, gain=8)
    b.drivers([5], enable=1, gain=8, inhibitory=1)
    t = b.chip.now
    b.advance(t + STEP, [t], [4 << 6 | 3])
    ie, ii = input_currents(b)
    assert set(np.flatnonzero(ie > 0).tolist()) == {3, 11, 19, 27}
    assert not ii.any()
    t = b.chip.now
    b.advance(t + STEP, [t], [5 << 6 | 0])            # row 5: labels all 0, inhibitory
    ie2, ii2 = input_currents(b)
    assert (ii2 > 0).all()
    b.drivers([4], enable=1, gain=8, source=1)         # background only: external input ignored
    t = b.chip.now
    before = input_currents(b)[0].copy()
    b.advance(t + STEP, [t], [4 << 6 | 3])
    assert (input_currents(b)[0] <= before).all()      # only decayed
    b.advance(b.chip.now + STEP, [b.chip.now], [40 << 6])   # row 40 does not exist: nothing happens


def test_rows_taking_one_event_address_fan_out():
    """With use_address, several rows take the events of one address: one event
    drives an excitatory and an inhibitory row (signed weights from one source);
    the rows named by the address itself take it only if their driver does not
    listen elsewhere."""
    b = quiet_dls()
    W = np.zeros((32, 32), int)
    W[6, 2] = 30                                      # row 6: excitatory synapse on neuron 2
    W[7, 3] = 30                                      # row 7: inhibitory synapse on neuron 3
    W[20, 4] = 30                                     # row 20: its own address, not listening elsewhere
    b.synapses(W, np.zeros((32, 32), int))
    b.drivers([6], enable=1, gain=8, use_address=1, address=20)
    b.drivers([7], enable=1, gain=8, inhibitory=1, use_address=1, address=20)
    b.drivers([20], enable=1, gain=8)
    t = b.chip.now
    b.advance(t + STEP, [t], [20 << 6])
    ie, ii = input_currents(b)
    assert np.flatnonzero(ie > 0).tolist() == [2, 4] and np.flatnonzero(ii > 0).tolist() == [3]
    b.drivers([20], enable=1, gain=8, use_address=1, address=900)      # row 20 now listens to 900 only
    b.advance(b.chip.now + STEP * 400)
    before_e, before_i = input_currents(b)
    t = b.chip.now
    b.advance(t + STEP, [t], [20 << 6])
    ie, ii = input_currents(b)
    assert ie[2] > before_e[2] and ii[3] > before_i[3] and ie[4] <= before_e[4]    # row 20: decay only
    t = b.chip.now
    b.advance(t + STEP, [t], [6 << 6])                # row 6 listens to 20: its own address reaches nothing
    assert input_currents(b)[0][2] <= ie[2]


def test_background_generators_regular_and_poisson():
    b = quiet_dls()
    g = b.rm.register("routing", "generator")
    period = 50                                       # 50 x 16 ticks = 6.4 us
    b.write("routing", "generator", [0], g.encode(enable=1, poisson=0, label=0x3FF, period=period))
    b.write("routing", "generator", [1], g.encode(enable=1, poisson=1, label=2 << 6, period=period))
    b.write("routing", "crossbar", [0], b.field_words("routing", "crossbar", loopback=0))
    W = np.zeros((32, 32), int)
    W[2, 7] = 20
    b.synapses(W, np.zeros((32, 32), int))
    b.drivers([2], enable=1, source=1)
    core = b.chip.core
    start = b.chip.now
    dur = 800 * 16 * 500
    seen = []
    orig = core.generators.events

    def spy(*a, **kw):
        ev = orig(*a, **kw)
        seen.append(ev)
        return ev
    core.generators.events = spy
    b.advance(start + dur)
    ticks = np.concatenate([e.tick for e in seen])
    labels = np.concatenate([e.label for e in seen])
    reg = ticks[labels == 0x3FF]
    assert np.all(np.diff(reg) == period * 16) and len(reg) == dur // (period * 16) + 1
    poi = ticks[labels == 2 << 6]
    expected = dur / (period * 16)
    assert abs(len(poi) - expected) < 4 * math.sqrt(expected)
    cv = np.diff(poi).std() / np.diff(poi).mean()
    assert 0.85 < cv < 1.15                              # exponential intervals
    assert b.chip.core.net.S[K.IEXC, 7] > 0 or b.read("neuron", "spike_counter", [7])[0] == 0


def test_recurrent_routing_reaches_the_target_row():
    b = quiet_dls()
    # neuron 0 fires (leak above threshold); its label 9 << 6 | 1 reaches row 9, label 1 -> neuron 12
    b.cells([0], v_leak=lsb_for_volts(b.p, 0.7), v_threshold=lsb_for_volts(b.p, 0.5))
    b.neurons([0], enable=1, refractory=255, refractory_clock=6)
    b.write("routing", "neuron_label", [0], b.field_words("routing", "neuron_label", label=9 << 6 | 1, enable=1))
    W, L = np.zeros((32, 32), int), np.zeros((32, 32), int)
    W[9, 12], L[9, 12] = 63, 1
    b.synapses(W, L)
    b.drivers([9], enable=1, source=2)
    b.advance(b.chip.now + STEP * 300)
    assert b.chip.core.net.S[K.IEXC, 12] == 0            # recurrent switch off: nothing
    b.write("routing", "crossbar", [0], b.field_words("routing", "crossbar", recurrent=1))
    act = b.advance(b.chip.now + STEP * 2000)
    assert (act.spike_labels == (9 << 6 | 1)).sum() >= 1
    assert b.chip.core.net.S[K.IEXC, 12] > 0 or b.chip.core.net.S[K.V, 12] > volts(b.p, lsb_for_volts(b.p, 0.4)) + 1e-3


def test_capmem_settles_after_a_write_and_decays_without_refresh():
    b = Bench("dls", serial=3, mismatch=False)
    b.write(b.pm, "config", [0], b.field_words(b.pm, "config", enable=1, settle=3))   # tau 2 us
    cells = b.chip.core.net.cells
    t0 = b.chip.now
    b.write(b.pm, "neuron", [5], 800)
    for ticks in (60, 250, 750):
        assert abs(cells.at(t0 + ticks)[5] - 800 * (1 - math.exp(-ticks * 8e-9 / 2e-6))) < 1e-6
    b.advance(t0 + 125 * 40)
    t1 = b.chip.now
    b.write(b.pm, "neuron", [5], 1023)                     # refresh off: decays from 800 towards 0
    tau = b.p.analog.refresh_off_tau
    t = t1 + round(tau / 8e-9)
    assert abs(cells.at(t)[5] - 800 * math.exp(-1)) < 1e-3
    b.advance(t)
    cells_out, _ = b.chip.core.net.cell_outputs(b.chip.now, True)
    assert abs(cells_out[0, 5] - 800 * math.exp(-1) / 1022 * b.p.analog.v_max) < 1e-3


def test_capmem_disabled_outputs_zero():
    b = quiet_dls()
    b.write(b.pm, "config", [0], b.field_words(b.pm, "config", enable=0))
    cells, gcells = b.chip.core.net.cell_outputs(b.chip.now, False)
    assert not cells.any() and not gcells.any()


def test_hicann_spike_and_synapse_loss_are_counted():
    b = Bench("hicann", serial=7, spike_loss=0.1, synapse_loss=0.05)
    n_syn = b.p.synapses
    lost_syn = int(b.read("routing", "synapse_loss", [0])[0])
    assert abs(lost_syn - 0.05 * n_syn) < 4 * math.sqrt(0.05 * 0.95 * n_syn)
    b.drivers(np.arange(b.p.rows), enable=1)
    n_ev = 20000
    t = np.sort(np.random.default_rng(1).integers(0, 20000, n_ev))
    b.advance(20001, t, np.zeros(n_ev, int))
    lost = int(b.read("routing", "spike_loss", [0])[0])
    assert abs(lost - 0.1 * n_ev) < 4 * math.sqrt(0.1 * 0.9 * n_ev)
    clean = Bench("hicann", serial=7)
    assert int(clean.read("routing", "synapse_loss", [0])[0]) == 0


# ---------------------------------------------------------------------------- over the wire
def wire_setup(conn, neurons, **cells):
    prog = conn.program()
    prog.write(host.ChipOnly(), host.CapMemConfig(enable=1, settle=0))
    for n in neurons:
        for name, v in cells.items():
            prog.write(host.CapMemCellOnChip(n, name), host.CapMemCell(int(v)))
        prog.write(host.NeuronOnChip(n), host.NeuronConfig(enable=1, refractory=0, refractory_clock=0, readout=1))
        prog.write(host.NeuronOnChip(n), host.NeuronLabel(label=n, enable=1))
    return prog


def test_fifo_overflow_is_counted_and_reported_to_the_host():
    """All 32 neurons of a dls chip fire every step (32 events per 12 ticks; the
    FIFO sends one every 2): the 256-entry FIFO overflows; the host sees
    `events_dropped`, a notice, routing.fifo_status.dropped, and received +
    dropped = the spikes the counters saw."""
    with host.connect("twin:dls?serial=3") as conn:
        p = conn.profile
        prog = wire_setup(conn, range(32), v_leak=lsb_for_volts(p, 1.1), v_threshold=lsb_for_volts(p, 0.5),
                          v_reset=lsb_for_volts(p, 0.5), i_bias_leak=1022)
        for n in range(32):
            prog.write(host.NeuronOnChip(n), host.SpikeCounterReset())
        prog.timer_reset()
        prog.wait_until(STEP * 200)
        status = prog.read(host.ChipOnly(), host.FifoStatus)
        counters = [prog.read(host.NeuronOnChip(n), host.SpikeCounter) for n in range(32)]
        res = conn.run(prog)
        total = sum(c.value.count for c in counters)
        assert res.events_dropped > 0
        assert any("dropped" in n for n in res.notices)
        assert status.value.dropped == res.events_dropped
        assert len(res.spikes) + res.events_dropped == total
        assert status.value.level > 200                      # nearly full at the end
        prog = conn.program()
        for n in range(32):
            prog.write(host.NeuronOnChip(n), host.SpikeCounterReset())
        after = prog.read(host.NeuronOnChip(0), host.SpikeCounter)
        conn.run(prog)
        assert after.value.count == 0


def test_membrane_over_the_wire_psp_and_readout_mux():
    """A spike sent over the wire raises the membrane the membrane ADC streams
    back; the readout mux shows the same membrane and parameter cells."""
    with host.connect("twin:dls?serial=3&mismatch=0") as conn:
        p = conn.profile
        prog = wire_setup(conn, [6], v_leak=lsb_for_volts(p, 0.4), v_threshold=1000,
                          i_bias_leak=lsb_for_tau(p, 10e-6), i_bias_syn_exc_tau=lsb_for_tau(p, 5e-6),
                          i_bias_syn_exc_gm=200)
        w = np.zeros(32, int)
        w[6] = 63
        prog.write(host.SynapseRowOnChip(2), host.SynapseRow(w, np.zeros(32, int)))
        prog.write(host.SynapseDriverOnChip(2), host.SynapseDriverConfig(enable=1))
        prog.write(host.ChipOnly(), host.MADCConfig(enable=1, source=0, neuron=6, period=STEP))
        prog.write(host.ChipOnly(), host.ReadoutMuxConfig(source=1, neuron=6))
        prog.timer_reset()
        prog.wait_until(STEP * 1300)
        prog.spikes([2 << 6], [STEP * 1300])
        prog.wait_until(STEP * 1800)
        prog.write(host.ChipOnly(), host.MADCConfig(enable=1, source=1, neuron=6, period=STEP))
        prog.wait_until(STEP * 1900)
        mem = prog.read(host.NeuronOnChip(6), host.MembraneCADC)
        res = conn.run(prog)
        v = res.madc["value"].astype(float) * p.analog.adc_v_max / 1024
        t = res.madc["time"]
        rest = v[(t > STEP * 1200) & (t < STEP * 1300)].mean()
        assert abs(rest - 0.4) < 0.005
        peak = v[(t > STEP * 1300) & (t < STEP * 1800)].max()
        assert peak - rest > 0.05                             # a PSP of tens of millivolts
        via_mux = v[(t > STEP * 1800)]
        direct_end = v[(t > STEP * 1790) & (t < STEP * 1800)].mean()
        assert abs(via_mux[:5].mean() - direct_end) < 0.01
        cadc = mem.value.value * p.analog.adc_v_max / 256
        assert abs(cadc - via_mux[-5:].mean()) < 0.03           # column ADC (8 bit, with its offset)


def test_hicann_runs_at_its_own_speed():
    """hicann: 8 ns steps, time constants ten times shorter for the same cells."""
    b = Bench("hicann", serial=1, mismatch=False)
    b.write(b.pm, "config", [0], b.field_words(b.pm, "config", enable=1, settle=0))
    b.cells([0], e_l=lsb_for_volts(b.p, 0.6), v_t=1000, i_gl=lsb_for_tau(b.p, 1e-6))
    b.neurons([0], enable=1)
    b.advance(2000)
    start = b.chip.now
    b.cells([0], e_l=lsb_for_volts(b.p, 0.8))
    b.write("madc", "config", [0], b.field_words("madc", "config", enable=1, source=0, neuron=0, period=1))
    act = b.advance(start + 500)
    v = act.madc_values * b.p.analog.adc_v_max / 1024
    e = volts(b.p, lsb_for_volts(b.p, 0.8))
    t = (act.madc_times - start) * 8e-9
    sel = (t > 0.8e-6) & (e - v > 0.01)                     # after the 0.25 us cell settling
    slope = np.polyfit(t[sel], np.log(e - v[sel]), 1)[0]
    assert abs(-1 / slope - 1e-6) < 0.08e-6


def test_readout_mux_sources_and_the_pad_trace():
    """Source 3: a parameter cell (voltage as is); source 2: the synaptic input
    current at 1 V per uA; source 1: the membrane, only with the neuron's
    readout bit; the pad's values stay available for a virtual scope."""
    b = quiet_dls()
    mux = lambda **f: b.write("madc", "readout_mux", [0], b.field_words("madc", "readout_mux", **f))
    madc = lambda src: b.write("madc", "config", [0], b.field_words("madc", "config", enable=1, source=src,
                                                                   period=STEP))
    madc(1)
    mux(source=3, neuron=4, cell=b.p.neuron_cells.index("v_leak"))
    act = b.advance(b.chip.now + STEP * 20)
    assert abs(act.madc_values.mean() * 1.2 / 1024 - 0.4) < 0.002
    mux(source=1, neuron=4)                                   # readout bit off: the pad floats at 0
    assert b.advance(b.chip.now + STEP * 20).madc_values.max() == 0
    b.neurons([4], enable=1, readout=1)
    assert abs(b.advance(b.chip.now + STEP * 20).madc_values.mean() * 1.2 / 1024 - 0.4) < 0.002
    W = np.zeros((32, 32), int)
    W[0, 4] = 63
    b.synapses(W, np.zeros((32, 32), int))
    b.drivers([0], enable=1)
    mux(source=2, neuron=4)
    t = b.chip.now
    act = b.advance(t + STEP * 40, [t], [0])
    i_peak = 63 / 63 * 1.0 * 100 / 1022 * 1e-6                # weight/63 * gain/8 * I(gm = 100)
    assert abs(act.madc_values.max() * 1.2 / 1024 - i_peak * 1e6) < 0.003
    core = b.chip.core
    assert len(core.readout_times) == len(core.readout_volts) > 40
    assert np.all(np.diff(core.readout_times) == STEP)


def test_generator_seed_repeats_the_poisson_train():
    def train(seed):
        b = quiet_dls()
        g = b.rm.register("routing", "generator")
        b.write("routing", "generator_seed", [0], seed)
        b.write("routing", "generator", [0], g.encode(enable=1, poisson=1, label=3 << 6, period=20))
        W = np.zeros((32, 32), int)
        W[3, 9] = 63
        b.synapses(W, np.zeros((32, 32), int))
        b.drivers([3], enable=1, source=1)
        b.write("madc", "config", [0], b.field_words("madc", "config", enable=1, source=0, neuron=9, period=STEP))
        return b.advance(b.chip.now + STEP * 2000).madc_values
    a, again, other = train(5), train(5), train(6)
    assert np.array_equal(a, again)
    assert not np.array_equal(a, other)
    assert a.max() > a.min() + 20                              # the generator's events drive the neuron


def test_chip_reset_returns_the_analog_state_to_rest():
    b = quiet_dls()
    W = np.zeros((32, 32), int)
    W[0, :] = 63
    b.synapses(W, np.zeros((32, 32), int))
    b.drivers([0], enable=1)
    b.advance(b.chip.now + STEP * 5, [b.chip.now], [0])
    assert b.chip.core.net.S[K.IEXC].max() > 0
    b.chip.reset()
    assert not b.chip.core.net.S.any()
    assert not b.chip.core.net.cells.at(b.chip.now).any()
    assert int(b.read("neuron", "spike_counter", [0])[0]) == 0


def test_an_idle_chip_skips_its_steps_and_wakes_up_at_rest():
    """No neuron enabled: a long wait costs no integration (1 s of hardware time
    in well under a second); a neuron switched on afterwards starts at E_l."""
    import time
    b = Bench("hx", serial=3, mismatch=False)
    b.write(b.pm, "config", [0], b.field_words(b.pm, "config", enable=1, settle=0))
    b.cells([7], v_leak=lsb_for_volts(b.p, 0.45), v_threshold=1000, i_bias_leak=lsb_for_tau(b.p, 10e-6))
    t0 = time.perf_counter()
    b.advance(125_000_000, [1000, 2000], [0, 1 << 6])
    assert time.perf_counter() - t0 < 0.5
    b.neurons([7], enable=1)
    b.write("madc", "config", [0], b.field_words("madc", "config", enable=1, source=0, neuron=7, period=STEP))
    act = b.advance(b.chip.now + STEP * 10)
    assert abs(act.madc_values.mean() * 1.2 / 1024 - volts(b.p, lsb_for_volts(b.p, 0.45))) < 0.002
