"""Block descriptions shared by the chip generations.

Each function returns one Block for a profile, placed at `base`.  The profile
modules (dls.py, hicann.py, hx.py) choose which blocks a chip has and where.
Layouts that the public BrainScaleS sources leave open (neuron configuration,
correlation, routing, ADC) are this project's definitions, kept the same across
generations.
"""
from __future__ import annotations

from isa.ppu.iomap import STOP_REASONS
from isa.profiles import Profile

from ._model import Block, Field, Register, field_table as F


#: chip_id and link sit at the same address on every generation, so a host can
#: identify an unknown chip before it knows which register map applies.
CHIP_ID_BASE = 0x000F_0000
LINK_BASE = 0x000F_0100

#: Event label convention (every generation): bits [15:6] of a 16-bit event
#: label are the event address, which selects the synapse-driver row
#: (array * rows + row), or every row whose driver takes that address
#: (`synapse_driver.config.use_address`: one event reaches several rows, e.g. an
#: excitatory and an inhibitory one); the low `label_bits` bits (6, or 4 on
#: hicann) are matched against the synapses' address labels.  An address no
#: row takes reaches no driver.
LABEL_ROW_SHIFT = 6
EVENT_ADDRESSES = 1 << (16 - LABEL_ROW_SHIFT)
LABEL_CONVENTION = ("event label bits [15:6] are the event address: the driver row array * rows + row, "
                    "or the rows set to take it (use_address); the low label bits are matched against the "
                    "synapse address labels")


def chip_id(p: Profile, base: int) -> Block:
    return Block("chip_id", base, (
        Register("id", 0, F(("profile", 0, 8, "chip profile code (1 dls, 2 hicann, 3 hx)", p.code),
                            ("version", 8, 8, "twin model version", p.version)),
                 "Chip identification.", access="ro"),
        Register("serial", 1, F(("serial", 0, 32, "chip serial number (seeds the fixed-pattern noise)")),
                 "Serial number of this chip instance.", access="ro"),
    ), "Identification of the chip instance.")


LINK_COUNTERS = (
    ("frames", "frames received intact"),
    ("crc_errors", "frames dropped for a header or payload CRC mismatch"),
    ("truncated", "frames dropped because their bytes stopped arriving"),
    ("oversized", "frames dropped for a length field above the maximum"),
    ("bad_version", "frames dropped for an unknown format version"),
    ("wrong_direction", "frames dropped for direction flags of the other side"),
    ("sequence_gaps", "sequence-number gaps seen (frames lost upstream)"),
    ("bytes_discarded", "bytes discarded while searching for a frame start"),
    ("word_errors", "program words rejected with an error notification"),
    ("programs", "programs executed"),
    ("program_limits", "programs ended at one of their limits (wall time, chip time, output)"),
    ("notices_dropped", "notices not sent because they came faster than the notice rate"),
    ("locks_broken", "chip locks broken because a client held one longer than the server allows"),
    ("resumes", "sessions of this chip resumed by their client after a lost connection"),
)


def link(p: Profile, base: int) -> Block:
    regs = tuple(Register(name, i, F(("count", 0, 32, doc)), doc.capitalize() + ".", access="ro")
                 for i, (name, doc) in enumerate(LINK_COUNTERS))
    return Block("link", base, regs,
                 "Statistics of the host link as seen by the chip side, counted since the twin started; "
                 "a chip reset does not clear them (they describe the link, which outlives chip resets).")


def synapse_array(p: Profile, base: int) -> Block:
    """Weights and address labels, four synapses per word, one byte each."""
    shape = (p.synapse_arrays, p.rows, p.quads_per_row)
    cal = 8 - p.weight_bits
    wfields, lfields = [], []
    for k in range(4):
        wfields.append(Field(f"weight{k}", 8 * k, p.weight_bits, f"weight of synapse {k} of the quad"))
        lfields.append(Field(f"label{k}", 8 * k, p.label_bits, f"address label of synapse {k} of the quad"))
        if cal:
            wfields.append(Field(f"calib_amp{k}", 8 * k + p.weight_bits, cal,
                                 f"amplitude calibration bits of synapse {k}"))
            lfields.append(Field(f"calib_time{k}", 8 * k + p.label_bits, 8 - p.label_bits,
                                 f"time-constant calibration bits of synapse {k}"))
    quads = p.synapse_arrays * p.rows * p.quads_per_row
    return Block("synapse", base, (
        Register("weights", 0, tuple(wfields),
                 "Synapse weights; index (array, row, quad), synapse k of a quad is column 4*quad+k.",
                 shape=shape),
        Register("labels", quads, tuple(lfields),
                 "Synapse address labels: a synapse fires when the event label's low bits match "
                 f"(convention: {LABEL_CONVENTION}).",
                 shape=shape),
    ), "The synapse array(s).")


