"""Fully connected layer: the jitted version of ``linear.py``.

A dense layer is one matrix product, and the fastest code for that is BLAS
either way: the jitted functions call it through ``np.dot`` and fuse the
bias add and the reductions into plain loops.
"""
import numpy as np
from numba import njit, prange


def _linear_rows_py(x, weight, bias, has_bias):
    y = np.dot(x, weight.T)  # (N, O), BLAS
    if has_bias:
        for n in prange(y.shape[0]):
            for o in range(y.shape[1]):
                y[n, o] += bias[o]
    return y


def _linear_backward_rows_py(dy, x, weight):
    dx = np.dot(dy, weight)     # (N, I)
    dw = np.dot(dy.T, x)        # (O, I)
    db = np.zeros(dy.shape[1], dtype=dy.dtype)
    for n in range(dy.shape[0]):
        for o in range(dy.shape[1]):
            db[o] += dy[n, o]
    return dx, dw, db


_linear_rows = njit(cache=True, parallel=True)(_linear_rows_py)
_linear_backward_rows = njit(cache=True)(_linear_backward_rows_py)


def linear(x, weight, bias):
    """See ``linear.linear``."""
    O, I = weight.shape
    x2 = np.ascontiguousarray(x.reshape(-1, I))  # (N, I)
    b = bias if bias is not None else np.zeros(O, dtype=x.dtype)
    y = _linear_rows(x2, weight, b, bias is not None)
    return y.reshape(x.shape[:-1] + (O,))


def linear_backward(grad_output, x, weight):
    """See ``linear.linear_backward``."""
    O, I = weight.shape
    dy = np.ascontiguousarray(grad_output.reshape(-1, O))
    x2 = np.ascontiguousarray(x.reshape(-1, I))
    dx, dw, db = _linear_backward_rows(dy, x2, weight)
    return dx.reshape(x.shape), dw, db
