"""The direct convolution: stride 1, few and small filters, no column matrix.

One path of the numba backend's ``conv2d`` (see the table in
``conv_numba.py``): LeNet-5, SimpleCNN and, by their flipped filters, their
transposes. The specification is ``conv.conv2d``:

    y[n,f,i,j] = b[f] + sum_{c,p,q} xpad[n,c,i+p, j+q] * w[f,c,p,q]

Each image is copied once into a zero-padded buffer with its channels' rows
laid end to end; a tap t = (c, p, q) is then one offset into that buffer and
the output of a filter is a sum of shifted, scaled copies of it: contiguous
multiply-adds that LLVM vectorises, where im2col's matrix product would be
a thin one. Channels that are zero in an image are left out of its sum (the
deconvnet's signals are zero in all channels but one below their layer).
Dimension letters as in ``conv.py``; T taps per filter, Hp, Wp the padded
size.
"""
import numpy as np
from numba import njit, prange

from . import conv_lanes_numba, winograd_rows_numba
from .runtime import simd, tuning
from .runtime.jit import Kernel
from .runtime.rows import copy_relu, copy_row, fill_row


def _tap(xp, offsets, t, wide):
    """The padded image as tap t sees it: xp[offsets[t] + k] for k < wide."""
    return xp[offsets[t]:offsets[t] + wide]


def _four_taps(xp, offsets, t, wide):
    """Taps t .. t+3, as ``_tap`` sees them."""
    return (_tap(xp, offsets, t, wide), _tap(xp, offsets, t + 1, wide),
            _tap(xp, offsets, t + 2, wide), _tap(xp, offsets, t + 3, wide))


def _taps_four_filters(acc, xp, offsets, w2, f, wide):
    """acc[g, k] += sum_t w2[f + g, t] * xp[offsets[t] + k] for g < 4.

    Four filters share each pass over the taps: every shifted slice of the
    image is loaded once for four accumulators (4 taps x 4 filters = 16
    multiply-adds per element and pass, where one filter at a time does 4).
    Each accumulator adds its taps in a chain, so LLVM can fuse every step
    into one multiply-add.
    """
    r0, r1, r2, r3 = acc[0], acc[1], acc[2], acc[3]
    T = offsets.shape[0]
    t = 0
    while t + 4 <= T:
        s0, s1, s2, s3 = _four_taps(xp, offsets, t, wide)
        a00, a01, a02, a03 = w2[f, t], w2[f, t + 1], w2[f, t + 2], w2[f, t + 3]
        a10, a11, a12, a13 = w2[f + 1, t], w2[f + 1, t + 1], w2[f + 1, t + 2], w2[f + 1, t + 3]
        a20, a21, a22, a23 = w2[f + 2, t], w2[f + 2, t + 1], w2[f + 2, t + 2], w2[f + 2, t + 3]
        a30, a31, a32, a33 = w2[f + 3, t], w2[f + 3, t + 1], w2[f + 3, t + 2], w2[f + 3, t + 3]
        for k in range(wide):
            v0, v1, v2, v3 = s0[k], s1[k], s2[k], s3[k]
            r0[k] = (((r0[k] + a00 * v0) + a01 * v1) + a02 * v2) + a03 * v3
            r1[k] = (((r1[k] + a10 * v0) + a11 * v1) + a12 * v2) + a13 * v3
            r2[k] = (((r2[k] + a20 * v0) + a21 * v1) + a22 * v2) + a23 * v3
            r3[k] = (((r3[k] + a30 * v0) + a31 * v1) + a32 * v2) + a33 * v3
        t += 4
    while t < T:                               # the last T % 4 taps
        s0 = _tap(xp, offsets, t, wide)
        a0, a1, a2, a3 = w2[f, t], w2[f + 1, t], w2[f + 2, t], w2[f + 3, t]
        for k in range(wide):
            v0 = s0[k]
            r0[k] += a0 * v0
            r1[k] += a1 * v0
            r2[k] += a2 * v0
            r3[k] += a3 * v0
        t += 1


