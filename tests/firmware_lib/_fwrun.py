"""Run a firmware rule once in the PPU interpreter on given synapse-array contents."""
from __future__ import annotations

import numpy as np

import firmware
from isa.ppu.iomap import MAILBOX_ADDRESS, RETURN_CODE_ADDRESS
from isa.profiles import PROFILES
from twin.ppu import interp as I


def word(mem, addr):
    return int.from_bytes(mem[addr:addr + 4].tobytes(), "big")


def run_rule(chip, name, mb, causal=None, acausal=None, synapses=None):
    """Run rule `name` with mailbox `mb` until it sleeps at its end; returns
    (memory, VectorIO after the run, return code).  Arrays default to zeros."""
    p = PROFILES[chip]
    R, C, slices = p.rows, p.columns, p.ppu_slices
    z = np.zeros((R, C), np.uint8)
    causal, acausal, synapses = (z if x is None else x for x in (causal, acausal, synapses))
    mem = np.zeros(p.ppu_memory_bytes, np.uint8)
    image = firmware.build(name, chip)
    mem[:len(image)] = np.frombuffer(image, np.uint8)
    mem[MAILBOX_ADDRESS:MAILBOX_ADDRESS + len(mb)] = np.frombuffer(mb, np.uint8)
    io = I.VectorIO(np.ascontiguousarray(synapses, np.uint8).view("<u4").astype(np.uint32),
                    np.zeros((R, C // 4), np.uint32), np.array(causal, np.uint8), np.array(acausal, np.uint8),
                    np.zeros((R, C), np.uint8), np.zeros((2, R), np.uint8), I.io_space_of(slices))
    st = I.new_state()
    status = I.run(mem, st, 10 ** 8, vec=I.new_vector_state(slices), io=io)
    assert status == I.Status.SLEEPING, I.STATUS_NAMES.get(status, status)
    return mem, io, word(mem, RETURN_CODE_ADDRESS)
