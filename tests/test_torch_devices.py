"""The torch side on any device and dtype, in batches.

This machine and CI have no GPU, so a tensor made on the wrong device is
caught two other ways: every method also runs on torch's ``meta`` device
(tensors with shapes and no data; mixing one with a CPU tensor fails just
as mixing a CUDA one does), and in float64, where a tensor made with the
default dtype fails loudly. Where CUDA is present the same tests run on it,
and each method's CUDA output must equal its CPU output.
"""
import numpy as np
import pytest
import torch

import bridge
from bridge import scores
from bridge.actmax import activation_maximization
from bridge.attribution import (fgsm, gradcam, gradcam_plus_plus, gradient_x_input, guided_gradcam,
                                integrated_gradients, occlusion, saliency, smoothgrad)
from bridge.compare import filter_responses, shared_and_unique
from bridge.deepdream import deep_dream
from bridge.guided import guided_backprop
from bridge.inversion import invert

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]

# name -> call(module, x, target); small settings: these tests check devices, dtypes and batches
METHODS = {
    "saliency": lambda m, x, t, **kw: saliency(m, x, t, **kw),
    "gradient_x_input": lambda m, x, t, **kw: gradient_x_input(m, x, t, **kw),
    "guided_backprop": lambda m, x, t, **kw: guided_backprop(m, x, t, **kw),
    "gradcam": lambda m, x, t, **kw: gradcam(m, x, t, "relu_2", **kw),
    "gradcam++": lambda m, x, t, **kw: gradcam_plus_plus(m, x, t, "relu_2", **kw),
    "guided_gradcam": lambda m, x, t, **kw: guided_gradcam(m, x, t, "relu_2", **kw),
    "smoothgrad": lambda m, x, t, **kw: smoothgrad(m, x, t, samples=3, **kw),
    "integrated_gradients": lambda m, x, t, **kw: integrated_gradients(m, x, t, -0.4 * torch.ones_like(x),
                                                                       steps=4, **kw),
    "occlusion": lambda m, x, t, **kw: occlusion(m, x, t, size=9, stride=4, fill=-0.4, **kw),
    "fgsm": lambda m, x, t, **kw: fgsm(m, x, t, 0.1, low=-0.5, high=2.8),
}
# the keyword that bounds each method's memory
BATCH_KEYWORD = {"smoothgrad": "internal_batch_size", "integrated_gradients": "internal_batch_size",
                 "occlusion": "internal_batch_size", "fgsm": None}


def lenet(device, dtype, seed=0):
    torch.manual_seed(seed)
    return bridge.torch_model("lenet5").to(device=device, dtype=dtype).eval()


