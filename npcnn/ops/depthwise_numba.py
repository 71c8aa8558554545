"""Depthwise convolution: direct, parallel kernels, plane by plane.

The "depthwise" path of the numba backend (see the table in
``conv_numba.py``): conv2d with groups == C_in (MobileNet's 3x3 depthwise,
DeepLab's dilated 3x3), whose every output plane reads one input plane, or
a few with a channel multiplier. im2col would copy kH*kW columns per pixel
to multiply them by a one-row matrix per group; here each output row adds
its kH*kW taps, each a row of the input scaled by one weight, in place. The
specification is ``conv.py``; dimension letters as there (G groups, Cg =
C/G and Fg = F/G channels per group). The kernels take any groups, summing
over the Cg channels of a group; they are chosen where Cg is 1.

Three kernels, the first two parallel over the output planes (one thread
writes each), the third over the filters:

    _correlate:       y[n,f] = sum_{c<Cg,p,q} w[f,c,p,q] * xpad[n, g*Cg+c, i*sH+p*dH, j*sW+q*dW]
                      (conv2d; and conv_transpose2d's input gradient)
    _scatter:         y[n, g*Fg+f, i*sH+p*dH-pH, j*sW+q*dW-pW]
                          += sum_{c<Cg} w[g*Cg+c, f, p, q] * x[n, g*Cg+c, i, j]
                      (conv_transpose2d; and conv2d's input gradient)
    _weight_gradient: dw[a,b,p,q] = sum_{n,i,j} D[n,a,i,j] * Spad[n, g*Bg+b, i*sH+p*dH, j*sW+q*dW]
                      (both weight gradients: D is the side the stride does
                      not sample, dy for conv2d and x for conv_transpose2d)

_correlate and _scatter add each output pixel's taps in the order c, p, q,
the reference's order where Cg is 1; _weight_gradient keeps a float64 sum
per column j and adds the columns last.
"""
import numpy as np
from numba import njit, prange, uint64

from .conv import conv_output_size, conv_transpose_output_size
from .im2col_numba import _valid_columns
from .runtime import tuning
from .runtime.jit import Kernel


def _axpy(y, y_start, y_step, a, x, x_start, x_step, count):
    """y[y_start + j*y_step] += a * x[x_start + j*x_step] for j < count, on
    flat arrays: one tap over a row. The indices are unsigned on purpose:
    numba wraps negative signed indices around, a test on every access that
    keeps LLVM from vectorising the loop, and these are never negative."""
    y0, x0 = uint64(y_start), uint64(x_start)
    if y_step == 1 and x_step == 1:  # stride 1: both rows contiguous
        for j in range(uint64(count)):
            y[y0 + j] += a * x[x0 + j]
    elif y_step == 1 and x_step == 2:  # stride 2, a constant LLVM vectorises as even lanes
        for j in range(uint64(count)):
            y[y0 + j] += a * x[x0 + 2 * j]
    else:
        ys, xs = uint64(y_step), uint64(x_step)
        for j in range(uint64(count)):
            y[y0 + j * ys] += a * x[x0 + j * xs]


