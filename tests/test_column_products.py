"""im2col's and col2im's products by register tiles (``npcnn/ops/im2col_numba.py``
over ``plane_products_numba.py``), called directly, against torch: every
count of filters around the register tiles' rows, output planes that are not
whole vectors, several images, bands of output rows and chunks of images,
bias and ReLU, both compilations."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from npcnn.ops import im2col_numba
from npcnn.ops.runtime import tuning
from parity import check_op

# (x shape, weight shape, stride, padding, dilation); the weight is conv2d's
CASES = [
    ((1, 3, 13, 11), (1, 3, 3, 3), 2, 1, 1),    # one filter; 7 x 6 outputs: cut vectors
    ((3, 2, 9, 9), (5, 2, 5, 5), 1, 2, 1),      # one cut tile of filters; 81 outputs
    ((2, 4, 17, 19), (7, 4, 3, 3), 2, 0, 1),    # 7 filters: a whole tile and a cut one
    ((1, 3, 40, 40), (9, 3, 3, 3), 1, 1, 2),    # dilated; 38 x 38 outputs, several column tiles
    ((2, 1, 6, 5), (2, 1, 2, 2), 1, 0, 1),      # 2 filters, 20 outputs
    ((1, 6, 8, 8), (16, 6, 1, 1), 1, 0, 1),     # whole vectors of outputs
    ((2, 3, 10, 9), (12, 3, 3, 3), 2, 1, 1),    # whole tiles of filters, 25 outputs
]
IDS = [f"{c[1][0]}f-{c[0][2]}x{c[0][3]}" for c in CASES]


@pytest.fixture(params=["parallel", "serial"])
def threads(request, monkeypatch):
    monkeypatch.setattr(tuning, "PARALLEL_MIN_WORK", 0 if request.param == "parallel" else 1 << 62)


def _random(case, dtype, seed=0):
    xs, ws = case[:2]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(dtype)
    w = (rng.standard_normal(ws) / np.sqrt(np.prod(ws[1:]))).astype(dtype)
    return x, w, rng.standard_normal(ws[0]).astype(dtype)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_im2col_products_equal_torch(case, relu, dtype, threads):
    x, w, b = _random(case, dtype)
    s, p, d = case[2:]

    def torch_conv(x, w, b):
        y = TF.conv2d(x, w, b, s, p, d)
        return torch.relu(y) if relu else y

    check_op(lambda x, w, b: im2col_numba.conv2d(x, w, b, (s, s), (p, p), (d, d), 1, relu), torch_conv, [x, w, b])
    check_op(lambda x, w: im2col_numba.conv2d(x, w, None, (s, s), (p, p), (d, d), 1, relu),
             lambda x, w: torch_conv(x, w, None), [x, w])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_col2im_products_equal_torch(case, dtype, threads):
    """The transposed direction reads the weight as W2^T in place: conv2d's
    weight (F, C, kH, kW) taken as conv_transpose2d's (C_in = F, C_out = C)."""
    _, w, _ = _random(case, dtype)
    s, p, d = case[2:]
    y = np.random.default_rng(1).standard_normal((case[0][0], w.shape[0]) + case[0][2:]).astype(dtype)
    b = np.random.default_rng(2).standard_normal(w.shape[1]).astype(dtype)
    check_op(lambda y, w, b: im2col_numba.conv_transpose2d(y, w, b, (s, s), (p, p), (0, 0), 1, (d, d)),
             lambda y, w, b: TF.conv_transpose2d(y, w, b, s, p, 0, 1, d), [y, w, b])


@pytest.mark.parametrize("budget", ["rows", "images"])
def test_products_in_bands_and_chunks(budget, dtype, threads, monkeypatch):
    """A budget that cuts one image into bands of output rows (each band a
    product of its own, not whole vectors) or the batch into chunks."""
    case = ((5, 3, 14, 13), (6, 3, 3, 3), 1, 1, 1)
    x, w, b = _random(case, dtype, seed=4)
    per_row = (27 + 6) * 13 * x.itemsize                   # (K + F) x Wo: columns and products of one row
    monkeypatch.setattr(tuning, "COLS_BUDGET", 3 * per_row if budget == "rows" else 2 * 14 * per_row)
    check_op(lambda x, w, b: im2col_numba.conv2d(x, w, b, (1, 1), (1, 1), (1, 1), 1, True),
             lambda x, w, b: torch.relu(TF.conv2d(x, w, b, 1, 1)), [x, w, b])
    y = np.concatenate([x, -x], 1)                         # 6 channels, conv2d's output's
    check_op(lambda y, w: im2col_numba.conv_transpose2d(y, w, None, (1, 1), (1, 1), (0, 0), 1, (1, 1)),
             lambda y, w: TF.conv_transpose2d(y, w, None, 1, 1), [y, w])
