"""npcnn explain: every method writes its figure, for an MNIST network and an
ImageNet-sized one; bad input is one line."""
import numpy as np
import pytest
from PIL import Image

import bridge
from bridge.class_names import imagenet_classes
from vis.cli import main


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


def test_every_method_on_lenet5(images, tmp_path, capsys):
    out = tmp_path / "lenet5"
    assert main(["explain", "--model", "lenet5", "--random-weights", "--image", str(images / "one.png"),
                 "--method", "filters", "feature-maps", "saliency", "smoothgrad", "integrated-gradients",
                 "gradcam", "gradcam++", "occlusion", "actmax", "inversion", "deepdream", "fgsm",
                 "--steps", "20", "--out", str(out)]) == 0
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
    assert {"compare_relu_2.png", "deepdream_relu_2.png", "attributions.png"} <= {p.name for p in out.iterdir()}


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
    (["--model", "lenet5", "--random-weights", "--image", "BROKEN"], "not an image Pillow can read"),
    (["--model", "vgg16", "--image", "IMG"], "vgg16-397923af.pth: not found"),
])
def test_bad_input_is_one_line(argv, fragment, images, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bridge.checkpoint, "HUB_CACHE", tmp_path / "empty-hub")
    argv = [a.replace("BROKEN", str(images / "broken.png")).replace("IMG", str(images / "one.png")) for a in argv]
    assert main(["explain", *argv, "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("npcnn explain: error: ") and fragment in err and err.count("\n") == 1


def test_default_inversion_depths():
    from vis.explain_cmd import inversion_layers
    assert inversion_layers(bridge.torch_model("lenet5")) == ["pool_1", "pool_2", "relu_3", "relu_4", "fc_3"]
    assert inversion_layers(bridge.torch_model("vgg16")) == [
        "features.4", "features.9", "features.16", "features.23", "features.30",
        "classifier.1", "classifier.4", "classifier.6"]
