"""npcnn.Model against its torch twin: every named activation, the
networks of the specs, both dtypes; weights through .npz; hooks, names and errors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import bridge
import npcnn
from parity import assert_close

SMALL_INPUT = {"simplecnn": (2, 1, 28, 28), "lenet5": (2, 1, 28, 28), "separable": (2, 1, 28, 28),
               "alexnet": (1, 3, 67, 67), "vgg16": (1, 3, 32, 32)}


def twin(arch, dtype, seed=0):
    torch.manual_seed(seed)
    module = bridge.torch_model(arch, dtype=dtype)
    return module, bridge.from_torch(module)


@pytest.mark.parametrize("arch", list(SMALL_INPUT))
def test_every_activation_equals_torch_float64(arch, backend):
    module, model = twin(arch, torch.float64)
    model.backend = backend
    x = np.random.default_rng(0).standard_normal(SMALL_INPUT[arch])
    out, acts = model.forward(x, record=True)
    ref_out, ref = bridge.torch_activations(module, torch.from_numpy(x))
    assert list(acts) == list(ref) == model.layer_names
    for name in acts:
        assert acts[name].dtype == np.float64
        assert_close(name, acts[name], ref[name])
    assert_close("output", out, ref_out)


@pytest.mark.parametrize("arch", ["simplecnn", "lenet5"])
def test_mnist_networks_float32(arch, backend):
    module, model = twin(arch, torch.float32, seed=1)
    model.backend = backend
    x = np.random.default_rng(1).standard_normal((8, 1, 28, 28)).astype(np.float32)
    _, acts = model.forward(x, record=True)
    _, ref = bridge.torch_activations(module, torch.from_numpy(x))
    for name in acts:
        assert acts[name].dtype == np.float32
        assert_close(name, acts[name], ref[name])


@pytest.mark.parametrize("arch", ["alexnet", "vgg16"])
def test_imagenet_networks_float32_at_224(arch):
    """Relative error <= 1e-4 of every activation, at full size."""
    module, model = twin(arch, torch.float32, seed=2)
    x = np.random.default_rng(2).standard_normal((1, 3, 224, 224)).astype(np.float32)
    _, acts = model.forward(x, record=True)
    _, ref = bridge.torch_activations(module, torch.from_numpy(x))
    for name in acts:
        r = ref[name].numpy()
        rel = np.abs(acts[name] - r).max() / max(np.abs(r).max(), 1e-30)
        assert rel <= 1e-4, f"{arch} {name}: relative error {rel:.2e}"


def test_switches_are_recorded_and_equal_torch_indices():
    module, model = twin("lenet5", torch.float64)
    x = np.random.default_rng(3).standard_normal((3, 1, 28, 28))
    _, acts = model.forward(x, record=True)
    assert set(acts.switches) == {"pool_1", "pool_2"}
    for pool, before in (("pool_1", "relu_1"), ("pool_2", "relu_2")):
        _, idx = TF.max_pool2d(torch.from_numpy(acts[before]), 2, 2, return_indices=True)
        np.testing.assert_array_equal(acts.switches[pool], idx.numpy())
    assert acts.input is x


def test_forward_hooks_and_until():
    model = npcnn.build("simplecnn", seed=0)
    seen = []
    handle = model.register_forward_hook("relu_2", lambda name, i, o: seen.append((name, o.shape)))
    x = np.zeros((2, 1, 28, 28), dtype=np.float32)
    model(x)
    assert seen == [("relu_2", (2, 16, 14, 14))]
    handle.remove()
    model(x)
    assert len(seen) == 1
    assert model.forward(x, until="max_pool_1").shape == (2, 8, 14, 14)


@pytest.mark.parametrize("arch", ["lenet5", "vgg16"])
def test_plain_forward_with_its_inplace_relus_equals_the_recorded_one(arch, backend):
    model = npcnn.build(arch, seed=0)
    model.backend = backend
    x = np.random.default_rng(4).standard_normal(SMALL_INPUT[arch]).astype(np.float32)
    kept = x.copy()
    expected, acts = model.forward(x, record=True)
    np.testing.assert_array_equal(model(x), expected)
    np.testing.assert_array_equal(x, kept)
    first_conv = next(name for name in model.layer_names if "relu" not in name)
    assert acts[first_conv].min() < 0  # recording keeps the pre-ReLU values


def test_inplace_relus_never_touch_the_input_nor_what_a_hook_saw():
    model = npcnn.Model({"relu": npcnn.layers.ReLU(), "flatten": npcnn.layers.Flatten(),
                         "relu_again": npcnn.layers.ReLU()})
    x = np.array([[[[-1.0, 2.0]]]])
    np.testing.assert_array_equal(model(x), [[0.0, 2.0]])
    np.testing.assert_array_equal(x, [[[[-1.0, 2.0]]]])
    lenet = npcnn.build("lenet5", seed=0)
    seen = {}
    lenet.register_forward_hook("conv_1", lambda name, i, o: seen.setdefault(name, o))
    lenet(np.random.default_rng(5).standard_normal((2, 1, 28, 28)).astype(np.float32))
    assert seen["conv_1"].min() < 0


def test_aliases_resolve_to_torchvision_paths():
    vgg = npcnn.build("vgg16")
    assert vgg.resolve("conv5_3") == "features.28" and vgg.resolve("pool5") == "features.30"
    assert npcnn.build("alexnet").resolve("pool5") == "features.12"


def test_unknown_layer_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown layer 'conv_9'; valid layers: conv_1, relu_1, pool_1"):
        npcnn.build("lenet5").resolve("conv_9")


def test_state_dict_keys_and_parameter_counts_match_torch():
    for arch, count in {"simplecnn": 52138, "lenet5": 61706, "separable": 36906, "alexnet": 61100840,
                        "vgg16": 138357544}.items():
        module = bridge.torch_model(arch)
        model = npcnn.build(arch)
        assert list(model.state_dict()) == list(module.state_dict())
        assert model.num_parameters() == count == sum(p.numel() for p in module.parameters())


def test_npz_round_trip(tmp_path):
    model = npcnn.build("lenet5", seed=4, dtype=np.float64)
    path = tmp_path / "lenet5.npz"
    model.save(path)
    loaded = npcnn.load(path)
    assert loaded.arch == "lenet5" and loaded.dtype == np.float64
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key], value)
    assert [p.name for p in tmp_path.iterdir()] == ["lenet5.npz"]  # no temp file left


def test_torch_round_trip_keeps_weights_identical():
    module, model = twin("simplecnn", torch.float32, seed=5)
    back = bridge.to_torch(model)
    for key, value in module.state_dict().items():
        assert torch.equal(value, back.state_dict()[key]), key


def test_load_state_dict_names_the_key_and_both_shapes():
    model = npcnn.build("lenet5")
    state = dict(model.state_dict())
    state["conv_2.weight"] = np.zeros((16, 6, 3, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"conv_2.weight has shape \(16, 6, 3, 3\) in the file "
                                         r"but \(16, 6, 5, 5\) in the model"):
        model.load_state_dict(state)
    del state["conv_2.weight"]
    with pytest.raises(ValueError, match=r"missing keys \['conv_2.weight'\]"):
        model.load_state_dict(state)


def test_load_refuses_broken_and_foreign_files(tmp_path):
    good = tmp_path / "good.npz"
    npcnn.build("simplecnn", seed=0).save(good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:500])
    with pytest.raises(ValueError, match="truncated.npz"):
        npcnn.load(truncated)
    with pytest.raises(ValueError, match=r"good.npz: .*missing keys"):
        npcnn.load(good, arch="lenet5")   # weights of another architecture
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **{"__npcnn__": np.array({"arch": "lenet5"}, dtype=object)})
    with pytest.raises(ValueError, match="pickled.npz"):
        npcnn.load(pickled)


def test_layer_errors_name_the_layer():
    model = npcnn.build("lenet5")
    with pytest.raises(ValueError, match=r"layer conv_1 \(conv2d\): conv2d: weight .* input has 3"):
        model(np.zeros((1, 3, 28, 28), dtype=np.float32))


def test_a_conv_layer_takes_nn_conv2d_arguments_in_their_order(backend):
    """Conv2d(in, out, kernel_size, stride, padding, dilation, groups, bias),
    positionally as torch: the grouped weight layout, no bias, the same
    output; torch's initialisation bound 1/sqrt(C_in/groups * kH * kW)."""
    from npcnn.layers import Conv2d
    layer = Conv2d(12, 18, 3, 2, 2, 2, 3, False, dtype=np.float64)
    torch.manual_seed(0)
    twin = torch.nn.Conv2d(12, 18, 3, 2, 2, 2, 3, False, dtype=torch.float64)
    assert layer.params["weight"].shape == tuple(twin.weight.shape) == (18, 4, 3, 3)
    assert "bias" not in layer.params and twin.bias is None and layer.fan_in == 4 * 9
    layer.params["weight"][...] = twin.weight.detach().numpy()
    x = np.random.default_rng(0).standard_normal((2, 12, 11, 9))
    assert_close("grouped dilated conv", layer.forward(x, backend), twin(torch.from_numpy(x)))
    with pytest.raises(ValueError, match=r"Conv2d: out_channels \(18\) must be divisible by groups \(4\)"):
        Conv2d(12, 18, 3, groups=4)
    with pytest.raises(ValueError, match=r"Conv2d: groups must be >= 1, got 0"):
        Conv2d(12, 18, 3, groups=0)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_max_pool2d_layer_takes_nn_max_pool2ds_arguments_positionally(backend):
    """(kernel_size, stride, padding, dilation, return_indices, ceil_mode):
    torch's order, so the sixth is ceil_mode, not the fifth; the switches
    are torch's, recorded whatever return_indices says."""
    from npcnn.layers import MaxPool2d
    layer = MaxPool2d(3, 2, 1, 2, False, True)
    twin = torch.nn.MaxPool2d(3, 2, 1, 2, True, True)
    x = np.maximum(np.random.default_rng(1).standard_normal((2, 3, 10, 9)), 0)   # ties after a ReLU
    y, switches = layer.forward(x, backend)
    y_torch, switches_torch = twin(torch.from_numpy(x))
    assert_close("dilated ceil-mode pool", y, y_torch)
    assert_close("its switches", switches, switches_torch)


