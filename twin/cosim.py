"""The chip and its PPUs in one compiled loop.

`run_span` advances the analog core (twin.analog.kernel.run_steps) and every
executing PPU core (twin.ppu.interp._run) of a chip together inside numba.
The two sides meet only where the PPU touches the network: vector I/O
(fxvinx / fxvoutx to the synapse array and its correlation sensors) and
register-bus accesses.  Between such instructions a PPU computes on its own
and runs ahead in one interpreter call; the analog core runs in one
`run_steps` call up to the time of the earliest pending meeting point.  So:

* every PPU runs with `sync`: it stops *before* a vector-I/O instruction
  (ST_SYNC) at its cycle count c, i.e. hardware tick
  T = tick0 + (c - cyc0) / cycles_per_tick;
* the earliest pending meeting point (over all PPUs) is served first: the
  analog core runs the steps whose end lies at or before T (so the firmware
  sees the network within one analog step of its cycle), an fxvinx from a
  correlation space converts that row half through the column ADC now
  (offsets, noise, and the profile's ADC read cycles), and the PPU executes
  the instruction and runs on to its next meeting point;
* what the instruction changed acts at its time: weights and labels written
  by fxvoutx update the analog core's synapse row (amplitude with its
  fixed-pattern factor, label, neuron-major label copy) and correlation
  resets zero the traces, before the analog core moves on;
* a register-bus access is a meeting point too: spike-counter reads and resets
  are served here (`_serve_fast_bus`); every other register, a stale decoded
  word, a fault and the periodic wall-time yield are left to Python (the PPU
  block serves them): the call returns with the analog core brought to that
  PPU's time;
* hot code found by a PPU is marked and translated (twin.ppu.jit) by Python
  after the call: translation never splits a span, so it cannot change what
  the network does.

A core that sleeps through the rest of a call (no wake-up before t_stop)
returns with its cycle counter at its `wait` (the interpreter runs without
`sleep_advances` here): the PPU block moves it (and DEC) to the tick the call
reached (`PPUBlock.after_cosim`), so that at every return to Python a sleeping
core's counter is that of the chip's clock, not of the end of the span.

A PPU's state between calls is `pend[p]` (RUN: run it; SYNC: at a vector-I/O
instruction at tick `ptick[p]`; PYTHON: an event for Python, status in
`pstat[p]`; DONE: reached the budget of this call or sleeps through it;
STOPPED: stopped on a fault, status in `pstat[p]`).  `twin.chip.Chip.advance`
drives it; docs/ppu.md ("Co-simulation") describes the cost model.

The plain-Python references of the parts are twin.ppu.reference (the
interpreter) and twin.analog.reference (the step loop); the step loop here is
twin.analog.kernel.advance, inlined as in twin.analog.kernel.run_steps, and
tests/ppu_exec/test_cosim.py holds the two kernels to bit-identical results.
run_span and run_ppus are compiled without numba's reference counting
(_nrt=False: taking out and releasing a reference to every array of the
records at each span between two meeting points cost more than the steps of a
short span); they allocate nothing, CoSim holds their working memory.
"""
from __future__ import annotations

import numpy as np
from numba import njit, typeof

from isa.ppu.iomap import SPACE_ACAUSAL, SPACE_CAUSAL, SPACE_LABELS, SPACE_WEIGHTS, SPACES
from isa.wire import FPGA_TICK_S

from .analog.kernel import advance, cadc_code, spike_counter_word, work
from .compile_note import announce
from .ppu import interp as I
from .ppu._jitcall import call_run_loop

# pend states
RUN, SYNC, PYTHON, DONE, STOPPED, BUS = 0, 1, 2, 3, 4, 5
# why run_span returned
SPAN_DONE, SPAN_OUT_FULL, SPAN_PYTHON = 0, 1, 2

_K_INX = I.K_INX
_K_OUTX = I.K_OUTX
_ST_SYNC, _ST_YIELD, _ST_REDECODE, _ST_BUS, _ST_HOT = I.ST_SYNC, I.ST_YIELD, I.ST_REDECODE, I.ST_BUS, I.ST_HOT
_COL_JIT, _COL_COVERED = I.COL_JIT, I.COL_COVERED
_ST_MAX, _ST_SLEEPING = I.ST_MAX_CYCLES, I.ST_SLEEPING
_S_PC, _S_CYCLES, _S_SYNC_OK = I.S_PC, I.S_CYCLES, I.S_SYNC_OK
_S_BUS_ADDR, _S_BUS_WRITE, _S_BUS_DATA, _S_BUS_RT = I.S_BUS_ADDR, I.S_BUS_WRITE, I.S_BUS_DATA, I.S_BUS_RT
# fast_bus: word addresses and field layout of the registers served in compiled code
FB_COUNTER, FB_RESET, FB_N, FB_COUNT_BITS, FB_OVERFLOW_LSB = 0, 1, 2, 3, 4
_M32 = 0xFFFFFFFF


