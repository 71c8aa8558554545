"""Ranks and Spearman's rank correlation of maps, one value per map pair.

    rho(a, b) = pearson(rank(a), rank(b))
              = sum_p (ra_p - mean ra)(rb_p - mean rb) / sqrt(sum_p (ra_p - mean ra)^2 sum_p (rb_p - mean rb)^2)

Tied values share the mean of the ranks they span (the rule of
``scipy.stats.spearmanr``). With that rule rank(-a) = P + 1 - rank(a)
exactly, so rho(a, -a) = -1 for any map that is not constant.

A constant map carries no order, and Pearson's formula would divide by
zero. Defined here: a constant map against one that is not scores 0 (no
shared order); two constant maps score 1 (they agree that there is none;
so every map scores 1 against itself, a Grad-CAM map that a ReLU zeroed
everywhere included).
"""
import numpy as np


def rank(values):
    """Ranks 1..P of each row of ``values`` (N, P), ties averaged. Returns float64 (N, P)."""
    values = np.asarray(values)
    N, P = values.shape
    order = np.argsort(values, axis=1, kind="stable")                 # (N, P)
    ranks = np.empty((N, P), dtype=np.float64)
    for n in range(N):
        sorted_values = values[n, order[n]]
        # a run of equal values starts where the value changes
        starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
        ends = np.r_[starts[1:], P]                                     # exclusive
        mean_rank = (starts + ends + 1) / 2.0                           # mean of starts+1 .. ends
        ranks[n, order[n]] = np.repeat(mean_rank, ends - starts)
    return ranks


def pearson(a, b):
    """Pearson's correlation of each row pair of a, b (N, P); 0 where one row
    is constant, 1 where both are."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    da = a - a.mean(axis=1, keepdims=True)
    db = b - b.mean(axis=1, keepdims=True)
    norm = np.sqrt((da * da).sum(axis=1) * (db * db).sum(axis=1))     # (N,)
    num = (da * db).sum(axis=1)
    flat_a, flat_b = (da == 0).all(axis=1), (db == 0).all(axis=1)
    out = np.where(flat_a & flat_b, 1.0, 0.0)
    ok = norm > 0
    out[ok] = np.clip(num[ok] / norm[ok], -1.0, 1.0)                   # rounding can leave |r| a hair above 1
    return out


def spearman(a, b):
    """Spearman's rank correlation of each pair of maps a[n], b[n]; a, b (N, ...) of one shape. Returns (N,)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"spearman: maps of shapes {a.shape} and {b.shape}; they must match")
    N = len(a)
    return pearson(rank(a.reshape(N, -1)), rank(b.reshape(N, -1)))
