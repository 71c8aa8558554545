"""npcnn.functional called as torch.nn.functional is (issue #25): torch's
positional order and defaults, dilation and groups (refused by name where
torch refuses them; their values in test_dilation_groups.py),
padding="same"/"valid", unbatched (C, H, W)
inputs, None in adaptive output sizes and 0-d ReLU. Each form against torch
with the parity helper: shape, dtype, values, switches exactly, gradients
where npcnn has a backward."""
import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import npcnn.functional as F
from parity import assert_close, check_op


def draw(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


# ----------------------------------------------------------------------------
# 1. torch's positional order


TORCH_ORDER = {
    "conv2d": ["input", "weight", "bias", "stride", "padding", "dilation", "groups"],
    "conv_transpose2d": ["input", "weight", "bias", "stride", "padding", "output_padding", "groups",
                         "dilation"],
    "max_pool2d": ["input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
                   "return_indices"],
    "max_unpool2d": ["input", "indices", "kernel_size", "stride", "padding", "output_size"],
    "adaptive_avg_pool2d": ["input", "output_size"],
    "linear": ["input", "weight", "bias"],
    "relu": ["input", "inplace"],
    "softmax": ["input", "dim", "_stacklevel", "dtype"],
    "log_softmax": ["input", "dim", "_stacklevel", "dtype"],
    "dropout": ["input", "p", "training", "inplace"],
}


@pytest.mark.parametrize("op", sorted(TORCH_ORDER))
def test_positional_order_is_torchs(op):
    """The positional parameters are torch's, in torch's order; npcnn's own
    (backend=, out=, reuse=, rng=) are keyword-only."""
    params = inspect.signature(getattr(F, op)).parameters.values()
    positional = [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert positional == TORCH_ORDER[op]
    extra = [p.name for p in params if p.kind == p.KEYWORD_ONLY]
    assert "backend" in extra


def test_max_pool2d_positional_dilation_then_ceil_mode(backend, dtype):
    """The regression of #25: torch-style ``max_pool2d(x, 3, 2, 1, 1, True)``
    is dilation=1, ceil_mode=True (not ceil_mode=1, return_indices=True).
    On a 6x6 input ceil_mode adds a row and a column, so the shapes differ."""
    x = draw(np.random.default_rng(0), (2, 3, 6, 6), dtype)
    check_op(lambda x: F.max_pool2d(x, 3, 2, 1, 1, True, True, backend=backend),
             lambda x: TF.max_pool2d(x, 3, 2, 1, 1, True, True), [x])
    values = F.max_pool2d(x, 3, 2, 1, 1, True, backend=backend)
    assert values[0].shape == (2, 3, 4, 4)
    np.testing.assert_array_equal(values[0], TF.max_pool2d(torch.tensor(x), 3, 2, 1, 1, True).numpy())


def test_conv_positional_defaults_equal_torch(backend, dtype):
    """dilation=1 and groups=1 in their torch positions, ints and pairs."""
    rng = np.random.default_rng(1)
    x, w, b = draw(rng, (2, 3, 7, 6), dtype), draw(rng, (4, 3, 3, 3), dtype, 0.3), draw(rng, (4,), dtype)
    check_op(lambda x, w, b: F.conv2d(x, w, b, 2, 1, 1, 1, backend=backend),
             lambda x, w, b: TF.conv2d(x, w, b, 2, 1, 1, 1), [x, w, b],
             backward=lambda g, x, w, b: F.conv2d_backward(g, x, w, 2, 1, 1, 1, backend=backend))
    check_op(lambda x, w, b: F.conv2d(x, w, b, 1, 0, (1, 1), 1, backend=backend),
             lambda x, w, b: TF.conv2d(x, w, b, 1, 0, (1, 1), 1), [x, w, b])
    wt = draw(rng, (3, 4, 3, 3), dtype, 0.3)
    check_op(lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1, 1, 1, backend=backend),
             lambda x, w, b: TF.conv_transpose2d(x, w, b, 2, 1, 1, 1, 1), [x, wt, b],
             backward=lambda g, x, w, b: F.conv_transpose2d_backward(g, x, w, 2, 1, 1, 1, 1,
                                                                     backend=backend))


def test_softmax_positional_dtype_equal_torch(backend):
    x = draw(np.random.default_rng(2), (3, 5), np.float32)
    check_op(lambda x: F.softmax(x, 1, 3, np.float64, backend=backend),
             lambda x: TF.softmax(x, 1, 3, torch.float64), [x])
    check_op(lambda x: F.log_softmax(x, 0, 3, np.float64, backend=backend),
             lambda x: TF.log_softmax(x, 0, 3, torch.float64), [x])


# ----------------------------------------------------------------------------
# 2. dilation and groups: refused where torch refuses, with the argument named

x4 = np.zeros((1, 2, 6, 6))
t4 = torch.zeros(1, 2, 6, 6, dtype=torch.float64)


def z(*shape):
    return np.zeros(shape)


def tz(*shape):
    return torch.zeros(shape, dtype=torch.float64)


# (npcnn's call, torch's same call, npcnn's message)
REFUSED = [
    (lambda b: F.conv2d(x4, z(2, 2, 3, 3), None, 1, 0, 0, backend=b),
     lambda: TF.conv2d(t4, tz(2, 2, 3, 3), None, 1, 0, 0),
     "conv2d: dilation must be >= 1, got (0, 0)"),
    (lambda b: F.conv2d(x4, z(2, 2, 3, 3), dilation=(1, -1), backend=b),
     lambda: TF.conv2d(t4, tz(2, 2, 3, 3), dilation=(1, -1)),
     "conv2d: dilation must be >= 1, got (1, -1)"),
    (lambda b: F.conv2d(x4, z(2, 2, 3, 3), None, 1, 0, 3, backend=b),
     lambda: TF.conv2d(t4, tz(2, 2, 3, 3), None, 1, 0, 3),
     "conv2d: kernel 3x3 at dilation (3, 3) spans 7x7 and is larger than the padded input 6x6 "
     "(input (1, 2, 6, 6), weight (2, 2, 3, 3), padding (0, 0))"),
    (lambda b: F.conv2d(x4, z(3, 1, 3, 3), None, 1, 0, 1, 2, backend=b),
     lambda: TF.conv2d(t4, tz(3, 1, 3, 3), None, 1, 0, 1, 2),
     "conv2d: groups=2 must divide the weight's 3 filters (C_out) (input (1, 2, 6, 6), weight (3, 1, 3, 3))"),
    (lambda b: F.conv2d(x4, z(2, 2, 3, 3), groups=2, backend=b),
     lambda: TF.conv2d(t4, tz(2, 2, 3, 3), groups=2),
     "conv2d: weight (C_out, C_in/groups, kH, kW) with groups=2 expects 4 input channels but input has 2 "
     "(input (1, 2, 6, 6), weight (2, 2, 3, 3))"),
    (lambda b: F.conv2d_relu(x4, z(2, 1, 3, 3), groups=0, backend=b),
     lambda: TF.relu(TF.conv2d(t4, tz(2, 1, 3, 3), groups=0)),
     "conv2d: groups must be >= 1, got 0"),
    (lambda b: F.conv2d_backward(z(1, 2, 4, 4), x4, z(2, 2, 3, 3), groups=2, backend=b),
     lambda: TF.conv2d(t4, tz(2, 2, 3, 3), groups=2),
     "conv2d_backward: weight (C_out, C_in/groups, kH, kW) with groups=2 expects 4 input channels but "
     "input has 2 (input (1, 2, 6, 6), weight (2, 2, 3, 3))"),
    (lambda b: F.conv_transpose2d(x4, z(2, 2, 3, 3), None, 1, 0, 0, 3, backend=b),
     lambda: TF.conv_transpose2d(t4, tz(2, 2, 3, 3), None, 1, 0, 0, 3),
     "conv_transpose2d: groups=3 must divide the weight's 2 input channels (C_in) "
     "(input (1, 2, 6, 6), weight (2, 2, 3, 3))"),
    (lambda b: F.conv_transpose2d(x4, z(2, 2, 3, 3), None, 1, 0, 2, 1, 2, backend=b),
     lambda: TF.conv_transpose2d(t4, tz(2, 2, 3, 3), None, 1, 0, 2, 1, 2),
     "conv_transpose2d: output_padding (2, 2) must be smaller than stride (1, 1) or dilation (2, 2)"),
    (lambda b: F.conv_transpose2d_backward(z(1, 2, 8, 8), x4, z(2, 2, 3, 3), dilation=0, backend=b),
     lambda: TF.conv_transpose2d(t4, tz(2, 2, 3, 3), dilation=0),
     "conv_transpose2d_backward: dilation must be >= 1, got (0, 0)"),
    (lambda b: F.max_pool2d(x4, 3, 2, 1, 0, backend=b),
     lambda: TF.max_pool2d(t4, 3, 2, 1, 0),
     "max_pool2d: dilation must be >= 1, got (0, 0)"),
    (lambda b: F.max_pool2d(x4, 3, 1, 0, 3, backend=b),
     lambda: TF.max_pool2d(t4, 3, 1, 0, 3),
     "max_pool2d: kernel_size (3, 3) at dilation (3, 3) is larger than the padded input 6x6 in height "
     "(input (1, 2, 6, 6), stride (1, 1), padding (0, 0), ceil_mode False)"),
    (lambda b: F.max_pool2d(x4, 3, 2, 1, True, backend=b),  # the old order's ceil_mode
     lambda: TF.max_pool2d(t4, 3, 2, 1, True),
     "max_pool2d: dilation must be an int or a pair of ints, got True"),
    (lambda b: F.conv2d(x4, z(2, 2, 3, 3), groups=1.0, backend=b),
     lambda: TF.conv2d(t4, tz(2, 2, 3, 3), groups=1.0),
     "conv2d: groups must be an int, got 1.0"),
    # sizes past int64 (torch: "Overflow when unpacking long long"), and a
    # padding whose output no machine holds (torch fails allocating it)
    (lambda b: F.conv2d(x4, z(2, 2, 3, 3), None, 2**63, backend=b),
     lambda: TF.conv2d(t4, tz(2, 2, 3, 3), None, 2**63),
     "conv2d: stride must fit in 64 bits, as torch's (at most 2**63 - 1), got 9223372036854775808"),
    (lambda b: F.conv2d(x4, z(2, 2, 3, 3), None, 1, 2**31, backend=b),
     lambda: TF.conv2d(t4, tz(2, 2, 3, 3), None, 1, 2**31),
     "conv2d: the output (1, 2, 4294967300, 4294967300) would take over 2**63 bytes (input (1, 2, 6, 6), "
     "weight (2, 2, 3, 3), padding (2147483648, 2147483648))"),
    # torch's bools and ints are bools and ints, not 2.0 or True
    (lambda b: F.max_pool2d(x4, 2, ceil_mode=2.0, backend=b),
     lambda: TF.max_pool2d(t4, 2, ceil_mode=2.0),
     "max_pool2d: ceil_mode must be a bool, got 2.0"),
    (lambda b: F.dropout(x4, 0.5, training=2.0, backend=b),
     lambda: TF.dropout(t4, 0.5, training=2.0),
     "dropout: training must be a bool, got 2.0"),
    (lambda b: F.softmax(x4, True, backend=b),
     lambda: TF.softmax(t4, True),
     "softmax: dim must be an int, got True"),
    (lambda b: F.flatten(x4, True, backend=b),
     lambda: torch.flatten(t4, True),
     "flatten: start_dim must be an int, got True"),
    (lambda b: F.max_unpool2d(z(2, 0, 2, 2), np.zeros((2, 0, 2, 2), np.int64), 2, backend=b),
     lambda: TF.max_unpool2d(tz(2, 0, 2, 2), torch.zeros((2, 0, 2, 2), dtype=torch.int64), 2),
     "max_unpool2d: input (2, 0, 2, 2) must have channels and a non-empty plane"),
]


@pytest.mark.parametrize("case", range(len(REFUSED)))
def test_dilation_and_groups_refused_where_torch_refuses(case, backend):
    call, torch_call, message = REFUSED[case]
    with pytest.raises((RuntimeError, TypeError, ValueError)):
        torch_call()
    with pytest.raises(ValueError) as error:
        call(backend)
    assert str(error.value) == message


def test_max_pool2d_refuses_a_dilated_window_wholly_in_the_padding(backend):
    """Stricter than torch on purpose: a 1x5 input pooled with kernel 2,
    padding 1, dilation 2 has windows whose taps (-1, 1) miss the single
    row; torch returns -inf there with an index outside the plane."""
    x = np.zeros((1, 1, 1, 5))
    y, indices = TF.max_pool2d(torch.tensor(x), 2, 1, 1, 2, return_indices=True)
    assert torch.isinf(y).all() and (indices >= 5).any()
    with pytest.raises(ValueError) as error:
        F.max_pool2d(x, 2, 1, 1, 2, backend=backend)
    assert str(error.value) == ("max_pool2d: dilation (2, 2) leaves 1 window(s) wholly in the padding in "
                                "height (input (1, 1, 1, 5), kernel_size (2, 2), stride (1, 1), padding (1, 1))")


# ----------------------------------------------------------------------------
# 3. padding="same" and "valid"

KERNELS = [(1, 1), (2, 2), (3, 3), (4, 3), (2, 5), (6, 6)]


@pytest.mark.parametrize("kernel", KERNELS, ids=[f"{h}x{w}" for h, w in KERNELS])
@pytest.mark.parametrize("mode", ["same", "valid"])
def test_conv2d_padding_mode_equals_torch(mode, kernel, backend, dtype):
    """Even kernels under "same" pad one more at the bottom and right than
    at the top and left, as torch; the input gradient is the input's only."""
    rng = np.random.default_rng(3)
    x, b = draw(rng, (2, 3, 7, 6), dtype), draw(rng, (4,), dtype)
    w = draw(rng, (4, 3) + kernel, dtype, 1 / np.sqrt(3 * kernel[0] * kernel[1]))
    out = check_op(lambda x, w, b: F.conv2d(x, w, b, 1, mode, backend=backend),
                   lambda x, w, b: TF.conv2d(x, w, b, 1, mode), [x, w, b],
                   backward=lambda g, x, w, b: F.conv2d_backward(g, x, w, 1, mode, backend=backend))
    if mode == "same":
        assert out.shape == (2, 4, 7, 6)
    check_op(lambda x, w, b: F.conv2d_relu(x, w, b, padding=mode, backend=backend),
             lambda x, w, b: TF.relu(TF.conv2d(x, w, b, padding=mode)), [x, w, b])


@pytest.mark.parametrize("call, message", [
    (lambda b: F.conv2d(x4, np.zeros((2, 2, 3, 3)), None, 2, "same", backend=b),
     "conv2d: padding='same' needs stride 1 (as torch), got stride (2, 2)"),
    (lambda b: F.conv2d(x4, np.zeros((2, 2, 3, 3)), padding="full", backend=b),
     "conv2d: padding must be an int, a pair of ints, 'same' or 'valid', got 'full'"),
    (lambda b: F.conv2d(x4, np.zeros((2, 2, 7, 7)), padding="valid", backend=b),
     "conv2d: kernel 7x7 is larger than the padded input 6x6 (input (1, 2, 6, 6), "
     "weight (2, 2, 7, 7), padding (0, 0))"),
    (lambda b: F.conv_transpose2d(x4, np.zeros((2, 2, 3, 3)), padding="same", backend=b),
     "conv_transpose2d: padding must be an int or a pair of ints, got 'same'"),
])
def test_padding_mode_refusals(call, message, backend):
    """As torch: "same" with a stride, an unknown mode, a kernel larger than
    the "valid" input, and a transposed conv (which has no padding modes)."""
    with pytest.raises(ValueError) as error:
        call(backend)
    assert str(error.value) == message


# ----------------------------------------------------------------------------
# 4. unbatched (C, H, W) inputs, as torch: a batch of one without its axis


def test_conv2d_unbatched_equals_torch(backend, dtype):
    rng = np.random.default_rng(4)
    x, b = draw(rng, (3, 7, 6), dtype), draw(rng, (4,), dtype)
    for kernel, stride, padding in (((3, 3), 2, 1), ((2, 2), 1, "same"), ((3, 2), 1, "valid")):
        w = draw(rng, (4, 3) + kernel, dtype, 0.3)
        check_op(lambda x, w, b: F.conv2d(x, w, b, stride, padding, backend=backend),
                 lambda x, w, b: TF.conv2d(x, w, b, stride, padding), [x, w, b],
                 backward=lambda g, x, w, b: F.conv2d_backward(g, x, w, stride, padding, backend=backend))
        check_op(lambda x, w, b: F.conv2d_relu(x, w, b, stride, padding, backend=backend),
                 lambda x, w, b: TF.relu(TF.conv2d(x, w, b, stride, padding)), [x, w, b])


def test_conv_transpose2d_unbatched_equals_torch(backend, dtype):
    rng = np.random.default_rng(5)
    x, w, b = draw(rng, (3, 5, 4), dtype), draw(rng, (3, 2, 3, 3), dtype, 0.3), draw(rng, (2,), dtype)
    check_op(lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1, backend=backend),
             lambda x, w, b: TF.conv_transpose2d(x, w, b, 2, 1, 1), [x, w, b],
             backward=lambda g, x, w, b: F.conv_transpose2d_backward(g, x, w, 2, 1, 1, backend=backend))


