"""Fully connected layer: the fast version of ``linear.py``.

A dense layer is one matrix product. Large ones over a batch go to BLAS
(numpy's matmul, which handles the transposed weight without a copy), with
the bias add and the bias gradient as jitted loops over the rows. (numba's
own np.dot copies a transposed operand first.)

A batch of fewer than ``tuning.LINEAR_TILES_MIN_ROWS`` rows, whatever the
size of the weight, runs ``_linear_rows``: each output one dot product of
a weight row with an input row, the weight read once, in its own layout.
OpenBLAS would run VGG16's fc layers at batch 1 on every core, and its
threads then keep spinning, into the next forward's convolutions
(``benchmarks/TUNING.md``).

Small layers over a batch (LeNet-5's and SimpleCNN's fc layers, below
``tuning.LINEAR_TILES_MAX_WEIGHTS``) run a jitted kernel of their own
instead, ``_linear_tiles``: register tiles of 4 rows x 4 vectors of the
output (``runtime/simd.py``), over the transposed weight padded to whole
vectors (kept between calls, ``runtime/weight_cache.py``). OpenBLAS runs
such a product on all its threads, and these keep spinning after it
returns; on a machine with few cores they take a core from whatever comes
next, npcnn's own convolutions in the next forward. numba's threads sleep
when idle. (Measurements: ``benchmarks/TUNING.md``.)
"""
import math

import numpy as np
from numba import njit, prange

from .runtime import simd, tuning, weight_cache
from .runtime.jit import Kernel
from .runtime.simd import fma, load, splat_at, store


def _four_rows(x, wt, bias, n, o, y):
    """y[n + r, o + v*L + j] = bias + sum_i x[n + r, i] * wt[i*Op + o + v*L + j]
    for r < 4 (rows past N repeat row N - 1 and are not stored), v < 4,
    j < L and o + v*L + j < O: each step of the sum loads four vectors of
    the weight and broadcasts four values of x for 16 multiply-adds, into
    accumulators that stay in registers."""
    N, I = x.shape
    O, Op = y.shape[1], bias.shape[0]
    L = simd.lanes_of(wt)
    flat = x.reshape(N * I)
    rows = y.reshape(y.size)
    r0, r1, r2, r3 = n * I, min(n + 1, N - 1) * I, min(n + 2, N - 1) * I, min(n + 3, N - 1) * I
    b0, b1, b2, b3 = load(bias, o), load(bias, o + L), load(bias, o + 2 * L), load(bias, o + 3 * L)
    a00, a01, a02, a03 = b0, b1, b2, b3
    a10, a11, a12, a13 = b0, b1, b2, b3
    a20, a21, a22, a23 = b0, b1, b2, b3
    a30, a31, a32, a33 = b0, b1, b2, b3
    for i in range(I):
        k = i * Op + o
        w0, w1, w2, w3 = load(wt, k), load(wt, k + L), load(wt, k + 2 * L), load(wt, k + 3 * L)
        s = splat_at(flat, r0 + i)
        a00, a01, a02, a03 = fma(w0, s, a00), fma(w1, s, a01), fma(w2, s, a02), fma(w3, s, a03)
        s = splat_at(flat, r1 + i)
        a10, a11, a12, a13 = fma(w0, s, a10), fma(w1, s, a11), fma(w2, s, a12), fma(w3, s, a13)
        s = splat_at(flat, r2 + i)
        a20, a21, a22, a23 = fma(w0, s, a20), fma(w1, s, a21), fma(w2, s, a22), fma(w3, s, a23)
        s = splat_at(flat, r3 + i)
        a30, a31, a32, a33 = fma(w0, s, a30), fma(w1, s, a31), fma(w2, s, a32), fma(w3, s, a33)
    for r in range(min(4, N - n)):
        a0, a1, a2, a3 = ((a00, a01, a02, a03) if r == 0 else (a10, a11, a12, a13) if r == 1
                          else (a20, a21, a22, a23) if r == 2 else (a30, a31, a32, a33))
        start = (n + r) * O
        _store_row(rows, start, o, O, a0)
        _store_row(rows, start, o + L, O, a1)
        _store_row(rows, start, o + 2 * L, O, a2)
        _store_row(rows, start, o + 3 * L, O, a3)


