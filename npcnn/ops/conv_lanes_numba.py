"""The direct convolution vectorised over images: stride 1, few channels, a batch.

The direct kernel's batched variant (``conv_direct_numba.conv2d`` chooses
it; it is the "direct" path of ``conv_numba.py``'s table). The
specification is ``conv.conv2d`` at stride 1:

    y[n,f,i,j] = b[f] + sum_{c,p,q} xpad[n,c,i+p, j+q] * w[f,c,p,q]

Images go in blocks of L, the lanes of one vector (``runtime.simd``: 16
float32, 8 float64), and a block is copied into a buffer in which the L
images' values of one padded pixel are side by side, xb[(c, h, w), l]. A
tap t = (c, p, q) of output pixel (i, j) is then one aligned vector of L
images at a fixed offset, and every output of the block is a sum of
vectors times scalar weights.

The sums run in register tiles: FILTERS filters x PIXELS output pixels
(in row-major order, so a tile may wrap to the next row; no column is
computed and dropped) are FILTERS * PIXELS vector accumulators, summed over
every tap before they are stored. Each tap loads PIXELS vectors and
FILTERS broadcast weights for FILTERS * PIXELS multiply-adds. (The wide-row
kernel of ``conv_direct_numba.py`` keeps its accumulators in memory and
loads and stores them every four taps.) Filters go six at a time while
twelve or more remain, or when six more than a multiple of four remain
(LeNet-5's 6; its 16 go 6 + 6 + 4), as 24 accumulators need fewer loads
per multiply-add than 16; then four at a time, and two at a time where
two are left (F = 2 or 3: six, then four, take all the others). An odd
F's last filter goes alone over eight pixels at a time (the deconvnet's
last transposed conv, back to one grey channel), where beside a zero
filter half its multiply-adds would be wasted. Pixels past Ho*Wo in the
last tile repeat the last pixel and are not written.

Dimension letters as in ``conv.py``; L lanes, B = ceil(N / L) blocks, T
taps per filter, P = Ho*Wo output pixels.
"""
import functools

import numpy as np
from numba import njit, prange

from .runtime import simd, tuning, workspace
from .runtime.jit import Kernel
from .runtime.simd import fma, load, splat_at, store

FILTERS = 4   # filters in a register tile
PIXELS = 4    # output pixels in a register tile


def pack_block(x, k, where, pads, scratch, block):
    """block[where[e] + l] = x[k*L + l].ravel()[e], and zero in the
    padding: the padded images of block k, lanes side by side, where[e] =
    ((c*Hp + h + pH)*Wp + w + pW)*L for element e = (c, h, w) of an image;
    pads: the vectors no element fills (``packing``), zeroed (the
    whole block where it holds fewer than L images). Squares of L images x
    L elements are transposed in registers (through ``scratch`` where there
    is padding, where[e] then not being e*L); the last elements of the
    images, and a block of fewer than L images, go one by one."""
    N, C, H, W = x.shape
    L = simd.lanes_of(block)
    E = C * H * W
    images = min(L, N - k * L)
    flat = x.reshape(N * E)
    first = k * L * E                          # image k*L's first element
    padded = pads.shape[0] > 0
    if images < L:
        block[:] = 0
    else:
        zero = simd.splat(0.0, block)
        for v in range(pads.shape[0]):
            store(block, pads[v], zero)
    whole = E - E % L if images == L else 0
    for e0 in range(0, whole, L):
        if not padded:
            simd.transpose(flat, first + e0, E, block, e0 * L, L)
        else:
            simd.transpose(flat, first + e0, E, scratch, 0, L)
            for j in range(L):
                store(block, where[e0 + j], load(scratch, j * L))
    for e in range(whole, E):
        for l in range(images):
            block[where[e] + l] = flat[first + l * E + e]


