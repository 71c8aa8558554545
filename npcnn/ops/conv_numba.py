"""Convolution and transposed convolution: the fast kernels.

Same functions and signatures as ``conv.py`` (the specification), computed
the im2col way: a jitted, parallel loop copies every receptive field into a
column, one BLAS matrix product does all the multiply-adds, and ``col2im``
scatters columns back (accumulating) for the transposed direction.
Dimension letters as in ``conv.py``; K = C*kH*kW (rows of a column matrix),
L = Ho*Wo (one column per output position).

The batch is processed in chunks so the column matrix stays near
``tuning.COLS_BUDGET`` bytes, whatever N is.

Small stride-1 convolutions (LeNet-5, SimpleCNN and their transposes) skip
the column matrix: ``_conv_direct_py`` sums shifted copies of each padded
image instead, which pays where the matrix product would be a thin one.
3x3 stride-1 convolutions with many channels (VGG16) go to Winograd's
F(2x2, 3x3) in ``winograd_numba.py``. A stride-1 transposed convolution
goes there too when it suits, else by col2im when its column matrix is
small, else as the convolution with the flipped filters (direct or im2col).
"""
import numpy as np
from numba import njit, prange

from . import winograd_numba
from .runtime import tuning, workspace
from .runtime.jit import Kernel
from .runtime.rows import copy_relu, copy_row, fill_row


