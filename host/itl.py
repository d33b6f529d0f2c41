"""Hardware-in-the-loop training of a converted deep network (the wafer seed:
Schmitt et al. 2017, "Neuromorphic hardware in the loop: Training a deep
spiking network on the BrainScaleS wafer-scale system", IJCNN).

1. A small network (64-h-h-10, ReLU, no biases) is trained in software with
   NumPy on the 8x8 handwritten digits that ship with scikit-learn.
2. The neurons it will use are calibrated to its neuron parameters
   (host/calibration.py; cached per chip), and it is converted to a rate-coded
   spiking network through the network layer (host/network.py) with that
   calibration: pixel intensities become Poisson rates, each layer a
   population, weights quantised per layer to the chip's signed weight field
   (4 bit on hicann, 6 on hx), the sign picking an excitatory or an
   inhibitory row; outputs are spike counts, the class their argmax.
3. In-the-loop training: each iteration runs a batch on the chip, counts the
   spikes of every layer, and takes a gradient step on the software weights by
   backpropagation through the ideal network evaluated at the measured
   activations (the counts, scaled to the software's activation range); the
   quantised weights go back to the chip.  Fixed-pattern noise, 4-bit weights
   and lost synapses and spikes are what it learns to compensate.

Nothing here is specific to the twin: the same code runs over any URL.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .calibration_fit import CELL_MAX
from .network import AllToAll, FromMatrix, Network

INPUT_RATE = 100.0            # Hz (biological) of a pixel at full intensity
TRIAL = 0.4                   # s (biological) per sample: 40 input spikes at full intensity
GAP = 0.02                    # s of silence between samples (membranes relax)
NEURON = dict(v_leak=0.60, v_reset=0.55, v_threshold=0.72, tau_mem=10e-3, tau_syn_exc=2e-3, tau_syn_inh=2e-3,
              tau_refrac=2e-3, gm_exc=150, gm_inh=150)
HEADROOM = 0.4                # the 99th percentile of a layer's counts maps to this share of the top rate
GM_RANGE = (1, CELL_MAX)      # the synaptic gain cells that normalise a layer


# --------------------------------------------------------------------------- data and the software network
def digits(test_fraction: float = 0.25, seed: int = 0):
    """(x_train, y_train, x_test, y_test): scikit-learn's 8x8 digits, pixels in 0..1."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x, y = d.data / 16.0, d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    te, tr = order[:n_test], order[n_test:]
    return x[tr], y[tr], x[te], y[te]


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class MLP:
    """ReLU layers without biases; `weights[l]` has shape (in, out)."""
    weights: list

    @classmethod
    def random(cls, sizes, seed: int = 0) -> "MLP":
        rng = np.random.default_rng(seed)
        return cls([rng.normal(0, np.sqrt(2.0 / a), (a, b)) for a, b in zip(sizes[:-1], sizes[1:])])

    def forward(self, x) -> list[np.ndarray]:
        """Activations of every layer, input first; the last is linear."""
        acts = [x]
        for k, w in enumerate(self.weights):
            z = acts[-1] @ w
            acts.append(z if k == len(self.weights) - 1 else np.maximum(z, 0.0))
        return acts

    def predict(self, x) -> np.ndarray:
        return self.forward(x)[-1].argmax(axis=1)

    def gradients(self, acts, y) -> list[np.ndarray]:
        """Cross-entropy gradients by backpropagation at the given activations
        (software's own, or measured ones in the loop)."""
        delta = _softmax(acts[-1])
        delta[np.arange(len(y)), y] -= 1.0
        delta /= len(y)
        grads = []
        for k in range(len(self.weights) - 1, -1, -1):
            grads.append(acts[k].T @ delta)
            if k:
                delta = (delta @ self.weights[k].T) * (acts[k] > 0)
        return grads[::-1]


