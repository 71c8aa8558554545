"""npcnn's deconvnet (both backends) against the torch reference deconvnet
(autograd with ReLU's backward replaced), on all four networks."""
import os

import numpy as np
import pytest
import torch

import bridge
import npcnn
from npcnn import deconv
from npcnn.data import load_mnist, to_tensor
from parity import assert_close


@pytest.fixture(scope="module")
def digits():
    """Real digits: their flat background makes flat feature maps, so after
    the ReLUs most pooling windows are ties."""
    test = load_mnist("mnist5k", "test", verbose=False)
    return test.images[:3]


def twins(arch, dtype):
    torch.manual_seed(0)
    module = bridge.torch_model(arch, dtype={np.float64: torch.float64, np.float32: torch.float32}[dtype])
    return module, bridge.from_torch(module)


def assert_projections_equal(ours, ref, dtype, what):
    """float64: 1e-10, float32: 1e-5, relative to the largest magnitude."""
    tol = {np.float64: 1e-10, np.float32: 1e-5}[dtype]
    scale = max(np.abs(ref).max(), np.finfo(dtype).tiny)
    err = np.abs(ours - ref).max() / scale
    assert err <= tol, f"{what}: relative error {err:.2e} > {tol:g}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("arch", ["lenet5", "simplecnn"])
def test_every_layer_and_map_of_the_mnist_networks(arch, dtype, backend, digits):
    module, model = twins(arch, dtype)
    model.backend = backend
    x = to_tensor(digits, dtype=dtype)
    _, acts = model.forward(x, record=True)
    layers = deconv.projectable_layers(model)
    assert layers[0] == "conv_1" and len(layers) == 6
    for rule in ("deconvnet", "guided"):
        reference = bridge.ReferenceDeconvnet(module, rule)
        for layer in layers:
            channels = range(acts[layer].shape[1])
            for select in ("map", "max"):
                ours = deconv.project_channels(model, x, layer, channels, select, rule, acts=acts)
                ref = reference.project(x, layer, channels, select)
                assert ours.shape == ref.shape and ours.dtype == dtype
                assert_projections_equal(ours, ref, dtype, f"{arch} {layer} {select} {rule}")


def sampled_channels(n):
    return sorted({0, 1, n // 2, n - 1})


# Every map of the ImageNet networks takes minutes (VGG16 about 6 on 2
# cores, AlexNet half a minute): .ci/run runs them as a step of their own
# after the suite; the suite projects four maps of every layer of both
# (test_every_layer_of_alexnet_and_vgg16).
every_map = pytest.mark.skipif(os.environ.get("NPCNN_EVERY_MAP") != "1",
                               reason="minutes on 2 cores: .ci/run runs it after the suite (NPCNN_EVERY_MAP=1)")


@every_map
def test_every_map_of_every_layer_of_alexnet():
    """All 2,816 maps of AlexNet's 13 projectable layers (strongest unit of
    each), against the reference's batched backward."""
    module, model = twins("alexnet", np.float64)
    x = np.random.default_rng(0).standard_normal((1, 3, 67, 67))
    _, acts = model.forward(x, record=True)
    reference = bridge.ReferenceDeconvnet(module)
    for layer in deconv.projectable_layers(model):
        channels = range(acts[layer].shape[1])
        ours = deconv.project_channels(model, x, layer, channels, "max", acts=acts)
        assert_projections_equal(ours, reference.project(x, layer, channels, "max"), np.float64,
                                 f"alexnet {layer}")


@every_map
def test_every_map_of_every_layer_of_vgg16():
    """All 9,920 maps of VGG16's 31 projectable layers at 32x32 (the smallest
    input its five pools take), strongest unit of each, in float64, against
    the reference's batched backward."""
    module, model = twins("vgg16", np.float64)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32))
    _, acts = model.forward(x, record=True)
    reference = bridge.ReferenceDeconvnet(module)
    maps = 0
    for layer in deconv.projectable_layers(model):
        channels = range(acts[layer].shape[1])
        ours = deconv.project_channels(model, x, layer, channels, "max", acts=acts)
        assert_projections_equal(ours, reference.project(x, layer, channels, "max"), np.float64,
                                 f"vgg16 {layer}")
        maps += len(channels)
    assert maps == 9920


