"""Bad input gets a ValueError that names the op, the argument and the shapes."""
import re

import numpy as np
import pytest

import npcnn.functional as F
from npcnn import checks
from npcnn.ops.runtime import tuning

x4 = np.zeros((2, 3, 8, 8))
w = np.zeros((4, 3, 3, 3))
nan_x = x4.copy()
nan_x[0, 0, 0, 0] = np.nan
_overlap = np.zeros(96)  # an unpooling whose out= holds its own input

CASES = [
    # (call, every fragment the message must contain)
    (lambda b: F.conv2d(np.zeros((8, 8)), w, backend=b), ["conv2d", "input", "4-D", "(8, 8)"]),
    (lambda b: F.conv2d(x4, np.zeros((4, 2, 3, 3)), backend=b),
     ["conv2d", "weight", "2 input channels", "input has 3", "(2, 3, 8, 8)", "(4, 2, 3, 3)"]),
    (lambda b: F.conv2d(x4, np.zeros((4, 3, 11, 11)), padding=1, backend=b),
     ["conv2d", "kernel 11x11", "padded input 10x10", "(2, 3, 8, 8)", "(4, 3, 11, 11)"]),
    (lambda b: F.conv2d(x4, w, np.zeros(5), backend=b), ["conv2d", "bias", "(4,)", "(5,)"]),
    (lambda b: F.conv2d(x4, w.astype(np.float32), backend=b), ["conv2d", "weight", "float32", "float64"]),
    (lambda b: F.conv2d(x4.astype(int), w, backend=b), ["conv2d", "input", "float32 or float64", "int"]),
    (lambda b: F.conv2d(x4, np.full(w.shape, np.inf), backend=b), ["conv2d", "weight", "non-finite", "(4, 3, 3, 3)"]),
    (lambda b: F.conv2d(x4, w, stride=0, backend=b), ["conv2d", "stride", ">= 1"]),
    (lambda b: F.conv2d(x4, w, padding=(1, 2, 3), backend=b), ["conv2d", "padding", "pair"]),
    (lambda b: F.conv_transpose2d(x4, w, backend=b),
     ["conv_transpose2d", "weight", "(C_in, C_out, kH, kW)", "4 input channels", "(4, 3, 3, 3)"]),
    (lambda b: F.conv_transpose2d(x4, np.zeros((3, 2, 3, 3)), stride=2, output_padding=2, backend=b),
     ["conv_transpose2d", "output_padding", "stride"]),
    (lambda b: F.conv2d_backward(np.zeros((2, 4, 5, 5)), x4, w, backend=b),
     ["conv2d_backward", "grad_output", "(2, 4, 6, 6)", "(2, 4, 5, 5)"]),
    (lambda b: F.max_pool2d(np.zeros((8, 8)), 2, backend=b), ["max_pool2d", "input", "4-D", "(8, 8)"]),
    (lambda b: F.max_pool2d(x4, 9, backend=b), ["max_pool2d", "kernel_size", "(9, 9)", "8x8", "(2, 3, 8, 8)"]),
    (lambda b: F.max_pool2d(x4, 2, padding=2, backend=b), ["max_pool2d", "padding", "half", "kernel_size"]),
    (lambda b: F.max_pool2d(nan_x, 2, backend=b), ["max_pool2d", "input", "non-finite", "(2, 3, 8, 8)"]),
    (lambda b: F.max_unpool2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2)), 2, backend=b),
     ["max_unpool2d", "indices", "int64"]),
    (lambda b: F.max_unpool2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 2), dtype=np.int64), 2, backend=b),
     ["max_unpool2d", "indices", "(1, 1, 2, 2)", "(1, 1, 3, 2)"]),
    (lambda b: F.max_unpool2d(np.zeros((1, 1, 2, 2)), np.full((1, 1, 2, 2), 16, dtype=np.int64), 2,
                              backend=b), ["max_unpool2d", "indices", "[16, 16]", "4x4"]),
    (lambda b: F.max_unpool2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), dtype=np.int64), 2,
                              out=np.zeros((1, 1, 4, 5)), backend=b),
     ["max_unpool2d", "out", "(1, 1, 4, 4)", "float64", "(1, 1, 4, 5)"]),
    (lambda b: F.max_pool2d_backward(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), dtype=np.int64), (4, 4),
                                     out=np.zeros((1, 1, 4, 4), dtype=np.float32), backend=b),
     ["max_pool2d_backward", "out", "float64", "float32"]),
    (lambda b: F.max_unpool2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), dtype=np.int64), 2,
                              out=np.zeros((1, 1, 4, 8))[..., ::2], backend=b),
     ["max_unpool2d", "out", "C-contiguous", "(1, 1, 4, 4)"]),
    (lambda b: F.max_unpool2d(_overlap[72:].reshape(2, 3, 2, 2), np.zeros((2, 3, 2, 2), dtype=np.int64), 2,
                              out=_overlap.reshape(2, 3, 4, 4), backend=b),
     ["max_unpool2d", "out", "overlap"]),
    (lambda b: F.linear(np.zeros((2, 5)), np.zeros((3, 4)), backend=b),
     ["linear", "weight", "4 input features", "input has 5", "(2, 5)", "(3, 4)"]),
    (lambda b: F.log_softmax(np.array([[0.0, np.inf]]), 1, backend=b), ["log_softmax", "input", "non-finite"]),
    (lambda b: F.softmax(np.zeros((2, 3)), 2, backend=b), ["softmax", "dim 2", "(2, 3)"]),
    (lambda b: F.adaptive_avg_pool2d(x4, (0, 3), backend=b), ["adaptive_avg_pool2d", "output_size"]),
    (lambda b: F.relu([1.0, -1.0], backend=b), ["relu", "input", "numpy array", "list"]),
    (lambda b: F.flatten(x4, 3, 1, backend=b), ["flatten", "start_dim 3", "end_dim 1", "(2, 3, 8, 8)"]),
    (lambda b: F.conv2d(x4, w, backend="cuda"), ["conv2d", "backend", "'cuda'"]),
]


