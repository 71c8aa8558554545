"""Convolution and transposed convolution: the fast kernels.

Same functions and signatures as ``conv.py`` (the specification), computed
the im2col way: a jitted, parallel loop copies every receptive field into a
column, one BLAS matrix product does all the multiply-adds, and ``col2im``
scatters columns back (accumulating) for the transposed direction.
Dimension letters as in ``conv.py``; K = C*kH*kW (rows of a column matrix),
L = Ho*Wo (one column per output position).

The batch is processed in chunks so the column matrix stays near
``_COLS_BUDGET`` bytes, whatever N is.
"""
import numpy as np
from numba import njit, prange

_COLS_BUDGET = 32 * 2**20  # bytes of column matrix per chunk


def _im2col_py(x, kH, kW, sH, sW, pH, pW, Ho, Wo):
    """cols[n, (c*kH + p)*kW + q, i*Wo + j] = xpad[n, c, i*sH + p, j*sW + q]."""
    N, C, H, W = x.shape
    cols = np.empty((N, C * kH * kW, Ho * Wo), dtype=x.dtype)  # (N, K, L)
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for p in range(kH):
            for q in range(kW):
                row = (c * kH + p) * kW + q
                for i in range(Ho):
                    h = i * sH - pH + p
                    for j in range(Wo):
                        w = j * sW - pW + q
                        if 0 <= h < H and 0 <= w < W:
                            cols[n, row, i * Wo + j] = x[n, c, h, w]
                        else:
                            cols[n, row, i * Wo + j] = 0.0
    return cols


def _col2im_py(cols, C, H, W, kH, kW, sH, sW, pH, pW, Ho, Wo):
    """The adjoint of im2col: x[n, c, i*sH + p - pH, j*sW + q - pW] += cols[...].

    Positions that fall in the padding are dropped. Each (n, c) plane is
    written by one thread only, so the parallel accumulation has no races.
    """
    N = cols.shape[0]
    x = np.zeros((N, C, H, W), dtype=cols.dtype)
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for p in range(kH):
            for q in range(kW):
                row = (c * kH + p) * kW + q
                for i in range(Ho):
                    h = i * sH - pH + p
                    if h < 0 or h >= H:
                        continue
                    for j in range(Wo):
                        w = j * sW - pW + q
                        if 0 <= w < W:
                            x[n, c, h, w] += cols[n, row, i * Wo + j]
    return x


# Jitted on their own line, so NUMBA_DISABLE_JIT=1 steps through the plain
# Python above in a debugger.
_im2col = njit(cache=True, parallel=True)(_im2col_py)
_col2im = njit(cache=True, parallel=True)(_col2im_py)


def _chunks(N, bytes_per_sample):
    step = max(1, _COLS_BUDGET // max(1, bytes_per_sample))
    for start in range(0, N, step):
        yield slice(start, min(N, start + step))


def conv2d(x, weight, bias, stride, padding):
    """See ``conv.conv2d``: y = W2 @ im2col(x) + b, per image."""
    (sH, sW), (pH, pW) = stride, padding
    N, C, H, W = x.shape
    F, _, kH, kW = weight.shape
    Ho = (H + 2 * pH - kH) // sH + 1
    Wo = (W + 2 * pW - kW) // sW + 1
    K, L = C * kH * kW, Ho * Wo
    w2 = weight.reshape(F, K)
    y = np.empty((N, F, L), dtype=x.dtype)
    for b in _chunks(N, K * L * x.itemsize):
        cols = _im2col(x[b], kH, kW, sH, sW, pH, pW, Ho, Wo)  # (n, K, L)
        np.matmul(w2, cols, out=y[b])                          # (n, F, L)
    y = y.reshape(N, F, Ho, Wo)
    if bias is not None:
        y += bias[None, :, None, None]
    return y


def conv2d_backward(grad_output, x, weight, stride, padding):
    """See ``conv.conv2d_backward``: dW = dY @ cols^T, dcols = W2^T @ dY."""
    (sH, sW), (pH, pW) = stride, padding
    N, C, H, W = x.shape
    F, _, kH, kW = weight.shape
    _, _, Ho, Wo = grad_output.shape
    K, L = C * kH * kW, Ho * Wo
    w2 = weight.reshape(F, K)
    dy = grad_output.reshape(N, F, L)
    dx = np.empty_like(x)
    dw = np.zeros((F, K), dtype=x.dtype)
    for b in _chunks(N, K * L * x.itemsize):
        cols = _im2col(x[b], kH, kW, sH, sW, pH, pW, Ho, Wo)        # (n, K, L)
        dw += np.matmul(dy[b], cols.transpose(0, 2, 1)).sum(axis=0)  # (F, K)
        dcols = np.matmul(w2.T, dy[b])                               # (n, K, L)
        dx[b] = _col2im(dcols, C, H, W, kH, kW, sH, sW, pH, pW, Ho, Wo)
    db = grad_output.sum(axis=(0, 2, 3))
    return dx, dw.reshape(weight.shape), db


def conv_transpose2d(x, weight, bias, stride, padding, output_padding):
    """See ``conv.conv_transpose2d``: y = col2im(W2^T @ x) + b."""
    (sH, sW), (pH, pW), (opH, opW) = stride, padding, output_padding
    N, C, H, W = x.shape
    _, F, kH, kW = weight.shape
    Ho = (H - 1) * sH - 2 * pH + kH + opH
    Wo = (W - 1) * sW - 2 * pW + kW + opW
    K, L = F * kH * kW, H * W
    w2t = weight.reshape(C, K).T
    x2 = x.reshape(N, C, L)
    y = np.empty((N, F, Ho, Wo), dtype=x.dtype)
    for b in _chunks(N, K * L * x.itemsize):
        cols = np.matmul(w2t, x2[b])  # (n, K, L)
        y[b] = _col2im(cols, F, Ho, Wo, kH, kW, sH, sW, pH, pW, H, W)
    if bias is not None:
        y += bias[None, :, None, None]
    return y


def conv_transpose2d_backward(grad_output, x, weight, stride, padding, output_padding):
    """See ``conv.conv_transpose2d_backward``: dx = conv2d(dy, w), dW = x @ cols^T."""
    (sH, sW), (pH, pW) = stride, padding
    N, C, H, W = x.shape
    _, F, kH, kW = weight.shape
    K, L = F * kH * kW, H * W
    w2 = weight.reshape(C, K)
    x2 = x.reshape(N, C, L)
    dx = np.empty((N, C, L), dtype=x.dtype)
    dw = np.zeros((C, K), dtype=x.dtype)
    for b in _chunks(N, K * L * x.itemsize):
        cols = _im2col(grad_output[b], kH, kW, sH, sW, pH, pW, H, W)  # (n, K, L)
        np.matmul(w2, cols, out=dx[b])                                 # (n, C, L)
        dw += np.matmul(x2[b], cols.transpose(0, 2, 1)).sum(axis=0)    # (C, K)
    db = grad_output.sum(axis=(0, 2, 3))
    return dx.reshape(N, C, H, W), dw.reshape(weight.shape), db
