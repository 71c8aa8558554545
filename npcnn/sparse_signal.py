"""The deconvnet's conv step for signals that are mostly zero.

A projection starts from one channel of one layer (and with ``select="max"``
from one unit of it), so on the way down the signal is zero in most
channels (until the first conv step) and outside a box that grows by the
filter's reach at every step and doubles at every unpooling. From a unit
of VGG16's pool5 away from the borders, the conv steps see boxes of 1, 3
and 5 units in 14x14 maps, 14-18 in 28x28 ... 192-194 in 224x224.

A depthwise conv (groups = channels) keeps a signal in its one channel on
the way down; a grouped one spreads it over its group's channels only.

``conv_transpose2d`` below skips both kinds of zeros: it filters only the
box of the batch's nonzeros (stride 1), and only the channels that hold
them, each through its own group's filters (for LeNet-5-sized filters, the
numba backend's direct kernel leaves out each signal's zero channels by
itself, in one call). Zeros add exact zeros to the sums, so the result is
the dense transposed convolution (summed in another order where a signal
has several channels). A check that finds no saving is not made again
further down: a signal only spreads on the way down.
"""
import numpy as np
from numba import njit

from . import functional as F
from .ops.runtime import tuning


class Shortcuts:
    """Which of the two checks are still worth making for one walk down."""

    def __init__(self):
        self.box = True
        self.channels = True


def conv_transpose2d(g, w, stride, padding, output_padding, groups, dilation, backend, shortcuts):
    """``F.conv_transpose2d(g, w, None, stride, padding, output_padding,
    groups, dilation)``, computed only where g is nonzero when that is a
    small part of it."""
    _, _, H, W = g.shape
    if shortcuts.box and tuple(stride) == (1, 1):
        box = _box(g)
        if box is None:  # all zero
            return _zero_output(g, w, padding, groups, dilation)
        r0, r1, c0, c1 = box
        if (r1 - r0) * (c1 - c0) <= tuning.SPARSE_SMALL_BOX * H * W:
            return _in_box(g, w, box, padding, groups, dilation, backend, shortcuts)
        shortcuts.box = False
    return _channels_or_dense(g, w, stride, padding, output_padding, groups, dilation, backend, shortcuts)


def _channels_or_dense(g, w, stride, padding, output_padding, groups, dilation, backend, shortcuts):
    B = g.shape[0]
    if shortcuts.channels and F.conv_path("conv_transpose2d", g, w, stride, padding, groups=groups,
                                          dilation=dilation, backend=backend) == "flipped direct":
        shortcuts.channels = False  # the kernel leaves each signal's zero channels out itself, in one call
    if shortcuts.channels:
        active = g.reshape(B, g.shape[1], -1).any(axis=2)     # (B, C): channels holding a nonzero
        if active.sum() * tuning.SPARSE_FEW_CHANNELS <= active.size:
            return _by_channel(g, active, w, stride, padding, output_padding, groups, dilation, backend)
        shortcuts.channels = False
    return F.conv_transpose2d(g, w, None, stride, padding, output_padding, groups, dilation, backend=backend)


def _any_per_pixel(planes):
    """(H*W,) uint8: 1 where any plane (a row of ``planes``, (N*C, H*W))
    is nonzero at that pixel, NaN included. Planes ORed into one, a loop
    LLVM vectorises: numpy's ``any`` over two axes is a few times slower
    on the deconvnet's signals (benchmarks/TUNING.md)."""
    out = np.zeros(planes.shape[1], dtype=np.uint8)
    for p in range(planes.shape[0]):
        row = planes[p]
        for k in range(planes.shape[1]):
            out[k] |= row[k] != 0
    return out


_any_per_pixel = njit(cache=True)(_any_per_pixel)


def _box(g):
    """(r0, r1, c0, c1): the rows and columns of g's nonzeros over every
    signal and channel, half-open; None if g is all zero."""
    N, C, H, W = g.shape
    nonzero = _any_per_pixel(np.ascontiguousarray(g).reshape(N * C, H * W)).reshape(H, W) != 0
    rows, cols = np.flatnonzero(nonzero.any(axis=1)), np.flatnonzero(nonzero.any(axis=0))
    if rows.size == 0:
        return None
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def _in_box(g, w, box, padding, groups, dilation, backend, shortcuts):
    """Stride 1: the transposed convolution of the box alone, unpadded, is
    the part of the full output at rows r0 .. r1 + dH*(kH - 1) - 1 (columns
    alike); padding p then shifts it by -p and cuts what falls outside."""
    (pH, pW), (r0, r1, c0, c1) = padding, box
    part = _channels_or_dense(np.ascontiguousarray(g[:, :, r0:r1, c0:c1]), w, (1, 1), (0, 0), (0, 0),
                              groups, dilation, backend, shortcuts)
    out = _zero_output(g, w, padding, groups, dilation)
    Ho, Wo = out.shape[2:]
    top, left = r0 - pH, c0 - pW                                # where part's (0, 0) lands
    a0, a1 = max(0, -top), min(part.shape[2], Ho - top)
    b0, b1 = max(0, -left), min(part.shape[3], Wo - left)
    out[:, :, top + a0:top + a1, left + b0:left + b1] = part[:, :, a0:a1, b0:b1]
    return out


def _zero_output(g, w, padding, groups, dilation):
    """Zeros shaped like the stride-1 transposed convolution of g:
    (B, groups * w.shape[1], Ho, Wo), Ho = H - 2*pH + dH*(kH - 1) (Wo alike)."""
    (B, _, H, W), (kH, kW) = g.shape, w.shape[2:]
    Ho = H - 2 * padding[0] + dilation[0] * (kH - 1)
    Wo = W - 2 * padding[1] + dilation[1] * (kW - 1)
    return np.zeros((B, groups * w.shape[1], Ho, Wo), dtype=g.dtype)


def _by_channel(g, active, w, stride, padding, output_padding, groups, dilation, backend):
    """Channel by channel, each over the signals where it is nonzero. Input
    channel c belongs to group c // (C_in/groups) and reaches only that
    group's C_out/groups output channels, through its own filters w[c]."""
    per_group_in, per_group_out = g.shape[1] // groups, w.shape[1]
    out = None
    for c in np.flatnonzero(active.any(axis=0)):
        rows = np.flatnonzero(active[:, c])
        part = F.conv_transpose2d(g[rows, c:c + 1], w[c:c + 1], None, stride, padding, output_padding,
                                  1, dilation, backend=backend)          # (rows, C_out/groups, Ho, Wo)
        if out is None:
            out = np.zeros((g.shape[0], groups * per_group_out) + part.shape[2:], dtype=g.dtype)
        first = c // per_group_in * per_group_out
        out[rows, first:first + per_group_out] += part
    if out is None:  # all zero: the dense call makes the zeros, in the right shape
        return F.conv_transpose2d(g, w, None, stride, padding, output_padding, groups, dilation,
                                  backend=backend)
    return out
