"""The deconvnet's conv step on mostly-zero signals (npcnn/sparse_signal.py)
equals the dense transposed convolution, whatever the pattern of nonzeros:
channels, boxes at the edges and corners of the map, several signals, none.
Each case also checks that the shortcut it is about was taken."""
import numpy as np
import pytest

import npcnn
from npcnn import deconv, sparse_signal
from npcnn.data import load_mnist, to_tensor
from npcnn.ops import conv_direct_numba
from parity import assert_close


class NoShortcuts(sparse_signal.Shortcuts):
    def __init__(self):
        self.box = self.channels = False


@pytest.fixture(scope="module", params=["lenet5", "simplecnn"])
def recorded(request):
    """LeNet-5 (5x5 filters, padding 2 then 0) or SimpleCNN (3x3, padding 1)."""
    model = npcnn.build(request.param, seed=4, dtype=np.float64)
    x = to_tensor(load_mnist("mnist5k", "test", verbose=False).images[:3], dtype=np.float64)
    _, acts = model.forward(x, record=True)
    return model, acts


def _last_pool(model):
    return [n for n in deconv.projectable_layers(model) if n.startswith(("pool", "max_pool"))][-1]


def _dense(model, acts, layer, signal, monkeypatch):
    """The walk with no shortcut, on the numpy backend (the numba one's
    direct kernel leaves zero channels out by itself)."""
    with monkeypatch.context() as m:
        m.setattr(sparse_signal, "Shortcuts", NoShortcuts)
        m.setattr(model, "backend", "numpy")
        return deconv.backward_from(model, acts, layer, signal)


def _spy(monkeypatch, name):
    calls = []
    original = getattr(sparse_signal, name)
    monkeypatch.setattr(sparse_signal, name, lambda *a: calls.append(1) or original(*a))
    return calls


def _signal(acts, layer, repeat, keep, seed=0):
    """repeat*N random signals like acts[layer], zero where keep(k, c, i, j) is false."""
    shape = (repeat * acts[layer].shape[0],) + acts[layer].shape[1:]
    signal = np.random.default_rng(seed).standard_normal(shape)
    k, c, i, j = np.indices(shape)
    return np.where(keep(k, c, i, j), signal, 0.0)


CHANNELS = {
    "one channel per signal": lambda k, c, i, j: c == k % 8,
    "two channels per signal": lambda k, c, i, j: (c == k % 8) | (c == (k + 5) % 8),
    "the same channel in every signal": lambda k, c, i, j: c == 7,
    "some signals all zero": lambda k, c, i, j: (k % 3 == 0) & (c == k % 8),
}


@pytest.mark.parametrize("pattern", CHANNELS, ids=list(CHANNELS))
def test_channel_by_channel_equals_dense(pattern, recorded, monkeypatch):
    """The numpy backend filters channel by channel (one call per channel)."""
    model, acts = recorded
    monkeypatch.setattr(model, "backend", "numpy")
    layer = _last_pool(model)
    signal = _signal(acts, layer, 4, CHANNELS[pattern])
    used = _spy(monkeypatch, "_by_channel")
    ours = deconv.backward_from(model, acts, layer, signal)
    assert used == [1]  # the first conv step below; the one after it is dense
    dense = _dense(model, acts, layer, signal, monkeypatch)
    assert_close("sparse", ours, dense, rtol=1e-12, atol=1e-13)
    assert np.abs(dense).max() > 0


@pytest.mark.parametrize("pattern", CHANNELS, ids=list(CHANNELS))
def test_the_direct_kernel_leaves_zero_channels_out(pattern, recorded, monkeypatch):
    """The numba backend's direct kernel (LeNet-5, SimpleCNN) leaves out the
    zero channels of each signal itself: one call, not one per channel."""
    model, acts = recorded
    assert model.backend == "numba"
    layer = _last_pool(model)
    signal = _signal(acts, layer, 4, CHANNELS[pattern])
    monkeypatch.setattr(sparse_signal, "_by_channel", lambda *a: pytest.fail("went channel by channel"))
    counts = []  # the kernel's count of active channels per signal, call by call
    for compiled in ("serial", "parallel"):
        run = getattr(conv_direct_numba._conv_direct, compiled)
        monkeypatch.setattr(conv_direct_numba._conv_direct, compiled,
                            lambda *a, _run=run: (_run(*a), counts.append(a[2].copy()))[0])
    ours = deconv.backward_from(model, acts, layer, signal)
    below = signal.reshape(signal.shape[0], signal.shape[1], -1).any(axis=2).sum(axis=1)  # channels per signal
    np.testing.assert_array_equal(counts[0], below)  # the first conv step filtered only those
    dense = _dense(model, acts, layer, signal, monkeypatch)
    assert_close("sparse", ours, dense, rtol=1e-12, atol=1e-13)
    assert np.abs(dense).max() > 0


