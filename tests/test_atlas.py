"""Class averages, the measures built on them, the atlas figures and command."""
import re

import numpy as np
import pytest
import torch
from PIL import Image

import bridge
from npcnn.analysis import (channel_correlation, class_averages, class_selectivity, near_duplicates,
                            select_per_class)
from npcnn.data import load_mnist, to_tensor
from vis import atlas_figures as figures
from vis.cli import main


@pytest.fixture(scope="module")
def data():
    test = load_mnist("mnist5k", "test", verbose=False)
    return to_tensor(test.images), test.labels


@pytest.fixture(scope="module")
def twins():
    torch.manual_seed(0)
    module = bridge.torch_model("simplecnn")
    return module, bridge.from_torch(module)


def test_select_per_class_takes_the_first_n_of_each_class():
    y = np.array([3, 1, 3, 3, 0, 1, 3])
    np.testing.assert_array_equal(select_per_class(y, 2, 4), [0, 1, 2, 4, 5])
    keep = np.array([True, True, False, True, True, True, True])
    np.testing.assert_array_equal(select_per_class(y, 2, 4, keep), [0, 1, 3, 4, 5])


def test_class_averages_equal_torch_forward_hooks(data, twins):
    """float32, 1e-5: npcnn's streamed averages against torch's activations
    of the same samples averaged directly."""
    x, y = data
    module, model = twins
    avg = class_averages(model, x, y, per_class=37, batch_size=64)
    index = select_per_class(y, 37)
    _, acts = bridge.torch_activations(module, torch.from_numpy(x[index]))
    _, ours = model.forward(x[index], record=True)
    assert list(avg.counts) == [37] * 10
    for layer, a in acts.items():
        a = a.numpy()
        expected = np.stack([a[y[index] == k].mean(axis=0) for k in range(10)])
        assert avg[layer].shape == expected.shape and avg[layer].dtype == np.float32
        np.testing.assert_allclose(avg[layer], expected, atol=1e-5, rtol=1e-5, err_msg=layer)
        # sparsity, two ways: counted while streaming, and measured on the
        # recorded outputs of one forward pass of all the samples: exactly equal
        mine = ours[layer]
        zeros = np.array([(mine[y[index] == k] == 0).mean() for k in range(10)])
        np.testing.assert_array_equal(avg.zero_fraction[layer], zeros, err_msg=layer)
        # and torch's outputs: a unit within float32 rounding of zero may fall
        # either side of the ReLU, so a few in 10,000 may differ
        theirs = np.array([(a[y[index] == k] == 0).mean() for k in range(10)])
        np.testing.assert_allclose(avg.zero_fraction[layer], theirs, atol=1e-3, err_msg=layer)


def test_labels_and_layers_that_would_count_wrong_are_refused(data, twins):
    """A label outside 0..9, a float label, fewer labels than images, a
    layer named twice (or with its alias) and a per_class below 1 were left
    out, floored, ignored or summed twice without a word."""
    x, y = data
    _, model = twins
    for labels, message in ((y + 5, "label 14 is out of range 0..9"), (y - 5, "label -5 is out of range 0..9"),
                            (y + 0.5, "y must hold one integer label per sample, got float64"),
                            (y[:-1], "y must hold one integer label per sample")):
        with pytest.raises(ValueError, match=rf"^class_averages: {re.escape(message)}"):
            class_averages(model, x, labels, per_class=2)
    with pytest.raises(ValueError, match=r"^class_averages: layers name one layer more than once"):
        class_averages(model, x, y, per_class=2, layers=["relu_1", "relu_1"])
    for name, value in (("per_class", -1), ("n_classes", 0), ("batch_size", 0)):
        with pytest.raises(ValueError, match=rf"^class_averages: {name} must be an integer >= 1"):
            class_averages(model, x, y, **{"per_class": 2, name: value})


def test_streaming_does_not_change_the_result(data, twins):
    x, y = data
    _, model = twins
    small = class_averages(model, x, y, per_class=20, batch_size=7, layers=["relu_2", "fc_2"])
    big = class_averages(model, x, y, per_class=20, batch_size=1000, layers=["relu_2", "fc_2"])
    assert list(small) == ["relu_2", "fc_2"]
    for layer in small:
        np.testing.assert_allclose(small[layer], big[layer], rtol=1e-6, atol=1e-6)


def test_correct_only_counts_what_it_keeps(data, twins):
    x, y = data
    _, model = twins
    keep = np.zeros(len(y), dtype=bool)
    keep[::3] = True
    avg = class_averages(model, x, y, per_class=500, keep=keep, layers=["fc_2"])
    np.testing.assert_array_equal(avg.counts, [np.sum(keep & (y == k)) for k in range(10)])


def test_channel_correlation_and_duplicates():
    rng = np.random.default_rng(0)
    maps = rng.standard_normal((10, 4, 5, 5))
    maps[:, 3] = 2 * maps[:, 1] + 0.5     # a scaled copy: correlation 1
    maps[:, 2] = 0                        # dead channel
    corr = channel_correlation(maps)
    flat = maps.transpose(1, 0, 2, 3).reshape(4, -1)
    np.testing.assert_allclose(corr[[0, 1, 3]][:, [0, 1, 3]], np.corrcoef(flat[[0, 1, 3]]), atol=1e-12)
    assert corr[2, 0] == 0 and corr[2, 2] == 1
    assert [(i, j) for i, j, _ in near_duplicates(corr)] == [(1, 3)]