@njit(cache=True)
def _tick_of(cycles, tick0, cyc0, cpt):
    """Hardware tick (float) at which a PPU reaches a cycle count."""
    return tick0 + (cycles - cyc0) / cpt


@njit(cache=True, inline="always")
def _is_fast_bus(st, fast_bus):
    """A register-bus access compiled code serves itself: a spike-counter read
    or a spike-counter reset (the firmware of a homeostatic rule polls them)."""
    if fast_bus[FB_N] <= 0:
        return False
    a = st[_S_BUS_ADDR]
    if st[_S_BUS_WRITE]:
        return fast_bus[FB_RESET] <= a < fast_bus[FB_RESET] + fast_bus[FB_N]
    return fast_bus[FB_COUNTER] <= a < fast_bus[FB_COUNTER] + fast_bus[FB_N]


@njit(cache=True)
def _serve_fast_bus(st, fast_bus, counter_view, counts):
    """The access of _is_fast_bus at its time, as twin.events.hooks
    would serve it: the counter register holds the counts of earlier calls, the
    kernel's `counts` those of this one (added afterwards by
    twin.analog.steps.StepRunner._add_counts, with the same spike_counter_word); a reset clears both."""
    a = st[_S_BUS_ADDR]
    if st[_S_BUS_WRITE]:
        n = a - fast_bus[FB_RESET]
        if st[_S_BUS_DATA] & 1:
            counter_view[n] = 0
            counts[n] = 0
        return
    n = a - fast_bus[FB_COUNTER]
    st[st[_S_BUS_RT]] = spike_counter_word(counter_view[n], counts[n], fast_bus[FB_COUNT_BITS],
                                           fast_bus[FB_OVERFLOW_LSB])


@njit(cache=True, inline="always")
def _sync_io(st, dec, vec, io_space, rows, cols, arr, cbuf, abuf, causal, acausal,
             cadc_v, cadc_offset, noise_sd, adc_offset, full, normals, nidx):
    """The PPU at st[S_PC] is about to execute a vector-I/O instruction.  An
    fxvinx from a correlation space converts that row half through the column
    ADC into the PPU's reading buffers now (baseline minus trace, offsets,
    noise).  Returns the row an fxvoutx writes (-1: none), for _apply_io."""
    pc = st[_S_PC]
    wi = pc >> 2
    kind = dec[wi, 7] & 0xFF
    ra = np.int64(dec[wi, 4])
    rb = np.int64(dec[wi, 5])
    ea = ((st[ra] if ra else 0) + st[rb]) & _M32
    space = ea // io_space
    nb = vec.shape[0] // 35
    halves = cols // nb
    idx = ea % io_space
    row = idx // halves
    half = idx % halves
    if row >= rows or space >= SPACES:
        return -1                     # the instruction faults by itself
    if kind == _K_OUTX:
        return row
    if space != SPACE_CAUSAL and space != SPACE_ACAUSAL:
        return -1
    c0 = half * nb
    baseline, v_max = cadc_v[0], cadc_v[1]
    # This conversion's noise: consecutive table entries from a fresh random offset.
    mask = normals.shape[0] - 1
    x = np.uint64(nidx[0])
    x ^= x << np.uint64(13)
    x ^= x >> np.uint64(7)
    x ^= x << np.uint64(17)
    nidx[0] = np.int64(x & np.uint64(0x7FFFFFFFFFFFFFFF)) | 1
    off = np.int64(x >> np.uint64(40))
    for j in range(nb):
        c = c0 + j
        n = arr * cols + c
        if space == SPACE_CAUSAL:
            trace = causal[n, row]
        else:
            trace = acausal[arr * rows + row, c]
        noise = normals[(off + j) & mask] * noise_sd if noise_sd > 0.0 else 0.0
        code = cadc_code(baseline - trace, cadc_offset[n], noise, v_max, full)
        code = min(max(code + adc_offset, 0.0), full - 1.0)
        if space == SPACE_CAUSAL:
            cbuf[row, c] = np.uint8(code)
        else:
            abuf[row, c] = np.uint8(code)
    return -1


