"""PyNN's example scripts (examples/ of PyNN 0.13.0, vendored unmodified in
tests/pynn/pynn_examples/) run with host.pynn as their backend: the script imports
`pyNN.<name>` for the backend named on its command line (`get_simulator` or
`get_script_args`), and the test makes that module host.pynn (on a user's command line: change
the import to `import host.pynn as sim`).  Each runs with --plot-figure in a
temporary directory; the others are listed in NOT_RUN with their reason, and a
test checks that every example of PyNN 0.13.0 is run or listed."""
import pathlib
import runpy
import sys
import warnings

import numpy as np
import pytest

HERE = pathlib.Path(__file__).parent / "pynn_examples"
BACKEND = "bss_twin"               # the name on the script's command line: pyNN.bss_twin is host.pynn here

COND = "IF_cond_exp / IF_cond_alpha: conductance-based synapses (the chip's are current-based)"
ALPHA = "IF_curr_alpha: the chip's synaptic currents are exponential"
CURRENT = "current sources: the chip has no current injection"
#: Every example script of PyNN 0.13.0 (examples/*.py) that is not run, with the reason.
NOT_RUN = {
    "HH_cond_exp2.py": "HH_cond_exp: no such circuit",
    "Izhikevich.py": "Izhikevich: no such circuit",
    "StepCurrentSource.py": CURRENT,
    "VAbenchmarks.py": "4000 neurons (one chip has 32 on dls, 512 on hx); COBA: " + COND,
    "brunel.py": ALPHA + "; 12 500 neurons",
    "cell_type_demonstration.py": "HH_cond_exp, IF_cond_exp_gsfa_grr, Izhikevich; records w, u",
    "connections.py": COND + "; 180 neurons on dls (32)",
    "current_injection.py": CURRENT,
    "distrib_example.py": "MPI (mpi4py): one chip, one process",
    "gif_neuron.py": "GIF_cond_exp: no such circuit",
    "inhomogeneous_network.py": COND,
    "monolith_vs_composed.py": "PointNeuron composed models; records the synaptic currents",
    "multi_synapse.py": "PointNeuron with four alpha conductance receptors (the chip has two exponential current ones)",
    "multiquantal_synapses.py": "MultiQuantalSynapse: no stochastic synapses",
    "nineml_brunel.py": "NineML models (the neuron backend)",
    "nineml_neuron.py": "NineML models",
    "nrn_artificial_cell.py": "NEURON artificial cells",
    "parameter_changes.py": CURRENT,
    "random_distributions.py": "no backend: plots pyNN.random's distributions (with NEURON's native RNG)",
    "random_numbers.py": "NativeRNG (a backend's own generator); " + COND,
    "simpleRandomNetwork_csa.py": "the csa package (Connection Set Algebra)",
    "simple_STDP.py": COND + "; STDPMechanism",
    "small_network.py": COND + "; gsyn recording",
    "specific_network.py": ALPHA,
    "stdp_network.py": COND + "; STDPMechanism",
    "stochastic_deterministic_comparison.py": "TsodyksMarkramSynapse, stochastic synapses",
    "stochastic_synapses.py": "stochastic synapses",
    "stochastic_tsodyksmarkram.py": "TsodyksMarkramSynapse, stochastic synapses",
    "synaptic_input.py": ALPHA + "; " + COND + "; Izhikevich, IF_curr_delta",
    "tsodyksmarkram.py": "TsodyksMarkramSynapse: no short-term plasticity on the chip",
}
RUN = ["simpleRandomNetwork.py", "update_spike_source_array.py", "varying_poisson.py"]


@pytest.fixture
def run_example(tmp_path, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    import host.pynn
    monkeypatch.setitem(sys.modules, f"pyNN.{BACKEND}", host.pynn)
    monkeypatch.setenv("BSS_CONNECTION", "twin:dls")
    monkeypatch.chdir(tmp_path)

    def run(name):
        monkeypatch.setattr(sys, "argv", [name, BACKEND, "--plot-figure"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = runpy.run_path(str(HERE / name), run_name="__main__")
        return out, sorted(p.name for p in tmp_path.rglob("*.png"))
    yield run
    host.pynn.end()


def test_update_spike_source_array(run_example):
    out, pngs = run_example("update_spike_source_array.py")
    assert pngs and pngs[0].startswith("update_spike_source_array_bss_twin")
    # every 200 ms the 50 sources get regular trains at 0, 20, 40, 60, 80 Hz, each shifted by its own phase
    # (0..1 interval): rate x 0.2 s spikes per source, less those the phase pushes past the interval's end
    counts, expected = np.asarray(out["spike_counts"]), np.asarray(out["expected_spike_counts"])
    assert expected.tolist() == [0, 200, 400, 600, 800]
    assert counts[0] == 0 and np.all(counts[1:] <= expected[1:]) and np.all(counts[1:] >= expected[1:] - 50)


def test_varying_poisson(run_example):
    out, pngs = run_example("varying_poisson.py")
    assert pngs and pngs[0].startswith("varying_poisson_bss_twin")
    counts, expected = np.asarray(out["spike_counts"]), np.asarray(out["expected_spike_counts"])
    assert counts[0] == 0
    assert np.all(np.abs(counts[1:] - expected[1:]) < 4 * np.sqrt(expected[1:])), (counts, expected)


def test_simple_random_network(run_example):
    """10 sources (one shared Poisson train at 100 Hz), 20 IF_curr_exp neurons, v of 3 of them (the
    column ADCs), saved with neo's pickle IO."""
    import neo
    out, _ = run_example("simpleRandomNetwork.py")
    counts = out["spike_counts"]
    assert len(counts) == 20 and sum(counts.values()) > 0
    saved = sorted(pathlib.Path("Results").rglob("simpleRandomNetwork_output*.pkl"))
    seg = neo.io.PickleIO(str(saved[0])).read_block().segments[0]
    v = seg.filter(name="v")[0]
    assert v.shape == (40001, 3) and float(v.sampling_period) == 0.025     # the script's timestep
    assert np.all((np.asarray(v) > -80.0) & (np.asarray(v) < -45.0))      # between reset and threshold


def test_every_example_is_run_or_listed():
    """The list of PyNN 0.13.0's examples/*.py (commit 9de85b0a)."""
    examples = {"HH_cond_exp2.py", "Izhikevich.py", "StepCurrentSource.py", "VAbenchmarks.py", "brunel.py",
                "cell_type_demonstration.py", "connections.py", "current_injection.py", "distrib_example.py",
                "gif_neuron.py", "inhomogeneous_network.py", "monolith_vs_composed.py", "multi_synapse.py",
                "multiquantal_synapses.py", "nineml_brunel.py", "nineml_neuron.py", "nrn_artificial_cell.py",
                "parameter_changes.py", "random_distributions.py", "random_numbers.py", "simpleRandomNetwork.py",
                "simpleRandomNetwork_csa.py", "simple_STDP.py", "small_network.py", "specific_network.py",
                "stdp_network.py", "stochastic_deterministic_comparison.py", "stochastic_synapses.py",
                "stochastic_tsodyksmarkram.py", "synaptic_input.py", "tsodyksmarkram.py",
                "update_spike_source_array.py", "varying_poisson.py"}
    assert set(RUN) | set(NOT_RUN) == examples and not set(RUN) & set(NOT_RUN)
    assert {p.name for p in HERE.glob("*.py")} == set(RUN)
