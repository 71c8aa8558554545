"""The numba backend's Winograd path (3x3, stride 1, >= 64 channels) against
torch: conv2d and conv_transpose2d, odd and non-square sizes, padding 0-2,
bands of tile rows that cross images, and both kernel compilations.

Every case asserts that it ran through the Winograd path, so a change of the
thresholds cannot turn these into tests of the im2col path."""
import numpy as np
import pytest
import torch.nn.functional as TF

import npcnn.functional as F
from npcnn.ops.runtime import tuning
import npcnn.ops.winograd_numba as winograd
from parity import TOL, check_op


@pytest.fixture
def calls(monkeypatch):
    """Count the Winograd convolutions run, per entry point."""
    count = {"conv2d": 0, "conv_transpose2d": 0}

    def counting(name, fn):
        def wrapped(*args):
            count[name] += 1
            return fn(*args)
        return wrapped

    monkeypatch.setattr(winograd, "conv2d_3x3", counting("conv2d", winograd.conv2d_3x3))
    monkeypatch.setattr(winograd, "conv_transpose2d_3x3",
                        counting("conv_transpose2d", winograd.conv_transpose2d_3x3))
    return count


def _inputs(N, C, H, W, weight_shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    # ~1/sqrt(fan_in), as in a trained network: outputs O(1), where float32's atol means something
    w = (rng.standard_normal(weight_shape) / np.sqrt(C * 9)).astype(dtype)
    b = rng.standard_normal(weight_shape[0] if weight_shape[1] == C else weight_shape[1]).astype(dtype)
    return x, w, b


# (N, C, F, H, W, padding): odd and even sizes (a half tile at the end),
# non-square, padding 0 to 2, several images
CONV = [
    (1, 64, 64, 24, 24, 1),      # VGG16-like, whole tiles
    (1, 64, 70, 23, 29, 1),      # odd both ways, F not a multiple of anything
    (2, 64, 64, 16, 17, 0),      # no padding: Ho = H - 2
    (1, 96, 72, 24, 23, 2),      # padding 2: Ho = H + 2
    (3, 64, 80, 14, 13, 1),      # several images
]


# op name -> (npcnn op, torch op, weight shape from (C, F))
OPS = {"conv2d": (F.conv2d, TF.conv2d, lambda C, Fo: (Fo, C, 3, 3)),
       "conv_transpose2d": (F.conv_transpose2d, TF.conv_transpose2d, lambda C, Fo: (C, Fo, 3, 3))}


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("case", CONV, ids=[str(c) for c in CONV])
def test_matches_torch(case, op, dtype, calls):
    N, C, Fo, H, W, pad = case
    ours, theirs, weight_shape = OPS[op]
    x, w, b = _inputs(N, C, H, W, weight_shape(C, Fo), dtype)
    check_op(lambda x, w, b: ours(x, w, b, 1, pad, backend="numba"),
             lambda x, w, b: theirs(x, w, b, 1, pad), [x, w, b], **TOL[dtype])
    assert calls[op] == 1


def test_without_bias(calls):
    x, w, _ = _inputs(1, 64, 24, 24, (64, 64, 3, 3), np.float64)
    check_op(lambda x, w: F.conv2d(x, w, None, 1, 1, backend="numba"),
             lambda x, w: TF.conv2d(x, w, None, 1, 1), [x, w], **TOL[np.float64])
    assert calls["conv2d"] == 1


@pytest.mark.parametrize("band_rows", [1, 3, 5])
def test_bands_that_cross_images(band_rows, monkeypatch, calls):
    """Three images of 7 tile rows in bands of 1, 3 and 5 rows: bands start
    and end inside an image and span two."""
    N, C, Fo, H, W = 3, 64, 64, 14, 13
    tw = (W - 2 + 2 + 1) // 2
    monkeypatch.setattr(tuning, "WINOGRAD_BAND_BYTES", band_rows * 16 * (C + Fo) * tw * 4)
    x, w, b = _inputs(N, C, H, W, (Fo, C, 3, 3), np.float32)
    check_op(lambda x, w, b: F.conv2d(x, w, b, 1, 1, backend="numba"),
             lambda x, w, b: TF.conv2d(x, w, b, 1, 1), [x, w, b], **TOL[np.float32])
    assert calls["conv2d"] == 1


@pytest.mark.parametrize("threads", ["parallel", "serial"])
def test_both_compilations(threads, monkeypatch, calls):
    monkeypatch.setattr(tuning, "PARALLEL_MIN_WORK", 0 if threads == "parallel" else 1 << 62)
    x, w, b = _inputs(2, 64, 17, 16, (64, 64, 3, 3), np.float64)
    check_op(lambda x, w, b: F.conv2d(x, w, b, 1, 1, backend="numba"),
             lambda x, w, b: TF.conv2d(x, w, b, 1, 1), [x, w, b], **TOL[np.float64])
    check_op(lambda x, w, b: F.conv_transpose2d(x, w, b, 1, 1, backend="numba"),
             lambda x, w, b: TF.conv_transpose2d(x, w, b, 1, 1), [x, w, b], **TOL[np.float64])
    assert calls == {"conv2d": 1, "conv_transpose2d": 1}


def test_the_paths_it_leaves_alone():
    """Stride 2, 5x5 filters, few input or output channels or few tiles go to
    the other paths."""
    x = np.zeros((1, 64, 32, 32), np.float32)
    assert winograd.suits(x, np.zeros((64, 64, 3, 3)), (1, 1))
    assert not winograd.suits(x, np.zeros((64, 64, 3, 3)), (2, 2))
    assert not winograd.suits(x, np.zeros((64, 64, 5, 5)), (1, 1))
    assert not winograd.suits(x[:, :32], np.zeros((64, 32, 3, 3)), (1, 1))
    assert not winograd.suits(x, np.zeros((32, 64, 3, 3)), (1, 1))
    assert not winograd.suits(x, np.zeros((64, 3, 3, 3)), (1, 1), transposed=True)
    assert not winograd.suits(x[:, :, :14, :14], np.zeros((64, 64, 3, 3)), (1, 1))
    assert not winograd.suits(x[:, :, :14, :14], np.zeros((64, 64, 3, 3)), (1, 1), transposed=True)
