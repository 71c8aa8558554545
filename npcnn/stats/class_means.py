"""Class-wise statistics of every layer, mergeable: each shard of a data set
adds into its own ``ClassMeans``, and any two merge into the statistics of
their union.

Per class k and layer, over the n_k samples of that class, with a the
layer's output flattened to D units:

    count[k]      = n_k
    sum[k, d]     = sum_i a[i, d]                 (float64)
    squares[k, d] = sum_i a[i, d]^2               (float64)
    zeros[k]      = #{(i, d): a[i, d] == 0}

    mean = sum / n_k,   variance = squares / n_k - mean^2,
    zero fraction = zeros[k] / (n_k * D)

Counts merge exactly; sums are float64 additions, so a merged result equals
the one-pass result to float64 rounding whatever the split into shards and
the order of the merges.

``spatial="mean"`` keeps one value per channel instead of one per unit: a
conv-stage output (n, C, H, W) is first averaged over its positions, so the
state of a layer is (K, C) instead of (K, C*H*W) (the zeros are still
counted over every unit). A full VGG16 over ImageNet's 1,000 classes needs
it: its conv1_1 alone would hold 3.2 million units per class
(benchmarks/SCALE.md).
"""
from dataclasses import dataclass

import numpy as np

from .. import checks


@dataclass
class ClassMeansResult:
    counts: np.ndarray          # (K,) samples per class
    means: dict                 # {layer: (K, ...)} float64
    variances: dict             # {layer: (K, ...)} float64, population variance
    zero_fraction: dict         # {layer: (K,)} fraction of exact zeros


