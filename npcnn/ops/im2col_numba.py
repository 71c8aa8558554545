"""im2col and col2im: convolution as one matrix product per chunk of images.

The general path of the numba backend (see the table in ``conv_numba.py``),
and the only one of both backward passes. The specification is ``conv.py``:

    conv2d:            y = W2 @ im2col(x) + b       W2 = weight as (F, K)
    conv_transpose2d:  y = col2im(W2^T @ x) + b     W2 = weight as (C, K)

A jitted, parallel loop copies every receptive field into a column, one
matrix product does all the multiply-adds, and col2im scatters columns back
(accumulating) for the transposed direction. The forward products (groups
1) are the jitted register tiles of ``plane_products_numba.py``, one plane
per image, over column matrices whose rows are padded to whole vectors;
the grouped ones and the backward passes' go to BLAS. (OpenBLAS's threads
keep spinning after a product and took a core from the next layer's
kernels: VGG16's conv1_1 slowed every 3x3 layer after it.)

Dimension letters as in ``conv.py``; K = C*kH*kW (rows of a column matrix), L = Ho*Wo (one column
per output position). A dilated kernel only moves the taps the columns
copy; groups split K (and the filters) into G blocks, each multiplied by
its own group's weights (a stacked product). The batch goes in chunks whose column matrix stays
near ``tuning.COLS_BUDGET`` bytes, in a reused workspace buffer.
"""
import numpy as np
from numba import njit, prange

from . import plane_products_numba
from .conv import conv_output_size, conv_transpose_output_size
from .runtime import simd, tuning, workspace
from .runtime.jit import Kernel
from .runtime.rows import copy_relu