def test_non_finite_weights_are_refused_at_load():
    model = npcnn.build("lenet5")
    state = {k: v.copy() for k, v in model.state_dict().items()}
    state["fc_2.weight"][3, 4] = np.nan
    with pytest.raises(ValueError, match=r"fc_2.weight holds non-finite values .*\(84, 120\)"):
        model.load_state_dict(state)


def test_weights_are_tested_in_the_models_dtype_and_must_be_real_numbers():
    """A float64 1e300 is an inf once in a float32 model: refused as one;
    complex values (whose imaginary part a copy would drop) and objects
    are refused by key; the model is left as it was, every layer of it."""
    model = npcnn.build("lenet5", seed=0)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    state = {k: 2 * v.astype(np.float64) for k, v in before.items()}   # all new but one
    state["fc_2.weight"][3, 4] = 1e300
    with pytest.raises(ValueError, match=r"^load_state_dict \(lenet5\): fc_2.weight holds non-finite values "
                                         r"\(NaN or inf\) in float32"):
        model.load_state_dict(state)
    for kind in (complex, object):
        state["fc_2.weight"] = before["fc_2.weight"].astype(kind)
        with pytest.raises(ValueError, match=rf"^load_state_dict \(lenet5\): fc_2.weight holds "
                                             rf"{np.dtype(kind)} values, not real numbers"):
            model.load_state_dict(state)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)
    assert npcnn.build("lenet5", dtype=np.float64).state_dict()["fc_2.weight"].dtype == np.float64


