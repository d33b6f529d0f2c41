"""The generated include files (firmware/include/) carry isa/'s values."""
from __future__ import annotations

import pytest

import firmware
from isa.ppu import core, iomap
from isa.ppu.asm import assemble
from isa.profiles import PROFILES
from isa.regmap import register_map


def symbols(chip):
    return assemble([("<t>", f'    .include "include/{chip}.inc"\n')],
                    include_dirs=[str(firmware.FIRMWARE_DIR)]).symbols


@pytest.mark.parametrize("chip", [n for n, p in PROFILES.items() if p.ppus])
def test_include_symbols_are_isa_values(chip):
    s, p, rm = symbols(chip), PROFILES[chip], register_map(chip)
    assert s["MAILBOX"] == iomap.MAILBOX_ADDRESS and s["RETURN_CODE"] == iomap.RETURN_CODE_ADDRESS
    for name, off, size, _ in iomap.MAILBOX_LAYOUT:
        assert s[f"MB_{name.upper()}"] == iomap.MAILBOX_ADDRESS + off and s[f"MB_{name.upper()}_SIZE"] == size
    for name, addr in core.VECTORS.items():
        assert s[f"VEC_{name.upper()}"] == addr
    space = iomap.io_space_size(p.ppu_slices)
    assert (s["IO_WEIGHTS"], s["IO_CAUSAL"], s["IO_ACAUSAL"]) == (0, 2 * space, 3 * space)
    assert s["VECTOR_BYTES"] == 16 * p.ppu_slices and s["ROW_HALVES"] == 2 * p.rows
    assert s["PPU_CYCLES_PER_US"] * 1e6 == p.ppu_clock_hz
    assert s["REG_SPIKE_COUNTER"] == 0x8000_0000 | rm.address("neuron", "spike_counter", 0) << 2
    assert s[f"CHIP_{chip.upper()}"] == 1


def test_mailbox_fields_do_not_overlap_and_fit():
    spans = sorted((off, off + size, name) for name, off, size, _ in iomap.MAILBOX_LAYOUT)
    for (a0, a1, an), (b0, b1, bn) in zip(spans, spans[1:]):
        assert a1 <= b0, f"{an} overlaps {bn}"
    assert spans[-1][1] <= iomap.MAILBOX_SIZE
