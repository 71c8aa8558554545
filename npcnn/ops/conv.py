"""Convolution and transposed convolution: the readable NumPy reference.

This file is the specification; ``conv_numba.py`` beside it has the same
functions with the same signatures and must give the same numbers.

Dimension letters, used in every shape comment:
    N batch, C input channels, F output channels (filters),
    H, W input height and width, Ho, Wo output height and width,
    kH, kW kernel height and width, sH, sW strides, pH, pW paddings.

Arguments arrive already checked and normalised by ``npcnn.functional``:
``stride``, ``padding`` and ``output_padding`` are ``(h, w)`` pairs and
``bias`` is an array or None.

Every function loops over the kH*kW kernel offsets ``(p, q)`` and does one
channel contraction per offset, so each line reads like the equation in its
docstring.
"""
import numpy as np


def conv2d(x, weight, bias, stride, padding):
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``.

    Inputs:
        x:      (N, C, H, W)
        weight: (F, C, kH, kW)
        bias:   (F,) or None
    Returns:
        y:      (N, F, Ho, Wo), with
                Ho = (H + 2*pH - kH) // sH + 1,  Wo = (W + 2*pW - kW) // sW + 1

        y[n,f,i,j] = b[f] + sum_{c,p,q} xpad[n,c,i*sH+p, j*sW+q] * w[f,c,p,q]

    where xpad is x with pH zero rows above and below and pW zero columns
    left and right.
    """
    (sH, sW), (pH, pW) = stride, padding
    N, C, H, W = x.shape
    F, _, kH, kW = weight.shape
    Ho = (H + 2 * pH - kH) // sH + 1
    Wo = (W + 2 * pW - kW) // sW + 1
    xpad = np.pad(x, ((0, 0), (0, 0), (pH, pH), (pW, pW)))  # (N, C, H+2pH, W+2pW)
    y = np.zeros((N, F, Ho, Wo), dtype=x.dtype)
    for p in range(kH):
        for q in range(kW):
            # the input pixels that meet w[:, :, p, q] at every output position
            patch = xpad[:, :, p:p + sH * Ho:sH, q:q + sW * Wo:sW]  # (N, C, Ho, Wo)
            y += np.einsum("nchw,fc->nfhw", patch, weight[:, :, p, q])
    if bias is not None:
        y += bias[None, :, None, None]
    return y


def conv2d_relu(x, weight, bias, stride, padding):
    """``conv2d`` followed by a ReLU, max(y, 0) (NaN stays NaN): what a
    forward pass that keeps only the ReLU's output needs. The fast kernels
    apply the ReLU as they write y, which spares a pass over it."""
    return np.maximum(conv2d(x, weight, bias, stride, padding), 0)


def conv2d_backward(grad_output, x, weight, stride, padding):
    """Gradients of ``conv2d`` with respect to its input, weight and bias.

    Inputs:
        grad_output: dL/dy, (N, F, Ho, Wo)
        x, weight, stride, padding: as given to ``conv2d``
    Returns:
        (dx, dw, db) shaped like x (N, C, H, W), weight (F, C, kH, kW), (F,)

        dw[f,c,p,q] = sum_{n,i,j} dy[n,f,i,j] * xpad[n,c,i*sH+p, j*sW+q]
        dxpad[n,c,i*sH+p, j*sW+q] += sum_f dy[n,f,i,j] * w[f,c,p,q]
        db[f] = sum_{n,i,j} dy[n,f,i,j]

    and dx is dxpad without its padding. Pixels that no window reaches
    (when the size does not tile) get zero gradient.
    """
    (sH, sW), (pH, pW) = stride, padding
    N, C, H, W = x.shape
    F, _, kH, kW = weight.shape
    _, _, Ho, Wo = grad_output.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (pH, pH), (pW, pW)))  # (N, C, H+2pH, W+2pW)
    dxpad = np.zeros_like(xpad)
    dw = np.zeros_like(weight)
    for p in range(kH):
        for q in range(kW):
            rows = slice(p, p + sH * Ho, sH)
            cols = slice(q, q + sW * Wo, sW)
            dw[:, :, p, q] = np.einsum("nfhw,nchw->fc", grad_output, xpad[:, :, rows, cols])
            dxpad[:, :, rows, cols] += np.einsum("nfhw,fc->nchw", grad_output, weight[:, :, p, q])
    dx = dxpad[:, :, pH:pH + H, pW:pW + W]
    db = grad_output.sum(axis=(0, 2, 3))
    return np.ascontiguousarray(dx), dw, db


def conv_transpose2d(x, weight, bias, stride, padding, output_padding):
    """2-D transposed convolution, as ``torch.nn.functional.conv_transpose2d``.

    The adjoint of ``conv2d`` with respect to its input: every input pixel
    scatters its value, weighted by the filter, onto a kH x kW patch of the
    output. Used by the deconvnet to filter with "the transposed filters".

    Inputs:
        x:      (N, C, H, W)
        weight: (C, F, kH, kW)     (note: input channels first, as in torch)
        bias:   (F,) or None
    Returns:
        y:      (N, F, Ho, Wo), with
                Ho = (H - 1)*sH - 2*pH + kH + opH,  Wo likewise

        yfull[n,f,i*sH+p, j*sW+q] += sum_c x[n,c,i,j] * w[c,f,p,q]
        y = yfull[:, :, pH:pH+Ho, pW:pW+Wo] + b[f]

    ``output_padding`` (opH, opW) only lengthens the output on the bottom and
    right; it exists because several input sizes of conv2d give one output
    size, and it picks which one to invert.
    """
    (sH, sW), (pH, pW), (opH, opW) = stride, padding, output_padding
    N, C, H, W = x.shape
    _, F, kH, kW = weight.shape
    Ho = (H - 1) * sH - 2 * pH + kH + opH
    Wo = (W - 1) * sW - 2 * pW + kW + opW
    yfull = np.zeros((N, F, Ho + 2 * pH, Wo + 2 * pW), dtype=x.dtype)
    for p in range(kH):
        for q in range(kW):
            yfull[:, :, p:p + sH * H:sH, q:q + sW * W:sW] += np.einsum(
                "nchw,cf->nfhw", x, weight[:, :, p, q])
    y = np.ascontiguousarray(yfull[:, :, pH:pH + Ho, pW:pW + Wo])  # (N, F, Ho, Wo)
    if bias is not None:
        y += bias[None, :, None, None]
    return y


def conv_transpose2d_backward(grad_output, x, weight, stride, padding, output_padding):
    """Gradients of ``conv_transpose2d`` with respect to input, weight and bias.

    Inputs:
        grad_output: dL/dy, (N, F, Ho, Wo)
        x, weight, stride, padding, output_padding: as given to conv_transpose2d
    Returns:
        (dx, dw, db) shaped like x (N, C, H, W), weight (C, F, kH, kW), (F,)

        dx[n,c,i,j] = sum_{f,p,q} dypad[n,f,i*sH+p, j*sW+q] * w[c,f,p,q]
        dw[c,f,p,q] = sum_{n,i,j} x[n,c,i,j] * dypad[n,f,i*sH+p, j*sW+q]
        db[f]       = sum_{n,i,j} dy[n,f,i,j]

    where dypad is dy with pH, pW zeros around it: dx is conv2d(dy, w).
    """
    (sH, sW), (pH, pW) = stride, padding
    N, C, H, W = x.shape
    _, F, kH, kW = weight.shape
    dypad = np.pad(grad_output, ((0, 0), (0, 0), (pH, pH), (pW, pW)))  # (N, F, Ho+2pH, Wo+2pW)
    dx = np.zeros_like(x)
    dw = np.zeros_like(weight)
    for p in range(kH):
        for q in range(kW):
            patch = dypad[:, :, p:p + sH * H:sH, q:q + sW * W:sW]  # (N, F, H, W)
            dx += np.einsum("nfhw,cf->nchw", patch, weight[:, :, p, q])
            dw[:, :, p, q] = np.einsum("nchw,nfhw->cf", x, patch)
    db = grad_output.sum(axis=(0, 2, 3))
    return dx, dw, db