@pytest.mark.parametrize("kernel, stride, padding, ceil_mode", [
    (2, None, 0, False), (3, 2, 1, True), ((3, 2), (2, 1), (1, 0), False)])
def test_max_pool2d_unbatched_switches_unpool_equal_torch(kernel, stride, padding, ceil_mode,
                                                          backend, dtype):
    """Output and switches of an unbatched pooling equal torch's; they
    unpool back through an unbatched max_unpool2d, and its gradient too."""
    x = np.maximum(draw(np.random.default_rng(6), (3, 7, 6), dtype), 0)  # ties, as after a ReLU
    y, switches = check_op(
        lambda x: F.max_pool2d(x, kernel, stride, padding, 1, ceil_mode, backend=backend),
        lambda x: TF.max_pool2d(x, kernel, stride, padding, 1, ceil_mode, True), [x],
        backward=lambda g, x: F.max_pool2d_backward(
            g, F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode, backend=backend)[1],
            x.shape, backend=backend))
    assert y.shape == switches.shape and y.ndim == 3
    check_op(lambda x: F.max_pool2d(x, kernel, stride, padding, 1, ceil_mode, False, backend=backend),
             lambda x: TF.max_pool2d(x, kernel, stride, padding, 1, ceil_mode, False), [x])
    # unpooling: torch's max_unpool2d where windows do not overlap, its
    # autograd gradient of max_pool2d (what npcnn's unpooling is) everywhere
    unpooled = F.max_unpool2d(y, switches, kernel, stride, padding, x.shape[-2:], backend=backend)
    xt = torch.tensor(x, requires_grad=True)
    TF.max_pool2d(xt, kernel, stride, padding, 1, ceil_mode).backward(torch.tensor(y))
    np.testing.assert_array_equal(unpooled, xt.grad.numpy())
    assert unpooled.dtype == x.dtype
    if kernel == 2:
        np.testing.assert_array_equal(unpooled, TF.max_unpool2d(
            torch.tensor(y), torch.tensor(switches), kernel, stride, padding, x.shape[-2:]).numpy())
    out = np.full(x.shape, 7, dtype)
    assert F.max_unpool2d(y, switches, kernel, stride, padding, x.shape[-2:], out=out,
                          backend=backend) is out
    np.testing.assert_array_equal(out, unpooled)


