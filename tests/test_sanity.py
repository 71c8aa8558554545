"""Model and data randomisation (bridge.sanity) and the npcnn sanity command."""
import json

import numpy as np
import pytest
import torch

import bridge
from bridge.sanity import methods, permuted, randomization, randomize, study
from bridge.train import train
from npcnn.data import load_mnist, to_tensor
from vis import sanity_cmd
from vis.cli import Parser

FEW = methods.Settings(black=-0.4242, ig_steps=4, samples=2, occlusion_size=7, occlusion_stride=7)


@pytest.fixture(scope="module")
def data():
    return load_mnist("mnist5k", "train", verbose=False), load_mnist("mnist5k", "test", verbose=False)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, data):
    """A LeNet-5 trained for one epoch on 600 images: enough to predict better than chance."""
    train_set, test_set = data
    keep = np.arange(600)
    small = type(train_set)(train_set.images[keep], train_set.labels[keep], train_set.name, "train", "test")
    path = tmp_path_factory.mktemp("sanity") / "lenet5.pt"
    train("lenet5", small, test_set, epochs=1, seed=0, out=path, progress=False)
    return path


@pytest.fixture(scope="module")
def batch(checkpoint, data):
    module = bridge.load_module(checkpoint)
    picks = study.balanced_indices(data[1].labels, 2)
    x = torch.from_numpy(to_tensor(data[1].images[picks]))
    return module, x, study.predicted(module, x)


def state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("mode", randomize.MODES)
def test_each_step_changes_exactly_its_layers(mode):
    torch.manual_seed(0)
    module = bridge.torch_model("lenet5")
    before = state(module)
    top_down = ["fc_3", "fc_2", "fc_1", "conv_2", "conv_1"]
    for k, (label, layers) in enumerate(randomize.steps(module, mode)):
        after = state(randomize.randomized(module, layers, seed=3))
        changed = {key.rsplit(".", 1)[0] for key in before if not torch.equal(before[key], after[key])}
        intended = set(top_down[:k]) if mode == "cascading" else {top_down[k]}
        assert changed == intended, (mode, label)
        for layer in layers:   # weight and bias both drawn again
            assert not torch.equal(before[f"{layer}.weight"], after[f"{layer}.weight"])
            assert not torch.equal(before[f"{layer}.bias"], after[f"{layer}.bias"])
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())   # the original untouched


def test_steps_go_from_the_logits_down_and_a_layer_gets_one_set_of_random_weights():
    module = bridge.torch_model("simplecnn")
    assert randomize.parameter_layers(module) == ["fc_2", "fc_1", "conv_2", "conv_1"]
    assert [layers for _, layers in randomize.steps(module, "cascading")] == [
        (), ("fc_2",), ("fc_2", "fc_1"), ("fc_2", "fc_1", "conv_2"), ("fc_2", "fc_1", "conv_2", "conv_1")]
    cascading = randomize.randomized(module, ("fc_2", "fc_1"), seed=5)
    independent = randomize.randomized(module, ("fc_1",), seed=5)
    assert torch.equal(cascading.fc_1.weight, independent.fc_1.weight)
    other_seed = randomize.randomized(module, ("fc_1",), seed=6)
    assert not torch.equal(other_seed.fc_1.weight, independent.fc_1.weight)
    # the architecture's own initialiser: Kaiming-uniform, |w| <= 1/sqrt(fan_in)
    assert float(cascading.fc_1.weight.detach().abs().max()) <= 1 / np.sqrt(16 * 7 * 7)
    before = torch.random.get_rng_state()
    randomize.randomized(module, ("conv_1",), seed=1)
    assert torch.equal(before, torch.random.get_rng_state())          # the caller's random state kept


def test_cascading_step_0_gives_the_trained_maps_bit_for_bit(batch):
    module, x, target = batch
    run = randomization.run(module, x, target, methods.METHODS, FEW, seed=0, modes=("cascading",))
    trained = methods.compute_all(module, x, target, methods.METHODS, FEW, randomization.step_seed(0, 0))
    assert run["cascading"][0].label == "trained"
    for name in methods.METHODS:
        assert run["cascading"][0].maps[name].shape == (2, 28, 28)
        np.testing.assert_array_equal(run["cascading"][0].maps[name], trained[name], err_msg=name)
    # a randomised step changes every method's map but the deconvnet's, which the fc layers do not reach
    for name in methods.METHODS:
        moved = not np.array_equal(run["cascading"][1].maps[name], trained[name])
        assert moved == (name != "deconvnet"), name
    assert not np.array_equal(run["cascading"][-1].maps["deconvnet"], trained["deconvnet"])


