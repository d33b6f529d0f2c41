"""Register map of the BrainScaleS-1 HICANN (profile `hicann`).

The real HICANN is configured over JTAG and a HICANN-ARQ link with its own
address space; the twin presents it on the same word-addressed register bus as
the other generations, with floating gates in place of capacitive memory and
no plasticity processor or correlation readout."""
from isa.profiles import PROFILES

from . import _blocks as b
from ._blocks import CHIP_ID_BASE, LINK_BASE
from ._model import RegisterMap

P = PROFILES["hicann"]

REGISTER_MAP = RegisterMap("hicann", (
    b.chip_id(P, CHIP_ID_BASE),
    b.link(P, LINK_BASE),
    b.neuron(P, 0x0001_0000),
    b.param_memory(P, 0x0002_0000),
    b.synapse_driver(P, 0x0003_0000),
    b.synapse_array(P, 0x0004_0000),
    b.madc(P, 0x0008_0000),
    b.routing(P, 0x0009_0000),
), "BrainScaleS-1 HICANN: 512 dendritic membranes, 2x224x256 synapses with 4-bit weights, floating gates.")
