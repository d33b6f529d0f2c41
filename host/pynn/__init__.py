"""A PyNN front end on the network layer: `import host.pynn as sim`.

    import host.pynn as sim
    sim.setup(timestep=0.1, url="twin:dls")          # url: BSS_CONNECTION, else twin:dls
    stim = sim.Population(8, sim.SpikeSourcePoisson(rate=50.0))
    cells = sim.Population(16, sim.IF_curr_exp(tau_m=10.0))
    sim.Projection(stim, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.5))
    cells.record("spikes"); cells[0:1].record("v")
    sim.run(200.0)
    block = cells.get_data()                         # neo Block, one Segment per run/reset
    sim.end()

Structure after pyNN.mock; units as PyNN (ms, mV, nA, nF, Hz); the mapping
onto the chip and what is not supported: docs/pynn.md.
"""
from pyNN import errors, random, space                                   # noqa: F401
from pyNN.space import Space                                             # noqa: F401
from pyNN.random import NumpyRNG, RandomDistribution                     # noqa: F401
from pyNN.connectors import (AllToAllConnector, OneToOneConnector,       # noqa: F401
                             FixedProbabilityConnector, FromListConnector, ArrayConnector,
                             FixedNumberPreConnector, FixedNumberPostConnector,
                             FixedTotalNumberConnector, DistanceDependentProbabilityConnector)
from pyNN.recording import get_io                                        # noqa: F401
from pyNN import common
from pyNN.common.control import DEFAULT_TIMESTEP

from . import simulator
from .simulator import state, mv_to_chip, chip_to_mv, V_OFFSET, V_SCALE   # noqa: F401
from .standardmodels import (IF_curr_exp, EIF_cond_exp_isfa_ista, TwinNeuron,  # noqa: F401
                             SpikeSourceArray, SpikeSourcePoisson, SpikeSourceGamma, SpikeSourcePoissonRefractory,
                             StaticSynapse,
                             PointNeuron, LIF, AdExp, CurrExpPostSynapticResponse)
from .populations import Population, PopulationView, Assembly            # noqa: F401
from .projections import Projection                                      # noqa: F401
from .plasticity import FirmwareRule, PlasticSynapse                     # noqa: F401
from .plasticity import (STDPMechanism, TsodyksMarkramSynapse, SpikePairRule,  # noqa: F401
                         AdditiveWeightDependence, MultiplicativeWeightDependence)


def setup(timestep=DEFAULT_TIMESTEP, min_delay="auto", url=None, calibration=None, seed=0, **extra_params):
    """Open the chip at `url` (None: $BSS_CONNECTION, else twin:dls).
    `calibration` (host.calibration.Calibration of that chip): neuron
    parameters through its per-neuron cells.  `timestep` (ms) is the sampling
    interval of recorded v; the chip integrates in its own fixed step
    (get_chip_step()).  `seed`: Poisson sources.  Delays: see StaticSynapse."""
    max_delay = extra_params.pop("max_delay", None)
    common.setup(timestep, min_delay, **extra_params)
    st = simulator.state
    st.clear()
    st.connect(url, calibration, seed)
    st.dt = float(timestep)
    st.min_delay = st.chip_step if min_delay == "auto" else float(min_delay)
    # The chip has no programmable delays: every synapse acts after one step.  Delays up to the larger of
    # the declared min_delay and two chip steps are accepted and realised as that latency.
    st.max_delay = max(st.min_delay, 2 * st.chip_step)
    del max_delay      # a declaration only: the delays the projections carry are checked at run()
    return 0


def end(compatible_output=True):
    """Write data asked for with write_on_end, close the chip."""
    st = simulator.state
    for (population, variables, filename) in st.write_on_end:
        population.write_data(get_io(filename), variables)
    st.write_on_end = []
    st.close()


run, run_until = common.build_run(simulator)
run_for = run
reset = common.build_reset(simulator)
initialize = common.initialize
get_current_time, get_time_step, get_min_delay, get_max_delay, num_processes, rank = \
    common.build_state_queries(simulator)


def get_chip_step():
    """The chip's integration step in biological ms (dls/hx 0.096, hicann 0.08)."""
    return simulator.state.chip_step


def list_standard_models():
    return ["EIF_cond_exp_isfa_ista", "IF_curr_exp", "PointNeuron", "SpikeSourceArray", "SpikeSourceGamma",
            "SpikeSourcePoisson", "SpikeSourcePoissonRefractory", "TwinNeuron"]


# The procedural API (pyNN.mock's): create, connect, record.
create = common.build_create(Population)
connect = common.build_connect(Projection, FixedProbabilityConnector, StaticSynapse)
record = common.build_record(simulator)


def record_v(source, filename):
    return record(["v"], source, filename)
