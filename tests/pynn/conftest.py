import pytest

# PyNN's own scenarios and examples: run through test_pynn_scenarios.py / test_pynn_examples.py with
# host.pynn, not collected as they stand
collect_ignore_glob = ["pynn_scenarios/*", "pynn_examples/*"]


@pytest.fixture
def sim():
    """host.pynn set up on an ideal dls chip, ended afterwards."""
    import host.pynn as sim
    sim.setup(timestep=0.1, url="twin:dls?mismatch=0")
    yield sim
    sim.end()
