"""Every integer and shape argument of the ops, drawn at random (seeded):
npcnn refuses exactly when torch refuses, with a ValueError naming the op
and the argument, and otherwise returns what torch returns.

Each draw mixes ordinary values with the edges torch checks: zero and
negative strides, paddings and dilations, empty kernels and inputs, kernels
(dilated or not) larger than the padded input, strides far beyond the
input, groups that do or do not divide the channels, output_padding against
stride and dilation, pooling padding above half the kernel, output sizes
beside the one pooling came from.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import npcnn.functional as F
from parity import assert_close

DRAWS = 150
SIZES = [0, 1, 2, 3, 5, 8]
KERNELS = [0, 1, 2, 3, 5]
STRIDES = [-1, 0, 1, 2, 3, 7, 2**31, 2**62]
# Unpooling's output grows with its stride: a huge one would have torch
# allocate (and zero) gigabytes before it fails.
SMALL_STRIDES = [-1, 0, 1, 2, 3, 7]
PADDINGS = [-1, 0, 1, 2, 3]
# Small on purpose: a transposed convolution's output grows with its
# dilation, and torch allocates it before any check could fail.
DILATIONS = [-1, 0, 1, 1, 1, 1, 2, 2, 3]
GROUPS = [-1, 0, 1, 1, 1, 1, 2, 2, 3]
# What torch raises for a bad argument, across its Python and C++ layers.
TORCH_REFUSALS = (RuntimeError, ValueError, IndexError, OverflowError)


def pick(rng, values, pairs=True):
    """An int, or (as torch allows) an (h, w) pair of two draws."""
    if pairs and rng.random() < 0.3:
        return int(rng.choice(values)), int(rng.choice(values))
    return int(rng.choice(values))


def outcome(call):
    try:
        return call(), None
    except TORCH_REFUSALS as error:
        return None, error


def shapes(result):
    return [r.shape for r in result] if isinstance(result, tuple) else result.shape


def assert_same_verdict(op, args, ours, theirs, names, stricter=None):
    """Refused by both (ours a ValueError naming ``op`` and one of ``names``)
    or by neither, with equal results. ``stricter``: why npcnn refuses this
    case on purpose where torch answers (None when it must not)."""
    (result, error), (expected, torch_error) = outcome(ours), outcome(theirs)
    where = f"{op}({args})"
    if torch_error is not None or (stricter and error is not None):
        assert error is not None, f"{where}: torch refuses ({torch_error}) but npcnn returns {shapes(result)}"
        message = str(error)
        assert isinstance(error, ValueError), f"{where}: {type(error).__name__}: {message}"
        assert message.startswith(f"{op}:"), f"{where}: the message does not name the op: {message}"
        assert any(name in message for name in names), f"{where}: no argument named in: {message}"
        return
    assert error is None, f"{where}: torch accepts but npcnn refuses: {error!r}"
    results = result if isinstance(result, tuple) else (result,)
    expectations = expected if isinstance(expected, tuple) else (expected,)
    for k, (mine, theirs_k) in enumerate(zip(results, expectations)):
        assert_close(f"{where} result {k}", mine, theirs_k, atol=1e-10, rtol=1e-10)


def torch_grads(forward, g, *arrays):
    """What torch's autograd puts in each input's .grad for upstream g."""
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    forward(*tensors).backward(torch.from_numpy(g))
    return tuple(t.grad for t in tensors)


CONV_NAMES = ["stride", "padding", "kernel", "weight", "input", "output_padding", "dilation", "groups"]


def empty_input_reason(x):
    """Where npcnn refuses an empty input that torch lets through."""
    if x.shape[1] == 0:
        return "no input channels: torch returns (N, 0, Ho, Wo), dropping the filters"
    if x.shape[0] == 0:
        return "an empty batch: torch skips its checks of the plane and of the output size"
    return None


def conv_draw(rng, transposed=False):
    """(x, w, b, stride, padding, dilation, groups): the weight in conv2d's
    layout (C_out, C_in/groups, kH, kW), or conv_transpose2d's (C_in,
    C_out/groups, kH, kW). Its channels mostly fit the groups drawn, and
    sometimes (a draw of one or two) do not."""
    groups = int(rng.choice(GROUPS))
    per_group = groups if groups > 0 else 1
    N, C, F_out = (int(rng.choice([0, 1, 2])) if rng.random() < 0.15 else int(rng.integers(1, 3)) * per_group
                   for _ in range(3))
    H, W = (int(rng.choice(SIZES)) for _ in range(2))
    kH, kW = (int(rng.choice(KERNELS)) for _ in range(2))
    x = rng.standard_normal((N, C, H, W))
    if rng.random() < 0.15:
        w_in, w_out = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    else:
        w_in, w_out = (C, F_out // per_group) if transposed else (C // per_group, F_out)
    w = rng.standard_normal((w_in, w_out, kH, kW) if transposed else (w_out, w_in, kH, kW))
    out_channels = w_out * max(groups, 1) if transposed else w_out
    return x, w, rng.standard_normal(out_channels), pick(rng, STRIDES), pick(rng, PADDINGS), \
        pick(rng, DILATIONS), groups


@pytest.mark.parametrize("seed", range(4))
def test_conv2d_arguments(seed, backend):
    rng = np.random.default_rng(seed)
    for _ in range(DRAWS):
        x, w, b, s, p, d, G = conv_draw(rng)
        args = f"x {x.shape}, w {w.shape}, stride={s}, padding={p}, dilation={d}, groups={G}"
        ref = lambda: TF.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), s, p, d, G)
        why = empty_input_reason(x)
        assert_same_verdict("conv2d", args, lambda: F.conv2d(x, w, b, s, p, d, G, backend=backend), ref,
                            CONV_NAMES, why)
        assert_same_verdict("conv2d", args, lambda: F.conv2d_relu(x, w, b, s, p, d, G, backend=backend),
                            lambda: torch.relu(ref()), CONV_NAMES, why)

        def backward():
            y = F.conv2d(x, w, b, s, p, d, G, backend=backend)
            g = np.random.default_rng(0).standard_normal(y.shape)
            return F.conv2d_backward(g, x, w, s, p, d, G, backend=backend)

        def torch_backward():
            y = ref()
            g = np.random.default_rng(0).standard_normal(tuple(y.shape))
            return torch_grads(lambda x, w, b: TF.conv2d(x, w, b, s, p, d, G), g, x, w, b)

        assert_same_verdict("conv2d", args, backward, torch_backward, CONV_NAMES, why)


@pytest.mark.parametrize("seed", range(4))
def test_conv_transpose2d_arguments(seed, backend):
    rng = np.random.default_rng(100 + seed)
    for _ in range(DRAWS):
        x, w, b, s, p, d, G = conv_draw(rng, transposed=True)
        op = pick(rng, [-1, 0, 1, 2])
        args = (f"x {x.shape}, w {w.shape}, stride={s}, padding={p}, output_padding={op}, groups={G}, "
                f"dilation={d}")
        ref = lambda: TF.conv_transpose2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), s, p, op, G, d)
        why = empty_input_reason(x)
        assert_same_verdict("conv_transpose2d", args,
                            lambda: F.conv_transpose2d(x, w, b, s, p, op, G, d, backend=backend), ref,
                            CONV_NAMES, why)

        def backward():
            y = F.conv_transpose2d(x, w, b, s, p, op, G, d, backend=backend)
            g = np.random.default_rng(0).standard_normal(y.shape)
            return F.conv_transpose2d_backward(g, x, w, s, p, op, G, d, backend=backend)

        def torch_backward():
            y = ref()
            g = np.random.default_rng(0).standard_normal(tuple(y.shape))
            return torch_grads(lambda x, w, b: TF.conv_transpose2d(x, w, b, s, p, op, G, d), g, x, w, b)

        assert_same_verdict("conv_transpose2d", args, backward, torch_backward, CONV_NAMES, why)


POOL_NAMES = ["kernel_size", "stride", "padding", "output_size", "input", "dilation"]


def pool_draw(rng):
    N, C = (int(rng.integers(0, 3)) if rng.random() < 0.15 else int(rng.integers(1, 3)) for _ in range(2))
    H, W = (int(rng.choice(SIZES)) for _ in range(2))
    # a stride of None is the kernel size, as in torch
    stride = None if rng.random() < 0.2 else pick(rng, STRIDES)
    return rng.standard_normal((N, C, H, W)), pick(rng, KERNELS), stride, pick(rng, PADDINGS), \
        pick(rng, DILATIONS), bool(rng.random() < 0.4)


@pytest.mark.parametrize("seed", range(4))
def test_max_pool2d_arguments(seed, backend):
    rng = np.random.default_rng(200 + seed)
    for _ in range(DRAWS):
        x, k, s, p, d, ceil = pool_draw(rng)
        args = f"x {x.shape}, kernel_size={k}, stride={s}, padding={p}, dilation={d}, ceil_mode={ceil}"
        ref = lambda: TF.max_pool2d(torch.tensor(x), k, s, p, d, ceil, return_indices=True)
        expected, _ = outcome(ref)
        why = None
        if expected is not None and torch.isinf(expected[0]).any():
            why = "a dilated window wholly in the padding: torch's -inf, at an index outside the input"
        assert_same_verdict("max_pool2d", args, lambda: F.max_pool2d(x, k, s, p, d, ceil, backend=backend),
                            ref, POOL_NAMES, why)


def _unpool_reference(y, indices, plane):
    """torch's adjoint of max-pooling: every value added at its switch."""
    N, C = y.shape[:2]
    flat = torch.zeros(N, C, plane[0] * plane[1], dtype=torch.float64)
    flat.scatter_add_(2, torch.tensor(indices).reshape(N, C, -1), torch.tensor(y).reshape(N, C, -1))
    return flat.reshape(N, C, *plane)


