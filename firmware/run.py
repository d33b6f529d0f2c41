"""Run a firmware rule on a chip through the host library (twin or board alike).

    with host.connect("twin:dls") as conn:
        rule = firmware.RuleOnChip(conn, "stdp_mult")
        rule.start("periodic", period_us=100, theta=2, lambda_pos=40, lambda_neg=20, w_max=63,
                   offset_stride=0)
        conn.run(program)          # the network plays; the rule updates every 100 us
        rule.stop()                # the rule ends after its current update; return codes checked

Every PPU of the chip runs the same image on its own synapse array (hx: PPU
k on array k), each with its own mailbox.
"""
from __future__ import annotations

import numpy as np

from isa.ppu.iomap import MAILBOX_ADDRESS, MAILBOX_COMMANDS, MAILBOX_STATES, RETURN_CODES
from isa.wire import FPGA_TICK_S

from . import RULES, build, field, mailbox, param_word

TICK_S = FPGA_TICK_S


class RuleError(RuntimeError):
    """The firmware ended with a return code other than RC_OK."""


class RuleOnChip:
    def __init__(self, conn, name: str, ppus: list[int] | None = None):
        import host
        self.conn, self.name = conn, name
        self.chip = conn.profile.name
        self.image = build(name, self.chip)
        self.indices = list(range(conn.profile.ppus)) if ppus is None else list(ppus)
        self.ppus = [host.PPU(conn, k) for k in self.indices]

    def _per_ppu(self, values: dict) -> list[dict]:
        """The values for each PPU: a list holds one per PPU, anything else is for all."""
        for n, v in values.items():
            if isinstance(v, list) and len(v) != len(self.ppus):
                raise ValueError(f"rule {self.name}: {n} has {len(v)} values for {len(self.ppus)} PPUs")
        return [{n: v[i] if isinstance(v, list) else v for n, v in values.items()} for i in range(len(self.ppus))]

    def start(self, command: str = "periodic", *, period_us: int = 0, iterations: int = 0,
              data: bytes | np.ndarray | list = b"", load: bool = True, **params: int | list[int]) -> None:
        """Load the rule into each PPU (`load`=False: it is there from an
        earlier start), write its mailbox and start it at its reset entry.
        `data` and each parameter: one value for all PPUs or a list with one
        per PPU; a rule's `ppu` parameter is each PPU's index unless given."""
        if any(p.name == "ppu" for p in RULES[self.name].params):
            params.setdefault("ppu", self.indices)
        for ppu, each in zip(self.ppus, self._per_ppu(dict(params, data=data))):
            if load:
                ppu.load(self.image)
            else:
                ppu.stop()
            ppu.write_memory(MAILBOX_ADDRESS, mailbox(self.name, self.chip, command=command, period_us=period_us,
                                                      iterations=iterations, **each))
        for ppu in self.ppus:
            ppu.start()

    def set(self, **params: int | list[int]) -> None:
        """Rewrite parameters while the rule runs (one value for all PPUs or a
        list with one per PPU), range-checked; a rule that reads them at each
        update (stdp_reward's reward) uses them from its next update on."""
        for ppu, each in zip(self.ppus, self._per_ppu(params)):
            for n, v in each.items():
                ppu.write_memory(*param_word(self.name, self.chip, n, v))

    def data(self, size: int, ppu: int = 0) -> np.ndarray:
        """The first `size` bytes of a PPU's mailbox data area."""
        addr, _ = field("data")
        return np.frombuffer(self.ppus[ppu].read_memory(addr, size), np.uint8)

    def _word(self, ppu, name: str) -> int:
        addr, _ = field(name)
        return int.from_bytes(ppu.read_memory(addr, 4), "big")

    def updates(self) -> list[int]:
        """Updates done so far, per PPU."""
        return [self._word(p, "updates") for p in self.ppus]

    def overruns(self) -> list[int]:
        return [self._word(p, "overruns") for p in self.ppus]

    def done(self) -> list[bool]:
        return [self._word(p, "state") == MAILBOX_STATES["done"] for p in self.ppus]

    def wait(self, timeout_hw_seconds: float = 1.0, step_hw_seconds: float = 100e-6) -> None:
        """Let the chip run until every PPU's rule has returned; then check the
        return codes (RuleError names the PPU and the code)."""
        elapsed = 0.0
        while not all(self.done()):
            if elapsed >= timeout_hw_seconds:
                raise TimeoutError(f"rule {self.name}: not finished after {timeout_hw_seconds:g} s of hardware "
                                   f"time (updates {self.updates()}, state 'done' {self.done()})")
            prog = self.conn.program()
            prog.timer_reset()
            prog.wait_until(max(1, int(round(step_hw_seconds / TICK_S))))
            self.conn.run(prog)
            elapsed += step_hw_seconds
        codes = {v: k for k, v in RETURN_CODES.items()}
        for k, ppu in zip(self.indices, self.ppus):
            rc = ppu.return_code()
            if rc != RETURN_CODES["ok"]:
                raise RuleError(f"rule {self.name} on PPU {k} returned {rc} ({codes.get(rc, 'the rule own code')})")

    def stop(self, timeout_hw_seconds: float = 1.0) -> None:
        """Ask each rule to end after its current update (CMD_STOP), wait for it."""
        addr, _ = field("command")
        for ppu in self.ppus:
            ppu.write_memory(addr, MAILBOX_COMMANDS["stop"].to_bytes(4, "big"))
        self.wait(timeout_hw_seconds)
