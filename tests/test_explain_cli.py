"""npcnn explain: every method writes its figure, for an MNIST network and an
ImageNet-sized one, for one image or a folder of them in batches; bad input
is one line and leaves nothing behind."""
import csv

import numpy as np
import pytest
import torch
from PIL import Image

import bridge
from bridge.class_names import imagenet_classes
from vis import explain_batches, explain_cmd
from vis.cli import main

EVERY_METHOD = ["filters", "feature-maps", "saliency", "gradient-x-input", "guided-backprop", "smoothgrad",
                "integrated-gradients", "gradcam", "gradcam++", "guided-gradcam", "occlusion", "actmax",
                "inversion", "deepdream", "fgsm"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    digit = np.full((40, 40), 255, np.uint8)
    digit[8:32, 18:23] = 0                      # a dark "1" on white: gets inverted
    Image.fromarray(digit).save(folder / "one.png")
    seven = np.zeros((28, 28), np.uint8)
    seven[5:8, 6:22] = 255
    seven[8:24, 18:21] = 255                   # a white "7" on black: used as it is
    Image.fromarray(seven).save(folder / "two.png")
    Image.fromarray((rng.random((180, 240, 3)) * 255).astype(np.uint8)).save(folder / "photo.jpg")
    (folder / "broken.png").write_bytes(b"not an image")
    return folder


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_every_method_on_lenet5(dtype, images, tmp_path, capsys, monkeypatch):
    """In float64 too: a tensor the command or a method makes with the default
    dtype (float32) meets the float64 network and fails, as one made on the
    CPU would meet a network on a GPU."""
    load = explain_cmd._module
    monkeypatch.setattr(explain_cmd, "_module", lambda args, device: load(args, device).to(dtype))
    out = tmp_path / "lenet5"
    assert main(["explain", "--model", "lenet5", "--random-weights", "--image", str(images / "one.png"),
                 "--method", *EVERY_METHOD, "--steps", "8", "--samples", "4", "--ig-steps", "8",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("top 5: digit ")
    assert sorted(p.name for p in out.iterdir()) == [
        "actmax_fc_3.png", "attributions.png", "deepdream_relu_2.png", "feature_map_progression.png",
        "feature_maps_relu_2.png", "fgsm.png", "filters_conv_1.png", "filters_conv_2.png", "inversion.png"]
    assert all(p.stat().st_size > 1000 for p in out.iterdir())


def test_several_images_compared_dreamed_and_attributed(images, tmp_path, capsys):
    out = tmp_path / "several"
    paths = [str(images / "one.png"), str(images / "two.png")]
    assert main(["explain", "--model", "lenet5", "--random-weights", "--image", *paths,
                 "--method", "compare", "deepdream", "saliency", "--octaves", "2", "--steps", "3",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(": top 5: ")[0] for line in printed[:2]] == paths
    assert {p.name for p in out.iterdir()} == {"compare_relu_2.png", "deepdream_relu_2.png", "attributions",
                                                "summary.png", "predictions.csv"}
    assert sorted(p.name for p in (out / "attributions").iterdir()) == ["0000_one.png", "0001_two.png"]


@pytest.fixture(scope="module")
def many_digits(tmp_path_factory):
    """9 digits in a folder, and a file that is not an image."""
    folder = tmp_path_factory.mktemp("digits")
    rng = np.random.default_rng(1)
    for k in range(9):
        a = np.zeros((28, 28), np.uint8)
        a[rng.integers(4, 10):rng.integers(18, 24), rng.integers(6, 12):rng.integers(16, 22)] = 255
        Image.fromarray(a).save(folder / f"d{k:02d}.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_a_folder_in_batches_with_a_summary(many_digits, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(explain_batches, "PAGE", 5)      # two summary pages
    monkeypatch.setattr(explain_batches, "PRINTED", 8)   # more images than printed: the table alone
    out = tmp_path / "many"
    assert main(["explain", "--model", "lenet5", "--random-weights", "--image", str(many_digits),
                 "--method", "saliency", "integrated-gradients", "occlusion", "--batch-size", "7",
                 "--internal-batch-size", "5", "--ig-steps", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"top 5 of 9 images: {out / 'predictions.csv'}"
    assert printed[1] == f"wrote 12 figures into {out}"
    assert len(list((out / "attributions").iterdir())) == 9
    assert {"summary.png", "summary_2.png", "predictions.csv"} <= {p.name for p in out.iterdir()}
    with open(out / "predictions.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["image", "top1", "top2", "top3", "top4", "top5"] and len(rows) == 10
    assert [r[0].rsplit("/", 1)[-1] for r in rows[1:]] == [f"d{k:02d}.png" for k in range(9)]


def test_batches_give_the_maps_of_one_pass(many_digits, tmp_path, monkeypatch):
    """The per-image maps do not depend on --batch-size or --internal-batch-size."""
    seen = []
    attribute = explain_batches.attribute
    monkeypatch.setattr(explain_batches, "attribute",
                        lambda *a, **k: seen.append(attribute(*a, **k)) or seen[-1])
    common = ["explain", "--model", "lenet5", "--random-weights", "--image", str(many_digits / "d0[0-2].png"),
              "--method", "smoothgrad", "occlusion", "--samples", "3", "--device", "cpu"]
    assert main(common + ["--out", str(tmp_path / "a")]) == 0
    whole = seen[:]
    seen.clear()
    assert main(common + ["--batch-size", "3", "--internal-batch-size", "2", "--out", str(tmp_path / "b")]) == 0
    for method in whole[0]:
        np.testing.assert_allclose(np.concatenate([b[method] for b in seen]), whole[0][method],
                                   rtol=1e-5, atol=1e-7)


def test_a_batch_too_large_for_the_device_names_a_smaller_one(images, tmp_path, capsys, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(explain_batches, "attribute", out_of_memory)
    assert main(["explain", "--model", "lenet5", "--random-weights", "--image", str(images / "one.png"),
                 "--batch-size", "64", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "does not fit in the memory of cpu; try --batch-size 32 --internal-batch-size 32" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_imagenet_network_in_colour(images, tmp_path, capsys):
    out = tmp_path / "alexnet"
    assert main(["explain", "--model", "alexnet", "--random-weights", "--image", str(images / "photo.jpg"),
                 "--method", "filters", "saliency", "gradcam", "fgsm", "--out", str(out)]) == 0
    top = capsys.readouterr().out.splitlines()[0]
    assert top.startswith("top 5: ")
    predicted = [entry.rsplit(" (", 1)[0] for entry in top[len("top 5: "):].split(", ")]
    assert len(predicted) == 5 and set(predicted) <= set(imagenet_classes()), top
    assert {"filters_features.0.png", "attributions.png", "fgsm.png"} <= {p.name for p in out.iterdir()}


@pytest.mark.parametrize("argv,fragment", [
    (["--model", "lenet5", "--random-weights", "--method", "saliency"], "--image is needed by saliency"),
    (["--model", "lenet5", "--random-weights", "--layer", "conv_9"], "unknown layer 'conv_9'; valid layers"),
    (["--model", "lenet5", "--random-weights", "--image", "IMG", "--method", "compare"],
     "--method compare needs two or more --image, got 1"),
    (["--model", "lenet5", "--image", "IMG"], "needs --weights"),
    (["--model", "lenet5", "--random-weights", "--image", "BROKEN"], "broken.png: not an image npcnn reads"),
    (["--model", "vgg16", "--image", "IMG"], "vgg16-397923af.pth: not found"),
    (["--model", "lenet5", "--random-weights", "--image", "EMPTY"], "the folder holds no image file"),
    (["--model", "lenet5", "--random-weights", "--image", "EMPTY/*.png"], "the pattern matches no image file"),
    (["--model", "lenet5", "--random-weights", "--image", "nowhere.png"], "--image nowhere.png: no such file"),
    (["--model", "lenet5", "--random-weights", "--image", "IMG", "--device", "cuda:99"], "--device cuda:99"),
    (["--model", "lenet5", "--random-weights", "--image", "IMG", "--device", "tpu"], "--device 'tpu'"),
    (["--model", "lenet5", "--random-weights", "--image", "IMG", "--target", "12"],
     "--target 12: lenet5 has 10 classes, 0 to 9"),
    (["--model", "lenet5", "--random-weights", "--method", "actmax", "--layer", "relu_1", "--channels", "99"],
     "--channels 99: layer relu_1 has 6 channels, 0 to 5"),
    (["--model", "lenet5", "--random-weights", "--image", "IMG", "--epsilon", "nan"], "argument --epsilon"),
    (["--model", "lenet5", "--random-weights", "--image", "IMG", "--epsilon", "2"], "argument --epsilon"),
    (["--model", "lenet5", "--random-weights", "--image", "IMG", "--batch-size", "0"], "argument --batch-size"),
    (["--model", "lenet5", "--random-weights", "--image", "IMG", "--steps", "0"], "argument --steps"),
    (["--model", "lenet5", "--random-weights", "--image", "IMG", "--steps", "-1"], "argument --steps"),
    (["--model", "lenet5", "--random-weights", "--image", "IMG", "--layer", ""], "argument --layer"),
    (["--model", "lenet5", "--random-weights", "--image", "IMG", "--internal-batch-size", "0"],
     "argument --internal-batch-size"),
])
def test_bad_input_is_one_line(argv, fragment, images, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bridge.checkpoint, "HUB_CACHE", tmp_path / "empty-hub")
    (tmp_path / "empty").mkdir()
    argv = [a.replace("BROKEN", str(images / "broken.png")).replace("IMG", str(images / "one.png"))
            .replace("EMPTY", str(tmp_path / "empty")) for a in argv]
    code = main(["explain", *argv, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code in (1, 2) and err.startswith("npcnn explain: error: ") and fragment in err, err
    assert err.count("\n") == 1
    assert not (tmp_path / "o").exists(), "a failed run left its output folder behind"


def test_default_inversion_depths():
    from vis.explain_cmd import inversion_layers
    assert inversion_layers(bridge.torch_model("lenet5")) == ["pool_1", "pool_2", "relu_3", "relu_4", "fc_3"]
    assert inversion_layers(bridge.torch_model("vgg16")) == [
        "features.4", "features.9", "features.16", "features.23", "features.30",
        "classifier.1", "classifier.4", "classifier.6"]
