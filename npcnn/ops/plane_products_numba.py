"""Winograd's 16 matrix products in one jitted kernel: M[e] = U[e] @ V[e].

The products of ``winograd_numba.py`` (the transformed filters (F, C)
times the transformed tiles (C, P), for each of the 16 positions e of a
4x4 tile), which ``np.matmul`` would run as 16 OpenBLAS calls. OpenBLAS
runs them with its 32-byte vector kernels on this machine, where the CPU
has 64-byte vectors (``runtime/simd.py``), and its threads keep spinning
after each call, beside numba's. Here all 16 run in one parallel loop of
register tiles: ROWS rows of U[e] by VECTORS vectors of columns of V[e],
ROWS * VECTORS accumulators summed over all C before they are stored.
Each step of the sum loads VECTORS vectors of V and broadcasts ROWS
values of U for ROWS * VECTORS multiply-adds.

Layout: the planes are rows of 2-d arrays, U (16, F*C) row-major per
plane; V (16, >= C*Pp) and M (16, >= F*Pp) with rows of Pp elements, Pp a
whole number of vectors (the columns from P to Pp are computed from
whatever V holds there and never read). The last tile of rows repeats
the last row of U and stores only the rows that exist; columns past the
last whole tile go one vector at a time.
"""
from numba import njit, prange

from .runtime import simd, tuning
from .runtime.jit import Kernel
from .runtime.simd import fma, load, splat, splat_at, store

ROWS = 4      # rows of U[e] in a register tile
VECTORS = 4   # vectors of columns of V[e] in a register tile


def _four_vectors(U, V, M, e, f0, F, C, Pp, p):
    """M[e, (f0+r)*Pp + p : +4L] = sum_c U[e, (f0+r)*C + c] * V[e, c*Pp + p : +4L] for r < 4
    (rows past F repeat row F - 1 and are not stored)."""
    L = simd.lanes_of(V)
    u, v, m = U[e], V[e], M[e]
    f1, f2, f3 = min(f0 + 1, F - 1), min(f0 + 2, F - 1), min(f0 + 3, F - 1)
    z = splat(0.0, v)
    a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = z
    a20 = a21 = a22 = a23 = a30 = a31 = a32 = a33 = z
    for c in range(C):
        k = c * Pp + p
        v0, v1, v2, v3 = load(v, k), load(v, k + L), load(v, k + 2 * L), load(v, k + 3 * L)
        w = splat_at(u, f0 * C + c)
        a00, a01, a02, a03 = fma(v0, w, a00), fma(v1, w, a01), fma(v2, w, a02), fma(v3, w, a03)
        w = splat_at(u, f1 * C + c)
        a10, a11, a12, a13 = fma(v0, w, a10), fma(v1, w, a11), fma(v2, w, a12), fma(v3, w, a13)
        w = splat_at(u, f2 * C + c)
        a20, a21, a22, a23 = fma(v0, w, a20), fma(v1, w, a21), fma(v2, w, a22), fma(v3, w, a23)
        w = splat_at(u, f3 * C + c)
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


def _one_vector(U, V, M, e, f0, F, C, Pp, p):
    """``_four_vectors`` for the one vector of columns at p."""
    u, v, m = U[e], V[e], M[e]
    f1, f2, f3 = min(f0 + 1, F - 1), min(f0 + 2, F - 1), min(f0 + 3, F - 1)
    a0 = a1 = a2 = a3 = splat(0.0, v)
    for c in range(C):
        v0 = load(v, c * Pp + p)
        a0 = fma(v0, splat_at(u, f0 * C + c), a0)
        a1 = fma(v0, splat_at(u, f1 * C + c), a1)
        a2 = fma(v0, splat_at(u, f2 * C + c), a2)
        a3 = fma(v0, splat_at(u, f3 * C + c), a3)
    s = f0 * Pp + p
    store(m, s, a0)
    if f0 + 1 < F:
        store(m, s + Pp, a1)
    if f0 + 2 < F:
        store(m, s + 2 * Pp, a2)
    if f0 + 3 < F:
        store(m, s + 3 * Pp, a3)


def _products_py(U, V, M, F, C, Pp):
    """M[e][:F, :Pp] = U[e] (F, C) @ V[e] (C, Pp) for e < 16 (layout: the
    module docstring). Tasks are (plane, column tile) pairs; each runs down
    all tiles of rows, so its columns of V stay in cache."""
    L = simd.lanes_of(V)
    wide = VECTORS * L
    column_tiles = (Pp + wide - 1) // wide
    for task in prange(16 * column_tiles):
        e, p0 = task // column_tiles, (task % column_tiles) * wide
        for f0 in range(0, F, ROWS):
            if p0 + wide <= Pp:
                _four_vectors(U, V, M, e, f0, F, C, Pp, p0)
            else:
                for p in range(p0, Pp, L):
                    _one_vector(U, V, M, e, f0, F, C, Pp, p)


_four_vectors = njit(cache=True)(_four_vectors)
_one_vector = njit(cache=True)(_one_vector)
# work: multiply-adds
_products = Kernel(_products_py, cost=tuning.COST_MULTIPLY_ADD)


def products(U, V, M, F, C, Pp):
    """M[e, f*Pp + p] = sum_c U[e, f*C + c] * V[e, c*Pp + p] for the 16
    planes e, f < F, p < Pp (Pp a multiple of ``simd.lanes``)."""
    assert Pp % simd.lanes(V.dtype) == 0 and U.shape[1] >= F * C
    assert V.shape[1] >= C * Pp and M.shape[1] >= F * Pp
    _products(U, V, M, F, C, Pp, work=16 * F * C * Pp)
