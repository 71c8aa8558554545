"""The depthwise-separable MNIST net (npcnn.architectures.SEPARABLE): dilated
depthwise convs, 1x1 pointwise convs and a grouped conv, end to end. It
builds with torch's grouped weight layout and initialisation, round-trips
its weights through the bridge, computes every layer as its torch twin does
and projects with the deconvnet as the torch reference deconvnet does, from
every conv, ReLU and pool, on both backends and in both float types."""
import numpy as np
import pytest
import torch

import bridge
import npcnn
from bridge.train import TRAINABLE, train
from npcnn import deconv, sparse_signal
from npcnn.architectures import conv, relu
from npcnn.data import load_mnist, to_tensor
from npcnn.receptive_field import receptive_field, unit_window
from parity import assert_close

TORCH_DTYPES = {np.float64: torch.float64, np.float32: torch.float32}


@pytest.fixture(scope="module")
def digits():
    """Real digits: their flat background makes flat feature maps, so after
    the ReLUs most pooling windows are ties."""
    return load_mnist("mnist5k", "test", verbose=False).images[:3]


def twins(dtype, backend="numba", seed=0):
    torch.manual_seed(seed)
    module = bridge.torch_model("separable", dtype=TORCH_DTYPES[dtype])
    return module, bridge.from_torch(module, backend=backend)


def test_it_builds_with_torchs_grouped_layout_and_initialisation():
    model = npcnn.build("separable", seed=0)
    shapes = {key: value.shape for key, value in model.state_dict().items() if key.endswith("weight")}
    assert shapes == {"conv_1.weight": (16, 1, 3, 3), "depthwise_1.weight": (16, 1, 3, 3),
                      "pointwise_1.weight": (32, 16, 1, 1), "grouped_2.weight": (64, 8, 3, 3),
                      "fc_1.weight": (10, 3136)}
    assert shapes == {k: tuple(v.shape) for k, v in bridge.torch_model("separable").state_dict().items()
                      if k.endswith("weight")}
    # uniform in +-1/sqrt(C_in/groups * kH * kW): a depthwise 3x3 sums 9 inputs, not 16 * 9
    for name, fan_in in (("depthwise_1", 9), ("grouped_2", 8 * 9), ("pointwise_1", 16)):
        w = model[name].params["weight"]
        assert np.abs(w).max() <= 1 / np.sqrt(fan_in) < np.abs(w).max() * 1.2, name
    out = model.output_shapes((2, 1, 28, 28))
    assert [out[n] for n in ("pool_1", "depthwise_1", "pointwise_1", "grouped_2", "fc_1")] == [
        (2, 16, 14, 14), (2, 16, 14, 14), (2, 32, 14, 14), (2, 64, 7, 7), (2, 10)]


