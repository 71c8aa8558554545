"""The torch methods on a trained MNIST network, for the demo page:
attributions, activation maximization and FGSM (bridge.attribution,
bridge.actmax)."""
from pathlib import Path

import numpy as np
import torch

import bridge
from bridge.actmax import activation_maximization
from bridge.attribution import (fgsm, gradcam, gradcam_plus_plus, integrated_gradients, occlusion, saliency,
                                smoothgrad)
from npcnn.data import to_tensor

from . import explain_figures as figures


def build(checkpoint, test_set, out, layer="relu_2", steps=200, quick=False):
    """Draw the figures into ``out``; returns [(path, caption)]."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    module = bridge.load_module(checkpoint)
    arch = module.arch
    norm = module.meta.get("normalization", {"mean": 0.1307, "std": 0.3081})
    low, high = -norm["mean"] / norm["std"], (1 - norm["mean"]) / norm["std"]
    labels = test_set.labels
    picks = [int(np.flatnonzero(labels == d)[0]) for d in range(3 if quick else 6)]
    x = torch.from_numpy(to_tensor(test_set.images[picks], norm["mean"], norm["std"]))
    y = torch.from_numpy(labels[picks])
    black = torch.full_like(x, low)
    maps = {"saliency": saliency(module, x, y), "SmoothGrad": smoothgrad(module, x, y, samples=16),
            "Integrated Gradients": integrated_gradients(module, x, y, black, steps=32),
            f"Grad-CAM ({layer})": gradcam(module, x, y, layer),
            f"Grad-CAM++ ({layer})": gradcam_plus_plus(module, x, y, layer),
            "occlusion (drop of p)": occlusion(module, x, y, size=6, stride=2, fill=low)}
    written = [(figures.attributions(x.numpy(), y.numpy(), {k: v.detach().numpy() for k, v in maps.items()},
                                     out / "attributions.png",
                                     f"{arch}: what the score of the true class depends on"),
                f"{arch}: saliency, SmoothGrad, Integrated Gradients (black baseline), Grad-CAM and "
                f"Grad-CAM++ at {layer}, occlusion; one test image per row")]

    # the logits (the last linear layer), not LeNet-5's log-probabilities, which saturate at 0
    logits = [n for n, m in bridge.named_layers(module).items() if isinstance(m, torch.nn.Linear)][-1]
    classes = activation_maximization(module, (1, 28, 28), list(range(10)), layer=logits,
                                      steps=steps // 2 if quick else steps, low=low, high=high)
    written.append((figures.actmax(classes.images.numpy(), [f"class {k}" for k in range(10)],
                                   [h.numpy() for h in classes.history], out / "actmax_classes.png",
                                   f"{arch}: inputs optimised from noise to maximise each class logit ({logits})"),
                    f"{arch}: activation maximization of the 10 class logits of {logits} "
                    f"(L2, total variation, jitter, blur)"))
    channels = list(range(8))
    maps_max = activation_maximization(module, (1, 28, 28), channels, layer=layer,
                                       steps=steps // 2 if quick else steps, low=low, high=high)
    written.append((figures.actmax(maps_max.images.numpy(), [f"{layer}[{c}]" for c in channels],
                                   [h.numpy() for h in maps_max.history], out / f"actmax_{layer}.png",
                                   f"{arch}: inputs maximising the mean of {layer}'s first 8 maps"),
                    f"{arch}: activation maximization of 8 maps of {layer}, in one batch"))

    eps = 0.2 / norm["std"]  # 0.2 in pixel units
    image, label = x[:1], y[:1]
    adv = fgsm(module, image, label, eps, low, high)
    with torch.no_grad():
        before, after = module(image).argmax(1).item(), module(adv).argmax(1).item()
        _, acts = bridge.torch_activations(module, image)
        _, acts_adv = bridge.torch_activations(module, adv)
    change = {n: float((acts_adv[n] - a).norm() / max(a.norm(), 1e-12)) for n, a in acts.items()
              if n != "flatten"}
    written.append((figures.fgsm(image[0].numpy(), adv[0].numpy(), before, after, int(label),
                                 saliency(module, image, label)[0, 0].numpy(),
                                 saliency(module, adv, label)[0, 0].numpy(), change, out / "fgsm.png",
                                 f"FGSM, epsilon 0.2 (pixel units): {before} -> {after}"),
                    f"{arch}: FGSM at epsilon 0.2: the adversarial image, the difference, saliency before "
                    f"and after, and how much each layer's activations move"))
    return written