@pytest.mark.parametrize("call,fragments", CASES, ids=[f[0] + "-" + str(i) for i, (_, f) in enumerate(CASES)])
def test_bad_input_is_named(call, fragments, backend):
    with pytest.raises(ValueError) as err:
        call(backend)
    message = str(err.value)
    assert message.startswith(fragments[0] + ":"), message
    for fragment in fragments[1:]:
        assert fragment in message, f"{fragment!r} missing from: {message}"


def test_messages_are_one_line():
    for call, _ in CASES:
        with pytest.raises(ValueError) as err:
            call("numpy")
        assert "\n" not in str(err.value) and re.match(r"^\w+: ", str(err.value))


# a small array and one large enough to take numba's threads (the serial
# and the parallel compilation of the test, both forced below)
SIZES = {"small": (8, 3, 3, 3), "large": (64, 32, 3, 3)}


@pytest.fixture(params=["parallel", "serial"])
def threads(request, monkeypatch):
    monkeypatch.setattr(tuning, "PARALLEL_MIN_WORK", 0 if request.param == "parallel" else 1 << 62)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_one_non_finite_value_among_many_is_found(bad, dtype, size, where, threads):
    w = np.random.default_rng(0).standard_normal(SIZES[size]).astype(dtype)
    w.reshape(-1)[{"first": 0, "middle": w.size // 2 + 3, "last": -1}[where]] = bad
    with pytest.raises(ValueError, match=r"conv2d: weight holds 1 non-finite value"):
        checks.finite("conv2d", "weight", w)


@pytest.mark.parametrize("size", list(SIZES))
def test_the_largest_finite_values_and_empty_arrays_pass(size, threads):
    # their squares overflow, and a test by x . x would say "maybe": x * 0 does not
    extremes = np.zeros(SIZES[size], dtype=np.float32)
    extremes[0, 0, 0, :2] = np.finfo(np.float32).max, np.finfo(np.float32).min
    with np.errstate(over="ignore"):
        assert checks.finite("conv2d", "weight", extremes) is extremes
    checks.finite("conv2d", "weight", np.zeros((0, 3), dtype=np.float32))


@pytest.mark.parametrize("value,expected", [(3, (3, 3)), (np.int64(2), (2, 2)), ((1, 2), (1, 2)),
                                            ([1, 2], (1, 2)), ((np.int32(1), 2), (1, 2))])
def test_an_int_or_a_pair_of_ints(value, expected):
    assert checks.pair("conv2d", "stride", value) == expected


@pytest.mark.parametrize("value", [True, (1, True), 1.0, (1, 2, 3), "2", None])
def test_anything_else_is_not_a_pair(value):
    with pytest.raises(ValueError, match=r"conv2d: stride must be an int or a pair of ints"):
        checks.pair("conv2d", "stride", value)
