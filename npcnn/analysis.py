"""Activation studies over many samples: class-wise averages of every layer,
sparsity, channel redundancy and class selectivity.

    avg = npcnn.analysis.class_averages(model, x, y, per_class=500)
    avg["conv_1"]        # (10, 8, 28, 28): the mean conv_1 output of each digit
    avg.counts           # (10,) samples used per class
    avg.zero_fraction    # {layer: (10,)} fraction of exact zeros per class

Everything streams over batches, so memory does not grow with the dataset.
"""
import numpy as np

from . import checks
from .ops import class_sums, class_sums_numba


class ClassAverages(dict):
    """``{layer: (K, ...)}`` mean output per class, plus ``counts`` (K,)
    and ``zero_fraction`` ``{layer: (K,)}``."""

    def __init__(self, means, counts, zero_fraction):
        super().__init__(means)
        self.counts = counts
        self.zero_fraction = zero_fraction


def select_per_class(labels, per_class, n_classes=10, keep=None):
    """Indices of the first ``per_class`` samples of each class (in dataset
    order), among those where ``keep`` is True if given; sorted."""
    ok = np.ones(len(labels), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    chosen = [np.flatnonzero((labels == k) & ok)[:per_class] for k in range(n_classes)]
    return np.sort(np.concatenate(chosen))


def class_averages(model, x, y, per_class=500, n_classes=10, layers=None, keep=None,
                   batch_size=500):
    """Mean of every recorded layer's output over the first ``per_class``
    samples of each class.

    x: (N, C, H, W) inputs; y: (N,) labels in 0..n_classes-1; ``layers``:
    names to keep (default all); ``keep``: optional boolean mask (e.g. the
    correctly classified samples). Returns a ``ClassAverages``.
    """
    y = np.asarray(y)
    for name, value in (("per_class", per_class), ("n_classes", n_classes), ("batch_size", batch_size)):
        checks.count("class_averages", name, value)
    # a label outside 0..n_classes-1, or a float one, would be left out without a word
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"class_averages: y must hold one integer label per sample, got {y.dtype} {y.shape} "
                         f"for x {np.shape(x)}")
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        bad = y.min() if y.min() < 0 else y.max()
        raise ValueError(f"class_averages: label {int(bad)} is out of range 0..{n_classes - 1}")
    index = select_per_class(y, per_class, n_classes, keep)
    if index.size == 0:
        raise ValueError("class_averages: no samples selected (empty data, or keep excludes all)")
    wanted = model.layer_names if layers is None else [model.resolve(l) for l in layers]
    if len(set(wanted)) < len(wanted):   # each would be summed twice over
        raise ValueError(f"class_averages: layers name one layer more than once: {list(layers)} are {wanted}")
    add_class_sums = {"numpy": class_sums, "numba": class_sums_numba}[model.backend].add_class_sums
    sums, zeros, shapes = {}, {}, {}
    counts = np.zeros(n_classes, dtype=np.int64)
    for start in range(0, len(index), batch_size):
        idx = index[start:start + batch_size]
        # class by class, so that each class is one slice of the batch:
        # summing a slice needs no one-hot product and no float64 copy
        idx = idx[np.argsort(y[idx], kind="stable")]
        bounds = np.searchsorted(y[idx], np.arange(n_classes + 1))  # class k: [bounds[k], bounds[k+1])
        counts += np.diff(bounds)
        _, acts = model.forward(x[idx], record=True)
        for name in wanted:
            a = acts[name]
            flat = a.reshape(len(a), -1)                           # (n, D)
            if name not in sums:
                sums[name] = np.zeros((n_classes, flat.shape[1]))
                zeros[name] = np.zeros(n_classes)
                shapes[name] = a.shape[1:]
            # float64 accumulation: 500 float32 samples summed stay exact to ~1e-7
            add_class_sums(np.ascontiguousarray(flat), bounds, sums[name], zeros[name])
    safe = np.maximum(counts, 1)
    means, zero_fraction = {}, {}
    for name in wanted:
        shape = shapes[name]
        means[name] = (sums[name] / safe[:, None]).astype(x.dtype).reshape((n_classes,) + shape)
        zero_fraction[name] = zeros[name] / (safe * int(np.prod(shape)))
    return ClassAverages(means, counts, zero_fraction)


def _finite(op, name, a, ndim):
    """``a`` checked as the ops check their inputs: a float32 or float64
    array of ``ndim`` dimensions, holding no NaN or inf."""
    return checks.finite(op, name, checks.array(op, name, np.asarray(a), ndim=ndim))


def channel_correlation(class_maps):
    """Pearson correlation between channels of class-averaged maps.

    class_maps: (K, C, H, W); each channel is the vector of its K*H*W values.
    Returns (C, C). Constant channels (e.g. dead after a ReLU) get 0 off the
    diagonal rather than NaN. NaN or infinity is refused: it would make its
    channel look constant, correlated with nothing.
    """
    class_maps = _finite("channel_correlation", "class_maps", class_maps, ndim=4)
    K, C = class_maps.shape[:2]
    v = class_maps.transpose(1, 0, 2, 3).reshape(C, -1).astype(np.float64)
    v = v - v.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(v, axis=1)
    live = norm > 0
    corr = np.zeros((C, C))
    corr[np.ix_(live, live)] = (v[live] @ v[live].T) / np.outer(norm[live], norm[live])
    np.fill_diagonal(corr, 1.0)
    return corr


def near_duplicates(corr, threshold=0.95):
    """Pairs (i, j, r), i < j, of channels whose correlation is >= threshold."""
    i, j = np.triu_indices(len(corr), k=1)
    hit = corr[i, j] >= threshold
    return [(int(a), int(b), float(r)) for a, b, r in zip(i[hit], j[hit], corr[i, j][hit])]


def class_selectivity(class_means):
    """Selectivity index of each neuron (Morcos et al. 2018) from its
    class-conditional mean activity (K, D), activities >= 0 (after a ReLU):

        SI = (mu_max - mu_rest) / (mu_max + mu_rest)

    mu_max the largest class mean, mu_rest the mean over the other classes.
    0: responds equally to all classes; 1: only to one. Returns
    ``(index (D,), preferred class (D,))``; silent neurons get 0. At least
    two classes; negative means (a layer before its ReLU) and NaN or
    infinity are refused, where the index would be meaningless or would
    read 0.
    """
    m = _finite("class_selectivity", "class_means", class_means, ndim=2).astype(np.float64)
    K = m.shape[0]
    if K < 2:
        raise ValueError(f"class_selectivity: class_means needs at least two classes (rows), got shape {m.shape}")
    if m.size and m.min() < 0:
        k, d = np.unravel_index(np.argmin(m), m.shape)
        raise ValueError(f"class_selectivity: class_means must be >= 0 (activities after a ReLU), got "
                         f"{m[k, d]:.4g} for class {k}, unit {d} (shape {m.shape})")
    preferred = m.argmax(axis=0)
    top = m.max(axis=0)
    rest = (m.sum(axis=0) - top) / (K - 1)
    denom = top + rest
    si = np.where(denom > 0, (top - rest) / np.where(denom > 0, denom, 1), 0.0)
    return si, preferred