def _taps_two_filters(acc, xp, offsets, w2, f, wide):
    """acc[g, k] += sum_t w2[f + g, t] * xp[offsets[t] + k] for g < 2: the
    two filters left over when F % 4 is 2 or 3 (LeNet-5's conv_1 and the
    transpose of its conv_2 have 6). Each accumulator's four multiply-adds
    per pass depend on each other, so one filter alone leaves few chains in
    flight for the multiply-add units, and reads the image once per filter."""
    r0, r1 = acc[0], acc[1]
    T = offsets.shape[0]
    t = 0
    while t + 4 <= T:
        s0, s1, s2, s3 = _four_taps(xp, offsets, t, wide)
        a00, a01, a02, a03 = w2[f, t], w2[f, t + 1], w2[f, t + 2], w2[f, t + 3]
        a10, a11, a12, a13 = w2[f + 1, t], w2[f + 1, t + 1], w2[f + 1, t + 2], w2[f + 1, t + 3]
        for k in range(wide):
            v0, v1, v2, v3 = s0[k], s1[k], s2[k], s3[k]
            r0[k] = (((r0[k] + a00 * v0) + a01 * v1) + a02 * v2) + a03 * v3
            r1[k] = (((r1[k] + a10 * v0) + a11 * v1) + a12 * v2) + a13 * v3
        t += 4
    while t < T:
        s0 = _tap(xp, offsets, t, wide)
        a0, a1 = w2[f, t], w2[f + 1, t]
        for k in range(wide):
            v0 = s0[k]
            r0[k] += a0 * v0
            r1[k] += a1 * v0
        t += 1


def _taps_one_filter(r, xp, offsets, w, wide):
    """r[k] += sum_t w[t] * xp[offsets[t] + k], four taps per pass (the
    accumulator is loaded and stored once per four multiply-adds)."""
    T = offsets.shape[0]
    t = 0
    while t + 4 <= T:
        s0, s1, s2, s3 = _four_taps(xp, offsets, t, wide)
        a0, a1, a2, a3 = w[t], w[t + 1], w[t + 2], w[t + 3]
        for k in range(wide):
            r[k] = (((r[k] + a0 * s0[k]) + a1 * s1[k]) + a2 * s2[k]) + a3 * s3[k]
        t += 4
    while t < T:
        s0 = _tap(xp, offsets, t, wide)
        a0 = w[t]
        for k in range(wide):
            r[k] += a0 * s0[k]
        t += 1


def _image_channels(x, n, active):
    """active[n, :count]: the channels of image n that hold a nonzero (NaN
    and inf count), in order; returns count. x is C-contiguous.

    A channel whose first element is nonzero is active; otherwise its sum
    of |x| is zero only if all of it is. The sum runs without a branch and
    its additions may be reordered (fastmath "reassoc" below), so LLVM
    vectorises it, where a loop that stops at the first nonzero reads one
    element per cycle. The first element settles most channels of a dense
    batch, which the lanes kernels judge on a sample before every call
    (benchmarks/TUNING.md), and reading a channel once costs little beside
    filtering it with kH*kW taps per filter."""
    _, C, H, W = x.shape
    HW = H * W
    image = x[n].reshape(C * HW)
    count = 0
    for c in range(C):
        total = abs(image[c * HW])
        if total == 0:
            for k in range(c * HW + 1, (c + 1) * HW):
                total += abs(image[k])
        if total != 0:
            active[n, count] = c
            count += 1
    return count


def _nonzero_channels_py(x, active):
    """``_image_channels`` of every image: fills active, returns count (N,)."""
    N = x.shape[0]
    count = np.empty(N, dtype=np.int64)
    for n in prange(N):
        count[n] = _image_channels(x, n, active)
    return count


def _tap_offsets(C, kH, kW, Hp, Wp):
    """Where tap t = (c, p, q) of a filter starts in a padded image whose
    channels' rows are laid end to end: c*Hp*Wp + p*Wp + q."""
    offsets = np.empty(C * kH * kW, dtype=np.int64)
    for c in range(C):
        for p in range(kH):
            for q in range(kW):
                offsets[(c * kH + p) * kW + q] = c * Hp * Wp + p * Wp + q
    return offsets