@njit(cache=True, inline="always")
def _apply_io(arr, r, rows, cols, wts, lbls, touched, resets, lanes, wmax, gain8, fp_syn, lost,
              syn_label, syn_amp, lab_t, causal, acausal, corr):
    """Effects of an fxvoutx to row r on the analog core, at the instruction's
    time: the synapse row written (amplitude, label, neuron-major label copy)
    and correlation reset requests (either bit resets both traces of a synapse)."""
    R = arr * rows + r
    if touched[SPACE_WEIGHTS, r] or touched[SPACE_LABELS, r]:
        for c in range(cols):
            word = np.int64(wts[arr, r, c >> 2])
            w = (word >> lanes[0, c & 3]) & lanes[1, c & 3]
            syn_amp[R, c] = (np.float32(w) / np.float32(wmax)) * gain8[R] * fp_syn[R, c]
            lw = np.int64(lbls[arr, r, c >> 2])
            lab = (lw >> lanes[2, c & 3]) & lanes[3, c & 3]
            lab16 = np.int16(-1) if lost[R, c] else np.int16(lab)
            syn_label[R, c] = lab16
            if corr:
                lab_t[arr * cols + c, r] = lab16
        touched[SPACE_WEIGHTS, r] = 0
        touched[SPACE_LABELS, r] = 0
    for c in range(cols):
        if resets[r, c]:
            if corr:
                causal[arr * cols + c, r] = 0.0
                acausal[R, c] = 0.0
            resets[r, c] = 0


@njit(cache=True, inline="always")
def _ppu_budgets(active, cyc0, tick0, cpt, t_stop, pend, budget, out_row):
    """Each PPU's cycle budget of a call (its cycle count at t_stop) and the
    row of the fxvoutx it is let through (-1: none), in place; DONE PPUs run
    again."""
    for p in range(active.shape[0]):
        budget[p] = np.int64(np.floor(cyc0[p] + (t_stop - tick0) * cpt))
        out_row[p] = -1
        if pend[p] == DONE:
            pend[p] = RUN


@njit(cache=True, inline="always")
def _ppus_to_meeting(run_addr, active, dec, mem, st, vec, wts, lbls, arr_of, cbuf, abuf, resets, touched,
                     io_space, corr_cycles, hot, fast_bus, tick0, cyc0, cpt, pend, ptick, pstat, budget, out_row,
                     rows, cols, io_rows):
    """Every PPU that may run goes on to its next meeting point (pend, ptick,
    pstat updated).  Returns the PPU of the earliest pending meeting point
    (-1: none) and its tick.  Inlined into run_span and run_ppus; `io_rows` is
    what _apply_io writes into, (lanes, wmax, gain8, fp_syn, syn_lost,
    syn_label, syn_amp, lab_t, causal, acausal, corr_present): a tuple, as
    CPython passes a call of more than 30 arguments as *args, which numba
    does not inline."""
    nppu = active.shape[0]
    # Every PPU that may run goes on to its next meeting point.
    for p in range(nppu):
        if not active[p] or pend[p] != RUN:
            continue
        a = arr_of[p]
        while True:
            status = call_run_loop(run_addr, dec[p], mem[p], st[p], budget[p], vec[p], wts[a], lbls[a],
                                   cbuf[p], abuf[p], resets[p], touched[p], io_space, False, hot, True,
                                   corr_cycles)
            if status != _ST_HOT:
                break
            # Hot code: translated by Python after this call (CoSim.run), so
            # that translating never splits the analog span; interpret on.
            dec[p][st[p, _S_PC] >> 2, _COL_JIT] = I.JIT_PENDING
            dec[p][0, _COL_COVERED] |= I.HOT_PENDING
        if out_row[p] >= 0:           # the one vector-I/O instruction of this run was an fxvoutx
            lanes, wmax, gain8, fp_syn, syn_lost, syn_label, syn_amp, lab_t, causal, acausal, corr_present = io_rows
            _apply_io(a, out_row[p], rows, cols, wts, lbls, touched[p], resets[p], lanes, wmax, gain8,
                      fp_syn, syn_lost, syn_label, syn_amp, lab_t, causal, acausal, corr_present)
            out_row[p] = -1
        ptick[p] = _tick_of(st[p, _S_CYCLES], tick0, cyc0[p], cpt)
        pstat[p] = status
        if status == _ST_SYNC:
            pend[p] = SYNC
        elif status == _ST_MAX or status == _ST_SLEEPING:
            pend[p] = DONE
        elif status == _ST_BUS and _is_fast_bus(st[p], fast_bus):
            pend[p] = BUS
        elif status == _ST_BUS or status == _ST_YIELD or status == _ST_REDECODE:
            pend[p] = PYTHON
        else:
            pend[p] = STOPPED
    # The earliest pending meeting point.
    best = -1
    tbest = 0.0
    for p in range(nppu):
        if active[p] and (pend[p] == SYNC or pend[p] == PYTHON or pend[p] == BUS):
            if best < 0 or ptick[p] < tbest:
                best = p
                tbest = ptick[p]
    return best, tbest


