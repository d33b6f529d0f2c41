"""Projection of the PyNN front end: connections held on the host (as in
pyNN.mock), merged per pair of placed parts and written to the chip at each
run (host.pynn.simulator.build_and_run)."""
from __future__ import annotations

import numpy as np

from pyNN import common, errors
from pyNN.space import Space

from . import simulator


class Connection(common.Connection):
    def __init__(self, projection, pre, post, **attributes):
        self.projection = projection
        self.presynaptic_index = pre
        self.postsynaptic_index = post
        for name, value in attributes.items():
            setattr(self, name, value)

    def as_tuple(self, *attribute_names):
        return tuple(getattr(self, name) for name in attribute_names)


class Projection(common.Projection):
    __doc__ = common.Projection.__doc__
    _simulator = simulator

    def __init__(self, presynaptic_population, postsynaptic_population, connector, synapse_type=None,
                 source=None, receptor_type=None, space=Space(), label=None):
        common.Projection.__init__(self, presynaptic_population, postsynaptic_population, connector,
                                   synapse_type, source, receptor_type, space, label)
        if type(self.synapse_type).__name__ not in ("StaticSynapse", "PlasticSynapse"):
            raise errors.NoModelAvailableError(
                f"{type(self.synapse_type).__name__}: the chip's synapses are StaticSynapse, or PlasticSynapse with a "
                "firmware rule (docs/pynn.md, Plasticity); PyNN's STDPMechanism and TsodyksMarkramSynapse describe "
                "rules the chip does not compute")
        self.connections = []
        self._segment_w = None          # plastic: the weights at the start of the segment
        connector.connect(self)
        simulator.state.projections.append(self)

    def __len__(self):
        return len(self.connections)

    def set(self, **attributes):
        """Set weights/delays (arrays in the shape of `get(..., format='array')`, or one value)."""
        for name, value in attributes.items():
            if name not in ("weight", "delay"):
                raise errors.NonExistentParameterError(name, self.synapse_type)
            if np.ndim(value) == 0:
                for c in self.connections:
                    setattr(c, name, float(value))
            else:
                value = np.asarray(value, float)
                for c in self.connections:
                    setattr(c, name, float(value[c.presynaptic_index, c.postsynaptic_index]))

    def segment_weights(self, w):
        """The weights a run of this segment starts from: those of its first run
        (the chip replays a continued segment from its start)."""
        if self._segment_w is None or len(self._segment_w) != len(w):
            self._segment_w = np.array(w, float)
        return self._segment_w

    def restore_weights(self):
        """reset(): a plastic projection's weights back to those its segment started from."""
        if self._segment_w is not None:
            for c, w in zip(self.connections, self._segment_w):
                c.weight = float(w)
            self._segment_w = None

    def _convergent_connect(self, presynaptic_indices, postsynaptic_index, location_selector=None,
                            **connection_parameters):
        if location_selector is not None:
            raise errors.NoModelAvailableError("the chip has point neurons (no multicompartment models)")
        pre = np.asarray(presynaptic_indices)
        n = len(pre)
        cols = {k: np.broadcast_to(np.asarray(v, float), (n,)) for k, v in connection_parameters.items()}
        for k, i in enumerate(pre):
            self.connections.append(Connection(self, int(i), int(postsynaptic_index),
                                               **{name: float(c[k]) for name, c in cols.items()}))

    def _connection_arrays(self):
        """(pre index, post index, weight, delay) in the parent populations' indices."""
        c = self.connections
        pre = np.array([x.presynaptic_index for x in c], np.int64)
        post = np.array([x.postsynaptic_index for x in c], np.int64)
        w = np.array([x.weight for x in c], float)
        d = np.array([x.delay for x in c], float)
        pre = _parent_index(self.pre, pre)
        post = _parent_index(self.post, post)
        return pre, post, w, d

    @property
    def pre_population(self):
        return _root(self.pre)

    @property
    def post_population(self):
        return _root(self.post)


def _root(p):
    if isinstance(p, common.Assembly):
        raise NotImplementedError("projections from or to an Assembly: project each population")
    while isinstance(p, common.PopulationView):
        p = p.parent
    return p


def _parent_index(p, index):
    while isinstance(p, common.PopulationView):
        index = np.arange(p.parent.size)[p.mask][index]
        p = p.parent
    return index