def unpool_reason(k, s, p):
    """npcnn takes the pooling's own arguments, which must describe a
    pooling; torch only computes a default size from them."""
    k, p = (k, k) if isinstance(k, int) else k, (p, p) if isinstance(p, int) else p
    s = k if s is None else ((s, s) if isinstance(s, int) else s)
    if min(k) < 1 or min(s) < 1 or min(p) < 0 or p[0] > k[0] // 2 or p[1] > k[1] // 2:
        return "kernel_size, stride and padding that no max_pool2d accepts"
    return None


@pytest.mark.parametrize("seed", range(4))
def test_max_unpool2d_arguments(seed, backend):
    """Switches from a valid pooling, then unpooled with drawn arguments.
    torch's max_unpool2d decides what is refused; the values are those of
    its autograd's scatter-add (npcnn's unpooling adds coinciding switches)."""
    rng = np.random.default_rng(300 + seed)
    for _ in range(DRAWS):
        N, C, H, W = 1, 2, int(rng.integers(1, 9)), int(rng.integers(1, 9))
        k_pool = int(rng.integers(1, min(H, W) + 1))
        y, switches = F.max_pool2d(rng.standard_normal((N, C, H, W)), k_pool, backend="numpy")
        k, s, p = pick(rng, KERNELS), (None if rng.random() < 0.2 else pick(rng, SMALL_STRIDES)), pick(rng, PADDINGS)
        size = None if rng.random() < 0.3 else (H + int(rng.integers(-3, 4)), W + int(rng.integers(-3, 4)))
        args = f"y {y.shape}, kernel_size={k}, stride={s}, padding={p}, output_size={size}"

        def reference():
            torch_plane = TF.max_unpool2d(torch.tensor(y), torch.tensor(switches), k, s, p, size).shape[-2:]
            return _unpool_reference(y, switches, tuple(torch_plane))

        assert_same_verdict("max_unpool2d", args,
                            lambda: F.max_unpool2d(y, switches, k, s, p, size, backend=backend),
                            reference, POOL_NAMES + ["indices"], unpool_reason(k, s, p))


