"""The PPU as a block of the chip: registers, clock and the synapse array it reaches.

`attach_ppus(chip)` creates one `PPUBlock` per PPU block of the chip's register
map (`ppu` on dls; `ppu_top`, `ppu_bottom` on hx) and returns them; the chip
calls `block.advance(start_tick, until_tick)` after each analog step and
`block.reset()` on a chip reset.

Registers (the block's `memory`, `control`, `status` and `debug*`):

* `memory`: reads and writes go to the PPU SRAM, a big-endian byte array
  (`PPUBlock.mem`; word k is bytes 4k..4k+3, most significant first).  Host
  writes while the core runs take effect at once (decoded code is invalidated).
* `control.inhibit_reset`: 0 -> 1 releases reset: the core starts at address 0
  with fresh registers (GPRs, SPRs, vector unit all zero; the cycle counter
  starts at 0); 1 -> 0 stops it and resets the registers (memory is kept).
  Writing 1 again while the core sleeps (`wait`) releases it: it continues
  after the `wait`.  `force_clock_off` stops the clock (the core and its cycle
  counter freeze); `force_clock_on` has no effect in the twin.
* `status.sleeping`: the core executes `wait`; `status.fault`: it stopped on an
  interrupt without an installed vector (reason and address in `debug_stop`,
  `debug_fault`); it stays stopped until reset.  A core stuck in interrupt
  entry (a handler that faults at its vector, twin.ppu.interp) keeps running
  and taking the interrupt; `debug_stop` reads `STOP_INTERRUPT_LOOP` and
  `debug_fault` the vector until an instruction retires again.
* `debug.halt` / `debug.step`, `debug_pc`, `debug_instruction`,
  `debug_cycles(_high)`, `debug_stop`, `debug_fault`, `debug_gpr[32]`: see the
  register map.  While halted the clock is stopped for the core.

Time, on a chip: while the core executes, `twin.chip.Chip.advance` runs it
together with the analog core in one compiled loop (twin.cosim; the block's
arrays are views of the chip's `CoSim` bank); `after_cosim` moves its clock
target, `serve_cosim_event` performs what the loop leaves to Python (a
register-bus access of the firmware through `chip.bus`, code to decode again,
the periodic yield).  A rejected bus access stops the core with a
machine-check fault at that address.  A core asleep with nothing to wake it
(no decrementer interrupt possible), stopped or halted only moves its clock,
through `advance`.

Standalone (a block driven by a test, without the chip's loop): `advance`
runs the core for the PPU clock cycles of the span (`profile.ppu_clock_hz`,
FPGA ticks of 8 ns), in chunks of at most `chunk_ticks` (1 us) when a
`correlation_source` is attached.  Vector I/O reaches synapse array `index`
(ppu_top: 0, ppu_bottom: 1): the weight and label words are the register
storage itself (`synapse.weights`, `synapse.labels`), and rows written by
fxvoutx are written again through the bus afterwards.  Correlations come from
`correlation_source(array) -> (causal, acausal)` (uint8, rows x columns),
called before each chunk (default: none, readings stay zero); reset requests
from fxvoutx to the correlation spaces are handed to `apply_resets(array,
resets)` (bit 0 causal, bit 1 acausal) after the chunk and then cleared.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from isa.ppu.iomap import STOP_FAULTS, STOP_HALTED, STOP_INTERRUPT_LOOP, STOP_SLEEPING
from isa.wire import FPGA_TICK_S

from . import interp as I

__all__ = ["PPUBlock", "attach_ppus", "CHUNK_TICKS", "TICK_SECONDS", "STOP_HALTED"]

TICK_SECONDS = FPGA_TICK_S
CHUNK_TICKS = 125          # 1 us of hardware time
_FAULTS = (I.Status.PROGRAM, I.Status.TRAP, I.Status.ALIGNMENT, I.Status.BUS_ERROR,
           I.Status.UNIMPLEMENTED, I.Status.DECREMENTER, I.Status.FIT, I.Status.EXTERNAL, I.Status.DOORBELL)
# debug_stop.reason reports the interpreter's status codes: they must be the contract's.
assert I.Status.SLEEPING == STOP_SLEEPING and set(_FAULTS) == set(STOP_FAULTS), "stop reasons out of step"


class PPUBlock:
    def __init__(self, chip, block_name: str, index: int = 0, chunk_ticks: int = CHUNK_TICKS, bank=None):
        """`bank` (twin.cosim.CoSim) holds the state of all PPUs of the chip,
        stacked for the compiled co-simulation; this block's arrays are views
        of its slot `index` (they are never rebound, only written in place)."""
        from ..cosim import CoSim
        p = chip.profile
        self.chip, self.name, self.index = chip, block_name, index
        self.bus = chip.bus
        self.profile = p
        self.chunk_ticks = chunk_ticks
        self.slices = p.ppu_slices
        self.cycles_per_tick = p.ppu_clock_hz * TICK_SECONDS
        self.bank = bank if bank is not None else CoSim(chip, index + 1)
        self.mem = self.bank.mem[index]
        self.state = self.bank.state[index]
        self.vec = self.bank.vec[index]
        self.decoded = self.bank.dec[index]
        self.corr_cycles = p.ppu_cadc_read_cycles
        self.array = min(index, p.synapse_arrays - 1)
        self.correlation_source: Callable[[int], tuple[np.ndarray, np.ndarray]] | None = None
        self.apply_resets: Callable[[int, np.ndarray], None] | None = None
        self._memory_view = self.bus.view(block_name, "memory")
        rm = chip.regmap
        syn = rm.block("synapse")
        self._syn_addr = {reg: syn.base + rm.register("synapse", reg).offset for reg in ("weights", "labels")}
        self._hook()
        self._power_on()

    # ------------------------------------------------------------------ state
    def _power_on(self) -> None:
        self.running = False
        self.halted = False
        self.stop = 0                 # debug_stop.reason
        self._clear_core()
        self._target = 0.0            # cycle count the core should have reached
        b, k = self.bank, self.index
        w = self.bus.view("synapse", "weights")[self.array]
        lab = self.bus.view("synapse", "labels")[self.array]
        b.cbuf[k], b.abuf[k], b.resets[k], b.touched[k] = 0, 0, 0, 0
        self.io = I.VectorIO(w, lab, b.cbuf[k], b.abuf[k], b.resets[k], b.touched[k], I.io_space_of(self.slices))

    def _clear_core(self) -> None:
        """Registers, vector unit and co-simulation bookkeeping to zero (in
        place); the input pins keep their levels (they are driven from outside)."""
        pins = int(self.state[I.S_GIN])
        self.state[:] = 0
        self.state[I.S_GIN] = pins
        self.vec[:] = 0
        self.bank.pend[self.index] = 0

    def reset(self) -> None:
        """Chip reset: the core stops, registers and SRAM clear (the bus storage
        is reset by the chip, and with it the input pins and the doorbell)."""
        self.mem[:] = 0
        self._power_on()
        self.state[I.S_GIN] = 0
        self._doorbell = False

    def _start(self) -> None:
        self._clear_core()
        self.decoded[:] = I.predecode_memory(self.mem)
        self._target = 0.0
        self.running, self.stop = True, 0

    @property
    def sleeping(self) -> bool:
        return self.running and bool(self.state[I.S_SLEEP]) and self.stop in (0, I.Status.SLEEPING)

    @property
    def faulted(self) -> bool:
        return self.running and self.stop in _FAULTS

    # ------------------------------------------------------------------ registers
    def _hook(self) -> None:
        b, n = self.bus, self.name
        b.on_read(n, "memory", lambda idx: self.mem.view(">u4")[idx].astype(np.uint32))
        b.on_write(n, "memory", self._write_memory)
        b.on_write(n, "control", self._write_control)
        b.on_read(n, "status", lambda idx: np.full(len(idx), int(self.sleeping) | int(self.faulted) << 1,
                                                   np.uint32))
        b.on_write(n, "debug", self._write_debug)
        b.on_read(n, "debug", lambda idx: np.full(len(idx), int(self.halted), np.uint32))
        st = lambda k: (lambda idx: np.full(len(idx), int(self.state[k]) & 0xFFFFFFFF, np.uint32))
        b.on_read(n, "debug_pc", st(I.S_PC))
        b.on_read(n, "debug_fault", lambda idx: np.full(len(idx), self._fault_address(), np.uint32))
        b.on_read(n, "debug_cycles", st(I.S_CYCLES))
        b.on_read(n, "debug_wait_cycles", st(I.S_WAIT_CYCLES))
        b.on_read(n, "debug_cycles_high",
                  lambda idx: np.full(len(idx), (int(self.state[I.S_CYCLES]) >> 32) & 0xFFFFFFFF, np.uint32))
        b.on_read(n, "debug_stop", lambda idx: np.full(len(idx), self._stop_reason(), np.uint32))
        b.on_read(n, "debug_instruction", lambda idx: np.full(len(idx), self._word_at_pc(), np.uint32))
        b.on_read(n, "debug_gpr", lambda idx: (self.state[:32][idx] & 0xFFFFFFFF).astype(np.uint32))
        b.on_write(n, "gpio_in", self._write_pins)
        b.on_read(n, "gpio_in", st(I.S_GIN))
        b.on_write(n, "doorbell", self._write_doorbell)
        b.on_read(n, "gpio_out", st(I.S_GOUT))
        b.on_read(n, "gpio_enable", st(I.S_GOE))

    def _write_pins(self, idx: np.ndarray, values: np.ndarray) -> None:
        """The host drives the input pins (one change per written value)."""
        for v in values.tolist():
            I.drive_pins(self.state, int(v))

    def _write_doorbell(self, idx: np.ndarray, values: np.ndarray) -> None:
        """The doorbell input: each 0 -> 1 change is an edge (interrupt_ctrl.sv)."""
        for v in values.tolist():
            level = bool(v & 1)
            if level and not self._doorbell and self.running:
                I.doorbell_edge(self.state)
            self._doorbell = level

    _doorbell = False

    def _stop_reason(self) -> int:
        if not self.running:
            return 0
        if self.stop:
            return int(self.stop)
        if self.state[I.S_SLEEP]:
            return int(I.Status.SLEEPING)
        if self.halted:
            return STOP_HALTED
        return STOP_INTERRUPT_LOOP if self.stuck_in_interrupt_entry else 0

    @property
    def stuck_in_interrupt_entry(self) -> bool:
        """The core takes the same interrupts again and again and retires
        nothing (twin.ppu.interp, "Stuck in interrupt entry")."""
        st = self.state
        return bool(self.running and not self.stop and st[I.S_ENTRY_LOOP]
                    and st[I.S_INSNS] == st[I.S_ENTRY_INSNS])

    def _fault_address(self) -> int:
        k = I.S_ENTRY_LOOP if self._stop_reason() == STOP_INTERRUPT_LOOP else I.S_FAULT
        return int(self.state[k]) & 0xFFFFFFFF

    def _word_at_pc(self) -> int:
        pc = int(self.state[I.S_PC])
        if pc & 3 or pc + 4 > len(self.mem):
            return 0
        return int(self.mem[pc:pc + 4].view(">u4")[0])

    def _write_memory(self, idx: np.ndarray, values: np.ndarray) -> None:
        self.mem.view(">u4")[idx] = values
        self.decoded[idx, 0] = I.OP_STALE          # decoded again when fetched (or at the next start)

    def _write_control(self, idx: np.ndarray, values: np.ndarray) -> None:
        for v in values.tolist():
            run = bool(v & 1)
            if run and not self.running:
                self._start()
            elif run and self.state[I.S_SLEEP] and self.stop in (0, I.Status.SLEEPING):
                self.state[I.S_SLEEP] = 0            # the host releases `wait`
                self.stop = 0
            elif not run and self.running:
                self.running, self.stop, self.halted = False, 0, False
                self._clear_core()
        self._clock_off = bool(values[-1] & 4)

    _clock_off = False

    def _write_debug(self, idx: np.ndarray, values: np.ndarray) -> None:
        for v in values.tolist():
            self.halted = bool(v & 1)
            if v & 2 and self.halted and self.running and not self.stop:
                self._step()
        self.bus.view(self.name, "debug")[...] = int(self.halted)      # step reads 0

    def _step(self) -> None:
        st = self.state
        if st[I.S_SLEEP]:
            return
        self._run(int(st[I.S_CYCLES]) + 1, sleep_advances=False)
        self._target = max(self._target, float(st[I.S_CYCLES]))

    # ------------------------------------------------------------------ time
    @property
    def executing(self) -> bool:
        """The core runs instructions now, or may wake by itself (a timer):
        the chip then interleaves it with the analog core in short chunks."""
        st = self.state
        if not self.running or self.stop or self.halted or self._clock_off:
            return False
        return not (st[I.S_SLEEP] and not self._may_wake())

    def _may_wake(self) -> bool:
        st = self.state
        return I.cycles_to_wakeup(st) >= 0      # a timer, pin or doorbell request wakes `wait`

    def advance(self, start_tick: int, until_tick: int) -> None:
        """Run the core for the hardware time from start_tick to until_tick (FPGA ticks)."""
        t = start_tick
        ran = False
        st = self.state
        if (self.running and not (self.stop or self.halted or self._clock_off) and st[I.S_SLEEP]
                and not self._may_wake()):
            # Asleep with nothing to wake it: time passes without the interpreter.
            self._target += (until_tick - start_tick) * self.cycles_per_tick
            self._sleep_to_target()
            return
        while t < until_tick:
            if not self.running or self.stop or self.halted or self._clock_off:
                break
            sleeping = bool(self.state[I.S_SLEEP])
            # Chunks only matter for the correlation snapshots; without a source
            # (or asleep) the span runs in one call.
            reads_corr = self.correlation_source is not None and not sleeping and self._reads_correlation()
            t_next = min(until_tick, t + self.chunk_ticks) if reads_corr else until_tick
            self._target += (t_next - t) * self.cycles_per_tick
            if reads_corr:
                causal, acausal = self.correlation_source(self.array)
                self.io.causal[:], self.io.acausal[:] = causal, acausal
            self._run(int(self._target), sleep_advances=True)
            ran = True
            t = t_next
        if ran:
            self._memory_view[:] = self.mem.view(">u4")

    def _sleep_to_target(self) -> None:
        """A sleeping core's cycle counter (and timers) to the clock target, as
        the interpreter's `sleep_advances` does."""
        st = self.state
        idle = int(self._target) - int(st[I.S_CYCLES])
        if idle > 0:
            I.advance_time(st, idle)

    # ------------------------------------------------------------------ co-simulation (twin.cosim)
    def after_cosim(self, ticks: int) -> None:
        """The chip ran this executing core for `ticks` in the compiled loop:
        move its clock target and take note of a fault or a sleep (a core that
        sleeps through the rest of the call comes back with its counter at its
        `wait`: it moves to the target here, the tick the call reached)."""
        from ..cosim import DONE, RUN, STOPPED
        self._target += ticks * self.cycles_per_tick
        b, k = self.bank, self.index
        if b.pend[k] == STOPPED:
            self.stop = int(b.pstat[k])
            b.pend[k] = RUN
        elif b.pend[k] == DONE and b.pstat[k] == I.Status.SLEEPING:
            self.stop = 0
            self._sleep_to_target()

    def serve_cosim_event(self) -> None:
        """What the compiled loop left to Python for this core: a register-bus
        access, code to decode again, or a wall-time yield (nothing to do)."""
        from ..cosim import RUN
        b, k = self.bank, self.index
        status = int(b.pstat[k])
        b.pend[k] = RUN
        if status == I.Status.BUS:
            self._bus_access()
        elif status == I.ST_REDECODE:
            I.redecode(self.mem, self.decoded)


    def sync_memory_view(self) -> None:
        """The register storage of `memory` follows the SRAM after a run."""
        if self.running:
            self._memory_view[:] = self.mem.view(">u4")

    def _reads_correlation(self) -> bool:
        """Whether the loaded code can read the correlation sensors (an fxvinx,
        or words not decoded yet): converting a whole array through the column
        ADC is costly, so firmware that never reads them skips it."""
        ops = self.decoded[:, 0]
        return bool(np.any((ops == I.OP["fxvinx"]) | (ops == I.OP_STALE)))

    def _run(self, budget: int, sleep_advances: bool) -> None:
        st = self.state
        while True:
            status = I.run(self.mem, st, budget, self.decoded, self.vec, self.io, sleep_advances,
                           corr_cycles=self.corr_cycles)
            if status == I.Status.BUS:
                if not self._bus_access():
                    break
                if not self.running:          # the firmware wrote its own control
                    break
                continue
            if status in _FAULTS:
                self.stop = status
            elif status == I.Status.SLEEPING:
                self.stop = 0
            break
        self._after_io()

    def _bus_access(self) -> bool:
        st = self.state
        addr = np.array([int(st[I.S_BUS_ADDR])], np.uint64)
        if st[I.S_BUS_WRITE]:
            res = self.bus.write(addr, np.array([int(st[I.S_BUS_DATA]) & 0xFFFFFFFF], np.uint32),
                                 np.array([0xF], np.uint8))
            value = None
        else:
            res = self.bus.read(addr)
            value = int(res.values[0]) if res.values is not None else 0
        if res.reason[0]:
            st[I.S_FAULT] = 0x80000000 | (int(addr[0]) << 2)
            self.stop = I.Status.BUS_ERROR
            return False
        I.complete_bus(st, value)
        return True

    def _after_io(self) -> None:
        io = self.io
        if io.touched.any():
            p = self.profile
            quads = p.quads_per_row
            for k, reg in enumerate(("weights", "labels")):
                rows = np.flatnonzero(io.touched[k])
                if not len(rows):
                    continue
                flat = ((self.array * p.rows + rows)[:, None] * quads + np.arange(quads)).ravel()
                addr = (self._syn_addr[reg] + flat).astype(np.uint64)
                words = self.bus.view("synapse", reg).reshape(-1)[flat].copy()
                self.bus.write(addr, words, np.full(len(addr), 0xF, np.uint8))
            io.touched[:] = 0
        if io.resets.any():
            if self.apply_resets is not None:
                self.apply_resets(self.array, io.resets.copy())
            io.resets[:] = 0


def attach_ppus(chip) -> list[PPUBlock]:
    """One PPUBlock per PPU block of the chip's register map, in map order,
    sharing one co-simulation bank (`blocks[k].bank`)."""
    from ..cosim import CoSim
    names = [b.name for b in chip.regmap.blocks if b.name.startswith("ppu")]
    bank = CoSim(chip, len(names))
    return [PPUBlock(chip, name, index=k, bank=bank) for k, name in enumerate(names)]
