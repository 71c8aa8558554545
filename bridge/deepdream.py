"""DeepDream (Mordvintsev, Olah & Tyka 2015, "Inceptionism: Going Deeper
into Neural Networks", and their deepdream.ipynb): gradient ascent on an
image, starting from the image itself, to amplify whatever a layer already
sees in it, processed octave by octave from a coarse scale up.

Letters: N images, C input channels, (H, W) the full size, K octaves,
s = octave_scale, A = the output of ``layer`` (N, F, h', w') or (N, F).

Objective, per image n, over the chosen channels S (all F by default):

    J_n(x) = 1/(|S| h' w') * sum_{f in S, i, j} A[n, f, i, j]^2

(the original's "L2 objective": it set dJ/dA = A, the gradient of
sum A^2 / 2; the mean only rescales it, and the normalised step below
removes any scale.)

Octaves: base_0 = x, base_k = bilinear(base_{k-1}) to
(round(H / s^k), round(W / s^k)) for k = 1..K-1. Processed from the
smallest, k = K-1, to k = 0, with detail_{K} = 0:

    img  = clamp(base_k + bilinear(detail_{k+1}) to base_k's size)
    repeat ``steps`` times:
        (dy, dx) ~ uniform{-jitter..jitter}^2
        g   = dJ/dimg, J evaluated at roll(img, (dy, dx))
        img = clamp(img + lr * g / mean_{c,i,j} |g[n]|,  low, high)
    detail_k = img - base_k

so only the detail the ascent added is carried up, laid over a sharp base
of the next size (upsampling the whole dream would blur the image itself).
Autograd through the roll gives the gradient in the unshifted frame,
which is the original's roll, step and roll back. The step is normalised
per image, so each image of a batch moves as if dreamed alone.

Small octaves: an octave is skipped when the network cannot carry an image
of its size as far as ``layer`` (somewhere on the way a conv kernel or a
pooling window is larger than its input, or the layer's output would be
empty); this is found by a trial forward pass of one image of that size.
The skipped octaves are the smallest ones, so the dream starts at the
smallest reachable size; ``octave_sizes`` says in advance which remain.
The layers after ``layer`` are never run, so a network whose classifier
needs one input size (LeNet-5's fc_1 wants 16x5x5) still dreams at others.
"""
from dataclasses import dataclass
from numbers import Integral

import torch
import torch.nn.functional as TF

from .networks import forward_to, resolve_layer


@dataclass
class DreamResult:
    image: torch.Tensor   # (N, C, H, W), the dream at full size
    history: list         # objective (N,) per step: steps + 1 per octave (see deep_dream)
    sizes: list           # (h, w) of each octave processed, smallest first; the last is (H, W)


def _reaches(module, shape, layer, dtype, device):
    """Whether one image of ``shape`` (C, h, w) gets as far as ``layer`` with a
    non-empty output; (False, torch's message) when it does not."""
    if min(shape[1:]) < 1:
        return False, "the image would be empty"
    try:
        with torch.no_grad():
            a = forward_to(module, torch.zeros((1,) + tuple(shape), dtype=dtype, device=device), layer)
    except RuntimeError as err:   # torch: "Kernel size can't be greater than actual input size" etc.
        return False, str(err).splitlines()[0]
    if a.numel() == 0:
        return False, f"{layer}'s output would be empty, shape {tuple(a.shape)}"
    return True, ""


def octave_sizes(module, input_shape, layer, octaves=4, octave_scale=1.4, dtype=torch.float32, device="cpu"):
    """The (h, w) of the octaves ``deep_dream`` will process for inputs of
    ``input_shape`` (C, H, W), smallest first: (round(H / s^k), round(W / s^k))
    for k = octaves-1 .. 0, less those too small to reach ``layer``.

    Raises ValueError when even (H, W) cannot reach it; the CLI uses the count
    to size its progress bar (len(sizes) * steps steps in all)."""
    C, H, W = input_shape
    if not (isinstance(octaves, int) and octaves >= 1):
        raise ValueError(f"octaves must be an integer >= 1, got {octaves!r}")
    if not octave_scale > 1:
        raise ValueError(f"octave_scale must be > 1, got {octave_scale!r}")
    resolve_layer(module, layer)   # before the trial passes, so an unknown name is reported as such
    sizes = []
    for k in range(octaves):   # full size first: reachability only shrinks with the size
        size = (round(H / octave_scale ** k), round(W / octave_scale ** k))
        ok, why = _reaches(module, (C,) + size, layer, dtype, device)
        if not ok:
            if k == 0:
                raise ValueError(f"an input of size {H}x{W} cannot reach layer {layer!r}: {why}")
            break
        sizes.append(size)
    return sizes[::-1]


def dream_objective(module, x, layer, channels=None):
    """J_n: the mean squared activation of ``layer`` (of ``channels`` only, if
    given) for each image, (N,)."""
    a = forward_to(module, x, layer)
    if channels is not None:
        a = a[:, list(channels)]
    return (a ** 2).reshape(len(a), -1).mean(dim=1)


