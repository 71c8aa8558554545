"""Attribution, activation maximization and FGSM in torch: a property each
that fails when the method is wrong."""
import copy
import re

import pytest
import torch
from torch import nn

from bridge.actmax import activation_maximization, objective
from bridge.attribution import (fgsm, gradcam, gradcam_plus_plus, gradient_x_input, guided_gradcam,
                                integrated_gradients, occlusion, occlusion_windows, reduce_channels, saliency,
                                smoothgrad)
from bridge.guided import guided_backprop
from bridge.images import IMAGENET_MEAN, IMAGENET_STD
from bridge.train import train
from npcnn.data import MNIST_MEAN, MNIST_STD, load_mnist, to_tensor


@pytest.fixture(scope="module")
def trained_lenet():
    tr, te = load_mnist("mnist5k", "train", verbose=False), load_mnist("mnist5k", "test", verbose=False)
    result = train("lenet5", tr, te, epochs=3, seed=0, device="cpu", progress=False)
    x = torch.from_numpy(to_tensor(te.images[:200]))
    return result.module.double(), x.double(), torch.from_numpy(te.labels[:200])


def test_saliency_is_the_autograd_gradient_and_matches_finite_differences(trained_lenet):
    module, x, y = trained_lenet
    g = saliency(module, x[:2], y[:2])
    xr = x[:2].clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(module(xr).gather(1, y[:2].view(-1, 1)).sum(), xr)
    assert torch.equal(g, ref)
    eps, (i, j) = 1e-6, (14, 14)
    bump = torch.zeros_like(x[:1])
    bump[0, 0, i, j] = eps
    f = lambda z: module(z)[0, y[0]]  # noqa: E731
    numeric = (f(x[:1] + bump) - f(x[:1] - bump)) / (2 * eps)
    assert abs(numeric.item() - g[0, 0, i, j].item()) < 1e-6


def test_integrated_gradients_add_up_to_the_score_difference(trained_lenet):
    module, x, y = trained_lenet
    base = torch.full_like(x[:4], -MNIST_MEAN / MNIST_STD)  # a black image
    attributions = integrated_gradients(module, x[:4], y[:4], base, steps=128)
    with torch.no_grad():
        diff = module(x[:4]).gather(1, y[:4].view(-1, 1))[:, 0] - module(base).gather(1, y[:4].view(-1, 1))[:, 0]
    total = attributions.sum(dim=(1, 2, 3))
    assert torch.all((total - diff).abs() <= 0.01 * diff.abs()), (total, diff)


