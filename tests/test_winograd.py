"""The numba backend's Winograd path (3x3, stride 1, >= 64 channels) against
torch: conv2d and conv_transpose2d, odd and non-square sizes, padding 0-2,
bands of tile rows that cross images, and both kernel compilations.

Every case asserts that the Winograd path is the one taken, so a change of
the thresholds cannot turn these into tests of the im2col path; the NumPy
reference (npcnn/ops/winograd.py) equals the direct sum."""
import numpy as np
import pytest
import torch.nn.functional as TF

import npcnn.functional as F
from npcnn.ops.runtime import tuning
from npcnn.ops import conv, winograd
from parity import assert_close, check_op


def assert_winograd(op, x, w, pad):
    assert F.conv_path(op, x, w, 1, pad) == "winograd", (op, x.shape, w.shape)


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
def test_matches_torch(case, op, dtype, layer_loop):
    N, C, Fo, H, W, pad = case
    ours, theirs, weight_shape = OPS[op]
    x, w, b = _inputs(N, C, H, W, weight_shape(C, Fo), dtype)
    assert_winograd(op, x, w, pad)
    check_op(lambda x, w, b: ours(x, w, b, 1, pad, backend="numba"),
             lambda x, w, b: theirs(x, w, b, 1, pad), [x, w, b])


def test_without_bias():
    x, w, _ = _inputs(1, 64, 24, 24, (64, 64, 3, 3), np.float64)
    assert_winograd("conv2d", x, w, 1)
    check_op(lambda x, w: F.conv2d(x, w, None, 1, 1, backend="numba"),
             lambda x, w: TF.conv2d(x, w, None, 1, 1), [x, w])


@pytest.fixture(params=["bands", "by thread"])
def layer_loop(request, monkeypatch):
    """Each of ``_convolve``'s two loops: band by band (three launches a
    band), or the whole layer in one parallel loop of tile rows."""
    monkeypatch.setattr(tuning, "WINOGRAD_BY_THREAD_MAX_FILTER_BYTES", 0 if request.param == "bands" else 1 << 40)
    return request.param


@pytest.mark.parametrize("band_rows", [1, 3, 5])
def test_bands_that_cross_images(band_rows, layer_loop, monkeypatch):
    """Three images of 7 tile rows in bands (or one thread's tasks) of 1, 3
    and 5 rows: they start and end inside an image and span two. The task of
    one row has 7 tiles, less than the vectors of a register tile: it takes
    rows enough for those (``_convolve``)."""
    N, C, Fo, H, W = 3, 64, 64, 14, 13
    tw = (W - 2 + 2 + 1) // 2
    monkeypatch.setattr(tuning, "WINOGRAD_BAND_BYTES", band_rows * 16 * (C + Fo) * tw * 4)
    monkeypatch.setattr(tuning, "WINOGRAD_BY_THREAD_BYTES", band_rows * 16 * (C + Fo) * tw * 4)
    x, w, b = _inputs(N, C, H, W, (Fo, C, 3, 3), np.float32)
    assert_winograd("conv2d", x, w, 1)
    check_op(lambda x, w, b: F.conv2d(x, w, b, 1, 1, backend="numba"),
             lambda x, w, b: TF.conv2d(x, w, b, 1, 1), [x, w, b])
    check_op(lambda x, w, b: F.conv2d_relu(x, w, b, 1, 1, backend="numba"),
             lambda x, w, b: TF.relu(TF.conv2d(x, w, b, 1, 1)), [x, w, b])


def test_which_filters_go_through_the_layer_by_thread(monkeypatch):
    """Filters transformed into at most WINOGRAD_BY_THREAD_MAX_FILTER_BYTES
    take the one loop; larger ones the bands."""
    from npcnn.ops import winograd_numba
    calls = []
    kernel = winograd_numba._layer_by_thread
    monkeypatch.setattr(winograd_numba, "_layer_by_thread", lambda *a, work: calls.append(work) or kernel(*a, work=work))
    x, w, b = _inputs(1, 64, 12, 12, (80, 64, 3, 3), np.float32)
    monkeypatch.setattr(tuning, "WINOGRAD_BY_THREAD_MAX_FILTER_BYTES", 16 * 80 * 64 * 4)
    F.conv2d(x, w, b, 1, 1)
    assert len(calls) == 1
    monkeypatch.setattr(tuning, "WINOGRAD_BY_THREAD_MAX_FILTER_BYTES", 16 * 80 * 64 * 4 - 1)
    F.conv2d(x, w, b, 1, 1)
    assert len(calls) == 1


