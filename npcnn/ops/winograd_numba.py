"""3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3).

A path of the numba backend's ``conv2d`` and ``conv_transpose2d`` (when:
the table in ``conv_numba.py``; VGG16's convolutions from conv1_2 to conv4_3
at 224x224, and their transposes in the deconvnet). ``winograd.py`` beside
it is the same algorithm in a few lines of NumPy. Both give the numbers of
``conv.conv2d`` with 16 multiplications for every 2x2 outputs where the
direct sum does 36 (Lavin & Gray, "Fast Algorithms for Convolutional
Neural Networks", 2016).

Every 2x2 tile of the output comes from a 4x4 tile d of the padded input
(the tiles overlap by two rows and columns), and for each pair of
channels

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* elementwise, on 4x4)

    B^T = [[1, 0, -1,  0],   G = [[1,    0,   0  ],   A^T = [[1, 1,  1,  0],
           [0, 1,  1,  0],        [1/2,  1/2, 1/2],          [0, 1, -1, -1]]
           [0, -1, 1,  0],        [1/2, -1/2, 1/2],
           [0, 1,  0, -1]]        [0,    0,   1  ]]

with g the 3x3 filter. The sum over the input channels c commutes with
A^T (.) A, so each of the 16 positions e of a transformed tile is one
matrix product over all tiles p at once:

    U[e] = (G g G^T)[e]     (F, C)   the filters, transformed
    V[e] = (B^T d B)[e]     (C, P)   the input tiles, transformed
    M[e] = U[e] @ V[e]      (F, P)   16 BLAS products
    y    = A^T M A + b               per tile, back to 2x2 outputs

Output size: Ho = H + 2*pH - 2, Wo = W + 2*pW - 2 (stride 1), in
th x tw = ceil(Ho/2) x ceil(Wo/2) tiles per image; the last tile row or
column is cut in half when Ho or Wo is odd.

The products run in bands of tile rows, so that V and M stay near
``tuning.WINOGRAD_BAND_BYTES`` (in reused buffers), each band three
parallel loops (transform, products, untransform). Filters small enough
to stay in cache (64 to 128 channels) take one parallel loop for the
whole layer instead, each thread transforming, multiplying and
untransforming its own tile rows in its own V and M
(``_layer_by_thread``). The transforms add float rounding of the order
of the direct sum's: the parity tests hold it to the same tolerances as
the other paths.
"""
from numba import get_thread_id, njit, prange
import numpy as np

from . import plane_products_numba
from .runtime import simd, tuning, weight_cache, workspace
from .runtime.jit import Kernel, thread_slots
from .runtime.rows import copy_relu

_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_G_KRON_G = np.kron(_G, _G)  # (16, 9): row 4r + s, column 3p + q holds G[r, p] * G[s, q]


def _add(out, a, b):
    for k in range(out.shape[0]):
        out[k] = a[k] + b[k]


def _sub(out, a, b):
    for k in range(out.shape[0]):
        out[k] = a[k] - b[k]


# Each transform below is short loops that read two to four rows and write
# one, all of C-contiguous arrays (hence the whole skewed plane arrays of
# ``workspace.planes`` as arguments): LLVM vectorises those, where one loop
# writing 16 planes through strided views stays scalar.