def test_adaptive_avg_pool2d_unbatched_equals_torch(backend, dtype):
    x = draw(np.random.default_rng(7), (3, 7, 6), dtype)
    check_op(lambda x: F.adaptive_avg_pool2d(x, (3, 4), backend=backend),
             lambda x: TF.adaptive_avg_pool2d(x, (3, 4)), [x],
             backward=lambda g, x: F.adaptive_avg_pool2d_backward(g, x.shape, backend=backend))


@pytest.mark.parametrize("call, message", [
    (lambda b: F.conv2d(np.zeros((8, 8)), np.zeros((1, 1, 3, 3)), backend=b),
     "conv2d: input must be 3-D or 4-D, got shape (8, 8)"),
    (lambda b: F.conv2d_backward(np.zeros((1, 2, 4, 4)), np.zeros((2, 6, 6)), np.zeros((2, 2, 3, 3)),
                                 backend=b),
     "conv2d_backward: grad_output must be 3-D, got shape (1, 2, 4, 4)"),
    (lambda b: F.max_unpool2d(np.zeros((2, 3, 3)), np.zeros((1, 2, 3, 3), np.int64), 2, backend=b),
     "max_unpool2d: indices must have the shape of input (2, 3, 3), got (1, 2, 3, 3)"),
])
def test_unbatched_refusals(call, message, backend):
    with pytest.raises(ValueError) as error:
        call(backend)
    assert str(error.value) == message