@njit(cache=True, inline="always")
def _meet(best, st, dec, vec, io_space, rows, cols, arr_of, cbuf, abuf, causal, acausal, cadc_v, cadc_offset,
          noise_sd, adc_offset, cadc_full, normals, nidx, fast_bus, counter_view, counts, pend, out_row):
    """Serve the meeting point of PPU `best` (pend[best] SYNC or BUS) with the
    network of now; the PPU runs on (RUN).  Inlined into run_span and run_ppus."""
    if pend[best] == BUS:            # served here, with the network of its cycle
        _serve_fast_bus(st[best], fast_bus, counter_view, counts)
        pend[best] = RUN
        return
    # A vector-I/O instruction: readings of now, then it executes.
    p = best
    out_row[p] = _sync_io(st[p], dec[p], vec[p], io_space, rows, cols, arr_of[p], cbuf[p], abuf[p],
                          causal, acausal, cadc_v, cadc_offset, noise_sd, adc_offset, cadc_full,
                          normals, nidx)
    st[p, _S_SYNC_OK] = 1
    pend[p] = RUN


@njit(cache=True, _nrt=False)
def run_span(k0, n_steps, lay, nrn, syn, ev, corr, obs, wk, n_ref,
             # --- PPUs (stacked: index p) ---
             run_addr, active, dec, mem, st, vec, wts, lbls, arr_of, cbuf, abuf, resets, touched,
             io_space, corr_cycles, hot, fast_bus, counter_view, tick0, cyc0, cpt, t_stop, pend, ptick, pstat,
             # --- column ADC and synapse rows ---
             cadc_v, cadc_offset, noise_sd, adc_offset, cadc_full, normals, nidx,
             lanes, wmax, gain8, fp_syn, syn_lost, corr_present, budget, out_row):
    """Advance analog steps k0 .. k0+n_steps-1 and the active PPUs up to tick
    t_stop (see the module docstring).  Returns (why, steps done, spikes
    written, ppu): why is SPAN_DONE (all steps and every PPU at t_stop),
    SPAN_OUT_FULL (the spike buffer is full: flush and call again) or
    SPAN_PYTHON (PPU `ppu` has an event for Python, pend[ppu] == PYTHON; the
    analog core has run the steps up to that PPU's time).  probe_out row s
    receives the probes after step k0 + s."""
    step_ticks, rows, cols = lay.step_ticks, lay.rows, lay.cols
    syn_label, syn_amp = syn.syn_label, syn.syn_amp
    lab_t, causal, acausal, counts = corr.lab_t, corr.causal, corr.acausal, nrn.counts
    k_end = k0 + n_steps
    k = k0
    n_out = 0
    _ppu_budgets(active, cyc0, tick0, cpt, t_stop, pend, budget, out_row)
    io_rows = (lanes, wmax, gain8, fp_syn, syn_lost, syn_label, syn_amp, lab_t, causal, acausal, corr_present)
    while True:
        best, tbest = _ppus_to_meeting(run_addr, active, dec, mem, st, vec, wts, lbls, arr_of, cbuf, abuf, resets,
                                       touched, io_space, corr_cycles, hot, fast_bus, tick0, cyc0, cpt, pend, ptick,
                                       pstat, budget, out_row, rows, cols, io_rows)
        k_target = k_end
        if best >= 0:
            kt = np.int64(np.floor(tbest / step_ticks))
            if kt < k_target:
                k_target = kt
        # The analog core up to it (the step loop of twin.analog.kernel.run_steps, inlined).
        if k < k_target:
            k, n_out, n_ref = advance(k0, k, k_target, n_out, n_ref, lay, nrn, syn, ev, corr, obs, wk)
            if k < k_target:
                return SPAN_OUT_FULL, k - k0, n_out, -1
        if best < 0:
            return SPAN_DONE, k - k0, n_out, -1
        if pend[best] == PYTHON:
            return SPAN_PYTHON, k - k0, n_out, best
        _meet(best, st, dec, vec, io_space, rows, cols, arr_of, cbuf, abuf, causal, acausal, cadc_v, cadc_offset,
              noise_sd, adc_offset, cadc_full, normals, nidx, fast_bus, counter_view, counts, pend, out_row)


