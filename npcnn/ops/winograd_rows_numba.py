"""Winograd's F(2, 5) along the rows, vectorised over images: stride 1, a
few channels, many filters 5 wide, a dense batch.

A variant of the kernel vectorised over images (``conv_lanes_numba.py``),
which ``conv_direct_numba.conv2d`` runs where ``uses_winograd_rows`` says
(LeNet-5's conv_2). The specification is ``winograd_rows.py``, which
derives the transforms; for a 5-wide filter row g and the six inputs d of
two neighbouring outputs,

    (y[i, 2j], y[i, 2j+1]) = b + sum_{c, p} A^T [ (G w[f, c, p]) * (B^T d[c, i+p, 2j:2j+6]) ]

six multiplications where the direct sum takes ten. Images go in blocks of
L, the lanes of one vector, packed as ``conv_lanes_numba.pack_block`` packs
them, with each padded row widened to Wq = 2*tw + 4 columns (tw =
ceil(Wo / 2) pairs per output row). Then, per block:

1. ``_transform_strips``: each strip of six inputs of every packed row,
   d = row[2j : 2j + 6], becomes its six "positions" V = B^T d, side by
   side: V[((r*tw + j)*6 + a)*L : +L].
2. ``_two_filters_two_pairs``: for two filters and two pairs of outputs,
   the 24 sums M[f, pair, a] = sum_{c, p} U[c, p, f, a] * V[c, i+p, j, a]
   (U = w G^T, the filter rows transformed) in registers over every tap
   (c, p), then A^T maps each pair's six sums to its two outputs, the
   bias and, with ``relu``, max(., 0), into the block's output tile.
3. ``conv_lanes_numba.unpack_tile`` transposes the tile into y.

A tile of two filters x two pairs takes 12 vectors of V and 12 weights a
tap for 24 multiply-adds; the direct kernel's six filters x four pixels
take 4 and 6. The Winograd kernel's vectors come from V, six times the
size of the packed rows it replaces: it wins where a tap's V stays in the
first-level cache (a few channels) and many filters reuse it
(``tuning.WINOGRAD_ROWS_*``; benchmarks/TUNING.md).

Only B^T's nonzeros are multiplied, so a NaN in the input reaches the
outputs whose windows hold it and no other (each strip's first input
reaches V[0] only, its last V[5] only; A^T leaves V[5] out of the first
output and V[0] out of the second). An infinity reaches the same outputs,
some of them as NaN: the transforms add it with both signs (as in
``winograd_numba.py``; functional.py lists it among the differences from
torch). The rounding is of the
direct sum's order: B^T holds whole numbers up to 5 and G fractions down
to 1/24 (benchmarks/TUNING.md compares them).

Dimension letters as in ``conv.py``; L lanes, tw pairs per output row.
"""
import functools

import numpy as np
from numba import njit, prange

from . import conv_lanes_numba, winograd_rows
from .runtime import simd, tuning, weight_cache, workspace
from .runtime.jit import Kernel
from .runtime.simd import add, fma, load, splat, splat_at, store, sub

TAPS_ACROSS = 5      # the filter width this kernel's transforms are written out for
POSITIONS = 6        # TAPS_ACROSS + 1: the transformed values of a strip


def _transform_strips(xb, rows, Wq, tw, V):
    """V[((r*tw + j)*6 + a)*L : +L] = sum_b B^T[a, b] * xb[(r*Wq + 2j + b)*L : +L]
    for every packed row r (of all channels), pair j and position a < 6,
    with F(2, 5)'s B^T (``winograd_rows.transforms(5)``, which the tests
    check these sums against) written out over its nonzeros:

        [4  0 -5  0  1  0]     [0 -4  4  1 -1  0]     [0  2 -1 -2  1  0]
        [0  4  4 -1 -1  0]     [0 -2 -1  2  1  0]     [0  4  0 -5  0  1]
    """
    L = simd.lanes_of(xb)
    four, minus_five, two, zero = splat(4.0, xb), splat(-5.0, xb), splat(2.0, xb), splat(0.0, xb)
    for r in range(rows):
        for j in range(tw):
            d, v = (r * Wq + 2 * j) * L, (r * tw + j) * POSITIONS * L
            d0, d1, d2 = load(xb, d), load(xb, d + L), load(xb, d + 2 * L)
            d3, d4, d5 = load(xb, d + 3 * L), load(xb, d + 4 * L), load(xb, d + 5 * L)
            store(V, v, fma(four, d0, fma(minus_five, d2, d4)))                  # 4 d0 - 5 d2 + d4
            store(V, v + L, fma(four, add(d1, d2), sub(zero, add(d3, d4))))     # 4 (d1 + d2) - (d3 + d4)
            store(V, v + 2 * L, fma(four, sub(d2, d1), sub(d3, d4)))            # 4 (d2 - d1) + d3 - d4
            store(V, v + 3 * L, fma(two, sub(d3, d1), sub(d4, d2)))             # 2 (d3 - d1) + d4 - d2
            store(V, v + 4 * L, fma(two, sub(d1, d3), sub(d4, d2)))             # 2 (d1 - d3) + d4 - d2
            store(V, v + 5 * L, fma(four, d1, fma(minus_five, d3, d5)))         # 4 d1 - 5 d3 + d5