class Adam:
    def __init__(self, shapes, lr: float, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0
        self.m = [np.zeros(s) for s in shapes]
        self.v = [np.zeros(s) for s in shapes]

    def step(self, params, grads) -> None:
        self.t += 1
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m[:] = self.b1 * m + (1 - self.b1) * g
            v[:] = self.b2 * v + (1 - self.b2) * g * g
            p -= self.lr * (m / (1 - self.b1 ** self.t)) / (np.sqrt(v / (1 - self.b2 ** self.t)) + self.eps)


def train_software(x, y, hidden: int = 32, epochs: int = 60, batch: int = 32, lr: float = 3e-3,
                   input_noise: float | None = None, seed: int = 0) -> MLP:
    """Adam on cross-entropy.  `input_noise`: train on inputs resampled as
    Poisson counts of that many spikes per unit (default INPUT_RATE x TRIAL,
    what the chip's input carries), which makes the network robust to the
    rate code's noise (about one point of accuracy under that noise)."""
    mlp = MLP.random([x.shape[1], hidden, hidden, 10], seed)
    opt = Adam([w.shape for w in mlp.weights], lr)
    rng = np.random.default_rng(seed)
    per_unit = INPUT_RATE * TRIAL if input_noise is None else input_noise
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x), batch):
            b = order[i:i + batch]
            xb = rng.poisson(x[b] * per_unit) / per_unit if per_unit else x[b]
            opt.step(mlp.weights, mlp.gradients(mlp.forward(xb), y[b]))
    return mlp


# --------------------------------------------------------------------------- calibration
def calibration_targets(profile):
    """The calibration targets of the network's neurons: NEURON's potentials and
    time constants, and PSP heights of the nominal gm cells (gm_exc, gm_inh):
    the layers' gains are then set relative to calibrated neurons."""
    from .calibration import Targets
    from .calibration_fit import nominal_slope
    n, hw = NEURON, profile.bio_to_hw
    t = Targets.default(profile).replace(leak=n["v_leak"], reset=n["v_reset"], threshold=n["v_threshold"],
                                         tau_mem=hw(n["tau_mem"]), tau_syn_exc=hw(n["tau_syn_exc"]),
                                         tau_syn_inh=hw(n["tau_syn_inh"]))
    return t.replace(psp_exc=n["gm_exc"] * nominal_slope("psp_exc", profile, t),
                     psp_inh=n["gm_inh"] * nominal_slope("psp_inh", profile, t))


def neurons_to_calibrate(profile, sizes, spare: float = 0.5) -> np.ndarray:
    """The neurons map_network places a network of layer `sizes` (input first)
    on, with `spare` more per array for those a calibration finds unusable:
    layers alternate between the synapse arrays and take their first neurons."""
    need = np.zeros(profile.synapse_arrays, int)
    for k, size in enumerate(sizes[1:]):
        need[k % profile.synapse_arrays] += size
    take = np.minimum(np.ceil(need * (1 + spare)).astype(int), profile.columns)
    return np.concatenate([np.arange(a * profile.columns, a * profile.columns + t) for a, t in enumerate(take)])


def calibrate_for(conn, mlp: "MLP", progress: bool = True):
    """Calibrate the neurons a mapping of `mlp` uses to `calibration_targets`
    (host.calibration; cached on disk, so a chip is calibrated once)."""
    from .calibration import calibrate
    sizes = [mlp.weights[0].shape[0]] + [w.shape[1] for w in mlp.weights]
    return calibrate(conn, calibration_targets(conn.profile), neurons=neurons_to_calibrate(conn.profile, sizes),
                     progress=progress)


# --------------------------------------------------------------------------- the spiking network on a chip
@dataclass
class Mapped:
    """The software network on a chip: populations, projections, per-layer weight scales."""
    conn: object
    net: Network
    source: object
    layers: list
    projections: list
    scales: list                   # hardware weight units per software weight unit, per layer
    wmax: int
    act_scale: list = field(default_factory=list)   # software activation per spike, per hidden/output layer

    def quantise(self, weights) -> list[np.ndarray]:
        return [np.clip(np.round(w * s), -self.wmax, self.wmax).astype(np.int64)
                for w, s in zip(weights, self.scales)]

    def write(self, weights) -> None:
        """Quantise and write.  A weight whose sign has no row for its source
        (the placement gave each source the rows of the signs it had) stays 0."""
        pl = self.net._placement(self.conn)
        p = self.conn.profile
        for proj, q in zip(self.projections, self.quantise(weights)):
            post = pl.neurons[proj.post]
            arr = post // p.columns
            for sign, sel in ((0, q > 0), (1, q < 0)):
                for i, j in zip(*np.nonzero(sel)):
                    if (proj.pre, int(i), int(arr[j]), sign) not in pl.rows:
                        q[i, j] = 0
            self.net.write_weights(self.conn, proj, q)

    def counts(self, x, seed: int = 0) -> list[np.ndarray]:
        """Spike counts of every layer for samples x: (samples, size) each."""
        c = self.net.run_trials(self.conn, {self.source: x * INPUT_RATE}, TRIAL, GAP, seed)
        return [c[pop] for pop in self.layers]

    def predict(self, x, seed: int = 0) -> np.ndarray:
        return self.counts(x, seed)[-1].argmax(axis=1)