# ----------------------------------------------------------------------------
# 5. None in adaptive output sizes; 0-d ReLU


@pytest.mark.parametrize("output_size", [(None, 2), (3, None), (None, None), 4])
@pytest.mark.parametrize("unbatched", [False, True])
def test_adaptive_avg_pool2d_none_keeps_input_size(output_size, unbatched, backend, dtype):
    x = draw(np.random.default_rng(8), (3, 7, 6) if unbatched else (2, 3, 7, 6), dtype)
    check_op(lambda x: F.adaptive_avg_pool2d(x, output_size, backend=backend),
             lambda x: TF.adaptive_avg_pool2d(x, output_size), [x],
             backward=lambda g, x: F.adaptive_avg_pool2d_backward(g, x.shape, backend=backend))


def test_one_element_sizes_and_an_empty_pool_stride_read_as_torch_reads_them(backend, dtype):
    """torch expands stride=(2,), padding=[1] and the like to both axes,
    and takes an empty pooling stride for its default, the kernel size."""
    rng = np.random.default_rng(10)
    x, w, wt = draw(rng, (2, 2, 7, 6), dtype), draw(rng, (3, 2, 3, 3), dtype), draw(rng, (2, 3, 3, 3), dtype)
    check_op(lambda x, w: F.conv2d(x, w, None, (2,), [1], (2,), backend=backend),
             lambda x, w: TF.conv2d(x, w, None, (2,), [1], (2,)), [x, w])
    check_op(lambda x, w: F.conv_transpose2d(x, w, None, (2,), (1,), [1], backend=backend),
             lambda x, w: TF.conv_transpose2d(x, w, None, (2,), (1,), [1]), [x, wt])
    check_op(lambda x: F.max_pool2d(x, (3,), (), (1,), return_indices=False, backend=backend),
             lambda x: TF.max_pool2d(x, (3,), (), (1,)), [x])