@pytest.mark.parametrize("arch,size", [("alexnet", 67), ("vgg16", 32)])
def test_every_layer_of_alexnet_and_vgg16(arch, size):
    """Every projectable layer, four maps each (first, second, middle, last),
    both selections. (Every map of both: the tests above, run by .ci/run.)"""
    module, model = twins(arch, np.float64)
    x = np.random.default_rng(0).standard_normal((2, 3, size, size))
    _, acts = model.forward(x, record=True)
    reference = bridge.ReferenceDeconvnet(module)
    for layer in deconv.projectable_layers(model):
        channels = sampled_channels(acts[layer].shape[1])
        for select in ("map", "max"):
            ours = deconv.project_channels(model, x, layer, channels, select, acts=acts)
            assert_projections_equal(ours, reference.project(x, layer, channels, select),
                                     np.float64, f"{arch} {layer} {select}")


def test_vgg16_from_pool5_at_224_equals_the_reference():
    """In float64: in float32 the two forwards differ by ~1e-6 relative, enough
    to flip a few near-tied switches out of 800,000 (seen: 5), which moves
    those units' projections to a neighbouring pixel. That is the forward's
    rounding, not the deconvnet; float64 has no such near-ties."""
    module, model = twins("vgg16", np.float64)
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224))
    ours = deconv.project_channels(model, x, "pool5", [0, 511], "max")
    ref = bridge.ReferenceDeconvnet(module).project(x, "pool5", [0, 511], "max")
    assert_projections_equal(ours, ref, np.float64, "vgg16 pool5")


def test_alexnet_overlapping_pools_add_up():
    """AlexNet's 3x3/2 pools share switches between windows; the projection
    still equals autograd, which adds the shared values up."""
    module, model = twins("alexnet", np.float64)
    x = np.zeros((1, 3, 67, 67))
    x[0, :, 30:36, 30:36] = 1.0   # one bright patch: its maximum wins several windows
    _, acts = model.forward(x, record=True)
    sw = acts.switches["features.2"].reshape(64, -1)
    assert any(len(np.unique(row)) < row.size for row in sw), "expected shared switches"
    ref = bridge.ReferenceDeconvnet(module).project(x, "features.5", [3], "map")
    assert_projections_equal(deconv.project_channels(model, x, "features.5", [3], acts=acts), ref,
                             np.float64, "alexnet features.5")


def test_backends_agree(digits):
    model = npcnn.build("lenet5", seed=0, dtype=np.float64)
    x = to_tensor(digits, dtype=np.float64)
    fast = deconv.project(model, x, "pool_2", 5, "max")
    model.backend = "numpy"
    assert_close("projection", deconv.project(model, x, "pool_2", 5, "max"), fast, atol=1e-12)


def test_saliency_is_the_gradient(digits):
    module, model = twins("simplecnn", np.float64)
    x = to_tensor(digits, dtype=np.float64)
    ours = deconv.project(model, x, "relu_2", 9, rule="saliency")
    ref = bridge.project_reference(module, x, "relu_2", 9, rule="saliency")
    assert_projections_equal(ours, ref, np.float64, "saliency")


def test_positive_homogeneity_in_the_starting_signal(digits):
    model = npcnn.build("lenet5", seed=1, dtype=np.float64)
    x = to_tensor(digits, dtype=np.float64)
    _, acts = model.forward(x, record=True)
    signal = deconv.starting_signal(acts["pool_2"], [4], "map")[0]
    once = deconv.backward_from(model, acts, "pool_2", signal)
    assert_close("scaled", deconv.backward_from(model, acts, "pool_2", 2.5 * signal), 2.5 * once,
                 rtol=1e-12, atol=1e-14)
    assert np.abs(once).max() > 0


def test_the_callers_signal_is_left_as_it_was(digits):
    """The walk down rectifies in place, but only arrays it made itself."""
    model = npcnn.build("lenet5", seed=1)
    _, acts = model.forward(to_tensor(digits), record=True)
    signal = np.random.default_rng(0).standard_normal(acts["relu_2"].shape).astype(np.float32)
    kept = signal.copy()
    deconv.backward_from(model, acts, "relu_2", signal)  # starts with a ReLU
    np.testing.assert_array_equal(signal, kept)


def test_max_keeps_only_the_strongest_unit(digits):
    model = npcnn.build("lenet5", seed=2)
    x = to_tensor(digits)
    _, acts = model.forward(x, record=True)
    signal = deconv.starting_signal(acts["conv_2"], [3], "max")[0]
    for n in range(len(x)):
        assert np.count_nonzero(signal[n]) <= 1
        assert signal[n].max() == acts["conv_2"][n, 3].max()