def synapse_driver(p: Profile, base: int) -> Block:
    return Block("synapse_driver", base, (
        Register("config", 0, F(("enable", 0, 1, "row receives events"),
                                ("inhibitory", 1, 1, "row drives the inhibitory input (else excitatory)"),
                                ("gain", 2, 4, "row amplitude gain: amplitude x gain/8 (0..15)", 8),
                                ("source", 6, 2, "events accepted: 0 external (playback), 1 background "
                                 "generators, 2 recurrent (neuron spikes), 3 any", 3),
                                ("use_address", 8, 1, "row takes the events of event address `address` "
                                 "instead of those naming its own row"),
                                ("address", 9, 10, "event address (label bits [15:6]) the row takes with "
                                 "use_address; several rows may take one address")),
                 "Per-row synapse driver; index (array, row).", shape=(p.synapse_arrays, p.rows)),
    ), f"Synapse drivers: one per row, decoding incoming events ({LABEL_CONVENTION}).")


def neuron(p: Profile, base: int) -> Block:
    n = p.neurons
    return Block("neuron", base, (
        Register("config", 0, F(("enable", 0, 1, "neuron circuit active"),
                                ("exc_enable", 1, 1, "excitatory synaptic input connected", 1),
                                ("inh_enable", 2, 1, "inhibitory synaptic input connected", 1),
                                ("exp_enable", 3, 1, "exponential term of AdEx on"),
                                ("adapt_enable", 4, 1, "adaptation current on"),
                                ("spike_out", 5, 1, "spikes leave the neuron to the event router", 1),
                                ("readout", 6, 1, "membrane connected to the analog readout"),
                                ("refractory", 8, 8, "refractory period in refractory-clock ticks", 20),
                                ("refractory_clock", 16, 4, "refractory counter tick = 2**value FPGA ticks of 8 ns", 4)),
                 "Neuron configuration; index neuron.", shape=(n,)),
        Register("spike_counter", n, F(("count", 0, 24, "spikes emitted since the last reset"),
                                       ("overflow", 24, 1, "count saturated")),
                 "Per-neuron spike counter.", access="ro", shape=(n,)),
        Register("spike_counter_reset", 2 * n, F(("reset", 0, 1, "write 1 to clear the counter")),
                 "Per-neuron spike counter reset.", access="wo", shape=(n,)),
    ), "Neuron circuits.")


def param_memory(p: Profile, base: int) -> Block:
    """Capacitive memory (dls, hx) or floating gates (hicann)."""
    name = "capmem" if p.param_memory == "capmem" else "floating_gate"
    limit = (1 << p.param_bits) - 1
    refresh_note = " 1023 disables refresh (the cell then decays)." if p.param_memory == "capmem" else ""
    cells = len(p.neuron_cells)
    value = lambda doc: F(("value", 0, p.param_bits, doc, 0, limit))
    return Block(name, base, (
        Register("neuron", 0, value("cell value 0..1022." + refresh_note),
                 "Per-neuron parameter cells; index (neuron, cell); cell names in the profile.",
                 shape=(p.neurons, cells)),
        Register("global", p.neurons * cells, value("cell value." + refresh_note),
                 "Chip-wide parameter cells; index cell.", shape=(len(p.global_cells),)),
        Register("config", p.neurons * cells + len(p.global_cells),
                 F(("enable", 0, 1, "cells driven (else outputs float at zero)", 1),
                   ("settle", 1, 4, "settling time constant after a write: 2**value x 0.25 us", 2)),
                 "Memory controller configuration."),
    ), "Analog parameter storage: " + ("10-bit capacitive memory cells." if name == "capmem"
                                       else "floating gates (BrainScaleS-1)."))