def _correlate_py(x, w, bias, groups, sH, sW, pH, pW, dH, dW, Ho, Wo, relu):
    """y[n, f] for every (n, f) plane (with bias, and max(y, 0) with relu):
    tap by tap, each output row adds a row of x scaled by one weight (the
    plane stays in cache while its kH*kW*Cg taps pass over it)."""
    N, C, H, W = x.shape
    F, Cg, kH, kW = w.shape
    Fg = F // groups
    y = np.empty((N, F, Ho, Wo), dtype=x.dtype)
    xs, ys = x.reshape(-1), y.reshape(-1)                    # flat views, for _axpy
    for nf in prange(N * F):
        n, f = nf // F, nf % F
        first = (f // Fg) * Cg                               # the group's first input channel
        plane = nf * Ho * Wo                                 # y[n, f, 0, 0]
        ys[plane:plane + Ho * Wo] = 0.0
        for c in range(Cg):
            for p in range(kH):
                for q in range(kW):
                    j0, j1 = _valid_columns(W, Wo, sW, pW, q * dW)
                    tap = w[f, c, p, q]
                    for i in range(Ho):
                        h = i * sH - pH + p * dH
                        if h < 0 or h >= H:
                            continue
                        target = plane + i * Wo + j0                                    # y[n, f, i, j0]
                        source = ((n * C + first + c) * H + h) * W + j0 * sW + q * dW - pW  # x[n, g*Cg+c, h, .]
                        _axpy(ys, target, 1, tap, xs, source, sW, j1 - j0)
        b = bias[f]
        for k in range(plane, plane + Ho * Wo):
            v = ys[k] + b
            ys[k] = v if not relu or v > 0.0 or v != v else 0.0  # NaN stays NaN, as np.maximum
    return y


def _scatter_py(x, w, groups, sH, sW, pH, pW, dH, dW, Ho, Wo):
    """Every input pixel adds its weighted taps onto the (n, f) output plane;
    positions outside [0, Ho) x [0, Wo) (the cropped padding) are dropped."""
    N, C, H, W = x.shape
    _, Fg, kH, kW = w.shape
    Cg = C // groups
    F = groups * Fg
    y = np.zeros((N, F, Ho, Wo), dtype=x.dtype)
    xs, ys = x.reshape(-1), y.reshape(-1)                    # flat views, for _axpy
    for nf in prange(N * F):
        n, f = nf // F, nf % F
        g, fg = f // Fg, f % Fg
        for c in range(g * Cg, (g + 1) * Cg):
            for p in range(kH):
                for q in range(kW):
                    # the input columns j that land inside: 0 <= j*sW + q*dW - pW < Wo
                    j0 = max(0, (pW - q * dW + sW - 1) // sW)
                    j1 = max(j0, min(W, (Wo - 1 + pW - q * dW) // sW + 1))
                    for i in range(H):
                        h = i * sH + p * dH - pH
                        if h < 0 or h >= Ho:
                            continue
                        target = (nf * Ho + h) * Wo + j0 * sW + q * dW - pW  # y[n, f, h, j0*sW + q*dW - pW]
                        source = ((n * C + c) * H + i) * W + j0              # x[n, c, i, j0]
                        _axpy(ys, target, sW, w[c, fg, p, q], xs, source, 1, j1 - j0)
    return y


def _multiply_add(acc, a, a_start, b, b_start, b_step, count):
    """acc[j] += a[a_start + j] * b[b_start + j*b_step] for j < count, on
    flat arrays, with unsigned indices as in ``_axpy``: a sum kept apart per
    position j, so that the loop has no running total to wait on."""
    a0, b0 = uint64(a_start), uint64(b_start)
    if b_step == 1:
        for j in range(uint64(count)):
            acc[j] += a[a0 + j] * b[b0 + j]
    else:
        step = uint64(b_step)
        for j in range(uint64(count)):
            acc[j] += a[a0 + j] * b[b0 + j * step]


def _weight_gradient_py(D, S, groups, kH, kW, sH, sW, pH, pW, dH, dW):
    """dw[a, b, p, q] for every filter a (one thread each): D (N, A, Ho, Wo),
    S (N, G*Bg, H, W) sampled at the taps; (A, Bg, kH, kW). Each tap's sum
    over n and i goes into one float64 partial sum per column j, which are
    added last."""
    N, A, Ho, Wo = D.shape
    _, B, H, W = S.shape
    Ag, Bg = A // groups, B // groups
    dw = np.zeros((A, Bg, kH, kW), dtype=D.dtype)
    Ds, Ss = D.reshape(-1), S.reshape(-1)                    # flat views, for _multiply_add
    for a in prange(A):
        first = (a // Ag) * Bg
        acc = np.empty(Wo, dtype=np.float64)
        for b in range(Bg):
            for p in range(kH):
                for q in range(kW):
                    j0, j1 = _valid_columns(W, Wo, sW, pW, q * dW)
                    acc[:] = 0.0
                    for n in range(N):
                        for i in range(Ho):
                            h = i * sH - pH + p * dH
                            if h < 0 or h >= H:
                                continue
                            d_row = ((n * A + a) * Ho + i) * Wo + j0                         # D[n, a, i, j0]
                            s_row = ((n * B + first + b) * H + h) * W + j0 * sW + q * dW - pW  # S[n, ., h, .]
                            _multiply_add(acc, Ds, d_row, Ss, s_row, sW, j1 - j0)
                    dw[a, b, p, q] = acc.sum()
    return dw


# Jitted on their own line, so NUMBA_DISABLE_JIT=1 steps through the plain
# Python above in a debugger.
_axpy = njit(cache=True, inline="always")(_axpy)
_multiply_add = njit(cache=True, inline="always")(_multiply_add)
# A depthwise multiply-add is one step of an axpy over a row, bound by memory
# like an elementwise pass, not a cache-blocked product: weighed as one.
_correlate = Kernel(_correlate_py, cost=tuning.COST_ELEMENTWISE)
_scatter = Kernel(_scatter_py, cost=tuning.COST_ELEMENTWISE)
_weight_gradient = Kernel(_weight_gradient_py, cost=tuning.COST_ELEMENTWISE)


def _no_bias(F, dtype):
    return np.zeros(F, dtype=dtype)


def conv2d(x, weight, bias, stride, padding, dilation, groups, relu):
    """``conv.conv2d`` (``conv.conv2d_relu`` with ``relu``) by direct sums."""
    (sH, sW), (pH, pW), (dH, dW) = stride, padding, dilation
    N, C, H, W = x.shape
    F, Cg, kH, kW = weight.shape
    Ho, Wo = conv_output_size(H, kH, sH, pH, dH), conv_output_size(W, kW, sW, pW, dW)
    b = _no_bias(F, x.dtype) if bias is None else bias
    return _correlate(x, weight, b, groups, sH, sW, pH, pW, dH, dW, Ho, Wo, relu,
                      work=N * F * Ho * Wo * Cg * kH * kW)


def conv2d_backward(grad_output, x, weight, stride, padding, dilation, groups):
    """``conv.conv2d_backward``: dx scatters dy through the filters (the
    weight (F, Cg, kH, kW) read as a transposed one), dw correlates dy with x."""
    (sH, sW), (pH, pW), (dH, dW) = stride, padding, dilation
    N, C, H, W = x.shape
    F, Cg, kH, kW = weight.shape
    work = grad_output.size * Cg * kH * kW
    dx = _scatter(grad_output, weight, groups, sH, sW, pH, pW, dH, dW, H, W, work=work)
    dw = _weight_gradient(grad_output, x, groups, kH, kW, sH, sW, pH, pW, dH, dW, work=work)
    return dx, dw, grad_output.sum(axis=(0, 2, 3))


def conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation):
    """``conv.conv_transpose2d`` by direct scatter, one output plane a thread."""
    (sH, sW), (pH, pW), (opH, opW), (dH, dW) = stride, padding, output_padding, dilation
    N, C, H, W = x.shape
    _, Fg, kH, kW = weight.shape
    Ho = conv_transpose_output_size(H, kH, sH, pH, opH, dH)
    Wo = conv_transpose_output_size(W, kW, sW, pW, opW, dW)
    y = _scatter(x, weight, groups, sH, sW, pH, pW, dH, dW, Ho, Wo, work=x.size * Fg * kH * kW)
    if bias is not None:
        y += bias[None, :, None, None]
    return y


def conv_transpose2d_backward(grad_output, x, weight, stride, padding, output_padding, groups, dilation):
    """``conv.conv_transpose2d_backward``: dx correlates dy with the filters
    (the weight (C, Fg, kH, kW) read as a conv2d one), dw correlates x with dy."""
    (sH, sW), (pH, pW), (dH, dW) = stride, padding, dilation
    N, C, H, W = x.shape
    _, Fg, kH, kW = weight.shape
    work = x.size * Fg * kH * kW
    dx = _correlate(grad_output, weight, _no_bias(C, x.dtype), groups, sH, sW, pH, pW, dH, dW, H, W,
                    False, work=work)
    dw = _weight_gradient(x, grad_output, groups, kH, kW, sH, sW, pH, pW, dH, dW, work=work)
    return dx, dw, grad_output.sum(axis=(0, 2, 3))