def test_class_selectivity_index():
    means = np.zeros((10, 3))
    means[4, 0] = 2.0          # only class 4: SI 1
    means[:, 1] = 1.0          # all classes alike: SI 0
    si, preferred = class_selectivity(means)
    np.testing.assert_allclose(si, [1.0, 0.0, 0.0])
    assert preferred[0] == 4


def png_size(path):
    assert path.stat().st_size > 1000
    with Image.open(path) as im:
        return im.size


def test_figure_functions_write_pngs_of_the_expected_size(tmp_path):
    rng = np.random.default_rng(0)
    cases = [
        (figures.sample_grid, (rng.integers(0, 255, (40, 28, 28)), rng.integers(0, 9, 40)), (600, 300)),
        (figures.architecture, ([("conv_1", "conv2d", (8, 28, 28), 80)] * 10, "t"), (400, 250)),
        (figures.feature_maps, (rng.standard_normal((16, 14, 14)), "conv_2-(7)"), (700, 200)),
        (figures.dense_bars, (rng.standard_normal(10), "fc_2", ), (300, 150)),
        (figures.pre_post_relu, (rng.standard_normal((8, 28, 28)), np.abs(rng.standard_normal((8, 28, 28))),
                                 "conv_1 -> relu_1"), (600, 150)),
        (figures.pre_post_relu, (rng.standard_normal(64), rng.random(64), "fc_1 -> relu_3"), (600, 150)),
        (figures.filters, (rng.standard_normal((16, 8, 3, 3)), "conv_2"), (300, 600)),
        (figures.class_overview, ("relu_1", rng.random((10, 8, 28, 28)), [500] * 10), (450, 550)),
        (figures.class_overview, ("fc_1", rng.random((10, 64)), [500] * 10), (400, 200)),
        (figures.sparsity, (rng.random((9, 10)), [f"l{i}" for i in range(9)]), (500, 300)),
        (figures.redundancy, ("relu_2", np.eye(16), [(1, 3, 0.99)]), (300, 250)),
        (figures.selectivity, ("relu_3", rng.random(64), rng.integers(0, 10, 64)), (600, 200)),
        (figures.class_average_maps, ("relu_2", 3, rng.random((16, 14, 14)), 500), (700, 200)),
        (figures.dense_layers, ({"fc_1": rng.standard_normal(64), "fc_2": rng.standard_normal(10)}, "t"),
         (600, 300)),
    ]
    for k, (fn, args, (min_w, min_h)) in enumerate(cases):
        path = fn(*args, path=tmp_path / f"{k}.png") if fn is not figures.dense_bars else \
            fn(*args, tmp_path / f"{k}.png", highlight=3)
        w, h = png_size(path)
        assert w >= min_w and h >= min_h, f"{fn.__name__}: {w}x{h}"
        assert w < 4000 and h < 4000, f"{fn.__name__}: {w}x{h}"


@pytest.mark.parametrize("arch", ["simplecnn", "lenet5"])
def test_npcnn_atlas_writes_every_figure_and_an_index(arch, tmp_path, capsys):
    ckpt = tmp_path / f"{arch}.pt"
    assert main(["train", "--model", arch, "--dataset", "mnist5k", "--epochs", "1", "--out", str(ckpt)]) == 0
    out = tmp_path / "atlas"
    assert main(["atlas", "--checkpoint", str(ckpt), "--out", str(out), "--per-class", "15",
                 "--digits", "0", "3", "7"]) == 0
    printed = capsys.readouterr().out
    assert "per digit 0: 15, 1: 15" in printed
    html = (out / "index.html").read_text()
    md = (out / "index.md").read_text()
    pngs = sorted(p.name for p in out.glob("*.png"))
    for name in pngs:
        assert f'src="{name}"' in html and f"({name})" in md, name
    relu = "relu_3"
    expected = {"samples.png", "architecture.png", "maps_conv_1_7.png", "maps_relu_2_0.png",
                "dense_3.png", "relu_relu_1.png", f"relu_{relu}.png", "filters_conv_2.png",
                "avg_relu_1.png", "avg_fc_1_7.png", "sparsity.png", "redundancy_relu_1.png",
                f"selectivity_{relu}.png"}
    assert expected <= set(pngs)
    assert "maps_conv_1_5.png" not in pngs and "avg_fc_1_5.png" not in pngs  # only the digits asked
    if arch == "lenet5":
        assert {"avg_fc_3.png", "relu_relu_4.png", "avg_log_softmax_3.png"} <= set(pngs)
    assert (out / "architecture.txt").read_text().startswith("layer")


def test_channel_studies_refuse_what_would_read_as_a_number():
    """NaN made a channel look constant (correlation 0) and a neuron
    silent (selectivity 0); negative means and a single class give no
    index. Each is a ValueError naming the function and the argument."""
    maps = np.random.default_rng(1).standard_normal((10, 4, 5, 5))
    maps[3, 2, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r"channel_correlation: class_maps holds 1 non-finite value"):
        channel_correlation(maps)
    with pytest.raises(ValueError, match="channel_correlation: class_maps must be 4-D"):
        channel_correlation(maps[0])
    means = np.abs(np.random.default_rng(2).standard_normal((10, 3)))
    for bad, match in ((np.inf, "holds 1 non-finite value"), (-0.5, r"must be >= 0 .* -0.5 for class 7, unit 1")):
        m = means.copy()
        m[7, 1] = bad
        with pytest.raises(ValueError, match=f"class_selectivity: class_means {match}"):
            class_selectivity(m)
    with pytest.raises(ValueError, match="at least two classes"):
        class_selectivity(means[:1])
