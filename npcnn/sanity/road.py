"""ROAD, "Remove And Debias" (Rong, Leemann, Borisov, Kasneci & Kasneci,
ICML 2022): removing pixels by a constant leaks the map's shape to the
network (it sees where the holes are); ROAD fills them with a noisy linear
imputation from their neighbours instead, so that what the score loses is
what the pixels carried.

Noisy linear imputation: each removed pixel i takes the weighted mean of
its eight neighbours j (inside the image), w = 1/6 side by side, 1/12 on a
diagonal, the removed neighbours unknowns too:

    sum_j w_ij (x_i - x_j) = 0    for every removed i
    <=>  (sum_j w_ij) x_i - sum_{j removed} w_ij x_j = sum_{j kept} w_ij x_j

one sparse linear system per image (the same matrix for every channel),
then Gaussian noise of std ``noise`` (ROAD's default 0.01, in the input's
units) is added to the imputed pixels. It has one solution whenever a pixel
is kept: every group of removed pixels then borders a kept one.

MoRF ("most relevant first") removes the fraction p of pixels the map
ranks highest, LeRF ("least relevant first") the lowest: a faithful map
makes the score fall fast under MoRF and slowly under LeRF.
"""
import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from .curves import ranking

ORDERS = ("morf", "lerf")
NEIGHBOURS = ((-1, 0, 1 / 6), (1, 0, 1 / 6), (0, -1, 1 / 6), (0, 1, 1 / 6),
              (-1, -1, 1 / 12), (-1, 1, 1 / 12), (1, -1, 1 / 12), (1, 1, 1 / 12))
DEFAULT_NOISE = 0.01
DEFAULT_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)


def impute(image, removed, noise=DEFAULT_NOISE, rng=None):
    """``image`` (C, H, W) with the pixels of ``removed`` (H, W) bool replaced
    by the noisy linear imputation above; a new array."""
    image = np.asarray(image)
    C, H, W = image.shape
    removed = np.asarray(removed, dtype=bool)
    if removed.shape != (H, W):
        raise ValueError(f"impute: mask {removed.shape} does not match the image's {H}x{W}")
    if removed.all():
        raise ValueError("impute: every pixel removed; the imputation needs at least one kept")
    out = image.astype(np.float64, copy=True)
    unknown = np.flatnonzero(removed)                               # (K,) row-major pixel indices
    K = len(unknown)
    if K == 0:
        return out.astype(image.dtype)
    place = np.full(H * W, -1, dtype=np.int64)
    place[unknown] = np.arange(K)
    ui, uj = np.divmod(unknown, W)
    rows, cols, vals = [], [], []
    diagonal = np.zeros(K)
    rhs = np.zeros((K, C))
    flat = out.reshape(C, H * W)
    for di, dj, w in NEIGHBOURS:
        ni, nj = ui + di, uj + dj
        inside = (ni >= 0) & (ni < H) & (nj >= 0) & (nj < W)
        k = np.flatnonzero(inside)                                    # equations with this neighbour
        j = ni[inside] * W + nj[inside]
        diagonal[k] += w
        is_unknown = place[j] >= 0
        rows.append(k[is_unknown])
        cols.append(place[j[is_unknown]])
        vals.append(np.full(is_unknown.sum(), -w))
        np.add.at(rhs, k[~is_unknown], w * flat[:, j[~is_unknown]].T)
    rows.append(np.arange(K))
    cols.append(np.arange(K))
    vals.append(diagonal)
    A = scipy.sparse.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(K, K))
    values = scipy.sparse.linalg.spsolve(A, rhs).reshape(K, C)       # (K, C)
    if noise:
        rng = np.random.default_rng(rng)
        values = values + noise * rng.standard_normal((K, C))
    flat[:, unknown] = values.T
    return out.astype(image.dtype)


def removed_mask(map_, fraction, order):
    """The (H, W) mask of the round(fraction * P) pixels that ``map_`` ranks
    first ("morf") or last ("lerf")."""
    if order not in ORDERS:
        raise ValueError(f"road: order must be one of {', '.join(ORDERS)}, got {order!r}")
    if not 0 <= fraction < 1:
        raise ValueError(f"road: fractions must be in [0, 1), got {fraction!r}")
    H, W = np.shape(map_)
    ranked = ranking(np.asarray(map_)[None])[0]                       # most relevant first
    n = int(round(fraction * H * W))
    chosen = ranked[:n] if order == "morf" else ranked[H * W - n:]
    mask = np.zeros(H * W, dtype=bool)
    mask[chosen] = True
    return mask.reshape(H, W)


def road_images(image, map_, fractions=DEFAULT_FRACTIONS, order="morf", noise=DEFAULT_NOISE, seed=0):
    """(F, C, H, W): the image with each fraction of its pixels removed in
    ``order`` of ``map_`` (H, W) and imputed; the noise is drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    return np.stack([impute(image, removed_mask(map_, p, order), noise, rng) for p in fractions])
