"""Feature inversion, SSIM and PSNR: a property each that fails when the
method is wrong."""
import math

import pytest
import torch

import bridge
from bridge.inversion import alpha_norm, invert, invert_across_depths, tv_norm
from bridge.quality import psnr, ssim
from npcnn.data import MNIST_MEAN, MNIST_STD, load_mnist, to_tensor


@pytest.fixture(scope="module")
def lenet_and_digits():
    """A random-weight LeNet-5 (inversion needs no training to be tested: a
    random conv layer keeps the image, ten outputs cannot) and four digits."""
    torch.manual_seed(0)
    module = bridge.torch_model("lenet5")
    te = load_mnist("mnist5k", "test", verbose=False)
    return module, torch.from_numpy(to_tensor(te.images[:4]))


def _pair(seed, shape=(2, 3, 24, 30)):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=gen, dtype=torch.float64)
    return x, (x + 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)).clamp(0, 1)


def test_psnr_of_a_constant_offset_is_the_formula():
    x = torch.rand(3, 2, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 200
    for L, d in ((255.0, 5.0), (1.0, 0.02), (255.0, -40.0)):
        expected = 10 * math.log10(L ** 2 / d ** 2)
        assert torch.allclose(psnr(x + d, x, L), torch.full((3,), expected, dtype=torch.float64), atol=1e-10)
    # half the pixels off by d, half exact: MSE = d^2 / 2, 3 dB (10 log10 2) more
    y = x.clone()
    y[:, :, :8] += 4.0
    assert torch.allclose(psnr(x, y, 255.0), torch.full((3,), 10 * math.log10(255 ** 2 / 8), dtype=torch.float64))
    assert torch.isinf(psnr(x, x, 255.0)).all()


def test_ssim_is_one_for_identical_images_symmetric_and_falls_with_noise():
    x, y = _pair(0)
    assert torch.allclose(ssim(x, x, 1.0), torch.ones(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(ssim(x, y, 1.0), ssim(y, x, 1.0), atol=1e-14)
    gen = torch.Generator().manual_seed(1)
    noisy = [ssim(x, (x + s * torch.randn(x.shape, generator=gen, dtype=torch.float64)).clamp(0, 1), 1.0)
             for s in (0.02, 0.05, 0.1, 0.2, 0.4)]
    for less, more in zip(noisy, noisy[1:]):
        assert torch.all(more < less), noisy
    assert torch.all(noisy[0] < 1) and torch.all(noisy[-1] < 0.7)


def test_ssim_of_constant_images_is_the_luminance_term():
    """Flat images have zero variance and covariance, so the contrast-structure
    factor is C2 / C2 and SSIM = (2 a b + C1) / (a^2 + b^2 + C1)."""
    a, b, L = 0.3, 0.7, 1.0
    c1 = (0.01 * L) ** 2
    x, y = torch.full((1, 1, 15, 15), a, dtype=torch.float64), torch.full((1, 1, 15, 15), b, dtype=torch.float64)
    assert abs(ssim(x, y, L).item() - (2 * a * b + c1) / (a ** 2 + b ** 2 + c1)) < 1e-12


@pytest.mark.parametrize("shape, L", [((2, 3, 24, 30), 1.0), ((1, 1, 28, 28), 255.0), ((1, 2, 11, 17), 1.0)])
def test_ssim_equals_scikit_image(shape, L):
    # scikit-image is the reference (a dev dependency), as torch is for the kernels
    from skimage.metrics import structural_similarity

    x, y = _pair(2, shape)
    x, y = x * L, y * L
    ours = ssim(x, y, L)
    for n in range(shape[0]):
        ref = structural_similarity(x[n].numpy(), y[n].numpy(), gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=L, channel_axis=0)
        assert abs(ours[n].item() - ref) < 1e-12, (ours[n].item(), ref)


def test_quality_measures_name_bad_shapes():
    x = torch.zeros(1, 1, 28, 28)
    with pytest.raises(ValueError, match=r"ssim: x and y must have one shape .*x \(1, 1, 28, 28\), y \(1, 1, 28, 27\)"):
        ssim(x, torch.zeros(1, 1, 28, 27), 1.0)
    with pytest.raises(ValueError, match=r"psnr: x and y must have one shape"):
        psnr(x, torch.zeros(1, 28, 28), 1.0)
    with pytest.raises(ValueError, match=r"ssim: images \(1, 1, 10, 28\) are smaller than the 11x11 window"):
        ssim(torch.zeros(1, 1, 10, 28), torch.zeros(1, 1, 10, 28), 1.0)


def test_regularisers_are_the_formulas_on_hand_made_images():
    """A ramp u[i, j] = a j has dh = 0 and dw = a everywhere, a derivative W a
    per image width: R_TV^beta = |W a|^beta. A constant c has R_alpha = |c|^alpha."""
    ramp = 0.1 * torch.arange(7, dtype=torch.float64).expand(2, 3, 5, 7)     # (N, C, H, W) = (2, 3, 5, 7)
    for beta in (1, 2, 3):
        assert torch.allclose(tv_norm(ramp, beta), torch.full((2,), (7 * 0.1) ** beta, dtype=torch.float64))
    assert torch.allclose(tv_norm(ramp.transpose(2, 3), 2), torch.full((2,), 0.7 ** 2, dtype=torch.float64))
    assert torch.allclose(alpha_norm(torch.full((2, 1, 4, 4), -0.5, dtype=torch.float64), 6),
                          torch.full((2,), 0.5 ** 6, dtype=torch.float64))


def test_tv_costs_the_same_picture_the_same_at_28_and_224_pixels():
    """u = sin(2 pi t) across the unit square: the integral of |u'|^2 is
    (2 pi)^2 / 2 at any sampling, so one TV weight serves MNIST and ImageNet."""
    costs = []
    for size in (28, 224):
        t = (torch.arange(size, dtype=torch.float64) + 0.5) / size
        u = torch.sin(2 * math.pi * t).expand(1, 1, size, size)
        costs.append(tv_norm(u, 2).item())
    assert all(abs(c - 2 * math.pi ** 2) < 0.05 * 2 * math.pi ** 2 for c in costs), costs


def test_inversion_reduces_the_loss_and_stays_in_range(lenet_and_digits):
    module, x = lenet_and_digits
    low, high = -MNIST_MEAN / MNIST_STD, (1 - MNIST_MEAN) / MNIST_STD
    calls = []
    result = invert(module, x, "relu_2", steps=80, low=low, high=high, progress=lambda s, v: calls.append(s))
    first, last = result.history[0], result.history[-1]
    assert len(result.history) == 81 and calls == list(range(81))
    assert result.images.shape == x.shape
    # the floor is the regularisers' share: about 0.03 to 0.08 of the start here
    assert torch.all(last < 0.15 * first), (first, last)
    assert result.images.min() >= low - 1e-6 and result.images.max() <= high + 1e-6


def test_an_early_layer_keeps_more_of_the_image_than_the_logits(lenet_and_digits):
    module, x = lenet_and_digits
    results = invert_across_depths(module, x, ["fc_3", "relu_1"], MNIST_MEAN, MNIST_STD, steps=80)
    assert [r.layer for r in results] == ["relu_1", "fc_3"]   # forward order, whatever the order asked
    early, logits = results
    assert torch.all(early.ssim > 0.9), early.ssim
    assert torch.all(early.ssim > logits.ssim + 0.5), (early.ssim, logits.ssim)
    assert torch.all(early.psnr > logits.psnr + 15), (early.psnr, logits.psnr)
    assert torch.all(early.error < 0.05) and torch.all(early.loss == early.history[-1])


def test_unknown_layer_is_named(lenet_and_digits):
    module, x = lenet_and_digits
    with pytest.raises(ValueError, match=r"unknown layer 'conv_9'; valid layers: conv_1, relu_1"):
        invert(module, x[:1], "conv_9", steps=1)
    with pytest.raises(ValueError, match=r"unknown layer 'fc9'; valid layers: conv_1"):
        invert_across_depths(module, x[:1], ["relu_1", "fc9"], MNIST_MEAN, MNIST_STD, steps=1)


def test_the_figure_draws_grey_and_colour(tmp_path):
    from vis.inversion_figures import inversions

    rng = torch.Generator().manual_seed(0)
    for shape in ((28, 28), (32, 32, 3)):
        original = torch.rand(shape, generator=rng).numpy()
        path = inversions([original], {"conv_1": [original * 0.9]}, {"conv_1": [0.9]}, {"conv_1": [25.0]},
                          {"conv_1": torch.rand(11, 1, generator=rng).numpy() + 0.1}, tmp_path / f"{len(shape)}.png",
                          "inversion")
        assert path.stat().st_size > 1000