@pytest.mark.parametrize("threads", ["parallel", "serial"])
def test_both_compilations(threads, layer_loop, monkeypatch):
    monkeypatch.setattr(tuning, "PARALLEL_MIN_WORK", 0 if threads == "parallel" else 1 << 62)
    x, w, b = _inputs(2, 64, 17, 16, (64, 64, 3, 3), np.float64)
    assert_winograd("conv2d", x, w, 1)
    assert_winograd("conv_transpose2d", x, w, 1)
    check_op(lambda x, w, b: F.conv2d(x, w, b, 1, 1, backend="numba"),
             lambda x, w, b: TF.conv2d(x, w, b, 1, 1), [x, w, b])
    check_op(lambda x, w, b: F.conv_transpose2d(x, w, b, 1, 1, backend="numba"),
             lambda x, w, b: TF.conv_transpose2d(x, w, b, 1, 1), [x, w, b])


def test_the_paths_it_leaves_alone():
    """Stride 2, 5x5 filters, few input or output channels or few tiles go to
    the other paths."""
    x = np.zeros((1, 64, 32, 32), np.float32)

    def path(x, w_shape, stride=1, op="conv2d"):
        return F.conv_path(op, x, np.zeros(w_shape, np.float32), stride, 1)

    assert path(x, (64, 64, 3, 3)) == "winograd"
    assert path(x, (64, 64, 3, 3), stride=2) == "im2col"
    assert path(x, (64, 64, 5, 5)) == "im2col"
    assert path(x[:, :32], (64, 32, 3, 3)) == "im2col"
    assert path(x, (32, 64, 3, 3)) == "im2col"
    assert path(x, (64, 3, 3, 3), op="conv_transpose2d") != "winograd"
    assert path(x[:, :, :7, :7], (64, 64, 3, 3)) == "im2col"
    assert path(x[:, :, :7, :7], (64, 64, 3, 3), op="conv_transpose2d") != "winograd"
    assert path(x[:, :, :14, :14], (64, 64, 3, 3)) == "winograd"     # VGG16's conv5 at 224x224


# (N, C, F, H, W, padding): small enough for the loops of the direct sum
REFERENCE = [(1, 1, 1, 4, 4, 0), (2, 3, 4, 5, 7, 1), (1, 2, 3, 6, 5, 2), (2, 4, 2, 3, 3, 0)]


@pytest.mark.parametrize("case", REFERENCE, ids=[str(c) for c in REFERENCE])
def test_the_numpy_reference_equals_the_direct_sum(case):
    """F(2x2, 3x3) in NumPy (npcnn/ops/winograd.py) against conv.conv2d,
    whole and half tiles, padding 0-2, with and without bias."""
    N, C, Fo, H, W, pad = case
    x, w, b = _inputs(N, C, H, W, (Fo, C, 3, 3), np.float64, seed=N + C + H)
    for bias in (b, None):
        ours = winograd.conv2d_3x3(x, w, bias, (pad, pad))
        assert_close("winograd reference", ours, conv.conv2d(x, w, bias, (1, 1), (pad, pad)))


# -- the transformed filters kept between calls (npcnn/ops/runtime/weight_cache.py)

@pytest.fixture
def empty_cache():
    from npcnn.ops.runtime import weight_cache
    weight_cache.clear()
    yield weight_cache
    weight_cache.clear()


def test_the_same_weights_are_transformed_once(empty_cache):
    """A second call with the same weights, or with a copy of them, gets the
    kept transform (the same read-only array); a weight of the same shape
    with other values gets its own."""
    calls = []

    def compute(w):
        calls.append(w.copy())
        return w * 2

    w = np.arange(12.0).reshape(3, 4)
    first = empty_cache.derived("test", w, compute)
    assert empty_cache.derived("test", w, compute) is first
    assert empty_cache.derived("test", w.copy(), compute) is first
    assert not first.flags.writeable
    other = empty_cache.derived("test", w + 1, compute)
    assert other is not first and len(calls) == 2
    assert empty_cache.derived("test", w, compute) is first and len(calls) == 2
    assert empty_cache.derived("another name", w, compute) is not first and len(calls) == 3
    zero, negative_zero = np.zeros(3), -np.zeros(3)       # equal as numbers, not as bits
    assert empty_cache.derived("test", zero, compute) is not empty_cache.derived("test", negative_zero, compute)


