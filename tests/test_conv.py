"""conv2d and conv_transpose2d against torch: values and gradients over a
sweep of shapes, plus the adjoint identity and numerical gradients."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import npcnn.functional as F
from npcnn.ops.runtime import tuning
from parity import assert_close, check_op


def conv_cases(count=50, seed=1):
    """Random but fixed configurations: batch 1-3, channels 1-4, sizes that
    do not tile, kernels 1, 2, 3, 5, 11, strides 1-4, padding 0-2, and
    non-square pairs. Each is (N, C, F, (H, W), (kH, kW), stride, padding)."""
    rng = np.random.default_rng(seed)
    cases = [  # hand-picked corners first
        (1, 1, 1, (5, 5), (1, 1), 1, 0),
        (2, 3, 4, (11, 11), (11, 11), 1, 0),        # kernel covers the whole image
        (1, 2, 3, (9, 7), (11, 11), 2, 2),          # kernel larger than the unpadded input
        (3, 4, 2, (13, 17), (5, 5), 4, 2),
        (2, 1, 6, (28, 28), (5, 5), 1, 2),          # LeNet-5 conv_1
        (1, 3, 2, (16, 15), (2, 3), (2, 3), (1, 0)),
        (3, 40, 33, (6, 5), (3, 3), 1, 1),          # >= 32 channels, several images: one wide product
        (4, 33, 64, (4, 4), (3, 3), 2, 1),
    ]
    while len(cases) < count:
        k = int(rng.choice([1, 2, 3, 5, 11]))
        kk = (k, k) if rng.random() < 0.8 else (k, int(rng.choice([1, 2, 3])))
        pad = int(rng.integers(0, 3))
        H, W = (int(v) for v in rng.integers(max(kk[0], kk[1]), 20, size=2))
        stride = int(rng.integers(1, 5))
        cases.append((int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(1, 5)),
                      (H, W), kk, stride, pad))
    return cases


CASES = conv_cases()


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_conv2d_matches_torch(case, backend, dtype):
    N, C, Fo, (H, W), (kH, kW), stride, padding = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    # weights at the scale of a trained network (~1/sqrt(fan_in)) keep the
    # outputs O(1), where float32's atol 1e-5 means something
    w = (rng.standard_normal((Fo, C, kH, kW)) / np.sqrt(C * kH * kW)).astype(dtype)
    b = rng.standard_normal(Fo).astype(dtype)
    check_op(lambda x, w, b: F.conv2d(x, w, b, stride, padding, backend=backend),
             lambda x, w, b: TF.conv2d(x, w, b, stride, padding),
             [x, w, b],
             backward=lambda g, x, w, b: F.conv2d_backward(g, x, w, stride, padding, backend=backend))


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_conv_transpose2d_matches_torch(case, backend, dtype):
    N, C, Fo, (H, W), (kH, kW), stride, padding = case
    sH, sW = (stride, stride) if isinstance(stride, int) else stride
    output_padding = (min(1, sH - 1), 0)       # exercise output_padding where allowed
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = (rng.standard_normal((C, Fo, kH, kW)) / np.sqrt(C * kH * kW)).astype(dtype)
    b = rng.standard_normal(Fo).astype(dtype)
    args = (stride, padding, output_padding)
    pH, pW = (padding, padding) if isinstance(padding, int) else padding
    if (W - 1) * sW + kW + output_padding[1] <= 2 * pW or (H - 1) * sH + kH + output_padding[0] <= 2 * pH:
        # padding crops away the whole output: both refuse
        with pytest.raises(RuntimeError):
            TF.conv_transpose2d(torch.tensor(x), torch.tensor(w), None, *args)
        with pytest.raises(ValueError, match="conv_transpose2d: padding .* empty output"):
            F.conv_transpose2d(x, w, b, *args, backend=backend)
        return
    check_op(lambda x, w, b: F.conv_transpose2d(x, w, b, *args, backend=backend),
             lambda x, w, b: TF.conv_transpose2d(x, w, b, *args),
             [x, w, b],
             backward=lambda g, x, w, b: F.conv_transpose2d_backward(g, x, w, *args, backend=backend))


def test_conv2d_without_bias(backend):
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 3, 9, 9)), rng.standard_normal((4, 3, 3, 3))
    check_op(lambda x, w: F.conv2d(x, w, None, 2, 1, backend=backend),
             lambda x, w: TF.conv2d(x, w, None, 2, 1), [x, w],
             backward=lambda g, x, w: F.conv2d_backward(g, x, w, 2, 1, backend=backend)[:2])


@pytest.mark.parametrize("case", CASES[:16], ids=[str(i) for i in range(16)])
def test_adjoint_identity(case, backend):
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)>: the transposed
    convolution is exactly the adjoint, which is what the deconvnet relies on."""
    N, C, Fo, (H, W), (kH, kW), stride, padding = case
    s = (stride, stride) if isinstance(stride, int) else stride
    p = (padding, padding) if isinstance(padding, int) else padding
    rng = np.random.default_rng(3)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((Fo, C, kH, kW))
    y = rng.standard_normal(F.conv2d(x, w, None, s, p).shape)
    # output_padding picks, among the input sizes that give y's size, x's one
    op = ((H + 2 * p[0] - kH) % s[0], (W + 2 * p[1] - kW) % s[1])
    xt = F.conv_transpose2d(y, w, None, s, p, op, backend=backend)
    assert xt.shape == x.shape
    lhs = np.vdot(F.conv2d(x, w, None, s, p, backend=backend), y)
    rhs = np.vdot(x, xt)
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def numerical_gradient(f, x, eps=1e-6):
    """Central differences of the scalar f at every entry of x (float64)."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        up = f()
        x[idx] = old - eps
        down = f()
        x[idx] = old
        grad[idx] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_numerical_gradient(op, backend):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 5, 4))
    # conv2d weight is (C_out, C_in, ...), conv_transpose2d's (C_in, C_out, ...)
    w = rng.standard_normal((3, 2, 3, 2) if op == "conv2d" else (2, 3, 3, 2))
    b = rng.standard_normal(3)
    forward = getattr(F, op)
    args = (2, 1) if op == "conv2d" else (2, 1, 1)
    g = rng.standard_normal(forward(x, w, b, *args).shape)

    def loss():
        return np.vdot(forward(x, w, b, *args, backend=backend), g)

    dx, dw, db = getattr(F, op + "_backward")(g, x, w, *args, backend=backend)
    for analytic, wrt in ((dx, x), (dw, w), (db, b)):
        assert_close("gradient", analytic, numerical_gradient(loss, wrt), atol=1e-6, rtol=1e-6)


def test_backends_agree_on_a_large_batch(monkeypatch):
    """The numba path processes the batch in chunks; crossing a chunk
    boundary must not change a number."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((70, 8, 30, 30)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    monkeypatch.setattr(tuning, "COLS_BUDGET", 8 * 9 * 28 * 28 * 4 * 3)  # three images a chunk
    fast = F.conv2d(x, w, None, 1, 0, backend="numba")
    dx, dw, db = F.conv2d_backward(np.ones_like(fast), x, w, 1, 0, backend="numba")
    # float32 sums of 72 products of O(1) terms: looser than the default
    assert_close("chunked", fast, F.conv2d(x, w, None, 1, 0, backend="numpy"), atol=1e-4)
    # one image larger than the budget: bands of 5 output rows
    monkeypatch.setattr(tuning, "COLS_BUDGET", 8 * 9 * 28 * 4 * 5)
    banded = F.conv2d(x[:2], w, None, 1, 0, backend="numba")
    assert_close("banded", banded, fast[:2])
    ref = F.conv2d_backward(np.ones_like(fast), x, w, 1, 0, backend="numpy")
    assert_close("dw", dw, ref[1], atol=0, rtol=1e-4)   # float32 sums over 70 images of 784 positions
    assert_close("dx", dx, ref[0], atol=1e-4)


