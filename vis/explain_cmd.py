"""``npcnn explain``: the torch-side methods on one image, for any of the four
networks: top-5 predictions, filters, feature maps, attributions (saliency,
SmoothGrad, Integrated Gradients, Grad-CAM, Grad-CAM++, occlusion),
activation maximization and FGSM.

Weights: ``--weights`` (a torchvision-compatible state_dict, or one of our
checkpoints), else for AlexNet and VGG16 torchvision's file in the torch hub
cache; ``--random-weights`` to try the methods without any file.
"""
import argparse
from pathlib import Path

import numpy as np
import torch

import bridge
from bridge.actmax import activation_maximization
from bridge.attribution import (fgsm, gradcam, gradcam_plus_plus, integrated_gradients, occlusion, saliency,
                                smoothgrad)
from bridge.class_names import describe_top
from bridge.images import IMAGENET_MEAN, IMAGENET_STD, load_digit_image, load_imagenet_image, to_display
from npcnn.data import MNIST_MEAN, MNIST_STD

from . import explain_figures as figures
from .progress import progress_bar

EXAMPLE = ("example: npcnn explain --model lenet5 --weights lenet5.pt --image digit.png "
           "--method saliency gradcam actmax --out out/explain")
ATTRIBUTIONS = ("saliency", "smoothgrad", "integrated-gradients", "gradcam", "gradcam++", "occlusion")
METHODS = ("filters", "feature-maps") + ATTRIBUTIONS + ("actmax", "fgsm")
IMAGENET = ("vgg16", "alexnet")


def add_parser(sub):
    p = sub.add_parser("explain", help="attributions, activation maximization, FGSM, filters and feature "
                       "maps (torch) for one image", description=__doc__, epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, choices=["vgg16", "alexnet", "lenet5", "simplecnn"])
    p.add_argument("--weights", "--checkpoint", dest="weights", help="weight file (state_dict or checkpoint)")
    p.add_argument("--random-weights", action="store_true", help="torch's initialisation, seeded by --seed")
    p.add_argument("--image", help="the image to explain (needed by all but filters and actmax)")
    p.add_argument("--method", nargs="+", default=["saliency", "gradcam"], choices=METHODS)
    p.add_argument("--layer", help="layer for Grad-CAM, feature maps and actmax (default: the last "
                   "conv-stage ReLU; actmax: the logits)")
    p.add_argument("--target", type=int, help="class to explain (default: the predicted one)")
    p.add_argument("--steps", type=int, default=200, help="iterations of activation maximization")
    p.add_argument("--channels", type=int, nargs="+", help="actmax targets (default: the first 8, or "
                   "the target class for the logits)")
    p.add_argument("--epsilon", type=float, default=0.03, help="FGSM step in pixel units ([0, 1])")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    p.add_argument("--out", required=True, help="folder for the figures (created)")
    p.set_defaults(run=run)


def _module(args, device):
    if args.random_weights:
        torch.manual_seed(args.seed)
        module = bridge.torch_model(args.model)
        module.meta = {}
    elif args.weights:
        module = bridge.load_module(args.weights, arch=args.model)
    elif args.model in IMAGENET:
        module = bridge.load_pretrained(args.model)
    else:
        raise ValueError(f"--model {args.model} needs --weights (a checkpoint from npcnn train) "
                         f"or --random-weights")
    return module.to(device).eval()


def _statistics(args, module):
    if args.model in IMAGENET:
        return IMAGENET_MEAN, IMAGENET_STD
    norm = getattr(module, "meta", {}).get("normalization", {"mean": MNIST_MEAN, "std": MNIST_STD})
    return (norm["mean"],), (norm["std"],)


def default_layer(module):
    """The last ReLU before the flatten: the last conv stage."""
    names = list(bridge.named_layers(module).items())
    cut = next(i for i, (_, m) in enumerate(names) if isinstance(m, torch.nn.Flatten))
    return [n for n, m in names[:cut] if isinstance(m, torch.nn.ReLU)][-1]


def logits_layer(module):
    return [n for n, m in bridge.named_layers(module).items() if isinstance(m, torch.nn.Linear)][-1]


def run(args):
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    module = _module(args, device)
    mean, std = _statistics(args, module)
    layer = args.layer or default_layer(module)
    if layer not in bridge.named_layers(module):
        raise ValueError(f"unknown layer {layer!r}; valid layers: {', '.join(bridge.named_layers(module))}")
    needs_image = [m for m in args.method if m not in ("filters", "actmax")]
    x = None
    if needs_image:
        if not args.image:
            raise ValueError(f"--image is needed by {', '.join(needs_image)}")
        x = (load_imagenet_image(args.image) if args.model in IMAGENET
             else load_digit_image(args.image, mean[0], std[0])).to(device)
        with torch.no_grad():
            probs = torch.softmax(module(x), dim=1)[0]
        print("top 5: " + describe_top(probs.cpu(), args.model))
        target = torch.tensor([args.target if args.target is not None else int(probs.argmax())])
    written = []
    low = float(min(-m / s for m, s in zip(mean, std)))
    high = float(max((1 - m) / s for m, s in zip(mean, std)))
    for method in args.method:
        if method == "filters":
            written += filters(module, out)
        elif method == "feature-maps":
            written += feature_maps(module, x, layer, out, mean, std)
        elif method == "actmax":
            written.append(actmax(module, args, out, low, high))
        elif method == "fgsm":
            written.append(adversarial(module, x, target, args.epsilon, mean, std, low, high, out))
    chosen = [m for m in args.method if m in ATTRIBUTIONS]
    if chosen:
        written.append(attributions(module, x, target, chosen, layer, mean, std, low, out))
    for path in written:
        print(f"wrote {path}")
    return 0


