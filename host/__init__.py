"""bss-twin host library: drive a BrainScaleS chip (or its twin) over the wire.

    import host
    with host.connect("twin:dls?serial=3") as conn:
        prog = conn.program()
        t = prog.read(host.ChipOnly(), host.ChipId)
        conn.run(prog)
        print(t.value)
"""
from . import protocol_twin as _protocol_twin  # registers twin:// with pyserial
from .connection import Connection, RunResult, connect
from .containers import (CapMemCell, CapMemConfig, CapMemGlobalCell, ChipId, CorrelationConfig,
                         CorrelationQuad, CorrelationResetQuad, CorrelationResetRow, CrossbarConfig, FifoStatus,
                         GeneratorConfig, GeneratorSeed, MADCConfig, MembraneCADC, NeuronConfig, NeuronLabel,
                         PPUControl, PPUMemoryWord, PPUStatus, ReadoutMuxConfig, SpikeCounter, SpikeCounterReset,
                         SpikeLossCount, SynapseDriverConfig, SynapseLossCount, SynapseQuad, SynapseRow,
                         synapse_values, synapse_words)
from .coords import (CapMemCellOnChip, CapMemGlobalCellOnChip, ChipOnly, GeneratorOnChip, NeuronOnChip,
                     PPUMemoryWordOnChip, PPUOnChip, SynapseDriverOnChip, SynapseQuadOnChip, SynapseRowOnChip)
from .errors import BssError, ChipError, CoordinateError, LinkError, LinkTimeout, ProgramLimit, RejectedWord
from .errors import LockBroken, LockTimeout, ProgramCancelled
from .program import Program, Ticket
from .ppu import PPU, PPUFault, PPUState, PPUTimeout
from . import units

__all__ = [
    "connect", "Connection", "RunResult", "Program", "Ticket", "units",
    "PPU", "PPUFault", "PPUState", "PPUTimeout",
    "BssError", "ChipError", "CoordinateError", "LinkError", "LinkTimeout", "ProgramLimit", "RejectedWord",
    "LockBroken", "LockTimeout", "ProgramCancelled",
    "CapMemCell", "CapMemConfig", "CapMemGlobalCell", "ChipId", "CorrelationConfig", "CorrelationQuad",
    "CorrelationResetQuad", "CorrelationResetRow", "CrossbarConfig", "FifoStatus", "GeneratorConfig",
    "GeneratorSeed", "MADCConfig", "MembraneCADC", "NeuronConfig", "NeuronLabel", "PPUControl", "PPUMemoryWord",
    "PPUStatus", "ReadoutMuxConfig", "SpikeCounter", "SpikeCounterReset", "SpikeLossCount",
    "SynapseDriverConfig", "SynapseLossCount", "SynapseQuad", "SynapseRow", "synapse_values", "synapse_words",
    "CapMemCellOnChip", "CapMemGlobalCellOnChip", "ChipOnly", "GeneratorOnChip", "NeuronOnChip",
    "PPUMemoryWordOnChip", "PPUOnChip", "SynapseDriverOnChip", "SynapseQuadOnChip", "SynapseRowOnChip",
]
