"""Register map of BrainScaleS-2 (profile `hx`).

Known from the real chip: PPU memory at 0x0280_0000 (top) and 0x0380_0000
(bottom) plus word index, control at base | 0x0020_0000, status at
base | 0x0020_0001.  Everything else is placed by this project."""
from isa.profiles import PROFILES

from . import _blocks as b
from ._blocks import CHIP_ID_BASE, LINK_BASE
from ._model import RegisterMap

P = PROFILES["hx"]

REGISTER_MAP = RegisterMap("hx", (
    b.chip_id(P, CHIP_ID_BASE),
    b.link(P, LINK_BASE),
    b.neuron(P, 0x0001_0000),
    b.param_memory(P, 0x0002_0000),
    b.synapse_driver(P, 0x0003_0000),
    b.synapse_array(P, 0x0004_0000),
    b.correlation(P, 0x0006_0000),
    b.madc(P, 0x0008_0000),
    b.routing(P, 0x0009_0000),
    b.ppu(P, "ppu_top", 0x0280_0000, control_offset=0x0020_0000),
    b.ppu(P, "ppu_bottom", 0x0380_0000, control_offset=0x0020_0000),
), "BrainScaleS-2: 512 neurons, 2x256x256 synapses, two PPUs with eight vector slices each.")
