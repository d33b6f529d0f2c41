import pytest


@pytest.fixture
def sim():
    """host.pynn set up on an ideal dls chip, ended afterwards."""
    import host.pynn as sim
    sim.setup(timestep=0.1, url="twin:dls?mismatch=0")
    yield sim
    sim.end()
