"""``npcnn explain``: the torch-side methods on images, for any of the four
networks: top-5 predictions by class name, filters, feature maps,
activation maximization, feature inversion, attributions (saliency,
gradient x input, guided backpropagation, SmoothGrad, Integrated
Gradients, Grad-CAM, Grad-CAM++, guided Grad-CAM, occlusion), deep dream,
FGSM, and with several images which filters they share.

Images: ``--image`` takes files, folders and glob patterns. Predictions and
attributions run over all of them in batches (``--batch-size`` images a
pass, ``--internal-batch-size`` rows a pass inside Integrated Gradients,
SmoothGrad and occlusion), with a progress bar, a figure per image and a
summary page (see ``vis.explain_batches``). Deep dream and compare take
the first 8 images; feature maps, inversion and FGSM the first.

Colour saliency: Simonyan et al.'s max over channels of |gradient|
(``--colour-rule max-abs``, the default) or the signed sum (``sum``);
gradient x input and Integrated Gradients are always summed, so that a
pixel's value is its share of the score.

Weights: ``--weights`` (a torchvision-compatible state_dict, or one of our
checkpoints), else for AlexNet and VGG16 torchvision's file in the torch hub
cache; ``--random-weights`` to try the methods without any file.
Device: ``--device`` (cpu, cuda, cuda:N), else CUDA when present.
"""
import argparse
import functools

import torch

import bridge
from bridge.actmax import activation_maximization
from bridge.attribution import fgsm, reduce_channels, saliency
from bridge.compare import filter_responses, layer_output, shared_and_unique
from bridge.deepdream import deep_dream, dream_objective, octave_sizes
from bridge.images import IMAGENET_MEAN, IMAGENET_STD, load_digit_image, load_imagenet_image, to_display
from bridge.inversion import invert_across_depths
from bridge.networks import last_conv_relu, resolve_layer
from bridge.train import pick_device
from npcnn.architectures import SPECS
from npcnn.data import MNIST_MEAN, MNIST_STD

from . import compare_figures, dream_figures, inversion_figures
from . import explain_figures as figures
from .arguments import non_empty_str, non_negative_int, positive_int, seed_int, unit_interval_float
from .explain_batches import ATTRIBUTIONS, Settings, explain_images
from .image_inputs import expand_images
from .paths import input_file, output_dir, writing_into
from .progress import progress_bar

EXAMPLE = ("example: npcnn explain --model lenet5 --weights lenet5.pt --image digits/ "
           "--method saliency gradcam actmax --out out/explain")
METHODS = ("filters", "feature-maps", "actmax", "inversion") + ATTRIBUTIONS + ("deepdream", "fgsm", "compare")
NO_IMAGE = ("filters", "actmax")
IMAGENET = ("vgg16", "alexnet")
FEW = 8   # images that deep dream and compare draw side by side


def add_parser(sub):
    p = sub.add_parser("explain", help="attributions, activation maximization, FGSM, filters and feature "
                       "maps (torch) for images", description=__doc__, epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, choices=list(SPECS))
    p.add_argument("--weights", "--checkpoint", dest="weights", type=functools.partial(input_file, what="weights"),
                   help="weight file (state_dict or checkpoint)")
    p.add_argument("--random-weights", action="store_true", help="torch's initialisation, seeded by --seed")
    p.add_argument("--image", nargs="+", type=non_empty_str, help="image files, folders or glob patterns "
                   "(needed by all but filters and actmax; compare needs two or more)")
    p.add_argument("--method", nargs="+", default=["saliency", "gradcam"], choices=METHODS)
    p.add_argument("--layer", type=non_empty_str, help="layer for Grad-CAM, feature maps, deep dream, compare "
                   "and actmax (default: the last conv-stage ReLU; actmax: the logits)")
    p.add_argument("--target", type=non_negative_int, help="class to explain in every image (default: each "
                   "image's predicted class)")
    p.add_argument("--steps", type=positive_int, help="iterations of activation maximization and inversion "
                   "(default 200), of deep dream per octave (default 20)")
    p.add_argument("--octaves", type=positive_int, default=4, help="deep dream octaves (scale 1.4 apart)")
    p.add_argument("--layers", nargs="+", type=non_empty_str, help="inversion: the layers to reconstruct from "
                   "(default: every max-pool, the ReLU of every hidden linear layer, and the logits)")
    p.add_argument("--channels", type=non_negative_int, nargs="+", help="actmax targets (default: the first 8, "
                   "or the target class for the logits)")
    p.add_argument("--epsilon", type=unit_interval_float, default=0.03, help="FGSM step in pixel units, in [0, 1]")
    p.add_argument("--ig-steps", type=positive_int, default=50, help="Integrated Gradients: path points")
    p.add_argument("--samples", type=positive_int, default=25, help="SmoothGrad: noisy copies per image")
    p.add_argument("--colour-rule", choices=["max-abs", "sum"], default="max-abs",
                   help="colour saliency, SmoothGrad and guided maps: max_c |g| (Simonyan et al.) or sum_c g")
    p.add_argument("--batch-size", type=positive_int, default=32, help="images per pass (predictions, "
                   "attributions)")
    p.add_argument("--internal-batch-size", type=positive_int, default=64, help="rows per pass inside "
                   "Integrated Gradients, SmoothGrad and occlusion (bounds their memory)")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--device", type=non_empty_str, help="cpu, cuda or cuda:N (default: cuda when present)")
    p.add_argument("--out", required=True, type=output_dir, help="folder for the figures (created)")
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


