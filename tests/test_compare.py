"""Several images through one layer: filter responses, the shared / unique /
silent groups, and the figure. Each test fails when its property is wrong."""
from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from bridge.compare import filter_responses, layer_output, shared_and_unique
from bridge.images import IMAGENET_MEAN, IMAGENET_STD, to_display
from bridge.networks import torch_activations, torch_model
from npcnn.data import MNIST_MEAN, MNIST_STD, load_mnist, to_tensor
from vis.compare_figures import filters_across_images

# A 1x1 conv whose channels are known combinations of the three input
# channels, then a ReLU. Input channel k of image n is V[n, k] * pattern, one
# positive pattern for all, so the response of channel c to image n is
# (V @ WEIGHTS.T)[n, c] * mean(pattern), before the ReLU and (clipped at 0) after it.
WEIGHTS = torch.tensor([
    [0.1, 0.1, 0.0],     # 0: (0.2, 0.1, 0.1): quiet, but half its own peak     -> shared
    [-1.0, 0.0, 0.0],    # 1: minus input 0, <= 0 everywhere                     -> silent
    [0.0, 1.0, 0.0],     # 2: input 1, only image 0 has it                       -> unique to 0
    [0.0, 0.0, 1.0],     # 3: input 2, only image 1 has it                       -> unique to 1
    [0.0, 1.0, 1.0],     # 4: images 0 and 1, not 2                              -> some (partial)
    [0.3, 1.0, 0.0],     # 5: (1.3, 0.3, 0.3): the others under half its peak    -> unique to 0
    [0.0, 0.0, 0.01],    # 6: peak 0.01, under 0.05 of the layer's 1.3           -> silent
    [1.0, 0.0, 0.0],     # 7: copies input 0, on in every image                  -> shared
], dtype=torch.float64)
V = torch.tensor([[1.0, 1.0, 0.0],   # image 0
                  [1.0, 0.0, 1.0],   # image 1
                  [1.0, 0.0, 0.0]],  # image 2
                 dtype=torch.float64)


def _hand_built(extra=()):
    conv = nn.Conv2d(3, len(WEIGHTS), 1, bias=False).double()
    conv.weight.data = WEIGHTS.view(len(WEIGHTS), 3, 1, 1).clone()
    return nn.Sequential(OrderedDict([("conv", conv), ("relu", nn.ReLU()), *extra])).eval()


def _inputs():
    pattern = 0.5 + torch.rand(5, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return V[:, :, None, None] * pattern, pattern.mean()     # (3, 3, 5, 7)


def _lists(groups):
    return (groups.shared.tolist(), [u.tolist() for u in groups.unique], groups.partial.tolist(),
            groups.silent.tolist())


@pytest.mark.parametrize("layer", ["conv", "relu"])
def test_hand_built_network_gives_exactly_the_expected_groups(layer):
    net, (x, m) = _hand_built(), _inputs()
    r = filter_responses(net, x, layer)
    expected = (V @ WEIGHTS.T) * m
    assert torch.allclose(r, expected if layer == "conv" else expected.clamp(min=0), rtol=0, atol=1e-12)
    groups = shared_and_unique(r)
    # shared by the weakest response, unique by the image's, silent by the peak: strongest first
    assert _lists(groups) == ([7, 0], [[5, 2], [3], []], [4], [6, 1])
    assert torch.equal(groups.active, torch.tensor([[1, 0, 1, 0, 1, 1, 0, 1],
                                                    [1, 0, 0, 1, 1, 0, 0, 1],
                                                    [1, 0, 0, 0, 0, 0, 0, 1]], dtype=torch.bool))
    assert groups.order.tolist() == [7, 0, 5, 2, 3, 4, 6, 1]
    # a lower fraction lets channel 5 count for images 1 and 2; a lower floor wakes channel 6
    assert _lists(shared_and_unique(r, fraction=0.2)) == ([7, 5, 0], [[2], [3], []], [4], [6, 1])
    assert _lists(shared_and_unique(r, floor=0.005)) == ([7, 0], [[5, 2], [3, 6], []], [4], [1])


def test_groups_partition_the_channels_and_follow_the_images():
    gen = torch.Generator().manual_seed(1)
    r = torch.rand(4, 60, generator=gen, dtype=torch.float64) * (torch.rand(4, 60, generator=gen) > 0.4)
    groups = shared_and_unique(r)
    assert sorted(groups.order.tolist()) == list(range(60))
    count = groups.active.sum(dim=0)
    assert torch.equal(groups.active.all(dim=0).nonzero()[:, 0].sort().values, groups.shared.sort().values)
    for n, u in enumerate(groups.unique):
        assert torch.all(count[u] == 1) and torch.all(groups.active[n, u])
    assert torch.all(count[groups.silent] == 0)
    # one scale for the whole layer changes nothing; swapping two images swaps their unique channels
    assert _lists(shared_and_unique(7.5 * r)) == _lists(groups)
    swapped = shared_and_unique(r[[1, 0, 2, 3]])
    assert [u.tolist() for u in swapped.unique] == [groups.unique[1].tolist(), groups.unique[0].tolist(),
                                                   groups.unique[2].tolist(), groups.unique[3].tolist()]
    assert swapped.shared.tolist() == groups.shared.tolist() and swapped.silent.tolist() == groups.silent.tolist()


@pytest.fixture(scope="module")
def lenet():
    torch.manual_seed(0)
    test = load_mnist("mnist5k", "test", verbose=False)
    pick = [int(np.flatnonzero(test.labels == d)[0]) for d in (1, 7, 0)]
    return torch_model("lenet5", torch.float64), torch.from_numpy(to_tensor(test.images[pick], dtype=np.float64))


def test_filter_responses_are_the_spatial_means_of_torch_activations(lenet):
    module, x = lenet
    _, acts = torch_activations(module, x)
    for layer, a in acts.items():
        r = filter_responses(module, x, layer)
        if a.dim() == 4:
            N, C, H, W = a.shape
            by_hand = torch.stack([torch.stack([a[n, c].sum() / (H * W) for c in range(C)]) for n in range(N)])
        else:
            by_hand = a
        assert r.shape == by_hand.shape and torch.allclose(r, by_hand, rtol=0, atol=1e-12), layer


@pytest.fixture(scope="module")
def alexnet():
    torch.manual_seed(0)
    return torch_model("alexnet")


def test_layer_aliases_name_the_same_layer(alexnet):
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    assert torch.equal(filter_responses(alexnet, x, "relu5"), filter_responses(alexnet, x, "features.11"))


def _is_png(path, min_size):
    with Image.open(path) as image:
        return image.format == "PNG" and min(image.size) >= min_size


def test_figure_for_lenet5_with_three_digits(lenet, tmp_path):
    module, x = lenet
    images = [to_display(x[n], [MNIST_MEAN], [MNIST_STD]) for n in range(3)]
    for layer in ("relu_2", "relu_3"):   # maps (N, 16, 10, 10); fully connected (N, 120), no maps
        groups = shared_and_unique(filter_responses(module, x, layer))
        path = filters_across_images(images, groups, layer_output(module, x, layer).numpy(),
                                     tmp_path / f"{layer}.png", f"LeNet-5, {layer}", ["1", "7", "0"])
        assert _is_png(path, 400)


def test_figure_for_alexnet_with_two_colour_images(alexnet, tmp_path):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 96, 96, generator=gen)
    images = [to_display(x[n], IMAGENET_MEAN, IMAGENET_STD) for n in range(2)]
    assert images[0].shape == (96, 96, 3)
    groups = shared_and_unique(filter_responses(alexnet, x, "relu5"))
    assert groups.responses.shape == (2, 256) and groups.partial.numel() == 0  # two images: all or one
    path = filters_across_images(images, groups, layer_output(alexnet, x, "relu5").numpy(), tmp_path / "a.png",
                                 "AlexNet, relu5")
    assert _is_png(path, 400)