def test_an_unknown_backend_is_refused_when_the_model_is_made():
    with pytest.raises(ValueError, match=r"^Model: backend must be 'numpy' or 'numba', got 'torch'$"):
        npcnn.build("lenet5", backend="torch")


def test_record_is_a_flag():
    """``record="no"`` is truthy: it recorded, and a caller expecting the
    output alone got a pair."""
    model = npcnn.build("lenet5", seed=0)
    with pytest.raises(ValueError, match=r"^forward: record must be a bool, got 'no'$"):
        model.forward(np.zeros((1, 1, 28, 28), np.float32), record="no")


@pytest.mark.parametrize("dtype", [np.float16, np.int64, "bogus", None])
def test_a_dtype_the_ops_refuse_is_refused_when_the_model_is_made(dtype):
    with pytest.raises(ValueError, match=r"^build \(lenet5\): dtype must be float32 or float64"):
        npcnn.build("lenet5", dtype=dtype)
    with pytest.raises(ValueError, match=r"^astype \(lenet5\): dtype must be float32 or float64"):
        npcnn.build("lenet5").astype(dtype)


def hows(model, **plan_args):
    """{layer: how} of the model's forward plan."""
    return {name: how for name, _, how in model.plan(**plan_args)}


@pytest.mark.parametrize("arch", ["lenet5", "simplecnn"])
def test_a_plain_forward_fuses_each_conv_with_its_relu(arch):
    """Without a recording, conv + ReLU run as F.conv2d_relu and the other
    ReLUs in place; the output is the recorded forward's, and ``until`` a
    conv still gives the conv's own output, negative values included."""
    model = npcnn.build(arch, seed=3)
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    plain = hows(model)
    convs = [name for name, layer in model.layers.items() if layer.kind == "conv2d"]
    assert [plain[name] for name in convs] == ["conv+relu"] * 2
    assert list(plain.values()).count("done by the conv") == 2
    assert all(how == "relu in place" for name, how in plain.items()
               if model.layers[name].kind == "relu" and how != "done by the conv")
    out = model(x)
    recorded, acts = model.forward(x, record=True)
    assert "conv+relu" not in hows(model, record=True).values()
    np.testing.assert_array_equal(out, recorded)
    until = model.forward(x, until="conv_2")
    assert hows(model, stop="conv_2") == {"conv_1": "conv+relu", "relu_1": "done by the conv",
                                         **{n: plain[n] for n in list(plain)[2:list(plain).index("conv_2")]},
                                         "conv_2": "run"}
    np.testing.assert_array_equal(until, acts["conv_2"])
    assert (until < 0).any()