def attributions(module, x, target, methods, layer, mean, std, low, out):
    compute = {
        "saliency": lambda: saliency(module, x, target),
        "smoothgrad": lambda: smoothgrad(module, x, target),
        "integrated-gradients": lambda: integrated_gradients(module, x, target, black(x, mean, std)),
        "gradcam": lambda: gradcam(module, x, target, layer),
        "gradcam++": lambda: gradcam_plus_plus(module, x, target, layer),
        "occlusion": lambda: occlusion(module, x, target, size=max(4, x.shape[-1] // 7),
                                       stride=max(2, x.shape[-1] // 28), fill=0.0),
    }
    maps = {}
    for m in methods:
        v = compute[m]().detach().cpu().numpy()
        maps[m if m not in ("gradcam", "gradcam++") else f"{m} ({layer})"] = (
            v.sum(axis=1) if v.ndim == 4 else v)  # colour gradients: summed over channels
    image = to_display(x[0], mean, std)
    return figures.attributions([image], [int(target)], maps, out / "attributions.png",
                                f"{module.arch}: attributions for class {int(target)}")


def black(x, mean, std):
    """A black image in the network's input units: the Integrated Gradients baseline."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (torch.zeros_like(x) - m) / s


def filters(module, out):
    convs = [(n, m) for n, m in bridge.named_layers(module).items() if isinstance(m, torch.nn.Conv2d)]
    written = []
    for k, (name, conv) in enumerate(convs[:2]):
        w = conv.weight.detach().cpu().numpy()
        written.append(figures.filter_tiles(w, name, out / f"filters_{name}.png", colour=(k == 0 and w.shape[1] == 3)))
    return written


def feature_maps(module, x, layer, out, mean, std):
    with torch.no_grad():
        _, acts = bridge.torch_activations(module, x)
    stages = [n for n, a in acts.items() if a.dim() == 4]
    maps = acts[layer][0].cpu().numpy()
    return [figures.channel_grid(maps[:64], f"{module.arch} {layer}: {min(64, len(maps))} of {len(maps)} "
                                 "channels", out / f"feature_maps_{layer}.png"),
            figures.progression(to_display(x[0], mean, std),
                                {n: acts[n][0].mean(dim=0).cpu().numpy() for n in stages},
                                f"{module.arch}: channel mean of every conv, ReLU and pooling layer",
                                out / "feature_map_progression.png")]


def actmax(module, args, out, low, high):
    layer = args.layer or logits_layer(module)
    if args.channels:
        targets = args.channels
    elif layer == logits_layer(module):
        targets = [args.target if args.target is not None else 0]
    else:
        targets = list(range(8))
    shape = (3, 224, 224) if args.model in IMAGENET else (1, 28, 28)

    with progress_bar(args.steps, f"actmax {layer}") as progress:
        result = activation_maximization(module, shape, targets, layer=layer, steps=args.steps, seed=args.seed,
                                         low=low, high=high, progress=progress)
    images = result.images.cpu().numpy()
    images = images.mean(axis=1) if images.shape[1] == 3 else images[:, 0]
    return figures.actmax(images, [f"{layer}[{t}]" for t in targets], [h.cpu().numpy() for h in result.history],
                          out / f"actmax_{layer}.png", f"{module.arch}: activation maximization of {layer}")


def adversarial(module, x, target, epsilon, mean, std, low, high, out):
    eps = epsilon / float(np.mean(std))
    adv = fgsm(module, x, target, eps, low, high)
    with torch.no_grad():
        before, after = int(module(x).argmax(1)), int(module(adv).argmax(1))
        _, a = bridge.torch_activations(module, x)
        _, b = bridge.torch_activations(module, adv)
    change = {n: float((b[n] - v).norm() / max(float(v.norm()), 1e-12)) for n, v in a.items()
              if not isinstance(bridge.named_layers(module)[n], torch.nn.Flatten)}
    sal = lambda z: saliency(module, z, target)[0].sum(dim=0).cpu().numpy()  # noqa: E731
    return figures.fgsm(to_display(x[0], mean, std), to_display(adv[0], mean, std), before, after, int(target),
                        sal(x), sal(adv), change, out / "fgsm.png",
                        f"FGSM, epsilon {epsilon} (pixel units): class {before} -> {after}")
