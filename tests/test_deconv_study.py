"""The pieces of the deconvnet study: receptive fields, the top-9 search,
occlusion, the figures and the npcnn deconv command."""
import re

import numpy as np
import pytest
from PIL import Image

import npcnn
from npcnn import deconv
from npcnn.data import load_mnist, to_tensor
from npcnn.occlusion import occluded_images, occlusion_maps, probabilities
from npcnn.receptive_field import receptive_field, unit_window
from npcnn.topk import top_activations
from vis import deconv_figures as figures
from vis.cli import main


@pytest.fixture(scope="module")
def digits():
    return to_tensor(load_mnist("mnist5k", "test", verbose=False).images[:40])


@pytest.mark.parametrize("arch,layer,size", [("lenet5", "pool_2", 16), ("lenet5", "conv_1", 5),
                                             ("simplecnn", "max_pool_2", 10), ("vgg16", "pool5", 212),
                                             ("alexnet", "pool5", 195)])
def test_receptive_field_sizes(arch, layer, size):
    assert receptive_field(npcnn.build(arch), layer)[0] == (size, size)


@pytest.mark.parametrize("layer", ["conv_1", "pool_1", "conv_2", "relu_2", "pool_2"])
def test_a_max_projection_stays_inside_its_receptive_field(layer, digits):
    """Both the arithmetic and the projection are checked: the projection of
    one unit can only reach pixels that unit sees."""
    model = npcnn.build("lenet5", seed=0, dtype=np.float64)
    x = digits[:8].astype(np.float64)
    _, acts = model.forward(x, record=True)
    for c in (0, 3):
        proj = deconv.project(model, x, layer, c, "max")
        a = acts[layer][:, c]
        for n in range(len(x)):
            i, j = np.unravel_index(a[n].argmax(), a[n].shape)
            h0, h1, w0, w1 = unit_window(model, layer, i, j, (28, 28))
            outside = proj[n, 0].copy()
            outside[h0:h1, w0:w1] = 0
            assert not outside.any(), f"{layer}[{c}] image {n} leaks out of its receptive field"


def test_top_activations_equal_a_brute_force_search(digits):
    model = npcnn.build("lenet5", seed=1)
    images, values, positions = top_activations(model, digits, "conv_2", k=5, batch_size=7)
    # the same batches of 7: a conv's kernel may depend on the batch's size
    # (several images share vector lanes), and so may a float32 sum's rounding
    a = np.concatenate([model.forward(digits[i:i + 7], until="conv_2") for i in range(0, len(digits), 7)])
    peak = a.reshape(len(a), a.shape[1], -1).max(axis=2)  # (N, C)
    for c in range(a.shape[1]):
        assert list(images[c]) == list(np.argsort(-peak[:, c], kind="stable")[:5])
        np.testing.assert_array_equal(values[c], peak[images[c], c])
        for k in range(5):
            assert a[images[c, k], c][tuple(positions[c, k])] == values[c, k]


