"""``npcnn explain``: the torch-side methods on images, for any of the four
networks: top-5 predictions by class name, filters, feature maps,
activation maximization, feature inversion, attributions (saliency,
SmoothGrad, Integrated Gradients, Grad-CAM, Grad-CAM++, occlusion), deep
dream, FGSM, and with several images which filters they share.

Several ``--image``s: attributions and deep dream take them all (a row
each), ``compare`` needs two or more, and the one-image methods
(feature maps, inversion, FGSM) use the first.

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
from bridge.class_names import class_names, describe_top
from bridge.compare import filter_responses, layer_output, shared_and_unique
from bridge.deepdream import deep_dream, dream_objective, octave_sizes
from bridge.images import IMAGENET_MEAN, IMAGENET_STD, load_digit_image, load_imagenet_image, to_display
from bridge.inversion import invert_across_depths
from bridge.networks import resolve_layer
from npcnn.data import MNIST_MEAN, MNIST_STD

from . import compare_figures, dream_figures, inversion_figures
from . import explain_figures as figures
from .progress import progress_bar

EXAMPLE = ("example: npcnn explain --model lenet5 --weights lenet5.pt --image digit.png "
           "--method saliency gradcam actmax --out out/explain")
ATTRIBUTIONS = ("saliency", "smoothgrad", "integrated-gradients", "gradcam", "gradcam++", "occlusion")
METHODS = ("filters", "feature-maps", "actmax", "inversion") + ATTRIBUTIONS + ("deepdream", "fgsm", "compare")
NO_IMAGE = ("filters", "actmax")
IMAGENET = ("vgg16", "alexnet")


def add_parser(sub):
    p = sub.add_parser("explain", help="attributions, activation maximization, FGSM, filters and feature "
                       "maps (torch) for one image", description=__doc__, epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, choices=["vgg16", "alexnet", "lenet5", "simplecnn"])
    p.add_argument("--weights", "--checkpoint", dest="weights", help="weight file (state_dict or checkpoint)")
    p.add_argument("--random-weights", action="store_true", help="torch's initialisation, seeded by --seed")
    p.add_argument("--image", nargs="+", help="the image(s) to explain (needed by all but filters and actmax; "
                   "compare needs two or more)")
    p.add_argument("--method", nargs="+", default=["saliency", "gradcam"], choices=METHODS)
    p.add_argument("--layer", help="layer for Grad-CAM, feature maps, deep dream, compare and actmax "
                   "(default: the last conv-stage ReLU; actmax: the logits)")
    p.add_argument("--target", type=int, help="class to explain (default: the predicted one)")
    p.add_argument("--steps", type=int, help="iterations of activation maximization and inversion "
                   "(default 200), of deep dream per octave (default 20)")
    p.add_argument("--octaves", type=int, default=4, help="deep dream octaves (scale 1.4 apart)")
    p.add_argument("--layers", nargs="+", help="inversion: the layers to reconstruct from (default: every "
                   "max-pool, the ReLU of every hidden linear layer, and the logits)")
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
    layer = resolve_layer(module, args.layer or default_layer(module))   # aliases (conv5_3) too
    needs_image = [m for m in args.method if m not in NO_IMAGE]
    x = None
    if needs_image:
        if not args.image:
            raise ValueError(f"--image is needed by {', '.join(needs_image)}")
        if "compare" in args.method and len(args.image) < 2:
            raise ValueError(f"--method compare needs two or more --image, got {len(args.image)}")
        x = torch.cat([load_imagenet_image(path) if args.model in IMAGENET
                       else load_digit_image(path, mean[0], std[0]) for path in args.image]).to(device)
        with torch.no_grad():
            probs = torch.softmax(module(x), dim=1).cpu()
        for path, p in zip(args.image, probs):
            print(("top 5: " if len(x) == 1 else f"{path}: top 5: ") + describe_top(p, args.model))
        target = (torch.full((len(x),), args.target) if args.target is not None else probs.argmax(dim=1))
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
            written.append(adversarial(module, x[:1], target[:1], args.epsilon, mean, std, low, high, out))
        elif method == "inversion":
            written.append(inversion(module, x[:1], args, mean, std, out))
        elif method == "deepdream":
            written.append(deepdream(module, x, layer, args, mean, std, out))
        elif method == "compare":
            written.append(compare(module, x, layer, args.image, mean, std, out))
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
    images = [to_display(image, mean, std) for image in x]
    names = class_names(module.arch)
    return figures.attributions(images, [names[int(t)] for t in target], maps, out / "attributions.png",
                                f"{module.arch}: attributions for the " + (
                                    "target class" if len(x) > 1 else f"class {names[int(target[0])]}"))


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
    x = x[:1]
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

    steps = args.steps or 200
    with progress_bar(steps, f"actmax {layer}") as progress:
        result = activation_maximization(module, shape, targets, layer=layer, steps=steps, seed=args.seed,
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


def deepdream(module, x, layer, args, mean, std, out):
    sizes = octave_sizes(module, x.shape[1:], layer, args.octaves, dtype=x.dtype, device=x.device)
    steps = args.steps or 20
    low_c = [-m / s for m, s in zip(mean, std)]       # per channel: black and white in every channel
    high_c = [(1 - m) / s for m, s in zip(mean, std)]
    with progress_bar(len(sizes) * steps, f"deepdream {layer}") as progress:
        result = deep_dream(module, x, layer, octaves=args.octaves, steps=steps, seed=args.seed,
                            low=low_c, high=high_c, progress=progress)
    with torch.no_grad():
        start = dream_objective(module, x, layer)
    return dream_figures.dream([to_display(a, mean, std) for a in x], [to_display(a, mean, std) for a in result.image],
                               [h.cpu().numpy() for h in result.history], result.sizes, out / f"deepdream_{layer}.png",
                               f"{module.arch}: deep dream at {layer}, {len(result.sizes)} octaves x {steps} steps",
                               start=start.cpu().numpy())


def compare(module, x, layer, paths, mean, std, out):
    with torch.no_grad():
        groups = shared_and_unique(filter_responses(module, x, layer))
        maps = layer_output(module, x, layer)
    labels = [Path(p).name for p in paths]
    return compare_figures.filters_across_images(
        [to_display(a, mean, std) for a in x], groups, maps.cpu().numpy() if maps.dim() == 4 else None,
        out / f"compare_{layer}.png", f"{module.arch} {layer}: filters shared by the images and unique to one",
        labels=labels)


def inversion_layers(module):
    """Every max-pool, the ReLU after every hidden linear layer, and the logits:
    the depths at which a network's representation changes kind."""
    items = list(bridge.named_layers(module).items())
    chosen = [n for n, m in items if isinstance(m, torch.nn.MaxPool2d)]
    chosen += [items[i + 1][0] for i, (_, m) in enumerate(items[:-1])
               if isinstance(m, torch.nn.Linear) and isinstance(items[i + 1][1], torch.nn.ReLU)]
    return chosen + [logits_layer(module)]


def inversion(module, x, args, mean, std, out):
    layers = args.layers or inversion_layers(module)
    steps = args.steps or 200
    with progress_bar(len(layers) * steps, "inversion", label="loss") as progress:
        done = {}

        def tick(layer, step, loss):
            done.setdefault(layer, len(done))
            progress(done[layer] * steps + step, loss)

        results = invert_across_depths(module, x, layers, mean, std, steps=steps, progress=tick,
                                       seed=args.seed)
    display = lambda batch: [to_display(a, mean, std) for a in batch]  # noqa: E731
    return inversion_figures.inversions(
        display(x), {r.layer: display(r.images) for r in results},
        {r.layer: r.ssim.cpu().numpy() for r in results}, {r.layer: r.psnr.cpu().numpy() for r in results},
        {r.layer: torch.stack(r.history).cpu().numpy() for r in results}, out / "inversion.png",
        f"{module.arch}: the input reconstructed from each layer (Mahendran & Vedaldi 2015)")