def test_its_weights_round_trip_through_the_bridge(tmp_path):
    module, model = twins(np.float32)
    back = bridge.to_torch(model)
    assert all(torch.equal(a, b) for a, b in zip(module.state_dict().values(), back.state_dict().values()))
    bridge.save_checkpoint(tmp_path / "separable.pt", module)
    torch.save(module.state_dict(), tmp_path / "plain.pt")      # no metadata: the keys name the network
    again = npcnn.load(model.save(tmp_path / "separable.npz"))
    for loaded in (bridge.load(tmp_path / "separable.pt"), bridge.load(tmp_path / "plain.pt"), again):
        assert loaded.arch == "separable"
        for key, value in model.state_dict().items():
            np.testing.assert_array_equal(loaded.state_dict()[key], value)
    # a file of the same keys without the groups is refused, naming the layout
    state = {k: v.copy() for k, v in model.state_dict().items()}
    state["depthwise_1.weight"] = np.zeros((16, 16, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"depthwise_1.weight has shape \(16, 16, 3, 3\) in the file but "
                                         r"\(16, 1, 3, 3\) in the model \(weight \(C_out, C_in/groups, "
                                         r"kH, kW\) with groups=16\)"):
        model.load_state_dict(state)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_every_layer_equals_the_torch_twin(dtype, backend, digits):
    """float64: 1e-10, float32: 1e-5 (atol and rtol), on real digits."""
    module, model = twins(dtype, backend)
    tol = {np.float64: 1e-10, np.float32: 1e-5}[dtype]
    x = to_tensor(digits, dtype=dtype)
    rows = bridge.compare_activations(model, module, x, atol=tol, rtol=tol)
    assert len(rows) == 11
    bad = [(r.layer, r.max_abs) for r in rows if not r.within]
    assert not bad, bad
    # a plain forward runs each conv with its ReLU as one op (the plan); the same numbers
    assert [how for _, layer, how in model.plan() if layer.kind == "conv2d"] == ["conv+relu"] * 4
    np.testing.assert_array_equal(model(x), model.forward(x, record=True)[0])


def assert_projections_equal(name, ours, ref, dtype):
    """float64: 1e-10, float32: 1e-5, relative to the largest magnitude of
    the reference (a projection's values span many orders; its small ones
    are sums that cancel)."""
    tol = {np.float64: 1e-10, np.float32: 1e-5}[dtype]
    assert_close(name, ours, ref, atol=tol * max(np.abs(ref).max(), np.finfo(dtype).tiny), rtol=0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_projections_from_every_layer_equal_the_reference_deconvnet(dtype, backend, digits):
    """Every conv, ReLU and pool, four maps each (first, second, middle,
    last), the whole map and its strongest unit, deconvnet and guided rules:
    the transposed filtering of a grouped, dilated conv (with grouped_2's
    stride 2 dropping a row and a column) is autograd's."""
    module, model = twins(dtype, backend)
    x = to_tensor(digits, dtype=dtype)
    _, acts = model.forward(x, record=True)
    layers = deconv.projectable_layers(model)
    assert layers == ["conv_1", "relu_1", "pool_1", "depthwise_1", "relu_2", "pointwise_1", "relu_3",
                      "grouped_2", "relu_4"]
    for rule in ("deconvnet", "guided"):
        reference = bridge.ReferenceDeconvnet(module, rule)
        for layer in layers:
            n = acts[layer].shape[1]
            channels = sorted({0, 1, n // 2, n - 1})
            for select in ("map", "max"):
                ours = deconv.project_channels(model, x, layer, channels, select, rule, acts=acts)
                ref = reference.project(x, layer, channels, select)
                assert np.abs(ref).max() > 0
                assert_projections_equal(f"{layer} {select} {rule}", ours, ref, dtype)


def test_a_projection_of_its_own_forward_equals_the_reference(backend, digits):
    """project() runs its own lean forward (each conv fused with its ReLU)."""
    module, model = twins(np.float64, backend, seed=1)
    x = to_tensor(digits, dtype=np.float64)
    for layer, channel in (("relu_4", 37), ("grouped_2", 50), ("relu_3", 5), ("depthwise_1", 15)):
        assert_projections_equal(layer, deconv.project(model, x, layer, channel, "max"),
                                 bridge.project_reference(module, x, layer, channel, "max"), np.float64)


def test_a_dilated_stride_that_steps_over_rows_projects_back_to_the_input_size(backend):
    """The output_padding of the deconvnet's transposed filtering is the rows
    past the conv's last window, whose reach is dilation * (k - 1) + 1, not
    k: here 20 + 2 - 5 = 17 rows, stride 3, so 2 left over (k alone would
    say 1). Two-tap kernels dilated by 3, grouped, as well."""
    spec = npcnn.Spec("strided", (1, 20, 20), (
        conv("conv_1", 1, 4, 3, stride=3, padding=1, dilation=2), relu("relu_1"),     # (4, 6, 6)
        conv("conv_2", 4, 6, 2, dilation=3, groups=2), relu("relu_2")))               # (6, 3, 3)
    torch.manual_seed(4)
    module = bridge.torch_model(spec, dtype=torch.float64)
    model = bridge.from_torch(module, arch=spec, backend=backend)
    x = np.random.default_rng(1).standard_normal((2, 1, 20, 20))
    _, acts = model.forward(x, record=True)
    reference = bridge.ReferenceDeconvnet(module)
    for layer in deconv.projectable_layers(model):
        for select in ("map", "max"):
            ours = deconv.project_channels(model, x, layer, [0, 5 if "2" in layer else 3], select, acts=acts)
            ref = reference.project(x, layer, [0, 5 if "2" in layer else 3], select)
            assert_projections_equal(f"{layer} {select}", ours, ref, np.float64)


SAME = npcnn.Spec("same", (1, 12, 12), (
    conv("conv_1", 1, 4, 2, padding="same"), relu("relu_1"),                          # 0 before, 1 after
    conv("conv_2", 4, 4, 3, padding="same", dilation=2, groups=4), relu("relu_2"),    # 2 and 2
    conv("conv_3", 4, 6, 2, padding="same", dilation=3, groups=2), relu("relu_3")))   # 1 and 2


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")  # torch's note on a copy
def test_same_padding_projects_and_sees_as_torch_pads(backend):
    """torch's padding="same" puts the odd row and column of dilation*(k - 1)
    after the input: the deconvnet gives back and cuts off that extra row,
    and the receptive field starts where the padding before puts it. Each
    layer's projection equals the reference; with positive weights, a unit's
    gradient fills exactly the window ``unit_window`` names."""
    torch.manual_seed(5)
    module = bridge.torch_model(SAME, dtype=torch.float64)
    model = bridge.from_torch(module, arch=SAME, backend=backend)
    assert model["conv_3"].padding_sides() == ((1, 1), (2, 2))
    x = np.random.default_rng(2).standard_normal((2, 1, 12, 12))
    _, acts = model.forward(x, record=True)
    assert acts["relu_3"].shape == (2, 6, 12, 12)
    reference = bridge.ReferenceDeconvnet(module)
    for layer in deconv.projectable_layers(model):
        for select in ("map", "max"):
            assert_projections_equal(f"{layer} {select}", deconv.project_channels(model, x, layer, [1, 3], select,
                                                                                  acts=acts),
                                     reference.project(x, layer, [1, 3], select), np.float64)
    for value in model.state_dict().values():
        np.abs(value, out=value)
    x = np.abs(x) + 0.5
    _, acts = model.forward(x, record=True)
    assert receptive_field(model, "conv_3")[0] == (2 + 4 + 3,) * 2
    for i, j in ((5, 6), (0, 0), (11, 11), (11, 1)):
        signal = np.zeros_like(acts["conv_3"])
        signal[1, 4, i, j] = 1.0
        grad = deconv.backward_from(model, acts, "conv_3", signal, rule="saliency")[1, 0]
        h0, h1, w0, w1 = unit_window(model, "conv_3", i, j, (12, 12))
        window = np.zeros_like(grad, dtype=bool)
        window[h0:h1, w0:w1] = True
        np.testing.assert_array_equal(grad != 0, window, err_msg=f"unit ({i}, {j})")


class NoShortcuts(sparse_signal.Shortcuts):
    def __init__(self):
        self.box = self.channels = False


# layer: (its output's height and width, the output_padding that gives back its input's)
SPARSE_CASES = {"depthwise_1": (14, 0), "pointwise_1": (14, 0), "grouped_2": (7, 1)}


def _spy(monkeypatch, name):
    calls = []
    original = getattr(sparse_signal, name)
    monkeypatch.setattr(sparse_signal, name, lambda *a: calls.append(1) or original(*a))
    return calls


@pytest.mark.parametrize("layer", SPARSE_CASES)
def test_the_sparse_shortcuts_keep_each_group_apart(layer, backend, monkeypatch):
    """The deconvnet's conv step on a signal in a few channels and a small
    box goes by the box (stride 1) and channel by channel, each channel
    through its own group's filters; it must equal the dense grouped,
    dilated call, and torch's. grouped_2 has 8 input and 16 output channels
    per group, stride 2 and 14 input rows: one the stride stepped over."""
    model = npcnn.build("separable", seed=2, dtype=np.float64, backend=backend)
    conv, (H, extra) = model[layer], SPARSE_CASES[layer]
    C = conv.arguments["out_channels"]
    g = np.zeros((3, C, H, H))
    g[0, 1, 2, 3], g[1, C - 1, 4, 4], g[2, C // 2, 0, H - 1], g[2, C // 2 + 1, 1, H - 2] = 1.0, -2.0, 3.0, 0.5
    stride, padding, dilation = (conv.stride,) * 2, (conv.padding,) * 2, (conv.dilation,) * 2
    args = (stride, padding, (extra, extra), conv.groups, dilation)
    w = conv.params["weight"]
    dense = npcnn.functional.conv_transpose2d(g, w, None, *args, backend="numpy")
    assert dense.shape == (3, conv.arguments["in_channels"], 14, 14)
    assert_close(f"{layer} torch", dense, torch.nn.functional.conv_transpose2d(
        torch.from_numpy(g), torch.from_numpy(w), None, *args))
    boxes, by_channel = _spy(monkeypatch, "_in_box"), _spy(monkeypatch, "_by_channel")
    for shortcuts in (sparse_signal.Shortcuts(), NoShortcuts()):
        sparse = sparse_signal.conv_transpose2d(g, w, *args, backend, shortcuts)
        assert_close(f"{layer} {type(shortcuts).__name__}", sparse, dense, rtol=1e-12, atol=1e-14)
    assert len(boxes) == (conv.stride == 1)
    # 4 of 3*C channels hold the signal; the numba backend's direct kernel skips the rest itself
    skips_itself = npcnn.functional.conv_path("conv_transpose2d", g, w, *args[:2], dilation, conv.groups,
                                              backend=backend) == "flipped direct"
    assert len(by_channel) == (not skips_itself)


def test_the_receptive_field_spans_the_dilated_taps():
    """conv 3x3, then a depthwise 3x3 dilated by 2 (taps 2 apart: reach 5),
    then a grouped 3x3 dilated by 2 with stride 2: a unit of the last sees
    3 + 4 + 4 = 11 pixels a side. With positive weights, a positive image
    and every ReLU open, a unit's gradient is nonzero on exactly that
    window, clipped at the borders: nothing cancels, every tap reaches."""
    assert [receptive_field(npcnn.build("separable"), name)[0][0]
            for name in ("conv_1", "pool_1", "depthwise_1", "grouped_2")] == [3, 4, 12, 20]
    spec = npcnn.Spec("dilated", (1, 20, 20), (
        conv("conv_1", 1, 4, 3, padding=1), relu("relu_1"),
        conv("depthwise_1", 4, 4, 3, padding=2, dilation=2, groups=4), relu("relu_2"),
        conv("grouped_2", 4, 8, 3, stride=2, padding=2, dilation=2, groups=2)))
    model = npcnn.Model.from_spec(spec, dtype=np.float64, seed=3)
    for value in model.state_dict().values():
        np.abs(value, out=value)
    assert receptive_field(model, "grouped_2")[:2] == ((11, 11), (2, 2))
    x = np.random.default_rng(0).uniform(0.5, 1.0, (1, 1, 20, 20))
    _, acts = model.forward(x, record=True)
    for c, i, j in ((5, 4, 6), (0, 0, 0), (7, 9, 2)):
        signal = np.zeros_like(acts["grouped_2"])
        signal[0, c, i, j] = 1.0
        grad = deconv.backward_from(model, acts, "grouped_2", signal, rule="saliency")[0, 0]
        h0, h1, w0, w1 = unit_window(model, "grouped_2", i, j, (20, 20))
        window = np.zeros_like(grad, dtype=bool)
        window[h0:h1, w0:w1] = True
        np.testing.assert_array_equal(grad != 0, window, err_msg=f"unit ({c}, {i}, {j})")


def test_it_trains_through_the_bridge_and_loads_its_checkpoint(tmp_path):
    """One epoch on 2,000 digits; the checkpoint loads into npcnn, which
    computes as torch does (float32: 1e-5)."""
    assert "separable" in TRAINABLE
    train_set = load_mnist("mnist5k", "train", verbose=False)
    test_set = load_mnist("mnist5k", "test", verbose=False)
    small = type(train_set)(train_set.images[:2000], train_set.labels[:2000], "mnist5k", "train", "")
    few = type(test_set)(test_set.images[:500], test_set.labels[:500], "mnist5k", "test", "")
    out = tmp_path / "separable.pt"
    result = train("separable", small, few, epochs=1, seed=0, device="cpu", out=out, progress=False)
    assert result.test_accuracy > 0.3, result.test_accuracy  # chance is 0.1; this run: 0.56
    model, module = bridge.load(out), bridge.load_module(out)
    assert model.meta["arch"] == "separable"
    rows = bridge.compare_activations(model, module, to_tensor(few.images[:50]), atol=1e-5, rtol=1e-5)
    assert not [(r.layer, r.max_abs) for r in rows if not r.within]
