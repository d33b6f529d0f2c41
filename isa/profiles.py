"""Chip generations: one record per profile with geometry, clocks, bit widths
and speed-up.  Every other module (register maps, twin, host) reads these."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    chip: str
    code: int                      # value of chip_id.id.profile
    neurons: int                   # total neuron circuits (dendritic membranes on hicann)
    synapse_arrays: int            # independent synapse arrays (hemispheres / blocks)
    rows: int                      # synapse rows per array
    columns: int                   # synapse columns per array (= neurons per array)
    weight_bits: int
    label_bits: int                # bits of the per-synapse address label
    param_memory: str              # "capmem" or "floating_gate"
    param_bits: int                # bits per parameter cell
    neuron_cells: tuple[str, ...]  # per-neuron parameter cells, in cell order
    global_cells: tuple[str, ...]  # chip-wide parameter cells
    ppus: int                      # plasticity processors (0 = none)
    ppu_slices: int                # vector slices per PPU (16-byte vectors each)
    ppu_clock_hz: float
    ppu_memory_bytes: int
    speedup: float                 # biological time / hardware time
    background_generators: int
    correlation: bool              # per-synapse correlation sensors present
    fifo_depth: int                # output event FIFO entries
    version: int = 1               # model version reported in chip_id

    @property
    def synapses(self) -> int:
        return self.synapse_arrays * self.rows * self.columns

    @property
    def quads_per_row(self) -> int:
        """Synapses are packed four to a register word."""
        return self.columns // 4

    @property
    def ppu_memory_words(self) -> int:
        return self.ppu_memory_bytes // 4

    def bio_to_hw(self, seconds: float) -> float:
        return seconds / self.speedup

    def hw_to_bio(self, seconds: float) -> float:
        return seconds * self.speedup


# BrainScaleS-2 style per-neuron capacitive-memory cells: 8 voltages, 16 currents.
_CAPMEM_NEURON_CELLS = (
    # voltages
    "v_leak", "v_reset", "v_threshold", "v_syn_exc_rev", "v_syn_inh_rev", "v_exp",
    "v_readout_offset", "v_spare0",
    # currents
    "i_bias_leak", "i_bias_reset", "i_bias_syn_exc_tau", "i_bias_syn_inh_tau",
    "i_bias_syn_exc_gm", "i_bias_syn_inh_gm", "i_bias_adapt_a", "i_bias_adapt_b",
    "i_bias_adapt_tau", "i_bias_exp", "i_bias_readout", "i_bias_threshold_comp",
    "i_bias_refractory", "i_spare0", "i_spare1", "i_spare2",
)
_CAPMEM_GLOBAL_CELLS = (
    "v_ref", "v_synapse_bias", "i_bias_synapse_driver", "i_bias_correlation",
    "v_correlation_baseline", "v_correlation_store", "i_bias_correlation_ramp",
    "v_adc_ramp_bias", "i_bias_adc", "i_bias_madc", "v_spare0", "i_spare0",
)
# BrainScaleS-1 HICANN floating-gate rows per neuron (a subset of the real 24).
_FG_NEURON_CELLS = (
    "e_l", "e_syni", "e_synx", "v_t", "v_reset_local", "v_exp", "v_syntci", "v_syntcx",
    "i_gl", "i_gladapt", "i_fire", "i_radapt", "i_rexp", "i_convi", "i_convx",
    "i_intbbi", "i_intbbx", "i_pl", "i_bexp", "i_spikeamp", "spare0", "spare1", "spare2", "spare3",
)
_FG_GLOBAL_CELLS = (
    "v_reset", "v_dllres", "v_bout", "v_bexp", "v_fac", "v_dtc", "v_thigh", "v_tlow",
    "v_gmax0", "v_gmax1", "v_gmax2", "v_gmax3",
)

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(name="dls", chip="HICANN-DLS prototype", code=1, neurons=32, synapse_arrays=1,
                rows=32, columns=32, weight_bits=6, label_bits=6, param_memory="capmem",
                param_bits=10, neuron_cells=_CAPMEM_NEURON_CELLS, global_cells=_CAPMEM_GLOBAL_CELLS,
                ppus=1, ppu_slices=1, ppu_clock_hz=98e6, ppu_memory_bytes=16 * 1024,
                speedup=1000.0, background_generators=4, correlation=True, fifo_depth=256),
        Profile(name="hicann", chip="BrainScaleS-1 HICANN", code=2, neurons=512, synapse_arrays=2,
                rows=224, columns=256, weight_bits=4, label_bits=4, param_memory="floating_gate",
                param_bits=10, neuron_cells=_FG_NEURON_CELLS, global_cells=_FG_GLOBAL_CELLS,
                ppus=0, ppu_slices=0, ppu_clock_hz=0.0, ppu_memory_bytes=0,
                speedup=10000.0, background_generators=8, correlation=False, fifo_depth=1024),
        Profile(name="hx", chip="BrainScaleS-2 (HX)", code=3, neurons=512, synapse_arrays=2,
                rows=256, columns=256, weight_bits=6, label_bits=6, param_memory="capmem",
                param_bits=10, neuron_cells=_CAPMEM_NEURON_CELLS, global_cells=_CAPMEM_GLOBAL_CELLS,
                ppus=2, ppu_slices=8, ppu_clock_hz=250e6, ppu_memory_bytes=16 * 1024,
                speedup=1000.0, background_generators=8, correlation=True, fifo_depth=1024),
    )
}

PROFILE_BY_CODE: dict[int, Profile] = {p.code: p for p in PROFILES.values()}


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown chip profile {name!r}; choose one of: {', '.join(PROFILES)}") from None
