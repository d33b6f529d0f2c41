"""Configuration containers: typed values that encode to register words through
the register map of the connected chip.

A register container's fields are the register's fields (a test checks them
against the map for every profile).  A field left at None takes the register's
reset value from the map, so no default is written twice.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from isa.profiles import profile as lookup_profile
from isa.regmap import RegisterMap


class Container:
    @classmethod
    def registers(cls, regmap: RegisterMap) -> list[tuple[str, str]]:
        raise TypeError(f"{cls.__name__} names no registers")

    def encode(self, regmap: RegisterMap) -> list[int]:
        raise TypeError(f"{type(self).__name__} cannot be encoded")

    @classmethod
    def decode(cls, regmap: RegisterMap, words: np.ndarray):
        raise TypeError(f"{cls.__name__} cannot be decoded")


class RegisterContainer(Container):
    """One register; dataclass fields named like the register's fields."""

    BLOCK: ClassVar[str]
    REGISTER: ClassVar[str]

    @classmethod
    def registers(cls, regmap):
        return [(cls.BLOCK, cls.REGISTER)]

    @classmethod
    def map_register(cls, regmap: RegisterMap):
        """The register in `regmap`.  BLOCK "ppu" stands for every PPU block of
        the chip (ppu, or ppu_top and ppu_bottom); their layouts are identical."""
        block = cls.BLOCK
        if block == "ppu" and not regmap.has("ppu"):
            block = next((b.name for b in regmap.blocks if b.name.startswith("ppu")), block)
        return regmap.register(block, cls.REGISTER)

    def encode(self, regmap):
        reg = self.map_register(regmap)
        values = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        try:
            return [reg.encode(**values)]
        except (ValueError, KeyError) as exc:
            raise ValueError(f"{type(self).__name__}: {exc.args[0]}") from None

    @classmethod
    def decode(cls, regmap, words):
        reg = cls.map_register(regmap)
        return cls(**reg.decode(int(words[0])))


def _register_container(block: str, register: str):
    def wrap(cls):
        cls.BLOCK, cls.REGISTER = block, register
        return dataclass(cls)
    return wrap


@_register_container("neuron", "config")
class NeuronConfig(RegisterContainer):
    enable: int | None = None
    exc_enable: int | None = None
    inh_enable: int | None = None
    exp_enable: int | None = None
    adapt_enable: int | None = None
    spike_out: int | None = None
    readout: int | None = None
    refractory: int | None = None
    refractory_clock: int | None = None


@_register_container("neuron", "spike_counter")
class SpikeCounter(RegisterContainer):
    count: int | None = None
    overflow: int | None = None


@_register_container("neuron", "spike_counter_reset")
class SpikeCounterReset(RegisterContainer):
    reset: int | None = 1


@_register_container("synapse_driver", "config")
class SynapseDriverConfig(RegisterContainer):
    enable: int | None = None
    inhibitory: int | None = None
    gain: int | None = None
    source: int | None = None
    use_address: int | None = None
    address: int | None = None


@dataclass
class CapMemCell(Container):
    """A per-neuron parameter cell (capacitive memory or floating gate)."""

    value: int = 0
    REGISTER: ClassVar[str] = "neuron"

    @classmethod
    def registers(cls, regmap):
        return [(_param_block(regmap), cls.REGISTER)]

    def encode(self, regmap):
        try:
            return [regmap.register(_param_block(regmap), self.REGISTER).encode(value=self.value)]
        except (ValueError, KeyError) as exc:
            raise ValueError(f"{type(self).__name__}: {exc.args[0]}") from None

    @classmethod
    def decode(cls, regmap, words):
        return cls(**regmap.register(_param_block(regmap), cls.REGISTER).decode(int(words[0])))


@dataclass
class CapMemGlobalCell(CapMemCell):
    """A chip-wide parameter cell."""

    REGISTER: ClassVar[str] = "global"


def _param_block(regmap: RegisterMap) -> str:
    return "capmem" if lookup_profile(regmap.profile).param_memory == "capmem" else "floating_gate"


@_register_container("routing", "crossbar")
class CrossbarConfig(RegisterContainer):
    loopback: int | None = None
    recurrent: int | None = None
    record: int | None = None