def test_what_torch_tests_only_for_truth_or_reads_as_a_number_is_taken(backend):
    """torch's Python wrappers test ``inplace`` for truth (1, None) and
    dropout's ``p`` is a number (True is 1); its C++ refuses a non-bool
    ``training`` and ``ceil_mode`` (the table of refusals above). An
    unbatched unpooling input without channels is an empty result, as
    torch's, where a batch's is refused."""
    x = np.array([[-1.0, 2.0], [3.0, -4.0]])
    for inplace in (1, None, 0):
        ours, theirs = F.relu(x.copy(), inplace, backend=backend), TF.relu(torch.from_numpy(x.copy()), inplace)
        np.testing.assert_array_equal(ours, theirs.numpy())
    np.testing.assert_array_equal(F.dropout(x, True, backend=backend), TF.dropout(torch.from_numpy(x), True).numpy())
    kept = F.dropout(x.copy(), 0.5, False, 1, backend=backend)
    np.testing.assert_array_equal(kept, TF.dropout(torch.from_numpy(x.copy()), 0.5, False, 1).numpy())
    empty, indices = np.zeros((0, 2, 2)), np.zeros((0, 2, 2), np.int64)
    assert F.max_unpool2d(empty, indices, 2, backend=backend).shape == TF.max_unpool2d(
        torch.from_numpy(empty), torch.from_numpy(indices), 2).shape == (0, 4, 4)
    with pytest.raises(ValueError, match=r"^softmax: dtype must be float32 or float64, got 'bogus'$"):
        F.softmax(x, 1, dtype="bogus", backend=backend)


