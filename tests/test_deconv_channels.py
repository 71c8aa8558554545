"""The deconvnet's channel-by-channel conv step (signals with few nonzero
channels) equals the dense transposed convolution, whatever the pattern of
nonzero channels, and is the path such signals take."""
import numpy as np
import pytest

import npcnn
from npcnn import deconv
from npcnn.data import load_mnist, to_tensor


@pytest.fixture(scope="module")
def recorded():
    model = npcnn.build("lenet5", seed=4, dtype=np.float64)
    x = to_tensor(load_mnist("mnist5k", "test", verbose=False).images[:3], dtype=np.float64)
    _, acts = model.forward(x, record=True)
    return model, acts


def _dense(model, acts, layer, signal, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(deconv, "_FEW_CHANNELS", 10**9)  # never channel by channel (but all-zero signals)
        return deconv.backward_from(model, acts, layer, signal)


def _signal(acts, layer, repeat, pattern, seed=0):
    """repeat*N signals like acts[layer], nonzero only where pattern(k, c) holds."""
    rng = np.random.default_rng(seed)
    N, C = acts[layer].shape[:2]
    signal = rng.standard_normal((repeat * N,) + acts[layer].shape[1:])
    for k in range(repeat * N):
        for c in range(C):
            if not pattern(k, c):
                signal[k, c] = 0
    return signal


PATTERNS = {
    "one channel per signal": lambda k, c: c == k % 16,
    "two channels per signal": lambda k, c: c in (k % 16, (k + 5) % 16),
    "the same channel in every signal": lambda k, c: c == 7,
    "some signals all zero": lambda k, c: k % 3 == 0 and c == k % 16,
}


@pytest.mark.parametrize("pattern", PATTERNS, ids=list(PATTERNS))
def test_channel_by_channel_equals_dense(pattern, recorded, monkeypatch):
    model, acts = recorded
    signal = _signal(acts, "pool_2", 4, PATTERNS[pattern])
    used = []
    original = deconv._conv_transpose_active
    monkeypatch.setattr(deconv, "_conv_transpose_active", lambda *a: used.append(1) or original(*a))
    ours = deconv.backward_from(model, acts, "pool_2", signal)
    assert used == [1]  # conv_2's step ran channel by channel; conv_1's, below it, dense
    dense = _dense(model, acts, "pool_2", signal, monkeypatch)
    np.testing.assert_allclose(ours, dense, rtol=1e-12, atol=1e-13)
    assert np.abs(dense).max() > 0


def test_an_all_zero_signal_projects_to_zeros(recorded):
    model, acts = recorded
    out = deconv.backward_from(model, acts, "pool_2", np.zeros((6,) + acts["pool_2"].shape[1:]))
    assert out.shape == (6,) + acts.input.shape[1:]
    assert not out.any()


def test_dense_signals_stay_dense(recorded, monkeypatch):
    """A signal in every channel goes through the dense call."""
    model, acts = recorded
    monkeypatch.setattr(deconv, "_conv_transpose_active", lambda *a: pytest.fail("went channel by channel"))
    deconv.backward_from(model, acts, "pool_2", _signal(acts, "pool_2", 1, lambda k, c: True))