def map_network(conn, mlp: MLP, x_norm=None, steps: int = 4, calibration=None) -> Mapped:
    """Convert `mlp` onto the chip behind `conn` (see the module docstring),
    through `calibration` (calibrate_for) if given, else the nominal cells.
    Layers alternate between the synapse arrays where the chip has two, so
    that each array's rows carry one layer's inputs.  With samples `x_norm`,
    each layer's synaptic gain (its gm cells) is set, layer after layer, so
    that the 99th percentile of its spike counts on them is HEADROOM of the
    most a neuron fires in a trial (TRIAL / tau_refrac; data-based
    normalisation), by `steps` proportional corrections."""
    p = conn.profile
    wmax = (1 << p.weight_bits) - 1
    net = Network(calibration=calibration)
    src = net.poisson_source(mlp.weights[0].shape[0], 0.0, label="input")
    layers, projs, scales = [], [], []
    pre = src
    for k, w in enumerate(mlp.weights):
        pop = net.population(w.shape[1], label=f"layer{k + 1}", array=k % p.synapse_arrays, **NEURON)
        s = wmax / np.percentile(np.abs(w), 99)
        q = np.clip(np.round(w * s), -wmax, wmax).astype(np.int64)
        q = np.where(q == 0, np.where(w >= 0, 1, -1), q)          # every synapse present: ITL may grow it
        projs.append(net.project(pre, pop, FromMatrix(q), label=f"weights{k + 1}"))
        layers.append(pop)
        scales.append(s)
        pre = pop
    net.configure(conn)
    mapped = Mapped(conn, net, src, layers, projs, scales, wmax)
    if x_norm is not None:
        for k, pop in enumerate(layers):
            want = HEADROOM * TRIAL / pop.params["tau_refrac"]
            gm = float(pop.params["gm_exc"])
            for _ in range(steps):
                got = float(np.percentile(mapped.counts(x_norm)[k], 99))
                gm = float(np.clip(gm * (want / got if got > 0 else 4.0), *GM_RANGE))
                net.set_params(conn, pop, gm_exc=int(round(gm)), gm_inh=int(round(gm)))
    return mapped


def accuracy(pred, y) -> float:
    return float(np.mean(pred == y))


def train_in_the_loop(mapped: Mapped, mlp: MLP, x, y, iterations: int = 30, batch: int = 100, lr: float = 2e-2,
                      lr_end: float = 2e-3, update: bool = True, x_test=None, y_test=None, eval_every: int = 5,
                      seed: int = 0, progress=None) -> dict:
    """In-the-loop training (update=False: the same runs without the updates,
    the control).  The learning rate falls geometrically from `lr` to
    `lr_end`: steps must be large enough to move 4-bit weights by whole
    levels at first and small enough to settle.  Returns the test accuracy
    before training and every `eval_every` iterations (and after the last)."""
    weights = [w.copy() for w in mlp.weights]
    opt = Adam([w.shape for w in weights], lr)
    rng = np.random.default_rng(seed)
    history = {"test": [accuracy(mapped.predict(x_test, seed), y_test)], "iteration": [0]}
    for it in range(iterations):
        opt.lr = lr * (lr_end / lr) ** (it / max(iterations - 1, 1))
        b = rng.choice(len(x), batch, replace=False)
        if not update:                         # the control: same evaluations, no batches to learn from
            if (it + 1) % eval_every == 0 or it + 1 == iterations:
                history["test"].append(accuracy(mapped.predict(x_test, seed + 1 + it), y_test))
                history["iteration"].append(it + 1)
            if progress is not None:
                progress()
            continue
        counts = mapped.counts(x[b], seed + 1 + it)
        ideal = MLP(weights).forward(x[b])
        # measured activations, scaled to the software's per layer (least squares)
        acts = [x[b]]
        for c, a in zip(counts, ideal[1:]):
            c = c.astype(float)
            k = float((c * a).sum() / max((c * c).sum(), 1e-12))
            acts.append(c * k)
        if update:
            opt.step(weights, MLP(weights).gradients(acts, y[b]))
            mapped.write(weights)
        if (it + 1) % eval_every == 0 or it + 1 == iterations:
            history["test"].append(accuracy(mapped.predict(x_test, seed), y_test))
            history["iteration"].append(it + 1)
        if progress is not None:
            progress()
    history["weights"] = weights
    return history
