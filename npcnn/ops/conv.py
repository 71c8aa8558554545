"""Convolution and transposed convolution: the readable NumPy reference.

This file is the specification; ``conv_numba.py`` beside it has the same
functions with the same signatures and must give the same numbers.

Dimension letters, used in every shape comment:
    N batch, C input channels, F output channels (filters),
    H, W input height and width, Ho, Wo output height and width,
    kH, kW kernel height and width, sH, sW strides, pH, pW paddings,
    dH, dW dilations (the distance between two kernel taps),
    G groups, Cg = C/G and Fg = F/G the channels of one group.

Arguments arrive already checked and normalised by ``npcnn.functional``:
``stride``, ``padding``, ``output_padding`` and ``dilation`` are ``(h, w)``
pairs, ``groups`` an int dividing C and F, and ``bias`` an array or None.

Groups split the channels into G independent convolutions: output channel
f = g*Fg + f' sees only the input channels g*Cg .. g*Cg + Cg - 1, so the
weight holds Cg input channels per filter (torch's layout). groups == C is
the depthwise convolution of MobileNet; dilation spreads the kH x kW taps
dH, dW pixels apart (DeepLab's atrous convolution) without more weights.

Every function loops over the kH*kW kernel offsets ``(p, q)`` and does one
channel contraction per offset, with a group axis g, so each line reads like
the equation in its docstring.
"""
import numpy as np