def test_a_weight_changed_in_place_or_replaced_is_transformed_again(empty_cache):
    """Never a stale transform: a writeable weight changed in place (in its
    last element, and from 0.0 to -0.0, which compare equal as numbers),
    and new weights at the address of freed ones, each give torch's
    numbers on the Winograd path, forward and transposed."""
    x, w, b = _inputs(2, 64, 24, 20, (64, 64, 3, 3), np.float32)
    for op in OPS:
        ours, theirs, _ = OPS[op]
        assert_winograd(op, x, w, 1)
        check_op(lambda x, w, b: ours(x, w, b, 1, 1), lambda x, w, b: theirs(x, w, b, 1, 1), [x, w, b])
        w.reshape(-1)[-1] += 1.0
        check_op(lambda x, w, b: ours(x, w, b, 1, 1), lambda x, w, b: theirs(x, w, b, 1, 1), [x, w, b])
        w[0, 0] = 0.0
        ours(x, w, b, 1, 1)
        w[0, 0] = -0.0
        check_op(lambda x, w, b: ours(x, w, b, 1, 1), lambda x, w, b: theirs(x, w, b, 1, 1), [x, w, b])
    rng = np.random.default_rng(11)
    for _ in range(5):   # fresh weights, typically at the address (and id) the last ones had
        fresh = rng.standard_normal((64, 64, 3, 3)).astype(np.float32) / 24
        check_op(lambda x, w, b: F.conv2d(x, w, b, 1, 1), lambda x, w, b: TF.conv2d(x, w, b, 1, 1), [x, fresh, b])
        del fresh


def test_the_cache_keeps_to_its_bytes(empty_cache, monkeypatch):
    """Past ``tuning.WEIGHT_CACHE_BYTES`` the least recently used entries
    go; a value larger than the whole budget is returned and not kept."""
    monkeypatch.setattr(tuning, "WEIGHT_CACHE_BYTES", 3 * 2 * 800)     # three entries of 100 + 100 doubles
    weights = [np.full(100, float(k)) for k in range(5)]
    values = [empty_cache.derived("test", w, lambda w: w + 1) for w in weights]
    assert empty_cache.held_bytes() == 3 * 1600
    assert empty_cache.derived("test", weights[4], lambda w: w + 1) is values[4]
    assert empty_cache.derived("test", weights[0], lambda w: w + 1) is not values[0]
    big = np.zeros(1000)
    assert empty_cache.derived("test", big, lambda w: w + 1) is not empty_cache.derived("test", big, lambda w: w + 1)
    assert empty_cache.held_bytes() <= tuning.WEIGHT_CACHE_BYTES


# -- the 16 products in one kernel (npcnn/ops/plane_products_numba.py)

@pytest.mark.parametrize("threads", ["parallel", "serial"])
def test_the_plane_products_equal_matmul(threads, dtype, monkeypatch):
    """M[e] = U[e] @ V[e] for every row count 1-9 (whole and cut tiles of 4
    rows) and column counts of 1 to 6 vectors (whole tiles of 4 vectors and
    the vectors past them), float32 and float64, both compilations, with U's
    planes one each, one for all, or transposed; the skew columns of the
    planes and the rows past F are left alone."""
    from npcnn.ops import plane_products_numba
    from npcnn.ops.runtime import simd
    monkeypatch.setattr(tuning, "PARALLEL_MIN_WORK", 0 if threads == "parallel" else 1 << 62)
    rng = np.random.default_rng(3)
    L = simd.lanes(dtype)
    for Fo, C, vectors in [(1, 3, 1), (4, 5, 4), (5, 7, 5), (6, 2, 2), (7, 9, 6), (8, 1, 3), (9, 4, 8)]:
        Pp = vectors * L
        U = rng.standard_normal((16, Fo * C)).astype(dtype)
        V = rng.standard_normal((16, C * Pp + 7)).astype(dtype)
        M = np.full((16, Fo * Pp + 7), 99.0, dtype=dtype)
        plane_products_numba.products(U, V, M, Fo, C, Pp)
        want = U.reshape(16, Fo, C) @ V[:, :C * Pp].reshape(16, C, Pp)
        assert_close(f"F={Fo} C={C} Pp={Pp}", M[:, :Fo * Pp].reshape(16, Fo, Pp), want)
        assert (M[:, Fo * Pp:] == 99.0).all()
        # one plane of U for every plane of V (im2col's filters, one plane per image) ...
        plane_products_numba.products(U[:1], V, M, Fo, C, Pp)
        assert_close(f"shared F={Fo} C={C} Pp={Pp}", M[:, :Fo * Pp].reshape(16, Fo, Pp),
                     U[0].reshape(Fo, C) @ V[:, :C * Pp].reshape(16, C, Pp))
        # ... and read transposed, from (C, F) planes (col2im's W2^T)
        Ut = np.ascontiguousarray(U.reshape(16, Fo, C).transpose(0, 2, 1)).reshape(16, C * Fo)
        M[:] = 99.0
        plane_products_numba.products(Ut, V, M, Fo, C, Pp, transposed=True)
        assert_close(f"transposed F={Fo} C={C} Pp={Pp}", M[:, :Fo * Pp].reshape(16, Fo, Pp), want)
        assert (M[:, Fo * Pp:] == 99.0).all()
