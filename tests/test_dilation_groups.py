"""Dilation and groups (issue #25) against torch: conv2d, conv2d_relu,
conv_transpose2d and their gradients (input, weight, bias), max_pool2d's
values and switches, on both backends and float types, and the numba path
each case takes (depthwise, im2col, col2im).

The cases are the hard ones: dilation with padding and stride on sizes that
do not tile, groups 2 and 3, depthwise with channel multiplier 1 and 2,
transposed convolutions whose output_padding is allowed by the dilation
only, "same" padding of even kernels at odd and even dilations, dilated
pooling windows that overlap, with ceil_mode, padding and ReLU ties.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import npcnn.functional as F
from npcnn.ops.runtime import tuning
from parity import assert_close, check_op

# (N, C_in, C_out, groups, (H, W), (kH, kW), stride, padding, dilation, numba path of conv2d)
CONVS = [
    (2, 3, 4, 1, (13, 11), (3, 3), 2, 2, 2, "im2col"),                  # does not tile
    (1, 2, 3, 1, (9, 12), (2, 3), (2, 1), (1, 3), (1, 3), "im2col"),    # pairs everywhere
    (2, 3, 2, 1, (11, 11), (5, 5), 1, 4, 2, "im2col"),                  # kernel spans 9 of 11
    (2, 4, 6, 2, (9, 8), (3, 3), 1, 1, 1, "im2col"),                    # groups 2
    (1, 6, 9, 3, (10, 7), (2, 3), (2, 1), (0, 1), (2, 1), "im2col"),    # groups 3, dilated
    (2, 8, 4, 2, (5, 6), (1, 1), 1, 0, 1, "im2col"),                    # ResNeXt's grouped 1x1
    (2, 5, 5, 5, (12, 11), (3, 3), 1, 1, 1, "depthwise"),               # MobileNet's 3x3
    (2, 4, 8, 4, (9, 10), (3, 3), 2, 1, 1, "depthwise"),                # multiplier 2, stride 2
    (1, 6, 6, 6, (14, 13), (3, 3), 1, 2, 2, "depthwise"),               # DeepLab's atrous 3x3
    (2, 3, 6, 3, (11, 9), (3, 2), 2, (2, 1), (2, 3), "depthwise"),      # all of it at once
    (1, 4, 4, 4, (13, 14), (3, 3), (3, 1), 1, 2, "depthwise"),          # 3x3 at a stride of 3
]
IDS = [f"{c[-1]}-g{c[3]}-{i}" for i, c in enumerate(CONVS)]


def draw(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def compilations(backend, monkeypatch):
    """numba's kernels run serially below a work threshold and in parallel
    above it: on the numba backend both compilations, on the same small
    cases (the second with no threshold)."""
    yield "serial"
    if backend == "numba":
        monkeypatch.setattr(tuning, "PARALLEL_MIN_WORK", 0)
        yield "parallel"


@pytest.mark.parametrize("case", CONVS, ids=IDS)
def test_conv2d_matches_torch(case, backend, dtype, monkeypatch):
    N, C, F_out, G, (H, W), k, s, p, d, path = case
    rng = np.random.default_rng(0)
    x, b = draw(rng, (N, C, H, W), dtype), draw(rng, (F_out,), dtype)
    w = draw(rng, (F_out, C // G) + k, dtype, 1 / np.sqrt(C // G * k[0] * k[1]))
    for _ in compilations(backend, monkeypatch):
        _check_conv2d(x, w, b, s, p, d, G, backend)
    assert F.conv_path("conv2d", x, w, s, p, d, G) == path


def _check_conv2d(x, w, b, s, p, d, G, backend):
    check_op(lambda x, w, b: F.conv2d(x, w, b, s, p, d, G, backend=backend),
             lambda x, w, b: TF.conv2d(x, w, b, s, p, d, G), [x, w, b],
             backward=lambda g, x, w, b: F.conv2d_backward(g, x, w, s, p, d, G, backend=backend))
    check_op(lambda x, w, b: F.conv2d_relu(x, w, b, s, p, d, G, backend=backend),
             lambda x, w, b: TF.relu(TF.conv2d(x, w, b, s, p, d, G)), [x, w, b])
    check_op(lambda x, w: F.conv2d(x, w, None, s, p, d, G, backend=backend),  # no bias
             lambda x, w: TF.conv2d(x, w, None, s, p, d, G), [x, w],
             backward=lambda g, x, w: F.conv2d_backward(g, x, w, s, p, d, G, backend=backend)[:2])


def _output_padding(s, d):
    """The largest output_padding torch allows: below the stride or the
    dilation, whichever is larger (at stride 1 only the dilation allows one)."""
    s, d = ((v, v) if isinstance(v, int) else v for v in (s, d))
    return max(s[0], d[0]) - 1, max(s[1], d[1]) - 1


@pytest.mark.parametrize("case", CONVS, ids=IDS)
def test_conv_transpose2d_matches_torch(case, backend, dtype, monkeypatch):
    """The transposed weight is (C_in, C_out/groups, kH, kW); C_in and C_out
    swap their roles, so the depthwise rows are depthwise here too when
    C_out == C_in, and the rest go by col2im."""
    N, C, F_out, G, (H, W), k, s, p, d, path = case
    rng = np.random.default_rng(1)
    x, b = draw(rng, (N, C, H, W), dtype), draw(rng, (F_out,), dtype)
    w = draw(rng, (C, F_out // G) + k, dtype, 1 / np.sqrt(C // G * k[0] * k[1]))
    args = (s, p, _output_padding(s, d), G, d)
    for _ in compilations(backend, monkeypatch):
        check_op(lambda x, w, b: F.conv_transpose2d(x, w, b, *args, backend=backend),
                 lambda x, w, b: TF.conv_transpose2d(x, w, b, *args), [x, w, b],
                 backward=lambda g, x, w, b: F.conv_transpose2d_backward(g, x, w, *args, backend=backend))
    expected = "depthwise" if G == C else "col2im"
    assert F.conv_path("conv_transpose2d", x, w, s, p, d, G) == expected


@pytest.mark.parametrize("case", CONVS, ids=IDS)
def test_adjoint_identity(case, backend):
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)> with the same
    stride, padding, dilation and groups: conv2d's weight (C_out, C_in/G,
    kH, kW) is the transposed convolution's (C_in', C_out'/G, kH, kW)."""
    N, C, F_out, G, (H, W), k, s, p, d, _ = case
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((N, C, H, W)), rng.standard_normal((F_out, C // G) + k)
    y = rng.standard_normal(F.conv2d(x, w, None, s, p, d, G).shape)
    (sH, sW), (pH, pW), (dH, dW) = ((v, v) if isinstance(v, int) else v for v in (s, p, d))
    # output_padding picks, among the input sizes that give y's size, x's one
    op = ((H + 2 * pH - dH * (k[0] - 1) - 1) % sH, (W + 2 * pW - dW * (k[1] - 1) - 1) % sW)
    xt = F.conv_transpose2d(y, w, None, s, p, op, G, d, backend=backend)
    assert xt.shape == x.shape
    lhs, rhs = np.vdot(F.conv2d(x, w, None, s, p, d, G, backend=backend), y), np.vdot(x, xt)
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


SAME = [((2, 2), 1), ((2, 2), 2), ((4, 3), (3, 2)), ((3, 3), 2), ((2, 5), (2, 1))]


@pytest.mark.parametrize("kernel, dilation", SAME, ids=[f"{k[0]}x{k[1]}-d{d}" for k, d in SAME])
@pytest.mark.parametrize("groups", [1, 3], ids=["dense", "depthwise"])
def test_same_padding_with_dilation(kernel, dilation, groups, backend, dtype):
    """"same" pads dilation*(k - 1) in all: an odd total (an even kernel at
    an odd dilation) puts the extra one at the bottom and right, as torch."""
    rng = np.random.default_rng(3)
    x, b = draw(rng, (2, 3, 9, 8), dtype), draw(rng, (3,), dtype)
    w = draw(rng, (3, 3 // groups) + kernel, dtype, 0.3)
    y = check_op(lambda x, w, b: F.conv2d(x, w, b, 1, "same", dilation, groups, backend=backend),
                 lambda x, w, b: TF.conv2d(x, w, b, 1, "same", dilation, groups), [x, w, b],
                 backward=lambda g, x, w, b: F.conv2d_backward(g, x, w, 1, "same", dilation, groups,
                                                               backend=backend))
    assert y.shape == (2, 3, 9, 8)
    if groups == 3 or dilation != 1:
        path = F.conv_path("conv2d", x, w, 1, "same", dilation, groups)
        assert path == ("depthwise" if groups == 3 else "im2col")


def test_unbatched_dilated_depthwise(backend, dtype):
    rng = np.random.default_rng(4)
    x, w, b = draw(rng, (4, 10, 9), dtype), draw(rng, (8, 1, 3, 3), dtype, 0.3), draw(rng, (8,), dtype)
    check_op(lambda x, w, b: F.conv2d(x, w, b, 1, 2, 2, 4, backend=backend),
             lambda x, w, b: TF.conv2d(x, w, b, 1, 2, 2, 4), [x, w, b],
             backward=lambda g, x, w, b: F.conv2d_backward(g, x, w, 1, 2, 2, 4, backend=backend))
    wt = draw(rng, (4, 2, 3, 3), dtype, 0.3)
    check_op(lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1, 4, 2, backend=backend),
             lambda x, w, b: TF.conv_transpose2d(x, w, b, 2, 1, 1, 4, 2), [x, wt, b],
             backward=lambda g, x, w, b: F.conv_transpose2d_backward(g, x, w, 2, 1, 1, 4, 2, backend=backend))


def test_a_mobilenet_sized_depthwise_layer(dtype):
    """One layer at a size whose work crosses the parallel threshold by
    itself (no monkeypatch): 32 channels at 56x56, 3x3, stride 1 and 2."""
    rng = np.random.default_rng(5)
    x, b = draw(rng, (2, 32, 56, 56), dtype), draw(rng, (32,), dtype)
    w = draw(rng, (32, 1, 3, 3), dtype, 1 / 3)
    for stride in (1, 2):
        assert F.conv_path("conv2d", x, w, stride, 1, 1, 32) == "depthwise"
        check_op(lambda x, w, b: F.conv2d(x, w, b, stride, 1, 1, 32),
                 lambda x, w, b: TF.conv2d(x, w, b, stride, 1, 1, 32), [x, w, b],
                 # dw sums 2*56*56 products: float32 needs a looser rtol
                 backward=lambda g, x, w, b: F.conv2d_backward(g, x, w, stride, 1, 1, 32),
                 rtol=1e-4 if dtype == np.float32 else None)
        check_op(lambda x, w, b: F.conv2d_relu(x, w, b, stride, 1, 1, 32),
                 lambda x, w, b: TF.relu(TF.conv2d(x, w, b, stride, 1, 1, 32)), [x, w, b])


# ----------------------------------------------------------------------------
# max_pool2d with dilation

# ((H, W), kernel, stride, padding, dilation, ceil_mode)
POOLS = [
    ((11, 10), 3, 2, 1, 2, True),           # overlapping, ceil_mode keeps a last window
    ((9, 9), 2, 1, 1, 3, False),            # stride 1: every pixel in several windows
    ((12, 13), (3, 2), (1, 2), (1, 1), (2, 1), True),
    ((7, 8), 3, 3, 0, 2, True),             # windows overlap only through the dilation
    ((10, 10), 2, 2, 0, 2, False),          # 2x2 at stride 2 but dilated: not the 2x2 kernel
    ((15, 8), (5, 3), (2, 1), (2, 0), (2, 3), False),
]
INPUTS = {
    "normal": lambda rng, s: rng.standard_normal(s),
    "after_relu": lambda rng, s: np.maximum(rng.standard_normal(s), 0),   # most windows tie at 0
    "integers": lambda rng, s: rng.integers(-2, 2, size=s).astype(float),
}


@pytest.mark.parametrize("kind", list(INPUTS))
@pytest.mark.parametrize("case", POOLS, ids=[str(i) for i in range(len(POOLS))])
def test_dilated_max_pool2d_matches_torch(case, kind, backend, dtype):
    """Values, switches (exactly: the first maximum of the dilated window in
    row-major order wins ties), the gradient, and the values-only form."""
    (H, W), k, s, p, d, ceil = case
    x = INPUTS[kind](np.random.default_rng(6), (2, 3, H, W)).astype(dtype)
    _, switches = check_op(
        lambda x: F.max_pool2d(x, k, s, p, d, ceil, backend=backend),
        lambda x: TF.max_pool2d(x, k, s, p, d, ceil, True), [x],
        backward=lambda g, x: F.max_pool2d_backward(g, F.max_pool2d(x, k, s, p, d, ceil, backend=backend)[1],
                                                    x.shape, backend=backend))
    values = F.max_pool2d(x, k, s, p, d, ceil, False, backend=backend)
    assert_close("values only", values, TF.max_pool2d(torch.tensor(x), k, s, p, d, ceil))
    if kind == "after_relu":
        assert len(np.unique(switches)) < switches.size  # overlapping windows share maxima


def test_grouped_dilated_im2col_in_chunks_and_bands(monkeypatch):
    """The im2col path splits the batch into chunks, and one large image
    into bands of output rows, by the column budget: with groups and
    dilation too, the pieces give the reference's numbers."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 6, 17, 15))
    w = rng.standard_normal((4, 3, 3, 3)) / 5
    args = (None, 1, 2, 2, 2)  # bias, stride, padding, dilation, groups
    expected = F.conv2d(x, w, *args, backend="numpy")
    g = rng.standard_normal(expected.shape)
    expected_grads = F.conv2d_backward(g, x, w, *args[1:], backend="numpy")
    per_image = 6 * 9 * 17 * 15 * 8  # bytes of one image's column matrix: K = C*kH*kW rows, Ho*Wo columns
    for budget, what in ((2 * per_image, "chunks of two images"), (per_image // 4, "bands of rows")):
        monkeypatch.setattr(tuning, "COLS_BUDGET", budget)
        assert_close(what, F.conv2d(x, w, *args), expected)
        for name, mine, theirs in zip(("dx", "dw", "db"), F.conv2d_backward(g, x, w, *args[1:]), expected_grads):
            assert_close(f"{what}: {name}", mine, theirs)
        xt = F.conv_transpose2d(expected, w, None, 1, 2, 0, 2, 2)
        assert_close(f"{what}: transposed", xt, F.conv_transpose2d(expected, w, None, 1, 2, 0, 2, 2,
                                                                   backend="numpy"))