def correlation(p: Profile, base: int) -> Block:
    shape = (p.synapse_arrays, p.rows, p.quads_per_row)
    quads = p.synapse_arrays * p.rows * p.quads_per_row
    trace = lambda kind: tuple(Field(f"{kind}{k}", 8 * k, 8, f"ADC value of synapse {k}: baseline minus trace")
                               for k in range(4))
    return Block("correlation", base, (
        Register("config", 0, F(("enable", 0, 1, "sensors accumulate spike pairs", 1),
                                ("adc_offset", 1, 8, "column ADC baseline offset", 0)),
                 "Correlation sensor configuration."),
        Register("reset_row", 1, F(("row", 0, 9, "row to reset", 0, p.rows - 1),
                                   ("array", 9, 1, "array of the row", 0, p.synapse_arrays - 1),
                                   ("all", 10, 1, "reset every sensor of the chip")),
                 "Write to reset the causal and acausal traces of one row (or all).", access="wo"),
        Register("reset_quad", 2, F(("row", 0, 9, "row of the quad", 0, p.rows - 1),
                                    ("array", 9, 1, "array of the row", 0, p.synapse_arrays - 1),
                                    ("quad", 10, 7, "quad within the row", 0, p.quads_per_row - 1),
                                    ("mask", 17, 4, "bit k resets synapse k of the quad", 15)),
                 "Write to reset the causal and acausal traces of single synapses.", access="wo"),
        Register("causal", 16, trace("causal"),
                 "Causal traces through the column ADC, 8 bit; reading converts. Index (array, row, quad).",
                 access="ro", shape=shape),
        Register("acausal", 16 + quads, trace("acausal"),
                 "Acausal traces through the column ADC, 8 bit; reading converts. Index (array, row, quad).",
                 access="ro", shape=shape),
        Register("membrane", 16 + 2 * quads, F(("value", 0, 8, "column ADC reading of the membrane voltage")),
                 "Membrane voltage of each neuron through its column ADC, 8 bit; reading converts. Index neuron.",
                 access="ro", shape=(p.neurons,)),
    ), "Per-synapse correlation sensors and their column-ADC readout.")


def madc(p: Profile, base: int) -> Block:
    return Block("madc", base, (
        Register("config", 0, F(("enable", 0, 1, "sampling runs and sample packs go to the host"),
                                ("source", 1, 2, "0 selected neuron's membrane, 1 analog readout mux, 2 test ramp"),
                                ("neuron", 3, 10, "neuron sampled when source=0", 0, p.neurons - 1),
                                ("period", 13, 16, "sample period in FPGA ticks (8 ns); 0 = 1", 125)),
                 "Membrane ADC: samples one signal as a stream of sample packs."),
        Register("readout_mux", 1, F(("source", 0, 2, "0 off, 1 neuron membrane, 2 synaptic input "
                                      "(excitatory minus inhibitory current, 1 V per uA), 3 parameter cell"),
                                     ("neuron", 2, 10, "neuron whose signal is routed", 0, p.neurons - 1),
                                     ("cell", 12, 5, "per-neuron parameter cell routed when source=3", 0,
                                      len(p.neuron_cells) - 1)),
                 "Analog readout multiplexer driving the readout pad (oscilloscope)."),
    ), "Analog readout and the membrane ADC.")


def routing(p: Profile, base: int) -> Block:
    g = p.background_generators
    return Block("routing", base, (
        Register("crossbar", 0, F(("loopback", 0, 1, "route external input events straight to the host output"),
                                  ("recurrent", 1, 1, "route neuron spikes through the routing table to the drivers"),
                                  ("record", 2, 1, "send neuron spikes to the host", 1)),
                 "Event crossbar switches."),
        Register("fifo_status", 1, F(("dropped", 0, 24, "events dropped because the output FIFO was full "
                                      "(saturates)"),
                                     ("level", 24, 8, "FIFO fill level / depth * 255")),
                 f"Output event FIFO status ({p.fifo_depth} entries, one event leaves every "
                 f"{p.analog.fifo_drain_ticks} FPGA ticks); drops are also reported to the host "
                 "as `event_loss` messages.", access="ro"),
        Register("spike_loss", 2, F(("count", 0, 32, "events into the synapse drivers lost in the event network")),
                 "Events lost by the spike-loss distortion (a twin option, zero unless enabled).", access="ro"),
        Register("synapse_loss", 3, F(("count", 0, 32, "synapses lost at mapping (they never fire)")),
                 "Synapses lost by the synapse-loss distortion (a twin option, zero unless enabled).", access="ro"),
        Register("neuron_label", 16, F(("label", 0, 16, "event label emitted when the neuron spikes; "
                                        "bits [15:6] select the driver row of recurrent events"),
                                       ("enable", 16, 1, "neuron emits events", 1)),
                 "Per-neuron output label; index neuron.", shape=(p.neurons,)),
        Register("generator", 16 + p.neurons, F(("enable", 0, 1, "generator running"),
                                                ("poisson", 1, 1, "Poisson process (else regular)"),
                                                ("label", 2, 16, "event label"),
                                                ("period", 18, 14, "mean interval in units of 16 FPGA ticks "
                                                 "(128 ns); 0 = off")),
                 "Background spike generators; index generator.", shape=(g,)),
        Register("generator_seed", 16 + p.neurons + g, F(("seed", 0, 32, "random seed of the Poisson generators", 1)),
                 "Seed shared by the background generators."),
    ), "Event routing: crossbar, neuron labels, background generators.")