def test_gradcam_of_a_hand_built_network_equals_the_map_by_hand():
    """conv (2 maps, identity-like kernels) -> global average pool -> linear.
    The score is sum_k v_k mean(A_k), so dS/dA_k = v_k / (h*w) everywhere:
    cam = ReLU(sum_k v_k/(h*w) * A_k)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 2, 1, bias=False)
    conv.weight.data = torch.tensor([[[[1.0]]], [[[-2.0]]]], dtype=torch.float64)
    fc = nn.Linear(2, 3, bias=False).double()
    fc.weight.data = torch.tensor([[0.5, 1.0], [2.0, -1.0], [0.0, 0.0]], dtype=torch.float64)
    net = nn.Sequential()
    net.add_module("conv", conv.double())
    net.add_module("pool", nn.AdaptiveAvgPool2d(1))
    net.add_module("flatten", nn.Flatten())
    net.add_module("fc", fc)
    x = torch.rand(2, 1, 5, 5, dtype=torch.float64)
    A = torch.cat([x, -2 * x], dim=1)                      # (2, 2, 5, 5), the conv maps
    for target in (0, 1):
        v = fc.weight.data[target]
        by_hand = torch.relu((v.view(1, 2, 1, 1) / 25 * A).sum(dim=1))
        cam = gradcam(net, x, torch.tensor([target, target]), "conv", upsample=False)
        assert torch.allclose(cam, by_hand, atol=1e-12)
    plus = gradcam_plus_plus(net, x, torch.tensor([0, 0]), "conv", upsample=False)
    assert plus.shape == (2, 5, 5) and torch.all(plus >= 0)


def test_smoothgrad_and_occlusion_are_sane(trained_lenet):
    module, x, y = trained_lenet
    sg = smoothgrad(module, x[:2], y[:2], samples=8)
    assert sg.shape == x[:2].shape and torch.isfinite(sg).all()
    assert not torch.allclose(sg, saliency(module, x[:2], y[:2]))
    drop = occlusion(module, x[:2], y[:2], size=6, stride=2, fill=-MNIST_MEAN / MNIST_STD)
    assert drop.shape == (2, 28, 28) and drop.max() > 0


def test_activation_maximization_raises_its_target_tenfold(trained_lenet):
    module = copy.deepcopy(trained_lenet[0]).float()
    start = objective(module, 0.1 * torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(0)),
                      "relu_2", list(range(6)))
    chosen = [c for c in range(6) if start[c] > 1e-3][:3]
    assert chosen, "no channel starts active"
    result = activation_maximization(module, (1, 28, 28), chosen, layer="relu_2", steps=120, seed=0)
    first, last = result.history[0], result.history[-1]
    assert torch.all(last >= 10 * first), (first, last)
    classes = activation_maximization(module, (1, 28, 28), [3, 7], layer=None, steps=80)
    assert torch.all(classes.history[-1] > classes.history[0])


def test_fgsm_flips_most_predictions_of_a_trained_network(trained_lenet):
    module, x, y = trained_lenet
    with torch.no_grad():
        right = module(x).argmax(1) == y
    low, high = -MNIST_MEAN / MNIST_STD, (1 - MNIST_MEAN) / MNIST_STD
    eps = 0.3 / MNIST_STD   # 0.3 in pixel units
    adv = fgsm(module, x[right], y[right], eps, low, high)
    assert (adv - x[right]).abs().max() <= eps + 1e-9
    with torch.no_grad():
        flipped = (module(adv).argmax(1) != y[right]).double().mean()
    assert flipped > 0.5, f"only {flipped:.0%} flipped"


def test_unknown_layer_is_named(trained_lenet):
    module, x, y = trained_lenet
    with pytest.raises(ValueError, match=r"unknown layer 'conv_9'; valid layers: conv_1"):
        gradcam(module, x[:1], y[:1], "conv_9")
    with pytest.raises(ValueError, match=r"layer 'fc_1' has output shape"):
        gradcam(module, x[:1], y[:1], "fc_1")


def test_integrated_gradients_return_their_convergence_delta(trained_lenet):
    module, x, y = trained_lenet
    base = torch.full_like(x[:3], -MNIST_MEAN / MNIST_STD)
    attributions, delta = integrated_gradients(module, x[:3], y[:3], base, steps=16,
                                               return_convergence_delta=True)
    with torch.no_grad():
        gap = module(x[:3]).gather(1, y[:3].view(-1, 1))[:, 0] - module(base).gather(1, y[:3].view(-1, 1))[:, 0]
    torch.testing.assert_close(delta, attributions.sum(dim=(1, 2, 3)) - gap, rtol=0, atol=1e-12)
    finer = integrated_gradients(module, x[:3], y[:3], base, steps=256, return_convergence_delta=True)[1]
    assert finer.abs().sum() < delta.abs().sum()   # more steps, smaller gap


def _one_pixel_network(size=7):
    """The score of class 0 is 3 * x[0, i, j] at one pixel (i, j) = (size - 1, size - 1), the
    bottom-right corner, which windows that tile the image from the top-left miss."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(size * size, 2, bias=False)).double()
    net[1].weight.data.zero_()
    net[1].weight.data[0, size * size - 1] = 3.0
    return net


def test_occlusion_covers_every_pixel_with_windows_that_do_not_tile():
    net, x = _one_pixel_network(7), torch.ones(2, 1, 7, 7, dtype=torch.float64)
    drop = occlusion(net, x, 0, size=3, stride=2, fill=0.0)        # starts 0, 2, 4: the last one reaches 7
    assert drop[:, 6, 6].min() > 0, "the corner that decides the score got no attribution"
    assert occlusion_windows(3, 2, 7) == [0, 2, 4] and occlusion_windows(3, 2, 8) == [0, 2, 4, 6]
    assert occlusion_windows(4, 3, 8) == [0, 3, 6] and occlusion_windows(9, 2, 7) == [0]