# (x shape, weight shape, padding, the path the numba backend takes at stride 1)
TRANSPOSED_PATHS = [
    ((3, 6, 10, 10), (6, 16, 5, 5), 0, "flipped direct"),    # few weights
    ((1, 64, 24, 23), (64, 64, 3, 3), 1, "winograd"),
    ((1, 40, 9, 7), (40, 33, 3, 3), 1, "col2im"),            # small column matrix
    ((1, 32, 100, 90), (32, 48, 3, 3), 2, "flipped im2col"),  # 16 MB of columns
]


@pytest.mark.parametrize("case", TRANSPOSED_PATHS, ids=[p[-1] + str(p[0]) for p in TRANSPOSED_PATHS])
def test_every_stride_one_transposed_path(case, dtype):
    """conv_transpose2d at stride 1 goes by the flipped filters (direct or
    im2col), Winograd or col2im, by size; each matches torch."""
    shape, wshape, pad, path = case
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(dtype)
    w = (rng.standard_normal(wshape) / np.sqrt(wshape[0] * 9)).astype(dtype)
    b = rng.standard_normal(wshape[1]).astype(dtype)
    check_op(lambda x, w, b: F.conv_transpose2d(x, w, b, 1, pad, backend="numba"),
             lambda x, w, b: TF.conv_transpose2d(x, w, b, 1, pad), [x, w, b])
    assert F.conv_path("conv_transpose2d", x, w, 1, pad) == path