def conv_output_size(size, kernel, stride, pad, dilation):
    """Output length of a convolution along one axis, as torch:

        out = (size + 2*pad - dilation*(kernel - 1) - 1) // stride + 1

    dilation*(kernel - 1) + 1 is the extent of the dilated kernel.
    """
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def conv_transpose_output_size(size, kernel, stride, pad, output_pad, dilation):
    """Output length of a transposed convolution along one axis, as torch:

        out = (size - 1)*stride - 2*pad + dilation*(kernel - 1) + output_pad + 1
    """
    return (size - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_pad + 1


def _grouped(a, groups):
    """(N, C, h, w) -> (N, G, C/G, h, w): the channels of each group."""
    N, C = a.shape[:2]
    return a.reshape(N, groups, C // groups, *a.shape[2:])


def conv2d(x, weight, bias, stride, padding, dilation=(1, 1), groups=1):
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``.

    Inputs:
        x:      (N, C, H, W)
        weight: (F, Cg, kH, kW),  Cg = C / groups
        bias:   (F,) or None
    Returns:
        y:      (N, F, Ho, Wo), with
                Ho = (H + 2*pH - dH*(kH - 1) - 1) // sH + 1,  Wo likewise

        y[n,f,i,j] = b[f] + sum_{c<Cg,p,q} xpad[n, g*Cg+c, i*sH+p*dH, j*sW+q*dW] * w[f,c,p,q]

    where g = f // Fg is the group of filter f, and xpad is x with pH zero
    rows above and below and pW zero columns left and right.
    """
    (sH, sW), (pH, pW), (dH, dW) = stride, padding, dilation
    N, C, H, W = x.shape
    F, Cg, kH, kW = weight.shape
    G = groups
    Ho = conv_output_size(H, kH, sH, pH, dH)
    Wo = conv_output_size(W, kW, sW, pW, dW)
    xpad = np.pad(x, ((0, 0), (0, 0), (pH, pH), (pW, pW)))  # (N, C, H+2pH, W+2pW)
    wg = weight.reshape(G, F // G, Cg, kH, kW)                 # (G, Fg, Cg, kH, kW)
    y = np.zeros((N, G, F // G, Ho, Wo), dtype=x.dtype)
    for p in range(kH):
        for q in range(kW):
            # the input pixels that meet w[:, :, p, q] at every output position
            patch = xpad[:, :, p * dH:p * dH + sH * Ho:sH, q * dW:q * dW + sW * Wo:sW]  # (N, C, Ho, Wo)
            y += np.einsum("ngchw,gfc->ngfhw", _grouped(patch, G), wg[:, :, :, p, q])
    y = y.reshape(N, F, Ho, Wo)
    if bias is not None:
        y += bias[None, :, None, None]
    return y


def conv2d_relu(x, weight, bias, stride, padding, dilation=(1, 1), groups=1):
    """``conv2d`` followed by a ReLU, max(y, 0) (NaN stays NaN): what a
    forward pass that keeps only the ReLU's output needs. The fast kernels
    apply the ReLU as they write y, which spares a pass over it."""
    return np.maximum(conv2d(x, weight, bias, stride, padding, dilation, groups), 0)


def conv2d_backward(grad_output, x, weight, stride, padding, dilation=(1, 1), groups=1):
    """Gradients of ``conv2d`` with respect to its input, weight and bias.

    Inputs:
        grad_output: dL/dy, (N, F, Ho, Wo)
        x, weight, stride, padding, dilation, groups: as given to ``conv2d``
    Returns:
        (dx, dw, db) shaped like x (N, C, H, W), weight (F, Cg, kH, kW), (F,)

        dw[f,c,p,q] = sum_{n,i,j} dy[n,f,i,j] * xpad[n, g*Cg+c, i*sH+p*dH, j*sW+q*dW]
        dxpad[n, g*Cg+c, i*sH+p*dH, j*sW+q*dW] += sum_{f in group g} dy[n,f,i,j] * w[f,c,p,q]
        db[f] = sum_{n,i,j} dy[n,f,i,j]

    and dx is dxpad without its padding. Pixels that no window reaches
    (when the size does not tile, or between the taps of a dilated kernel
    at a stride above 1) get zero gradient.
    """
    (sH, sW), (pH, pW), (dH, dW) = stride, padding, dilation
    N, C, H, W = x.shape
    F, Cg, kH, kW = weight.shape
    G = groups
    _, _, Ho, Wo = grad_output.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (pH, pH), (pW, pW)))  # (N, C, H+2pH, W+2pW)
    dxpad = np.zeros_like(xpad)
    wg = weight.reshape(G, F // G, Cg, kH, kW)                 # (G, Fg, Cg, kH, kW)
    dwg = np.zeros_like(wg)
    dyg = _grouped(grad_output, G)                             # (N, G, Fg, Ho, Wo)
    for p in range(kH):
        for q in range(kW):
            rows = slice(p * dH, p * dH + sH * Ho, sH)
            cols = slice(q * dW, q * dW + sW * Wo, sW)
            patch = _grouped(xpad[:, :, rows, cols], G)        # (N, G, Cg, Ho, Wo)
            dwg[:, :, :, p, q] = np.einsum("ngfhw,ngchw->gfc", dyg, patch)
            dxpad[:, :, rows, cols] += np.einsum(
                "ngfhw,gfc->ngchw", dyg, wg[:, :, :, p, q]).reshape(N, C, Ho, Wo)
    dx = dxpad[:, :, pH:pH + H, pW:pW + W]
    db = grad_output.sum(axis=(0, 2, 3))
    return np.ascontiguousarray(dx), dwg.reshape(weight.shape), db


def conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups=1, dilation=(1, 1)):
    """2-D transposed convolution, as ``torch.nn.functional.conv_transpose2d``
    (whose order, groups before dilation, this keeps).

    The adjoint of ``conv2d`` with respect to its input: every input pixel
    scatters its value, weighted by the filter, onto a kH x kW patch of the
    output (taps dH, dW apart). Used by the deconvnet to filter with "the
    transposed filters".

    Inputs:
        x:      (N, C, H, W)
        weight: (C, Fg, kH, kW)    (input channels first, as in torch; F = G*Fg)
        bias:   (F,) or None
    Returns:
        y:      (N, F, Ho, Wo), with
                Ho = (H - 1)*sH - 2*pH + dH*(kH - 1) + opH + 1,  Wo likewise

        yfull[n, g*Fg+f, i*sH+p*dH, j*sW+q*dW] += sum_{c<Cg} x[n, g*Cg+c, i, j] * w[g*Cg+c, f, p, q]
        y = yfull[:, :, pH:pH+Ho, pW:pW+Wo] + b[f]

    ``output_padding`` (opH, opW) only lengthens the output on the bottom and
    right; it exists because several input sizes of conv2d give one output
    size, and it picks which one to invert.
    """
    (sH, sW), (pH, pW), (opH, opW), (dH, dW) = stride, padding, output_padding, dilation
    N, C, H, W = x.shape
    _, Fg, kH, kW = weight.shape
    G = groups
    Ho = conv_transpose_output_size(H, kH, sH, pH, opH, dH)
    Wo = conv_transpose_output_size(W, kW, sW, pW, opW, dW)
    wg = weight.reshape(G, C // G, Fg, kH, kW)                 # (G, Cg, Fg, kH, kW)
    xg = _grouped(x, G)                                        # (N, G, Cg, H, W)
    yfull = np.zeros((N, G * Fg, Ho + 2 * pH, Wo + 2 * pW), dtype=x.dtype)
    for p in range(kH):
        for q in range(kW):
            yfull[:, :, p * dH:p * dH + sH * H:sH, q * dW:q * dW + sW * W:sW] += np.einsum(
                "ngchw,gcf->ngfhw", xg, wg[:, :, :, p, q]).reshape(N, G * Fg, H, W)
    y = np.ascontiguousarray(yfull[:, :, pH:pH + Ho, pW:pW + Wo])  # (N, F, Ho, Wo)
    if bias is not None:
        y += bias[None, :, None, None]
    return y


def conv_transpose2d_backward(grad_output, x, weight, stride, padding, output_padding, groups=1,
                              dilation=(1, 1)):
    """Gradients of ``conv_transpose2d`` with respect to input, weight and bias.

    Inputs:
        grad_output: dL/dy, (N, F, Ho, Wo)
        x, weight, stride, padding, output_padding, groups, dilation: as
        given to conv_transpose2d
    Returns:
        (dx, dw, db) shaped like x (N, C, H, W), weight (C, Fg, kH, kW), (F,)

        dx[n, g*Cg+c, i, j] = sum_{f<Fg,p,q} dypad[n, g*Fg+f, i*sH+p*dH, j*sW+q*dW] * w[g*Cg+c, f, p, q]
        dw[g*Cg+c, f, p, q] = sum_{n,i,j} x[n, g*Cg+c, i, j] * dypad[n, g*Fg+f, i*sH+p*dH, j*sW+q*dW]
        db[f]               = sum_{n,i,j} dy[n,f,i,j]

    where dypad is dy with pH, pW zeros around it: dx is conv2d(dy, w).
    """
    (sH, sW), (pH, pW), (dH, dW) = stride, padding, dilation
    N, C, H, W = x.shape
    _, Fg, kH, kW = weight.shape
    G = groups
    dypad = np.pad(grad_output, ((0, 0), (0, 0), (pH, pH), (pW, pW)))  # (N, F, Ho+2pH, Wo+2pW)
    wg = weight.reshape(G, C // G, Fg, kH, kW)                 # (G, Cg, Fg, kH, kW)
    xg = _grouped(x, G)                                        # (N, G, Cg, H, W)
    dxg = np.zeros_like(xg)
    dwg = np.zeros_like(wg)
    for p in range(kH):
        for q in range(kW):
            patch = _grouped(dypad[:, :, p * dH:p * dH + sH * H:sH, q * dW:q * dW + sW * W:sW], G)
            # patch: (N, G, Fg, H, W)
            dxg += np.einsum("ngfhw,gcf->ngchw", patch, wg[:, :, :, p, q])
            dwg[:, :, :, p, q] = np.einsum("ngchw,ngfhw->gcf", xg, patch)
    db = grad_output.sum(axis=(0, 2, 3))
    return dxg.reshape(x.shape), dwg.reshape(weight.shape), db
