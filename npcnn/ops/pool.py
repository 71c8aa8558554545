"""Max-pooling with switches, unpooling and adaptive average pooling: the
readable NumPy reference (the specification; ``pool_numba.py`` must equal it).

Dimension letters: N batch, C channels, H, W input size, Ho, Wo output
size, kH, kW window, sH, sW stride, pH, pW padding, dH, dW dilation (the
distance between two taps of a window). Arguments arrive checked and
normalised (pairs) by ``npcnn.functional``.
"""
import math

import numpy as np


def pool_output_size(size, kernel, stride, pad, ceil_mode, dilation=1):
    """Output length of a pooling window sliding over one axis, as torch.

        out = floor((size + 2*pad - dilation*(kernel-1) - 1) / stride) + 1   (ceil_mode False)
        out = ceil((size + 2*pad - dilation*(kernel-1) - 1) / stride) + 1    (ceil_mode True)

    and with ceil_mode a last window that would start inside the right-hand
    padding is dropped. (A dilated window that starts in the left padding
    may still hold no real pixel when size < dilation: ``empty_windows``.)
    """
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def empty_windows(size, kernel, stride, pad, dilation, out):
    """How many of the ``out`` windows along one axis have every tap
    i*stride - pad + p*dilation in the padding, none in [0, size). Only a
    window starting in the left padding can (a window starting inside the
    input holds its first tap), and only with dilation: torch returns -inf
    there with an index outside the plane, which npcnn refuses."""
    empty = 0
    for i in range(out):
        start = i * stride - pad
        if start >= 0:
            break
        first = -(start // dilation)  # the first tap p with start + p*dilation >= 0
        if first >= kernel or start + first * dilation >= size:
            empty += 1
    return empty


def max_pool2d(x, kernel_size, stride, padding, ceil_mode, dilation=(1, 1)):
    """Max-pooling that also returns where each maximum came from.

    Inputs:
        x: (N, C, H, W)
    Returns:
        y:        (N, C, Ho, Wo), Ho = pool_output_size(H, kH, sH, pH, ceil_mode, dH)
        switches: (N, C, Ho, Wo) int64, the flat index h*W + w, into the
                  unpadded input plane, of the maximum of each window

        y[n,c,i,j] = max_{p<kH, q<kW} xpad[n,c,i*sH+p*dH, j*sW+q*dW]

    xpad is padded with -inf, so padding never wins. Ties go to the first
    maximum in row-major window order (a later value must be strictly
    greater to take over), which is torch's rule: after a ReLU most windows
    are ties at zero, and the switches still equal torch's indices.
    """
    (kH, kW), (sH, sW), (pH, pW), (dH, dW) = kernel_size, stride, padding, dilation
    N, C, H, W = x.shape
    Ho = pool_output_size(H, kH, sH, pH, ceil_mode, dH)
    Wo = pool_output_size(W, kW, sW, pW, ceil_mode, dW)
    # pad enough -inf below and right for the last (ceil_mode) windows too
    extra_h = max(0, (Ho - 1) * sH + dH * (kH - 1) + 1 - (H + 2 * pH))
    extra_w = max(0, (Wo - 1) * sW + dW * (kW - 1) + 1 - (W + 2 * pW))
    xpad = np.pad(x, ((0, 0), (0, 0), (pH, pH + extra_h), (pW, pW + extra_w)),
                  constant_values=-np.inf)
    i = np.arange(Ho)[:, None]  # (Ho, 1) output rows
    j = np.arange(Wo)[None, :]  # (1, Wo) output columns
    y = np.full((N, C, Ho, Wo), -np.inf, dtype=x.dtype)
    switches = np.full((N, C, Ho, Wo), -1, dtype=np.int64)
    for p in range(kH):          # row-major window order: p, then q
        for q in range(kW):
            v = xpad[:, :, p * dH:p * dH + sH * Ho:sH, q * dW:q * dW + sW * Wo:sW]  # (N, C, Ho, Wo)
            flat = (i * sH - pH + p * dH) * W + (j * sW - pW + q * dW)  # (Ho, Wo) index into x
            better = v > y                                        # strict: first max wins
            y = np.where(better, v, y)
            switches = np.where(better, flat, switches)
    return y, switches


def max_pool2d_values(x, kernel_size, stride, padding, ceil_mode, dilation=(1, 1)):
    """``max_pool2d`` without the switches: y alone, for a forward pass
    that keeps nothing to project back (torch's ``return_indices=False``)."""
    return max_pool2d(x, kernel_size, stride, padding, ceil_mode, dilation)[0]


def max_unpool2d(y, switches, output_size, out=None, op="max_unpool2d"):
    """Put every pooled value back where its maximum came from.

    Inputs:
        y, switches: (N, C, Hp, Wp), as returned by ``max_pool2d``
        output_size: (Ho, Wo), the size of the pooled input
        out: None, or a C-contiguous (N, C, Ho, Wo) array to write x into
        op: the name a switch outside the plane is reported under
            (``check_switch_range``)
    Returns:
        x: (N, C, Ho, Wo), zero except at switch positions (``out`` if given)

        x[n, c, s // Wo, s % Wo] += y[n,c,i,j]   with s = switches[n,c,i,j]

    Where pooling windows overlap (kernel > stride) one input pixel can be
    the maximum of several windows; its values add up. That is the adjoint
    of max-pooling (torch's autograd gradient of max_pool2d), whereas
    ``torch.nn.functional.max_unpool2d`` keeps one of them, unspecified
    which. Without overlap the two agree.
    """
    N, C = y.shape[:2]
    Ho, Wo = output_size
    check_switch_range(op, switches, output_size)
    x = (np.empty((N, C, Ho, Wo), dtype=y.dtype) if out is None else out).reshape(N * C, Ho * Wo)
    x[...] = 0
    plane = np.arange(N * C)[:, None]  # (N*C, 1) row of each value
    pooled = y.shape[2] * y.shape[3]   # written out: -1 is undefined beside N*C = 0
    np.add.at(x, (plane, switches.reshape(N * C, pooled)), y.reshape(N * C, pooled))
    return x.reshape(N, C, Ho, Wo) if out is None else out


def check_switch_range(op, switches, output_size):
    """Raise a ValueError naming ``op`` unless every switch indexes the
    (Ho, Wo) plane: 0 <= s < Ho*Wo. (The numba kernel makes the same test
    as it scatters, and calls this to word the error.)"""
    Ho, Wo = output_size
    if switches.size and (switches.min() < 0 or switches.max() >= Ho * Wo):
        raise ValueError(f"{op}: indices range over [{switches.min()}, {switches.max()}] but the "
                         f"output plane {Ho}x{Wo} holds {Ho * Wo} positions")


def adaptive_bounds(size, out):
    """Window i of an adaptive pool covers [floor(i*size/out), ceil((i+1)*size/out))."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def adaptive_avg_pool2d(x, output_size):
    """Average over windows chosen so that the output has a fixed size.

    Inputs:
        x: (N, C, H, W)
        output_size: (Ho, Wo)
    Returns:
        y: (N, C, Ho, Wo),
           y[n,c,i,j] = mean(x[n, c, h0(i):h1(i), w0(j):w1(j)])
           with h0(i) = floor(i*H/Ho), h1(i) = ceil((i+1)*H/Ho), w likewise.

    When Ho divides H this is average pooling with kernel = stride = H/Ho;
    otherwise neighbouring windows overlap by a pixel. VGG16 maps 7x7 to
    7x7 (identity) at 224x224; AlexNet maps 6x6 to 6x6.
    """
    N, C, H, W = x.shape
    Ho, Wo = output_size
    y = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    for i, (h0, h1) in enumerate(adaptive_bounds(H, Ho)):
        for j, (w0, w1) in enumerate(adaptive_bounds(W, Wo)):
            y[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return y


def adaptive_avg_pool2d_backward(grad_output, input_size):
    """Gradient of ``adaptive_avg_pool2d``: each window spreads dy evenly.

        dx[n, c, h0(i):h1(i), w0(j):w1(j)] += dy[n,c,i,j] / ((h1-h0)*(w1-w0))
    """
    N, C, Ho, Wo = grad_output.shape
    H, W = input_size
    dx = np.zeros((N, C, H, W), dtype=grad_output.dtype)
    for i, (h0, h1) in enumerate(adaptive_bounds(H, Ho)):
        for j, (w0, w1) in enumerate(adaptive_bounds(W, Wo)):
            area = (h1 - h0) * (w1 - w0)
            dx[:, :, h0:h1, w0:w1] += grad_output[:, :, i:i + 1, j:j + 1] / area
    return dx