def test_the_last_plan_is_reused_until_what_it_was_made_for_changes():
    """The plan of the last forward comes back as it is for the same
    arguments; a hook, other arguments or a replaced layer make a new one,
    which is what a first plan for them would be."""
    model = npcnn.build("lenet5", seed=3)
    plain = model.plan()
    assert model.plan() is plain
    assert hows(model, record=True)["conv_1"] == "run" and model.plan() is not plain
    handle = model.register_forward_hook("conv_1", lambda *args: None)
    assert hows(model)["conv_1"] == "run"                  # hooked: no conv+relu
    handle.remove()
    assert hows(model)["conv_1"] == "conv+relu"
    assert hows(model, record=True, kept={"fc_3"})["conv_1"] == "conv+relu"
    assert hows(model, record=True, kept={"conv_1"})["conv_1"] == "run"
    assert hows(model, stop="conv_2") != hows(model)
    swapped = npcnn.build("lenet5", seed=4).layers["conv_2"]
    model.layers["conv_2"] = swapped
    assert dict((name, layer) for name, layer, _ in model.plan())["conv_2"] is swapped


def test_a_recording_keeps_only_the_layers_asked_for():
    """``keep=``: only those outputs are recorded, the switches and every
    shape still are, and a conv whose output is not kept runs with its ReLU
    as one op; what is kept equals the full recording to the bit."""
    model = npcnn.build("lenet5", seed=4)
    x = np.random.default_rng(1).standard_normal((3, 1, 28, 28)).astype(np.float32)
    full_out, full = model.forward(x, record=True)
    assert set(full) == set(model.layer_names)
    assert "conv+relu" not in hows(model, record=True).values()

    out, lean = model.forward(x, record=True, keep=["pool_2"])
    assert list(hows(model, record=True, kept={"pool_2"}).values()).count("conv+relu") == 2
    assert list(lean) == ["pool_2"]
    np.testing.assert_array_equal(out, full_out)
    np.testing.assert_array_equal(lean["pool_2"], full["pool_2"])
    assert lean.shapes == full.shapes == {name: a.shape for name, a in full.items()}
    for name, switches in full.switches.items():
        np.testing.assert_array_equal(lean.switches[name], switches)

    _, lean = model.forward(x, record=True, keep=["conv_1"])  # kept: its own output, negatives and all
    kept_conv_1 = hows(model, record=True, kept={"conv_1"})
    assert kept_conv_1["conv_1"] == "run" and kept_conv_1["conv_2"] == "conv+relu"
    assert list(lean) == ["conv_1"]
    np.testing.assert_array_equal(lean["conv_1"], full["conv_1"])
    assert (lean["conv_1"] < 0).any()

    handle = model.register_forward_hook("conv_2", lambda name, a, b: None)
    # a hook sees the conv's output: no fusion, and no ReLU overwrites what it saw
    assert set(hows(model, record=True, kept={"pool_2"}).values()) == {"run", "with switches"}
    assert set(hows(model).values()) == {"run"}
    handle.remove()
    with pytest.raises(ValueError, match="unknown layer 'pool_9'"):
        model.forward(x, record=True, keep=["pool_9"])
    _, one = model.forward(x, record=True, keep="fc_3")  # one name alone
    assert list(one) == ["fc_3"]
    assert model.output_shapes(x.shape) == full.shapes