def _bounds(value, x):
    """None, or a tensor broadcastable to x: a scalar, or one value per channel."""
    if value is None:
        return None
    t = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    return t.view(1, -1, 1, 1) if t.dim() == 1 else t


def _clamp(x, low, high):
    if low is not None:
        x = torch.maximum(x, low)
    if high is not None:
        x = torch.minimum(x, high)
    return x


def _check(x, steps, lr, jitter, low, high):
    if not (torch.is_tensor(x) and x.dim() == 4 and x.is_floating_point()):
        raise ValueError(f"x must be a float tensor (N, C, H, W), got "
                         f"{tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if not (isinstance(jitter, int) and jitter >= 0):
        raise ValueError(f"jitter must be an integer >= 0 (pixels), got {jitter!r}")
    if low is not None and high is not None and not torch.all(torch.as_tensor(low) < torch.as_tensor(high)):
        raise ValueError(f"low must be below high, got low={low!r}, high={high!r}")


def _check_channels(module, x, layer, channels):
    if channels is None:
        return None
    with torch.no_grad():
        F = forward_to(module, x[:1], layer).shape[1]
    channels = list(channels)
    bad = [c for c in channels if not (isinstance(c, Integral) and 0 <= c < F)]
    if not channels or bad:
        raise ValueError(f"channels must be a non-empty list of indices in [0, {F}) for layer "
                         f"{layer!r}, got {channels!r}")
    return [int(c) for c in channels]


def deep_dream(module, x, layer, octaves=4, octave_scale=1.4, steps=20, lr=0.02, jitter=4, channels=None,
               seed=0, low=None, high=None, progress=None):
    """Dream the images x (N, C, H, W) at ``layer``; returns ``DreamResult``.

    Inputs:
    - module: a torch network, put in eval mode; layer: a name from
      ``named_layers(module)``; channels: indices of the layer's channels
      (features, for a linear layer) to amplify, all by default.
    - octaves, octave_scale: K and s above (the original's 4 and 1.4).
    - steps, lr: ascent steps per octave and the mean absolute change of a
      pixel per step, in the units of x. On normalised inputs 0.02 is about
      0.005 of the [0, 1] range, the original's 1.5 / 255 (it took 10 steps
      per octave; 20 here). 20 steps at 0.02 double a trained LeNet-5's
      relu_2 objective on a digit; at 0.05 most pixels end at the clamp.
    - jitter: the largest random shift, in pixels, the same at every octave
      as in the original (32 there, on GoogLeNet). 4 covers the stride of
      AlexNet's conv1: without jitter the ascent exploits that fixed grid
      (a random AlexNet's relu5 objective climbs 23-fold on high-frequency
      noise instead of 2.6-fold on smooth patterns), and 4 is still a small
      shift on a 28-pixel digit and its 10-pixel octave.
    - seed: of the jitter's random generator; low, high: bounds of x (a
      scalar, or one value per channel), applied after every step.
    - progress: optional callable(done, objective), called after every step
      with the number of steps done across octaves (len(sizes) * steps at
      the end; ``octave_sizes`` gives sizes in advance).

    Returns DreamResult: image (N, C, H, W); sizes, smallest first; history,
    steps + 1 entries (N,) per octave: the objective of the (jittered)
    image each step's gradient was taken at, then that of the octave's final
    image, not jittered.

    Octaves too small for the network to reach ``layer`` are skipped (see
    the module docstring); ValueError when even (H, W) is too small, for an
    unknown layer (listing the valid ones) and for bad arguments.
    """
    _check(x, steps, lr, jitter, low, high)
    module.eval()
    sizes = octave_sizes(module, x.shape[1:], layer, octaves, octave_scale, x.dtype, x.device)
    channels = _check_channels(module, x, layer, channels)
    low, high = _bounds(low, x), _bounds(high, x)
    gen = torch.Generator(device="cpu").manual_seed(seed)   # on the CPU: the same shifts on every device

    bases = [x.detach()]   # full size first, each from the previous, as the original's nd.zoom
    for size in sizes[-2::-1]:
        bases.append(TF.interpolate(bases[-1], size=size, mode="bilinear", align_corners=False))
    bases = bases[::-1]    # smallest first, matching sizes

    detail = torch.zeros_like(bases[0])
    history, done = [], 0
    for base in bases:
        up = TF.interpolate(detail, size=base.shape[-2:], mode="bilinear", align_corners=False)
        img = _clamp(base + up, low, high)
        for _ in range(steps):
            dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=gen, device="cpu"))
            img.requires_grad_(True)
            obj = dream_objective(module, torch.roll(img, shifts=(dy, dx), dims=(2, 3)), layer, channels)
            # grad, not backward: the module's parameters collect no .grad
            (g,) = torch.autograd.grad(obj.sum(), img)   # (N, C, h, w); images do not interact
            scale = g.abs().mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)   # (N, 1, 1, 1)
            img = _clamp(img.detach() + lr * g / scale, low, high)
            history.append(obj.detach())
            done += 1
            if progress:
                progress(done, obj.detach())
        with torch.no_grad():
            history.append(dream_objective(module, img, layer, channels))
        detail = img - base
    return DreamResult(img.detach(), history, sizes)
