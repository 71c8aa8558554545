"""Depthwise convolution: direct, parallel kernels, plane by plane.

The "depthwise" path of the numba backend (see the table in
``conv_numba.py``): conv2d with groups == C_in (MobileNet's 3x3 depthwise,
DeepLab's dilated 3x3), whose every output plane reads one input plane, or
a few with a channel multiplier. im2col would copy kH*kW columns per pixel
to multiply them by a one-row matrix per group; here each output pixel sums
its kH*kW taps in place (the forward from a zero-padded copy of the input
plane, so no tap needs a bounds test; 3x3, MobileNet's and DeepLab's, with
its nine weights held in registers). The specification is ``conv.py``;
dimension letters as there (G groups, Cg = C/G and Fg = F/G channels per
group). The kernels take any groups, summing over the Cg channels of a
group; they are chosen where Cg is 1.

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

_correlate and _scatter add each output pixel's taps in the order p, q (the
reference's) within a channel c, channel after channel; _weight_gradient
keeps a float64 sum per column j and adds the columns last.
"""
import numpy as np
from numba import get_thread_id, njit, prange, uint64

from .conv import conv_output_size, conv_transpose_output_size
from .im2col_numba import _valid_columns
from .runtime import tuning
from .runtime.jit import Kernel, thread_slots


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


def _nine_taps(t0, t1, t2, k, c1, c2, taps):
    """sum_{p,q} taps[3p + q] * row_p[k + q*dW] (c1 = dW, c2 = 2*dW): one
    output pixel of a 3x3 kernel, its taps added in the reference's order."""
    return (taps[0] * t0[k] + taps[1] * t0[k + c1] + taps[2] * t0[k + c2]
            + taps[3] * t1[k] + taps[4] * t1[k + c1] + taps[5] * t1[k + c2]
            + taps[6] * t2[k] + taps[7] * t2[k + c1] + taps[8] * t2[k + c2])


def _add_3x3(out, padded, w, sH, sW, dH, dW):
    """out[i, j] += sum_{p,q<3} w[p,q] * padded[i*sH + p*dH, j*sW + q*dW].

    The 3x3 kernel of MobileNet and DeepLab, named here: its nine weights
    stay in registers and each output pixel is read and written once, where
    the general loop below reads and writes it once per tap. Stride 1 and 2
    are constants LLVM vectorises (2 as even lanes); the indices unsigned as
    in ``_axpy``."""
    Ho, Wo = out.shape
    taps = (w[0, 0], w[0, 1], w[0, 2], w[1, 0], w[1, 1], w[1, 2], w[2, 0], w[2, 1], w[2, 2])
    c1, c2 = uint64(dW), uint64(2 * dW)
    for i in range(Ho):
        t0, t1, t2 = padded[i * sH], padded[i * sH + dH], padded[i * sH + 2 * dH]
        row = out[i]
        if sW == 1:
            for j in range(uint64(Wo)):
                row[j] += _nine_taps(t0, t1, t2, j, c1, c2, taps)
        elif sW == 2:
            for j in range(uint64(Wo)):
                row[j] += _nine_taps(t0, t1, t2, uint64(2) * j, c1, c2, taps)
        else:
            step = uint64(sW)
            for j in range(uint64(Wo)):
                row[j] += _nine_taps(t0, t1, t2, step * j, c1, c2, taps)


def _add_taps(out, padded, w, sH, sW, dH, dW):
    """out[i, j] += sum_{p,q} w[p,q] * padded[i*sH + p*dH, j*sW + q*dW], any
    kernel: tap by tap, a row of the padded plane scaled into each output row."""
    Ho, Wo = out.shape
    kH, kW = w.shape
    Wp = padded.shape[1]
    out_flat, padded_flat = out.reshape(-1), padded.reshape(-1)
    for p in range(kH):
        for q in range(kW):
            for i in range(Ho):
                source = (i * sH + p * dH) * Wp + q * dW  # padded[i*sH + p*dH, q*dW]
                _axpy(out_flat, i * Wo, 1, w[p, q], padded_flat, source, sW, Wo)


def _correlate_py(x, w, bias, groups, sH, sW, pH, pW, dH, dW, Ho, Wo, relu, pads):
    """y[n, f] for every (n, f) plane (with bias, and max(y, 0) with relu).
    Each input plane of the group is first copied into the middle of its
    thread's zero-padded plane, pads[thread] (H + 2pH, W + 2pW), zeros
    from the caller, so that no tap needs a bounds test; only the middle is
    ever written, so the border stays zero from plane to plane."""
    N, C, H, W = x.shape
    F, Cg, kH, kW = w.shape
    Fg = F // groups
    y = np.empty((N, F, Ho, Wo), dtype=x.dtype)
    for nf in prange(N * F):
        n, f = nf // F, nf % F
        first = (f // Fg) * Cg                               # the group's first input channel
        padded = pads[get_thread_id()]
        out = y[n, f]
        out[:, :] = 0.0
        for c in range(Cg):
            padded[pH:pH + H, pW:pW + W] = x[n, first + c]
            if kH == 3 and kW == 3:
                _add_3x3(out, padded, w[f, c], sH, sW, dH, dW)
            else:
                _add_taps(out, padded, w[f, c], sH, sW, dH, dW)
        b = bias[f]
        for i in range(Ho):
            for j in range(Wo):
                v = out[i, j] + b
                out[i, j] = v if not relu or v > 0.0 or v != v else 0.0  # NaN stays NaN, as np.maximum
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
_nine_taps = njit(cache=True, inline="always")(_nine_taps)
_add_3x3 = njit(cache=True)(_add_3x3)
_add_taps = njit(cache=True)(_add_taps)
# A depthwise multiply-add is one step of an axpy over a row, bound by memory
# like an elementwise pass, not a cache-blocked product: weighed as one.
_correlate = Kernel(_correlate_py, cost=tuning.COST_ELEMENTWISE)
_scatter = Kernel(_scatter_py, cost=tuning.COST_ELEMENTWISE)
_weight_gradient = Kernel(_weight_gradient_py, cost=tuning.COST_ELEMENTWISE)


def _no_bias(F, dtype):
    return np.zeros(F, dtype=dtype)


def _pads(x, pH, pW):
    """``_correlate``'s zero-padded planes of x's, one per thread
    (``jit.thread_slots``)."""
    H, W = x.shape[2:]
    return np.zeros((thread_slots(), H + 2 * pH, W + 2 * pW), dtype=x.dtype)


def conv2d(x, weight, bias, stride, padding, dilation, groups, relu):
    """``conv.conv2d`` (``conv.conv2d_relu`` with ``relu``) by direct sums."""
    (sH, sW), (pH, pW), (dH, dW) = stride, padding, dilation
    N, C, H, W = x.shape
    F, Cg, kH, kW = weight.shape
    Ho, Wo = conv_output_size(H, kH, sH, pH, dH), conv_output_size(W, kW, sW, pW, dW)
    b = _no_bias(F, x.dtype) if bias is None else bias
    return _correlate(x, weight, b, groups, sH, sW, pH, pW, dH, dW, Ho, Wo, relu, _pads(x, pH, pW),
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
                    False, _pads(grad_output, pH, pW), work=work)
    dw = _weight_gradient(x, grad_output, groups, kH, kW, sH, sW, pH, pW, dH, dW, work=work)
    return dx, dw, grad_output.sum(axis=(0, 2, 3))
