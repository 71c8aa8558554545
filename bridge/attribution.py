"""Attributions in torch: which input pixels (or which regions of a conv
layer) a network's score for a class depends on.

Every method takes a torch module (eval mode), an input batch x (N, C, H, W)
and the target classes (N,); the score of a class is the network's output
for it (a logit, or a log-probability for LeNet-5, which ends in
log_softmax). Attributions come back as tensors shaped like x, or (N, H, W)
maps for the CAM methods.
"""
import torch
import torch.nn.functional as TF

from .networks import forward_capturing


def _pick(out, target):
    return out.gather(1, torch.as_tensor(target, device=out.device).view(-1, 1)).squeeze(1)  # (N,)


def _scores(module, x, target):
    return _pick(module(x), target)


def saliency(module, x, target):
    """The gradient of the class score with respect to the input (Simonyan et al. 2014)."""
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_scores(module, x, target).sum(), x)
    return grad


def smoothgrad(module, x, target, samples=25, sigma=0.15, seed=0):
    """The saliency averaged over ``samples`` noisy copies of the input,
    noise N(0, (sigma * (max - min))^2) per image (Smilkov et al. 2017)."""
    gen = torch.Generator(device=x.device).manual_seed(seed)
    spread = (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3))).view(-1, 1, 1, 1)
    total = torch.zeros_like(x)
    for _ in range(samples):
        noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype) * sigma * spread
        total += saliency(module, x + noise, target)
    return total / samples


def integrated_gradients(module, x, target, baseline=None, steps=64):
    """(x - x0) times the average gradient on the straight path from the
    baseline x0 to x (Sundararajan et al. 2017), midpoint rule. The
    attributions add up to f(x) - f(x0) (completeness), up to the
    discretisation error, which more steps shrink."""
    baseline = torch.zeros_like(x) if baseline is None else baseline
    total = torch.zeros_like(x)
    for k in range(steps):
        alpha = (k + 0.5) / steps
        total += saliency(module, baseline + alpha * (x - baseline), target)
    return (x - baseline) * total / steps


def _layer_and_grad(module, x, target, layer):
    out, act = forward_capturing(module, x.detach(), layer)
    score = _pick(out, target)
    if act.dim() != 4:
        raise ValueError(f"layer {layer!r} has output shape {tuple(act.shape)}: Grad-CAM needs a "
                         f"conv-stage layer (N, C, H, W)")
    (grad,) = torch.autograd.grad(score.sum(), act)
    return act.detach(), grad, score.detach()


def _upsample(cam, size):
    return TF.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def gradcam(module, x, target, layer, upsample=True):
    """Grad-CAM (Selvaraju et al. 2017): the layer's maps weighted by the
    spatial mean of the score's gradient, summed, rectified:

        w_k = mean_ij dS/dA_kij,   cam = ReLU(sum_k w_k A_k)

    Returns (N, H, W), at the input's size when ``upsample`` (bilinear)."""
    act, grad, _ = _layer_and_grad(module, x, target, layer)
    weights = grad.mean(dim=(2, 3), keepdim=True)          # (N, K, 1, 1)
    cam = TF.relu((weights * act).sum(dim=1))              # (N, h, w)
    return _upsample(cam, x.shape[2:]) if upsample else cam


def gradcam_plus_plus(module, x, target, layer, upsample=True):
    """Grad-CAM++ (Chattopadhay et al. 2018), with the score's exponential, whose
    higher derivatives are powers of the first (g = dS/dA):

        alpha_kij = g^2 / (2 g^2 + sum_ab A_kab * g^3),  w_k = sum_ij alpha_kij ReLU(g_kij)
        cam = ReLU(sum_k w_k A_k)
    """
    act, grad, _ = _layer_and_grad(module, x, target, layer)
    g2, g3 = grad ** 2, grad ** 3
    denom = 2 * g2 + act.sum(dim=(2, 3), keepdim=True) * g3
    alpha = g2 / torch.where(denom != 0, denom, torch.ones_like(denom))
    weights = (alpha * TF.relu(grad)).sum(dim=(2, 3), keepdim=True)
    cam = TF.relu((weights * act).sum(dim=1))
    return _upsample(cam, x.shape[2:]) if upsample else cam


@torch.no_grad()
def occlusion(module, x, target, size=6, stride=2, fill=0.0):
    """The drop of the class probability when a ``size`` square of value
    ``fill`` covers each position (Zeiler & Fergus 2013), as (N, H, W): each
    pixel gets the mean drop over the squares that cover it."""
    N, C, H, W = x.shape
    prob = lambda z: torch.softmax(module(z), dim=1)  # noqa: E731  (log_softmax in: softmax is the same)
    base = prob(x).gather(1, torch.as_tensor(target).view(-1, 1))[:, 0]
    drop = torch.zeros(N, H, W, dtype=x.dtype)
    hits = torch.zeros(H, W, dtype=x.dtype)
    for top in range(0, H - size + 1, stride):
        for left in range(0, W - size + 1, stride):
            z = x.clone()
            z[:, :, top:top + size, left:left + size] = fill
            p = prob(z).gather(1, torch.as_tensor(target).view(-1, 1))[:, 0]
            drop[:, top:top + size, left:left + size] += (base - p).view(-1, 1, 1)
            hits[top:top + size, left:left + size] += 1
    return drop / hits.clamp(min=1)


def fgsm(module, x, target, epsilon, low=None, high=None):
    """The fast gradient sign method (Goodfellow et al. 2015): one step of
    size ``epsilon`` along the sign of the loss gradient, clipped to
    [low, high] (the valid input range) when given."""
    x = x.detach().clone().requires_grad_(True)
    out = module(x)
    loss = (TF.nll_loss(out, torch.as_tensor(target)) if isinstance(list(module.children())[-1], torch.nn.LogSoftmax)
            else TF.cross_entropy(out, torch.as_tensor(target)))
    (grad,) = torch.autograd.grad(loss, x)
    adv = x.detach() + epsilon * grad.sign()
    if low is not None or high is not None:
        adv = adv.clamp(min=low, max=high)
    return adv