def test_occlusion_places_the_square_and_measures_probability(digits):
    image = digits[0]
    images, grid = occluded_images(image, 6, 2, -1.0)
    assert grid == (12, 12) and images.shape == (144, 1, 28, 28)
    assert (images[13, 0, 2:8, 2:8] == -1).all() and (images[13, 0, 8:, :] == image[0, 8:, :]).all()
    model = npcnn.build("lenet5", seed=2)
    prob, act = occlusion_maps(model, image, 3, "conv_2", 1, 6, 2, -1.0, batch_size=50)
    assert prob.shape == act.shape == (12, 12)
    full = probabilities(model, model(images))
    np.testing.assert_allclose(full.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(prob.ravel(), full[:, 3], rtol=1e-6)


def test_occlusion_and_unit_windows_refuse_what_would_index_another_thing():
    """A negative class or channel indexed from the end, a unit past the map
    or negative gave a box upside down, a size of 0 or larger than the
    image and a stride of 0 failed inside numpy: each is now refused by
    name."""
    model = npcnn.build("lenet5", seed=0)
    image = np.zeros((1, 28, 28), np.float32)
    for arguments, message in (((-1, "pool_2", 2), "label -1 is out of range 0..9"),
                               ((3, "pool_2", -1), "channel -1 is out of range 0..15"),
                               ((3, "pool_2", 16), "channel 16 is out of range 0..15"),
                               ((3, "pool_2", 2.0), "channel must be an int, got 2.0"),
                               ((3, "fc_1", 0), "layer 'fc_1' has no feature maps to sum")):
        with pytest.raises(ValueError, match=rf"^occlusion_maps: {re.escape(message)}"):
            occlusion_maps(model, image, *arguments)
    for size, stride in ((0, 2), (40, 2), (6, 0)):
        with pytest.raises(ValueError, match=r"^occlusion_maps: size must be 1 to 28 and stride >= 1"):
            occlusion_maps(model, image, 3, "pool_2", 2, size, stride)
    assert unit_window(model, "pool_2", np.int64(3), 3, (28, 28)) == (10, 26, 10, 26)
    with pytest.raises(ValueError, match=r"^unit_window: unit \(100, 0\) of 'pool_2' sees no pixel"):
        unit_window(model, "pool_2", 100, 0, (28, 28))
    with pytest.raises(ValueError, match=r"^unit_window: unit \(-5, 0\) has a negative index"):
        unit_window(model, "pool_2", -5, 0, (28, 28))


def png_size(path):
    assert path.stat().st_size > 1000, f"{path} is (nearly) empty"
    with Image.open(path) as im:
        return im.size


def test_figure_functions_write_pngs_of_the_expected_size(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.random((1, 28, 28))
    maps = {"pool_1": rng.standard_normal((6, 28, 28)), "pool_2": rng.standard_normal((16, 28, 28))}
    w, h = png_size(figures.digit_grid(image, maps, "t", tmp_path / "a.png"))
    assert 900 < w < 1300 and 400 < h < 700
    w, h = png_size(figures.combined_grid(rng.random((4, 1, 28, 28)),
                                          {k: np.stack([v] * 4) for k, v in maps.items()},
                                          list("abcd"), tmp_path / "b.png"))
    assert w > 1200 and 300 < h < 600
    w, h = png_size(figures.top9("pool_2", rng.random((16, 9, 16, 16)), rng.standard_normal((16, 9, 16, 16)),
                                 rng.random((16, 9)), tmp_path / "c.png"))
    assert 700 < w < 1100 and h > 900
    png_size(figures.evolution("pool_1", rng.standard_normal((6, 8, 6, 6)), list(range(1, 9)),
                               tmp_path / "d.png"))
    w, h = png_size(figures.occlusion(image, 3, rng.random((23, 23)), rng.random((23, 23)),
                                      rng.standard_normal((1, 28, 28)), 2, "pool_2", (3, 4, 6, 1),
                                      tmp_path / "e.png"))
    assert 800 < w < 1200 and 200 < h < 400
    assert not list(tmp_path.glob(".*.part"))


def test_npcnn_deconv_draws_every_figure(tmp_path, capsys):
    ckpt = tmp_path / "lenet5.pt"
    assert main(["train", "--model", "lenet5", "--dataset", "mnist5k", "--epochs", "2",
                 "--save-every", "1", "--out", str(ckpt)]) == 0
    out = tmp_path / "figs"
    assert main(["deconv", "--checkpoint", str(ckpt), "--digits", "0", "7", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "digit 0: test image #" in printed and "digit 7: test image #" in printed
    names = sorted(p.name for p in out.iterdir())
    assert names == ["all_digits.png", "digit_0.png", "digit_7.png", "evolution_pool_1.png",
                     "evolution_pool_2.png", "occlusion_0.png", "occlusion_7.png",
                     "top9.npz", "top9_pool_1.png", "top9_pool_2.png"]
    for name in names:
        if name.endswith(".png"):
            png_size(out / name)


def test_npcnn_deconv_errors_are_one_line(tmp_path, capsys):
    assert main(["deconv", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("npcnn deconv: error: argument --checkpoint: ") and "none.pt: no such checkpoint" in err


def test_npcnn_deconv_unknown_layer_lists_the_valid_ones(tmp_path, capsys):
    ckpt = tmp_path / "lenet5.npz"
    npcnn.build("lenet5", seed=0).save(ckpt)
    assert main(["deconv", "--checkpoint", str(ckpt), "--layers", "conv_9", "--dataset", "mnist5k",
                 "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("npcnn deconv: error: unknown layer 'conv_9'; valid layers: conv_1, relu_1")
    assert err.count("\n") == 1


def test_npcnn_deconv_evolution_alone_needs_the_epoch_checkpoints(tmp_path, capsys):
    """Asked for alone, the feature evolution without its per-epoch files is
    an error, with nothing written; beside other figures it is skipped with
    a note (and they are drawn)."""
    ckpt = tmp_path / "lenet5.npz"
    npcnn.build("lenet5", seed=0).save(ckpt)
    out = tmp_path / "o"
    assert main(["deconv", "--checkpoint", str(ckpt), "--figures", "evolution", "--dataset", "mnist5k",
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("npcnn deconv: error: --figures evolution: no lenet5.epochNN.npz files beside ")
    assert err.count("\n") == 1 and not out.exists()
    from vis.deconv_cmd import draw_evolution
    assert draw_evolution(ckpt, [], None, ["pool_1"], out) == []
    assert capsys.readouterr().out.startswith("evolution: no lenet5.epochNN.npz files beside ")


def test_npcnn_deconv_checkpoint_of_another_architecture_is_one_line(tmp_path, capsys):
    import torch
    import bridge
    ckpt = tmp_path / "lenet5.pt"
    torch.save({"state_dict": bridge.torch_model("simplecnn").state_dict(), "meta": {"arch": "lenet5"}}, ckpt)
    assert main(["deconv", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("npcnn deconv: error: ") and "missing keys" in err and err.count("\n") == 1


def test_npcnn_atlas_on_corrupt_data_is_one_line(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (data / name).write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 7)
    ckpt = tmp_path / "s.npz"
    npcnn.build("simplecnn", seed=0).save(ckpt)
    assert main(["atlas", "--checkpoint", str(ckpt), "--dataset", "mnist", "--data-dir", str(data),
                 "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("npcnn atlas: error: ") and "t10k-images-idx3-ubyte" in err and err.count("\n") == 1