def _conv_direct_py(x, active, count, weight, bias, relu, pH, pW, find_channels):
    """Stride-1 convolution without a column matrix, for few channels:
    y[n, f, i, j] = b[f] + sum_{c,p,q} xpad[n, c, i + p, j + q] * w[f, c, p, q].

    Each task n copies image n into a zero-padded buffer, every channel's
    rows laid end to end (C*Hp*Wp). A tap t = (c, p, q) is then one offset
    into that buffer, c*Hp*Wp + p*Wp + q, and for each filter f the output
    is a sum of shifted, scaled copies of the buffer: one contiguous
    multiply-add per tap, which LLVM vectorises. Filters go four at a time
    (``_taps_four_filters``), the last F % 4 two
    (``_taps_two_filters``) and then one at a time. The
    accumulators are "wide": output row i starts at i*Wp, and the kW-1
    columns past Wo at the end of each row are computed and dropped. They
    start from the bias, which saves a pass over the output; with ``relu``
    the copy out applies max(y, 0), which saves another.
    (The loops read slices of the buffer, not buffer[off + k]: with a
    possibly negative index numba wraps it, and that blocked vectorising.)

    Channels of an image that are zero everywhere are left out of its
    buffer and its taps: image n has only the channels active[n, :count[n]]
    (``_image_channels``: found here with ``find_channels``, else by the
    caller); the others would add exact zeros (the weights are finite,
    checked by the caller). The deconvnet's signals are zero in all channels
    but one below the layer they start from: LeNet-5's 16 pool_2 maps go
    down in one call, not one per channel. An unpadded image with
    every channel active is its own buffer: no copy.
    """
    N, C, H, W = x.shape
    F, _, kH, kW = weight.shape
    Hp, Wp = H + 2 * pH, W + 2 * pW
    Ho, Wo = Hp - kH + 1, Wp - kW + 1
    wide = (Ho - 1) * Wp + Wo                  # length of a wide accumulator
    taps = kH * kW                             # taps per channel, in weight order (p, q)
    w3 = weight.reshape(F, C, taps)
    all_offsets = _tap_offsets(C, kH, kW, Hp, Wp)
    y = np.empty((N, F, Ho, Wo), dtype=x.dtype)
    for n in prange(N):
        if find_channels:
            count[n] = _image_channels(x, n, active)
        A = count[n]                           # channel active[n, a] sits at slot a of the buffer
        if A == C and pH == 0 and pW == 0:
            xp = x[n].reshape(C * H * W)
        else:
            xp = np.zeros(A * Hp * Wp, dtype=x.dtype)
            for a in range(A):
                for h in range(H):
                    start = a * Hp * Wp + (h + pH) * Wp + pW
                    copy_row(xp[start:start + W], x[n, active[n, a], h])
        if A == C:                             # dense: every tap, the weights as they are
            offsets, w2 = all_offsets, weight.reshape(F, C * taps)
        else:                                  # the taps of the active channels only
            offsets = all_offsets[:A * taps]
            w2 = np.empty((F, A * taps), dtype=x.dtype)
            for a in range(A):
                for f in range(F):
                    copy_row(w2[f, a * taps:(a + 1) * taps], w3[f, active[n, a]])
        acc = np.empty((4, wide), dtype=x.dtype)
        for f in range(0, F, 4):
            group = min(4, F - f)
            for g in range(group):
                fill_row(acc[g], bias[f + g])
            if group == 4:
                _taps_four_filters(acc, xp, offsets, w2, f, wide)
            else:
                g = 0
                if group >= 2:
                    _taps_two_filters(acc, xp, offsets, w2, f, wide)
                    g = 2
                if g < group:
                    _taps_one_filter(acc[g], xp, offsets, w2[f + g], wide)
            for g in range(group):
                for i in range(Ho):
                    if relu:
                        copy_relu(y[n, f + g, i], acc[g, i * Wp:i * Wp + Wo])
                    else:
                        copy_row(y[n, f + g, i], acc[g, i * Wp:i * Wp + Wo])
    return y


