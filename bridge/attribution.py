"""Attributions in torch: which input pixels (or which regions of a conv
layer) a network's score for a class depends on.

Every method takes a torch module (eval mode) on any device and dtype, an
input batch x (N, C, H, W) on the module's device, and ``target``: one
class index for every image (an int, as Captum accepts it) or one per image
(N,). The score of a class is the network's output for it (a logit, or a
log-probability for LeNet-5, which ends in log_softmax). Attributions come
back on x's device and dtype, shaped like x, or (N, H, W) for the CAM
methods and occlusion. Whatever a method makes (targets, noise, baselines,
occluders) it makes on x's device and dtype.

Memory is bounded whatever the number of images, ``steps`` or ``samples``:
``batch_size`` is the number of images per forward-backward pass of the
one-pass methods, ``internal_batch_size`` the number of rows (image x path
point, image x noisy copy, image x occluder) per pass of Integrated
Gradients, SmoothGrad and occlusion. Neither changes the result: each
image's attribution depends on that image alone.

Methods: saliency (and ``reduce_channels`` for colour), gradient x input,
SmoothGrad, Integrated Gradients (with its convergence delta), Grad-CAM,
Grad-CAM++, guided Grad-CAM, occlusion and FGSM; guided backpropagation is
in ``bridge.guided``.
"""
import math
from numbers import Integral

import torch
import torch.nn.functional as TF

from .guided import guided_backprop
from .networks import forward_capturing
from .scores import as_targets, check_classes, check_input, chunks, class_scores, score_gradient


def saliency(module, x, target, batch_size=None):
    """The gradient of the class score with respect to the input (Simonyan
    et al. 2014), shaped like x; ``reduce_channels`` makes a colour map of it."""
    check_input(x, "saliency")
    target = as_targets(target, len(x), x.device)
    return torch.cat([score_gradient(module, x[s], target[s]) for s in chunks(len(x), batch_size)])


def reduce_channels(attribution, rule="max-abs"):
    """(N, C, H, W) -> (N, H, W), one value per pixel:

    - ``"max-abs"``: max_c |a[n, c, i, j]|, Simonyan et al.'s rule for colour
      saliency (a pixel matters when any of its channels does);
    - ``"sum"``: sum_c a[n, c, i, j], signed (for Integrated Gradients the
      pixel's share of the score difference, so completeness still holds).
    """
    if rule == "max-abs":
        return attribution.abs().amax(dim=1)
    if rule == "sum":
        return attribution.sum(dim=1)
    raise ValueError(f"reduce_channels: rule must be 'max-abs' or 'sum', got {rule!r}")


def gradient_x_input(module, x, target, batch_size=None):
    """x * dS/dx (Shrikumar et al. 2016): the first-order Taylor share of each
    input in the score, shaped like x."""
    return x * saliency(module, x, target, batch_size)


def smoothgrad(module, x, target, samples=25, sigma=0.15, seed=0, internal_batch_size=None):
    """The saliency averaged over ``samples`` noisy copies of each image
    (Smilkov et al. 2017): noise N(0, (sigma * (max - min))^2), the spread of
    each image's own values.

    The noise is drawn on the CPU from ``seed``, one pattern per sample shared
    by the images, then moved to x's device: the same maps on every device,
    and an image's map does not depend on the batch it came in."""
    check_input(x, "smoothgrad")
    if not (isinstance(samples, Integral) and samples >= 1):
        raise ValueError(f"smoothgrad: samples must be an integer >= 1, got {samples!r}")
    N = len(x)
    target = as_targets(target, N, x.device)
    gen = torch.Generator(device="cpu").manual_seed(seed)   # on the CPU: the same draws on every device
    noise = torch.randn((samples,) + tuple(x.shape[1:]), generator=gen, dtype=torch.float64, device="cpu")
    noise = noise.to(device=x.device, dtype=x.dtype)                          # (S, C, H, W)
    spread = sigma * (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3))).view(-1, 1, 1, 1)  # (N, 1, 1, 1)
    total = torch.zeros_like(x)
    for rows in chunks(samples * N, internal_batch_size):   # row r: sample r // N, image r % N
        r = torch.arange(rows.start, rows.stop, device=x.device)
        s, n = r // N, r % N
        g = score_gradient(module, x[n] + noise[s] * spread[n], target[n])
        total.index_add_(0, n, g)
    return total / samples