def test_softmax_takes_minus_infinity_as_a_masked_element(backend, dtype):
    """exp(-inf) = 0: a masked element gets probability 0 (log-probability
    -inf), and a row masked whole is NaN, all as torch's; NaN and +inf stay
    refused."""
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf], [2.0, 3.0, -np.inf]], dtype)
    for ours, theirs in ((F.softmax, TF.softmax), (F.log_softmax, TF.log_softmax)):
        got, want = ours(x, 1, backend=backend), theirs(torch.from_numpy(x), 1).numpy()
        assert got.dtype == dtype
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=0, equal_nan=True)
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match=r"^softmax: input holds 1 non-finite value\(s\) \(NaN or \+inf"):
            F.softmax(np.array([[0.0, bad]], dtype), 1, backend=backend)


def test_flatten_and_a_model_take_an_empty_batch(backend):
    """A batch of 0 flattens to (0, C*H*W) as torch's, so a whole forward of
    an empty batch runs (numpy's reshape cannot resolve -1 beside a 0)."""
    import npcnn
    assert F.flatten(np.zeros((0, 3, 6, 6)), 1, backend=backend).shape == torch.flatten(
        torch.zeros(0, 3, 6, 6), 1).shape == (0, 108)
    model = npcnn.build("simplecnn", seed=0)
    model.backend = backend
    assert model(np.zeros((0, 1, 28, 28), np.float32)).shape == (0, 10)