def _two_filters_two_pairs(V, U, Fp, f0, offsets, v0, v1, bias):
    """The outputs of filters f0, f0 + 1 for the pairs whose strips start
    at V[v0] and V[v1]: (y_f0_pair0 (2 vectors), y_f0_pair1, y_f1_pair0,
    y_f1_pair1), each pair's two outputs A^T M + bias, M[a] = sum_t
    U[(t*Fp + f)*6 + a] * V[v + offsets[t] + a*L]: 24 accumulators, summed
    over every tap t = (c, p) before A^T. The bias starts M[1], which A^T
    adds once to both outputs:

        A^T = [1  1  1  1  1  0]
              [0  1 -1  2 -2  1]
    """
    L = simd.lanes_of(V)
    zero = splat(0.0, V)
    p0, p2, p3, p4, p5 = zero, zero, zero, zero, zero       # filter f0, first pair
    p1 = splat_at(bias, f0)
    q0, q2, q3, q4, q5 = zero, zero, zero, zero, zero       # filter f0, second pair
    q1 = p1
    r0, r2, r3, r4, r5 = zero, zero, zero, zero, zero       # filter f0 + 1, first pair
    r1 = splat_at(bias, f0 + 1)
    s0, s2, s3, s4, s5 = zero, zero, zero, zero, zero       # filter f0 + 1, second pair
    s1 = r1
    for t in range(offsets.shape[0]):
        a, b, k = v0 + offsets[t], v1 + offsets[t], (t * Fp + f0) * POSITIONS
        a0, a1, a2 = load(V, a), load(V, a + L), load(V, a + 2 * L)
        a3, a4, a5 = load(V, a + 3 * L), load(V, a + 4 * L), load(V, a + 5 * L)
        b0, b1, b2 = load(V, b), load(V, b + L), load(V, b + 2 * L)
        b3, b4, b5 = load(V, b + 3 * L), load(V, b + 4 * L), load(V, b + 5 * L)
        u0, u1, u2 = splat_at(U, k), splat_at(U, k + 1), splat_at(U, k + 2)
        u3, u4, u5 = splat_at(U, k + 3), splat_at(U, k + 4), splat_at(U, k + 5)
        p0, p1, p2, p3, p4, p5 = fma(a0, u0, p0), fma(a1, u1, p1), fma(a2, u2, p2), fma(a3, u3, p3), fma(a4, u4, p4), fma(a5, u5, p5)
        q0, q1, q2, q3, q4, q5 = fma(b0, u0, q0), fma(b1, u1, q1), fma(b2, u2, q2), fma(b3, u3, q3), fma(b4, u4, q4), fma(b5, u5, q5)
        u0, u1, u2 = splat_at(U, k + 6), splat_at(U, k + 7), splat_at(U, k + 8)
        u3, u4, u5 = splat_at(U, k + 9), splat_at(U, k + 10), splat_at(U, k + 11)
        r0, r1, r2, r3, r4, r5 = fma(a0, u0, r0), fma(a1, u1, r1), fma(a2, u2, r2), fma(a3, u3, r3), fma(a4, u4, r4), fma(a5, u5, r5)
        s0, s1, s2, s3, s4, s5 = fma(b0, u0, s0), fma(b1, u1, s1), fma(b2, u2, s2), fma(b3, u3, s3), fma(b4, u4, s4), fma(b5, u5, s5)
    two = splat(2.0, V)
    return (add(add(add(p0, p1), add(p2, p3)), p4), fma(two, sub(p3, p4), add(sub(p1, p2), p5)),
            add(add(add(q0, q1), add(q2, q3)), q4), fma(two, sub(q3, q4), add(sub(q1, q2), q5)),
            add(add(add(r0, r1), add(r2, r3)), r4), fma(two, sub(r3, r4), add(sub(r1, r2), r5)),
            add(add(add(s0, s1), add(s2, s3)), s4), fma(two, sub(s3, s4), add(sub(s1, s2), s5)))


