"""Depthwise convolution: direct, parallel kernels, plane by plane.

The "depthwise" path of the numba backend (see the table in
``conv_numba.py``): conv2d with groups == C_in (MobileNet's 3x3 depthwise,
DeepLab's dilated 3x3), whose every output plane reads one input plane, or
a few with a channel multiplier. im2col would copy kH*kW columns per pixel
to multiply them by a one-row matrix per group; here each output pixel is
its kH*kW taps summed in place. The specification is ``conv.py``; dimension
letters as there (G groups, Cg = C/G and Fg = F/G channels per group).

Three kernels, each parallel over planes that one thread alone writes:

    _correlate:       y[n,f]  = sum_{c<Cg,p,q} w[f,c,p,q] * xpad[n, g*Cg+c, i*sH+p*dH, j*sW+q*dW]
                      (conv2d; and conv_transpose2d's input gradient)
    _scatter:         y[n, g*Fg+f, i*sH+p*dH-pH, j*sW+q*dW-pW] += sum_{c<Cg} w[g*Cg+c,f,p,q] * x[n,g*Cg+c,i,j]
                      (conv_transpose2d; and conv2d's input gradient)
    _weight_gradient: dw[a,b,p,q] = sum_{n,i,j} D[n,a,i,j] * Spad[n, g*Bg+b, i*sH+p*dH, j*sW+q*dW]
                      (both weight gradients: D is the side the stride does
                      not sample, dy for conv2d and x for conv_transpose2d)

Each output pixel sums its taps in the reference's order (c, then p, q),
so with one channel per group the numbers are the reference's.
"""
import numpy as np
from numba import prange

from .conv import conv_output_size, conv_transpose_output_size
from .im2col_numba import _valid_columns
from .runtime import tuning
from .runtime.jit import Kernel


def _correlate_py(x, w, bias, groups, sH, sW, pH, pW, dH, dW, Ho, Wo, relu):
    """y[n, f] for every (n, f) plane (with bias, and max(y, 0) with relu)."""
    N, C, H, W = x.shape
    F, Cg, kH, kW = w.shape
    Fg = F // groups
    y = np.empty((N, F, Ho, Wo), dtype=x.dtype)
    for nf in prange(N * F):
        n, f = nf // F, nf % F
        first = (f // Fg) * Cg                               # the group's first input channel
        for i in range(Ho):
            row = y[n, f, i]
            row[:] = 0.0
            for c in range(Cg):
                for p in range(kH):
                    h = i * sH - pH + p * dH
                    if h < 0 or h >= H:
                        continue
                    source = x[n, first + c, h]
                    for q in range(kW):
                        j0, j1 = _valid_columns(W, Wo, sW, pW, q * dW)
                        tap, offset = w[f, c, p, q], q * dW - pW
                        for j in range(j0, j1):
                            row[j] += tap * source[j * sW + offset]
            b = bias[f]
            for j in range(Wo):
                v = row[j] + b
                row[j] = v if not relu or v > 0.0 or v != v else 0.0  # NaN stays NaN, as np.maximum
    return y


def _scatter_py(x, w, groups, sH, sW, pH, pW, dH, dW, Ho, Wo):
    """Every input pixel adds its weighted taps onto the (n, f) output plane;
    positions outside [0, Ho) x [0, Wo) (the cropped padding) are dropped."""
    N, C, H, W = x.shape
    _, Fg, kH, kW = w.shape
    Cg = C // groups
    F = groups * Fg
    y = np.zeros((N, F, Ho, Wo), dtype=x.dtype)
    for nf in prange(N * F):
        n, f = nf // F, nf % F
        g, fg = f // Fg, f % Fg
        plane = y[n, f]
        for c in range(g * Cg, (g + 1) * Cg):
            for p in range(kH):
                for q in range(kW):
                    tap = w[c, fg, p, q]
                    # input columns j landing inside: 0 <= j*sW + q*dW - pW < Wo
                    j0 = max(0, (pW - q * dW + sW - 1) // sW)
                    j1 = min(W, max(0, (Wo - 1 + pW - q * dW) // sW + 1))
                    for i in range(H):
                        h = i * sH + p * dH - pH
                        if h < 0 or h >= Ho:
                            continue
                        target, source = plane[h], x[n, c, i]
                        for j in range(j0, j1):
                            target[j * sW + q * dW - pW] += tap * source[j]
    return y


def _weight_gradient_py(D, S, groups, kH, kW, sH, sW, pH, pW, dH, dW):
    """dw[a, b, p, q] for every filter a (one thread each): D (N, A, Ho, Wo),
    S (N, G*Bg, H, W) sampled at the taps; (A, Bg, kH, kW)."""
    N, A, Ho, Wo = D.shape
    _, B, H, W = S.shape
    Ag, Bg = A // groups, B // groups
    dw = np.zeros((A, Bg, kH, kW), dtype=D.dtype)
    for a in prange(A):
        first = (a // Ag) * Bg
        for b in range(Bg):
            for p in range(kH):
                for q in range(kW):
                    j0, j1 = _valid_columns(W, Wo, sW, pW, q * dW)
                    offset = q * dW - pW
                    total = 0.0
                    for n in range(N):
                        for i in range(Ho):
                            h = i * sH - pH + p * dH
                            if h < 0 or h >= H:
                                continue
                            d_row, s_row = D[n, a, i], S[n, first + b, h]
                            for j in range(j0, j1):
                                total += d_row[j] * s_row[j * sW + offset]
                    dw[a, b, p, q] = total
    return dw


_correlate = Kernel(_correlate_py, cost=tuning.COST_MULTIPLY_ADD)
_scatter = Kernel(_scatter_py, cost=tuning.COST_MULTIPLY_ADD)
_weight_gradient = Kernel(_weight_gradient_py, cost=tuning.COST_MULTIPLY_ADD)


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