def test_projection_starts_from_the_activation_not_one(digits):
    """With a first-layer start the projection is conv_transpose2d of the
    kept map itself: doubling the map doubles the projection."""
    model = npcnn.build("lenet5", seed=3, dtype=np.float64)
    x = to_tensor(digits, dtype=np.float64)
    _, acts = model.forward(x, record=True)
    keep = np.zeros_like(acts["conv_1"])
    keep[:, 2] = acts["conv_1"][:, 2]
    w = model["conv_1"].params["weight"]
    assert_close("projection", deconv.project(model, x, "conv_1", 2),
                 npcnn.functional.conv_transpose2d(keep, w, None, 1, 2), atol=1e-12)


def test_an_empty_batch_projects_to_an_empty_batch():
    """A batch of 0 images (a filter that kept none) gives 0 projections
    per channel, by each selection and rule (it divided by zero)."""
    model = npcnn.build("lenet5", seed=0)
    x = np.zeros((0, 1, 28, 28), dtype=np.float32)
    for select, rule in (("map", "deconvnet"), ("max", "deconvnet"), ("map", "guided")):
        out = deconv.project_channels(model, x, "pool_2", [0, 5], select, rule)
        assert out.shape == (2, 0, 1, 28, 28) and out.dtype == np.float32


def test_bad_input_is_named():
    model = npcnn.build("lenet5")
    x = np.zeros((1, 1, 28, 28), dtype=np.float32)
    with pytest.raises(ValueError, match=r"unknown layer 'conv_7'; valid layers: conv_1, relu_1"):
        deconv.project(model, x, "conv_7", 0)
    with pytest.raises(ValueError, match=r"channel 16 is out of range for layer 'conv_2' with 16"):
        deconv.project(model, x, "conv_2", 16)
    for channel in (2.7, "3", True):   # int() of these projected another map than asked
        with pytest.raises(ValueError, match=rf"^project_channels: channel must be an int, got {channel!r}"):
            deconv.project(model, x, "conv_2", channel)
    assert deconv.project(model, x, "conv_2", np.int64(3)).shape == x.shape
    reference = bridge.ReferenceDeconvnet(bridge.torch_model("lenet5"))
    with pytest.raises(ValueError, match=r"^ReferenceDeconvnet.project: channel must be an int, got 2.7"):
        reference.project(x, "conv_2", [2.7])
    with pytest.raises(ValueError, match=r"layer 'fc_1' \(linear\) cannot be projected.*"
                                         r"projectable: conv_1, relu_1, pool_1, conv_2, relu_2, pool_2"):
        deconv.project(model, x, "fc_1", 0)
    with pytest.raises(ValueError, match="rule must be one of"):
        deconv.project(model, x, "conv_1", 0, rule="gradcam")
    with pytest.raises(ValueError, match="select must be 'map' or 'max'"):
        deconv.project(model, x, "conv_1", 0, select="top")


@pytest.mark.parametrize("layer", ["conv_2", "pool_2", "relu_1"])
def test_a_projection_of_its_own_forward_equals_one_of_a_full_recording(layer, backend, digits):
    """project() records only the starting layer (its convs then run with
    their ReLU as one op); the switches and so the projection are the same."""
    model = npcnn.build("lenet5", seed=5, backend=backend)
    x = to_tensor(digits)
    _, acts = model.forward(x, record=True)
    channels = [0, 3, 5]
    np.testing.assert_array_equal(deconv.project_channels(model, x, layer, channels, "max"),
                                  deconv.project_channels(model, x, layer, channels, "max", acts=acts))


def test_guided_needs_the_relu_inputs_recorded(digits):
    model = npcnn.build("lenet5", seed=5)
    x = to_tensor(digits)
    _, lean = model.forward(x, record=True, keep=["pool_2"])
    with pytest.raises(ValueError, match=r"rule 'guided' needs the recorded output of layer 'conv_2'"):
        deconv.project_channels(model, x, "pool_2", [1], rule="guided", acts=lean)
    deconv.project_channels(model, x, "pool_2", [1], acts=lean)  # the deconvnet's rule does not
    with pytest.raises(ValueError, match="did not keep layer 'conv_2', where the projection starts"):
        deconv.project_channels(model, x, "conv_2", [1], acts=lean)


def test_the_deconvnet_rectifies_before_unpooling_where_windows_do_not_overlap(digits, monkeypatch):
    """LeNet-5's 2x2 pools: each ReLU of the walk runs on the pooled signal,
    a quarter of the unpooled one (the numbers are torch's either way:
    the parity tests above, AlexNet's overlapping pools among them)."""
    model = npcnn.build("lenet5", seed=5)
    x = to_tensor(digits)
    rectified = []
    relu = deconv.F.relu
    monkeypatch.setattr(deconv.F, "relu", lambda g, **kw: rectified.append(g.shape[1:]) or relu(g, **kw))
    deconv.project_channels(model, x, "pool_2", [1, 2])
    assert rectified == [(16, 5, 5), (6, 14, 14)]


