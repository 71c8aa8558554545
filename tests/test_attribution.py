"""Attribution, activation maximization and FGSM in torch: a property each
that fails when the method is wrong."""
import copy

import pytest
import torch
from torch import nn

from bridge.actmax import activation_maximization, objective
from bridge.attribution import (fgsm, gradcam, gradcam_plus_plus, integrated_gradients, occlusion, saliency,
                                smoothgrad)
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