# Jitted on their own line, so NUMBA_DISABLE_JIT=1 steps through the plain
# Python above in a debugger.
# reassoc: the sums of |x| are compared with zero only, whatever their order
_image_channels = njit(cache=True, fastmath={"reassoc"})(_image_channels)
_nonzero_channels = Kernel(_nonzero_channels_py, cost=tuning.COST_ELEMENTWISE)
_tap_offsets = njit(cache=True)(_tap_offsets)
# contract: let LLVM fuse a * b + c into one multiply-add (rounded once: a
# difference in the last bit, well inside the parity tolerances)
_tap = njit(cache=True, inline="always")(_tap)
_four_taps = njit(cache=True, inline="always")(_four_taps)
_taps_four_filters = njit(cache=True, fastmath={"contract"})(_taps_four_filters)
_taps_two_filters = njit(cache=True, fastmath={"contract"})(_taps_two_filters)
_taps_one_filter = njit(cache=True, fastmath={"contract"})(_taps_one_filter)
# work: multiply-adds
_conv_direct = Kernel(_conv_direct_py, cost=tuning.COST_MULTIPLY_ADD)


def uses_lanes(x_shape, weight_shape, dtype, active_share):
    """Whether ``conv2d`` runs the kernel vectorised over images
    (``conv_lanes_numba.py``) for a batch of this shape and dtype in which
    a share ``active_share`` of the (image, channel) pairs hold a nonzero:
    a batch of at least ``tuning.DIRECT_LANES_MIN_IMAGES`` images (float32;
    the same number of vectors in float64, whose vectors hold half as many
    images), filters of at least ``tuning.DIRECT_LANES_MIN_TAPS`` taps, and
    channels mostly nonzero (``tuning.DIRECT_LANES_MIN_ACTIVE``). The
    others, and the deconvnet's signals with one channel in sixteen, run
    the wide-row kernel above, which leaves their zero channels out."""
    N, C = x_shape[:2]
    images = tuning.DIRECT_LANES_MIN_IMAGES * simd.lanes(dtype) // simd.lanes(np.float32)
    taps = C * weight_shape[2] * weight_shape[3]
    return N >= images and taps >= tuning.DIRECT_LANES_MIN_TAPS and active_share >= tuning.DIRECT_LANES_MIN_ACTIVE


def over_images(x_shape, weight_shape, padding, dtype, active_share):
    """The kernel vectorised over images that a batch runs, the module
    ``conv_lanes_numba`` or its Winograd variant ``winograd_rows_numba``,
    or None where the wide-row kernel above runs (``uses_lanes``)."""
    if not uses_lanes(x_shape, weight_shape, dtype, active_share):
        return None
    if winograd_rows_numba.uses_winograd_rows(x_shape, weight_shape, padding, dtype):
        return winograd_rows_numba
    return conv_lanes_numba


def conv2d(x, weight, bias, padding, relu):
    """``conv.conv2d`` at stride 1 (``conv.conv2d_relu`` with ``relu``).
    A dense batch runs the kernel vectorised over images, or its Winograd
    variant for the shapes where that wins (``winograd_rows_numba.py``:
    LeNet-5's conv_2). Whether the batch's channels are mostly nonzero is
    judged on its first vector of images (``simd.lanes``): the deconvnet's
    batches are sparse throughout, a forward's dense throughout, and a scan
    of the whole batch costs a tenth of the convolution."""
    (pH, pW) = padding
    N, C, H, W = x.shape
    F, _, kH, kW = weight.shape
    b = np.zeros(F, dtype=x.dtype) if bias is None else bias
    x = np.ascontiguousarray(x)
    active = np.empty((N, C), dtype=np.int64)
    per_channel = F * kH * kW * (H + 2 * pH - kH + 1) * (W + 2 * pW - kW + 1)  # multiply-adds
    dense = N * C * per_channel
    if uses_lanes(x.shape, weight.shape, x.dtype, 1.0):
        sample = x[:simd.lanes(x.dtype)]
        share = _nonzero_channels.serial(sample, active).sum() / sample.shape[0] / C
        kernel = over_images(x.shape, weight.shape, padding, x.dtype, share)
        if kernel is not None:
            return kernel.conv2d(x, weight, b, padding, relu, work=dense)
    if _conv_direct.serial_at(dense):
        # one thread even if every channel is active: the kernel finds
        # them as it goes, which spares a call (LeNet-5 at batch 1)
        count = np.empty(N, dtype=np.int64)
        return _conv_direct(x, active, count, weight, b, relu, pH, pW, True, work=dense)
    # the work, and so the thread count, depends on the channels active
    count = _nonzero_channels(x, active, work=x.size)
    return _conv_direct(x, active, count, weight, b, relu, pH, pW, False, work=count.sum() * per_channel)
