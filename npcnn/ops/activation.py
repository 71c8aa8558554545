"""ReLU, softmax, log-softmax and dropout: the readable NumPy reference.

Softmax and log-softmax act along one axis ``dim``; the other axes are
independent rows.
"""
import numpy as np


def relu(x, out=None):
    """y = max(x, 0), elementwise, written into ``out`` when given (which
    may be x itself: the in-place ReLU)."""
    return np.maximum(x, 0, out=out)


def relu_backward(grad_output, x):
    """dx = dy where x > 0, else 0 (torch's choice at x == 0 too)."""
    return np.where(x > 0, grad_output, 0).astype(grad_output.dtype)


def softmax(x, dim):
    """y_k = exp(x_k - m) / sum_j exp(x_j - m) along ``dim``, m = max_j x_j.

    Subtracting the row maximum changes nothing mathematically and keeps
    exp() from overflowing. A -inf is a masked element (exp gives 0); a row
    masked whole has no softmax, NaN, as torch's.
    """
    with np.errstate(invalid="ignore"):   # -inf - (-inf): that whole-masked row
        e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def softmax_backward(grad_output, output, dim):
    """dx = y * (dy - sum_k dy_k y_k), with y = softmax(x)."""
    return output * (grad_output - (grad_output * output).sum(axis=dim, keepdims=True))


def log_softmax(x, dim):
    """y_k = x_k - m - log(sum_j exp(x_j - m)) along ``dim``, m = max_j x_j
    (-inf and a row of them as ``softmax``'s)."""
    with np.errstate(invalid="ignore"):
        shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


def log_softmax_backward(grad_output, output, dim):
    """dx = dy - exp(y) * sum_k dy_k, with y = log_softmax(x)."""
    return grad_output - np.exp(output) * grad_output.sum(axis=dim, keepdims=True)


def dropout(x, p, training, rng):
    """Zero each element with probability p and scale the rest by 1/(1-p).

    At inference (``training=False``) dropout is the identity. ``rng`` is a
    ``numpy.random.Generator``; the mask cannot equal torch's, whose random
    stream differs, only its statistics can.
    """
    if not training or p == 0:
        return x.copy()
    if p == 1:
        return np.zeros_like(x)
    keep = rng.random(x.shape) >= p
    return (x * keep / (1 - p)).astype(x.dtype)
