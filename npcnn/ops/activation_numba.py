"""ReLU, softmax, log-softmax and dropout: the jitted versions of ``activation.py``.

Elementwise ops run as one parallel loop over the flat array; softmax and
log-softmax move ``dim`` last and run one row per iteration.
"""
import numpy as np
from numba import prange

from . import activation as _reference
from .runtime import tuning
from .runtime.jit import Kernel


def _relu_flat_py(x, y):
    for k in prange(x.size):
        y[k] = 0.0 if x[k] <= 0 else x[k]  # NaN stays NaN, as np.maximum
    return y


def _relu_backward_flat_py(dy, x):
    dx = np.empty_like(dy)
    for k in prange(x.size):
        dx[k] = dy[k] if x[k] > 0 else 0.0
    return dx


def _softmax_rows_py(x, log):
    R, K = x.shape
    y = np.empty_like(x)
    for r in prange(R):
        m = x[r, 0]
        for k in range(1, K):
            m = max(m, x[r, k])
        s = 0.0
        for k in range(K):
            s += np.exp(x[r, k] - m)
        if log:
            lse = np.log(s)
            for k in range(K):
                y[r, k] = x[r, k] - m - lse
        else:
            for k in range(K):
                y[r, k] = np.exp(x[r, k] - m) / s
    return y


def _softmax_backward_rows_py(dy, y, log):
    R, K = y.shape
    dx = np.empty_like(dy)
    for r in prange(R):
        s = 0.0
        for k in range(K):
            s += dy[r, k] if log else dy[r, k] * y[r, k]
        for k in range(K):
            if log:
                dx[r, k] = dy[r, k] - np.exp(y[r, k]) * s
            else:
                dx[r, k] = y[r, k] * (dy[r, k] - s)
    return dx


_relu_flat = Kernel(_relu_flat_py, cost=tuning.COST_ELEMENTWISE)
_relu_backward_flat = Kernel(_relu_backward_flat_py, cost=tuning.COST_ELEMENTWISE)
_softmax_rows = Kernel(_softmax_rows_py)
_softmax_backward_rows = Kernel(_softmax_backward_rows_py)


def relu(x, out=None):
    """See ``activation.relu``; ``out`` must be C-contiguous, as x."""
    y = np.empty_like(x) if out is None else out
    _relu_flat(x.reshape(-1), y.reshape(-1), work=x.size)
    return y


def relu_backward(grad_output, x):
    """See ``activation.relu_backward``."""
    return _relu_backward_flat(grad_output.ravel(), x.ravel(), work=x.size).reshape(x.shape)


def _rows(a, dim):
    """View ``a`` as (rows, a.shape[dim]) with ``dim`` moved last."""
    if dim == a.ndim - 1:  # already last (logits): a reshape, not two moveaxis
        return np.ascontiguousarray(a).reshape(-1, a.shape[dim]), a.shape
    moved = np.ascontiguousarray(np.moveaxis(a, dim, -1))
    return moved.reshape(-1, a.shape[dim]), moved.shape


def _unrows(rows, moved_shape, dim):
    if dim == len(moved_shape) - 1:
        return rows.reshape(moved_shape)
    return np.ascontiguousarray(np.moveaxis(rows.reshape(moved_shape), -1, dim))


def softmax(x, dim):
    """See ``activation.softmax``."""
    rows, shape = _rows(x, dim)
    return _unrows(_softmax_rows(rows, False, work=rows.size), shape, dim)


def log_softmax(x, dim):
    """See ``activation.log_softmax``."""
    rows, shape = _rows(x, dim)
    return _unrows(_softmax_rows(rows, True, work=rows.size), shape, dim)


def softmax_backward(grad_output, output, dim):
    """See ``activation.softmax_backward``."""
    dy, shape = _rows(grad_output, dim)
    y, _ = _rows(output, dim)
    return _unrows(_softmax_backward_rows(dy, y, False, work=dy.size), shape, dim)


def log_softmax_backward(grad_output, output, dim):
    """See ``activation.log_softmax_backward``."""
    dy, shape = _rows(grad_output, dim)
    y, _ = _rows(output, dim)
    return _unrows(_softmax_backward_rows(dy, y, True, work=dy.size), shape, dim)


# Dropout draws from numpy's Generator, which numba cannot share; a mask and
# a multiply gain nothing from jitting, so both backends use one function.
dropout = _reference.dropout
