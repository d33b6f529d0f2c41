"""Register map of the HICANN-DLS prototype (profile `dls`).

Known from the real chip: PPU memory at word index 0, PPU control at 0x0002_0000
and status at 0x0002_0001.  Everything else is placed by this project."""
from isa.profiles import PROFILES

from . import _blocks as b
from ._blocks import CHIP_ID_BASE, LINK_BASE
from ._model import RegisterMap

P = PROFILES["dls"]

REGISTER_MAP = RegisterMap("dls", (
    b.ppu(P, "ppu", 0x0000_0000, control_offset=0x0002_0000),
    b.chip_id(P, CHIP_ID_BASE),
    b.link(P, LINK_BASE),
    b.neuron(P, 0x0003_0000),
    b.param_memory(P, 0x0004_0000),
    b.synapse_driver(P, 0x0005_0000),
    b.synapse_array(P, 0x0006_0000),
    b.correlation(P, 0x0007_0000),
    b.madc(P, 0x0008_0000),
    b.routing(P, 0x0009_0000),
), "HICANN-DLS prototype: 32 neurons, 32x32 synapses, one PPU with one vector slice.")