def test_a_pool_whose_stride_is_a_numpy_integer_projects(digits):
    """The reorder's test of a pool's windows reads its stride as max_pool2d
    does: a numpy integer, as a spec or a loaded file may hold, is 2 (a
    comparison with torch's empty list had raised "truth value ... is
    ambiguous")."""
    from npcnn.layers import Conv2d, MaxPool2d, ReLU
    rng = np.random.default_rng(3)
    conv = Conv2d(1, 4, 3, padding=1)
    conv.params["weight"] = (rng.standard_normal((4, 1, 3, 3)) / 3).astype(np.float32)
    plain, numpy_stride = (npcnn.Model([("conv", conv), ("relu", ReLU()), ("pool", MaxPool2d(2, stride=s))])
                           for s in (2, np.int64(2)))
    x = to_tensor(digits)[:3]
    np.testing.assert_array_equal(deconv.project(numpy_stride, x, "pool", 1), deconv.project(plain, x, "pool", 1))


def test_a_recording_of_other_images_is_refused(digits):
    """acts must record x: another batch's switches would route x's
    projection, silently. A copy of x is x."""
    model = npcnn.build("lenet5", seed=5)
    x = to_tensor(digits)
    _, acts = model.forward(x, record=True)
    for other in (x[::-1].copy(), x[:2]):
        with pytest.raises(ValueError, match="project_channels: acts is a recording of another input"):
            deconv.project_channels(model, other, "pool_2", [1], acts=acts)
    np.testing.assert_array_equal(deconv.project_channels(model, x.copy(), "pool_2", [1], acts=acts),
                                  deconv.project_channels(model, x, "pool_2", [1]))


def test_a_walk_never_hands_back_the_reused_unpooling_buffer(backend):
    """The walk unpools into a buffer kept from call to call; what
    ``backward_from`` returns must not be that buffer, or the next walk
    would overwrite it. Here the last step is a ReLU, which rectifies the
    unpooled map in place."""
    from npcnn.layers import Conv2d, MaxPool2d, ReLU
    model = npcnn.Model([("relu_0", ReLU()), ("pool_1", MaxPool2d(2)), ("conv_2", Conv2d(1, 2, 3))],
                        backend=backend)
    rng = np.random.default_rng(0)
    x, other = rng.standard_normal((2, 2, 1, 6, 6), dtype=np.float32)
    _, acts = model.forward(x, record=True)
    _, other_acts = model.forward(other, record=True)
    first = deconv.backward_from(model, acts, "pool_1", acts["pool_1"])
    kept = first.copy()
    deconv.backward_from(model, other_acts, "pool_1", other_acts["pool_1"])
    np.testing.assert_array_equal(first, kept)
    expected = np.maximum(npcnn.functional.max_unpool2d(acts["pool_1"], acts.switches["pool_1"], 2), 0)
    np.testing.assert_array_equal(first, expected)
    assert np.count_nonzero(first) > 0


def test_projections_in_a_row_leave_each_other_alone(backend, digits):
    """LeNet-5's walk unpools twice into the kept buffer: a second
    projection (another layer, another batch size) changes no earlier one."""
    model = npcnn.build("lenet5", seed=6, backend=backend)
    x = to_tensor(digits)
    first = deconv.project_channels(model, x, "pool_2", range(16))
    kept = first.copy()
    deconv.project_channels(model, x[:1], "pool_1", range(6))
    np.testing.assert_array_equal(first, kept)
    np.testing.assert_array_equal(deconv.project_channels(model, x, "pool_2", range(16)), kept)


def test_walks_in_two_threads_keep_out_of_each_others_way(backend, digits):
    """Each thread has its own unpooling buffer: two threads walking down at
    once get what each gets alone."""
    import threading
    model = npcnn.build("lenet5", seed=7, backend=backend)
    recordings = [model.forward(to_tensor(digits[k:k + 2]), record=True)[1] for k in (0, 1)]
    alone = [deconv.backward_from(model, acts, "pool_2", acts["pool_2"]) for acts in recordings]
    wrong = [0, 0]

    def walk(k):
        acts = recordings[k]
        for _ in range(150):
            wrong[k] += not np.array_equal(deconv.backward_from(model, acts, "pool_2", acts["pool_2"]), alone[k])

    threads = [threading.Thread(target=walk, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == [0, 0]