def digits(device, dtype, n=3):
    gen = torch.Generator().manual_seed(1)
    return torch.randn((n, 1, 28, 28), generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_keeps_the_inputs_device_and_dtype(name, device, dtype):
    module, x = lenet(device, dtype), digits(device, dtype)
    out = METHODS[name](module, x, torch.tensor([1, 2, 3]))
    assert out.device.type == device and out.dtype == dtype
    assert out.shape[0] == len(x) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_runs_on_the_meta_device(name, monkeypatch):
    """A tensor made on the CPU inside a method meets the meta module or input
    and fails ("Tensor on device meta is not on the expected device cpu").
    Meta tensors hold no values, so the targets' range check, which reads
    them, is off here; test_targets_out_of_range_are_named covers it."""
    monkeypatch.setattr(scores, "check_classes", lambda target, classes: None)
    monkeypatch.setattr(bridge.attribution, "check_classes", lambda target, classes: None)
    module, x = lenet("meta", torch.float32), torch.empty((2, 1, 28, 28), device="meta")
    out = METHODS[name](module, x, 1)
    assert out.device.type == "meta" and out.shape[0] == 2


def test_the_optimisations_run_on_the_meta_device_and_in_float64():
    for device, dtype in (("meta", torch.float32), ("cpu", torch.float64)):
        module, x = lenet(device, dtype), (torch.empty((2, 1, 28, 28), device="meta") if device == "meta"
                                          else digits(device, dtype, 2))
        result = activation_maximization(module, (1, 28, 28), [0, 1], layer="relu_2", steps=2, blur_every=1,
                                         low=-0.4, high=2.8)
        assert result.images.device.type == device and result.images.dtype == dtype
        dream = deep_dream(module, x, "relu_2", octaves=2, steps=2, low=-0.4, high=2.8)
        assert dream.image.device.type == device and dream.image.dtype == dtype
        inverted = invert(module, x, "pool_2", steps=2, low=-0.4, high=2.8)
        assert inverted.images.device.type == device and inverted.images.dtype == dtype


def test_filter_groups_on_the_inputs_device():
    module, x = lenet("cpu", torch.float64), digits("cpu", torch.float64)
    groups = shared_and_unique(filter_responses(module, x, "relu_2"))
    assert groups.order.dtype == torch.int64 and sorted(groups.order.tolist()) == list(range(16))


@pytest.mark.parametrize("name", list(METHODS))
def test_one_int_target_means_that_class_for_every_image(name):
    module, x = lenet("cpu", torch.float64), digits("cpu", torch.float64)
    assert torch.equal(METHODS[name](module, x, 4), METHODS[name](module, x, torch.tensor([4, 4, 4])))


@pytest.mark.parametrize("target", [[1, 2], [[1, 2, 3]], [1.0, 2.0, 3.0], "3"])
def test_a_target_of_the_wrong_shape_is_named(target):
    module, x = lenet("cpu", torch.float64), digits("cpu", torch.float64)
    with pytest.raises((ValueError, TypeError), match="target"):
        saliency(module, x, target)


@pytest.mark.parametrize("name", list(METHODS))
def test_targets_out_of_range_are_named(name):
    module, x = lenet("cpu", torch.float64), digits("cpu", torch.float64)
    with pytest.raises(ValueError, match=r"target: class 10 is out of range for a network with 10 outputs"):
        METHODS[name](module, x, torch.tensor([0, 10, 1]))
    with pytest.raises(ValueError, match=r"target: class -1 is out of range"):
        METHODS[name](module, x, -1)


@pytest.mark.parametrize("name", [n for n in METHODS if BATCH_KEYWORD.get(n, "batch_size")])
def test_the_batch_size_changes_no_result(name):
    """Each image's attribution depends on that image alone: in batches of 1,
    2 (cut: 3 images) or all at once, the maps are the same."""
    module, x = lenet("cpu", torch.float64), digits("cpu", torch.float64)
    target = torch.tensor([1, 2, 3])
    keyword = BATCH_KEYWORD.get(name, "batch_size")
    whole = METHODS[name](module, x, target)
    for size in (1, 2, 5):
        torch.testing.assert_close(METHODS[name](module, x, target, **{keyword: size}), whole,
                                   rtol=1e-12, atol=1e-14)
    alone = torch.cat([METHODS[name](module, x[n:n + 1], target[n:n + 1]) for n in range(len(x))])
    torch.testing.assert_close(alone, whole, rtol=1e-12, atol=1e-14)


def test_a_batch_size_below_one_is_refused():
    module, x = lenet("cpu", torch.float64), digits("cpu", torch.float64)
    with pytest.raises(ValueError, match="batch sizes must be integers >= 1, got 0"):
        saliency(module, x, 1, batch_size=0)
    with pytest.raises(ValueError, match="batch sizes must be integers >= 1"):
        integrated_gradients(module, x, 1, internal_batch_size=-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="compares CUDA with the CPU")
@pytest.mark.parametrize("name", list(METHODS))
def test_cuda_equals_the_cpu(name):
    torch.backends.cudnn.allow_tf32 = False   # float32 convolutions as on the CPU, for the comparison
    cpu = METHODS[name](lenet("cpu", torch.float64), digits("cpu", torch.float64), torch.tensor([1, 2, 3]))
    cuda = METHODS[name](lenet("cuda", torch.float64), digits("cuda", torch.float64), torch.tensor([1, 2, 3]))
    np.testing.assert_allclose(cuda.cpu().numpy(), cpu.numpy(), rtol=1e-9, atol=1e-11)
