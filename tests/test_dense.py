"""linear, relu, softmax, log_softmax, dropout and flatten against torch."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import npcnn.functional as F
from npcnn.ops import linear_numba
from parity import assert_close, check_op


@pytest.mark.parametrize("shape,out", [((1, 7), 3), ((5, 400), 120), ((2, 3, 9), 4), ((6,), 2)])
def test_linear_matches_torch(shape, out, backend, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    w = (rng.standard_normal((out, shape[-1])) / np.sqrt(shape[-1])).astype(dtype)
    b = rng.standard_normal(out).astype(dtype)
    check_op(lambda x, w, b: F.linear(x, w, b, backend=backend), TF.linear, [x, w, b],
             backward=lambda g, x, w, b: F.linear_backward(g, x, w, backend=backend))


# (rows, in, out): whole 4x4 tiles, tiles cut at the last rows or columns or
# both, one input feature, and LeNet-5's and SimpleCNN's fc layers
TILED_SHAPES = [(4, 3, 4), (8, 5, 12), (7, 9, 5), (13, 1, 10), (6, 17, 3), (64, 400, 120),
                (37, 120, 84), (20, 84, 10), (16, 784, 64)]


@pytest.mark.parametrize("rows,n_in,n_out", TILED_SHAPES)
def test_linear_in_tiles_matches_torch(rows, n_in, n_out, dtype, monkeypatch):
    """The numba backend's own kernel for small layers over a batch (not BLAS)."""
    calls = []
    kernel = linear_numba._linear_tiles
    monkeypatch.setattr(linear_numba, "_linear_tiles", lambda *a, work: calls.append(work) or kernel(*a, work=work))
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((rows, n_in)).astype(dtype)
    w = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    check_op(lambda x, w, b: F.linear(x, w, b), TF.linear, [x, w, b])
    check_op(lambda x, w: F.linear(x, w), TF.linear, [x, w])
    assert calls == [rows * n_in * n_out] * 2


def test_linear_leaves_large_layers_over_a_batch_to_blas(monkeypatch):
    monkeypatch.setattr(linear_numba, "_linear_tiles", None)  # calling either would fail
    monkeypatch.setattr(linear_numba, "_linear_rows", None)
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 600)), rng.standard_normal((300, 600))
    check_op(lambda x, w: F.linear(x, w), TF.linear, [x, w])


# (rows, in, out): fewer rows than a tile, outputs in whole and cut groups of
# 4 and tasks of ROWS_PER_TASK, one input feature, and VGG16's fc8 shape
ROW_SHAPES = [(1, 7, 1), (1, 1, 5), (2, 400, 120), (3, 120, 84), (1, 33, 17), (2, 9, 35), (3, 84, 10),
              (1, 4096, 1000)]


@pytest.mark.parametrize("threads", ["parallel", "serial"])
@pytest.mark.parametrize("rows,n_in,n_out", ROW_SHAPES)
def test_linear_by_rows_matches_torch(rows, n_in, n_out, dtype, threads, monkeypatch):
    """The numba backend's dot products for fewer rows than a tile, any
    weight (not BLAS), both compilations."""
    monkeypatch.setattr(linear_numba.tuning, "PARALLEL_MIN_WORK", 0 if threads == "parallel" else 1 << 62)
    calls = []
    kernel = linear_numba._linear_rows
    monkeypatch.setattr(linear_numba, "_linear_rows", lambda *a, work: calls.append(work) or kernel(*a, work=work))
    rng = np.random.default_rng(rows * n_out)
    x = rng.standard_normal((rows, n_in)).astype(dtype)
    w = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    check_op(lambda x, w, b: F.linear(x, w, b), TF.linear, [x, w, b])
    check_op(lambda x, w: F.linear(x, w), TF.linear, [x, w])
    assert calls == [n_in * n_out] * 2


@pytest.mark.parametrize("n_in,n_out", [(0, 5), (7, 0)])
def test_linear_of_an_empty_weight_on_a_batch_the_tiles_would_take(n_in, n_out, backend):
    """No features in (y is the bias) or out (y is empty): nothing to tile."""
    rows = max(64, linear_numba.tuning.LINEAR_TILES_MIN_ROWS)
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((rows, n_in)), rng.standard_normal((n_out, n_in)), rng.standard_normal(n_out)
    check_op(lambda x, w, b: F.linear(x, w, b, backend=backend), TF.linear, [x, w, b])


