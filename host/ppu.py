"""Run firmware on a chip's PPU over the wire.

    import host
    with host.connect("twin:dls") as conn:
        ppu = host.PPU(conn)
        ppu.load("firmware.elf")        # bytes (flat image or ELF) or a path
        ppu.start()
        ppu.run_until_sleep(timeout_hw_seconds=0.01)
        print(ppu.return_code(), ppu.mailbox()[:16])

Everything goes through the PPU block's registers (memory, control, status
and the debug registers of the register map); nothing reaches into the twin.
Runtime convention (firmware/crt0.s): main's return value is stored at
`RETURN_CODE_ADDRESS` (0x2FFC), the word below the 4 KiB mailbox at
`MAILBOX_ADDRESS` (0x3000); then the core executes `wait`.

A core that stops on an interrupt without an installed vector (illegal or
unimplemented instruction, trap, misaligned access, access outside memory)
raises `PPUFault` naming the reason and the faulting address.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from isa.ppu.elf import is_elf, read_elf
from isa.ppu.core import VECTORS
from isa.ppu.iomap import (MAILBOX_ADDRESS, MAILBOX_SIZE, RETURN_CODE_ADDRESS, STOP_FAULTS, STOP_HALTED,
                           STOP_INTERRUPT_LOOP, STOP_REASONS)
from isa.wire import FPGA_TICK_S, message

from .containers import PPUControl, PPUStatus
from .coords import PPUOnChip
from .errors import BssError

__all__ = ["PPU", "PPUFault", "PPUTimeout", "PPUState", "TraceStep", "RETURN_CODE_ADDRESS",
           "MAILBOX_ADDRESS", "MAILBOX_SIZE", "STOP_REASONS"]


_CHUNK = 256          # memory words / trace steps per program
#: The longest wait of one program: the playback timer's range (ticks).
_LONGEST_WAIT = (1 << dict(message("wait_until").fields)["time"]) - 1


_VECTOR_NAMES = {v: k.replace("_", " ") for k, v in VECTORS.items()}


class PPUFault(BssError):
    """The core stopped on an interrupt without an installed vector, or it is
    stuck in interrupt entry (`reason` STOP_INTERRUPT_LOOP: it runs but takes
    the interrupt at `address` again and again; `word` is the word there)."""

    def __init__(self, ppu: int, reason: int, address: int, pc: int, word: int | None = None):
        self.ppu, self.reason, self.address, self.pc, self.word = ppu, reason, address, pc, word
        if reason == STOP_INTERRUPT_LOOP:
            name = _VECTOR_NAMES.get(address, "an")
            at = "" if word is None else f" (word 0x{word:08x})"
            super().__init__(f"PPU {ppu} is stuck in interrupt entry at 0x{address:08x}: the {name} "
                             f"interrupt's handler faults there{at} before any instruction retires, so the "
                             "core takes interrupts again and again (it keeps running until stop() or a "
                             "reset)")
            return
        what = STOP_REASONS.get(reason, f"stop reason {reason}")
        super().__init__(f"PPU {ppu} stopped: {what} at address 0x{address:08x} "
                         f"(no interrupt vector installed)")


class PPUTimeout(BssError):
    """The core did not sleep within the time limit."""


@dataclass(frozen=True)
class PPUState:
    running: bool          # released from reset (control.inhibit_reset)
    sleeping: bool
    fault: bool
    reason: int            # debug_stop.reason
    fault_address: int
    pc: int
    cycles: int            # cycle counter (time base): counts while asleep too
    wait_cycles: int       # cycle counter at the last `wait` (low 32 bits)

    @property
    def reason_text(self) -> str:
        return STOP_REASONS.get(self.reason, str(self.reason))


@dataclass(frozen=True)
class TraceStep:
    pc: int
    word: int

    def text(self) -> str:
        from isa.ppu.disasm import format_instruction
        try:
            mn, ops = format_instruction(self.word, self.pc)
            asm = f"{mn} {ops}".strip()
        except ValueError:
            asm = "<illegal>"
        return f"{self.pc:08x}:  {self.word:08x}  {asm}"


class PPU:
    """One PPU of a connected chip (`ppu` 0 or 1 on hx)."""

    def __init__(self, conn, ppu: int = 0):
        self.conn, self.index = conn, ppu
        rm = conn.regmap
        self.block = PPUOnChip(ppu).block("ppu", rm)
        self._base = rm.block(self.block).base
        self._regs = {r.name: r for r in rm.block(self.block).registers}
        self.memory_bytes = 4 * self._regs["memory"].shape[0]
        self.clock_hz = conn.profile.ppu_clock_hz

    def _addr(self, register: str, index=0):
        return self._base + self._regs[register].offset + np.asarray(index, dtype=np.int64)

    # ------------------------------------------------------------------ memory
    def load(self, image: bytes | bytearray | str | os.PathLike) -> int:
        """Write a program into PPU memory (the rest of memory is cleared).
        Takes a flat image from address 0, ELF bytes, or a path to either.
        Stops the core first.  Returns the image size in bytes."""
        if isinstance(image, (str, os.PathLike)):
            with open(image, "rb") as f:
                image = f.read()
        data = bytes(image)
        if is_elf(data):
            elf = read_elf(data)
            if elf.entry != 0:
                raise ValueError(f"ELF entry point 0x{elf.entry:x}: the PPU starts at address 0 "
                                 "(link the image with its start at 0)")
            data = elf.image()
        if len(data) > self.memory_bytes:
            raise ValueError(f"image of {len(data)} bytes does not fit the PPU memory "
                             f"({self.memory_bytes} bytes)")
        self.stop()
        buf = np.zeros(self.memory_bytes, np.uint8)
        buf[:len(data)] = np.frombuffer(data, np.uint8)
        self.write_memory(0, buf.tobytes())
        return len(data)

    def write_memory(self, address: int, data: bytes) -> None:
        """Write bytes at a word-aligned address (length a multiple of 4)."""
        if address % 4 or len(data) % 4:
            raise ValueError("PPU memory writes are whole words: address and length must be multiples of 4")
        if address + len(data) > self.memory_bytes:
            raise ValueError(f"0x{address:x}+{len(data)} is outside the PPU memory ({self.memory_bytes} bytes)")
        words = np.frombuffer(data, ">u4").astype(np.int64)
        prog = self.conn.program()
        prog.write_words(self._addr("memory", np.arange(len(words)) + address // 4), words)
        self.conn.run(prog)

    def read_memory(self, address: int = 0, size: int | None = None) -> bytes:
        """Read bytes from PPU memory (default: all of it)."""
        size = self.memory_bytes - address if size is None else size
        first, last = address // 4, (address + size + 3) // 4
        if address < 0 or last * 4 > self.memory_bytes:
            raise ValueError(f"0x{address:x}+{size} is outside the PPU memory ({self.memory_bytes} bytes)")
        prog = self.conn.program()
        t = prog.read_words(self._addr("memory", np.arange(first, last)))
        self.conn.run(prog)
        raw = t.values.astype(">u4").tobytes()
        return raw[address - 4 * first:address - 4 * first + size]

    def return_code(self) -> int:
        """main's return value (r3, stored by the runtime at 0x2FFC), as a signed 32-bit int."""
        v = int.from_bytes(self.read_memory(RETURN_CODE_ADDRESS, 4), "big")
        return v - (1 << 32) if v >> 31 else v

    def mailbox(self, size: int = MAILBOX_SIZE) -> bytes:
        return self.read_memory(MAILBOX_ADDRESS, size)

    # ------------------------------------------------------------------ control
    def _control(self, *values: PPUControl) -> None:
        prog = self.conn.program()
        for v in values:
            prog.write_words(self._addr("control"), v.encode(self.conn.regmap)[0])
        self.conn.run(prog)

    def start(self) -> None:
        """Release reset: the core starts at address 0 with fresh registers."""
        self._control(PPUControl(inhibit_reset=0), PPUControl(inhibit_reset=1))

    def stop(self) -> None:
        """Hold the core in reset (memory is kept)."""
        self._control(PPUControl(inhibit_reset=0))

    def release(self) -> None:
        """Wake a sleeping core (it continues after its `wait`)."""
        self._control(PPUControl(inhibit_reset=1))

    def _debug(self, prog, **fields: int) -> None:
        prog.write_words(self._addr("debug"), self._regs["debug"].encode(**fields))

    def _read_state(self, prog):
        names = ("control", "status", "debug_stop", "debug_fault", "debug_pc", "debug_cycles",
                 "debug_cycles_high", "debug_wait_cycles")
        return prog.read_words(np.array([self._addr(n) for n in names], np.uint64))

    def _state(self, values) -> PPUState:
        rm, r = self.conn.regmap, self._regs
        values = np.asarray(values)
        ctl, status = PPUControl.decode(rm, values[0:1]), PPUStatus.decode(rm, values[1:2])
        reason, fault, pc, lo, hi, wait = (r[name].decode(int(v)) for name, v in zip(
            ("debug_stop", "debug_fault", "debug_pc", "debug_cycles", "debug_cycles_high", "debug_wait_cycles"),
            values[2:]))
        cycles = (hi["count"] << r["debug_cycles"].field("count").width) | lo["count"]
        return PPUState(bool(ctl.inhibit_reset), bool(status.sleeping), bool(status.fault), reason["reason"],
                        fault["address"], pc["pc"], cycles, wait["count"])

    def status(self) -> PPUState:
        prog = self.conn.program()
        t = self._read_state(prog)
        self.conn.run(prog)
        return self._state(t.values)

    def _check(self, s: PPUState) -> PPUState:
        if s.fault or s.reason in STOP_FAULTS:
            raise PPUFault(self.index, s.reason, s.fault_address, s.pc)
        if s.reason == STOP_INTERRUPT_LOOP:
            a = s.fault_address
            word = int.from_bytes(self.read_memory(a, 4), "big") if a % 4 == 0 and a + 4 <= self.memory_bytes \
                else None
            raise PPUFault(self.index, s.reason, a, s.pc, word)
        return s

    def run_until_sleep(self, timeout_hw_seconds: float = 1.0, poll_interval: float = 10e-6) -> PPUState:
        """Let the chip run until the core sleeps: one program per poll (timer
        reset, wait, read the state), the first waiting `poll_interval` seconds
        of hardware time and each later one twice as long as the one before
        (so a long run takes a few programs, a short one returns soon), never
        past `timeout_hw_seconds` in all (and none longer than the playback
        timer's range, 2**32 ticks).  Raises PPUFault on a fault or when the
        core is stuck in interrupt entry (at the first poll that sees it),
        PPUTimeout after `timeout_hw_seconds` of hardware time (the core keeps
        running)."""
        tick = FPGA_TICK_S
        limit = max(1, int(round(timeout_hw_seconds / tick)))
        longest = _LONGEST_WAIT
        step = min(longest, max(1, int(round(poll_interval / tick))))
        elapsed = 0
        last_cycles = None
        while True:
            ticks = min(step, limit - elapsed)
            prog = self.conn.program()
            prog.timer_reset()
            prog.wait_until(ticks)
            t = self._read_state(prog)
            self.conn.run(prog)
            s = self._check(self._state(t.values))
            if not s.running:
                raise PPUTimeout(f"PPU {self.index} is held in reset: call start() first")
            if s.sleeping:
                return s
            elapsed += ticks
            if s.reason == 0 and last_cycles is not None and s.cycles == last_cycles:
                raise PPUTimeout(f"PPU {self.index} does not advance (cycle counter stuck at {s.cycles}): "
                                 "the chip does not clock its PPU")
            last_cycles = s.cycles
            if elapsed >= limit:
                raise PPUTimeout(f"PPU {self.index} did not sleep within {timeout_hw_seconds:g} s of "
                                 f"hardware time ({s.cycles} cycles); pc=0x{s.pc:08x}, {s.reason_text}")
            step = min(2 * step, longest)

    # ------------------------------------------------------------------ debugging
    def halt(self) -> None:
        prog = self.conn.program()
        self._debug(prog, halt=1)
        self.conn.run(prog)

    def resume(self) -> None:
        prog = self.conn.program()
        self._debug(prog, halt=0)
        self.conn.run(prog)

    def registers(self) -> list[int]:
        """r0..r31 (read through debug_gpr)."""
        prog = self.conn.program()
        t = prog.read_words(self._addr("debug_gpr", np.arange(32)).astype(np.uint64))
        self.conn.run(prog)
        return [int(v) for v in t.values]

    def step(self, count: int = 1) -> list[TraceStep]:
        """Halt the core and execute `count` instructions one at a time; each
        step records the pc and the instruction word before it executes.
        Stops early when the core sleeps or faults."""
        out: list[TraceStep] = []
        prog = self.conn.program()
        self._debug(prog, halt=1)
        self.conn.run(prog)
        while len(out) < count:
            n = min(_CHUNK, count - len(out))
            prog = self.conn.program()
            tickets = []
            for _ in range(n):
                tickets.append(prog.read_words(np.array([self._addr("debug_pc"), self._addr("debug_instruction"),
                                                         self._addr("debug_stop")], np.uint64)))
                self._debug(prog, halt=1, step=1)
            self.conn.run(prog)
            for t in tickets:
                pc, word, reason = (int(v) for v in t.values)
                reason = self._regs["debug_stop"].field("reason").extract(reason)
                if reason not in (0, STOP_HALTED):
                    return out
                out.append(TraceStep(pc, word))
            s = self.status()
            if s.sleeping:
                return out
            self._check(s)
        return out

    trace = step

    # ------------------------------------------------------------------ pins and doorbell
    def set_pins(self, pins: int) -> None:
        """Drive the core's general-purpose input pins (register `gpio_in`):
        firmware reads them as GIN (SPR 65); pins 0-3 request the
        external-input interrupt (vector 0x14) as the firmware's ICCR (SPR 68)
        selects, while its MSR[EE] is set (docs/ppu.md, "Pins, doorbell")."""
        if not 0 <= pins < 1 << 32:
            raise ValueError(f"pins 0x{pins:x}: the core has 32 input pins (0 .. 0xffffffff)")
        prog = self.conn.program()
        prog.write_words(self._addr("gpio_in"), pins)
        self.conn.run(prog)

    def ring_doorbell(self) -> None:
        """A 0 -> 1 edge on the core's doorbell input (register `doorbell`, left
        at 0 afterwards): the doorbell interrupt (vector 0x24) when the core's
        MSR[EE] is set, else nothing."""
        prog = self.conn.program()
        prog.write_words(self._addr("doorbell"), 1)
        prog.write_words(self._addr("doorbell"), 0)
        self.conn.run(prog)

    def pins(self) -> tuple[int, int, int]:
        """(inputs as driven, GOUT, GOE): the pin registers of the core."""
        prog = self.conn.program()
        t = prog.read_words(np.array([self._addr(n) for n in ("gpio_in", "gpio_out", "gpio_enable")], np.uint64))
        self.conn.run(prog)
        gin, gout, goe = (int(v) for v in t.values)
        return gin, gout, goe