def logits_layer(module):
    return [n for n, m in bridge.named_layers(module).items() if isinstance(m, torch.nn.Linear)][-1]


def _check_indices(args, module, layer):
    """--target and --channels against the network, before any work."""
    classes = bridge.named_layers(module)[logits_layer(module)].out_features
    if args.target is not None and args.target >= classes:
        raise ValueError(f"--target {args.target}: {module.arch} has {classes} classes, 0 to {classes - 1}")
    if args.channels and "actmax" in args.method:
        name = resolve_layer(module, args.layer or logits_layer(module))
        shape = (3, 224, 224) if args.model in IMAGENET else (1, 28, 28)
        with torch.no_grad():
            width = bridge.networks.forward_to(module, torch.zeros((1,) + shape, dtype=next(
                module.parameters()).dtype, device=next(module.parameters()).device), name).shape[1]
        bad = [c for c in args.channels if c >= width]
        if bad:
            raise ValueError(f"--channels {bad[0]}: layer {name} has {width} channels, 0 to {width - 1}")


def run(args):
    device = pick_device(args.device)
    module = _module(args, device)
    mean, std = _statistics(args, module)
    layer = resolve_layer(module, args.layer or last_conv_relu(module))   # aliases (conv5_3) too
    _check_indices(args, module, layer)
    needs_image = [m for m in args.method if m not in NO_IMAGE]
    paths = []
    if needs_image:
        if not args.image:
            raise ValueError(f"--image is needed by {', '.join(needs_image)}")
        paths = expand_images(args.image)
        if "compare" in args.method and len(paths) < 2:
            raise ValueError(f"--method compare needs two or more --image, got {len(paths)}")
    dtype = next(module.parameters()).dtype

    def load(path):
        x = (load_imagenet_image(path) if args.model in IMAGENET else load_digit_image(path, mean[0], std[0]))
        return x.to(device=device, dtype=dtype)

    low = float(min(-m / s for m, s in zip(mean, std)))
    high = float(max((1 - m) / s for m, s in zip(mean, std)))
    with writing_into(args.out) as out:
        written = []
        if paths:
            black = torch.tensor([-m / s for m, s in zip(mean, std)], dtype=dtype, device=device).view(1, -1, 1, 1)
            settings = Settings(layer, black, mean, std, args.colour_rule, args.batch_size,
                                args.internal_batch_size, args.ig_steps, args.samples, args.seed)
            chosen = [m for m in args.method if m in ATTRIBUTIONS]
            written += explain_images(module, paths, load, chosen, args.target, settings, out, module.arch)
        first = torch.cat([load(p) for p in paths[:1]]) if paths else None
        target = _target(module, first, args.target)
        for method in args.method:
            if method == "filters":
                written += filters(module, out)
            elif method == "feature-maps":
                written += feature_maps(module, first, layer, out, mean, std)
            elif method == "actmax":
                written.append(actmax(module, args, out, low, high))
            elif method == "fgsm":
                written.append(adversarial(module, first, target, args.epsilon, mean, std, out))
            elif method == "inversion":
                written.append(inversion(module, first, args, mean, std, out))
            elif method == "deepdream":
                written.append(deepdream(module, torch.cat([load(p) for p in paths[:FEW]]), layer, args, mean,
                                         std, out))
            elif method == "compare":
                written.append(compare(module, torch.cat([load(p) for p in paths[:FEW]]), layer, paths[:FEW],
                                       mean, std, out))
    if len(written) <= FEW:
        for path in written:
            print(f"wrote {path}")
    else:
        print(f"wrote {len(written)} figures into {args.out}")
    return 0


def _target(module, x, target):
    """(1,) the class FGSM explains in the first image: --target, else the predicted one."""
    if x is None:
        return None
    if target is not None:
        return torch.tensor([target], device=x.device)
    with torch.no_grad():
        return module(x).argmax(dim=1)


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


def adversarial(module, x, target, epsilon, mean, std, out):
    """FGSM on the first image: a step of ``epsilon`` pixel units, epsilon / std_c in
    channel c, each channel kept in its own [black, white]."""
    eps = [epsilon / s for s in std]
    low = [-m / s for m, s in zip(mean, std)]
    high = [(1 - m) / s for m, s in zip(mean, std)]
    adv = fgsm(module, x, target, eps, low, high)
    with torch.no_grad():
        before, after = int(module(x).argmax(1)), int(module(adv).argmax(1))
        _, a = bridge.torch_activations(module, x)
        _, b = bridge.torch_activations(module, adv)
    change = {n: float((b[n] - v).norm() / max(float(v.norm()), 1e-12)) for n, v in a.items()
              if not isinstance(bridge.named_layers(module)[n], torch.nn.Flatten)}
    sal = lambda z: reduce_channels(saliency(module, z, target))[0].cpu().numpy()  # noqa: E731
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
        groups = shared_and_unique(filter_responses(module, x, layer).cpu())
        maps = layer_output(module, x, layer)
    labels = [p.name for p in paths]
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
