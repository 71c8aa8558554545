"""Fully connected layer: the fast version of ``linear.py``.

A dense layer is one matrix product. Large ones go to BLAS (numpy's matmul,
which handles the transposed weight without a copy), with the bias add and
the bias gradient as jitted loops over the rows. (numba's own np.dot copies
a transposed operand first.)

Small layers over a batch (LeNet-5's and SimpleCNN's fc layers, below
``tuning.LINEAR_TILES_MAX_WEIGHTS``) run a jitted kernel of their own
instead, ``_linear_tiles``, although BLAS is faster at the product itself:
OpenBLAS runs such a product on all its threads, and these keep spinning
after it returns. On a machine with few cores they take a core from
whatever comes next, npcnn's own convolutions in the next forward; numba's
threads sleep when idle. (Measurements: ``benchmarks/TUNING.md``.)
"""
import math

import numpy as np
from numba import prange

from .runtime import tuning
from .runtime.jit import Kernel


def _linear_tiles_py(x, weight, bias, y):
    """y[n, o] = bias[o] + sum_i x[n, i] * weight[o, i], in 4x4 tiles of y.

    A tile's 16 dot products run side by side over i: each step loads four
    values of x and four of the weight for 16 multiply-adds, and LLVM
    vectorises the loop over i, keeping 16 partial sums in registers (hence
    "reassoc" below: the sums are reordered, as BLAS's are). Rows and
    columns of y left over past a multiple of 4 take one dot product at a
    time. Only elements are indexed, never slices: each slice taken inside
    the parallel loop updates its array's reference count, an atomic on one
    cache line that every thread shares, and the threads then stop scaling.
    """
    N, I = x.shape
    O = weight.shape[0]
    row_tiles, col_tiles = (N + 3) // 4, (O + 3) // 4
    for tile in prange(row_tiles * col_tiles):
        n, o = 4 * (tile // col_tiles), 4 * (tile % col_tiles)
        if n + 4 <= N and o + 4 <= O:
            zero = x.dtype.type(0)
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
            s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
            for i in range(I):
                x0, x1, x2, x3 = x[n, i], x[n + 1, i], x[n + 2, i], x[n + 3, i]
                w0, w1, w2, w3 = weight[o, i], weight[o + 1, i], weight[o + 2, i], weight[o + 3, i]
                s00 += x0 * w0
                s01 += x0 * w1
                s02 += x0 * w2
                s03 += x0 * w3
                s10 += x1 * w0
                s11 += x1 * w1
                s12 += x1 * w2
                s13 += x1 * w3
                s20 += x2 * w0
                s21 += x2 * w1
                s22 += x2 * w2
                s23 += x2 * w3
                s30 += x3 * w0
                s31 += x3 * w1
                s32 += x3 * w2
                s33 += x3 * w3
            b0, b1, b2, b3 = bias[o], bias[o + 1], bias[o + 2], bias[o + 3]
            y[n, o], y[n, o + 1], y[n, o + 2], y[n, o + 3] = s00 + b0, s01 + b1, s02 + b2, s03 + b3
            y[n + 1, o], y[n + 1, o + 1], y[n + 1, o + 2], y[n + 1, o + 3] = s10 + b0, s11 + b1, s12 + b2, s13 + b3
            y[n + 2, o], y[n + 2, o + 1], y[n + 2, o + 2], y[n + 2, o + 3] = s20 + b0, s21 + b1, s22 + b2, s23 + b3
            y[n + 3, o], y[n + 3, o + 1], y[n + 3, o + 2], y[n + 3, o + 3] = s30 + b0, s31 + b1, s32 + b2, s33 + b3
        else:                                  # a tile cut by the edge of y
            for r in range(n, min(N, n + 4)):
                for c in range(o, min(O, o + 4)):
                    total = x.dtype.type(0)
                    for i in range(I):
                        total += x[r, i] * weight[c, i]
                    y[r, c] = total + bias[c]


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
_sum_rows = Kernel(_sum_rows_py)
_linear_tiles = Kernel(_linear_tiles_py, cost="COST_DENSE_MULTIPLY_ADD", fastmath={"reassoc", "contract"})


def linear(x, weight, bias):
    """See ``linear.linear``."""
    O, I = weight.shape
    x2 = x.reshape(math.prod(x.shape[:-1]), I)    # (N, I); -1 is ambiguous when I is 0
    if x2.shape[0] >= tuning.LINEAR_TILES_MIN_ROWS and weight.size <= tuning.LINEAR_TILES_MAX_WEIGHTS:
        y = np.empty((x2.shape[0], O), dtype=x.dtype)
        b = np.zeros(O, dtype=x.dtype) if bias is None else bias
        _linear_tiles(np.ascontiguousarray(x2), np.ascontiguousarray(weight), b, y, work=y.size * I)
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
