"""The bridge: weight files in and out, training, trained-weight parity and
the reference deconvnet."""

import numpy as np
import pytest
import torch

import bridge
import npcnn
from bridge.train import train
from npcnn.data import load_mnist, to_tensor


@pytest.fixture(scope="session")
def mnist5k():
    return load_mnist("mnist5k", "train", verbose=False), load_mnist("mnist5k", "test", verbose=False)


@pytest.fixture(scope="session")
def trained(mnist5k, tmp_path_factory):
    """Both MNIST networks after a short training run, with their checkpoints."""
    folder = tmp_path_factory.mktemp("trained")
    runs = {}
    for arch in ("lenet5", "simplecnn"):
        out = folder / f"{arch}.pt"
        result = train(arch, *mnist5k, epochs=2, seed=0, device="cpu", out=out, save_every=1,
                       progress=False)
        runs[arch] = (result, out)
    return runs


def test_training_learns_and_writes_complete_checkpoints(trained):
    for arch, (result, out) in trained.items():
        assert result.test_accuracy > 0.8, f"{arch} learned nothing: {result.test_accuracy}"
        assert [p.name for p in result.checkpoints] == [
            f"{arch}.epoch01.pt", f"{arch}.epoch02.pt", f"{arch}.pt"]
        state, meta = bridge.read_checkpoint(out)
        assert meta["arch"] == arch and meta["dataset"] == "mnist5k" and meta["epochs"] == 2
        assert meta["test_accuracy"] == result.test_accuracy
        assert meta["normalization"] == {"mean": 0.1307, "std": 0.3081}
        assert meta["torch_version"] == torch.__version__
        assert not list(out.parent.glob(".*.part"))  # no temp file left


def test_training_is_deterministic_under_a_seed(mnist5k):
    small = type(mnist5k[0])(mnist5k[0].images[:600], mnist5k[0].labels[:600], "mnist5k", "train", "")
    a = train("simplecnn", small, mnist5k[1], epochs=1, seed=3, device="cpu", progress=False)
    b = train("simplecnn", small, mnist5k[1], epochs=1, seed=3, device="cpu", progress=False)
    c = train("simplecnn", small, mnist5k[1], epochs=1, seed=4, device="cpu", progress=False)
    sa, sb, sc = (r.module.state_dict() for r in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


@pytest.mark.parametrize("arch", ["lenet5", "simplecnn"])
def test_trained_weights_every_activation_equals_torch(arch, trained, mnist5k):
    """float32, atol 1e-5 and rtol 1e-5, on real test digits."""
    _, out = trained[arch]
    model = bridge.load(out)
    module = bridge.load_module(out)
    x = to_tensor(mnist5k[1].images[:200])
    rows = bridge.compare_activations(model, module, x, atol=1e-5, rtol=1e-5)
    bad = [(r.layer, r.max_abs) for r in rows if not r.within]
    assert not bad, bad
    assert model.meta["arch"] == arch


def test_lenet5_filters_and_switches_reachable_after_training(trained, mnist5k):
    _, out = trained["lenet5"]
    module = bridge.load_module(out)
    assert tuple(module.conv_1.weight.shape) == (6, 1, 5, 5)
    x = to_tensor(mnist5k[1].images[:5])
    _, acts, switches = bridge.torch_activations(module, torch.from_numpy(x), switches=True)
    _, ours = bridge.load(out).forward(x, record=True)
    for pool in ("pool_1", "pool_2"):
        np.testing.assert_array_equal(switches[pool].numpy(), ours.switches[pool])


def test_round_trips_keep_weights_identical(trained, tmp_path):
    _, out = trained["lenet5"]
    module = bridge.load_module(out)
    back = bridge.to_torch(bridge.from_torch(module))
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in module.state_dict().items())
    model = bridge.load(out)
    model.save(tmp_path / "w.npz")
    again = bridge.load(tmp_path / "w.npz")
    assert all(np.array_equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())
    assert again.meta["test_accuracy"] == model.meta["test_accuracy"]


@pytest.mark.parametrize("arch,file", [("alexnet", "alexnet-owt-7be5be79.pth"),
                                       ("vgg16", "vgg16-397923af.pth")])
def test_torchvision_state_dicts_load_from_the_hub_cache(arch, file, tmp_path, monkeypatch):
    """A plain state_dict with torchvision's keys, named as torchvision's
    published file and placed in a (fake) hub cache, loads with no arch given."""
    torch.manual_seed(0)
    state = bridge.torch_model(arch).state_dict()
    torch.save(state, tmp_path / file)
    monkeypatch.setattr(bridge.checkpoint, "HUB_CACHE", tmp_path)
    module = bridge.load_pretrained(arch)
    assert all(torch.equal(v, module.state_dict()[k]) for k, v in state.items())
    model = bridge.load(tmp_path / file)
    assert model.arch == arch
    np.testing.assert_array_equal(model.state_dict()["classifier.6.bias"], state["classifier.6.bias"].numpy())


def test_missing_pretrained_file_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setattr(bridge.checkpoint, "HUB_CACHE", tmp_path)
    with pytest.raises(ValueError, match="vgg16-397923af.pth"):
        bridge.load_pretrained("vgg16")


def test_checkpoint_of_another_architecture_is_refused(trained):
    _, out = trained["simplecnn"]
    with pytest.raises(ValueError, match=r"simplecnn.pt: is a simplecnn checkpoint, not lenet5"):
        bridge.load(out, arch="lenet5")