def _four_rows_one_vector(x, wt, bias, n, o, y):
    """``_four_rows`` for the one vector of columns at o."""
    N, I = x.shape
    O, Op = y.shape[1], bias.shape[0]
    flat = x.reshape(N * I)
    rows = y.reshape(y.size)
    r0, r1, r2, r3 = n * I, min(n + 1, N - 1) * I, min(n + 2, N - 1) * I, min(n + 3, N - 1) * I
    a0 = a1 = a2 = a3 = load(bias, o)
    for i in range(I):
        w0 = load(wt, i * Op + o)
        a0 = fma(w0, splat_at(flat, r0 + i), a0)
        a1 = fma(w0, splat_at(flat, r1 + i), a1)
        a2 = fma(w0, splat_at(flat, r2 + i), a2)
        a3 = fma(w0, splat_at(flat, r3 + i), a3)
    for r in range(min(4, N - n)):
        _store_row(rows, (n + r) * O, o, O, a0 if r == 0 else a1 if r == 1 else a2 if r == 2 else a3)


def _store_row(rows, start, c, O, vector):
    """rows[start + c : start + min(c + L, O)] = the first lanes of vector:
    columns past O are padding and not written."""
    L = simd.lanes_of(rows)
    if c + L <= O:
        store(rows, start + c, vector)
    elif c < O:
        simd.store_first(rows, start + c, vector, O - c)


