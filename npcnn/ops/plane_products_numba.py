"""Stacked matrix products in one jitted kernel: M[e] = U[e] @ V[e].

Two callers: Winograd's 16 products (``winograd_numba.py``: the
transformed filters (F, C) times the transformed tiles (C, P), for each
of the 16 positions e of a 4x4 tile), and im2col's products, one plane
per image (``im2col_numba.py``: the filters (F, K) times the column
matrix (K, L), all images sharing the one plane of U). ``np.matmul``
would run them as OpenBLAS calls, with its 32-byte vector kernels on
this machine, where the CPU has 64-byte vectors (``runtime/simd.py``),
and OpenBLAS's threads keep spinning after each call, taking a core from
the numba kernels that follow (``benchmarks/TUNING.md``). Here all
planes run in one parallel loop of register tiles: ROWS rows of U[e] by
VECTORS vectors of columns of V[e], ROWS * VECTORS accumulators summed
over all C before they are stored. Each step of the sum loads VECTORS
vectors of V and broadcasts ROWS values of U for ROWS * VECTORS
multiply-adds.

Layout: the planes are rows of 2-d arrays: U (16, F*C) row-major per
plane, or (1, F*C) shared by every plane (either may hold (C, F) planes
instead, read transposed); V (planes, >= C*Pp) and M (planes, >= F*Pp)
with rows of Pp elements, Pp a whole number of vectors (the columns from
P to Pp are computed from whatever V holds there and never read). The
last tile of rows repeats the last row of U and stores only the rows that
exist; columns past the last whole tile go one vector at a time.
"""
from numba import njit, prange

from .runtime import simd, tuning
from .runtime.jit import Kernel
from .runtime.simd import fma, load, splat, splat_at, store

ROWS = 4      # rows of U[e] in a register tile
VECTORS = 4   # vectors of columns of V[e] in a register tile


def _four_vectors(U, V, M, e, f0, F, C, Pp, p, sf, sc):
    """M[e, (f0+r)*Pp + p : +4L] = sum_c U[e, (f0+r)*sf + c*sc] * V[e, c*Pp + p : +4L] for r < 4
    (rows past F repeat row F - 1 and are not stored)."""
    L = simd.lanes_of(V)
    u, v, m = U[e if U.shape[0] > 1 else 0], V[e], M[e]
    f1, f2, f3 = min(f0 + 1, F - 1), min(f0 + 2, F - 1), min(f0 + 3, F - 1)
    z = splat(0.0, v)
    a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = z
    a20 = a21 = a22 = a23 = a30 = a31 = a32 = a33 = z
    for c in range(C):
        k = c * Pp + p
        v0, v1, v2, v3 = load(v, k), load(v, k + L), load(v, k + 2 * L), load(v, k + 3 * L)
        w = splat_at(u, f0 * sf + c * sc)
        a00, a01, a02, a03 = fma(v0, w, a00), fma(v1, w, a01), fma(v2, w, a02), fma(v3, w, a03)
        w = splat_at(u, f1 * sf + c * sc)
        a10, a11, a12, a13 = fma(v0, w, a10), fma(v1, w, a11), fma(v2, w, a12), fma(v3, w, a13)
        w = splat_at(u, f2 * sf + c * sc)
        a20, a21, a22, a23 = fma(v0, w, a20), fma(v1, w, a21), fma(v2, w, a22), fma(v3, w, a23)
        w = splat_at(u, f3 * sf + c * sc)
        a30, a31, a32, a33 = fma(v0, w, a30), fma(v1, w, a31), fma(v2, w, a32), fma(v3, w, a33)
    s = f0 * Pp + p
    store(m, s, a00), store(m, s + L, a01), store(m, s + 2 * L, a02), store(m, s + 3 * L, a03)
    if f0 + 1 < F:
        s += Pp
        store(m, s, a10), store(m, s + L, a11), store(m, s + 2 * L, a12), store(m, s + 3 * L, a13)
    if f0 + 2 < F:
        s += Pp
        store(m, s, a20), store(m, s + L, a21), store(m, s + 2 * L, a22), store(m, s + 3 * L, a23)
    if f0 + 3 < F:
        s += Pp
        store(m, s, a30), store(m, s + L, a31), store(m, s + 2 * L, a32), store(m, s + 3 * L, a33)


def _one_vector(U, V, M, e, f0, F, C, Pp, p, sf, sc):
    """``_four_vectors`` for the one vector of columns at p."""
    u, v, m = U[e if U.shape[0] > 1 else 0], V[e], M[e]
    f1, f2, f3 = min(f0 + 1, F - 1), min(f0 + 2, F - 1), min(f0 + 3, F - 1)
    a0 = a1 = a2 = a3 = splat(0.0, v)
    for c in range(C):
        v0 = load(v, c * Pp + p)
        a0 = fma(v0, splat_at(u, f0 * sf + c * sc), a0)
        a1 = fma(v0, splat_at(u, f1 * sf + c * sc), a1)
        a2 = fma(v0, splat_at(u, f2 * sf + c * sc), a2)
        a3 = fma(v0, splat_at(u, f3 * sf + c * sc), a3)
    s = f0 * Pp + p
    store(m, s, a0)
    if f0 + 1 < F:
        store(m, s + Pp, a1)
    if f0 + 2 < F:
        store(m, s + 2 * Pp, a2)
    if f0 + 3 < F:
        store(m, s + 3 * Pp, a3)


def _products_py(U, V, M, F, C, Pp, sf, sc):
    """M[e][:F, :Pp] = U[e] (F, C) @ V[e] (C, Pp) for every plane e of V,
    U's element (f, c) at f*sf + c*sc (layout: the module docstring).
    Tasks are (plane, column tile) pairs; each runs down all tiles of rows,
    so its columns of V stay in cache."""
    L = simd.lanes_of(V)
    wide = VECTORS * L
    column_tiles = (Pp + wide - 1) // wide
    for task in prange(V.shape[0] * column_tiles):
        e, p0 = task // column_tiles, (task % column_tiles) * wide
        for f0 in range(0, F, ROWS):
            if p0 + wide <= Pp:
                _four_vectors(U, V, M, e, f0, F, C, Pp, p0, sf, sc)
            else:
                for p in range(p0, Pp, L):
                    _one_vector(U, V, M, e, f0, F, C, Pp, p, sf, sc)


_four_vectors = njit(cache=True)(_four_vectors)
_one_vector = njit(cache=True)(_one_vector)
# work: multiply-adds
_products = Kernel(_products_py, cost=tuning.COST_MULTIPLY_ADD)


def products(U, V, M, F, C, Pp, transposed=False):
    """M[e, f*Pp + p] = sum_c U[e, f*C + c] * V[e, c*Pp + p] for every plane
    e of V, f < F, p < Pp (Pp a multiple of ``simd.lanes``); U holds one
    plane per plane of V, or one for all. With ``transposed``, U's planes
    hold (C, F) matrices instead, read as their transposes: U[e, c*F + f]
    for (f, c), a weight used as W^T with no transposed copy."""
    assert Pp % simd.lanes(V.dtype) == 0 and U.shape[1] >= F * C and U.shape[0] in (1, V.shape[0])
    assert V.shape[1] >= C * Pp and M.shape[1] >= F * Pp and M.shape[0] == V.shape[0]
    sf, sc = (1, F) if transposed else (C, 1)
    _products(U, V, M, F, C, Pp, sf, sc, work=V.shape[0] * F * C * Pp)