def _four_filters(x, wt, Fp, f0, offsets, b0, b1, b2, b3, bias, relu, tile, s, Pr):
    """tile[((f0 + g)*Pr + p)*L : +L] = bias[f0 + g] + sum_t wt[t*Fp + f0 + g] * x[b_p + offsets[t] : +L]
    for g < 4 and the four pixels p whose vectors start at b0 .. b3 (tile
    offset s for the first), max(., 0) with ``relu``: 16 accumulators,
    started from the bias and stored once."""
    L = simd.lanes_of(x)
    a00 = a01 = a02 = a03 = splat_at(bias, f0)
    a10 = a11 = a12 = a13 = splat_at(bias, f0 + 1)
    a20 = a21 = a22 = a23 = splat_at(bias, f0 + 2)
    a30 = a31 = a32 = a33 = splat_at(bias, f0 + 3)
    for t in range(offsets.shape[0]):
        o, k = offsets[t], t * Fp + f0
        v0, v1, v2, v3 = load(x, b0 + o), load(x, b1 + o), load(x, b2 + o), load(x, b3 + o)
        w = splat_at(wt, k)
        a00, a01, a02, a03 = fma(v0, w, a00), fma(v1, w, a01), fma(v2, w, a02), fma(v3, w, a03)
        w = splat_at(wt, k + 1)
        a10, a11, a12, a13 = fma(v0, w, a10), fma(v1, w, a11), fma(v2, w, a12), fma(v3, w, a13)
        w = splat_at(wt, k + 2)
        a20, a21, a22, a23 = fma(v0, w, a20), fma(v1, w, a21), fma(v2, w, a22), fma(v3, w, a23)
        w = splat_at(wt, k + 3)
        a30, a31, a32, a33 = fma(v0, w, a30), fma(v1, w, a31), fma(v2, w, a32), fma(v3, w, a33)
    if relu:
        a00, a01, a02, a03 = simd.relu(a00), simd.relu(a01), simd.relu(a02), simd.relu(a03)
        a10, a11, a12, a13 = simd.relu(a10), simd.relu(a11), simd.relu(a12), simd.relu(a13)
        a20, a21, a22, a23 = simd.relu(a20), simd.relu(a21), simd.relu(a22), simd.relu(a23)
        a30, a31, a32, a33 = simd.relu(a30), simd.relu(a31), simd.relu(a32), simd.relu(a33)
    row = Pr * L                               # between one filter's pixels and the next's
    store(tile, s, a00), store(tile, s + L, a01), store(tile, s + 2 * L, a02), store(tile, s + 3 * L, a03)
    s += row
    store(tile, s, a10), store(tile, s + L, a11), store(tile, s + 2 * L, a12), store(tile, s + 3 * L, a13)
    s += row
    store(tile, s, a20), store(tile, s + L, a21), store(tile, s + 2 * L, a22), store(tile, s + 3 * L, a23)
    s += row
    store(tile, s, a30), store(tile, s + L, a31), store(tile, s + 2 * L, a32), store(tile, s + 3 * L, a33)


def _six_filters(x, wt, Fp, f0, offsets, b0, b1, b2, b3, bias, relu, tile, s, Pr):
    """``_four_filters`` for the six filters f0 .. f0 + 5: 24 accumulators,
    10 loads for 24 multiply-adds where four filters take 8 for 16 (and
    four and then two filters at a time would leave the pair with twice
    the loads per multiply-add)."""
    L = simd.lanes_of(x)
    a00 = a01 = a02 = a03 = splat_at(bias, f0)
    a10 = a11 = a12 = a13 = splat_at(bias, f0 + 1)
    a20 = a21 = a22 = a23 = splat_at(bias, f0 + 2)
    a30 = a31 = a32 = a33 = splat_at(bias, f0 + 3)
    a40 = a41 = a42 = a43 = splat_at(bias, f0 + 4)
    a50 = a51 = a52 = a53 = splat_at(bias, f0 + 5)
    for t in range(offsets.shape[0]):
        o, k = offsets[t], t * Fp + f0
        v0, v1, v2, v3 = load(x, b0 + o), load(x, b1 + o), load(x, b2 + o), load(x, b3 + o)
        w = splat_at(wt, k)
        a00, a01, a02, a03 = fma(v0, w, a00), fma(v1, w, a01), fma(v2, w, a02), fma(v3, w, a03)
        w = splat_at(wt, k + 1)
        a10, a11, a12, a13 = fma(v0, w, a10), fma(v1, w, a11), fma(v2, w, a12), fma(v3, w, a13)
        w = splat_at(wt, k + 2)
        a20, a21, a22, a23 = fma(v0, w, a20), fma(v1, w, a21), fma(v2, w, a22), fma(v3, w, a23)
        w = splat_at(wt, k + 3)
        a30, a31, a32, a33 = fma(v0, w, a30), fma(v1, w, a31), fma(v2, w, a32), fma(v3, w, a33)
        w = splat_at(wt, k + 4)
        a40, a41, a42, a43 = fma(v0, w, a40), fma(v1, w, a41), fma(v2, w, a42), fma(v3, w, a43)
        w = splat_at(wt, k + 5)
        a50, a51, a52, a53 = fma(v0, w, a50), fma(v1, w, a51), fma(v2, w, a52), fma(v3, w, a53)
    if relu:
        a00, a01, a02, a03 = simd.relu(a00), simd.relu(a01), simd.relu(a02), simd.relu(a03)
        a10, a11, a12, a13 = simd.relu(a10), simd.relu(a11), simd.relu(a12), simd.relu(a13)
        a20, a21, a22, a23 = simd.relu(a20), simd.relu(a21), simd.relu(a22), simd.relu(a23)
        a30, a31, a32, a33 = simd.relu(a30), simd.relu(a31), simd.relu(a32), simd.relu(a33)
        a40, a41, a42, a43 = simd.relu(a40), simd.relu(a41), simd.relu(a42), simd.relu(a43)
        a50, a51, a52, a53 = simd.relu(a50), simd.relu(a51), simd.relu(a52), simd.relu(a53)
    row = Pr * L
    store(tile, s, a00), store(tile, s + L, a01), store(tile, s + 2 * L, a02), store(tile, s + 3 * L, a03)
    s += row
    store(tile, s, a10), store(tile, s + L, a11), store(tile, s + 2 * L, a12), store(tile, s + 3 * L, a13)
    s += row
    store(tile, s, a20), store(tile, s + L, a21), store(tile, s + 2 * L, a22), store(tile, s + 3 * L, a23)
    s += row
    store(tile, s, a30), store(tile, s + L, a31), store(tile, s + 2 * L, a32), store(tile, s + 3 * L, a33)
    s += row
    store(tile, s, a40), store(tile, s + L, a41), store(tile, s + 2 * L, a42), store(tile, s + 3 * L, a43)
    s += row
    store(tile, s, a50), store(tile, s + L, a51), store(tile, s + 2 * L, a52), store(tile, s + 3 * L, a53)


