"""The event routing (routing block): the crossbar's loopback, recording and
recurrent switches, the neurons' output labels, and the queue of input events
(playback and background generators) not yet consumed by the analog core."""
from __future__ import annotations

import numpy as np

from isa.profiles import Profile
from isa.regmap import RegisterMap

from ..analog import kernel as K
from ..analog.network import Events
from ..regbus import RegisterBus
from .generators import Generators

#: Crossbar latency from an input event to its loopback output, in FPGA ticks.
LOOPBACK_LATENCY_TICKS = 2


class Routing:
    """Crossbar, neuron labels and the input queue of one chip."""

    def __init__(self, p: Profile, rm: RegisterMap, bus: RegisterBus):
        self.p, self.rm, self.bus = p, rm, bus
        self.crossbar = bus.view("routing", "crossbar")
        self.generators = Generators(p.background_generators)
        self.reset()

    def reset(self) -> None:
        self._pending_t = np.zeros(0, np.int64)      # looped-back events still in flight
        self._pending_l = np.zeros(0, np.uint16)
        self.inputs = Events.empty()                 # input events of steps not yet run
        self.generators.reset()

    def crossbar_config(self) -> dict:
        return self.rm.register("routing", "crossbar").decode(int(self.crossbar[0]))

    def take_input(self, start: int, until: int, in_times: np.ndarray, in_labels: np.ndarray, xbar: dict) -> None:
        """Input events of an advance from `start` to `until` (playback events
        and the background generators') join the queue; with the crossbar's
        loopback on, playback events also head back to the host."""
        if xbar["loopback"] and len(in_times):
            self._pending_t = np.concatenate([self._pending_t, in_times + LOOPBACK_LATENCY_TICKS])
            self._pending_l = np.concatenate([self._pending_l, in_labels.astype(np.uint16)])
        bg = Events.empty()
        if self.p.background_generators:
            gregs = self.rm.register("routing", "generator").decode(self.bus.view("routing", "generator"))
            seed = int(self.bus.view("routing", "generator_seed")[0])
            bg = self.generators.events(gregs, seed, start, until)
        ext = Events(in_times, in_labels.astype(np.int32), np.full(len(in_times), K.SRC_EXTERNAL, np.int32))
        self.inputs = Events.merge(self.inputs, ext, bg)

    def looped_back(self, until: int) -> tuple[np.ndarray, np.ndarray]:
        """Loopback events that reach the output by tick `until` (removed from the flight)."""
        t, lab = self._pending_t, self._pending_l
        due = t <= until
        self._pending_t, self._pending_l = t[~due], lab[~due]
        return t[due], lab[due]

    def generators_on(self) -> bool:
        return bool(self.p.background_generators) and bool(np.any(
            self.rm.register("routing", "generator").field("enable").extract(self.bus.view("routing", "generator"))))

    def emitting(self) -> np.ndarray:
        """Neurons whose spikes leave them (neuron.config.spike_out and an enabled output label)."""
        cfg = self.bus.view("neuron", "config")
        lab = self.bus.view("routing", "neuron_label")
        return ((self.rm.register("neuron", "config").field("spike_out").extract(cfg) == 1)
                & (self.rm.register("routing", "neuron_label").field("enable").extract(lab) == 1))

    def labels(self) -> np.ndarray:
        lab = self.bus.view("routing", "neuron_label")
        return self.rm.register("routing", "neuron_label").field("label").extract(lab)

    def recorded(self, spikes_t: np.ndarray, spikes_n: np.ndarray, xbar: dict) -> tuple[np.ndarray, np.ndarray]:
        """Spikes to the host: those of emitting neurons while the crossbar records, with their labels."""
        if not len(spikes_t) or not xbar["record"]:
            return np.zeros(0, np.int64), np.zeros(0, np.uint16)
        sel = self.emitting()[spikes_n]
        return spikes_t[sel], self.labels()[spikes_n[sel]].astype(np.uint16)

    def update_loss_counters(self, lost: int, synapses_lost: int) -> None:
        """The routing block's loss counters (saturating at their field's maximum)."""
        top = self.rm.register("routing", "spike_loss").field("count").limit
        self.bus.view("routing", "spike_loss")[0] = min(lost, top)
        self.bus.view("routing", "synapse_loss")[0] = synapses_lost