@njit(cache=True, _nrt=False)
def run_ppus(rows, cols, counts, syn_label, syn_amp, lab_t, causal, acausal,
             run_addr, active, dec, mem, st, vec, wts, lbls, arr_of, cbuf, abuf, resets, touched,
             io_space, corr_cycles, hot, fast_bus, counter_view, tick0, cyc0, cpt, t_stop, pend, ptick, pstat,
             cadc_v, cadc_offset, noise_sd, adc_offset, cadc_full, normals, nidx,
             lanes, wmax, gain8, fp_syn, syn_lost, corr_present, budget, out_row):
    """run_span for a chip whose analog core has nothing to run (no neuron
    enabled, no input: AnalogCore's ppu_only mode): the PPUs run to t_stop and
    meet a network that stands still.  Kept apart so that firmware on an idle
    chip (`bss-twin ppu-run`, a first PPU program) does not wait for the analog
    step loop to compile.  The PPU part is run_span's (_ppus_to_meeting,
    _meet); tests/ppu_exec/test_cosim.py holds the two to identical results."""
    nppu = active.shape[0]
    _ppu_budgets(active, cyc0, tick0, cpt, t_stop, pend, budget, out_row)
    io_rows = (lanes, wmax, gain8, fp_syn, syn_lost, syn_label, syn_amp, lab_t, causal, acausal, corr_present)
    while True:
        best, tbest = _ppus_to_meeting(run_addr, active, dec, mem, st, vec, wts, lbls, arr_of, cbuf, abuf, resets,
                                       touched, io_space, corr_cycles, hot, fast_bus, tick0, cyc0, cpt, pend, ptick,
                                       pstat, budget, out_row, rows, cols, io_rows)
        if best < 0:
            return SPAN_DONE, 0, 0, -1
        if pend[best] == PYTHON:
            return SPAN_PYTHON, 0, 0, best
        _meet(best, st, dec, vec, io_space, rows, cols, arr_of, cbuf, abuf, causal, acausal, cadc_v, cadc_offset,
              noise_sd, adc_offset, cadc_full, normals, nidx, fast_bus, counter_view, counts, pend, out_row)


