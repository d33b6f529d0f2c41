"""Population, PopulationView and Assembly of the PyNN front end (the
structure of pyNN.mock): parameters are held on the host, the chip gets them
at each run (host.pynn.simulator.build_and_run)."""
from __future__ import annotations

import warnings

import numpy as np

from pyNN import common, errors
from pyNN.parameters import ParameterSpace, simplify
from pyNN.standardmodels import StandardCellType

from . import simulator
from .recording import Recorder


class Assembly(common.Assembly):
    _simulator = simulator

    @property
    def receptor_types(self):
        """The receptor types all members share, in the first member's order
        (PyNN's Assembly returns them from a set, in no fixed order, and a
        projection's default receptor is the first)."""
        common_ = set.intersection(*[set(p.celltype.receptor_types) for p in self.populations])
        return [r for r in self.populations[0].celltype.receptor_types if r in common_]


def _get_parameters(self, *names):
    if isinstance(self.celltype, StandardCellType):
        if any(name in self.celltype.computed_parameters() for name in names):
            native_names = self.celltype.get_native_names()
        else:
            native_names = self.celltype.get_native_names(*names)
        return self.celltype.reverse_translate(self._get_native_parameters(*native_names))
    return self._get_native_parameters(*names)


def _warn_initial(self, variable, initial_values):
    """The chip starts every neuron at rest: other initial values of v (and of
    the adaptation current w) are warned about."""
    if variable == "w":
        w = np.asarray(initial_values.evaluate(simplify=False) if hasattr(initial_values, "evaluate")
                       else initial_values, float)
        if np.any(w != 0):
            warnings.warn("initial values of w are not available on the chip: every neuron starts at its rest "
                          "(w = 0; with i_offset the model's rest, docs/pynn.md)")
        return
    if variable != "v" or "v_rest" not in self.celltype.default_parameters:
        return
    v = np.asarray(initial_values.evaluate(simplify=False) if hasattr(initial_values, "evaluate")
                   else initial_values, float)
    rest = self.get("v_rest", simplify=False) if hasattr(self, "get") else None
    if rest is not None and not np.allclose(v, np.broadcast_to(np.asarray(rest, float), np.shape(v))):
        warnings.warn("initial values of v are not available on the chip: every neuron starts at its rest "
                      "potential (v_rest, or v_leak of TwinNeuron)")


class PopulationView(common.PopulationView):
    _assembly_class = Assembly
    _simulator = simulator
    _get_parameters = _get_parameters
    _set_initial_value_array = _warn_initial

    def _get_native_parameters(self, *names):
        out = {}
        for name in names:
            value = self.parent._parameters[name]
            if isinstance(value, np.ndarray):
                value = value[self.mask]
            out[name] = simplify(value)
        return ParameterSpace(out, shape=(self.size,))

    def _set_parameters(self, parameter_space):
        for name, value in parameter_space.items():
            try:
                self.parent._parameters[name][self.mask] = value.evaluate(simplify=True)
            except ValueError:
                raise errors.InvalidParameterValueError(f"{name} should not be of type {type(value)}")

    def _get_view(self, selector, label=None):
        return PopulationView(self, selector, label)


class Population(common.Population):
    __doc__ = common.Population.__doc__
    _simulator = simulator
    _recorder_class = Recorder
    _assembly_class = Assembly
    _get_parameters = _get_parameters
    _set_initial_value_array = _warn_initial

    def _create_cells(self):
        st = simulator.state
        if st.conn is None:
            raise RuntimeError("call setup() before creating populations")
        ids = np.arange(st.id_counter, st.id_counter + self.size)
        self.all_cells = np.array([simulator.ID(i) for i in ids], dtype=simulator.ID)
        self._mask_local = np.ones(self.size, bool)
        ps = self.celltype.native_parameters
        ps.shape = (self.size,)
        ps.evaluate(mask=self._mask_local, simplify=False)
        self._parameters = ps.as_dict()
        for i in self.all_cells:
            i.parent = self
        st.id_counter += self.size
        if hasattr(self.celltype, "check"):
            self.celltype.check(self)
        self._index = len(st.populations)
        st.populations.append(self)

    def _get_view(self, selector, label=None):
        return PopulationView(self, selector, label)

    def _get_native_parameters(self, *names):
        return ParameterSpace({n: simplify(self._parameters[n]) for n in names}, shape=(self.local_size,))

    def _set_parameters(self, parameter_space):
        parameter_space.evaluate(simplify=False, mask=self._mask_local)
        for name, value in parameter_space.items():
            self._parameters[name] = value