@pytest.mark.parametrize("filters", range(1, 10))
def test_the_direct_kernel_with_every_count_of_filters(filters, dtype):
    """The direct kernel takes filters four at a time, then two, then one:
    every remainder of F by 4, and fewer than four, against torch."""
    rng = np.random.default_rng(filters)
    x = rng.standard_normal((2, 3, 9, 11)).astype(dtype)
    w = (rng.standard_normal((filters, 3, 5, 5)) / np.sqrt(75)).astype(dtype)
    b = rng.standard_normal(filters).astype(dtype)
    check_op(lambda x, w, b: F.conv2d(x, w, b, 1, 2), lambda x, w, b: TF.conv2d(x, w, b, 1, 2),
             [x, w, b])
    assert F.conv_path("conv2d", x, w, 1, 2) == "direct"


# (x shape, weight shape, stride, padding, the path the numba backend takes)
FUSED_RELU_PATHS = [
    ((3, 6, 10, 9), (16, 6, 5, 5), 1, 2, "direct"),
    ((2, 64, 24, 21), (64, 64, 3, 3), 1, 1, "winograd"),    # odd width: a half tile dropped
    ((2, 3, 13, 11), (4, 3, 3, 3), 2, 1, "im2col"),
]


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no bias"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", FUSED_RELU_PATHS, ids=[c[-1] for c in FUSED_RELU_PATHS])
def test_conv2d_relu_on_every_path(case, dtype, with_bias):
    """The fused conv + ReLU of a plain forward pass equals torch's
    relu(conv2d) on the three numba paths (each asserted) and in numpy."""
    shape, wshape, stride, pad, path = case
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape).astype(dtype)
    w = (rng.standard_normal(wshape) / np.sqrt(np.prod(wshape[1:]))).astype(dtype)
    b = rng.standard_normal(wshape[0]).astype(dtype) if with_bias else None
    for backend in ("numba", "numpy"):
        check_op(lambda x, w, b: F.conv2d_relu(x, w, b, stride, pad, backend=backend),
                 lambda x, w, b: torch.relu(TF.conv2d(x, w, b, stride, pad)), [x, w, b])
    assert F.conv_path("conv2d", x, w, stride, pad) == path
    assert F.conv_path("conv2d", x, w, stride, pad, backend="numpy") == "reference"
    assert (F.conv2d(x, w, b, stride, pad) < 0).any()  # the ReLU had something to do


@pytest.mark.parametrize("op,paths", [("conv2d", ["direct", "winograd", "im2col", "depthwise"]),
                                      ("conv_transpose2d", ["winograd", "flipped direct", "flipped im2col",
                                                            "col2im", "depthwise"])])
def test_each_path_name_runs_its_algorithm(op, paths, monkeypatch):
    """The numba backend dispatches on the name ``conv_numba.path`` returns,
    so the tests that assert a name test that algorithm: forced to each
    name in turn, a 3x3 stride-1 case gives the reference's numbers (the
    depthwise kernels sum over every channel of a group, here one group)."""
    from npcnn.ops import conv_numba
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 4, 9, 8))
    w = rng.standard_normal((4, 5, 3, 3) if op == "conv_transpose2d" else (5, 4, 3, 3)) / 6
    b = rng.standard_normal(5)
    ours, expected = getattr(F, op), getattr(F, op)(x, w, b, 1, 1, backend="numpy")
    for name in paths:
        monkeypatch.setattr(conv_numba, "path", lambda *args, _name=name: _name)
        assert_close(name, ours(x, w, b, 1, 1), expected)


def test_conv_path_checks_its_arguments_as_the_op_does():
    x, w = np.zeros((1, 3, 8, 8)), np.zeros((4, 3, 3, 3))
    with pytest.raises(ValueError, match="conv_path: op must be 'conv2d' or 'conv_transpose2d', got 'pool'"):
        F.conv_path("pool", x, w)
    with pytest.raises(ValueError, match="conv2d: stride must be >= 1"):
        F.conv_path("conv2d", x, w, stride=0)
    with pytest.raises(ValueError, match=r"conv_transpose2d: weight \(C_in, C_out, kH, kW\) expects 4"):
        F.conv_path("conv_transpose2d", x, w)
