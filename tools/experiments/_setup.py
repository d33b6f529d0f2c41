"""Chip set-up shared by the plasticity experiments: neurons, synapse array
(PPU 0's, all rows excitatory, source 0), correlation sensors, recording."""
from __future__ import annotations

import numpy as np
from isa.regmap import LABEL_ROW_SHIFT
from isa.wire import FPGA_TICK_S

TICK_S = FPGA_TICK_S
#: Output label of neuron n: OUTPUT_LABEL_BASE + n (event addresses from 1008 up, which no driver row
#: takes), so a recorded spike's label names its neuron.
OUTPUT_LABEL_BASE = 0xFC00


def neuron_of(labels: np.ndarray) -> np.ndarray:
    """The neuron of each recorded spike label (labels OUTPUT_LABEL_BASE + n)."""
    return np.asarray(labels).astype(np.int64) - OUTPUT_LABEL_BASE


def row_label(rows, address_label=0):
    """The event label that reaches driver row(s) `rows` with synapse address label `address_label`."""
    return (np.asarray(rows, np.int64) << LABEL_ROW_SHIFT) | address_label


def configure_array(conn, weights: np.ndarray, labels: np.ndarray, *, tau_syn: float, gm: int, gm_inh: int,
                    driver_gain: int, refractory: int, corr_bias: int, corr_store: int,
                    corr_baseline: int = 900, tau_mem: float = 10e-6) -> None:
    """Write everything in one program and let the cells settle (200 us).

    weights, labels: (arrays x rows, columns); tau_syn, tau_mem in hardware
    seconds (through the transfer functions of docs/model.md, uncalibrated);
    gm / gm_inh: the synaptic gain cells; refractory in units of 16 ticks
    (128 ns); corr_*: the sensors' global cells (docs/model.md, "Correlation sensors")."""
    import host
    from host.calibration_fit import nominal_cell
    p, rm = conn.profile, conn.regmap
    cell = lambda q, v: int(nominal_cell(q, v, p, None))
    cells = {p.cell_for("e_l"): cell("leak", 0.40), p.cell_for("v_th"): cell("threshold", 0.60),
             p.cell_for("v_reset"): cell("reset", 0.35), p.cell_for("i_leak"): cell("tau_mem", tau_mem),
             p.cell_for("i_tau_exc"): cell("tau_syn_exc", tau_syn), p.cell_for("i_tau_inh"): cell("tau_syn_inh", tau_syn),
             p.cell_for("i_gm_exc"): gm, p.cell_for("i_gm_inh"): gm_inh}
    words = host.synapse_words(rm, weights, labels)
    prog = conn.program()
    prog.write(host.ChipOnly(), host.CapMemConfig(enable=1))
    for name, value in (("i_bias_correlation", corr_bias), ("v_correlation_store", corr_store),
                        ("v_correlation_baseline", corr_baseline)):
        prog.write(host.CapMemGlobalCellOnChip(name), host.CapMemGlobalCell(value))
    prog.write(host.ChipOnly(), host.CorrelationConfig(enable=1))
    prog.write_words(rm.addresses("synapse", "weights"), words[0].ravel())
    prog.write_words(rm.addresses("synapse", "labels"), words[1].ravel())
    for r in range(p.rows):
        prog.write(host.SynapseDriverOnChip(r, 0),
                   host.SynapseDriverConfig(enable=1, inhibitory=0, gain=driver_gain, source=0))
    for n in range(p.neurons):
        for name, value in cells.items():
            prog.write(host.CapMemCellOnChip(n, name), host.CapMemCell(value))
        prog.write(host.NeuronOnChip(n), host.NeuronConfig(enable=1, refractory=refractory, refractory_clock=4))
        prog.write(host.NeuronOnChip(n), host.NeuronLabel(label=OUTPUT_LABEL_BASE + n, enable=1))
    prog.write(host.ChipOnly(), host.CrossbarConfig(loopback=0, recurrent=0, record=1))
    prog.timer_reset()
    prog.wait_until(int(round(200e-6 / TICK_S)))          # cells settle, membranes rest
    conn.run(prog)


def serial_list(text: str) -> list[int]:
    """argparse type of --serials: comma-separated chip serials."""
    import argparse
    try:
        serials = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated integers expected, got {text!r}") from None
    if not serials:
        raise argparse.ArgumentTypeError("at least one serial")
    return serials
