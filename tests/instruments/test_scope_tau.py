"""The membrane time constant through the scope (host.instruments.measure):
on an ideal chip against the transfer function of docs/model.md, tau =
tau_full_scale * 1022 / value (i_max cancels); on a chip with fixed-pattern
noise against the time constant its leak-bias cell really sets (the twin's
cell output, read from the chip object)."""
from __future__ import annotations

import numpy as np
import pytest

import host
from host.instruments import Oscilloscope
from host.instruments.measure import membrane_tau
from twin.chip import Chip
from twin.scope import ScopeServer
from twin.server import TwinServer

CASES = ((2, 255), (3, 128), (4, 60))


def measure(chip):
    with TwinServer(chip, shared=True) as server, ScopeServer(chip) as scope_server:
        conn = host.connect(server.url)
        p = conn.profile
        prog = conn.program()
        prog.write(host.ChipOnly(), host.CapMemConfig(enable=1))
        for n, value in CASES:
            prog.write(host.CapMemCellOnChip(n, "i_bias_leak"), host.CapMemCell(value))
            prog.write(host.CapMemCellOnChip(n, "v_threshold"), host.CapMemCell(1000))
            prog.write(host.NeuronOnChip(n), host.NeuronConfig(enable=1, refractory=7))
        conn.run(prog)
        with Oscilloscope(scope_server.resource) as scope:
            out = [membrane_tau(conn, scope, n, tau_guess=p.analog.tau_full_scale * 1022 / value)
                   for n, value in CASES]
        check = conn.program()
        cfg = [check.read(host.NeuronOnChip(n), host.NeuronConfig) for n, _ in CASES]
        mux = check.read(host.ChipOnly(), host.ReadoutMuxConfig)
        conn.run(check)
        assert all(c.value.refractory == 7 and c.value.readout == 0 for c in cfg)    # restored
        assert mux.value.source == 0
        conn.close()
    return out, p


def test_tau_on_an_ideal_chip_follows_the_transfer_function():
    out, p = measure(Chip("dls", 4, mismatch=False))
    for (n, value), m in zip(CASES, out):
        expect = p.analog.tau_full_scale * 1022 / value
        assert m.tau == pytest.approx(expect, rel=0.01), (n, value)
        assert m.rest == pytest.approx(0.6, abs=0.01) and m.points > 500


def test_tau_on_a_chip_with_fixed_pattern_noise():
    chip = Chip("dls", 4)
    out, p = measure(chip)
    cells, _ = chip.core.net.cell_outputs(chip.now, True)
    k = p.neuron_cells.index("i_bias_leak")
    for (n, value), m in zip(CASES, out):
        true = p.analog.tau_full_scale * p.analog.i_max / cells[n, k]
        assert m.tau == pytest.approx(true, rel=0.02), (n, value)
    nominal = np.array([p.analog.tau_full_scale * 1022 / v for _, v in CASES])
    assert np.abs(np.array([m.tau for m in out]) / nominal - 1).max() > 0.01   # the fixed pattern shows
