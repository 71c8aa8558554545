"""linear, relu, softmax, log_softmax, dropout and flatten against torch."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import npcnn.functional as F
from parity import TOL, check_op


@pytest.mark.parametrize("shape,out", [((1, 7), 3), ((5, 400), 120), ((2, 3, 9), 4), ((6,), 2)])
def test_linear_matches_torch(shape, out, backend, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    w = (rng.standard_normal((out, shape[-1])) / np.sqrt(shape[-1])).astype(dtype)
    b = rng.standard_normal(out).astype(dtype)
    check_op(lambda x, w, b: F.linear(x, w, b, backend=backend), TF.linear, [x, w, b],
             backward=lambda g, x, w, b: F.linear_backward(g, x, w, backend=backend), **TOL[dtype])


def test_linear_without_bias(backend):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((4, 5)), rng.standard_normal((3, 5))
    check_op(lambda x, w: F.linear(x, w, backend=backend), TF.linear, [x, w], **TOL[np.float64])


@pytest.mark.parametrize("shape", [(2, 3, 5, 5), (4, 10), (7,)])
def test_relu_matches_torch(shape, backend, dtype):
    x = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    x.flat[::3] = 0.0  # exact zeros: the gradient there is 0, as torch's
    check_op(lambda x: F.relu(x, backend=backend), TF.relu, [x],
             backward=lambda g, x: F.relu_backward(g, x, backend=backend), **TOL[dtype])


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
                 g, getattr(F, name)(x, dim, backend=backend), dim, backend=backend),
             **TOL[dtype])


def test_log_softmax_survives_large_logits(backend):
    x = np.array([[1000.0, 0.0, -1000.0]])
    np.testing.assert_allclose(F.log_softmax(x, 1, backend=backend),
                               TF.log_softmax(torch.tensor(x), 1).numpy(), atol=1e-12)


def test_softmax_implicit_dim_follows_torch(backend):
    x = np.random.default_rng(4).standard_normal((3, 4))
    with pytest.warns(UserWarning):
        ref = TF.softmax(torch.tensor(x)).numpy()  # torch warns and picks dim=1
    np.testing.assert_allclose(F.softmax(x, backend=backend), ref, atol=1e-12)


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
    np.testing.assert_allclose(y[kept], 1 / 0.7)    # the kept ones rescaled
    assert abs(y.mean() - 1.0) < 0.01               # so the mean is unchanged, as torch's


@pytest.mark.parametrize("start,end", [(1, -1), (0, -1), (2, 3), (1, 2)])
def test_flatten_matches_torch(start, end, backend):
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    check_op(lambda x: F.flatten(x, start, end, backend=backend),
             lambda x: torch.flatten(x, start, end), [x], **TOL[np.float64])