@_register_container("routing", "neuron_label")
class NeuronLabel(RegisterContainer):
    label: int | None = None
    enable: int | None = None


@_register_container("routing", "generator")
class GeneratorConfig(RegisterContainer):
    enable: int | None = None
    poisson: int | None = None
    label: int | None = None
    period: int | None = None


@_register_container("madc", "config")
class MADCConfig(RegisterContainer):
    enable: int | None = None
    source: int | None = None
    neuron: int | None = None
    period: int | None = None


@_register_container("madc", "readout_mux")
class ReadoutMuxConfig(RegisterContainer):
    """Analog readout multiplexer: the signal on the readout pad (oscilloscope)."""

    source: int | None = None
    neuron: int | None = None
    cell: int | None = None


@_register_container("routing", "generator_seed")
class GeneratorSeed(RegisterContainer):
    seed: int | None = None


@_register_container("routing", "fifo_status")
class FifoStatus(RegisterContainer):
    dropped: int | None = None
    level: int | None = None


@_register_container("routing", "spike_loss")
class SpikeLossCount(RegisterContainer):
    count: int | None = None


@_register_container("routing", "synapse_loss")
class SynapseLossCount(RegisterContainer):
    count: int | None = None


@_register_container("correlation", "config")
class CorrelationConfig(RegisterContainer):
    enable: int | None = None
    adc_offset: int | None = None


@_register_container("correlation", "reset_row")
class CorrelationResetRow(RegisterContainer):
    """Write at ChipOnly(): resets the traces of one row (or all, all=1)."""

    row: int | None = None
    array: int | None = None
    all: int | None = None


@_register_container("correlation", "reset_quad")
class CorrelationResetQuad(RegisterContainer):
    """Write at ChipOnly(): resets the traces of the synapses of one quad picked by `mask`."""

    row: int | None = None
    array: int | None = None
    quad: int | None = None
    mask: int | None = None


@_register_container("correlation", "membrane")
class MembraneCADC(RegisterContainer):
    """A neuron's membrane voltage through its column ADC (read at NeuronOnChip)."""

    value: int | None = None


@dataclass
class CorrelationQuad(Container):
    """Causal and acausal column-ADC readings (baseline minus trace) of the four
    synapses of a quad (read at SynapseQuadOnChip)."""

    causal: tuple[int, int, int, int] = (0, 0, 0, 0)
    acausal: tuple[int, int, int, int] = (0, 0, 0, 0)

    @classmethod
    def registers(cls, regmap):
        return [("correlation", "causal"), ("correlation", "acausal")]

    @classmethod
    def decode(cls, regmap, words):
        c = regmap.register("correlation", "causal").decode(int(words[0]))
        a = regmap.register("correlation", "acausal").decode(int(words[1]))
        return cls(tuple(c[f"causal{k}"] for k in range(4)), tuple(a[f"acausal{k}"] for k in range(4)))


@dataclass
class CapMemConfig(Container):
    """Parameter-memory controller configuration (capmem or floating gates)."""

    enable: int | None = None
    settle: int | None = None

    @classmethod
    def registers(cls, regmap):
        return [(_param_block(regmap), "config")]

    def encode(self, regmap):
        reg = regmap.register(_param_block(regmap), "config")
        return [reg.encode(**{k: v for k, v in dataclasses.asdict(self).items() if v is not None})]

    @classmethod
    def decode(cls, regmap, words):
        return cls(**regmap.register(_param_block(regmap), "config").decode(int(words[0])))


@_register_container("chip_id", "id")
class ChipId(RegisterContainer):
    profile: int | None = None
    version: int | None = None


@_register_container("ppu", "control")
class PPUControl(RegisterContainer):
    inhibit_reset: int | None = None
    force_clock_on: int | None = None
    force_clock_off: int | None = None


@_register_container("ppu", "status")
class PPUStatus(RegisterContainer):
    sleeping: int | None = None
    fault: int | None = None


@_register_container("ppu", "memory")
class PPUMemoryWord(RegisterContainer):
    data: int | None = None