def test_bad_inputs_are_named(lenet, tmp_path):
    module, x = lenet
    with pytest.raises(ValueError, match=r"shared_and_unique: responses must be \(N, C\) with N >= 2 images, "
                                         r"got shape \(1, 6\)"):
        shared_and_unique(torch.rand(1, 6))
    with pytest.raises(ValueError, match=r"got shape \(3, 6, 2\)"):
        shared_and_unique(torch.rand(3, 6, 2))
    with pytest.raises(ValueError, match=r"shared_and_unique: fraction must be in \(0, 1\], got 0"):
        shared_and_unique(torch.rand(3, 6), fraction=0)
    with pytest.raises(ValueError, match=r"shared_and_unique: floor must be in \[0, 1\), got 1"):
        shared_and_unique(torch.rand(3, 6), floor=1)
    with pytest.raises(ValueError, match=r"shared_and_unique: responses contain NaN"):
        shared_and_unique(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"filter_responses: unknown layer 'conv_9'; valid layers: conv_1, relu_1"):
        filter_responses(module, x, "conv_9")
    with pytest.raises(ValueError, match=r"filter_responses: x must be a batch \(N, C, H, W\), got shape "
                                         r"\(1, 28, 28\)"):
        filter_responses(module, x[0], "conv_1")
    net, (xh, _) = _hand_built([("flat", nn.Flatten(start_dim=2))]), _inputs()
    with pytest.raises(ValueError, match=r"filter_responses: layer 'flat' has output shape \(3, 8, 35\)"):
        filter_responses(net, xh, "flat")
    groups = shared_and_unique(filter_responses(module, x, "relu_1"))
    maps = layer_output(module, x, "relu_1").numpy()
    images = [to_display(x[n], [MNIST_MEAN], [MNIST_STD]) for n in range(3)]
    with pytest.raises(ValueError, match=r"filters_across_images: 2 images but responses of shape \(3, 6\)"):
        filters_across_images(images[:2], groups, maps, tmp_path / "f.png", "")
    with pytest.raises(ValueError, match=r"images\[0\] must be \(H, W\) or \(H, W, 3\).*got shape \(3, 28, 28\)"):
        filters_across_images([np.zeros((3, 28, 28))] * 3, groups, maps, tmp_path / "f.png", "")
    with pytest.raises(ValueError, match=r"maps must be .* \(N, C\) = \(3, 6\), got shape \(3, 16, 10, 10\)"):
        filters_across_images(images, groups, layer_output(module, x, "relu_2").numpy(), tmp_path / "f.png", "")
    assert not (tmp_path / "f.png").exists()