def _two_filters(x, wt, Fp, f0, offsets, b0, b1, b2, b3, bias, relu, tile, s, Pr):
    """``_four_filters`` for filters f0 and f0 + 1 only: 8 accumulators."""
    L = simd.lanes_of(x)
    a00 = a01 = a02 = a03 = splat_at(bias, f0)
    a10 = a11 = a12 = a13 = splat_at(bias, f0 + 1)
    for t in range(offsets.shape[0]):
        o, k = offsets[t], t * Fp + f0
        v0, v1, v2, v3 = load(x, b0 + o), load(x, b1 + o), load(x, b2 + o), load(x, b3 + o)
        w = splat_at(wt, k)
        a00, a01, a02, a03 = fma(v0, w, a00), fma(v1, w, a01), fma(v2, w, a02), fma(v3, w, a03)
        w = splat_at(wt, k + 1)
        a10, a11, a12, a13 = fma(v0, w, a10), fma(v1, w, a11), fma(v2, w, a12), fma(v3, w, a13)
    if relu:
        a00, a01, a02, a03 = simd.relu(a00), simd.relu(a01), simd.relu(a02), simd.relu(a03)
        a10, a11, a12, a13 = simd.relu(a10), simd.relu(a11), simd.relu(a12), simd.relu(a13)
    store(tile, s, a00), store(tile, s + L, a01), store(tile, s + 2 * L, a02), store(tile, s + 3 * L, a03)
    s += Pr * L
    store(tile, s, a10), store(tile, s + L, a11), store(tile, s + 2 * L, a12), store(tile, s + 3 * L, a13)


def _one_filter(x, wt, Fp, f, offsets, b, bias, relu, tile, s):
    """Filter f alone over the eight pixels whose first vectors are
    b[0] .. b[7] (tile offset s for the first, the others L apart): 8
    accumulators, 9 loads for 8 multiply-adds, where an odd filter beside a
    zero one (``_two_filters``) takes 6 loads for 4 that count."""
    L = simd.lanes_of(x)
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = splat_at(bias, f)
    for t in range(offsets.shape[0]):
        o = offsets[t]
        w = splat_at(wt, t * Fp + f)
        a0, a1 = fma(load(x, b[0] + o), w, a0), fma(load(x, b[1] + o), w, a1)
        a2, a3 = fma(load(x, b[2] + o), w, a2), fma(load(x, b[3] + o), w, a3)
        a4, a5 = fma(load(x, b[4] + o), w, a4), fma(load(x, b[5] + o), w, a5)
        a6, a7 = fma(load(x, b[6] + o), w, a6), fma(load(x, b[7] + o), w, a7)
    if relu:
        a0, a1, a2, a3 = simd.relu(a0), simd.relu(a1), simd.relu(a2), simd.relu(a3)
        a4, a5, a6, a7 = simd.relu(a4), simd.relu(a5), simd.relu(a6), simd.relu(a7)
    store(tile, s, a0), store(tile, s + L, a1), store(tile, s + 2 * L, a2), store(tile, s + 3 * L, a3)
    store(tile, s + 4 * L, a4), store(tile, s + 5 * L, a5), store(tile, s + 6 * L, a6), store(tile, s + 7 * L, a7)