@dataclass
class SynapseQuad(Container):
    """Four neighbouring synapses of a row: weight and address label of each
    (plus the calibration bits where the chip has them)."""

    weights: tuple[int, int, int, int] = (0, 0, 0, 0)
    labels: tuple[int, int, int, int] = (0, 0, 0, 0)
    calib_amp: tuple[int, int, int, int] = (0, 0, 0, 0)
    calib_time: tuple[int, int, int, int] = (0, 0, 0, 0)

    @classmethod
    def registers(cls, regmap):
        return [("synapse", "weights"), ("synapse", "labels")]

    def encode(self, regmap):
        w, lab = regmap.register("synapse", "weights"), regmap.register("synapse", "labels")
        wv = {f"weight{k}": int(self.weights[k]) for k in range(4)}
        lv = {f"label{k}": int(self.labels[k]) for k in range(4)}
        if "calib_amp0" in w.by_name:
            wv.update({f"calib_amp{k}": int(self.calib_amp[k]) for k in range(4)})
            lv.update({f"calib_time{k}": int(self.calib_time[k]) for k in range(4)})
        elif any(self.calib_amp) or any(self.calib_time):
            raise ValueError(f"{regmap.profile} synapses have no calibration bits")
        return [w.encode(**wv), lab.encode(**lv)]

    @classmethod
    def decode(cls, regmap, words):
        w = regmap.register("synapse", "weights").decode(int(words[0]))
        lab = regmap.register("synapse", "labels").decode(int(words[1]))
        return cls(tuple(w[f"weight{k}"] for k in range(4)), tuple(lab[f"label{k}"] for k in range(4)),
                   tuple(w.get(f"calib_amp{k}", 0) for k in range(4)),
                   tuple(lab.get(f"calib_time{k}", 0) for k in range(4)))


@dataclass
class SynapseRow(Container):
    """A whole synapse row as arrays (one entry per column), encoded vectorised.
    Use with SynapseRowOnChip; write many rows with `synapse_words`."""

    weights: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @classmethod
    def registers(cls, regmap):
        return [("synapse", "weights"), ("synapse", "labels")]

    def encode(self, regmap):
        return list(synapse_words(regmap, np.asarray(self.weights)[None], np.asarray(self.labels)[None])
                    .reshape(2, -1).ravel())

    @classmethod
    def decode(cls, regmap, words):
        p = lookup_profile(regmap.profile)
        w, lab = np.asarray(words).reshape(2, p.quads_per_row)
        return cls(*synapse_values(regmap, w, lab))

    def __eq__(self, other):
        return (isinstance(other, SynapseRow) and np.array_equal(self.weights, other.weights)
                and np.array_equal(self.labels, other.labels))


def synapse_words(regmap: RegisterMap, weights: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Pack (rows, columns) weight and label arrays into (2, rows, quads) words
    (calibration bits zero).  Layout and ranges come from the register map."""
    p = lookup_profile(regmap.profile)
    weights, labels = np.asarray(weights, np.int64), np.asarray(labels, np.int64)
    if weights.shape[-1] != p.columns or labels.shape != weights.shape:
        raise ValueError(f"{p.name}: synapse arrays need shape (rows, {p.columns}), got "
                         f"{weights.shape} and {labels.shape}")
    out = []
    for name, arr, reg, prefix in (("weights", weights, "weights", "weight"), ("labels", labels, "labels", "label")):
        try:
            out.append(regmap.register("synapse", reg).pack_lanes(prefix, arr))
        except ValueError:
            limit = regmap.register("synapse", reg).field(f"{prefix}0").limit
            bad = np.argwhere((arr < 0) | (arr > limit))
            row, col = (int(i) for i in bad[0][-2:]) if bad.shape[1] >= 2 else (0, int(bad[0][-1]))
            raise ValueError(f"{p.name}: {name} must lie in 0..{limit}; {len(bad)} do not, the first at row {row}, "
                             f"column {col}: {int(arr[tuple(bad[0])])}") from None
    return np.stack(out)


def synapse_values(regmap: RegisterMap, weight_words: np.ndarray, label_words: np.ndarray):
    """Inverse of synapse_words: (…, quads) words -> (…, columns) weights and labels."""
    return (regmap.register("synapse", "weights").unpack_lanes("weight", weight_words).astype(np.int64),
            regmap.register("synapse", "labels").unpack_lanes("label", label_words).astype(np.int64))