def integrated_gradients(module, x, target, baseline=None, steps=50, internal_batch_size=None,
                         return_convergence_delta=False):
    """(x - x0) times the average gradient on the straight path from the
    baseline x0 to x (Sundararajan et al. 2017), midpoint rule:

        IG(x) = (x - x0) * 1/m sum_{k=0}^{m-1} dS/dx (x0 + (k + 1/2)/m (x - x0))

    The attributions add up to S(x) - S(x0) (completeness) up to the
    discretisation error, which more steps shrink. With
    ``return_convergence_delta`` returns (attributions, delta), delta (N,) =
    sum IG - (S(x) - S(x0)), the completeness gap Captum reports.
    baseline: None (zeros), or a tensor broadcastable to x (one image, or
    one value per channel as (1, C, 1, 1))."""
    check_input(x, "integrated_gradients")
    if not (isinstance(steps, Integral) and steps >= 1):
        raise ValueError(f"integrated_gradients: steps must be an integer >= 1, got {steps!r}")
    N = len(x)
    target = as_targets(target, N, x.device)
    x0 = torch.zeros_like(x) if baseline is None else torch.as_tensor(baseline).to(x).expand_as(x)
    alphas = (torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps
    total = torch.zeros_like(x)
    for rows in chunks(steps * N, internal_batch_size):     # row r: step r // N, image r % N
        r = torch.arange(rows.start, rows.stop, device=x.device)
        k, n = r // N, r % N
        a = alphas[k].view(-1, 1, 1, 1)
        total.index_add_(0, n, score_gradient(module, x0[n] + a * (x[n] - x0[n]), target[n]))
    attributions = (x - x0) * total / steps
    if not return_convergence_delta:
        return attributions
    with torch.no_grad():
        gap = torch.cat([class_scores(module(x[s]), target[s]) - class_scores(module(x0[s]), target[s])
                         for s in chunks(N, internal_batch_size)])
    return attributions, attributions.sum(dim=(1, 2, 3)) - gap


def _layer_and_grad(module, x, target, layer):
    out, act = forward_capturing(module, x.detach(), layer)
    if act.dim() != 4:
        raise ValueError(f"layer {layer!r} has output shape {tuple(act.shape)}: Grad-CAM needs a "
                         f"conv-stage layer (N, C, H, W)")
    (grad,) = torch.autograd.grad(class_scores(out, target).sum(), act)
    return act.detach(), grad


def _upsample(cam, size):
    return TF.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def _cam(weigh, module, x, target, layer, upsample, batch_size):
    check_input(x, "Grad-CAM")
    target = as_targets(target, len(x), x.device)
    cams = []
    for s in chunks(len(x), batch_size):
        act, grad = _layer_and_grad(module, x[s], target[s], layer)
        cams.append(TF.relu((weigh(act, grad) * act).sum(dim=1)))        # (n, h, w)
    cam = torch.cat(cams)
    return _upsample(cam, x.shape[2:]) if upsample else cam


def _gradcam_weights(act, grad):
    return grad.mean(dim=(2, 3), keepdim=True)                          # (N, K, 1, 1)


def gradcam(module, x, target, layer, upsample=True, batch_size=None):
    """Grad-CAM (Selvaraju et al. 2017): the layer's maps weighted by the
    spatial mean of the score's gradient, summed, rectified:

        w_k = mean_ij dS/dA_kij,   cam = ReLU(sum_k w_k A_k)

    Returns (N, H, W), at the input's size when ``upsample`` (bilinear)."""
    return _cam(_gradcam_weights, module, x, target, layer, upsample, batch_size)


def _gradcam_plus_plus_weights(act, grad):
    g2, g3 = grad ** 2, grad ** 3
    denom = 2 * g2 + act.sum(dim=(2, 3), keepdim=True) * g3
    alpha = g2 / torch.where(denom != 0, denom, torch.ones_like(denom))
    return (alpha * TF.relu(grad)).sum(dim=(2, 3), keepdim=True)


def gradcam_plus_plus(module, x, target, layer, upsample=True, batch_size=None):
    """Grad-CAM++ (Chattopadhay et al. 2018), with the score's exponential, whose
    higher derivatives are powers of the first (g = dS/dA):

        alpha_kij = g^2 / (2 g^2 + sum_ab A_kab * g^3),  w_k = sum_ij alpha_kij ReLU(g_kij)
        cam = ReLU(sum_k w_k A_k)
    """
    return _cam(_gradcam_plus_plus_weights, module, x, target, layer, upsample, batch_size)


def guided_gradcam(module, x, target, layer, batch_size=None):
    """Guided Grad-CAM (Selvaraju et al. 2017): guided backpropagation times
    the Grad-CAM map upsampled to the input, shaped like x (the same map
    weighs every channel)."""
    cam = gradcam(module, x, target, layer, upsample=True, batch_size=batch_size)   # (N, H, W)
    return guided_backprop(module, x, target, batch_size) * cam[:, None]


def occlusion_windows(size, stride, extent):
    """The starts of the occluding windows along one side of ``extent``
    pixels: 0, stride, 2*stride, ... up to and including the first window
    that reaches the edge, 1 + ceil((extent - size) / stride) in all, the
    last one clipped there (Captum's rule), so every pixel is covered."""
    if size >= extent:
        return [0]
    return [k * stride for k in range(1 + math.ceil((extent - size) / stride))]


def _per_channel(value, x, name, method, non_negative=False):
    """None, or a value as a tensor broadcastable to x: a number, or one per
    channel (C,) as (1, C, 1, 1). Checked (finite, >= 0 if asked) on the CPU,
    then moved to x's device and dtype."""
    if value is None:
        return None
    t = torch.as_tensor(value, dtype=torch.float64)
    if t.dim() > 1 or (t.dim() == 1 and len(t) != x.shape[1]):
        raise ValueError(f"{method}: {name} must be a number or one per channel ({x.shape[1]},), "
                         f"got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{method}: {name} must be finite, got {value!r}")
    if non_negative and (t < 0).any():
        raise ValueError(f"{method}: {name} must be >= 0, got {value!r}")
    t = t.to(device=x.device, dtype=x.dtype)
    return t.view(1, -1, 1, 1) if t.dim() == 1 else t


@torch.no_grad()
def occlusion(module, x, target, size=6, stride=2, fill=0.0, internal_batch_size=None):
    """The drop of the class probability when a ``size`` square of value
    ``fill`` (a number, or one per channel) covers each position (Zeiler &
    Fergus 2013), as (N, H, W): each pixel gets the mean drop over the
    squares that cover it. The windows start every ``stride`` pixels and a
    last one, clipped at the edge, covers what remains (``occlusion_windows``)."""
    check_input(x, "occlusion")
    if not (isinstance(size, Integral) and size >= 1 and isinstance(stride, Integral) and stride >= 1):
        raise ValueError(f"occlusion: size and stride must be integers >= 1, got {size!r}, {stride!r}")
    N, C, H, W = x.shape
    target = as_targets(target, N, x.device)
    value = _per_channel(fill, x, "fill", "occlusion")                          # (1, C, 1, 1) or ()
    starts = [(top, left) for top in occlusion_windows(size, stride, H)
              for left in occlusion_windows(size, stride, W)]
    masks = torch.zeros((len(starts), H, W), dtype=torch.bool, device=x.device)   # (M, H, W): window m's pixels
    for m, (top, left) in enumerate(starts):
        masks[m, top:top + size, left:left + size] = True
    hits = masks.sum(dim=0).to(x.dtype)                                              # (H, W)
    # softmax of a log_softmax output is the softmax of the logits: one rule for both kinds of network
    prob = lambda z, t: class_scores(torch.softmax(module(z), dim=1), t)   # noqa: E731
    base = torch.cat([prob(x[s], target[s]) for s in chunks(N, internal_batch_size)])   # (N,)
    drop = torch.zeros(N, H, W, dtype=x.dtype, device=x.device)
    for rows in chunks(len(starts) * N, internal_batch_size):   # row r: window r // N, image r % N
        r = torch.arange(rows.start, rows.stop, device=x.device)
        m, n = r // N, r % N
        covered = masks[m][:, None]                                                  # (rows, 1, H, W)
        z = torch.where(covered, value, x[n])                                        # the occluded copies
        fall = base[n] - prob(z, target[n])                                          # (rows,)
        drop.index_add_(0, n, fall.view(-1, 1, 1) * covered[:, 0].to(x.dtype))
    return drop / hits.clamp(min=1)


def fgsm(module, x, target, epsilon, low=None, high=None):
    """The fast gradient sign method (Goodfellow et al. 2015): one step of
    size ``epsilon`` along the sign of the loss gradient, clipped to
    [low, high] (the valid input range) when given.

    epsilon, low, high: a number, or one value per channel, so that on
    normalised inputs a step of e pixel units is e / std_c in channel c and
    each channel stays in its own [(0 - mean_c) / std_c, (1 - mean_c) / std_c]."""
    check_input(x, "fgsm")
    target = as_targets(target, len(x), x.device)
    eps = _per_channel(epsilon, x, "epsilon", "fgsm", non_negative=True)
    x = x.detach().clone().requires_grad_(True)
    out = module(x)
    check_classes(target, out.shape[1])    # named before the loss sees it
    ends_in_log_softmax = isinstance(list(module.modules())[-1], torch.nn.LogSoftmax)
    loss = TF.nll_loss(out, target) if ends_in_log_softmax else TF.cross_entropy(out, target)
    (grad,) = torch.autograd.grad(loss, x)
    adv = x.detach() + eps * grad.sign()
    lo, hi = _per_channel(low, x, "low", "fgsm"), _per_channel(high, x, "high", "fgsm")
    if lo is not None:
        adv = torch.maximum(adv, lo)
    if hi is not None:
        adv = torch.minimum(adv, hi)
    return adv
