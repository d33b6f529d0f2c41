"""The twin's own view of a calibrated chip, shared by the calibration and
network tests: each quantity from the fixed pattern and the cell values the
chip holds through the documented transfer functions (docs/model.md,
"Parameter cells" and "Synapses"), independent of what a calibration measured."""
from __future__ import annotations

import numpy as np

from host.calibration import Targets
from host.calibration_fit import POTENTIALS, QUANTITIES, ROLE, psp_peak_factor
from host.calibration_measure import EXC_ROWS, INH_ROWS


def _chip(conn):
    """The twin behind an in-process connection (the test's view of the truth)."""
    return conn.transport._link.session.host.chip


def true_quantities(conn, targets: Targets, neurons, cells: dict | None = None) -> dict:
    """Each quantity of `neurons` by the documented transfer functions, from the
    chip's fixed pattern and the cell values it holds (its floating gates' write
    errors included), or from `cells` (quantity -> values) instead:

        cell output   value / 1022 * full scale * (1 + gain) + offset, at least 0
        tau           tau_full_scale * i_max / I
        PSP height    I(gm) * mean synapse factor of the volley rows / C * psp_peak_factor(target taus)
    """
    chip = _chip(conn)
    p, net = chip.profile, chip.core.net
    a = p.analog
    neurons = np.asarray(neurons)
    held = net.cells.target.reshape(p.neurons, len(p.neuron_cells))

    def output(q):
        k = p.neuron_cells.index(p.cell_for(ROLE[q]))
        value = held[neurons, k] if cells is None else np.asarray(cells[q], np.float64)
        full = a.i_max if p.neuron_cells[k].startswith("i_") else a.v_max
        return np.maximum(value / 1022 * full * (1 + net.fp.cell_gain[neurons, k]) + net.fp.cell_offset[neurons, k], 0)

    out = {q: output(q) for q in POTENTIALS}
    for q in ("tau_mem", "tau_syn_exc", "tau_syn_inh"):
        out[q] = a.tau_full_scale * a.i_max / output(q)
    array, column = neurons // p.columns, neurons % p.columns
    for q, rows, tau_s in (("psp_exc", EXC_ROWS, targets.tau_syn_exc), ("psp_inh", INH_ROWS, targets.tau_syn_inh)):
        factor = net.fp.synapse[(array * p.rows)[:, None] + rows[None, :], column[:, None]].mean(axis=1)
        out[q] = output(q) * factor / a.c_mem * psp_peak_factor(targets.tau_mem, tau_s)
    return out


def deviation(q, value, target):
    return np.asarray(value) - target if q in POTENTIALS else np.asarray(value) / target - 1


def cell_lsb(q, p, targets: Targets) -> float:
    """What one cell LSB changes on an ideal chip (docs/model.md): volts for
    potentials, 1 / tau for time constants, volts of PSP height for the gm cells."""
    a = p.analog
    if q in POTENTIALS:
        return a.v_max / 1022
    if q.startswith("tau"):
        return 1 / (1022 * a.tau_full_scale)
    tau_s = targets.tau_syn_exc if q == "psp_exc" else targets.tau_syn_inh
    return a.i_max / 1022 / a.c_mem * psp_peak_factor(targets.tau_mem, tau_s)


def nominal_cells(p, targets: Targets, n: int) -> dict:
    """The cells of an uncalibrated chip: each target through the ideal transfer."""
    linear = lambda q, v: 1 / v if q.startswith("tau") else v
    return {q: np.full(n, round(linear(q, getattr(targets, q)) / cell_lsb(q, p, targets))) for q in QUANTITIES}