def _put_pair(tile, at, first, second, both, relu):
    """tile[at : +L] = first, and the next pixel's second if ``both`` (a
    row of odd width ends in half a pair), max(., 0) with ``relu``."""
    L = simd.lanes_of(tile)
    store(tile, at, simd.relu(first) if relu else first)
    if both:
        store(tile, at + L, simd.relu(second) if relu else second)


def _winograd_rows_py(x, block0, where, pads, rows, Wq, xb, V, U, F, Fp, offsets, bias, relu, tiles, y):
    """y (N, F, Ho, Wo) from x, for the blocks k = block0 .. block0 +
    len(xb) - 1 of L images: block k packed into xb[k - block0] (at
    ``where``, zero at ``pads``), its ``rows`` rows of Wq
    columns transformed into V[k - block0], the filters two at a time
    (U (T*Fp*6,): the transformed weights, zero past F; bias (Fp,)) over
    the taps' offsets in V, two pairs at a time, into tiles[k - block0]
    (F, Ho*Wo, L), transposed into y."""
    N, _, Ho, Wo = y.shape
    B, L = xb.shape[0], simd.lanes_of(xb)
    P, tw = Ho * Wo, (Wo + 1) // 2
    pairs = Ho * tw
    for i in prange(B):
        k = block0 + i
        packed, strips, tile = xb[i], V[i], tiles[i]
        conv_lanes_numba.pack_block(x, k, where, pads, tile, packed)
        _transform_strips(packed, rows, Wq, tw, strips)
        for g in range(0, pairs, 2):
            h = min(g + 1, pairs - 1)          # an odd count's last pair goes twice
            o0 = g // tw * Wo + 2 * (g % tw)   # each pair's first output pixel
            o1 = h // tw * Wo + 2 * (h % tw)
            both0, both1 = o0 % Wo + 1 < Wo, o1 % Wo + 1 < Wo
            for f0 in range(0, Fp, 2):
                y00, y01, y10, y11, y20, y21, y30, y31 = _two_filters_two_pairs(
                    strips, U, Fp, f0, offsets, g * POSITIONS * L, h * POSITIONS * L, bias)
                _put_pair(tile, (f0 * P + o0) * L, y00, y01, both0, relu)
                _put_pair(tile, (f0 * P + o1) * L, y10, y11, both1, relu)
                if f0 + 1 < F:                  # an odd F's last filter is a zero one
                    _put_pair(tile, ((f0 + 1) * P + o0) * L, y20, y21, both0, relu)
                    _put_pair(tile, ((f0 + 1) * P + o1) * L, y30, y31, both1, relu)
        conv_lanes_numba.unpack_tile(tile, P, k, y)


_transform_strips = njit(cache=True)(_transform_strips)
_two_filters_two_pairs = njit(cache=True)(_two_filters_two_pairs)
_put_pair = njit(cache=True, inline="always")(_put_pair)
# work: the direct sum's multiply-adds
_winograd_rows = Kernel(_winograd_rows_py, cost=tuning.COST_MULTIPLY_ADD)


def uses_winograd_rows(x_shape, weight_shape, padding, dtype):
    """Whether a batch that runs the kernel vectorised over images runs
    this one instead: float32 (in float64, 8 lanes a vector, it ran even),
    filters 5 wide, at least ``WINOGRAD_ROWS_MIN_FILTERS`` of them, at
    least ``WINOGRAD_ROWS_MIN_TAPS`` taps (c, p) a position, and a block's
    V within ``WINOGRAD_ROWS_MAX_STRIP_BYTES``: the measured shapes where it
    wins (benchmarks/TUNING.md)."""
    N, C, H, W = x_shape
    F, _, kH, kW = weight_shape
    (pH, pW) = padding
    return (np.dtype(dtype) == np.float32 and kW == TAPS_ACROSS and F >= tuning.WINOGRAD_ROWS_MIN_FILTERS
            and C * kH >= tuning.WINOGRAD_ROWS_MIN_TAPS
            and strip_bytes(C, H + 2 * pH, W + 2 * pW - kW + 1) <= tuning.WINOGRAD_ROWS_MAX_STRIP_BYTES)