def ppu(p: Profile, name: str, base: int, control_offset: int) -> Block:
    words = p.ppu_memory_words
    return Block(name, base, (
        Register("memory", 0, F(("data", 0, 32, "memory word (big-endian bytes)")),
                 "PPU SRAM, one register per 32-bit word; index word.", shape=(words,)),
        Register("control", control_offset, F(("inhibit_reset", 0, 1, "1 releases reset: the core runs"),
                                              ("force_clock_on", 1, 1, "force the core clock on"),
                                              ("force_clock_off", 2, 1, "force the core clock off")),
                 "PPU control."),
        Register("status", control_offset + 1, F(("sleeping", 0, 1, "the core executes `wait`"),
                                                 ("fault", 1, 1, "the core stopped on an unhandled interrupt")),
                 "PPU status.", access="ro"),
        # Debug access for firmware authors (this project's definition).
        Register("debug", control_offset + 2, F(("halt", 0, 1, "1 halts the core before its next instruction; "
                                                 "0 lets it run (reads 1 while halted)"),
                                                ("step", 1, 1, "write 1 while halted: execute one instruction "
                                                 "(reads 0)")),
                 "Debug control: halt and single-step."),
        Register("debug_pc", control_offset + 3, F(("pc", 0, 32, "address of the next instruction")),
                 "Program counter.", access="ro"),
        Register("debug_instruction", control_offset + 4, F(("word", 0, 32, "instruction word at debug_pc")),
                 "Next instruction word.", access="ro"),
        Register("debug_cycles", control_offset + 5, F(("count", 0, 32, "low 32 bits of the cycle counter "
                                                       "(the time base TBL)")),
                 "Cycles since the core was released from reset, low word.", access="ro"),
        Register("debug_cycles_high", control_offset + 6, F(("count", 0, 32, "high 32 bits (TBU)")),
                 "Cycles since the core was released from reset, high word.", access="ro"),
        Register("debug_stop", control_offset + 7,
                 F(("reason", 0, 4, "; ".join(f"{k} {v}" for k, v in STOP_REASONS.items()))),
                 "Why the core is not executing.", access="ro"),
        Register("debug_fault", control_offset + 8, F(("address", 0, 32, "faulting instruction or data address "
                                                     "of the last stop; with reason 11 the vector "
                                                     "the core keeps entering")),
                 "Fault address.", access="ro"),
        Register("debug_wait_cycles", control_offset + 9, F(("count", 0, 32, "low 32 bits of the cycle counter "
                                                           "when the core last executed `wait`")),
                 "Cycle count at the last `wait` (time asleep not included).", access="ro"),
        # The core's pins (nux RTL processor/pu.sv gin/gout/goe, processor/interrupt_ctrl.sv
        # doorbell): how the chip wires them is not public, so the host drives the inputs here.
        Register("gpio_in", control_offset + 10,
                 F(("pins", 0, 32, "levels of the core's general-purpose input pins, what firmware reads "
                    "as GIN (SPR 65); pins 0-3 request the external-input interrupt as ICCR (SPR 68) "
                    "selects")),
                 "General-purpose input pins of the core, driven by the host."),
        Register("doorbell", control_offset + 11,
                 F(("level", 0, 1, "the core's doorbell input: a 0 -> 1 change requests the doorbell "
                    "interrupt (vector 0x24) while the core's MSR[EE] is set")),
                 "Doorbell input of the core."),
        Register("gpio_out", control_offset + 12, F(("pins", 0, 32, "GOUT (SPR 66) as firmware wrote it")),
                 "General-purpose output pins of the core.", access="ro"),
        Register("gpio_enable", control_offset + 13, F(("pins", 0, 32, "GOE (SPR 67): 1 = pin driven")),
                 "Output enables of the general-purpose pins.", access="ro"),
        Register("debug_gpr", control_offset + 16, F(("value", 0, 32, "register value")),
                 "General purpose registers r0-r31; index register.", access="ro", shape=(32,)),
    ), "Plasticity processing unit: memory, control, status and debug access.")
