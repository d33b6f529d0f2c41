"""Chip generations: one record per profile with geometry, clocks, bit widths,
speed-up, analog scales and mismatch magnitudes.  Every other module (register
maps, twin, host) reads these."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .wire import FPGA_TICK_S


@dataclass(frozen=True)
class Analog:
    """Analog scales of a generation: what the parameter cells mean and how
    finely the twin integrates.  Hardware units (volts, amperes, seconds of
    hardware time).  docs/model.md gives the transfer functions that use them."""

    step_ticks: int                # FPGA ticks (8 ns) per integration step of the analog core
    v_max: float                   # voltage cell full scale (value 1022), V
    i_max: float                   # current cell full scale (value 1022), A
    tau_full_scale: float          # a time-constant bias at full-scale current gives this tau, s
    delta_t_full_scale: float      # exponential slope factor Delta_T at full-scale i_bias_exp, V
    c_mem: float                   # membrane capacitance, F
    adapt_b_full_scale: float      # spike-triggered adaptation increment at full scale, A
    corr_tau_full_scale: float     # correlation time constant at full-scale i_bias_correlation, s
    corr_eta_full_scale: float     # correlation charge per pair at full-scale v_correlation_store, V
    corr_saturation: float         # correlation trace saturation voltage, V
    adc_v_max: float               # input range of the membrane ADC and column ADC (0..adc_v_max), V
    madc_bits: int                 # membrane ADC resolution
    cadc_bits: int                 # column ADC resolution
    settle_tau: float              # time constant of a cell settling after a write, per `settle` unit, s
    refresh_off_tau: float         # decay time constant of a cell with refresh disabled (1023), s
    fifo_drain_ticks: int          # the output FIFO sends one event every this many FPGA ticks

    @property
    def madc_lsb(self) -> float:
        """Volts per membrane-ADC code (nominal)."""
        return self.adc_v_max / (1 << self.madc_bits)

    @property
    def cadc_lsb(self) -> float:
        """Volts per column-ADC code (nominal)."""
        return self.adc_v_max / (1 << self.cadc_bits)

    def madc_volts(self, codes):
        """Membrane-ADC codes (`RunResult.madc["value"]`) as volts at the ADC's
        input: the nominal transfer code = V / adc_v_max * 2**madc_bits.  A real
        ADC has offset and gain errors of its own; the calibration measures them
        (host.calibration)."""
        return np.asarray(codes, dtype=np.float64) * self.madc_lsb

    def cadc_volts(self, codes):
        """Column-ADC codes (MembraneCADC, correlation readings) as volts, the
        nominal transfer (code = V / adc_v_max * 2**cadc_bits)."""
        return np.asarray(codes, dtype=np.float64) * self.cadc_lsb


@dataclass(frozen=True)
class Mismatch:
    """Magnitudes (standard deviations) of fixed-pattern and temporal noise.
    Fixed-pattern noise is drawn once per chip from its serial; temporal noise
    per run.  `Chip(..., mismatch=False)` zeroes every one of them."""

    cell_v_offset: float           # per-cell offset of voltage cells, V
    cell_v_gain: float             # per-cell relative gain error of voltage cells
    cell_i_offset: float           # per-cell offset of current cells, A
    cell_i_gain: float             # per-cell relative gain error of current cells
    cell_temporal: float           # temporal noise per run, in cell LSBs (capmem refresh noise)
    cell_write: float              # write-to-write variation, in cell LSBs (floating gates)
    synapse_amp: float             # per-synapse relative amplitude error
    corr_amp: float                # per-synapse relative correlation amplitude error
    corr_tau: float                # per-synapse log-normal sigma of the correlation time constant
    corr_asymmetry: float          # mean acausal/causal amplitude ratio minus one
    cadc_offset: float             # per-column ADC offset, LSB
    cadc_noise: float              # column ADC read noise, LSB
    madc_noise: float              # membrane ADC read noise, LSB
    spike_loss: float = 0.0        # default probability that an event into the drivers is lost
    synapse_loss: float = 0.0      # default fraction of synapses lost at mapping


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
    cell_roles: tuple[tuple[str, str], ...]   # (model role, per-neuron cell) pairs; see docs/model.md
    ppus: int                      # plasticity processors (0 = none)
    ppu_slices: int                # vector slices per PPU (16-byte vectors each)
    ppu_clock_hz: float
    ppu_memory_bytes: int
    speedup: float                 # biological time / hardware time
    background_generators: int
    correlation: bool              # per-synapse correlation sensors present
    fifo_depth: int                # output event FIFO entries
    analog: Analog                 # analog scales and the integration step
    mismatch: Mismatch             # fixed-pattern and temporal noise magnitudes
    version: int = 1               # model version reported in chip_id
    #: Extra PPU cycles of an fxvinx from a correlation space, on top of the
    #: instruction table's vector-I/O cost: the column ADC converts the row half
    #: when the instruction executes.  hx: ~400 cycles, the order of a full
    #: column-ADC row read on BrainScaleS-2 (an estimate: no cycle-exact public
    #: figure); dls: 0 (no figure known).  docs/ppu.md, "Cost model".
    ppu_cadc_read_cycles: int = 0

    @property
    def step_seconds(self) -> float:
        """Hardware seconds per analog integration step."""
        return self.analog.step_ticks * FPGA_TICK_S

    @property
    def synapses(self) -> int:
        return self.synapse_arrays * self.rows * self.columns

    @property
    def quads_per_row(self) -> int:
        """Synapses are packed four to a register word."""
        return self.columns // 4

    @property
    def cell_max(self) -> int:
        """The largest refreshed parameter-cell value (1022): value / cell_max is the
        fraction of full scale; cell_max + 1 switches a capmem cell's refresh off."""
        return (1 << self.param_bits) - 2

    @property
    def ppu_memory_words(self) -> int:
        return self.ppu_memory_bytes // 4

    def cell_for(self, role: str) -> str:
        """The per-neuron cell that sets a model parameter (e_l, v_th, i_leak, ...)."""
        for r, cell in self.cell_roles:
            if r == role:
                return cell
        raise KeyError(f"{self.name}: no cell for role {role!r}; roles: {', '.join(r for r, _ in self.cell_roles)}")

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
#: Which cell sets which model parameter (docs/model.md has the transfer functions):
#: voltages e_l (leak), v_reset, v_th (spike threshold), v_t (exponential threshold);
#: bias currents i_leak (membrane tau), i_tau_exc / i_tau_inh (synaptic taus),
#: i_gm_exc / i_gm_inh (synaptic gain), i_a / i_b / i_tau_w (adaptation), i_exp (Delta_T).
_CAPMEM_ROLES = (("e_l", "v_leak"), ("v_reset", "v_reset"), ("v_th", "v_threshold"), ("v_t", "v_exp"),
                 ("i_leak", "i_bias_leak"), ("i_tau_exc", "i_bias_syn_exc_tau"),
                 ("i_tau_inh", "i_bias_syn_inh_tau"), ("i_gm_exc", "i_bias_syn_exc_gm"),
                 ("i_gm_inh", "i_bias_syn_inh_gm"), ("i_a", "i_bias_adapt_a"), ("i_b", "i_bias_adapt_b"),
                 ("i_tau_w", "i_bias_adapt_tau"), ("i_exp", "i_bias_exp"))