def test_flags_and_sizes_refused_by_name(backend):
    """In-place ops on a read-only array, and a backward's whole input size
    whose batch or channels differ from the gradient's: one ValueError
    naming the op and the argument (numpy's own errors named neither)."""
    frozen = np.ones((2, 3))
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match=r"^relu: inplace=True needs a writeable input"):
        F.relu(frozen, True, backend=backend)
    with pytest.raises(ValueError, match=r"^dropout: inplace=True needs a writeable input"):
        F.dropout(frozen, 0.5, True, True, backend=backend)
    with pytest.raises(ValueError, match=r"^dropout: rng must be a numpy.random.Generator, got int"):
        F.dropout(np.ones((2, 3)), 0.5, rng=0, backend=backend)
    with pytest.raises(ValueError, match=r"^dropout: p must be a number in \[0, 1\], got 'x'"):
        F.dropout(np.ones((2, 3)), "x", backend=backend)
    g, indices = F.max_pool2d(np.ones((2, 3, 6, 6)), 2, backend=backend)
    with pytest.raises(ValueError, match=r"^max_pool2d_backward: input_size \(9, 9, 6, 6\) does not match"):
        F.max_pool2d_backward(g, indices, (9, 9, 6, 6), backend=backend)
    assert F.max_pool2d_backward(g, indices, (2, 3, 6, 6), backend=backend).shape == (2, 3, 6, 6)
    with pytest.raises(ValueError, match=r"^adaptive_avg_pool2d_backward: input_size \(2, 4, 6, 6\) does not"):
        F.adaptive_avg_pool2d_backward(np.ones((2, 3, 2, 2)), (2, 4, 6, 6), backend=backend)


def test_adaptive_avg_pool2d_refuses_a_bare_none(backend):
    """None keeps an axis only inside the pair: alone it is a size left
    out, which torch refuses too."""
    x = draw(np.random.default_rng(9), (2, 3, 7, 6), np.float64)
    with pytest.raises(TypeError):
        TF.adaptive_avg_pool2d(torch.from_numpy(x), None)
    with pytest.raises(ValueError, match=r"^adaptive_avg_pool2d: output_size .* got None$"):
        F.adaptive_avg_pool2d(x, None, backend=backend)


def test_relu_of_0d_is_0d(backend, dtype):
    for value in (-1.5, 2.5):
        x = np.array(value, dtype)
        check_op(lambda x: F.relu(x, backend=backend), lambda x: TF.relu(x), [x])
        # the gradient by hand: check_op draws its upstream gradient with
        # standard_normal(shape), a Python scalar for shape ()
        g, xt = np.array(0.75, dtype), torch.tensor(x, requires_grad=True)
        TF.relu(xt).backward(torch.tensor(g))
        assert_close("relu gradient", F.relu_backward(g, x, backend=backend), xt.grad)
        y = np.array(value, dtype)
        assert F.relu(y, True, backend=backend) is y and y.shape == () and y == max(value, 0)
        assert F.dropout(x, 0.5, False, backend=backend).shape == ()
