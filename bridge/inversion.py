"""Feature inversion (Mahendran & Vedaldi 2015, "Understanding Deep Image
Representations by Inverting Them"): an image whose representation at one
layer matches the original's, Phi0 = Phi(x), found by descent from noise on

    E(z) = ||Phi(z) - Phi0||^2 / ||Phi0||^2 + lambda_alpha R_alpha(u) + lambda_TV R_TV(u)

    R_alpha(u) = mean_{c,i,j} |u[c,i,j]|^alpha
    R_TV(u)    = mean_{c,i,j} ((H (u[c,i+1,j] - u[c,i,j]))^2 + (W (u[c,i,j+1] - u[c,i,j]))^2)^(beta/2)

with z = m + B u: m the middle and B the half-width of the valid input
range [low, high] (per channel), so u is in [-1, 1] inside it. alpha = 6
makes R_alpha ~0 inside the range and a wall outside it; beta = 2 makes
R_TV prefer piecewise-smooth images, removing the high-frequency patterns
the network is blind to (both the paper's choices).

The terms are balanced as in the paper, so one set of weights serves every
layer, MNIST at 28 x 28 and ImageNet at 224 x 224:
- the data term is divided by ||Phi0||^2: it starts near 1 at any layer;
- the regularisers are means over the pixels, in units of the range B:
  the input's units (MNIST's or ImageNet's standardisation) drop out;
- our addition: the differences in R_TV are per image height and width
  (H dh, W dw), so R_TV approximates the integral of |grad u|^beta over the
  unit square and the same picture costs the same at any resolution. Per
  pixel, a 224 x 224 image's differences are 8 times smaller than at 28 x 28
  and a weight that suits MNIST left AlexNet's reconstructions noisy.

Letters: N images, C channels, H x W pixels.
"""
from dataclasses import dataclass

import torch

from .networks import forward_to, named_layers, resolve_layer
from .quality import psnr, ssim


@dataclass
class InversionResult:
    images: torch.Tensor   # (N, C, H, W), the reconstructions in the network's input units
    history: list          # loss E (N,) per step; history[0] is the starting noise's, history[-1] the result's


def alpha_norm(u, alpha):
    """R_alpha: mean_{c,i,j} |u|^alpha per image, (N,)."""
    return (u.abs() ** alpha).mean(dim=(1, 2, 3))


def tv_norm(u, beta):
    """R_TV^beta: mean_{c,i,j} ((H dh)^2 + (W dw)^2)^(beta/2) per image, (N,),
    over the (H-1) x (W-1) pixels that have both a lower and a right neighbour.

    H dh and W dw are the image's derivatives per image height and width, so
    R_TV approximates the integral of |grad u|^beta over the unit square: the
    same picture costs the same at 28 x 28 and at 224 x 224 pixels."""
    H, W = u.shape[2:]
    dh = H * (u[:, :, 1:, :-1] - u[:, :, :-1, :-1])     # (N, C, H-1, W-1)
    dw = W * (u[:, :, :-1, 1:] - u[:, :, :-1, :-1])
    # the floor keeps the gradient finite at flat spots when beta < 2
    return ((dh ** 2 + dw ** 2).clamp(min=1e-12) ** (beta / 2)).mean(dim=(1, 2, 3))


def representation_error(features, target):
    """||Phi(z) - Phi0||^2 / ||Phi0||^2 per image, (N,)."""
    dims = tuple(range(1, target.dim()))
    return ((features - target) ** 2).sum(dim=dims) / (target ** 2).sum(dim=dims).clamp(min=1e-12)


def _bound(value, x, fallback):
    """low or high as a (1, C, 1, 1) tensor: a number, one per channel, or,
    when None, the per-channel extreme of x (``fallback``: amin or amax)."""
    if value is None:
        return fallback(x, dim=(0, 2, 3)).view(1, -1, 1, 1)
    return torch.as_tensor(value, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)