def _conv_lanes_py(x, block0, where, pads, xb, wt, Fp, offsets, bases, bias, relu, tiles, y):
    """y (N, F, Ho, Wo) from x, for the blocks k = block0 .. block0 +
    len(xb) - 1 of L images. Block k is packed into xb[k - block0]
    (``pack_block``, at ``where``, zero at ``pads``) and convolved
    with the weights wt[t*Fp + f] (filters padded to an even Fp with
    zeros), the tap offsets and each output pixel's first vector, bases
    (Pr,), into tiles[k - block0] (Fp, Pr, L): pixel p of filter f of the
    block's L images, from the bias (bias (Fp,)) and with max(., 0) when
    ``relu``; ``unpack_tile`` then transposes it into y."""
    B, L, Pr = xb.shape[0], simd.lanes_of(xb), bases.shape[0]
    F = y.shape[1]
    Fe = F - F % 2                     # the filters that go in groups; an odd F's last goes alone
    for i in prange(B):
        k = block0 + i
        packed, tile = xb[i], tiles[i]
        pack_block(x, k, where, pads, tile, packed)
        for p0 in range(0, Pr, PIXELS):
            b0, b1, b2, b3 = bases[p0], bases[p0 + 1], bases[p0 + 2], bases[p0 + 3]
            f0 = 0
            while Fe - f0 >= 12 or (Fe - f0 >= 6 and (Fe - f0) % 4 == 2):
                _six_filters(packed, wt, Fp, f0, offsets, b0, b1, b2, b3, bias, relu, tile, (f0 * Pr + p0) * L, Pr)
                f0 += 6
            while f0 + FILTERS <= Fe:
                _four_filters(packed, wt, Fp, f0, offsets, b0, b1, b2, b3, bias, relu, tile, (f0 * Pr + p0) * L, Pr)
                f0 += FILTERS
            if f0 < Fe:
                _two_filters(packed, wt, Fp, f0, offsets, b0, b1, b2, b3, bias, relu, tile, (f0 * Pr + p0) * L, Pr)
        if Fe < F:                         # an odd F's last filter: two tiles of pixels at a time
            f = Fe
            for p0 in range(0, Pr - Pr % (2 * PIXELS), 2 * PIXELS):
                _one_filter(packed, wt, Fp, f, offsets, bases[p0:p0 + 8], bias, relu, tile, (f * Pr + p0) * L)
            if Pr % (2 * PIXELS):          # one tile left, beside the zero filter
                p0 = Pr - PIXELS
                _two_filters(packed, wt, Fp, f, offsets, bases[p0], bases[p0 + 1], bases[p0 + 2], bases[p0 + 3],
                             bias, relu, tile, (f * Pr + p0) * L, Pr)
        unpack_tile(tile, Pr, k, y)


def unpack_tile(tile, Pr, k, y):
    """y[k*L + l, f].ravel()[p] = tile[(f*Pr + p)*L + l] for the images l
    of block k (fewer than L in the last block): squares of L pixels x L
    images transposed in registers, the last pixels one by one. Pr: the
    tile's pixels per filter (Ho*Wo or more)."""
    N, F, Ho, Wo = y.shape
    L, P = simd.lanes_of(tile), Ho * Wo
    flat = y.reshape(N * F * P)
    images = min(L, N - k * L)
    whole = P - P % L if images == L else 0
    first = k * L * F * P                   # image k*L's first output
    for f in range(F):
        for p0 in range(0, whole, L):
            simd.transpose(tile, (f * Pr + p0) * L, L, flat, first + f * P + p0, F * P)
        for p in range(whole, P):
            for l in range(images):
                flat[first + l * F * P + f * P + p] = tile[(f * Pr + p) * L + l]


pack_block = njit(cache=True)(pack_block)
unpack_tile = njit(cache=True)(unpack_tile)
_four_filters = njit(cache=True)(_four_filters)
_six_filters = njit(cache=True)(_six_filters)
_two_filters = njit(cache=True)(_two_filters)
_one_filter = njit(cache=True)(_one_filter)
# work: multiply-adds
_conv_lanes = Kernel(_conv_lanes_py, cost=tuning.COST_MULTIPLY_ADD)