def test_the_same_seed_gives_the_same_table(batch):
    module, x, target = batch
    config = study.Config(methods=("deconvnet", "gradient", "gradcam", "random"), settings=FEW, seed=4)
    first, run = study.model_randomization(module, x, target, config)
    again, _ = study.model_randomization(module, x, target, config)
    faithful = [study.faithfulness_numbers(module, x, target, run["trained"], study.Config(
        methods=config.methods, settings=FEW, seed=4, curve_steps=7, road_fractions=(0.3, 0.6), oracle=False))
        for _ in range(2)]
    assert json.dumps(faithful[0]) == json.dumps(faithful[1])
    other, _ = study.model_randomization(module, x, target, study.Config(
        methods=config.methods, modes=("independent",), settings=FEW, seed=5))
    assert json.dumps(first) == json.dumps(again)
    assert json.dumps(first["independent"]) != json.dumps(other["independent"])
    # the trained column is 1 whatever the method and metric (each map against itself)
    for metric, by_method in first["cascading"]["similarity"].items():
        for name, values in by_method.items():
            assert values["mean"][0] == pytest.approx(1.0, abs=1e-12), (metric, name)


def test_deconvnet_map_is_the_projection_of_the_strongest_unit(batch):
    from npcnn import deconv
    module, x, _ = batch
    model = bridge.from_torch(module)
    images = x.numpy()
    _, acts = model.forward(images, record=True)
    for n in range(len(images)):
        c = int(np.unravel_index(np.argmax(acts["pool_2"][n]), acts["pool_2"][n].shape)[0])
        expected = deconv.project(model, images[n:n + 1], "pool_2", c, select="max")
        np.testing.assert_array_equal(methods.deconvnet_maps(module, x[n:n + 1]), expected)


def test_balanced_indices_take_the_classes_in_turn():
    labels = np.array([1, 1, 0, 2, 0, 1, 2, 2])
    assert study.balanced_indices(labels, 5).tolist() == [2, 0, 3, 4, 1]
    assert sorted(study.balanced_indices(labels, 100).tolist()) == list(range(8))


def test_permuted_labels_training_is_a_permutation_and_deterministic(data):
    train_set = data[0]
    keep = np.arange(256)
    small = type(train_set)(train_set.images[keep], train_set.labels[keep], train_set.name, "train", "test")
    a = permuted.train_permuted("lenet5", small, 0.1307, 0.3081, seed=2, max_epochs=2, patience=5)
    b = permuted.train_permuted("lenet5", small, 0.1307, 0.3081, seed=2, max_epochs=2, patience=5)
    assert sorted(a.labels.tolist()) == sorted(small.labels.tolist())
    assert (a.labels != small.labels).mean() > 0.8
    assert a.stopped == "max_epochs" and len(a.history) == 2
    assert all(torch.equal(v, b.module.state_dict()[k]) for k, v in a.module.state_dict().items())


def test_the_time_limit_stops_training_within_an_epoch(data):
    """The limit is tested before each batch, so a run stops within a batch
    of it (an epoch of 60,000 images overran a 30 s limit by 15 s): here the
    first epoch ends early, after its first batch, and is the only one."""
    # patience 0 would call any epoch a plateau: the cut one is still time's
    result = permuted.train_permuted("lenet5", data[0], 0.1307, 0.3081, seed=2, seconds=1e-9, patience=0,
                                     batch_size=16)
    assert result.stopped == "seconds" and len(result.history) == 1
    assert result.history[0]["images"] == 16 and np.isfinite(result.history[0]["loss"])


def parse(argv):
    parser = Parser(prog="npcnn")
    sanity_cmd.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_command_writes_figures_and_tables(checkpoint, tmp_path, capsys):
    out = tmp_path / "sanity"
    args = parse(["sanity", "--checkpoint", str(checkpoint), "--images", "4", "--out", str(out),
                  "--methods", "deconvnet", "gradient", "random", "--figure-images", "1", "--ig-steps", "4",
                  "--permuted-epochs", "1", "--permuted-samples", "200", "--curve-steps", "7",
                  "--road-fractions", "0.5", "--modes", "independent",
                  "--replacement", "blur", "--dataset", "mnist5k", "--quiet"])
    assert args.run(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["model_randomization"]["independent"]["steps"] == ["fc_3", "fc_2", "fc_1", "conv_2", "conv_1"]
    assert set(results["faithfulness"]["deletion"]) == {"deconvnet", "gradient", "random", "oracle"}
    assert results["data_randomization"]["stopped"] == "max_epochs"
    for name in ("independent_0.png", "similarity_hog.png", "data_randomization.png",
                 "deletion_insertion.png", "road.png", "results.md", "permuted_labels.pt"):
        assert (out / name).stat().st_size > 0, name
    # the deconvnet starts below the fc layers: re-initialising one of them changes none of its maps
    assert "| deconvnet | 1.00 ± 0.00 | 1.00 ± 0.00 | 1.00 ± 0.00" in (out / "results.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--images", "1"], "--images: must be in [2, 10000]"),
    (["--methods", "lime"], "invalid choice: 'lime'"),
    (["--replacement", "grey"], "invalid choice: 'grey'"),
    (["--permuted-seconds", "0"], "--permuted-seconds: must be > 0"),
    (["--road-fractions", "1"], "--road-fractions: must be in (0, 1)"),
])
def test_bad_arguments_are_one_line(checkpoint, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as done:
        parse(["sanity", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "o")] + argv)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_demo_section_quick(checkpoint, data, tmp_path):
    written = sanity_cmd.demo_section(checkpoint, data[1], tmp_path / "demo", quick=True, train_set=data[0])
    assert len(written) >= 8
    for path, caption in written:
        assert path.exists() and path.parent == tmp_path / "demo" and caption