def invert(module, x, layer, steps=200, lr=0.1, alpha=6, alpha_weight=1e-3, tv_weight=1e-4, beta=2,
           seed=0, low=None, high=None, progress=None):
    """Reconstruct each image of x (N, C, H, W) from ``layer``'s output alone,
    all in one batch, by ``steps`` steps of Adam. Returns ``InversionResult``.

    The defaults: lambda_TV = 1e-4 weighs R_TV of a real image (about 250 for
    an MNIST digit, 500 to 2000 for a 224 x 224 photograph) at 0.02 to 0.2,
    above the data term's floor (0.001 to 0.02), so the reconstruction is as
    smooth as the representation allows; lambda_alpha = 1e-3 costs at most
    0.001 inside the range and 0.064 at twice its half-width. lr = 0.1 (in
    units of B): Adam moves a pixel by about lr per step, so 200 steps can
    cross the range many times; 0.2 overshot in the first steps on a random-weight AlexNet.

    low, high: the valid input range in the network's units (a number or one
    per channel, e.g. (0 - mean) / std and (1 - mean) / std); the images are
    clamped to it after every step. When None, the range x spans sets the
    scale B and nothing is clamped.
    ``progress``: optional callable(step, loss (N,)) for a progress bar.
    """
    module.eval()
    x = x.detach()
    with torch.no_grad():
        target = forward_to(module, x, layer)
    lo, hi = _bound(low, x, torch.amin), _bound(high, x, torch.amax)
    middle, half = (hi + lo) / 2, ((hi - lo) / 2).clamp(min=1e-12)          # (1, C, 1, 1)
    gen = torch.Generator(device="cpu").manual_seed(seed)   # on the CPU: the same draws on every device
    # small seeded noise about the middle of the range: no structure of its own to begin with
    u = (0.01 * torch.randn(x.shape, generator=gen, dtype=x.dtype, device="cpu")).to(x.device).requires_grad_(True)
    optimizer = torch.optim.Adam([u], lr=lr)
    history = []
    for step in range(steps + 1):
        features = forward_to(module, middle + half * u, layer)
        loss = (representation_error(features, target) + alpha_weight * alpha_norm(u, alpha)
                + tv_weight * tv_norm(u, beta))                                  # (N,)
        history.append(loss.detach().clone())
        if progress:
            progress(step, loss.detach())
        if step == steps:
            break
        # the images do not interact: the sum's gradient is each one's own. autograd.grad, not
        # backward: only u's gradient is computed, and the module's .grad stays untouched
        (u.grad,) = torch.autograd.grad(loss.sum(), [u])
        optimizer.step()
        if low is not None or high is not None:
            with torch.no_grad():
                u.clamp_(min=-1 if low is not None else None, max=1 if high is not None else None)
    return InversionResult((middle + half * u).detach(), history)


@dataclass
class LayerInversion:
    layer: str
    images: torch.Tensor   # (N, C, H, W), network units
    history: list          # loss E (N,) per step
    loss: torch.Tensor     # (N,) final E
    error: torch.Tensor    # (N,) final ||Phi(z) - Phi0||^2 / ||Phi0||^2
    ssim: torch.Tensor     # (N,) against x, in display units [0, 1]
    psnr: torch.Tensor     # (N,) dB, against x, in display units (L = 1)


def invert_across_depths(module, x, layers, mean, std, steps=200, progress=None, **options):
    """``invert`` from each of ``layers``, returned in forward order as
    ``LayerInversion`` with the final loss and the SSIM and PSNR of the
    reconstruction against x.

    mean, std: the input normalisation (a number or one per channel), so x
    = (pixels - mean) / std with pixels in [0, 1]. They fix the clamp range
    [(0 - mean) / std, (1 - mean) / std], and SSIM and PSNR are measured on
    the pixels (data range 1, values clipped to [0, 1] as displayed), so the
    numbers mean the same for MNIST and ImageNet inputs.
    ``progress``: optional callable(layer, step, loss).
    """
    order = list(named_layers(module))
    for name in layers:
        resolve_layer(module, name)   # every name checked before the first (long) optimisation
    mean_t = torch.as_tensor(mean, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
    pixels = lambda z: (z * std_t + mean_t).clamp(0, 1)  # noqa: E731
    results = []
    for layer in sorted(layers, key=lambda name: order.index(resolve_layer(module, name))):
        tick = (lambda step, loss, layer=layer: progress(layer, step, loss)) if progress else None
        result = invert(module, x, layer, steps=steps, low=-mean_t / std_t, high=(1 - mean_t) / std_t,
                        progress=tick, **options)
        with torch.no_grad():
            error = representation_error(forward_to(module, result.images, layer),
                                         forward_to(module, x, layer))
        results.append(LayerInversion(layer, result.images, result.history, result.history[-1], error,
                                      ssim(pixels(result.images), pixels(x), 1.0),
                                      psnr(pixels(result.images), pixels(x), 1.0)))
    return results
