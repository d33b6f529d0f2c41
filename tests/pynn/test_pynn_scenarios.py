"""PyNN's own system-test scenarios (test/system/scenarios of PyNN 0.13.0,
vendored unmodified in tests/pynn/pynn_scenarios/) run against host.pynn on
the default chip (twin:dls).  Every scenario of the vendored files is either
run or listed in NOT_APPLICABLE with its reason; the files not vendored are
listed in FILES_NOT_APPLICABLE.  docs/pynn.md carries the same lists."""
import importlib
import inspect
import warnings

import pytest

RUN = [
    ("test__simulation_control", "test_setup"),
    ("test_cell_types", "test_SpikeSourcePoisson"),
    ("test_cell_types", "test_issue511"),
    ("test_cell_types", "test_update_SpikeSourceArray"),
    ("test_cell_types", "test_SpikeSourceArray_delivers_spike_times"),
    ("test_connection_handling", "test_issue672"),
    ("test_parameter_handling", "test_issue241"),
    ("test_recording", "test_issue259"),
    ("test_cell_types", "test_SpikeSourceGamma"),
    ("test_cell_types", "test_SpikeSourcePoissonRefractory"),
]

COND = "conductance-based synapses: the chip's are current-based (docs/model.md, Neurons)"
NOISE = ("requires repeated runs to give v equal to 10 decimals: the chip's membrane ADC and parameter cells "
         "add read and temporal noise (docs/model.md), so repeats agree to about 0.3 mV")
CURRENT = "current sources (DCSource, StepCurrentSource): the chip has no current injection; a constant i_offset is supported"
NOT_APPLICABLE = {
    ("test__simulation_control", "test_reset"): NOISE,
    ("test__simulation_control", "test_reset_with_clear"): NOISE,
    ("test__simulation_control", "test_reset_with_spikes"): "delays of 0.5 ms with min_delay 0.1 ms: the chip has no "
                                                            "programmable delays; and it " + NOISE,
    ("test__simulation_control", "test_run_until"): COND,
    ("test_cell_types", "test_EIF_cond_alpha_isfa_ista"): COND + "; alpha synapses",
    ("test_cell_types", "test_HH_cond_exp"): "Hodgkin-Huxley: no such circuit on the chip",
    ("test_cell_types", "test_IF_curr_delta_voltage_step"): "delta synapses: the chip's are exponential",
    ("test_cell_types", "test_composed_neuron_model_homogeneous_receptors"): "PointNeuron with AlphaPSR conductance "
        "receptors and three receptor types; records the synaptic currents: the chip has one excitatory and one "
        "inhibitory exponential current synapse (PointNeuron with CurrExpPostSynapticResponse 'excitatory', "
        "'inhibitory')",
    ("test_connection_handling", "test_connections_attribute"): COND,
    ("test_connection_handling", "test_connection_access_weight_and_delay"): COND,
    ("test_connection_handling", "test_issue652"): COND + "; STDPMechanism (refused: the chip's plasticity is "
                                                   "PlasticSynapse with a firmware rule, docs/pynn.md)",
    ("test_parameter_handling", "test_issue302"): COND,
    ("test_parameter_handling", "test_set_synaptic_parameters_fully_connected"): COND + "; TsodyksMarkramSynapse",
    ("test_parameter_handling", "test_set_synaptic_parameters_partially_connected"): COND + "; TsodyksMarkramSynapse",
    ("test_parameter_handling", "test_set_synaptic_parameters_multiply_connected"): COND + "; TsodyksMarkramSynapse",
    ("test_parameter_handling", "test_issue505"): COND + "; TsodyksMarkramSynapse",
    ("test_recording", "test_reset_recording"): COND,
    ("test_recording", "test_record_vm_and_gsyn_from_assembly"): COND + "; gsyn",
    ("test_recording", "test_sampling_interval"): COND,
    ("test_recording", "test_mix_procedural_and_oo"): COND,
    ("test_recording", "test_record_with_filename"): CURRENT,
    ("test_recording", "test_issue499"): CURRENT,
}

FILES_NOT_APPLICABLE = {
    "test_connectors.py": COND + " (every scenario uses IF_cond_exp)",
    "test_electrodes.py": CURRENT,
    "test_issue231.py": COND,
    "test_issue274.py": "IF_cond_exp and STDP",
    "test_mc.py": "multicompartment neurons (arbor, neuron only)",
    "test_procedural_api.py": COND,
    "test_scenario1.py": COND,
    "test_scenario2.py": CURRENT,
    "test_scenario3.py": COND + "; STDP",
    "test_scenario4.py": "TsodyksMarkramSynapse (no short-term plasticity on the chip), delays up to 7 ms, and "
                         "200 EIF_cond_exp_isfa_ista neurons with 100 sources (one dls chip has 32 neurons)",
    "test_scenario5.py": "multicompartment neurons",
    "test_synapse_types.py": "stochastic and Tsodyks-Markram synapses",
    "test_ticket166.py": COND,
}


def _scenario(module, name):
    return getattr(importlib.import_module(f"pynn_scenarios.{module}"), name)


@pytest.fixture
def default_chip(monkeypatch):
    monkeypatch.setenv("BSS_CONNECTION", "twin:dls")
    import host.pynn as sim
    yield sim
    sim.end()


@pytest.mark.parametrize("module, name", RUN, ids=[n for _, n in RUN])
def test_pynn_scenario(default_chip, module, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _scenario(module, name)(default_chip)


def test_every_vendored_scenario_is_run_or_listed():
    import pathlib
    here = pathlib.Path(__file__).parent / "pynn_scenarios"
    seen = set()
    for path in here.glob("test_*.py"):
        mod = importlib.import_module(f"pynn_scenarios.{path.stem}")
        for fname, f in inspect.getmembers(mod, inspect.isfunction):
            if fname.startswith("test") and f.__module__ == mod.__name__:
                seen.add((path.stem, fname))
    assert seen, "no scenarios found"
    listed = set(RUN) | set(NOT_APPLICABLE)
    assert seen - listed == set(), "scenarios neither run nor listed"
    assert not set(RUN) & set(NOT_APPLICABLE)
    vendored = {p.name for p in here.glob("test_*.py")}
    assert not vendored & set(FILES_NOT_APPLICABLE)