class CoSim:
    """The stacked PPU state of one chip (the PPU blocks hold views of it) and
    the per-call bookkeeping of `run_span`."""

    def __init__(self, chip, count: int):
        p = chip.profile
        nb = I.vector_bytes(p.ppu_slices) if count else 16
        words = p.ppu_memory_bytes // 4
        self.chip = chip
        self.count = count
        if count:
            I.prefetch_run_loop()          # a fresh install: the interpreter compiles on the other core
        self.mem = np.zeros((count, p.ppu_memory_bytes), np.uint8)
        self.state = np.zeros((count, I.STATE_SIZE), np.int64)
        self.vec = np.zeros((count, 35 * nb), np.uint8)
        self.dec = np.zeros((count, words, I.DECODED_WIDTH), np.int32)
        self.cbuf = np.zeros((count, p.rows, p.columns), np.uint8)
        self.abuf = np.zeros((count, p.rows, p.columns), np.uint8)
        self.resets = np.zeros((count, p.rows, p.columns), np.uint8)
        self.touched = np.zeros((count, 2, p.rows), np.uint8)
        self.active = np.zeros(count, np.uint8)
        self.pend = np.zeros(count, np.int64)
        self.budget = np.zeros(count, np.int64)       # run_span's working memory (it allocates nothing)
        self.out_row = np.full(count, -1, np.int64)
        self.ptick = np.zeros(count, np.float64)
        self.pstat = np.zeros(count, np.int64)
        self.cyc0 = np.zeros(count, np.float64)
        self.arr_of = np.array([min(k, p.synapse_arrays - 1) for k in range(count)], np.int64)
        self.io_space = np.int64(I.io_space_of(p.ppu_slices)) if count else np.int64(0x4000)
        self.corr_cycles = np.int64(p.ppu_cadc_read_cycles)
        self.hot = np.int64(I.HOT_THRESHOLD)          # 0: no translation (twin.ppu.jit)
        self.use_run_ppus = True                       # False: idle chips too go through run_span (tests)
        self.cpt = p.ppu_clock_hz * FPGA_TICK_S       # PPU cycles per FPGA tick
        rm = chip.regmap
        # Register-bus accesses served in compiled code (FB_N = 0: all go to Python).
        self.fast_bus = np.zeros(5, np.int64)
        if count:
            cnt = rm.register("neuron", "spike_counter")
            self.fast_bus[:] = (rm.address("neuron", "spike_counter", 0),
                                rm.address("neuron", "spike_counter_reset", 0), cnt.count,
                                cnt.field("count").width, cnt.field("overflow").lsb)
        wl, ll = rm.register("synapse", "weights").lanes("weight"), rm.register("synapse", "labels").lanes("label")
        self.lanes = np.array([[f.lsb for f in wl], [(1 << f.width) - 1 for f in wl],
                               [f.lsb for f in ll], [(1 << f.width) - 1 for f in ll]], np.int64)
        # Column-ADC noise: a table of standard normals fixed by (serial, seed),
        # each conversion reading from a random offset (xorshift state `nidx`):
        # a library normal per converted byte cost more than the rest of the
        # conversion.  Same serial and seed, same noise.
        rng = np.random.default_rng([chip.serial, chip.seed, 0xCAD])
        self.normals = rng.standard_normal(1 << 16)
        self.nidx = np.array([int(rng.integers(1, 1 << 62))], np.int64)
        self.tick0 = 0
        self.need = -1                 # PPU with an event for Python after the last call
        self.reached = 0.0             # its tick

    def begin(self, executing: list[bool], tick0: int, targets: list[float]) -> None:
        """A sub-span starts at tick0: which PPUs run and their cycle targets there."""
        self.tick0 = tick0
        for k, on in enumerate(executing):
            self.active[k] = on
            self.cyc0[k] = targets[k]
            if not on:
                self.pend[k] = RUN
        self.need = -1

    def run(self, core, k, n, t_stop, records, cadc, ppu_only=False):
        """One run_span call over analog steps k .. k+n-1 and PPU time to t_stop
        (run_ppus when the analog core has nothing to run); `records` are the
        analog kernel's (lay, nrn, syn, ev, corr, obs) of twin.analog.kernel."""
        net = core.net
        ppus = (self.active, self.dec, self.mem, self.state, self.vec,
                core.synapse_weights, core.synapse_labels, self.arr_of,
                self.cbuf, self.abuf, self.resets, self.touched,
                self.io_space, self.corr_cycles, self.hot, self.fast_bus, core.counters, float(self.tick0),
                self.cyc0, float(self.cpt), float(t_stop), self.pend, self.ptick, self.pstat,
                *cadc, self.normals, self.nidx,
                self.lanes, float(net.wmax), net.syn_gain8, net.fp.synapse, net.fp.synapse_lost,
                bool(core.p.correlation), self.budget, self.out_row)
        if ppu_only and self.use_run_ppus:
            lay, nrn, syn, _, corr, _ = records
            kernel, head = run_ppus, (lay.rows, lay.cols, nrn.counts, syn.syn_label, syn.syn_amp, corr.lab_t,
                                      corr.causal, corr.acausal)
            announce(run_ppus, "the chip's PPU loop (the PPUs' network access)", "a few seconds")
        else:
            lay, nrn = records[0], records[1]
            kernel, head = run_span, (np.int64(k), np.int64(n), *records, *work(lay, nrn))
            announce(run_span, "the chip's co-simulation loop (analog core and PPUs)", "about 5 s")
        if not kernel.signatures and I.run_loop_pending():
            # The interpreter compiles in the background: compile this loop meanwhile.
            kernel.compile(tuple(typeof(a) for a in (*head, np.int64(0), *ppus)))
        why, s_done, n_out, who = kernel(*head, np.int64(I.run_loop_address()), *ppus)
        return self._after(why, s_done, n_out, who)

    def _after(self, why, s_done, n_out, who):
        for p in range(self.count):
            if self.dec[p, 0, I.COL_COVERED] & I.HOT_PENDING:
                I.serve_pending_hot(self.mem[p], self.dec[p], self.vec.shape[1] // 35)
        if why == SPAN_PYTHON:
            self.need = int(who)
            self.reached = float(self.ptick[who])
        return int(why), int(s_done), int(n_out)