def test_occlusion_equals_the_drop_by_hand():
    """Every pixel's value is the mean drop of p over the windows covering it, each computed
    here one window at a time, clipped at the edge as Captum clips its last window."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 6, 4)).double()
    x = torch.randn(2, 2, 6, 8, dtype=torch.float64)
    fill = torch.tensor([0.5, -1.0], dtype=torch.float64)
    got = occlusion(net, x, torch.tensor([1, 3]), size=4, stride=3, fill=fill, internal_batch_size=5)
    p = lambda z: torch.softmax(net(z), 1)[torch.arange(2), torch.tensor([1, 3])]   # noqa: E731
    total, hits = torch.zeros(2, 6, 8, dtype=torch.float64), torch.zeros(6, 8, dtype=torch.float64)
    with torch.no_grad():
        for top in (0, 3):                     # 1 + ceil((6 - 4) / 3) = 2 windows down
            for left in (0, 3, 6):             # 1 + ceil((8 - 4) / 3) = 3 across, the last 2 pixels wide
                z = x.clone()
                z[:, :, top:top + 4, left:left + 4] = fill.view(2, 1, 1)
                total[:, top:top + 4, left:left + 4] += (p(x) - p(z)).view(2, 1, 1)
                hits[top:top + 4, left:left + 4] += 1
    torch.testing.assert_close(got, total / hits, rtol=1e-12, atol=1e-15)


def test_colour_saliency_takes_the_largest_absolute_channel():
    g = torch.tensor([[[[1.0, -2.0]], [[-3.0, 0.5]], [[2.0, 1.0]]]])   # (1, 3, 1, 2)
    assert reduce_channels(g).tolist() == [[[3.0, 2.0]]]                  # Simonyan et al.: max_c |g|
    assert reduce_channels(g, "sum").tolist() == [[[0.0, -0.5]]]
    with pytest.raises(ValueError, match="rule must be 'max-abs' or 'sum'"):
        reduce_channels(g, "mean")


def test_guided_backprop_by_hand_and_guided_gradcam():
    """x -> conv (one 1x1 filter, weight 1) -> ReLU -> flatten -> linear v. Going down
    from the score, the signal at the ReLU is v; guided backprop passes max(v, 0) where
    the ReLU's input was positive, and the 1x1 conv of weight 1 carries it to the input."""
    conv = nn.Conv2d(1, 1, 1, bias=False).double()
    conv.weight.data.fill_(1.0)
    fc = nn.Linear(4, 1, bias=False).double()
    fc.weight.data = torch.tensor([[2.0, -1.0, 3.0, 0.5]], dtype=torch.float64)
    net = nn.Sequential(conv, nn.ReLU(inplace=True), nn.Flatten(), fc)
    x = torch.tensor([[[[1.0, 2.0], [-1.0, 0.5]]]], dtype=torch.float64)
    expected = torch.tensor([[[[2.0, 0.0], [0.0, 0.5]]]], dtype=torch.float64)   # max(v,0) * [x > 0]
    assert torch.equal(guided_backprop(net, x, 0), expected)
    assert torch.equal(saliency(net, x, 0), torch.tensor([[[[2.0, -1.0], [0.0, 0.5]]]], dtype=torch.float64))
    cam = gradcam(net, x, 0, "1")
    assert torch.equal(guided_gradcam(net, x, 0, "1"), expected * cam[:, None])
    assert all(not m._forward_hooks for m in net.modules()), "the guided rule outlived the call"


def test_gradient_x_input_adds_up_to_a_linear_score():
    net = nn.Sequential(nn.Flatten(), nn.Linear(8, 3)).double()
    x = torch.randn(4, 2, 2, 2, dtype=torch.float64)
    with torch.no_grad():
        score = net(x)[:, 2] - net[1].bias[2]
    torch.testing.assert_close(gradient_x_input(net, x, 2).sum(dim=(1, 2, 3)), score, rtol=1e-12, atol=1e-12)


def test_fgsm_keeps_each_channel_of_a_normalised_image_in_its_range():
    """ImageNet's statistics: black and white differ per channel, so one scalar
    bound would let some channel leave [0, 1] in pixel units."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).double()
    mean, std = torch.tensor(IMAGENET_MEAN).double(), torch.tensor(IMAGENET_STD).double()
    pixels = torch.rand(3, 3, 8, 8, dtype=torch.float64)
    x = (pixels - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    adv = fgsm(net, x, [0, 1, 2], 0.3 / std, low=-mean / std, high=(1 - mean) / std)
    back = adv * std.view(1, 3, 1, 1) + mean.view(1, 3, 1, 1)
    assert back.min() >= -1e-12 and back.max() <= 1 + 1e-12
    assert (back - pixels).abs().max() <= 0.3 + 1e-12
    for bad, fragment in ((float("nan"), "epsilon must be finite"), (-0.1, "epsilon must be >= 0"),
                          ([0.1, 0.2], "one per channel (3,)")):
        with pytest.raises(ValueError, match=re.escape(fragment)):
            fgsm(net, x, 0, bad)