def test_linear_without_bias(backend):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((4, 5)), rng.standard_normal((3, 5))
    check_op(lambda x, w: F.linear(x, w, backend=backend), TF.linear, [x, w])


@pytest.mark.parametrize("shape", [(2, 3, 5, 5), (4, 10), (7,)])
def test_relu_matches_torch(shape, backend, dtype):
    x = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    x.flat[::3] = 0.0  # exact zeros: the gradient there is 0, as torch's
    check_op(lambda x: F.relu(x, backend=backend), TF.relu, [x],
             backward=lambda g, x: F.relu_backward(g, x, backend=backend))


def test_relu_inplace_writes_into_its_input(backend):
    x = np.array([-1.0, 2.0, -3.0])
    assert F.relu(x, inplace=True, backend=backend) is x
    np.testing.assert_array_equal(x, [0.0, 2.0, 0.0])
    grid = np.array([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]], dtype=np.float32)
    column = grid[:, 1]  # a strided view: written back through the view
    assert F.relu(column, inplace=True, backend=backend) is column
    np.testing.assert_array_equal(grid, [[-1.0, 2.0, -3.0], [4.0, 0.0, 6.0]])


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,dim", [((4, 10), 1), ((4, 10), 0), ((2, 3, 4, 5), 1),
                                       ((2, 3, 4), -1), ((6,), 0)])
def test_softmax_family_matches_torch(name, shape, dim, backend, dtype):
    x = (np.random.default_rng(3).standard_normal(shape) * 5).astype(dtype)
    check_op(lambda x: getattr(F, name)(x, dim, backend=backend),
             lambda x: getattr(TF, name)(x, dim), [x],
             backward=lambda g, x: getattr(F, name + "_backward")(
                 g, getattr(F, name)(x, dim, backend=backend), dim, backend=backend))


def test_log_softmax_survives_large_logits(backend):
    x = np.array([[1000.0, 0.0, -1000.0]])
    assert_close("log_softmax", F.log_softmax(x, 1, backend=backend), TF.log_softmax(torch.tensor(x), 1),
                 atol=1e-12)


def test_softmax_implicit_dim_follows_torch(backend):
    x = np.random.default_rng(4).standard_normal((3, 4))
    with pytest.warns(UserWarning):
        ref = TF.softmax(torch.tensor(x)).numpy()  # torch warns and picks dim=1
    assert_close("softmax", F.softmax(x, backend=backend), ref, atol=1e-12)


def test_dropout_is_identity_at_inference(backend, dtype):
    x = np.random.default_rng(5).standard_normal((3, 50)).astype(dtype)
    y = F.dropout(x, 0.5, training=False, backend=backend)
    np.testing.assert_array_equal(y, TF.dropout(torch.tensor(x), 0.5, training=False).numpy())
    assert y.dtype == dtype


def test_dropout_while_training_zeroes_and_rescales(backend):
    x = np.ones((200, 500))
    y = F.dropout(x, 0.3, training=True, rng=np.random.default_rng(0), backend=backend)
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01            # about 1 - p kept
    assert_close("kept", y[kept], np.full(kept.sum(), 1 / 0.7))    # the kept ones rescaled
    assert abs(y.mean() - 1.0) < 0.01               # so the mean is unchanged, as torch's


@pytest.mark.parametrize("start,end", [(1, -1), (0, -1), (2, 3), (1, 2)])
def test_flatten_matches_torch(start, end, backend):
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    check_op(lambda x: F.flatten(x, start, end, backend=backend),
             lambda x: torch.flatten(x, start, end), [x])


def test_linear_in_tiles_sees_a_weight_changed_in_place():
    """The tile kernel's transposed weight is kept between calls
    (runtime/weight_cache.py) by content: a weight changed in place, in
    its last element, gives torch's numbers at once."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 400)).astype(np.float32)
    w = (rng.standard_normal((120, 400)) / 20).astype(np.float32)
    check_op(lambda x, w: F.linear(x, w), TF.linear, [x, w])
    w[-1, -1] += 1.0
    check_op(lambda x, w: F.linear(x, w), TF.linear, [x, w])