def _valid_columns(W, Wo, sW, pW, q):
    """Output columns j whose input column j*sW - pW + q lies inside [0, W):
    the half-open range [j0, j1) (empty when j1 <= j0)."""
    j0 = max(0, (pW - q + sW - 1) // sW)
    j1 = min(Wo, max(0, (W - 1 + pW - q) // sW + 1))
    return j0, max(j0, j1)


def _im2col_py(x, kH, kW, sH, sW, pH, pW, i0, i1, Wo, cols):
    """cols[n, (c*kH + p)*kW + q, (i - i0)*Wo + j] = xpad[n, c, i*sH + p, j*sW + q]
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
                j0, j1 = _valid_columns(W, Wo, sW, pW, q)
                offset = q - pW
                for i in range(i0, i1):
                    h = i * sH - pH + p
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


def _col2im_py(cols, C, H, W, kH, kW, sH, sW, pH, pW, Ho, Wo):
    """The adjoint of im2col: x[n, c, i*sH + p - pH, j*sW + q - pW] += cols[...].

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
                j0, j1 = _valid_columns(W, Wo, sW, pW, q)
                offset = q - pW
                for i in range(Ho):
                    h = i * sH - pH + p
                    if h < 0 or h >= H:
                        continue
                    base = i * Wo
                    for j in range(j0, j1):
                        x[n, c, h, j * sW + offset] += cols[n, row, base + j]
    return x


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

    Each channel's sum of |x| is zero only if all of it is. The sum runs
    without a branch and its additions may be reordered (fastmath
    "reassoc" below), so LLVM vectorises it, where a loop that stops at the
    first nonzero reads one element per cycle. Reading a dense channel once costs little beside
    filtering it with kH*kW taps per filter."""
    _, C, H, W = x.shape
    HW = H * W
    image = x[n].reshape(C * HW)
    count = 0
    for c in range(C):
        total = x.dtype.type(0)
        for k in range(c * HW, (c + 1) * HW):
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
_valid_columns = njit(cache=True, inline="always")(_valid_columns)
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
_im2col = Kernel(_im2col_py)
_col2im = Kernel(_col2im_py)
# work: multiply-adds
_conv_direct = Kernel(_conv_direct_py, cost=tuning.COST_MULTIPLY_ADD)


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


# numpy's broadcast add runs on one thread
_add_bias_planes = Kernel(_add_bias_planes_py, cost=tuning.COST_ELEMENTWISE)


def _add_bias(y, bias, relu=False):
    if bias is not None or relu:
        b = np.zeros(y.shape[1], dtype=y.dtype) if bias is None else bias
        _add_bias_planes(y, b, relu, work=y.size)
    return y


def _blocks(N, K, Ho, Wo, itemsize):
    """(sample slice, i0, i1) blocks whose column matrix fits the budget:
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


def _columns(x, b, kH, kW, sH, sW, pH, pW, i0, i1, Wo):
    """im2col of samples ``b``, output rows [i0, i1), in the shared buffer."""
    n, K = x[b].shape[0], x.shape[1] * kH * kW
    cols = workspace.buffer("columns", n * K * (i1 - i0) * Wo, x.dtype).reshape(n, K, (i1 - i0) * Wo)
    _im2col(x[b], kH, kW, sH, sW, pH, pW, i0, i1, Wo, cols, work=cols.size)
    return cols  # (n, K, rows*Wo)


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



def _use_direct(x, weight, stride):
    """Stride 1, few weights, and images to spread over the threads (the
    direct kernel parallelises over images; one large image goes to BLAS)."""
    N, _, H, W = x.shape
    return (tuple(stride) == (1, 1) and weight.size <= tuning.DIRECT_MAX_WEIGHTS
            and (N > 1 or H * W <= tuning.DIRECT_MAX_SINGLE_IMAGE_PIXELS))


def conv2d(x, weight, bias, stride, padding):
    """See ``conv.conv2d``: y = W2 @ im2col(x) + b, per image (or the direct
    kernel for small stride-1 convolutions, or Winograd)."""
    return _conv2d(x, weight, bias, stride, padding, False)


def conv2d_relu(x, weight, bias, stride, padding):
    """See ``conv.conv2d_relu``: each path applies the ReLU as it writes y
    (the direct kernel's copy out, Winograd's output transform, im2col's
    bias pass)."""
    return _conv2d(x, weight, bias, stride, padding, True)


def _conv2d(x, weight, bias, stride, padding, relu):
    (sH, sW), (pH, pW) = stride, padding
    N, C, H, W = x.shape
    F, _, kH, kW = weight.shape
    if _use_direct(x, weight, stride):
        b = np.zeros(F, dtype=x.dtype) if bias is None else bias
        x = np.ascontiguousarray(x)
        active = np.empty((N, C), dtype=np.int64)
        per_channel = F * kH * kW * (H + 2 * pH - kH + 1) * (W + 2 * pW - kW + 1)  # multiply-adds
        dense = N * C * per_channel
        if _conv_direct.serial_at(dense):
            # one thread even if every channel is active: the kernel finds
            # them as it goes, which spares a call (LeNet-5 at batch 1)
            count = np.empty(N, dtype=np.int64)
            return _conv_direct(x, active, count, weight, b, relu, pH, pW, True, work=dense)
        # the work, and so the thread count, depends on the channels active
        count = _nonzero_channels(x, active, work=x.size)
        return _conv_direct(x, active, count, weight, b, relu, pH, pW, False, work=count.sum() * per_channel)
    if winograd_numba.suits(x, weight, stride):
        return winograd_numba.conv2d_3x3(x, weight, bias, padding, relu)
    Ho = (H + 2 * pH - kH) // sH + 1
    Wo = (W + 2 * pW - kW) // sW + 1
    K, L = C * kH * kW, Ho * Wo
    w2 = weight.reshape(F, K)
    y = np.empty((N, F, L), dtype=x.dtype)
    for b, i0, i1 in _blocks(N, K, Ho, Wo, x.itemsize):
        cols = _columns(x, b, kH, kW, sH, sW, pH, pW, i0, i1, Wo)  # (n, K, rows*Wo)
        if i1 - i0 == Ho:
            np.matmul(w2, cols, out=y[b])                          # (n, F, L)
        else:
            y[b, :, i0 * Wo:i1 * Wo] = np.matmul(w2, cols)
    return _add_bias(y.reshape(N, F, Ho, Wo), bias, relu)


def conv2d_backward(grad_output, x, weight, stride, padding):
    """See ``conv.conv2d_backward``: dW = dY @ cols^T, dcols = W2^T @ dY."""
    (sH, sW), (pH, pW) = stride, padding
    N, C, H, W = x.shape
    F, _, kH, kW = weight.shape
    _, _, Ho, Wo = grad_output.shape
    K, L = C * kH * kW, Ho * Wo
    w2 = weight.reshape(F, K)
    dy = grad_output.reshape(N, F, L)
    dx = np.empty_like(x)
    dw = np.zeros((F, K), dtype=x.dtype)
    for b in _chunks(N, K * L * x.itemsize):
        cols = _columns(x, b, kH, kW, sH, sW, pH, pW, 0, Ho, Wo)    # (n, K, L)
        dw += np.matmul(dy[b], cols.transpose(0, 2, 1)).sum(axis=0)  # (F, K)
        dcols = _product_per_image(w2.T, dy[b])                      # (n, K, L)
        dx[b] = _col2im(dcols, C, H, W, kH, kW, sH, sW, pH, pW, Ho, Wo, work=dcols.size)
    db = grad_output.sum(axis=(0, 2, 3))
    return dx, dw.reshape(weight.shape), db



def _transposed_path(x, weight, stride, padding):
    """How ``conv_transpose2d`` computes: "winograd", "flipped" (conv2d of
    the flipped filters, direct or im2col) or "col2im"."""
    (pH, pW), (kH, kW) = padding, weight.shape[2:]
    if tuple(stride) != (1, 1) or pH >= kH or pW >= kW:
        return "col2im"
    if winograd_numba.suits(x, weight, stride, transposed=True):
        return "winograd"
    N, C, H, W = x.shape
    if _use_direct(x, weight, stride) or weight.shape[1] * kH * kW * H * W * x.itemsize > tuning.TRANSPOSED_COL2IM_MAX_BYTES:
        return "flipped"
    return "col2im"


def skips_zero_channels(x, weight, stride, padding):
    """Whether ``conv_transpose2d(x, weight, ...)`` runs the direct kernel,
    which leaves out each image's all-zero channels by itself."""
    return _transposed_path(x, weight, stride, padding) == "flipped" and _use_direct(x, weight, stride)


def conv_transpose2d(x, weight, bias, stride, padding, output_padding):
    """See ``conv.conv_transpose2d``: y = col2im(W2^T @ x) + b. At stride 1
    with a large column matrix, or few filters, the convolution of x with the
    flipped filters instead, y = conv2d(x, w', padding k-1-p),
    w'[f, c, p, q] = w[c, f, kH-1-p, kW-1-q], which needs no (K, L) matrix to
    scatter back (115 MB for VGG16's 64-channel layer at 224x224); Winograd
    where it suits (see the module docstring)."""
    (sH, sW), (pH, pW), (opH, opW) = stride, padding, output_padding
    N, C, H, W = x.shape
    _, F, kH, kW = weight.shape
    K, L = F * kH * kW, H * W
    path = _transposed_path(x, weight, stride, padding)
    if path == "winograd":
        return winograd_numba.conv_transpose2d_3x3(x, weight, bias, padding)
    if path == "flipped":
        flipped = np.ascontiguousarray(weight.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])  # (F, C, kH, kW)
        return conv2d(x, flipped, bias, stride, (kH - 1 - pH, kW - 1 - pW))
    Ho = (H - 1) * sH - 2 * pH + kH + opH
    Wo = (W - 1) * sW - 2 * pW + kW + opW
    w2t = weight.reshape(C, K).T
    x2 = x.reshape(N, C, L)
    y = np.empty((N, F, Ho, Wo), dtype=x.dtype)
    for b in _chunks(N, K * L * x.itemsize):
        cols = _product_per_image(w2t, x2[b])  # (n, K, L)
        y[b] = _col2im(cols, F, Ho, Wo, kH, kW, sH, sW, pH, pW, H, W, work=cols.size)
    return _add_bias(y, bias)


def conv_transpose2d_backward(grad_output, x, weight, stride, padding, output_padding):
    """See ``conv.conv_transpose2d_backward``: dx = conv2d(dy, w), dW = x @ cols^T."""
    (sH, sW), (pH, pW) = stride, padding
    N, C, H, W = x.shape
    _, F, kH, kW = weight.shape
    K, L = F * kH * kW, H * W
    w2 = weight.reshape(C, K)
    x2 = x.reshape(N, C, L)
    dx = np.empty((N, C, L), dtype=x.dtype)
    dw = np.zeros((C, K), dtype=x.dtype)
    for b in _chunks(N, K * L * x.itemsize):
        cols = _columns(grad_output, b, kH, kW, sH, sW, pH, pW, 0, H, W)  # (n, K, L)
        np.matmul(w2, cols, out=dx[b])                                 # (n, C, L)
        dw += np.matmul(x2[b], cols.transpose(0, 2, 1)).sum(axis=0)    # (C, K)
    db = grad_output.sum(axis=(0, 2, 3))
    return dx.reshape(N, C, H, W), dw.reshape(weight.shape), db
