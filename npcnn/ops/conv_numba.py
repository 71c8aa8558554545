"""Convolution and transposed convolution: the fast kernels, and which runs.

Same functions and signatures as ``conv.py`` (the specification). Each call
takes one of these paths, chosen by ``path`` below from the shapes alone
(thresholds in ``runtime/tuning.py``, their measurements in
``benchmarks/TUNING.md``):

| op               | path             | when it is taken                                   | file                 |
| ---------------- | ---------------- | -------------------------------------------------- | -------------------- |
| conv2d (+ relu)  | "depthwise"      | groups == C_in > 1, any dilation                   | depthwise_numba.py   |
|                  | "im2col"         | any other groups > 1 or dilation > 1               | im2col_numba.py      |
|                  | "direct"         | stride 1, at most DIRECT_MAX_WEIGHTS weights, and  | conv_direct_numba.py |
|                  |                  | several images or one small one; a dense batch     | (conv_lanes_numba.py |
|                  |                  | (uses_lanes there) is summed over images at once,  | for dense batches;   |
|                  |                  | by Winograd's F(2, 5) along the rows for few       | winograd_rows_numba  |
|                  |                  | channels, many filters 5 wide (uses_winograd_rows) | .py)                 |
|                  | "winograd"       | 3x3, stride 1, >= WINOGRAD_MIN_CHANNELS in and     | winograd_numba.py    |
|                  |                  | out, >= WINOGRAD_MIN_TILES 2x2 output tiles        | (reference:          |
|                  |                  |                                                    | winograd.py; its     |
|                  |                  |                                                    | products: plane_     |
|                  |                  |                                                    | products_numba.py)   |
|                  | "im2col"         | every other convolution                            | im2col_numba.py      |
| conv_transpose2d | "depthwise"      | groups == C_in > 1, any dilation                   | depthwise_numba.py   |
|                  | "col2im"         | any other groups > 1 or dilation > 1               | im2col_numba.py      |
|                  | "winograd"       | as conv2d's, for the transposed weight             | winograd_numba.py    |
|                  | "flipped direct" | stride 1, padding < kernel, the direct path's      | conv_direct_numba.py |
|                  |                  | limits: conv2d of the flipped filters              |                      |
|                  | "flipped im2col" | stride 1, padding < kernel, column matrix per      | im2col_numba.py      |
|                  |                  | image above TRANSPOSED_COL2IM_MAX_BYTES            |                      |
|                  | "col2im"         | every other transposed convolution                 | im2col_numba.py      |
| both backwards   | "depthwise"      | groups == C_in > 1 (as the forward)                | depthwise_numba.py   |
|                  | "im2col"         | always otherwise                                   | im2col_numba.py      |

The direct and Winograd kernels take neither dilation nor groups, so every
dilated or grouped convolution goes by im2col or, depthwise, by the direct
sums of ``depthwise_numba.py``, which reads each input plane once per
output plane where im2col would copy it kH*kW times for a one-row product.

The flipped paths use y = conv2d(x, w', padding k-1-p) with w'[f, c, p, q]
= w[c, f, kH-1-p, kW-1-q], which needs no (K, L) column matrix to scatter
back (115 MB for VGG16's 64-channel layer at 224x224).
"""
import numpy as np

from . import conv_direct_numba, depthwise_numba, im2col_numba, winograd_numba
from .runtime import tuning