def _linear_tiles_py(x, wt, bias, y):
    """y[n, o] = bias[o] + sum_i x[n, i] * wt[i, o], wt = weight^T (I, Op)
    and bias padded with zeros to Op columns, a whole number of vectors
    (``runtime/simd.py``): tiles of 4 rows x 4 vectors of y (``_four_rows``),
    then 4 rows x 1 vector for the columns past the last whole tile."""
    N = x.shape[0]
    Op = bias.shape[0]
    L = simd.lanes_of(wt)
    wide = 4 * L
    row_tiles, col_tiles = (N + 3) // 4, (Op + wide - 1) // wide
    for tile in prange(row_tiles * col_tiles):
        n, o = 4 * (tile // col_tiles), wide * (tile % col_tiles)
        if o + wide <= Op:
            _four_rows(x, wt, bias, n, o, y)
        else:
            for v in range(o, Op, L):
                _four_rows_one_vector(x, wt, bias, n, v, y)


def _linear_rows_py(x, weight, bias, y):
    """y[n, o] = bias[o] + sum_i x[n, i] * weight[o, i]: dot products over
    contiguous rows (summed in any order, so that LLVM vectorises them),
    four weight rows at a time, each read once for all the rows of x (four
    streams from memory keep more loads in flight than one). Threads take
    blocks of ROWS_PER_TASK outputs; rows past O repeat row O - 1 and are
    not stored."""
    N, I = x.shape
    O = weight.shape[0]
    tasks = (O + ROWS_PER_TASK - 1) // ROWS_PER_TASK
    for task in prange(tasks):
        for o in range(task * ROWS_PER_TASK, min(O, (task + 1) * ROWS_PER_TASK), 4):
            w0, w1 = weight[o], weight[min(o + 1, O - 1)]
            w2, w3 = weight[min(o + 2, O - 1)], weight[min(o + 3, O - 1)]
            for n in range(N):
                xn = x[n]
                a0 = a1 = a2 = a3 = xn[0] * 0.0
                for i in range(I):
                    v = xn[i]
                    a0 += w0[i] * v
                    a1 += w1[i] * v
                    a2 += w2[i] * v
                    a3 += w3[i] * v
                y[n, o] = a0 + bias[o]
                if o + 1 < O:
                    y[n, o + 1] = a1 + bias[o + 1]
                if o + 2 < O:
                    y[n, o + 2] = a2 + bias[o + 2]
                if o + 3 < O:
                    y[n, o + 3] = a3 + bias[o + 3]


ROWS_PER_TASK = 16  # outputs a task, a multiple of 4: VGG16's fc6 has 256 tasks for two threads


def _add_bias_rows_py(y, bias):
    for n in prange(y.shape[0]):
        for o in range(y.shape[1]):
            y[n, o] += bias[o]


def _sum_rows_py(dy):
    # column sums, split by column blocks across threads: each writes its own
    N, O = dy.shape
    out = np.zeros(O, dtype=np.float64)
    for o in prange(O):
        acc = 0.0
        for n in range(N):
            acc += dy[n, o]
        out[o] = acc
    return out


_add_bias_rows = Kernel(_add_bias_rows_py)
# work: weights read (memory bound, as an elementwise pass)
_linear_rows = Kernel(_linear_rows_py, cost="COST_ELEMENTWISE", fastmath={"reassoc"})
_sum_rows = Kernel(_sum_rows_py)
_store_row = njit(cache=True, inline="always")(_store_row)
_four_rows = njit(cache=True)(_four_rows)
_four_rows_one_vector = njit(cache=True)(_four_rows_one_vector)
_linear_tiles = Kernel(_linear_tiles_py, cost="COST_DENSE_MULTIPLY_ADD")


def _transposed(weight):
    """weight^T (I, Op) as one row, zero columns past O up to Op, a whole
    number of vectors: the tile kernel's layout (kept between calls by
    ``runtime/weight_cache.py``)."""
    O, I = weight.shape
    L = simd.lanes(weight.dtype)
    Op = simd.whole_vectors(O, L)
    wt = np.zeros((I, Op), dtype=weight.dtype)
    wt[:, :O] = weight.T
    return wt.reshape(I * Op)


def linear(x, weight, bias):
    """See ``linear.linear``."""
    O, I = weight.shape
    x2 = x.reshape(math.prod(x.shape[:-1]), I)    # (N, I); -1 is ambiguous when I is 0
    # an empty weight (no features in or out) has nothing to tile: BLAS gives the empty or zero y
    if 0 < x2.shape[0] < tuning.LINEAR_TILES_MIN_ROWS and weight.size > 0:
        b = np.zeros(O, dtype=x.dtype) if bias is None else bias
        y = np.empty((x2.shape[0], O), dtype=x.dtype)
        _linear_rows(np.ascontiguousarray(x2), weight, b, y, work=weight.size)
        return y.reshape(x.shape[:-1] + (O,))
    if x2.shape[0] >= tuning.LINEAR_TILES_MIN_ROWS and 0 < weight.size <= tuning.LINEAR_TILES_MAX_WEIGHTS:
        wt = weight_cache.derived("linear weight^T", weight, _transposed)
        Op = wt.size // I
        b = np.zeros(Op, dtype=x.dtype)
        if bias is not None:
            b[:O] = bias
        y = np.empty((x2.shape[0], O), dtype=x.dtype)
        _linear_tiles(np.ascontiguousarray(x2), wt, b, y, work=y.size * I)
        return y.reshape(x.shape[:-1] + (O,))
    y = x2 @ weight.T                     # (N, O), BLAS
    if bias is not None:
        _add_bias_rows(y, bias, work=y.size)
    return y.reshape(x.shape[:-1] + (O,))


def linear_backward(grad_output, x, weight):
    """See ``linear.linear_backward``."""
    O, I = weight.shape
    N = math.prod(x.shape[:-1])                    # -1 in a reshape is ambiguous for 0 features
    dy = np.ascontiguousarray(grad_output.reshape(N, O))   # (N, O)
    x2 = x.reshape(N, I)                                     # (N, I)
    dx = (dy @ weight).reshape(x.shape)
    return dx, dy.T @ x2, _sum_rows(dy, work=dy.size).astype(dy.dtype)
