"""Every method's map of a batch, one (H, W) map per image in float64
NumPy, for the sanity checks: the deconvnet (npcnn's), guided
backpropagation, the gradient, gradient x input, SmoothGrad, Integrated
Gradients, Grad-CAM, Grad-CAM++, occlusion, and the random map.

Input-shaped maps of several channels (colour images) become one value
per pixel by ``bridge.attribution.reduce_channels``: the largest |value|
over the channels for the gradient-like maps (the deconvnet, guided
backpropagation, the gradient, SmoothGrad: Simonyan et al.'s rule), the
signed sum for gradient x input and Integrated Gradients (a pixel's share
of the score, so completeness holds). One channel (MNIST): the map itself.

The deconvnet's map of an image: Zeiler & Fergus project one activation,
not a class. Here it is the projection to pixels of the image's strongest
activation at the last conv stage (the layer before the flatten: pool_2 of
LeNet-5, max_pool_2 of SimpleCNN, pool5 of VGG16): the channel holding the
layer's largest activation, that unit alone (``select="max"``), walked down
by npcnn's deconvnet. It uses no target: it shows what the image excites
most strongly, which the network's class may or may not depend on.
"""
from dataclasses import dataclass

import numpy as np
import torch

from npcnn import deconv
from npcnn.sanity.baselines import random_maps

from ..attribution import reduce_channels, gradcam, gradcam_plus_plus, integrated_gradients, occlusion, saliency, smoothgrad
from ..convert import from_torch
from ..guided import guided_backprop
from ..networks import last_conv_relu

METHODS = ("deconvnet", "guided_backprop", "gradient", "gradient_x_input", "smoothgrad",
           "integrated_gradients", "gradcam", "gradcam_plus_plus", "occlusion", "random")
SIGNED = ("gradient_x_input", "integrated_gradients")   # colour: summed over channels, the rest max-abs
LABELS = {"deconvnet": "deconvnet", "guided_backprop": "guided backprop", "gradient": "gradient",
          "gradient_x_input": "gradient x input", "smoothgrad": "SmoothGrad",
          "integrated_gradients": "Integrated Gradients", "gradcam": "Grad-CAM",
          "gradcam_plus_plus": "Grad-CAM++", "occlusion": "occlusion", "random": "random map"}


@dataclass(frozen=True)
class Settings:
    """What the methods need besides the network and the images.

    black: the input value of a black pixel (a number, or one per channel:
    (0 - mean) / std), the baseline of Integrated Gradients and the occluder's fill; layer: Grad-CAM's (default the last
    ReLU before the flatten); seed: SmoothGrad's noise."""
    black: float | tuple = 0.0
    layer: str | None = None
    ig_steps: int = 32
    samples: int = 16
    sigma: float = 0.15
    occlusion_size: int = 6
    occlusion_stride: int = 2
    batch_size: int = 64
    internal_batch_size: int = 512
    seed: int = 0


def deconvnet_maps(module, x):
    """(N, C, H, W): each image's strongest activation at the last conv stage,
    projected to pixels by npcnn's deconvnet (see the module docstring)."""
    model = from_torch(module)
    images = x.detach().cpu().numpy().astype(model.dtype)
    layer = deconv.projectable_layers(model)[-1]
    _, acts = model.forward(images, record=True, until=layer, keep=[layer])
    a = acts[layer]                                                  # (N, K, h, w)
    channel = a.reshape(len(a), a.shape[1], -1).max(axis=2).argmax(axis=1)   # (N,) first maximum
    out = np.empty(images.shape, dtype=images.dtype)
    for c in np.unique(channel):
        rows = np.flatnonzero(channel == c)
        out[rows] = deconv.project(model, images[rows], layer, int(c), select="max")
    return out


def _per_pixel(a, name):
    """(N, C, H, W) or (N, H, W) -> (N, H, W) float64 NumPy: one value per pixel
    (see the module docstring; one channel: summed, i.e. the map itself)."""
    a = torch.from_numpy(np.asarray(a)) if not torch.is_tensor(a) else a.detach().cpu()
    if a.dim() == 4:
        a = reduce_channels(a, "sum" if name in SIGNED or a.shape[1] == 1 else "max-abs")
    return a.numpy().astype(np.float64)


def compute(name, module, x, target, settings, random_seed):
    """The maps (N, H, W) of method ``name``; ``random_seed`` draws the random map."""
    s = settings
    black = torch.as_tensor(s.black, dtype=x.dtype, device=x.device).reshape(-1, 1, 1).expand_as(x).contiguous()
    layer = s.layer or last_conv_relu(module)
    if name == "random":
        return random_maps((len(x),) + tuple(x.shape[2:]), random_seed)
    if name == "deconvnet":
        raw = deconvnet_maps(module, x)
    elif name == "guided_backprop":
        raw = guided_backprop(module, x, target, s.batch_size)
    elif name == "gradient":
        raw = saliency(module, x, target, s.batch_size)
    elif name == "gradient_x_input":
        raw = x * saliency(module, x, target, s.batch_size)
    elif name == "smoothgrad":
        raw = smoothgrad(module, x, target, s.samples, s.sigma, s.seed, s.internal_batch_size)
    elif name == "integrated_gradients":
        raw = integrated_gradients(module, x, target, black, s.ig_steps, s.internal_batch_size)
    elif name == "gradcam":
        raw = gradcam(module, x, target, layer, batch_size=s.batch_size)
    elif name == "gradcam_plus_plus":
        raw = gradcam_plus_plus(module, x, target, layer, batch_size=s.batch_size)
    elif name == "occlusion":
        raw = occlusion(module, x, target, s.occlusion_size, s.occlusion_stride, s.black, s.internal_batch_size)
    else:
        raise ValueError(f"unknown method {name!r}; methods: {', '.join(METHODS)}")
    return _per_pixel(raw, name)


def compute_all(module, x, target, names, settings, random_seed):
    """{method: (N, H, W)} for every method of ``names``."""
    return {name: compute(name, module, x, target, settings, random_seed) for name in names}
