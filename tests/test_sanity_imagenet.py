"""npcnn sanity on AlexNet (VGG16 takes the same path, too slow for the suite):
random weights, two generated colour images, a reduced method list."""
import contextlib
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

import bridge
from bridge.images import load_imagenet_image
from bridge.sanity import methods, randomization
from vis import sanity_cmd
from vis.cli import Parser

METHODS = ("deconvnet", "gradient", "integrated_gradients", "random")


def parse(argv):
    parser = Parser(prog="npcnn")
    sanity_cmd.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Two 64x64 random colour PNGs (load_imagenet_image makes them 224x224)."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / f"photo_{i}.png")
    return folder


@pytest.fixture(scope="module")
def study_run(images, tmp_path_factory):
    """The command on AlexNet with --random-weights, once for the tests below: (out, results, maps, stdout)."""
    out = tmp_path_factory.mktemp("sanity_alexnet") / "out"
    args = parse(["sanity", "--model", "alexnet", "--random-weights", "--image", str(images), "--out", str(out),
                  "--methods", *METHODS, "--modes", "cascading", "--ig-steps", "2", "--curve-steps", "4",
                  "--road-fractions", "0.5", "--figure-images", "1", "--replacement", "mean", "--quiet"])
    maps = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        written, results = sanity_cmd.build(args, maps=maps)
    return out, written, results, maps, printed.getvalue()


def test_alexnet_command_writes_figures_and_tables(study_run):
    out, written, results, _, _ = study_run
    assert results["arch"] == "alexnet" and len(results["images"]) == 2 and results["labels"] is None
    assert results["model_randomization"]["cascading"]["steps"] == [
        "trained", "classifier.6", "classifier.4", "classifier.1",
        "features.10", "features.8", "features.6", "features.3", "features.0"]
    assert set(results["faithfulness"]["deletion"]) == set(METHODS)          # no pixel oracle on 224x224
    for name in ("cascading_0.png", "similarity_ssim.png", "deletion_insertion.png", "road.png",
                 "results.md", "results.json"):
        assert (out / name).stat().st_size > 0, name
    assert not (out / "data_randomization.png").exists() and not (out / "permuted_labels.pt").exists()
    assert len(written) == 1 + 4 + 2
    assert json.loads((out / "results.json").read_text())["targets"] == results["targets"]
    # the deconvnet starts at pool5: re-initialising the classifier changes none of its maps
    text = (out / "results.md").read_text()
    assert "| deconvnet | 1.00 ± 0.00 | 1.00 ± 0.00 | 1.00 ± 0.00 | 1.00 ± 0.00 |" in text


def test_permuted_labels_are_skipped_with_a_line_and_recorded(study_run):
    out, _, results, _, printed = study_run
    lines = [line for line in printed.splitlines() if "data randomisation skipped" in line]
    assert len(lines) == 1 and "ImageNet" in lines[0]
    assert "ImageNet" in results["data_randomization"]["skipped"]
    assert json.loads((out / "results.json").read_text())["data_randomization"] == results["data_randomization"]
    assert "## Data randomisation\n\nSkipped: data randomisation skipped for alexnet" in (out / "results.md").read_text()


def test_alexnet_cascading_step_0_gives_the_trained_maps_bit_for_bit(study_run, images):
    _, _, results, maps, _ = study_run
    torch.manual_seed(0)
    module = bridge.torch_model("alexnet").eval()
    x = torch.cat([load_imagenet_image(p) for p in sorted(images.iterdir())])
    target = torch.tensor(results["targets"])
    black = tuple(float(v) for v in (0 - np.array(bridge.images.IMAGENET_MEAN)) / np.array(bridge.images.IMAGENET_STD))
    settings = methods.Settings(black=black, ig_steps=2, samples=16, occlusion_size=32, occlusion_stride=16)
    trained = methods.compute_all(module, x, target, METHODS, settings, randomization.step_seed(0, 0))
    for name in METHODS:
        assert maps["cascading"][0].maps[name].shape == (2, 224, 224)
        np.testing.assert_array_equal(maps["cascading"][0].maps[name], trained[name], err_msg=name)
    assert maps["trained"] is maps["cascading"][0].maps
    # colour maps: max-abs over the channels for the gradient (>= 0), the signed sum for Integrated Gradients
    assert (trained["gradient"] >= 0).all() and (trained["integrated_gradients"] < 0).any()
    for name in ("deconvnet", "gradient", "integrated_gradients"):
        assert not np.array_equal(maps["cascading"][-1].maps[name], trained[name]), name


@pytest.mark.parametrize("argv, message", [
    (["--model", "alexnet", "--image", "x.png"], "needs --weights FILE or --random-weights"),
    (["--model", "alexnet", "--random-weights"], "needs --image"),
])
def test_imagenet_arguments_are_checked(tmp_path, argv, message):
    args = parse(["sanity", "--out", str(tmp_path / "o")] + argv)
    with pytest.raises(ValueError, match=message):
        sanity_cmd.build(args)


def test_weights_file_is_read_for_the_model(tmp_path, images):
    torch.manual_seed(1)
    saved = bridge.torch_model("alexnet")
    torch.save(saved.state_dict(), tmp_path / "alexnet.pth")      # torchvision's layout
    args = parse(["sanity", "--model", "alexnet", "--weights", str(tmp_path / "alexnet.pth"),
                  "--image", str(images), "--out", str(tmp_path / "o")])
    module, weights = sanity_cmd._imagenet_module(args)
    assert weights == str(tmp_path / "alexnet.pth") and module.arch == "alexnet" and not module.training
    for key, value in saved.state_dict().items():
        assert torch.equal(module.state_dict()[key], value), key
