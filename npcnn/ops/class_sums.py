"""Per-class sums of a batch sorted by class: the reference.

``class_averages`` (npcnn/analysis.py) streams batches through a model and,
for every recorded layer, adds each class's outputs into running float64
sums and counts its exact zeros. The batch is sorted by label, so class k
is the slice of rows bounds[k]:bounds[k+1] of the flattened output.
``class_sums_numba.py`` has the same function, in one pass over the batch.
"""
import numpy as np


def add_class_sums(flat, bounds, sums, zeros):
    """For every class k, in place:

        sums[k, d] += sum_{r in [bounds[k], bounds[k+1])} flat[r, d]     (in float64)
        zeros[k]   += #{(r, d) : flat[r, d] == 0}

    flat: (n, D) float32 or float64, rows sorted by class; bounds: (K+1,)
    int64, nondecreasing, bounds[0] = 0 and bounds[K] = n; sums: (K, D)
    float64; zeros: (K,) float64. Rows are added in order, one at a time.
    """
    for k in range(len(bounds) - 1):
        rows = flat[bounds[k]:bounds[k + 1]]
        if len(rows):
            sums[k] += rows.sum(axis=0, dtype=np.float64)
            zeros[k] += rows.size - np.count_nonzero(rows)
