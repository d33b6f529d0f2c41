"""Typed coordinates: where on a chip a container lives.

A coordinate holds indices; the register map of the connected chip gives their
ranges and addresses, so the same coordinate types serve every generation and
an index outside the chip's range is a CoordinateError naming the range.

    NeuronOnChip(3)                     neuron 3
    SynapseQuadOnChip(row=5, quad=2)    synapses 8..11 of row 5 of array 0
    SynapseRowOnChip(row=5)             a whole row (all quads)
    CapMemCellOnChip(3, "v_leak")       a per-neuron parameter cell
    CapMemGlobalCellOnChip("v_ref")     a chip-wide parameter cell
    PPUMemoryWordOnChip(0x400, ppu=0)   a word of PPU memory
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isa.profiles import profile as lookup_profile
from isa.regmap import RegisterMap

from .errors import CoordinateError


class Coordinate:
    """Base: subclasses give the flat element index of the container's registers."""

    def index(self, regmap: RegisterMap, block: str, register: str):
        raise TypeError(f"{type(self).__name__} does not address {block}.{register}")

    def block(self, name: str, regmap: RegisterMap) -> str:
        """Block actually holding a container's registers (PPU coordinates pick the PPU)."""
        return name

    def addresses(self, regmap: RegisterMap, container_type) -> np.ndarray:
        out = []
        for block, register in container_type.registers(regmap):
            block = self.block(block, regmap)
            reg = regmap.register(block, register)
            index = self.index(regmap, block, register)
            if isinstance(index, tuple) and len(index) != len(reg.shape):
                raise CoordinateError(f"{type(self).__name__} does not address {block}.{register} "
                                      f"({container_type.__name__}): that register is indexed by "
                                      f"{len(reg.shape)} number(s) (shape {reg.shape}), a {type(self).__name__} "
                                      f"gives {len(index)}; use the coordinate of that register")
            try:
                flat = reg.flat_index(index)
            except IndexError:
                raise CoordinateError(f"{self} is outside {regmap.profile}'s {block}.{register} "
                                      f"(shape {reg.shape})") from None
            out.append(regmap.block(block).base + reg.offset + flat)
        return np.array(out, dtype=np.uint64)

    @classmethod
    def size(cls, regmap: RegisterMap) -> int:
        raise TypeError(f"{cls.__name__} has no fixed range")


@dataclass(frozen=True)
class NeuronOnChip(Coordinate):
    neuron: int

    def index(self, regmap, block, register):
        return (self.neuron,)

    @classmethod
    def size(cls, regmap):
        return lookup_profile(regmap.profile).neurons


@dataclass(frozen=True)
class SynapseQuadOnChip(Coordinate):
    row: int
    quad: int
    array: int = 0

    def index(self, regmap, block, register):
        return (self.array, self.row, self.quad)


@dataclass(frozen=True)
class SynapseRowOnChip(Coordinate):
    """A synapse row; containers at it span every quad of the row."""

    row: int
    array: int = 0

    def addresses(self, regmap, container_type):
        p = lookup_profile(regmap.profile)
        out = []
        for block, register in container_type.registers(regmap):
            reg = regmap.register(block, register)
            try:
                first = reg.flat_index((self.array, self.row, 0))
            except IndexError:
                raise CoordinateError(f"{self} is outside {regmap.profile}'s synapse array "
                                      f"({p.synapse_arrays} x {p.rows} rows)") from None
            out.append(regmap.block(block).base + reg.offset + first + np.arange(p.quads_per_row))
        return np.concatenate(out).astype(np.uint64)


@dataclass(frozen=True)
class SynapseDriverOnChip(Coordinate):
    row: int
    array: int = 0

    def index(self, regmap, block, register):
        return (self.array, self.row)


@dataclass(frozen=True)
class CapMemCellOnChip(Coordinate):
    neuron: int
    cell: int | str

    def index(self, regmap, block, register):
        cells = lookup_profile(regmap.profile).neuron_cells
        if isinstance(self.cell, str):
            if self.cell not in cells:
                raise CoordinateError(f"{regmap.profile} has no per-neuron cell {self.cell!r}; "
                                      f"cells: {', '.join(cells)}")
            return (self.neuron, cells.index(self.cell))
        return (self.neuron, self.cell)


@dataclass(frozen=True)
class CapMemGlobalCellOnChip(Coordinate):
    cell: int | str

    def index(self, regmap, block, register):
        cells = lookup_profile(regmap.profile).global_cells
        if isinstance(self.cell, str):
            if self.cell not in cells:
                raise CoordinateError(f"{regmap.profile} has no global cell {self.cell!r}; "
                                      f"cells: {', '.join(cells)}")
            return (cells.index(self.cell),)
        return (self.cell,)


@dataclass(frozen=True)
class GeneratorOnChip(Coordinate):
    generator: int

    def index(self, regmap, block, register):
        return (self.generator,)


def _ppu_block(name: str, ppu: int, regmap: RegisterMap) -> str:
    if name != "ppu":
        return name
    blocks = [b.name for b in regmap.blocks if b.name.startswith("ppu")]
    if not blocks:
        raise CoordinateError(f"{regmap.profile} has no plasticity processor")
    if not 0 <= ppu < len(blocks):
        raise CoordinateError(f"{regmap.profile} has PPU 0..{len(blocks) - 1}, not {ppu}")
    return blocks[ppu]


@dataclass(frozen=True)
class PPUMemoryWordOnChip(Coordinate):
    word: int
    ppu: int = 0

    def block(self, name, regmap):
        return _ppu_block(name, self.ppu, regmap)

    def index(self, regmap, block, register):
        return (self.word,)


@dataclass(frozen=True)
class PPUOnChip(Coordinate):
    ppu: int = 0

    def block(self, name, regmap):
        return _ppu_block(name, self.ppu, regmap)

    def index(self, regmap, block, register):
        return 0


@dataclass(frozen=True)
class ChipOnly(Coordinate):
    """The single instance of a chip-wide register (chip_id, crossbar, ...)."""

    def index(self, regmap, block, register):
        return 0