@functools.lru_cache(maxsize=64)
def _layout(C, H, W, kH, kW, pH, pW, L):
    """Where things sit in a packed block (positions in elements, int64,
    read-only; kept per shape, they cost more to build than a small
    layer's convolution): each tap's offset from an output pixel's first
    vector (T,), each input element's vector (C*H*W,), the padding's
    vectors, and each output pixel's first vector in whole tiles of PIXELS
    (Pr,), the last tile's extra pixels repeating the last."""
    Hp, Wp = H + 2 * pH, W + 2 * pW
    Ho, Wo = Hp - kH + 1, Wp - kW + 1
    P = Ho * Wo
    c, p, q = np.meshgrid(np.arange(C), np.arange(kH), np.arange(kW), indexing="ij")
    offsets = (((c * Hp + p) * Wp + q) * L).ravel()            # t = (c*kH + p)*kW + q
    where, pads = packing(C, H, W, pH, pW, Wp, L)
    pixel = np.minimum(np.arange(-(-P // PIXELS) * PIXELS), P - 1)
    bases = (pixel // Wo * Wp + pixel % Wo) * L
    arrays = tuple(a.astype(np.int64) for a in (offsets, where, pads, bases))
    for a in arrays:
        a.flags.writeable = False
    return arrays


def packing(C, H, W, pH, pW, Wrow, L):
    """Where ``pack_block`` puts an image's elements and what it zeroes
    (positions in elements): each element's vector, where[e] = ((c*Hp + h
    + pH)*Wrow + w + pW)*L for e = (c*H + h)*W + w in packed rows of Wrow
    columns (Hp = H + 2*pH), and the vectors no element fills: the
    padding."""
    Hp = H + 2 * pH
    c, h, w = np.meshgrid(np.arange(C), np.arange(H), np.arange(W), indexing="ij")
    where = (((c * Hp + h + pH) * Wrow + w + pW) * L).ravel()
    filled = np.zeros(C * Hp * Wrow, dtype=bool)
    filled[where // L] = True
    return where, np.flatnonzero(~filled) * L


def conv2d(x, weight, bias, padding, relu, work):
    """``conv.conv2d`` at stride 1 (``conv.conv2d_relu`` with ``relu``);
    x C-contiguous, bias an array. ``work``: the multiply-adds, which choose
    the serial or the parallel compilation."""
    (pH, pW) = padding
    N, C, H, W = x.shape
    F, _, kH, kW = weight.shape
    L = simd.lanes(x.dtype)
    Hp, Wp = H + 2 * pH, W + 2 * pW
    Ho, Wo = Hp - kH + 1, Wp - kW + 1
    P = Ho * Wo
    B = -(-N // L)                                   # blocks of L images
    Pr = -(-P // PIXELS) * PIXELS                    # pixels, in whole tiles
    Fp = F + F % 2                                   # filters, in pairs
    wt = np.zeros((kH * kW * C, Fp), dtype=x.dtype)  # wt[t, f] = w[f, c, p, q], t = (c*kH + p)*kW + q
    wt[:, :F] = weight.reshape(F, C * kH * kW).T
    padded_bias = np.zeros(Fp, dtype=x.dtype)
    padded_bias[:F] = bias
    offsets, where, pads, bases = _layout(C, H, W, kH, kW, pH, pW, L)
    packed, row = C * Hp * Wp * L, max(Fp * Pr, L) * L   # a block's images; its sums (first, pack_block's scratch)
    # blocks per launch: the buffers stay near tuning.DIRECT_LANES_CHUNK_BYTES whatever the batch
    chunk = max(1, min(B, tuning.DIRECT_LANES_CHUNK_BYTES // ((packed + row) * x.itemsize)))
    xb = workspace.buffer("lanes x", chunk * packed, x.dtype).reshape(chunk, packed)
    tiles = workspace.buffer("lanes tiles", chunk * row, x.dtype).reshape(chunk, row)
    y = np.empty((N, F, Ho, Wo), dtype=x.dtype)
    for block0 in range(0, B, chunk):
        count = min(chunk, B - block0)
        _conv_lanes(x, block0, where, pads, xb[:count], wt.ravel(), Fp, offsets, bases, padded_bias, relu,
                    tiles[:count], y, work=work * count // B)
    return y
