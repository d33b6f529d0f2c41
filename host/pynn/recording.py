"""Recorder of the PyNN front end: spikes of any neuron; v of one neuron
through the membrane ADC, of several through their column ADCs (dls, hx);
from the last run of the segment."""
from __future__ import annotations

import numpy as np

from pyNN import recording

from . import simulator


class Recorder(recording.Recorder):
    _simulator = simulator

    def _record(self, variable, new_ids, sampling_interval=None):
        st = self._simulator.state
        if variable.name == "v" and not st.profile.correlation:
            n = sum(len(ids) for rec in st.recorders for var, ids in rec.recorded.items() if var.name == "v")
            if n > 1:
                self.recorded[variable] -= set(new_ids)
                raise simulator.MembraneRecordingError(
                    f"v of {n} neurons asked for; the {st.profile.name} chip has one membrane ADC and no column "
                    "ADCs: record v of one neuron at a time (e.g. pop[3:4].record('v'))")
        if sampling_interval is not None:
            self.sampling_interval = sampling_interval

    def _data(self):
        return self._simulator.state.result

    def _get_spiketimes(self, ids, clear=False):
        res = self._data()
        ids = np.asarray([int(i) for i in ids], np.int64)
        if res is None or self.population not in res.spikes:
            return np.zeros(0, np.int64), np.zeros(0)
        t, idx = res.spikes[self.population]
        gid = np.asarray(self.population.all_cells, np.int64)[idx]
        keep = np.isin(gid, ids) & (t >= self._recording_start_time.magnitude)
        return gid[keep], t[keep].copy()

    def _get_all_signals(self, variable, ids, clear=False):
        st = self._simulator.state
        res = self._data()
        dt = self.sampling_interval
        t0 = float(self._recording_start_time.magnitude)
        n = int(round((st.t - t0) / dt)) + 1
        grid = t0 + dt * np.arange(n)
        traces = res.membranes.get(self.population, {}) if res is not None else {}
        if not len(ids) or not all(i in traces for i in ids):
            return np.zeros((0, len(ids))), None
        v = [np.interp(grid, *traces[i]) if len(traces[i][0]) else np.full(n, np.nan) for i in ids]
        return np.column_stack(v), None

    def _local_count(self, variable, filter_ids=None):
        ids = sorted(self.filter_recorded(variable, filter_ids))
        gid, _ = self._get_spiketimes(ids)
        return {int(i): int(np.sum(gid == int(i))) for i in ids}

    def _clear_simulator(self):
        pass

    def _reset(self):
        pass