_FG_ROLES = (("e_l", "e_l"), ("v_reset", "v_reset_local"), ("v_th", "v_t"), ("v_t", "v_exp"),
             ("i_leak", "i_gl"), ("i_tau_exc", "i_intbbx"), ("i_tau_inh", "i_intbbi"), ("i_gm_exc", "i_convx"),
             ("i_gm_inh", "i_convi"), ("i_a", "i_gladapt"), ("i_b", "i_fire"), ("i_tau_w", "i_radapt"),
             ("i_exp", "i_rexp"))
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

#: BrainScaleS-2 style capacitive memory (dls, hx): 96 ns steps (0.096 ms biological);
#: bias currents up to 1 uA set time constants of 0.5..500 us hardware.
_ANALOG_CAPMEM = Analog(step_ticks=12, v_max=1.2, i_max=1e-6, tau_full_scale=0.5e-6,
                        delta_t_full_scale=0.1, c_mem=2e-12, adapt_b_full_scale=1e-6,
                        corr_tau_full_scale=5e-6, corr_eta_full_scale=0.2, corr_saturation=0.9,
                        adc_v_max=1.2, madc_bits=10, cadc_bits=8, settle_tau=0.25e-6,
                        refresh_off_tau=1e-3, fifo_drain_ticks=2)