def path(op, x, weight, stride, padding, dilation=(1, 1), groups=1):
    """The name of the path ``op`` ("conv2d" or "conv_transpose2d") takes
    for these arguments: a row of the table above."""
    (kH, kW), (pH, pW) = weight.shape[2:], padding
    N, C, H, W = x.shape
    transposed = op == "conv_transpose2d"
    if groups > 1 and groups == C:
        return "depthwise"
    if groups > 1 or tuple(dilation) != (1, 1):
        return "col2im" if transposed else "im2col"
    out_channels = weight.shape[1] if transposed else weight.shape[0]
    stride_one = tuple(stride) == (1, 1)
    tiles = N * ((H - 1) // 2 + 1) * ((W - 1) // 2 + 1)
    direct = (stride_one and weight.size <= tuning.DIRECT_MAX_WEIGHTS
              and (N > 1 or H * W <= tuning.DIRECT_MAX_SINGLE_IMAGE_PIXELS))
    winograd = ((kH, kW) == (3, 3) and stride_one and tiles >= tuning.WINOGRAD_MIN_TILES
                and min(C, out_channels) >= tuning.WINOGRAD_MIN_CHANNELS)
    if not transposed:
        return "direct" if direct else "winograd" if winograd else "im2col"
    if not stride_one or pH >= kH or pW >= kW:
        return "col2im"
    if winograd:
        return "winograd"
    if direct:
        return "flipped direct"
    columns = out_channels * kH * kW * H * W * x.itemsize  # bytes of one image's column matrix
    return "flipped im2col" if columns > tuning.TRANSPOSED_COL2IM_MAX_BYTES else "col2im"


def conv2d(x, weight, bias, stride, padding, dilation=(1, 1), groups=1):
    """See ``conv.conv2d``."""
    return _conv2d(x, weight, bias, stride, padding, dilation, groups, False)


def conv2d_relu(x, weight, bias, stride, padding, dilation=(1, 1), groups=1):
    """See ``conv.conv2d_relu``: each path applies the ReLU as it writes y
    (the direct kernels' copy out, Winograd's output transform, im2col's
    bias pass)."""
    return _conv2d(x, weight, bias, stride, padding, dilation, groups, True)


def _conv2d(x, weight, bias, stride, padding, dilation, groups, relu):
    taken = path("conv2d", x, weight, stride, padding, dilation, groups)
    if taken == "depthwise":
        return depthwise_numba.conv2d(x, weight, bias, stride, padding, dilation, groups, relu)
    if taken == "direct":
        return conv_direct_numba.conv2d(x, weight, bias, padding, relu)
    if taken == "winograd":
        return winograd_numba.conv2d_3x3(x, weight, bias, padding, relu)
    return im2col_numba.conv2d(x, weight, bias, stride, padding, dilation, groups, relu)


def conv2d_backward(grad_output, x, weight, stride, padding, dilation=(1, 1), groups=1):
    """See ``conv.conv2d_backward``."""
    if path("conv2d", x, weight, stride, padding, dilation, groups) == "depthwise":
        return depthwise_numba.conv2d_backward(grad_output, x, weight, stride, padding, dilation, groups)
    return im2col_numba.conv2d_backward(grad_output, x, weight, stride, padding, dilation, groups)


def conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups=1, dilation=(1, 1)):
    """See ``conv.conv_transpose2d``."""
    taken = path("conv_transpose2d", x, weight, stride, padding, dilation, groups)
    if taken == "depthwise":
        return depthwise_numba.conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups,
                                                dilation)
    if taken == "winograd":
        return winograd_numba.conv_transpose2d_3x3(x, weight, bias, padding)
    if taken.startswith("flipped"):
        (kH, kW), (pH, pW) = weight.shape[2:], padding
        flipped = np.ascontiguousarray(weight.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])  # (F, C, kH, kW)
        flipped_padding = (kH - 1 - pH, kW - 1 - pW)
        if taken == "flipped direct":
            return conv_direct_numba.conv2d(x, flipped, bias, flipped_padding, False)
        return im2col_numba.conv2d(x, flipped, bias, stride, flipped_padding, (1, 1), 1, False)
    return im2col_numba.conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation)


def conv_transpose2d_backward(grad_output, x, weight, stride, padding, output_padding, groups=1,
                              dilation=(1, 1)):
    """See ``conv.conv_transpose2d_backward``."""
    if path("conv_transpose2d", x, weight, stride, padding, dilation, groups) == "depthwise":
        return depthwise_numba.conv_transpose2d_backward(grad_output, x, weight, stride, padding,
                                                         output_padding, groups, dilation)
    return im2col_numba.conv_transpose2d_backward(grad_output, x, weight, stride, padding, output_padding,
                                                  groups, dilation)
