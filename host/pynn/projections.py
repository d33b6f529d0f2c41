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


class _Placed:
    """What the network build reads of a projection, or of one part of a projection
    from or to an Assembly: its root populations and, when plastic, its weights per
    segment (a run starts from the weights of the segment's first run, because the
    chip replays a continued segment from its start; reset() restores them).  Needs
    `pre`, `post` and `connections`."""
    _segment_w = None

    def segment_weights(self, w):
        if self._segment_w is None or len(self._segment_w) != len(w):
            self._segment_w = np.array(w, float)
        return self._segment_w

    def restore_weights(self):
        if self._segment_w is not None:
            for c, w in zip(self.connections, self._segment_w):
                c.weight = float(w)
            self._segment_w = None

    @property
    def pre_population(self):
        return _root(self.pre)

    @property
    def post_population(self):
        return _root(self.post)


class Projection(_Placed, common.Projection):
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
        assembly = isinstance(self.pre, common.Assembly) or isinstance(self.post, common.Assembly)
        self.connections = []
        connector.connect(self)
        if assembly:                    # placed as one part per (pre population, post population) of the assemblies
            simulator.state.projections.extend(_Part(self, a, b) for a in _members(self.pre)
                                               for b in _members(self.post))
        else:
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
        pre, post, w, d = _columns(self.connections)
        pre = _parent_index(self.pre, pre)
        post = _parent_index(self.post, post)
        return pre, post, w, d


def _columns(connections):
    """(pre index, post index, weight, delay) arrays of connections, in their projection's indices."""
    c = connections
    return (np.array([x.presynaptic_index for x in c], np.int64), np.array([x.postsynaptic_index for x in c], np.int64),
            np.array([x.weight for x in c], float), np.array([x.delay for x in c], float))


def _members(p):
    """(index in the assembly, population) of an Assembly's members; [(0, p)] otherwise."""
    return list(enumerate(p.populations)) if isinstance(p, common.Assembly) else [(0, p)]


def _split(p, index):
    """Assembly indices -> (member, index within the member); a population: (0, index)."""
    if not isinstance(p, common.Assembly):
        return np.zeros(len(index), np.int64), index
    ends = np.cumsum([q.size for q in p.populations])
    k = np.searchsorted(ends, index, side="right")
    return k, index - (ends - np.array([q.size for q in p.populations]))[k]


class _Part(_Placed):
    """The connections of a projection from or to an Assembly between one of
    its pre and one of its post populations: what the network is built from
    (host.pynn.simulator.build_and_run takes one pre and one post population per
    projection).  Reads the projection's connections at each run."""

    def __init__(self, parent, pre, post):
        (self._kp, self.pre), (self._kq, self.post) = pre, post
        self.parent = parent
        self.label = f"{parent.label} ({self.pre.label} -> {self.post.label})"
        self.receptor_type = parent.receptor_type
        self.synapse_type = parent.synapse_type
        self.connections = []           # this part's connections of the parent, set by _connection_arrays

    def _connection_arrays(self):
        pre, post, w, d = _columns(self.parent.connections)
        kp, ip = _split(self.parent.pre, pre)
        kq, iq = _split(self.parent.post, post)
        sel = (kp == self._kp) & (kq == self._kq)
        self.connections = [self.parent.connections[i] for i in np.flatnonzero(sel)]
        return _parent_index(self.pre, ip[sel]), _parent_index(self.post, iq[sel]), w[sel], d[sel]


def _root(p):
    if isinstance(p, common.Assembly):
        raise TypeError("an Assembly has no single population: its projections are placed per member (_Part)")
    while isinstance(p, common.PopulationView):
        p = p.parent
    return p


def _parent_index(p, index):
    while isinstance(p, common.PopulationView):
        index = np.arange(p.parent.size)[p.mask][index]
        p = p.parent
    return index