_MISMATCH_CAPMEM = Mismatch(cell_v_offset=0.010, cell_v_gain=0.02, cell_i_offset=3e-9, cell_i_gain=0.10,
                            cell_temporal=0.3, cell_write=0.0, synapse_amp=0.10, corr_amp=0.20,
                            corr_tau=0.30, corr_asymmetry=-0.10, cadc_offset=3.0, cadc_noise=1.0,
                            madc_noise=0.5)
#: BrainScaleS-1 floating gates at 10 000x: 8 ns steps (0.08 ms biological); bias
#: currents up to 2.5 uA set time constants of 0.1..100 us hardware (1 ms..1 s biological).
_ANALOG_FG = Analog(step_ticks=1, v_max=1.8, i_max=2.5e-6, tau_full_scale=0.1e-6,
                    delta_t_full_scale=0.1, c_mem=0.2e-12, adapt_b_full_scale=1e-6,
                    corr_tau_full_scale=0.5e-6, corr_eta_full_scale=0.05, corr_saturation=0.9,
                    adc_v_max=1.8, madc_bits=10, cadc_bits=8, settle_tau=0.25e-6,
                    refresh_off_tau=1e-3, fifo_drain_ticks=2)
_MISMATCH_FG = Mismatch(cell_v_offset=0.020, cell_v_gain=0.03, cell_i_offset=10e-9, cell_i_gain=0.20,
                        cell_temporal=0.3, cell_write=8.0, synapse_amp=0.20, corr_amp=0.0, corr_tau=0.0,
                        corr_asymmetry=0.0, cadc_offset=0.0, cadc_noise=0.0, madc_noise=0.5)

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(name="dls", chip="HICANN-DLS prototype", code=1, neurons=32, synapse_arrays=1,
                rows=32, columns=32, weight_bits=6, label_bits=6, param_memory="capmem",
                param_bits=10, neuron_cells=_CAPMEM_NEURON_CELLS, global_cells=_CAPMEM_GLOBAL_CELLS,
                cell_roles=_CAPMEM_ROLES,
                ppus=1, ppu_slices=1, ppu_clock_hz=98e6, ppu_memory_bytes=16 * 1024,
                speedup=1000.0, background_generators=4, correlation=True, fifo_depth=256,
                analog=_ANALOG_CAPMEM, mismatch=_MISMATCH_CAPMEM),
        Profile(name="hicann", chip="BrainScaleS-1 HICANN", code=2, neurons=512, synapse_arrays=2,
                rows=224, columns=256, weight_bits=4, label_bits=4, param_memory="floating_gate",
                param_bits=10, neuron_cells=_FG_NEURON_CELLS, global_cells=_FG_GLOBAL_CELLS,
                cell_roles=_FG_ROLES,
                ppus=0, ppu_slices=0, ppu_clock_hz=0.0, ppu_memory_bytes=0,
                speedup=10000.0, background_generators=8, correlation=False, fifo_depth=1024,
                analog=_ANALOG_FG, mismatch=_MISMATCH_FG),
        Profile(name="hx", chip="BrainScaleS-2 (HX)", code=3, neurons=512, synapse_arrays=2,
                rows=256, columns=256, weight_bits=6, label_bits=6, param_memory="capmem",
                param_bits=10, neuron_cells=_CAPMEM_NEURON_CELLS, global_cells=_CAPMEM_GLOBAL_CELLS,
                cell_roles=_CAPMEM_ROLES,
                ppus=2, ppu_slices=8, ppu_clock_hz=250e6, ppu_memory_bytes=16 * 1024, ppu_cadc_read_cycles=400,
                speedup=1000.0, background_generators=8, correlation=True, fifo_depth=1024,
                analog=_ANALOG_CAPMEM, mismatch=_MISMATCH_CAPMEM),
    )
}

PROFILE_BY_CODE: dict[int, Profile] = {p.code: p for p in PROFILES.values()}


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown chip profile {name!r}; choose one of: {', '.join(PROFILES)}") from None
