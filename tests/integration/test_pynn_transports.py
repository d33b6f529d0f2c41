"""The same PyNN script over every transport that gives a client its own chip
(in-process, TCP, the pyserial URL; a board when BSS_HARDWARE_URL names one):
a plastic projection learning on the PPU, spikes and a membrane recorded.
Chips of one serial and seed are bit-identical, so every transport must give
the in-process twin's spikes, membrane and learned weights exactly.  (The pty
server serves one client at a time, and the suite's session connection holds
it: test_suite.py covers that transport.)"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import transport_url

TRANSPORTS = ["inprocess", "tcp", "pyserial", pytest.param("hardware", marks=pytest.mark.hardware)]


def _script(url):
    import host.pynn as sim
    sim.setup(timestep=0.1, url=url, seed=5)
    times = np.arange(40.0, 1000.0, 25.0)
    drive = sim.Population(3, sim.SpikeSourceArray(spike_times=times))
    early = sim.Population(4, sim.SpikeSourceArray(spike_times=times - 3.0))
    noise = sim.Population(4, sim.SpikeSourcePoisson(rate=20.0))
    cells = sim.Population(2, sim.IF_curr_exp(tau_refrac=10.0))
    sim.Projection(drive, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=2.0))
    sim.Projection(noise, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=-0.5),
                   receptor_type="inhibitory")
    rule = sim.FirmwareRule("stdp_mult", period=200.0, w_max=2.0, theta=2, lambda_pos=64, lambda_neg=64)
    proj = sim.Projection(early, cells, sim.AllToAllConnector(), sim.PlasticSynapse(weight=0.4, plasticity_rule=rule))
    cells.record("spikes")
    cells[0:1].record("v")
    sim.run(1000.0)
    seg = cells.get_data().segments[0]
    out = dict(spikes=[np.asarray(t) for t in seg.spiketrains], v=np.asarray(seg.analogsignals[0]),
               weights=np.asarray(proj.get("weight", format="array")), profile=sim.simulator.state.profile.name)
    sim.end()
    return out


@pytest.fixture(scope="module")
def reference():
    return _script(transport_url(None, "inprocess"))


@pytest.mark.parametrize("name", TRANSPORTS)
def test_a_pynn_script_gives_the_same_results_over_every_transport(request, reference, name):
    got = _script(transport_url(request, name))
    assert sum(len(t) for t in got["spikes"]) > 10 and got["weights"].mean() > 0.5       # it fired and learned
    if got["profile"] != reference["profile"] or name == "hardware":
        return                                    # a board: the same script ran; its chip is its own
    for a, b in zip(got["spikes"], reference["spikes"]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got["v"], reference["v"])
    np.testing.assert_array_equal(got["weights"], reference["weights"])