@pytest.mark.parametrize("seed", range(2))
def test_adaptive_avg_pool2d_arguments(seed, backend):
    rng = np.random.default_rng(400 + seed)
    for _ in range(DRAWS):
        N, C = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        H, W = (int(rng.choice(SIZES)) for _ in range(2))
        x = rng.standard_normal((N, C, H, W))
        size = pick(rng, [-1, 0, 1, 2, 3, 9])
        args = f"x {x.shape}, output_size={size}"
        why = None
        if 0 in x.shape[2:]:
            why = "an empty plane, which torch's shortcut for a 1x1 output averages into NaN"
        elif 0 in ((size, size) if isinstance(size, int) else size):
            why = "an empty output, which torch returns and no layer asks for"
        assert_same_verdict("adaptive_avg_pool2d", args,
                            lambda: F.adaptive_avg_pool2d(x, size, backend=backend),
                            lambda: TF.adaptive_avg_pool2d(torch.tensor(x), size), ["output_size", "input"],
                            why)


@pytest.mark.parametrize("seed", range(2))
def test_linear_arguments(seed, backend):
    rng = np.random.default_rng(500 + seed)
    for _ in range(DRAWS):
        rows, features, outputs = (int(rng.choice([0, 1, 2, 5])) for _ in range(3))
        x = rng.standard_normal((rows, features))
        w = rng.standard_normal((outputs, int(rng.choice([features, features + 1]))))
        b = rng.standard_normal(outputs)
        args = f"x {x.shape}, w {w.shape}"
        assert_same_verdict("linear", args, lambda: F.linear(x, w, b, backend=backend),
                            lambda: TF.linear(torch.tensor(x), torch.tensor(w), torch.tensor(b)),
                            ["weight", "input"])