def _transform_tiles_py(x, pH, pW, th, tw, g0, g1, Pp, V):
    """V[4r + s, c*Pp + p] = (B^T d B)[r, s] for the tiles d of the zero-padded
    input in the global tile rows [g0, g1) (tile row g is row g % th of
    image g // th), p = (g - g0)*tw + j < P = (g1 - g0)*tw <= Pp.

    B^T d combines the four input rows of a tile row, (d0 - d2, d1 + d2,
    d2 - d1, d1 - d3), along the whole row (rows in the padding are zero);
    (.) B then combines each tile's four columns 2j .. 2j+3 the same way,
    from the combined rows split into their even and odd columns."""
    N, C, H, W = x.shape
    R = g1 - g0
    items = C * R
    chunks = min(items, 256)                    # the scratch rows are allocated per chunk
    for chunk in prange(chunks):
        zero = np.zeros(W, dtype=x.dtype)
        combined = np.zeros((4, 2 * tw + 2), dtype=x.dtype)  # B^T d, padding columns stay zero
        rows = np.empty((2, 4, tw + 1), dtype=x.dtype)       # its even, odd columns
        for cg in range(chunk * items // chunks, (chunk + 1) * items // chunks):
            c, gr = cg // R, cg % R
            n, i = (g0 + gr) // th, 2 * ((g0 + gr) % th) - pH   # input row of d0
            d0 = x[n, c, i] if 0 <= i < H else zero
            d1 = x[n, c, i + 1] if 0 <= i + 1 < H else zero
            d2 = x[n, c, i + 2] if 0 <= i + 2 < H else zero
            d3 = x[n, c, i + 3] if 0 <= i + 3 < H else zero
            _sub(combined[0, pW:pW + W], d0, d2)
            _add(combined[1, pW:pW + W], d1, d2)
            _sub(combined[2, pW:pW + W], d2, d1)
            _sub(combined[3, pW:pW + W], d1, d3)
            for r in range(4):
                for k in range(tw + 1):
                    rows[0, r, k] = combined[r, 2 * k]
                    rows[1, r, k] = combined[r, 2 * k + 1]
            p0 = c * Pp + gr * tw
            for r in range(4):
                e, o = rows[0, r], rows[1, r]          # columns 2j: e[j], 2j+1: o[j], 2j+2: e[j+1], 2j+3: o[j+1]
                _sub(V[4 * r, p0:p0 + tw], e[:tw], e[1:])
                _add(V[4 * r + 1, p0:p0 + tw], o[:tw], e[1:])
                _sub(V[4 * r + 2, p0:p0 + tw], e[1:], o[:tw])
                _sub(V[4 * r + 3, p0:p0 + tw], o[:tw], o[1:])


def _untransform_tiles_py(M, bias, relu, th, tw, g0, g1, Pp, y):
    """y[n, f, 2ti + a, 2j + b] = (A^T m A)[a, b] + bias[f], m = M[:, f*Pp + p],
    for the tiles of the global tile rows [g0, g1); the half tiles past an
    odd Ho or Wo are dropped. With ``relu``, max(y, 0) instead, applied to
    each output row while it is in cache.

    A^T m combines the four rows of m into two, (m0 + m1 + m2, m1 - m2 - m3),
    along the whole tile row; (.) A then combines the four columns the same
    way into output columns 2j and 2j + 1."""
    N, F, Ho, Wo = y.shape
    R = g1 - g0
    items = F * R
    chunks = min(items, 256)
    for chunk in prange(chunks):
        rows = np.empty((2, 4, tw), dtype=M.dtype)    # A^T m: output row a, column s of the tile
        for fg in range(chunk * items // chunks, (chunk + 1) * items // chunks):
            f, gr = fg // R, fg % R
            n, i = (g0 + gr) // th, 2 * ((g0 + gr) % th)
            p0, bf = f * Pp + gr * tw, bias[f]
            for s in range(4):
                m0, m1, m2, m3 = (M[s, p0:p0 + tw], M[4 + s, p0:p0 + tw],
                                  M[8 + s, p0:p0 + tw], M[12 + s, p0:p0 + tw])
                for j in range(tw):
                    rows[0, s, j] = m0[j] + m1[j] + m2[j]
                    rows[1, s, j] = m1[j] - m2[j] - m3[j]
            for a in range(min(2, Ho - i)):
                t0, t1, t2, t3 = rows[a, 0], rows[a, 1], rows[a, 2], rows[a, 3]
                out = y[n, f, i + a]
                for j in range(Wo // 2):
                    out[2 * j] = t0[j] + t1[j] + t2[j] + bf
                    out[2 * j + 1] = t1[j] - t2[j] - t3[j] + bf
                if Wo % 2:
                    j = Wo // 2
                    out[2 * j] = t0[j] + t1[j] + t2[j] + bf
                if relu:
                    copy_relu(out, out)


def _layer_by_thread_py(x, planes, bias, relu, pH, pW, th, tw, rows, F, C, Vs, Ms, y):
    """The whole layer in one parallel loop, for filters small enough to
    stay in cache: each task takes ``rows`` tile rows, transforms them into
    its thread's V (Vs[thread]), multiplies them into its thread's M and
    transforms those back into y: V and M are written and read again while
    they are still in cache, and the layer launches its threads once (band
    by band, it launches them three times a band)."""
    R = x.shape[0] * th
    L = simd.lanes_of(x)
    for task in prange((R + rows - 1) // rows):
        g0 = task * rows
        g1 = min(R, g0 + rows)
        P = (g1 - g0) * tw
        Pp = simd.whole_vectors(P, L)
        V, M = Vs[get_thread_id()], Ms[get_thread_id()]
        for e in range(16):                    # columns no tile fills: zeros, not stale bits
            for c in range(C):
                V[e, c * Pp + P:(c + 1) * Pp] = 0.0
        _transform_band(x, pH, pW, th, tw, g0, g1, Pp, V)
        _products_band(planes, V, M, F, C, Pp, C, 1)
        _untransform_band(M, bias, relu, th, tw, g0, g1, Pp, y)


_add = njit(cache=True, inline="always")(_add)
_sub = njit(cache=True, inline="always")(_sub)
_transform_tiles = Kernel(_transform_tiles_py)
_untransform_tiles = Kernel(_untransform_tiles_py)
# one thread's share of a band, called inside _layer_by_thread
_transform_band = _transform_tiles.serial
_untransform_band = _untransform_tiles.serial
_products_band = plane_products_numba._products.serial
# work: multiply-adds
_layer_by_thread = Kernel(_layer_by_thread_py, cost=tuning.COST_MULTIPLY_ADD)


def _filters(weight):
    """U (16, F, C): U[e] = (G g G^T)[e] for all F*C filters g at once,
    vec(G g G^T) = (G kron G) vec(g)."""
    F, C = weight.shape[:2]
    U = np.empty((16, F * C), dtype=weight.dtype)
    np.matmul(_G_KRON_G.astype(weight.dtype), weight.reshape(F * C, 9).T, out=U)
    return U.reshape(16, F, C)


def _flipped_filters(weight):
    """U (16, F, C) of the flipped filters w'[f, c] = J weight[c, f] J (J
    reverses the order): vec(J g J) is vec(g) reversed, so U[e] = (G kron
    G)[:, ::-1] vec(weight[c, f]), with no flipped copy of the weights."""
    C, F = weight.shape[:2]
    U = np.empty((16, C * F), dtype=weight.dtype)
    np.matmul(_G_KRON_G[:, ::-1].astype(weight.dtype), weight.reshape(C * F, 9).T, out=U)
    return np.ascontiguousarray(U.reshape(16, C, F).transpose(0, 2, 1))


def conv2d_3x3(x, weight, bias, padding, relu=False):
    """``conv.conv2d`` at stride 1 for 3x3 filters (see the module
    docstring); ``conv.conv2d_relu`` with ``relu``. The transformed filters
    are kept for the next call with the same weights
    (``runtime/weight_cache.py``)."""
    U = weight_cache.derived("winograd U", weight, _filters)
    return _convolve(x, U, bias, padding, relu)


def conv_transpose2d_3x3(x, weight, bias, padding):
    """``conv.conv_transpose2d`` at stride 1 for 3x3 filters: the convolution
    with the flipped filters w'[f, c] = J weight[c, f] J at padding 2 - p;
    their transform is kept as ``conv2d_3x3``'s is."""
    pH, pW = padding
    U = weight_cache.derived("winograd U flipped", weight, _flipped_filters)
    return _convolve(x, U, bias, (2 - pH, 2 - pW))


def _by_thread(name, size, dtype):
    """(threads, 16, size + skew): ``workspace.planes`` for each thread
    (``jit.thread_slots``)."""
    threads, width = thread_slots(), size + tuning.PLANE_SKEW
    return workspace.buffer(name, threads * 16 * width, dtype).reshape(threads, 16, width)


def _convolve(x, U, bias, padding, relu=False):
    """y from x and the transformed filters U (16, F, C): input transform,
    16 products (``plane_products_numba``) and output transform (and
    ReLU), band by band. A band's P tiles take rows of Pp elements in V
    and M, P rounded up to whole vectors. Filters that stay in cache
    (``tuning.WINOGRAD_BY_THREAD_MAX_FILTER_BYTES``) go through the
    layer in one parallel loop instead (``_layer_by_thread``), each task
    taking whole vector tiles of columns at least."""
    pH, pW = padding
    N, C, H, W = x.shape
    F = U.shape[1]
    Ho, Wo = H + 2 * pH - 2, W + 2 * pW - 2
    th, tw = (Ho + 1) // 2, (Wo + 1) // 2
    dt = x.dtype
    L = simd.lanes(dt)
    b = np.zeros(F, dtype=dt) if bias is None else bias
    y = np.empty((N, F, Ho, Wo), dtype=dt)
    R = N * th                                  # tile rows of the whole batch
    planes = U.reshape(16, F * C)
    if U.nbytes <= tuning.WINOGRAD_BY_THREAD_MAX_FILTER_BYTES:
        # whole vector tiles of columns at least, else V and M near the cache budget
        wide = plane_products_numba.VECTORS * L
        rows = min(R, max(-(-wide // tw), tuning.WINOGRAD_BY_THREAD_BYTES // (16 * (C + F) * tw * x.itemsize)))
        Pp = simd.whole_vectors(rows * tw, L)
        Vs = _by_thread("winograd V by thread", C * Pp, dt)
        Ms = _by_thread("winograd M by thread", F * Pp, dt)
        _layer_by_thread(x, planes, b, relu, pH, pW, th, tw, rows, F, C, Vs, Ms, y,
                         work=16 * F * C * R * tw)
        return y
    rows = max(1, min(R, tuning.WINOGRAD_BAND_BYTES // (16 * (C + F) * tw * x.itemsize)))
    for g0 in range(0, R, rows):
        g1 = min(R, g0 + rows)
        P = (g1 - g0) * tw
        Pp = simd.whole_vectors(P, L)
        V = workspace.planes("winograd V", 16, C * Pp, dt)
        M = workspace.planes("winograd M", 16, F * Pp, dt)
        if Pp > P:                              # columns no tile fills: zeros, not stale bits
            V[:, :C * Pp].reshape(16, C, Pp)[:, :, P:] = 0
        _transform_tiles(x, pH, pW, th, tw, g0, g1, Pp, V, work=16 * C * P)
        plane_products_numba.products(planes, V, M, F, C, Pp)
        _untransform_tiles(M, b, relu, th, tw, g0, g1, Pp, y, work=16 * F * P)
    return y