class ClassMeans:
    """Per class and layer: count, sum and sum of squares (float64), zeros."""

    kind = "class_means"

    def __init__(self, layers, n_classes, spatial="keep"):
        if spatial not in ("keep", "mean"):
            raise ValueError(f"ClassMeans: spatial must be 'keep' or 'mean', got {spatial!r}")
        if isinstance(layers, str):
            layers = [layers]
        if not layers:
            raise ValueError("ClassMeans: layers must name at least one layer")
        checks.count("ClassMeans", "n_classes", n_classes)
        twice = [layer for k, layer in enumerate(layers) if layer in layers[:k]]
        if twice:   # each batch would be added to it twice over
            raise ValueError(f"ClassMeans: layers name {twice[0]} more than once: {list(layers)}")
        self.layers = list(layers)
        self.n_classes = int(n_classes)
        self.spatial = spatial
        self.counts = np.zeros(self.n_classes, dtype=np.int64)
        self.sums, self.squares, self.zeros, self.shapes = {}, {}, {}, {}
        self.units = {}   # units per sample of each layer, the zero fraction's denominator

    def empty(self):
        """A new, empty ClassMeans of the same layers and classes."""
        return ClassMeans(self.layers, self.n_classes, self.spatial)

    def is_empty(self):
        return not self.shapes and not self.counts.any()

    def add(self, activations, labels, ids=None):
        """Add a batch: ``activations`` {layer: (n, ...)}, ``labels`` (n,) in 0..K-1."""
        labels = np.asarray(labels)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"ClassMeans.add: labels must be integers (n,), got {labels.dtype} "
                             f"{labels.shape}")
        if len(labels) and (labels.min() < 0 or labels.max() >= self.n_classes):
            bad = labels.min() if labels.min() < 0 else labels.max()
            raise ValueError(f"ClassMeans.add: label {int(bad)} is out of range 0..{self.n_classes - 1}")
        present = np.unique(labels)
        added = {}   # every layer's sums of the batch, all checked before any is added: a refused batch adds nothing
        for layer in self.layers:
            a = np.asarray(activations[layer])
            if len(a) != len(labels):
                raise ValueError(f"ClassMeans.add: {layer} has {len(a)} rows, labels {len(labels)}")
            units = int(np.prod(a.shape[1:]))
            zeros_each = np.count_nonzero(a.reshape(len(a), -1) == 0, axis=1)     # (n,) per sample
            if self.spatial == "mean" and a.ndim == 4:
                a = a.mean(axis=(2, 3), dtype=np.float64)                          # (n, C)
            self._check_shape(layer, a.shape[1:])
            flat = a.reshape(len(a), -1).astype(np.float64, copy=False)           # (n, D)
            sums, squares = np.empty((2, len(present), flat.shape[1]))
            for i, k in enumerate(present):
                rows = flat[labels == k]
                sums[i], squares[i] = rows.sum(axis=0), np.einsum("ij,ij->j", rows, rows)
            # a NaN or an infinity reaches the sums (tested there, not on every value): as TopK, refused,
            # where it would make its class's every mean NaN
            if not np.isfinite(squares).all():
                raise ValueError(f"ClassMeans.add: {layer} holds NaN or infinite values")
            zeros = np.bincount(labels, weights=zeros_each, minlength=self.n_classes).astype(np.int64)
            added[layer] = (a.shape[1:], units, sums, squares, zeros)
        self.counts += np.bincount(labels, minlength=self.n_classes)
        for layer, (shape, units, sums, squares, zeros) in added.items():
            self._start(layer, shape, units)
            self.sums[layer][present] += sums
            self.squares[layer][present] += squares
            self.zeros[layer] += zeros
        return self

    def _check_shape(self, layer, shape):
        if layer in self.shapes and self.shapes[layer] != tuple(shape):
            raise ValueError(f"ClassMeans: {layer} has shape {tuple(shape)} here, {self.shapes[layer]} before")

    def _start(self, layer, shape, units):
        shape = tuple(int(s) for s in shape)
        self._check_shape(layer, shape)
        if layer not in self.shapes:
            D = int(np.prod(shape))
            self.shapes[layer] = shape
            self.units[layer] = int(units)
            self.sums[layer] = np.zeros((self.n_classes, D))
            self.squares[layer] = np.zeros((self.n_classes, D))
            self.zeros[layer] = np.zeros(self.n_classes, dtype=np.int64)

    def merge(self, other):
        """Add ``other``'s statistics into these (same layers and classes); returns self."""
        if (other.layers, other.n_classes, other.spatial) != (self.layers, self.n_classes, self.spatial):
            raise ValueError(f"ClassMeans.merge: layers {other.layers}, {other.n_classes} classes, spatial "
                             f"{other.spatial!r} against {self.layers}, {self.n_classes}, {self.spatial!r}")
        for layer, shape in other.shapes.items():   # checked first: a refused merge changes nothing
            self._check_shape(layer, shape)
        self.counts += other.counts
        for layer, shape in other.shapes.items():
            self._start(layer, shape, other.units[layer])
            self.sums[layer] += other.sums[layer]
            self.squares[layer] += other.squares[layer]
            self.zeros[layer] += other.zeros[layer]
        return self

    def result(self):
        """Means, variances and zero fractions; a class with no sample gets zeros."""
        safe = np.maximum(self.counts, 1)[:, None]                        # (K, 1)
        means, variances, zero_fraction = {}, {}, {}
        for layer in self.layers:
            if layer not in self.shapes:
                raise ValueError(f"ClassMeans.result: nothing was added for {layer}")
            shape = (self.n_classes,) + self.shapes[layer]
            mean = self.sums[layer] / safe
            means[layer] = mean.reshape(shape)
            variances[layer] = np.maximum(self.squares[layer] / safe - mean * mean, 0).reshape(shape)
            zero_fraction[layer] = self.zeros[layer] / (safe[:, 0] * self.units[layer])
        return ClassMeansResult(self.counts.copy(), means, variances, zero_fraction)

    def state_dict(self):
        """Plain arrays (for ``np.savez``): the configuration and every sum."""
        state = {"kind": np.array(self.kind), "layers": np.array(self.layers), "counts": self.counts,
                 "n_classes": np.array(self.n_classes), "spatial": np.array(self.spatial)}
        for layer in self.shapes:
            state[f"{layer}/shape"] = np.array(self.shapes[layer], dtype=np.int64)
            state[f"{layer}/units"] = np.array(self.units[layer], dtype=np.int64)
            state[f"{layer}/sum"] = self.sums[layer]
            state[f"{layer}/squares"] = self.squares[layer]
            state[f"{layer}/zeros"] = self.zeros[layer]
        return state

    @classmethod
    def from_state_dict(cls, state):
        stats = cls([str(s) for s in state["layers"]], int(state["n_classes"]), str(state["spatial"]))
        stats.load_state_dict(state)
        return stats

    def load_state_dict(self, state):
        if str(state["kind"]) != self.kind:
            raise ValueError(f"ClassMeans.load_state_dict: the state is of a {state['kind']}")
        self.__init__([str(s) for s in state["layers"]], int(state["n_classes"]), str(state["spatial"]))
        counts = np.asarray(state["counts"])
        if counts.shape != (self.n_classes,) or counts.dtype.kind not in "iu" or (counts < 0).any():
            raise ValueError(f"ClassMeans.load_state_dict: counts must be {self.n_classes} counts >= 0, got "
                             f"{counts.dtype} {counts.shape}")
        self.counts = counts.astype(np.int64)
        for layer in self.layers:
            if f"{layer}/shape" in state:
                self._start(layer, tuple(int(s) for s in state[f"{layer}/shape"]), int(state[f"{layer}/units"]))
                K, D = self.sums[layer].shape
                arrays = {key: np.asarray(state[f"{layer}/{key}"]) for key in ("sum", "squares", "zeros")}
                if (arrays["sum"].shape, arrays["squares"].shape, arrays["zeros"].shape) != ((K, D), (K, D), (K,)):
                    raise ValueError(f"ClassMeans.load_state_dict: {layer}'s sums, squares and zeros do not "
                                     f"match its shape {self.shapes[layer]} and {K} classes")
                self.sums[layer] = arrays["sum"].astype(np.float64)
                self.squares[layer] = arrays["squares"].astype(np.float64)
                self.zeros[layer] = arrays["zeros"].astype(np.int64)
        return self
