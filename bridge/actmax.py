"""Activation maximization (Erhan et al. 2009): an input optimised from noise
to excite one channel of a layer (or one class output) as much as possible,
kept image-like by regularizers: L2 decay, total variation, random jitter
and a periodic blur (Yosinski et al. 2015)."""
from dataclasses import dataclass

import torch
import torch.nn.functional as TF

from .networks import forward_to


@dataclass
class ActMaxResult:
    images: torch.Tensor   # (K, C, H, W), one per target
    history: list          # objective (K,) per step; history[0] is the starting noise's


def total_variation(x):
    """Sum of squared differences of neighbouring pixels, per image (K,)."""
    dh = (x[:, :, 1:, :] - x[:, :, :-1, :]) ** 2
    dw = (x[:, :, :, 1:] - x[:, :, :, :-1]) ** 2
    return dh.sum(dim=(1, 2, 3)) + dw.sum(dim=(1, 2, 3))


def _blur(x):
    kernel = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device)
    kernel = (kernel[:, None] * kernel[None, :]) / 16
    C = x.shape[1]
    weight = kernel.expand(C, 1, 3, 3).contiguous()
    return TF.conv2d(TF.pad(x, (1, 1, 1, 1), mode="replicate"), weight, groups=C)


def objective(module, x, layer, targets):
    """Mean activation of channel ``targets[k]`` of ``layer`` for image k
    (the output's entry ``targets[k]`` when layer is None), (K,)."""
    out = module(x) if layer is None else forward_to(module, x, layer)   # the layers after it: not run
    index = torch.as_tensor(targets, device=out.device).view(-1, *([1] * (out.dim() - 1)))
    picked = out.gather(1, index.expand(-1, 1, *out.shape[2:]))  # (K, 1, ...)
    return picked.reshape(len(targets), -1).mean(dim=1)


def activation_maximization(module, input_shape, targets, layer=None, steps=200, lr=0.1, l2=1e-4,
                            tv=2e-3, jitter=2, blur_every=10, seed=0, low=None, high=None,
                            progress=None):
    """Optimise one input per target, all in one batch.

    input_shape: (C, H, W); targets: channel (or class) indices; layer: a
    layer name, or None for the network's output. Returns ``ActMaxResult``.
    ``progress``: optional callable(step, objective) for a progress bar.
    """
    weight = next(module.parameters())
    gen = torch.Generator(device="cpu").manual_seed(seed)   # on the CPU: the same draws on every device
    x = 0.1 * torch.randn((len(targets),) + tuple(input_shape), generator=gen, dtype=torch.float64, device="cpu")
    x = x.to(device=weight.device, dtype=weight.dtype).requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=lr)
    history = []
    module.eval()
    for step in range(steps + 1):
        if jitter:
            dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=gen, device="cpu"))
            shifted = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
        else:
            shifted = x
        obj = objective(module, shifted, layer, targets)
        history.append(obj.detach().clone())
        if progress:
            progress(step, obj.detach())
        if step == steps:
            break
        loss = -obj.sum() + l2 * (x ** 2).sum() + tv * total_variation(x).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            if blur_every and (step + 1) % blur_every == 0:
                x.copy_(_blur(x))
            if low is not None or high is not None:
                x.clamp_(min=low, max=high)
    with torch.no_grad():
        final = objective(module, x, layer, targets)
    history[-1] = final
    return ActMaxResult(x.detach(), history)
