"""Shared helpers of the analog-core tests: a chip driven through its register
bus (the same path the executor takes), and the documented transfer functions
written out independently of twin.analog (docs/model.md)."""
from __future__ import annotations

import numpy as np

from isa.profiles import profile as lookup
from twin.chip import Chip

TICK = 8e-9


class Bench:
    """A twin chip with register helpers (writes must all be accepted)."""

    def __init__(self, profile="dls", serial=1, seed=0, **opts):
        self.chip = Chip(profile, serial, seed, **opts)
        self.p = self.chip.profile
        self.rm = self.chip.regmap
        self.bus = self.chip.bus
        self.pm = "capmem" if self.p.param_memory == "capmem" else "floating_gate"

    def write(self, block, reg, flat_idx, words):
        addr = self.rm.addresses(block, reg, np.atleast_1d(flat_idx))
        words = np.broadcast_to(np.asarray(words, np.int64), addr.shape).astype(np.uint32)
        res = self.bus.write(addr, words, np.full(len(addr), 0xF, np.uint8))
        assert (res.reason == 0).all(), res.reason

    def read(self, block, reg, flat_idx):
        addr = self.rm.addresses(block, reg, np.atleast_1d(flat_idx))
        res = self.bus.read(addr)
        assert (res.reason == 0).all(), res.reason
        return res.values

    def field_words(self, block, reg, **fields):
        return self.rm.register(block, reg).encode(**fields)

    def cells(self, neurons, **values):
        """Per-neuron cells by name: value in LSB."""
        K = len(self.p.neuron_cells)
        for name, v in values.items():
            idx = np.asarray(neurons) * K + self.p.neuron_cells.index(name)
            self.write(self.pm, "neuron", idx, v)

    def global_cells(self, **values):
        for name, v in values.items():
            self.write(self.pm, "global", [self.p.global_cells.index(name)], v)

    def neurons(self, neurons, **fields):
        self.write("neuron", "config", neurons, self.field_words("neuron", "config", **fields))

    def drivers(self, rows, **fields):
        self.write("synapse_driver", "config", rows, self.field_words("synapse_driver", "config", **fields))

    def synapses(self, weights, labels):
        """Full (arrays * rows, columns) matrices."""
        p = self.p
        shifts = 8 * np.arange(4)
        pack = lambda a: (np.asarray(a, np.int64).reshape(-1, 4) << shifts).sum(axis=1)
        self.write("synapse", "weights", np.arange(weights.size // 4), pack(weights))
        self.write("synapse", "labels", np.arange(labels.size // 4), pack(labels))
        del p

    def advance(self, until, times=(), labels=()):
        return self.chip.advance(until, np.asarray(times, np.int64), np.asarray(labels, np.int64))


# ---------------------------------------------------------------- documented transfer functions
def volts(profile, value):
    p = lookup(profile) if isinstance(profile, str) else profile
    return value / 1022 * p.analog.v_max


def amps(profile, value):
    p = lookup(profile) if isinstance(profile, str) else profile
    return value / 1022 * p.analog.i_max


def tau_of(profile, value):
    """tau = tau_full_scale * i_max / I(value)."""
    p = lookup(profile) if isinstance(profile, str) else profile
    return p.analog.tau_full_scale * p.analog.i_max / amps(p, value)


def lsb_for_volts(profile, v):
    p = lookup(profile) if isinstance(profile, str) else profile
    return int(round(v / p.analog.v_max * 1022))


def lsb_for_tau(profile, tau):
    p = lookup(profile) if isinstance(profile, str) else profile
    return int(round(p.analog.tau_full_scale / tau * 1022))


def pair_bench(serial: int = 9) -> Bench:
    """An ideal dls chip (mismatch off) set up for one correlation pair: neuron 0
    spikes on an event to row 1 (label 0, weight 63); synapse (row 0, column 0),
    label 5, weight 0, pairs row-0 events with those spikes; cells settled."""
    b = Bench("dls", serial=serial, mismatch=False)
    b.write(b.pm, "config", [0], b.field_words(b.pm, "config", enable=1, settle=0))
    b.cells([0], v_leak=lsb_for_volts(b.p, 0.3), v_threshold=lsb_for_volts(b.p, 0.5),
            v_reset=lsb_for_volts(b.p, 0.3), i_bias_leak=lsb_for_tau(b.p, 10e-6),
            i_bias_syn_exc_tau=lsb_for_tau(b.p, 2e-6), i_bias_syn_exc_gm=1022)
    b.neurons([0], enable=1, refractory=255, refractory_clock=4)
    b.write("routing", "neuron_label", [0], b.field_words("routing", "neuron_label", label=0x3FF, enable=1))
    W, L = np.zeros((32, 32), int), np.zeros((32, 32), int)
    W[1, 0] = 63
    L[0, 0] = 5
    b.synapses(W, L)
    b.drivers([0, 1], enable=1, gain=15)
    b.global_cells(i_bias_correlation=1022, v_correlation_store=1022,
                   v_correlation_baseline=lsb_for_volts(b.p, 1.0))
    b.advance(b.p.analog.step_ticks * 1000)
    return b