def strip_bytes(C, Hp, Wo):
    """Bytes of a block's transformed strips V: six vectors (of 64 bytes,
    whatever the dtype) per pair of outputs, per padded row of every
    channel."""
    return C * Hp * ((Wo + 1) // 2) * POSITIONS * simd.VECTOR_BYTES


@functools.lru_cache(maxsize=64)
def _layout(C, H, W, kH, pH, pW, L):
    """Where things sit in a block's buffers (positions in elements, int64,
    read-only, kept per shape): each input element's vector in the packed
    block, rows widened to Wq (C*H*W,), the padding's vectors there, and
    each tap (c, p)'s offset in V from its pair's first vector (C*kH,)."""
    Hp, Wo = H + 2 * pH, W + 2 * pW - TAPS_ACROSS + 1
    tw = (Wo + 1) // 2
    Wq = 2 * tw + TAPS_ACROSS - 1
    where, pads = conv_lanes_numba.packing(C, H, W, pH, pW, Wq, L)
    c, p = np.meshgrid(np.arange(C), np.arange(kH), indexing="ij")
    offsets = ((c * Hp + p) * tw * POSITIONS * L).ravel()      # t = c*kH + p
    arrays = tuple(a.astype(np.int64) for a in (where, pads, offsets))
    for a in arrays:
        a.flags.writeable = False
    return arrays


def _filters(weight):
    """U (C*kH*Fp*6,): U[((c*kH + p)*Fp + f)*6 : +6] = G w[f, c, p], the
    filter rows transformed (in float64, then rounded once), zero for the
    filter past an odd F."""
    F, C, kH, kW = weight.shape
    _, G, _ = winograd_rows.transforms(kW)
    U = np.zeros((C * kH, F + F % 2, POSITIONS), dtype=weight.dtype)
    U[:, :F] = (weight.reshape(F, C * kH, kW).astype(np.float64) @ G.T).transpose(1, 0, 2)
    return U.reshape(-1)


def conv2d(x, weight, bias, padding, relu, work):
    """``conv.conv2d`` at stride 1 (``conv.conv2d_relu`` with ``relu``) for
    filters 5 wide (the transformed filters kept between calls,
    ``runtime/weight_cache.py``); x C-contiguous, bias an array. ``work``: the direct
    sum's multiply-adds, which choose the serial or the parallel
    compilation."""
    (pH, pW) = padding
    N, C, H, W = x.shape
    F, _, kH, kW = weight.shape
    if kW != TAPS_ACROSS:
        raise ValueError(f"winograd_rows_numba.conv2d: filters {TAPS_ACROSS} wide only, got {weight.shape}")
    L = simd.lanes(x.dtype)
    Hp = H + 2 * pH
    Ho, Wo = Hp - kH + 1, W + 2 * pW - kW + 1
    tw = (Wo + 1) // 2
    Wq = 2 * tw + kW - 1                              # columns of a packed row: whole strips
    B = -(-N // L)                                    # blocks of L images
    Fp = F + F % 2                                    # filters, in pairs
    U = weight_cache.derived("winograd rows U", weight, _filters)
    padded_bias = np.zeros(Fp, dtype=x.dtype)
    padded_bias[:F] = bias
    where, pads, offsets = _layout(C, H, W, kH, pH, pW, L)
    packed = C * Hp * Wq * L
    strips = strip_bytes(C, Hp, Wo) // x.itemsize
    outputs = max(F * Ho * Wo, L) * L                 # (first, pack_block's scratch)
    chunk = max(1, min(B, tuning.DIRECT_LANES_CHUNK_BYTES // ((packed + strips + outputs) * x.itemsize)))
    xb = workspace.buffer("rows x", chunk * packed, x.dtype).reshape(chunk, packed)
    V = workspace.buffer("rows strips", chunk * strips, x.dtype).reshape(chunk, strips)
    tiles = workspace.buffer("rows tiles", chunk * outputs, x.dtype).reshape(chunk, outputs)
    y = np.empty((N, F, Ho, Wo), dtype=x.dtype)
    for block0 in range(0, B, chunk):
        count = min(chunk, B - block0)
        _winograd_rows(x, block0, where, pads, C * Hp, Wq, xb[:count], V[:count], U, F, Fp, offsets,
                       padded_bias, relu, tiles[:count], y, work=work * count // B)
    return y
