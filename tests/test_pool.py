"""max_pool2d with switches, max_unpool2d and adaptive_avg_pool2d against
torch, with the tie cases that decide whether switches are right."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import npcnn.functional as F
from parity import assert_close, check_op


def pool_cases(count=40, seed=2):
    """(N, C, (H, W), kernel, stride, padding, ceil_mode): kernels 1-5 and
    11, strides 1-4, padding up to half the kernel, sizes that do not tile."""
    rng = np.random.default_rng(seed)
    cases = [
        (1, 1, (4, 4), 2, 2, 0, False),
        (2, 3, (28, 28), 2, 2, 0, False),      # the MNIST networks (the 2x2 kernel)
        (2, 2, (7, 9), 2, 2, 0, False),        # 2x2 kernel, odd sizes: last row and column dropped
        (1, 2, (7, 9), 2, 2, 0, True),         # ... kept by ceil_mode: the general kernel
        (1, 2, (55, 55), 3, 2, 0, False),      # AlexNet's overlapping 3x3/2
        (2, 2, (13, 13), 3, 2, 1, True),
        (1, 3, (7, 9), (3, 2), (2, 1), (1, 0), True),
        (3, 1, (11, 11), 11, 4, 5, False),
        (1, 1, (5, 5), 1, 3, 0, True),
    ]
    while len(cases) < count:
        k = int(rng.choice([1, 2, 3, 4, 5, 11]))
        pad = int(rng.integers(0, k // 2 + 1))
        H, W = (int(v) for v in rng.integers(max(1, k - 2 * pad), 19, size=2))
        cases.append((int(rng.integers(1, 4)), int(rng.integers(1, 5)), (H, W), k,
                      int(rng.integers(1, 5)), pad, bool(rng.random() < 0.4)))
    return cases


CASES = pool_cases()
INPUTS = {
    "normal": lambda rng, s: rng.standard_normal(s),
    # after a ReLU about half the values are 0: most windows are ties
    "after_relu": lambda rng, s: np.maximum(rng.standard_normal(s), 0),
    "constant": lambda rng, s: np.full(s, 0.5),
    # small integers: ties everywhere, and negative ones next to -inf padding
    "integers": lambda rng, s: rng.integers(-2, 2, size=s).astype(float),
}


@pytest.mark.parametrize("kind", list(INPUTS))
@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_max_pool2d_matches_torch(case, kind, backend, dtype):
    """Values, switches (exactly, ties included) and the gradient."""
    N, C, (H, W), k, s, p, ceil = case
    x = INPUTS[kind](np.random.default_rng(0), (N, C, H, W)).astype(dtype)
    check_op(lambda x: F.max_pool2d(x, k, s, p, ceil_mode=ceil, backend=backend),
             lambda x: TF.max_pool2d(x, k, s, p, ceil_mode=ceil, return_indices=True),
             [x],
             backward=lambda g, x: F.max_pool2d_backward(
                 g, F.max_pool2d(x, k, s, p, ceil_mode=ceil, backend=backend)[1], x.shape, backend=backend))
    values = F.max_pool2d(x, k, s, p, ceil_mode=ceil, return_indices=False, backend=backend)
    np.testing.assert_array_equal(values, F.max_pool2d(x, k, s, p, ceil_mode=ceil, backend=backend)[0])


@pytest.mark.parametrize("kind", list(INPUTS))
@pytest.mark.parametrize("shape", [(2, 3, 10, 12), (1, 2, 11, 9), (3, 1, 2, 2)], ids=str)
def test_the_2x2_pool_with_and_without_switches(shape, kind, backend, dtype):
    """The 2x2 stride-2 kernels (every network here pools this way), odd
    sizes dropping the last row or column; ``return_indices=False`` gives
    torch's output alone."""
    x = INPUTS[kind](np.random.default_rng(2), shape).astype(dtype)
    check_op(lambda x: F.max_pool2d(x, 2, backend=backend), lambda x: TF.max_pool2d(x, 2, return_indices=True),
             [x])
    check_op(lambda x: F.max_pool2d(x, 2, return_indices=False, backend=backend),
             lambda x: TF.max_pool2d(x, 2), [x])


def test_stride_defaults_to_kernel_size(backend):
    x = np.random.default_rng(1).standard_normal((1, 2, 9, 9))
    y, sw = F.max_pool2d(x, 3, backend=backend)
    yt, st = TF.max_pool2d(torch.tensor(x), 3, return_indices=True)
    assert y.shape == (1, 2, 3, 3)
    np.testing.assert_array_equal(sw, st.numpy())


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_unpool_is_the_adjoint_of_pooling(case, backend, dtype):
    """max_unpool2d equals torch's autograd gradient of max_pool2d, which
    adds up values whose windows share a maximum (overlapping pools)."""
    N, C, (H, W), k, s, p, ceil = case
    rng = np.random.default_rng(3)
    x = np.maximum(rng.standard_normal((N, C, H, W)), 0).astype(dtype)
    y, switches = F.max_pool2d(x, k, s, p, ceil_mode=ceil, backend=backend)
    g = rng.standard_normal(y.shape).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    TF.max_pool2d(xt, k, s, p, ceil_mode=ceil).backward(torch.from_numpy(g))
    unpooled = F.max_unpool2d(g, switches, k, s, p, output_size=(H, W), backend=backend)
    assert_close("unpooled", unpooled, xt.grad)