def _valid_columns(W, Wo, sW, pW, q):
    """Output columns j whose input column j*sW - pW + q lies inside [0, W):
    the half-open range [j0, j1) (empty when j1 <= j0). q is the tap's
    offset in the (dilated) kernel: q*dW for tap q."""
    j0 = max(0, (pW - q + sW - 1) // sW)
    j1 = min(Wo, max(0, (W - 1 + pW - q) // sW + 1))
    return j0, max(j0, j1)


def _im2col_py(x, kH, kW, sH, sW, pH, pW, dH, dW, i0, i1, Wo, cols):
    """cols[n, (c*kH + p)*kW + q, (i - i0)*Wo + j] = xpad[n, c, i*sH + p*dH, j*sW + q*dW]
    for the output rows i0 <= i < i1, written into ``cols`` (N, K, (i1-i0)*Wo).

    Per row of the output, the columns that fall in the padding are known in
    advance (``_valid_columns``), so the copy itself is a branch-free loop.
    """
    N, C, H, W = x.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for p in range(kH):
            for q in range(kW):
                row = (c * kH + p) * kW + q
                j0, j1 = _valid_columns(W, Wo, sW, pW, q * dW)
                offset = q * dW - pW
                for i in range(i0, i1):
                    h = i * sH - pH + p * dH
                    base = (i - i0) * Wo
                    if h < 0 or h >= H:
                        cols[n, row, base:base + Wo] = 0.0
                        continue
                    cols[n, row, base:base + j0] = 0.0
                    if sW == 1:  # a contiguous run: a slice copy, which numba turns into a memcpy
                        cols[n, row, base + j0:base + j1] = x[n, c, h, j0 + offset:j1 + offset]
                    else:
                        for j in range(j0, j1):
                            cols[n, row, base + j] = x[n, c, h, j * sW + offset]
                    cols[n, row, base + j1:base + Wo] = 0.0


def _col2im_py(cols, C, H, W, kH, kW, sH, sW, pH, pW, dH, dW, Ho, Wo):
    """The adjoint of im2col: x[n, c, i*sH + p*dH - pH, j*sW + q*dW - pW] += cols[...].

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
                j0, j1 = _valid_columns(W, Wo, sW, pW, q * dW)
                offset = q * dW - pW
                for i in range(Ho):
                    h = i * sH - pH + p * dH
                    if h < 0 or h >= H:
                        continue
                    base = i * Wo
                    for j in range(j0, j1):
                        x[n, c, h, j * sW + offset] += cols[n, row, base + j]
    return x


def _add_bias_planes_py(y, bias, relu):
    """y[n, f] += bias[f], then max(y, 0) with ``relu``, plane by plane."""
    N, F = y.shape[0], y.shape[1]
    for nf in prange(N * F):
        n, f = nf // F, nf % F
        plane = y[n, f]
        plane += bias[f]
        if relu:
            for i in range(plane.shape[0]):
                copy_relu(plane[i], plane[i])


def _copy_rows_out_py(M, Lp, Lc, bias, relu, y, n0, l0):
    """y[n0 + n, f, l0:l0 + Lc] = M[n, f*Lp:f*Lp + Lc] + bias[f], then
    max(., 0) with ``relu``: the products' padded rows back to the output."""
    n_images, F = M.shape[0], y.shape[1]
    for nf in prange(n_images * F):
        n, f = nf // F, nf % F
        src, dst, bf = M[n, f * Lp:f * Lp + Lc], y[n0 + n, f, l0:l0 + Lc], bias[f]
        for j in range(Lc):
            dst[j] = src[j] + bf
        if relu:
            copy_relu(dst, dst)


# Jitted on their own line, so NUMBA_DISABLE_JIT=1 steps through the plain
# Python above in a debugger.
_valid_columns = njit(cache=True, inline="always")(_valid_columns)
_im2col = Kernel(_im2col_py)
_col2im = Kernel(_col2im_py)
_copy_rows_out = Kernel(_copy_rows_out_py, cost=tuning.COST_ELEMENTWISE)
# numpy's broadcast add runs on one thread
_add_bias_planes = Kernel(_add_bias_planes_py, cost=tuning.COST_ELEMENTWISE)


def _add_bias(y, bias, relu=False):
    if bias is not None or relu:
        b = np.zeros(y.shape[1], dtype=y.dtype) if bias is None else bias
        _add_bias_planes(y, b, relu, work=y.size)
    return y


def _blocks(N, K, Ho, Wo, itemsize):
    """(sample slice, i0, i1) blocks whose column matrix (K rows a column;
    with the products' own buffer, K + F) fits the budget:
    several samples at a time when one is small (LeNet-5), a band of output
    rows of one sample when one is large (VGG16's first layers)."""
    per_row = K * Wo * itemsize
    if per_row * Ho <= tuning.COLS_BUDGET:
        step = max(1, tuning.COLS_BUDGET // (per_row * Ho))
        for start in range(0, N, step):
            yield slice(start, min(N, start + step)), 0, Ho
    else:
        rows = max(1, tuning.COLS_BUDGET // per_row)
        for n in range(N):
            for i0 in range(0, Ho, rows):
                yield slice(n, n + 1), i0, min(Ho, i0 + rows)


def _columns(x, b, kH, kW, sH, sW, pH, pW, dH, dW, i0, i1, Wo, row=None):
    """im2col of samples ``b``, output rows [i0, i1), in the shared buffer:
    (n, K, row), row = (i1 - i0)*Wo unless a longer one is asked for (the
    columns past (i1 - i0)*Wo are zero)."""
    n, K, Lc = x[b].shape[0], x.shape[1] * kH * kW, (i1 - i0) * Wo
    row = Lc if row is None else row
    cols = workspace.buffer("columns", n * K * row, x.dtype).reshape(n, K, row)
    _im2col(x[b], kH, kW, sH, sW, pH, pW, dH, dW, i0, i1, Wo, cols, work=n * K * Lc)
    if row > Lc:
        cols[:, :, Lc:] = 0.0
    return cols


def _chunks(N, bytes_per_sample):
    step = max(1, tuning.COLS_BUDGET // max(1, bytes_per_sample))
    for start in range(0, N, step):
        yield slice(start, min(N, start + step))


def _product_per_image(w, a):
    """w (R, C) times every image of a (n, C, L): (n, R, L).

    numpy's stacked matmul makes one small product per image and reads w
    each time; with many channels a single wide product (R, C) @ (C, n*L)
    is cheaper even with the transposing copy that puts its result back in
    per-image order (a batch of deconvnet signals through
    VGG16's conv5 read 9 MB of weights per signal otherwise)."""
    n, C, L = a.shape
    if n == 1 or C < tuning.WIDE_MIN_INNER:
        return np.matmul(w, a)
    wide = w @ a.transpose(1, 0, 2).reshape(C, n * L)                          # (R, n*L)
    return np.ascontiguousarray(wide.reshape(-1, n, L).transpose(1, 0, 2))    # (n, R, L)


def _grouped_product(w, a):
    """w (G, R, Cg) times every image of a (n, G*Cg, L), group g's rows of w
    with group g's rows of a: (n, G*R, L), the groups one after another."""
    G, R, Cg = w.shape
    if G == 1:
        return _product_per_image(w[0], a)
    n, _, L = a.shape
    return np.matmul(w, a.reshape(n, G, Cg, L)).reshape(n, G * R, L)  # (n, G, R, L) stacked


def conv2d(x, weight, bias, stride, padding, dilation, groups, relu):
    """``conv.conv2d`` (``conv.conv2d_relu`` with ``relu``): y = W2 @ im2col(x) + b,
    one product per group (group g's filters with its K/G rows of columns)."""
    (sH, sW), (pH, pW), (dH, dW) = stride, padding, dilation
    N, C, H, W = x.shape
    F, _, kH, kW = weight.shape
    Ho = conv_output_size(H, kH, sH, pH, dH)
    Wo = conv_output_size(W, kW, sW, pW, dW)
    K, L = C * kH * kW, Ho * Wo
    y = np.empty((N, F, L), dtype=x.dtype)
    if groups == 1:
        # y = W2 @ cols by register tiles: the rows of cols and of their
        # product M padded to Lp, whole vectors; bias and ReLU as M is copied out
        U = weight.reshape(1, F * K)
        b = np.zeros(F, dtype=x.dtype) if bias is None else bias
        lanes = simd.lanes(x.dtype)
        for n_, i0, i1 in _blocks(N, K + F, Ho, Wo, x.itemsize):
            Lc = (i1 - i0) * Wo
            Lp = simd.whole_vectors(Lc, lanes)
            cols = _columns(x, n_, kH, kW, sH, sW, pH, pW, dH, dW, i0, i1, Wo, row=Lp)  # (n, K, Lp)
            n = cols.shape[0]
            M = workspace.buffer("column products", n * F * Lp, x.dtype).reshape(n, F * Lp)
            plane_products_numba.products(U, cols.reshape(n, K * Lp), M, F, K, Lp)
            _copy_rows_out(M, Lp, Lc, b, relu, y, n_.start, i0 * Wo, work=n * F * Lc)
        return y.reshape(N, F, Ho, Wo)
    w2 = weight.reshape(groups, F // groups, K // groups)          # (G, Fg, Kg)
    for b, i0, i1 in _blocks(N, K, Ho, Wo, x.itemsize):
        cols = _columns(x, b, kH, kW, sH, sW, pH, pW, dH, dW, i0, i1, Wo)  # (n, K, rows*Wo)
        y[b, :, i0 * Wo:i1 * Wo] = _grouped_product(w2, cols)
    return _add_bias(y.reshape(N, F, Ho, Wo), bias, relu)


def conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation):
    """``conv.conv_transpose2d``: y = col2im(W2^T @ x) + b, group by group."""
    (sH, sW), (pH, pW), (opH, opW), (dH, dW) = stride, padding, output_padding, dilation
    N, C, H, W = x.shape
    _, Fg, kH, kW = weight.shape
    F = groups * Fg
    K, L = F * kH * kW, H * W
    Ho = conv_transpose_output_size(H, kH, sH, pH, opH, dH)
    Wo = conv_transpose_output_size(W, kW, sW, pW, opW, dW)
    x2 = x.reshape(N, C, L)
    y = np.empty((N, F, Ho, Wo), dtype=x.dtype)
    if groups == 1:
        # cols = W2^T @ x by register tiles, over rows of Lp (whole vectors):
        # x itself when its planes are, else a padded copy
        U = weight.reshape(1, C * K)                                    # W2 (C, K), read as W2^T
        Lp = simd.whole_vectors(L, simd.lanes(x.dtype))
        for b in _chunks(N, (K + C) * Lp * x.itemsize):
            n = x2[b].shape[0]
            if Lp == L:
                rows = x2[b].reshape(n, C * L)
            else:
                rows = workspace.buffer("padded input", n * C * Lp, x.dtype).reshape(n, C, Lp)
                rows[:, :, :L] = x2[b]
                rows[:, :, L:] = 0.0
                rows = rows.reshape(n, C * Lp)
            cols = workspace.buffer("columns", n * K * Lp, x.dtype).reshape(n, K * Lp)
            plane_products_numba.products(U, rows, cols, K, C, Lp, transposed=True)
            y[b] = _col2im(cols.reshape(n, K, Lp), F, Ho, Wo, kH, kW, sH, sW, pH, pW, dH, dW, H, W,
                           work=n * K * L)
        return _add_bias(y, bias)
    w2t = weight.reshape(groups, C // groups, Fg * kH * kW).transpose(0, 2, 1)  # (G, Kg, Cg)
    for b in _chunks(N, K * L * x.itemsize):
        cols = _grouped_product(w2t, x2[b])  # (n, K, L)
        y[b] = _col2im(cols, F, Ho, Wo, kH, kW, sH, sW, pH, pW, dH, dW, H, W, work=cols.size)
    return _add_bias(y, bias)


def conv2d_backward(grad_output, x, weight, stride, padding, dilation, groups):
    """``conv.conv2d_backward``: dW = dY @ cols^T, dcols = W2^T @ dY, per group."""
    (sH, sW), (pH, pW), (dH, dW) = stride, padding, dilation
    N, C, H, W = x.shape
    F, _, kH, kW = weight.shape
    _, _, Ho, Wo = grad_output.shape
    G = groups
    K, L = C * kH * kW, Ho * Wo
    w2 = weight.reshape(G, F // G, K // G)                             # (G, Fg, Kg)
    dy = grad_output.reshape(N, F, L)
    dx = np.empty_like(x)
    dw = np.zeros((G, F // G, K // G), dtype=x.dtype)
    for b in _chunks(N, K * L * x.itemsize):
        cols = _columns(x, b, kH, kW, sH, sW, pH, pW, dH, dW, 0, Ho, Wo)  # (n, K, L)
        n = cols.shape[0]
        dyg = dy[b].reshape(n, G, F // G, L)
        colsg = cols.reshape(n, G, K // G, L)
        dw += np.matmul(dyg, colsg.transpose(0, 1, 3, 2)).sum(axis=0)  # (G, Fg, Kg)
        dcols = _grouped_product(w2.transpose(0, 2, 1), dy[b])        # (n, K, L)
        dx[b] = _col2im(dcols, C, H, W, kH, kW, sH, sW, pH, pW, dH, dW, Ho, Wo, work=dcols.size)
    db = grad_output.sum(axis=(0, 2, 3))
    return dx, dw.reshape(weight.shape), db


def conv_transpose2d_backward(grad_output, x, weight, stride, padding, output_padding, groups, dilation):
    """``conv.conv_transpose2d_backward``: dx = conv2d(dy, w), dW = x @ cols^T,
    per group."""
    (sH, sW), (pH, pW), (dH, dW) = stride, padding, dilation
    N, C, H, W = x.shape
    _, Fg, kH, kW = weight.shape
    G = groups
    K, L = G * Fg * kH * kW, H * W
    w2 = weight.reshape(G, C // G, K // G)                              # (G, Cg, Kg)
    x2 = x.reshape(N, G, C // G, L)
    dx = np.empty((N, C, L), dtype=x.dtype)
    dw = np.zeros((G, C // G, K // G), dtype=x.dtype)
    for b in _chunks(N, K * L * x.itemsize):
        cols = _columns(grad_output, b, kH, kW, sH, sW, pH, pW, dH, dW, 0, H, W)  # (n, K, L)
        n = cols.shape[0]
        colsg = cols.reshape(n, G, K // G, L)
        if G == 1:
            np.matmul(w2[0], cols, out=dx[b])                                  # (n, C, L)
        else:
            dx[b] = np.matmul(w2, colsg).reshape(n, C, L)                      # (n, G, Cg, L)
        dw += np.matmul(x2[b], colsg.transpose(0, 1, 3, 2)).sum(axis=0)        # (G, Cg, Kg)
    db = grad_output.sum(axis=(0, 2, 3))
    return dx.reshape(N, C, H, W), dw.reshape(weight.shape), db
