"""Typed coordinates (host/coords.py): addresses from the register map, and
CoordinateError messages that name the chip's range."""
from __future__ import annotations

import re

import pytest

import host
from host import CoordinateError
from isa.profiles import PROFILES
from isa.regmap import register_map


def addr(regmap, block, register, flat):
    """Base + offset + flat index, from the map's data."""
    b = regmap.block(block)
    return b.base + b.register(register).offset + flat


@pytest.mark.parametrize("profile", PROFILES)
def test_addresses(profile):
    rm = register_map(profile)
    p = PROFILES[profile]
    q = p.quads_per_row
    pm = "capmem" if p.param_memory == "capmem" else "floating_gate"
    cells = len(p.neuron_cells)
    n, arr, row, quad = p.neurons - 1, p.synapse_arrays - 1, p.rows - 1, q - 1
    cases = [
        (host.NeuronOnChip(n), host.NeuronConfig, [addr(rm, "neuron", "config", n)]),
        (host.NeuronOnChip(n), host.SpikeCounter, [addr(rm, "neuron", "spike_counter", n)]),
        (host.SynapseQuadOnChip(row=row, quad=quad, array=arr), host.SynapseQuad,
         [addr(rm, "synapse", r, (arr * p.rows + row) * q + quad) for r in ("weights", "labels")]),
        (host.SynapseRowOnChip(row=row, array=arr), host.SynapseRow,
         [addr(rm, "synapse", r, (arr * p.rows + row) * q + k) for r in ("weights", "labels") for k in range(q)]),
        (host.SynapseDriverOnChip(row=row, array=arr), host.SynapseDriverConfig,
         [addr(rm, "synapse_driver", "config", arr * p.rows + row)]),
        (host.CapMemCellOnChip(n, p.neuron_cells[-1]), host.CapMemCell,
         [addr(rm, pm, "neuron", n * cells + cells - 1)]),
        (host.CapMemCellOnChip(2, 3), host.CapMemCell, [addr(rm, pm, "neuron", 2 * cells + 3)]),
        (host.CapMemGlobalCellOnChip(p.global_cells[1]), host.CapMemGlobalCell, [addr(rm, pm, "global", 1)]),
        (host.GeneratorOnChip(p.background_generators - 1), host.GeneratorConfig,
         [addr(rm, "routing", "generator", p.background_generators - 1)]),
        (host.ChipOnly(), host.CrossbarConfig, [addr(rm, "routing", "crossbar", 0)]),
        (host.ChipOnly(), host.ChipId, [addr(rm, "chip_id", "id", 0)]),
    ]
    ppus = [b.name for b in rm.blocks if b.name.startswith("ppu")]
    for k, block in enumerate(ppus):
        cases += [(host.PPUOnChip(k), host.PPUControl, [addr(rm, block, "control", 0)]),
                  (host.PPUOnChip(k), host.PPUStatus, [addr(rm, block, "status", 0)]),
                  (host.PPUMemoryWordOnChip(p.ppu_memory_words - 1, ppu=k), host.PPUMemoryWord,
                   [addr(rm, block, "memory", p.ppu_memory_words - 1)])]
    assert len(ppus) == p.ppus
    for coord, ctype, want in cases:
        assert coord.addresses(rm, ctype).tolist() == want, f"{coord} {ctype.__name__}"


def hx_error(coord, ctype):
    with pytest.raises(CoordinateError) as info:
        coord.addresses(register_map("hx"), ctype)
    assert isinstance(info.value, IndexError)       # CoordinateError is also an IndexError
    return str(info.value)


@pytest.mark.parametrize("coord, ctype, message", [
    (host.NeuronOnChip(512), host.NeuronConfig, "NeuronOnChip(neuron=512) is outside hx's neuron.config (shape (512,))"),
    (host.NeuronOnChip(-1), host.NeuronConfig, "NeuronOnChip(neuron=-1) is outside hx's neuron.config (shape (512,))"),
    (host.SynapseQuadOnChip(row=0, quad=64), host.SynapseQuad,
     "SynapseQuadOnChip(row=0, quad=64, array=0) is outside hx's synapse.weights (shape (2, 256, 64))"),
    (host.SynapseQuadOnChip(row=256, quad=0), host.SynapseQuad,
     "SynapseQuadOnChip(row=256, quad=0, array=0) is outside hx's synapse.weights (shape (2, 256, 64))"),
    (host.SynapseRowOnChip(row=256), host.SynapseRow,
     "SynapseRowOnChip(row=256, array=0) is outside hx's synapse array (2 x 256 rows)"),
    (host.SynapseRowOnChip(row=0, array=2), host.SynapseRow,
     "SynapseRowOnChip(row=0, array=2) is outside hx's synapse array (2 x 256 rows)"),
    (host.SynapseDriverOnChip(row=3, array=-1), host.SynapseDriverConfig,
     "SynapseDriverOnChip(row=3, array=-1) is outside hx's synapse_driver.config (shape (2, 256))"),
    (host.CapMemCellOnChip(0, 24), host.CapMemCell,
     "CapMemCellOnChip(neuron=0, cell=24) is outside hx's capmem.neuron (shape (512, 24))"),
    (host.CapMemGlobalCellOnChip(12), host.CapMemGlobalCell,
     "CapMemGlobalCellOnChip(cell=12) is outside hx's capmem.global (shape (12,))"),
    (host.GeneratorOnChip(8), host.GeneratorConfig,
     "GeneratorOnChip(generator=8) is outside hx's routing.generator (shape (8,))"),
    (host.PPUMemoryWordOnChip(4096, ppu=1), host.PPUMemoryWord,
     "PPUMemoryWordOnChip(word=4096, ppu=1) is outside hx's ppu_bottom.memory (shape (4096,))"),
    (host.PPUOnChip(2), host.PPUControl, "hx has PPU 0..1, not 2"),
], ids=lambda v: type(v).__name__ if not isinstance(v, str) else "")
def test_out_of_range_names_the_range(coord, ctype, message):
    assert hx_error(coord, ctype) == message


def test_unknown_cell_names_the_cells():
    msg = hx_error(host.CapMemCellOnChip(0, "v_nonsense"), host.CapMemCell)
    assert re.fullmatch(r"hx has no per-neuron cell 'v_nonsense'; cells: v_leak, v_reset, .*, i_spare2", msg)
    msg = hx_error(host.CapMemGlobalCellOnChip("nope"), host.CapMemGlobalCell)
    assert re.fullmatch(r"hx has no global cell 'nope'; cells: v_ref, .*", msg)


def test_hicann_has_no_ppu():
    with pytest.raises(CoordinateError, match=r"^hicann has no plasticity processor$"):
        host.PPUOnChip(0).addresses(register_map("hicann"), host.PPUControl)


def test_hicann_floating_gates_by_name():
    rm = register_map("hicann")
    cells = PROFILES["hicann"].neuron_cells
    assert host.CapMemCellOnChip(1, "v_t").addresses(rm, host.CapMemCell).tolist() == \
        [addr(rm, "floating_gate", "neuron", len(cells) + cells.index("v_t"))]


def test_writing_out_of_range_adds_nothing():
    with host.connect("twin:dls") as conn:
        p = conn.program()
        with pytest.raises(CoordinateError, match=r"^NeuronOnChip\(neuron=32\) is outside dls's neuron\.config "
                                                  r"\(shape \(32,\)\)$"):
            p.write(host.NeuronOnChip(32), host.NeuronConfig(enable=1))
        assert len(p) == 0