def test_overlapping_windows_add_up(backend):
    """A pixel that is the maximum of two overlapping 3x3/2 windows receives
    the sum of both values (torch's F.max_unpool2d would keep one)."""
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 9.0  # inside all four windows of a 3x3/2 pool
    y, switches = F.max_pool2d(x, 3, 2, backend=backend)
    assert (switches == 2 * 5 + 2).all() and y.shape == (1, 1, 2, 2)
    u = F.max_unpool2d(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), switches, 3, 2,
                       output_size=(5, 5), backend=backend)
    assert u[0, 0, 2, 2] == 10.0 and np.count_nonzero(u) == 1


@pytest.mark.parametrize("case", [c for c in CASES if (c[3] if isinstance(c[3], int) else c[3][0]) <=
                                  (c[4] if isinstance(c[4], int) else c[4][0]) and not c[6]][:12])
def test_unpool_equals_torch_max_unpool_without_overlap(case, backend, dtype):
    N, C, (H, W), k, s, p, ceil = case
    x = np.random.default_rng(4).standard_normal((N, C, H, W)).astype(dtype)
    y, switches = F.max_pool2d(x, k, s, p, backend=backend)
    ours = F.max_unpool2d(y, switches, k, s, p, output_size=(H, W), backend=backend)
    ref = TF.max_unpool2d(torch.tensor(y), torch.tensor(switches), k, s, p, output_size=(H, W))
    np.testing.assert_array_equal(ours, ref.numpy())


def test_unpool_places_values_only_at_switches(backend):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 8, 8))
    y, switches = F.max_pool2d(x, 2, backend=backend)
    u = F.max_unpool2d(y, switches, 2, backend=backend)
    assert u.shape == x.shape
    flat = u.reshape(6, 64)
    mask = np.zeros_like(flat, dtype=bool)
    np.put_along_axis(mask, switches.reshape(6, -1), True, axis=1)
    assert (flat[~mask] == 0).all()
    np.testing.assert_array_equal(np.take_along_axis(flat, switches.reshape(6, -1), 1), y.reshape(6, -1))


@pytest.mark.parametrize("case", [CASES[1], CASES[4], CASES[5]], ids=["2x2", "3x3/2", "3x3/2-padded"])
def test_unpool_into_out(case, backend, dtype):
    """``out=`` gets the result (and is returned), whatever it held before:
    every position is written, zeros included, overlapping windows summed."""
    N, C, (H, W), k, s, p, ceil = case
    rng = np.random.default_rng(8)
    y, switches = F.max_pool2d(rng.standard_normal((N, C, H, W)).astype(dtype), k, s, p, ceil_mode=ceil, backend=backend)
    g = rng.standard_normal(y.shape).astype(dtype)
    fresh = F.max_unpool2d(g, switches, k, s, p, output_size=(H, W), backend=backend)
    out = np.full((N, C, H, W), np.nan, dtype=dtype)
    assert F.max_unpool2d(g, switches, k, s, p, output_size=(H, W), out=out, backend=backend) is out
    np.testing.assert_array_equal(out, fresh)
    out[...] = 7
    assert F.max_pool2d_backward(g, switches, (H, W), out=out, backend=backend) is out
    np.testing.assert_array_equal(out, fresh)


