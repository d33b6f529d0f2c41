"""A chip instance: register bus, clock and the blocks behind the registers.

A chip is created from (profile, serial).  The serial is stored in the
chip_id block and seeds every fixed-pattern property of the instance, so the
same serial is the same chip forever.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from isa.profiles import Profile, profile as lookup_profile
from isa.regmap import register_map
from isa.regmap import LINK_COUNTERS

from .activity import Activity
from .core import EventCore
from .ppu.block import attach_ppus
from .regbus import RegisterBus

__all__ = ["Activity", "Chip"]


class Chip:
    def __init__(self, profile: str | Profile, serial: int = 0, seed: int = 0, *, mismatch: bool = True,
                 spike_loss: float | None = None, synapse_loss: float | None = None):
        """`mismatch=False` gives an ideal chip (no fixed-pattern or temporal
        noise); `spike_loss` (probability per event into the drivers) and
        `synapse_loss` (fraction of synapses) switch on the BrainScaleS-1
        distortions (defaults: the profile's Mismatch record)."""
        self.profile = profile if isinstance(profile, Profile) else lookup_profile(profile)
        if not 0 <= serial < 1 << 32:
            raise ValueError(f"serial {serial} outside 0..2**32-1")
        self.serial = serial
        self.seed = seed
        self.options = dict(mismatch=mismatch, spike_loss=spike_loss, synapse_loss=synapse_loss)
        self.regmap = register_map(self.profile.name)
        self.bus = RegisterBus(self.regmap, {("chip_id", "serial"): serial})
        #: Hardware clock in FPGA ticks since the chip was created; never goes back.
        self.now = 0
        #: Link statistics shown in the `link` block (sessions add to them).
        self.link_counters = {name: 0 for name, _ in LINK_COUNTERS}
        for name, _ in LINK_COUNTERS:
            self.bus.on_read("link", name, self._link_reader(name))
        self.core = EventCore(self.profile, self.regmap, self.bus, serial, seed, clock=lambda: self.now,
                              mismatch=mismatch, spike_loss=spike_loss, synapse_loss=synapse_loss)
        self.ppus = attach_ppus(self)
        self.cosim = self.ppus[0].bank if self.ppus else None

    def fresh(self) -> "Chip":
        """Another instance of this chip: the same profile, serial, seed and
        options (so the same fixed pattern), at reset, with its own clock."""
        return Chip(self.profile, self.serial, self.seed, **self.options)

    def _link_reader(self, name: str):
        top = self.regmap.register("link", name).field("count").limit      # the counters saturate

        def read(idx: np.ndarray) -> np.ndarray:
            return np.full(len(idx), min(self.link_counters[name], top), dtype=np.uint32)
        return read

    def reset(self) -> None:
        """Chip reset: registers and analog state to reset values; the clock runs on."""
        self.bus.reset()
        self.core.reset()
        for ppu in self.ppus:
            ppu.reset()

    def advance(self, until: int, in_times: np.ndarray, in_labels: np.ndarray,
                pause: Callable[[], bool] | None = None, new_run: bool = True) -> Activity:
        """Run the chip up to absolute tick `until`, injecting input events
        (absolute ticks, sorted, all <= until).

        While a PPU executes, the analog core and the PPUs advance together in
        one compiled loop (twin.cosim): firmware sees the network at its cycle
        (within one analog step) and its vector I/O acts at its time.  The loop
        comes back to Python only for what the PPU blocks serve: register-bus
        accesses of the firmware, code changed behind the core, faults, and a
        periodic yield (a few ms of wall time) so that signals are honoured.

        `pause` is asked at each of those returns: when it says True the call
        ends there, before `until` (`self.now` is the tick reached; input
        events not consumed yet stay queued in the core).  Calling `advance`
        again with the same `until` (and no new input) then runs exactly what
        the loop would have run without the pause (twin.session shares a busy
        chip between clients this way).

        `new_run=False` continues the analog core's run of the previous call
        (its temporal noise is kept, not drawn anew): a long wait advanced in
        pieces of chip time (twin.executor.piece_ticks) then runs as it would
        in one call."""
        if until < self.now:
            raise ValueError(f"cannot run the chip backwards ({until} < {self.now})")
        if until == self.now or not any(p.executing for p in self.ppus):
            # (no time passes: output in flight leaves, nothing runs; a host
            # program's closing loopback asks for exactly that)
            act = self.core.advance(self.now, until, in_times, in_labels, new_run=new_run)
            for ppu in self.ppus:
                ppu.advance(self.now, until)      # sleeping or stopped: only its clock moves
            self.now = until
            return act
        cs = self.cosim
        parts = []
        while True:
            start = self.now
            running = [p.executing for p in self.ppus]
            cs.begin(running, start, [p._target for p in self.ppus])
            parts.append(self.core.advance(start, until, in_times, in_labels,
                                           cosim=cs if any(running) else None, new_run=new_run))
            new_run = True
            in_times, in_labels = np.zeros(0, np.int64), np.zeros(0, np.uint16)
            reached = self.core.reached
            for k, ppu in enumerate(self.ppus):
                if running[k]:
                    ppu.after_cosim(reached - start)
                else:
                    ppu.advance(start, reached)
            self.now = reached
            if cs.need >= 0:
                self.ppus[cs.need].serve_cosim_event()
            elif reached >= until:
                break
            if pause is not None and reached < until and pause():
                break
        for ppu in self.ppus:
            ppu.sync_memory_view()
        return Activity.merge(parts)
