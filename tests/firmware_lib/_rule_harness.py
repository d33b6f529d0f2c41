"""One firmware rule run in the twin's PPU interpreter, as the rule tests use it.

The firmware gets its inputs handed to it directly: the synapse array and
the correlation readings through twin.ppu.interp.VectorIO, the spike
counters through the register bus, served here from an array (the
interpreter returns Status.BUS for each access).  A test gives the same
inputs to the firmware and to the rule's NumPy reference."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import firmware
from isa.ppu.iomap import MAILBOX_ADDRESS, MAILBOX_STATES, RETURN_CODE_ADDRESS
from isa.profiles import PROFILES
from isa.regmap import register_map
from twin.ppu import interp as I


@dataclass
class Outcome:
    synapses: np.ndarray        # uint8 (rows, columns): the synapse bytes after the run
    resets: np.ndarray          # bool (rows, columns): the sensors the rule asked to reset
    rc: int                     # main's return code
    updates: int                # MB_UPDATES
    cycles: int                 # PPU cycles from reset to the final `wait`
    counters: np.ndarray        # the spike-counter words after the run (reset ones are 0)
    counter_resets: np.ndarray  # bool per neuron of the chip: counters the rule reset
    counter_reads: np.ndarray   # bool per neuron of the chip: counters the rule read
    memory: np.ndarray          # the PPU memory after the run (the mailbox's results and data)


def _word(mem, addr):
    return int.from_bytes(mem[addr:addr + 4].tobytes(), "big")


def _readings(p, x):
    return np.zeros((p.rows, p.columns), np.uint8) if x is None else np.array(x, np.uint8)


def run_rule(name: str, chip: str, synapses, causal=None, acausal=None, *, counters=None, mb: bytes | None = None,
             data=b"", command: str = "once", period_us: int = 0, iterations: int = 0, corr_cycles: int = 0,
             between=None, **params) -> Outcome:
    """Run rule `name` from reset until it returns: `command` with
    `iterations` every `period_us`, the mailbox from the parameters and
    `data` unless `mb` is given raw.  `counters`: the spike-counter word of
    every neuron of the chip (default zeros); `corr_cycles`: the cost of a
    correlation read (the profile's ppu_cadc_read_cycles on the chip).
    `between(mem, updates)` is called while the rule sleeps after each update
    but the last (a period must leave it time to sleep), as a host would
    rewrite the mailbox."""
    p = PROFILES[chip]
    R, C = p.rows, p.columns
    mem = np.zeros(p.ppu_memory_bytes, np.uint8)
    image = firmware.build(name, chip)
    mem[:len(image)] = np.frombuffer(image, np.uint8)
    if mb is None:
        mb = firmware.mailbox(name, chip, command=command, period_us=period_us, iterations=iterations, data=data,
                              **params)
    mem[MAILBOX_ADDRESS:MAILBOX_ADDRESS + len(mb)] = np.frombuffer(mb, np.uint8)
    io = I.VectorIO(np.ascontiguousarray(synapses, np.uint8).view("<u4").astype(np.uint32),
                    np.zeros((R, C // 4), np.uint32), _readings(p, causal), _readings(p, acausal),
                    np.zeros((R, C), np.uint8), np.zeros((2, R), np.uint8), I.io_space_of(p.ppu_slices))
    rm = register_map(chip)
    counter_at = rm.address("neuron", "spike_counter", 0)
    reset_at = rm.address("neuron", "spike_counter_reset", 0)
    words = np.zeros(p.neurons, np.uint32) if counters is None else np.array(counters, np.uint32)
    reads, resets = np.zeros(p.neurons, bool), np.zeros(p.neurons, bool)
    st = I.new_state()
    vec = I.new_vector_state(p.ppu_slices)
    decoded = I.predecode_memory(mem)
    # With `between`, the run stops every half period to look for a sleeping rule.
    step = 10 ** 8 if between is None else period_us * p.ppu_clock_hz // 2_000_000
    limit, seen = step, 0
    while True:
        status = I.run(mem, st, limit, decoded=decoded, vec=vec, io=io, corr_cycles=corr_cycles)
        if between is not None and status in (I.Status.SLEEPING, I.Status.MAX_CYCLES) \
                and _word(mem, firmware.field("state")[0]) == MAILBOX_STATES["running"] and limit < 10 ** 8:
            updates = _word(mem, firmware.field("updates")[0])
            if status == I.Status.SLEEPING and updates != seen:
                between(mem, updates)
                seen = updates
            limit += step
            continue
        if status != I.Status.BUS:
            break
        addr = int(st[I.S_BUS_ADDR])
        if st[I.S_BUS_WRITE]:
            n = addr - reset_at
            assert 0 <= n < p.neurons and int(st[I.S_BUS_DATA]) == 1, \
                f"unexpected register-bus write of {int(st[I.S_BUS_DATA]):#x} to word {addr:#x}"
            words[n], resets[n] = 0, True
            I.complete_bus(st, None)
        else:
            n = addr - counter_at
            assert 0 <= n < p.neurons, f"unexpected register-bus read of word {addr:#x}"
            reads[n] = True
            I.complete_bus(st, int(words[n]))
    assert status == I.Status.SLEEPING, I.STATUS_NAMES.get(status, status)
    return Outcome(io.weights.astype("<u4").view(np.uint8).reshape(R, C), (io.resets & 1) != 0,
                   _word(mem, RETURN_CODE_ADDRESS), _word(mem, firmware.field("updates")[0]),
                   int(st[I.S_WAIT_CYCLES]), words, resets, reads, mem)


def update_cycles(name: str, chip: str, synapses, causal=None, acausal=None, **kwargs) -> int:
    """PPU cycles of one update as the rule loop runs it periodically (two
    back-to-back updates minus one): the update and the loop's bookkeeping."""
    one, two = (run_rule(name, chip, synapses, causal, acausal, command="periodic", iterations=n, **kwargs)
                for n in (1, 2))
    assert one.updates == 1 and two.updates == 2
    return two.cycles - one.cycles


def random_arrays(chip: str, seed: int):
    """Random causal and acausal readings, synapse bytes and signed offsets of one PPU's array."""
    p = PROFILES[chip]
    rng = np.random.default_rng(seed)
    shape = (p.rows, p.columns)
    return (rng.integers(0, 256, shape, dtype=np.uint8), rng.integers(0, 256, shape, dtype=np.uint8),
            rng.integers(0, 256, shape, dtype=np.uint8), rng.integers(-128, 128, shape))


def trace_readings(chip: str, diff: int, base: int = 128):
    """Readings whose halved difference acausal/2 - causal/2 is `diff` everywhere."""
    p = PROFILES[chip]
    shape = (p.rows, p.columns)
    return np.full(shape, base, np.uint8), np.full(shape, base + 2 * diff, np.uint8)


def offsets_data(offsets, per_synapse: bool) -> np.ndarray:
    """The data area's bytes for offsets (rows, columns): every row, or the first for all."""
    return (offsets if per_synapse else offsets[0]).astype(np.int8).view(np.uint8)


def assert_same_bytes(got, want) -> None:
    bad = np.argwhere(got != want)
    assert not len(bad), (f"{len(bad)} synapses differ, first at {tuple(bad[0])}: firmware {got[tuple(bad[0])]}, "
                          f"reference {want[tuple(bad[0])]}")