def test_every_single_unit_of_a_layer(recorded, monkeypatch):
    """One unit per signal, at every position of the map in turn (corners and
    edges clip the box's output against the padding), several channels:
    the box shortcut, then channel by channel inside it."""
    model, acts = recorded
    layer = _last_pool(model)
    N, C, H, W = acts[layer].shape
    boxes = _spy(monkeypatch, "_in_box")
    for i in range(H):
        for j in range(W):
            signal = _signal(acts, layer, 1, lambda k, c, ii, jj: (ii == i) & (jj == j) & (c == (i + j) % C),
                             seed=i * W + j)
            ours = deconv.backward_from(model, acts, layer, signal)
            dense = _dense(model, acts, layer, signal, monkeypatch)
            assert_close(f"unit ({i}, {j})", ours, dense, rtol=1e-12, atol=1e-13)
    assert len(boxes) >= H * W  # at least the first conv step of every walk went by the box


def test_a_box_of_several_units_and_signals(recorded, monkeypatch):
    model, acts = recorded
    layer = [n for n in deconv.projectable_layers(model) if n.startswith("conv")][-1]
    H, W = acts[layer].shape[2:]
    signal = _signal(acts, layer, 2, lambda k, c, i, j: (i >= 1) & (i < H // 2) & (j >= 2) & (j < 2 + W // 3))
    boxes = _spy(monkeypatch, "_in_box")
    ours = deconv.backward_from(model, acts, layer, signal)
    assert boxes
    assert_close("sparse", ours, _dense(model, acts, layer, signal, monkeypatch), rtol=1e-12, atol=1e-13)


def test_an_all_zero_signal_projects_to_zeros(recorded):
    model, acts = recorded
    layer = _last_pool(model)
    out = deconv.backward_from(model, acts, layer, np.zeros((6,) + acts[layer].shape[1:]))
    assert out.shape == (6,) + acts.input.shape[1:]
    assert not out.any()


def test_dense_signals_take_the_dense_call(recorded, monkeypatch):
    model, acts = recorded
    monkeypatch.setattr(sparse_signal, "_by_channel", lambda *a: pytest.fail("went channel by channel"))
    monkeypatch.setattr(sparse_signal, "_in_box", lambda *a: pytest.fail("went by the box"))
    layer = _last_pool(model)
    deconv.backward_from(model, acts, layer, _signal(acts, layer, 1, lambda k, c, i, j: i >= 0))


def test_the_box_of_the_nonzeros():
    """_box (planes ORed by a jitted loop) equals numpy's any over the
    leading axes: a NaN counts as nonzero, an all-zero batch has no box,
    and a strided signal is read as it stands."""
    from npcnn.sparse_signal import _box
    rng = np.random.default_rng(4)
    for shape in ((64, 16, 10, 10), (3, 2, 7, 9), (1, 1, 1, 1)):
        g = (rng.random(shape) < 0.02) * rng.standard_normal(shape)
        g.flat[rng.integers(g.size)] = 1.0
        nonzero = g.any(axis=(0, 1))
        rows, cols = np.flatnonzero(nonzero.any(axis=1)), np.flatnonzero(nonzero.any(axis=0))
        assert _box(g) == (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1)
        assert _box(np.asfortranarray(g)) == _box(g)
    g = np.zeros((2, 3, 5, 6), dtype=np.float32)
    assert _box(g) is None
    g[1, 2, 3, 1] = np.nan
    assert _box(g) == (3, 4, 1, 2)