def test_plain_state_dict_of_another_architecture_names_the_keys(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save(bridge.torch_model("simplecnn").state_dict(), path)
    with pytest.raises(ValueError, match=r"plain.pth: .*missing keys \[.*'fc_3.bias'"):
        bridge.load(path, arch="lenet5")


def test_wrong_shape_names_the_key_and_both_shapes(tmp_path):
    state = bridge.torch_model("lenet5").state_dict()
    state["fc_1.weight"] = torch.zeros(120, 256)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"fc_1.weight has shape \(120, 256\) in the file but "
                                         r"\(120, 400\) in the model"):
        bridge.load(tmp_path / "bad.pt", arch="lenet5")
    with pytest.raises(ValueError, match=r"fc_1.weight has shape \(120, 256\)"):
        bridge.load_module(tmp_path / "bad.pt", arch="lenet5")


def test_truncated_file_is_refused(trained, tmp_path):
    _, out = trained["lenet5"]
    cut = tmp_path / "cut.pt"
    cut.write_bytes(out.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"cut.pt: not a readable torch file"):
        bridge.load(cut)


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_file_needing_code_to_unpickle_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "meta": Payload()}, path)
    with pytest.raises(ValueError, match=r"evil.pt: refused: the file needs arbitrary code"):
        bridge.load(path)
    assert "must never run" not in capsys.readouterr().out


def test_interrupted_save_leaves_nothing_behind(tmp_path, monkeypatch):
    module = bridge.torch_model("lenet5")

    def interrupted(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bridge.save_checkpoint(tmp_path / "x.pt", module)
    assert list(tmp_path.iterdir()) == []


# -- the reference deconvnet -------------------------------------------------

def test_first_layer_projection_is_the_transposed_convolution(trained, mnist5k):
    """From conv_1 the deconvnet only filters with the transposed filters:
    conv_transpose2d of the kept map, no bias."""
    module = bridge.load_module(trained["lenet5"][1], ).double()
    x = to_tensor(mnist5k[1].images[:3], dtype=np.float64)
    proj = bridge.project_reference(module, x, "conv_1", 4)
    w = module.conv_1.weight.detach().numpy()
    act = npcnn.functional.conv2d(x, w, module.conv_1.bias.detach().numpy(), 1, 2)
    keep = np.zeros_like(act)
    keep[:, 4] = act[:, 4]
    np.testing.assert_allclose(proj, npcnn.functional.conv_transpose2d(keep, w, None, 1, 2),
                               atol=1e-10)


@pytest.mark.parametrize("select", ["map", "max"])
def test_rules_differ_only_in_relu(trained, mnist5k, select):
    module = bridge.load_module(trained["lenet5"][1]).double()
    x = to_tensor(mnist5k[1].images[:4], dtype=np.float64)
    # saliency is the plain gradient of <act, signal>
    xt = torch.tensor(x, requires_grad=True)
    saliency = bridge.project_reference(module, x, "pool_2", 7, select, rule="saliency")
    captured = {}
    h = module.pool_2.register_forward_hook(lambda m, i, o: captured.setdefault("a", o))
    module(xt)
    h.remove()
    a = captured["a"]
    signal = bridge.deconv_reference.starting_signal(a.detach(), 7, select)
    (grad,) = torch.autograd.grad(a, xt, signal)
    np.testing.assert_allclose(saliency, grad.numpy(), atol=1e-12)
    deconv = bridge.project_reference(module, x, "pool_2", 7, select)
    guided = bridge.project_reference(module, x, "pool_2", 7, select, rule="guided")
    assert not np.allclose(deconv, saliency) and not np.allclose(deconv, guided)
    # positive homogeneity: without biases, scaling the image by a > 0 scales
    # every activation (the starting signal) by a and leaves the switches;
    # every step down is linear or a ReLU, so the projection scales by a too
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.zero_()
    np.testing.assert_allclose(bridge.project_reference(module, 3 * x, "pool_2", 2, select),
                               3 * bridge.project_reference(module, x, "pool_2", 2, select),
                               rtol=1e-10, atol=1e-12)


def test_max_keeps_one_unit_per_image():
    act = torch.arange(2 * 3 * 4 * 4, dtype=torch.float64).reshape(2, 3, 4, 4)
    s = bridge.deconv_reference.starting_signal(act, 1, "max")
    assert (s != 0).sum() == 2 and s[0, 1, 3, 3] == act[0, 1, 3, 3]


def test_reference_errors():
    module = bridge.torch_model("lenet5").double()
    x = np.zeros((1, 1, 28, 28))
    with pytest.raises(ValueError, match=r"unknown layer 'conv_9'; valid layers: conv_1, relu_1"):
        bridge.project_reference(module, x, "conv_9", 0)
    with pytest.raises(ValueError, match=r"channel 6 is out of range for layer 'conv_1' with 6"):
        bridge.project_reference(module, x, "conv_1", 6)
    with pytest.raises(ValueError, match=r"layer 'fc_1' has output shape \(1, 120\)"):
        bridge.project_reference(module, x, "fc_1", 0)


def test_training_leaves_torch_global_switches_as_it_found_them(trained):
    """train() turns on deterministic kernels only while it runs: left on, it
    would break later ops that have no deterministic kernel."""
    assert not torch.are_deterministic_algorithms_enabled()