def test_pool_unpool_adjoint_identity(backend):
    """<gather(x, switches), y> == <x, unpool(y, switches)> for fixed switches."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 2, 13, 13))
    _, switches = F.max_pool2d(x, 3, 2, 1, ceil_mode=True, backend=backend)
    y = rng.standard_normal(switches.shape)
    gathered = np.take_along_axis(x.reshape(4, -1), switches.reshape(4, -1), 1)
    lhs = np.vdot(gathered, y.reshape(4, -1))
    rhs = np.vdot(x, F.max_unpool2d(y, switches, 3, 2, 1, output_size=(13, 13), backend=backend))
    assert abs(lhs - rhs) <= 1e-10 * max(1, abs(lhs))


@pytest.mark.parametrize("size,out", [((7, 7), (7, 7)), ((13, 13), (6, 6)), ((5, 9), (3, 4)),
                                      ((6, 6), (6, 6)), ((1, 1), (7, 7)), ((10, 3), (4, 5))])
def test_adaptive_avg_pool2d_matches_torch(size, out, backend, dtype):
    x = np.random.default_rng(7).standard_normal((2, 3) + size).astype(dtype)
    check_op(lambda x: F.adaptive_avg_pool2d(x, out, backend=backend),
             lambda x: TF.adaptive_avg_pool2d(x, out), [x],
             backward=lambda g, x: F.adaptive_avg_pool2d_backward(g, x.shape, backend=backend))


def test_numerical_gradient_of_pooling(backend):
    """Distinct values (no ties), so the max is differentiable everywhere."""
    from test_conv import numerical_gradient
    rng = np.random.default_rng(8)
    x = rng.permutation(2 * 7 * 7).reshape(1, 2, 7, 7) / 10.0
    g = rng.standard_normal((1, 2, 4, 4))
    loss = lambda: np.vdot(F.max_pool2d(x, 3, 2, 1, backend=backend)[0], g)
    _, sw = F.max_pool2d(x, 3, 2, 1, backend=backend)
    # a central difference with eps 1e-6: good to about 1e-6
    assert_close("gradient", F.max_pool2d_backward(g, sw, x.shape, backend=backend),
                 numerical_gradient(loss, x), atol=1e-6, rtol=1e-6)


def test_unpooling_into_a_kept_buffer(backend, monkeypatch):
    """``reuse=True``: the same buffer from call to call, the same numbers
    as a fresh array; a fresh array where grad_output lies in the buffer
    or the result is above the size limit."""
    from npcnn.ops.runtime import tuning
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 8, 8))
    y, switches = F.max_pool2d(x, 2, backend=backend)
    fresh = F.max_pool2d_backward(y, switches, x.shape, backend=backend)
    first = F.max_pool2d_backward(y, switches, x.shape, reuse=True, backend=backend)
    assert_close("first", first, fresh)
    second = F.max_pool2d_backward(2 * y, switches, x.shape, reuse=True, backend=backend)
    assert np.shares_memory(first, second)                   # overwritten: the same buffer
    assert_close("second", second, 2 * fresh)
    inside = second[:, :, :4, :4].copy()                     # an input read from the buffer ...
    view = second.reshape(-1)[:inside.size].reshape(inside.shape)
    again = F.max_pool2d_backward(view, switches, x.shape, reuse=True, backend=backend)
    assert not np.shares_memory(again, second)               # ... goes to a fresh array
    monkeypatch.setattr(tuning, "REUSED_BUFFER_MAX_BYTES", x.nbytes - 1)
    assert not np.shares_memory(F.max_pool2d_backward(y, switches, x.shape, reuse=True, backend=backend), second)


def test_unpooling_spreads_over_threads_by_the_pixels_it_writes():
    """An unpooling writes its whole output plane (the zeros too), so its
    threads are chosen by the output's size: VGG16's pool1 and LeNet-5's
    pool_1 at batch 500 (a quarter of that many pooled values) run in
    parallel, one LeNet-5 digit stays on one thread."""
    from npcnn.ops import pool_numba
    unpool = pool_numba._unpool_planes
    assert pool_numba.unpool_work((1, 64, 112, 112), (224, 224)) == 64 * 224 * 224
    assert not unpool.serial_at(pool_numba.unpool_work((1, 64, 112, 112), (224, 224)))
    assert not unpool.serial_at(pool_numba.unpool_work((500, 6, 14, 14), (28, 28)))
    assert unpool.serial_at(pool_numba.unpool_work((1, 6, 14, 14), (28, 28)))


@pytest.mark.parametrize("threads", ["serial", "parallel"])
@pytest.mark.parametrize("plane,value", [(0, -1), (5, 16), (11, 1 << 40), (11, -(1 << 40))],
                         ids=["first-negative", "middle-past", "last-far", "last-far-negative"])
@pytest.mark.parametrize("op", ["max_unpool2d", "max_pool2d_backward"])
def test_a_switch_outside_the_plane_is_refused(op, plane, value, threads, backend, monkeypatch):
    """One switch outside the 4x4 plane, in the first, a middle or the last
    of 12 planes, is refused by name whichever backend and compilation
    (the numba kernel tests each switch as it scatters; nothing is written
    outside the output)."""
    from npcnn.ops.runtime import tuning
    monkeypatch.setattr(tuning, "PARALLEL_MIN_WORK", 0 if threads == "parallel" else 1 << 62)
    y, switches = F.max_pool2d(np.arange(192.0).reshape(2, 6, 4, 4), 2, backend=backend)
    switches.reshape(12, 4)[plane, 3] = value
    out = np.zeros((3, 2, 6, 4, 4))  # the output is the middle one: a write past it would show
    call = (lambda: F.max_unpool2d(y, switches, 2, out=out[1], backend=backend)) if op == "max_unpool2d" \
        else (lambda: F.max_pool2d_backward(y, switches, (4, 4), out=out[1], backend=backend))
    low, high = switches.min(), switches.max()
    with pytest.raises(ValueError, match=rf"{op}: indices range over \[{low}, {high}\] but the output "
                                         r"plane 4x4 holds 16 positions"):
        call()
    assert not out[0].any() and not out[2].any()
