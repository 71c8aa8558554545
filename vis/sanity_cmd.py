"""``npcnn sanity``: can the maps be trusted? Sanity checks (Adebayo et al.
2018) and faithfulness (deletion and insertion, Petsiuk et al. 2018; ROAD,
Rong et al. 2022) for every method, Zeiler & Fergus's deconvnet included,
on a trained MNIST network (LeNet-5 or SimpleCNN, --checkpoint), or on
AlexNet or VGG16 (--model, with --weights or --random-weights) and your own
images (--image).

Methods: the deconvnet (npcnn's: the projection of each image's strongest
activation at the last conv stage), guided backpropagation, the gradient,
gradient x input, SmoothGrad, Integrated Gradients (black baseline),
Grad-CAM and Grad-CAM++ (last conv-stage ReLU), occlusion (a black square),
and a random map, the floor. Targets: the trained network's predicted class.
Colour images: input-shaped maps become one value per pixel, the largest
|value| over the channels (gradient-like maps) or the signed sum (gradient x
input, Integrated Gradients), before the similarities and the pixel orders.

  1. model randomisation: cascading (layers re-initialised from the logits
     down, one more each step) and independent (one layer at a time), with
     each layer's own initialiser; similarity of each map to the trained
     network's: Spearman rank correlation of the map and of |map|, SSIM,
     HOG similarity, mean and spread over --images test images;
  2. data randomisation: the same architecture trained on permuted labels until
     its training accuracy plateaus (or --permuted-seconds run out), and
     the same similarities of its maps to the trained network's. Skipped for
     AlexNet and VGG16, with a line saying so: it needs training on ImageNet;
  3. faithfulness: deletion and insertion curves and their areas
     (--replacement: zero = black, mean, blur; per channel for colour),
     ROAD with noisy linear imputation (most and least relevant first),
     against the random map and the pixel oracle (each pixel ranked by its
     own effect; MNIST only: on 224x224 it is 50,176 forwards an image).

Writes into --out: cascading_N.png and independent_N.png (a row per method,
a column per step, for --figure-images images), similarity_METRIC.png (a
line per method), data_randomization.png and data_randomization_N.png,
deletion_insertion.png, road.png, results.md, results.json and
permuted_labels.pt (the permuted-label network, MNIST only).
"""
import argparse
import functools
import time
from pathlib import Path

import numpy as np
import torch

import bridge
from bridge.checkpoint import save_checkpoint
from bridge.images import IMAGENET_MEAN, IMAGENET_STD, load_imagenet_image, to_display
from bridge.sanity import permuted, study
from bridge.sanity.methods import LABELS, METHODS, Settings
from bridge.sanity.randomize import MODES
from npcnn.data import DATASET_NAMES, load_mnist, to_tensor
from npcnn.sanity import road
from npcnn.sanity.baselines import REPLACEMENTS
from npcnn.sanity.similarity import METRICS

from . import sanity_figures as figures
from . import sanity_tables as tables
from .arguments import bounded, positive_float, positive_int, seed_int
from .image_inputs import expand_images
from .paths import input_dir, input_file, output_dir, writing_into
from .study_inputs import MNIST_ARCHS, recorded_dataset, recorded_normalization

EXAMPLE = ("examples: npcnn sanity --checkpoint lenet5.pt --images 100 --out out/sanity\n"
           "          npcnn sanity --model alexnet --weights alexnet.pth --image photos/ --out out/sanity_alexnet")
IMAGENET = ("alexnet", "vgg16")
OCCLUSION = {"mnist": (6, 3), "imagenet": (32, 16)}   # default occluder side and stride, in pixels
LABELS_ALL = {**LABELS, study.ORACLE: "pixel oracle (1 pixel)"}


def add_parser(sub):
    p = sub.add_parser("sanity", help="sanity checks (model and data randomisation) and faithfulness "
                       "(deletion, insertion, ROAD) of every attribution method, the deconvnet included",
                       description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=functools.partial(input_file, what="checkpoint"),
                   help="a LeNet-5 or SimpleCNN checkpoint (npcnn train); or --model")
    p.add_argument("--model", choices=IMAGENET, help="AlexNet or VGG16 on --image files, with --weights "
                   "or --random-weights")
    p.add_argument("--weights", type=functools.partial(input_file, what="weights"),
                   help="--model's weights: a torchvision-layout state_dict or an npcnn checkpoint")
    p.add_argument("--random-weights", action="store_true",
                   help="--model with torch's initialisation, seeded by --seed (to try it without a file)")
    p.add_argument("--image", nargs="+", metavar="PATH", help="--model: image files, folders or patterns, "
                   "resized and centre-cropped to 224x224. No labels are needed: each image's target is "
                   "its predicted class, so \"balanced over the classes\" does not apply")
    p.add_argument("--images", type=bounded(int, 2, 10000), default=None,
                   help="--checkpoint: test images, balanced over the classes (default 100); "
                   "--model: at most this many of the --image files (default all)")
    p.add_argument("--out", type=output_dir, required=True, help="folder for the figures and tables (created)")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--replacement", choices=REPLACEMENTS, default="zero",
                   help="what deletion and insertion put in a pixel's place (default zero: a black pixel)")
    p.add_argument("--blur-sigma", type=positive_float, default=2.0, help="--replacement blur: sigma in pixels")
    p.add_argument("--curve-steps", type=bounded(int, 1, 784), default=28, help="steps of the deletion and "
                   "insertion curves (default 28: 28 pixels a step)")
    p.add_argument("--road-fractions", type=bounded(float, 0, 1, low_open=True, high_open=True), nargs="+",
                   default=list(road.DEFAULT_FRACTIONS), help="ROAD: the fractions of pixels removed "
                   "(default 0.1 0.3 0.5 0.7 0.9)")
    p.add_argument("--figure-images", type=bounded(int, 1, 10), default=3, help="images drawn method by step")
    p.add_argument("--permuted-seconds", type=positive_float, default=240.0,
                   help="time limit of training on permuted labels (default 240; LeNet-5 on 5,000 images "
                   "plateaus near 100%% in about 50 epochs)")
    p.add_argument("--permuted-samples", type=positive_int, default=5000,
                   help="training images for the permuted-label network (default 5000)")
    p.add_argument("--permuted-epochs", type=positive_int, default=200, help="epoch limit of the same")
    p.add_argument("--no-data-randomization", action="store_true", help="skip the permuted-label network")
    p.add_argument("--no-oracle", action="store_true", help="skip the pixel oracle (one forward per pixel)")
    p.add_argument("--ig-steps", type=positive_int, default=32, help="Integrated Gradients: path points")
    p.add_argument("--samples", type=positive_int, default=16, help="SmoothGrad: noisy copies per image")
    p.add_argument("--occlusion-size", type=bounded(int, 1, 224), default=None,
                   help="occluding square's side (default 6 on MNIST, 32 on 224x224)")
    p.add_argument("--occlusion-stride", type=bounded(int, 1, 224), default=None,
                   help="pixels between occluder positions (default 3: 81 positions on 28x28; "
                   "16 on 224x224: 169 positions)")
    p.add_argument("--seed", type=seed_int, default=0, help="random weights, random maps, noise, permutation")
    p.add_argument("--dataset", choices=DATASET_NAMES, help="--checkpoint: default the checkpoint's dataset")
    p.add_argument("--data-dir", type=input_dir, help="directory of the four IDX files (default: $NPCNN_DATA_DIR)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(run=run)


def run(args):
    written, results = build(args)
    print(f"wrote {len(written)} figures and results.md, results.json into {args.out}")
    return 0


def _say(args):
    return (lambda text: None) if args.quiet else (lambda text: print(f"sanity: {text}", flush=True))


def build(args, test_set=None, train_set=None, maps=None):
    """Run the study and write everything into ``args.out``; returns ([(path, caption)], results).
    ``maps``: a dict to receive every step's maps ({"trained": {method: (N, H, W)}, mode: [Step]})."""
    say = _say(args)
    if args.model is not None:
        return _build_imagenet(args, say, maps)
    if args.checkpoint is None:
        raise ValueError("give --checkpoint (LeNet-5 or SimpleCNN) or --model alexnet|vgg16 "
                         "with --weights or --random-weights and --image")
    _only_with_model(args)
    module = bridge.load_module(args.checkpoint)
    if module.arch not in MNIST_ARCHS:
        raise ValueError(f"{args.checkpoint}: holds {module.arch}; npcnn sanity studies the MNIST networks "
                         f"({', '.join(MNIST_ARCHS)})")
    dataset = args.dataset or recorded_dataset(args.checkpoint, module.meta)
    norm = recorded_normalization(args.checkpoint, module.meta)
    test_set = test_set or load_mnist(dataset, "test", data_dir=args.data_dir)
    needs_train = not args.no_data_randomization or args.replacement == "mean"
    if needs_train and train_set is None:
        train_set = load_mnist(test_set.name, "train", data_dir=args.data_dir)
    black = -norm["mean"] / norm["std"]
    mean = 0.0 if train_set is None else float((train_set.images.mean() / 255 - norm["mean"]) / norm["std"])
    config = _config(args, "mnist", black, mean, oracle=not args.no_oracle)
    picks = study.balanced_indices(test_set.labels, 100 if args.images is None else args.images)
    x = torch.from_numpy(to_tensor(test_set.images[picks], norm["mean"], norm["std"]))
    target = study.predicted(module, x)
    results = {"arch": module.arch, "checkpoint": str(args.checkpoint), "dataset": test_set.name,
               "seed": args.seed, "images": picks.tolist(), "labels": test_set.labels[picks].tolist(),
               "targets": target.tolist(), "methods": list(config.methods),
               "accuracy_on_images": float((target.numpy() == test_set.labels[picks]).mean())}
    start = time.perf_counter()
    say(f"model randomisation of {module.arch} on {len(picks)} images")
    results["model_randomization"], run_ = study.model_randomization(module, x, target, config, say)
    if maps is not None:
        maps.update(run_)
    permuted_maps = None
    if not args.no_data_randomization:
        perm = _permuted(args, module.arch, train_set, norm, say)
        data, permuted_maps = study.data_randomization(perm.module, x, target, run_["trained"], config)
        results["data_randomization"] = {"similarity": data, "note": _permuted_note(perm, module.arch, args),
                                         "history": perm.history, "stopped": perm.stopped,
                                         "train_accuracy": perm.train_accuracy}
    results["faithfulness"] = study.faithfulness_numbers(module, x, target, run_["trained"], config, say)
    results["faithfulness"]["note"] = (
        f"replacement {args.replacement}, {args.curve_steps} steps; ROAD: fractions "
        f"{', '.join(f'{p:g}' for p in config.road_fractions)}, noise {config.road_noise:g}. "
        f"Oracle: each pixel ranked by its own effect on p (curves only).")
    results["seconds"] = round(time.perf_counter() - start, 1)
    with writing_into(Path(args.out)) as out:
        if not args.no_data_randomization:
            save_checkpoint(out / "permuted_labels.pt", perm.module, dataset=train_set.name, normalization=norm,
                            permuted_labels=True, seed=args.seed, train_accuracy=perm.train_accuracy)
        shown = [{"image": test_set.images[k] / 255.0, "name": f"test image {k}",
                  "about": f"test image {k} (digit {test_set.labels[k]})"} for k in picks]
        written = _draw(out, args, shown, config, results, run_, permuted_maps)
        tables.write(results, LABELS_ALL, out / "results.md", out / "results.json")
    return written, results


def _config(args, family, black, mean, oracle):
    size, stride = OCCLUSION[family]
    settings = Settings(black=black, ig_steps=args.ig_steps, samples=args.samples,
                        occlusion_size=args.occlusion_size or size,
                        occlusion_stride=args.occlusion_stride or stride, seed=args.seed)
    return study.Config(tuple(args.methods), tuple(args.modes), settings, args.seed, args.replacement, mean,
                        args.blur_sigma, args.curve_steps, tuple(sorted(set(args.road_fractions))), oracle=oracle)


def _only_with_model(args):
    for flag, value in (("--weights", args.weights), ("--random-weights", args.random_weights),
                        ("--image", args.image)):
        if value:
            raise ValueError(f"{flag} goes with --model alexnet|vgg16, not --checkpoint")


def _imagenet_module(args):
    if args.checkpoint is not None:
        raise ValueError("--checkpoint is for LeNet-5 and SimpleCNN; with --model give --weights")
    if args.random_weights == (args.weights is not None):
        raise ValueError(f"--model {args.model} needs --weights FILE or --random-weights (one)")
    if not args.image:
        raise ValueError(f"--model {args.model} needs --image (files, folders or patterns)")
    if args.random_weights:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed)
            module = bridge.torch_model(args.model)
        return module.eval(), f"random (torch's initialisation, seed {args.seed})"
    module = bridge.load_module(args.weights, arch=args.model)
    return module.eval(), str(args.weights)


def _build_imagenet(args, say, maps):
    """The study of AlexNet or VGG16 on the --image files: model randomisation and faithfulness;
    data randomisation skipped (it needs training on permuted ImageNet labels), and said so."""
    module, weights = _imagenet_module(args)
    arch = args.model
    paths = expand_images(args.image)
    if args.images is not None:
        paths = paths[:args.images]
    x = torch.cat([load_imagenet_image(path) for path in paths]).to(next(module.parameters()).dtype)  # (N, 3, 224, 224)
    mean_, std_ = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    black = tuple(float(v) for v in (0 - mean_) / std_)                 # a black pixel, per channel
    mean = x.double().mean(dim=(0, 2, 3)).numpy()                        # the images' mean, per channel
    skipped = (f"data randomisation skipped for {arch}: it needs {arch} trained on ImageNet with permuted "
               f"labels, which cannot be done here (no ImageNet training set, days of GPU time)")
    print(f"sanity: {skipped}", flush=True)
    oracle_note = "the pixel oracle: off (--no-oracle)" if args.no_oracle else (
        f"the pixel oracle skipped for {arch}: one forward per pixel, {224 * 224:,} an image")
    if not args.no_oracle:
        print(f"sanity: {oracle_note}", flush=True)
    config = _config(args, "imagenet", black, mean, oracle=False)
    target = study.predicted(module, x)
    names = [path.name for path in paths]
    results = {"arch": arch, "weights": weights, "dataset": "ImageNet-normalised images", "seed": args.seed,
               "images": [str(path) for path in paths], "labels": None, "targets": target.tolist(),
               "methods": list(config.methods),
               "images_note": (f"{len(paths)} image{'s' if len(paths) > 1 else ''} given by --image (no labels, so not balanced over the "
                               f"classes); weights: {weights}")}
    start = time.perf_counter()
    say(f"model randomisation of {arch} on {len(paths)} image{'s' if len(paths) > 1 else ''}")
    results["model_randomization"], run_ = study.model_randomization(module, x, target, config, say)
    if maps is not None:
        maps.update(run_)
    results["data_randomization"] = {"skipped": skipped}
    results["faithfulness"] = study.faithfulness_numbers(module, x, target, run_["trained"], config, say)
    results["faithfulness"]["note"] = (
        f"replacement {args.replacement} (per channel), {args.curve_steps} steps; ROAD: fractions "
        f"{', '.join(f'{p:g}' for p in config.road_fractions)}, noise {config.road_noise:g}; {oracle_note}.")
    results["seconds"] = round(time.perf_counter() - start, 1)
    with writing_into(Path(args.out)) as out:
        shown = [{"image": to_display(x[i], IMAGENET_MEAN, IMAGENET_STD), "name": f"image {names[i]}",
                  "about": f"image {names[i]} (predicted class {int(target[i])})"} for i in range(len(paths))]
        written = _draw(out, args, shown, config, results, run_, None)
        tables.write(results, LABELS_ALL, out / "results.md", out / "results.json")
    return written, results


def _permuted(args, arch, train_set, norm, say):
    """The checkpoint's architecture trained on permuted labels: its maps are compared with the
    trained network's, so only the labels differ."""
    subset = train_set
    if args.permuted_samples < len(train_set):
        keep = study.balanced_indices(train_set.labels, args.permuted_samples)
        subset = type(train_set)(train_set.images[keep], train_set.labels[keep], train_set.name,
                                 train_set.split, train_set.source)
    say(f"training {arch} on {len(subset)} images with permuted labels "
        f"(at most {args.permuted_seconds:g} s)")
    return permuted.train_permuted(
        arch, subset, norm["mean"], norm["std"], seed=args.seed, seconds=args.permuted_seconds,
        max_epochs=args.permuted_epochs,
        progress=lambda r: say(f"permuted labels: epoch {r['epoch']}, training accuracy "
                               f"{100 * r['train_accuracy']:.1f}%, {r['seconds']:.0f} s"))


def _permuted_note(perm, arch, args):
    reasons = {"plateau": "its training accuracy gained under 0.5 points in 3 epochs",
               "seconds": f"the {args.permuted_seconds:g} s limit", "max_epochs": "the epoch limit"}
    return (f"{arch} trained on {len(perm.labels)} training images with permuted labels (Adam 1e-3): "
            f"{100 * perm.train_accuracy:.1f}% training accuracy on those labels after "
            f"{len(perm.history)} epochs, {perm.seconds:.0f} s; stopped by {reasons[perm.stopped]}.")


def _draw(out, args, shown, config, results, run_, permuted_maps):
    """shown: per image {"image": display (H, W) or (H, W, 3) in [0, 1], "name", "about"}."""
    methods, arch = list(config.methods), results["arch"]
    written = []
    n = len(shown)
    n_fig = min(args.figure_images, n)
    for mode in config.modes:
        steps = run_[mode]
        columns = ([] if mode == "cascading" else ["trained"]) + [s.label for s in steps]
        for i in range(n_fig):
            maps = {m: ([] if mode == "cascading" else [run_["trained"][m][i]]) + [s.maps[m][i] for s in steps]
                    for m in methods}
            image = shown[i]["image"]
            heading = (f"{arch}, {mode} randomisation, {shown[i]['about']}:\n"
                       + ("the layers from the logits down to each column's re-initialised" if mode == "cascading"
                          else "only each column's layer re-initialised"))
            path = figures.randomization_grid(image, maps, methods, LABELS_ALL, columns,
                                              out / f"{mode}_{i}.png", heading)
            written.append((path, f"{arch}: each method's map of {shown[i]['name']} as {mode} randomisation "
                                  f"re-initialises {'more layers' if mode == 'cascading' else 'one layer'} "
                                  f"(red +, blue -, each map on its own scale)"))
    for metric in METRICS:
        panels = [(f"{mode}", results["model_randomization"][mode]["steps"],
                   results["model_randomization"][mode]["similarity"][metric]) for mode in config.modes]
        path = figures.metric_lines(panels, methods, LABELS_ALL, tables.METRIC_LABELS[metric],
                                    out / f"similarity_{metric}.png",
                                    f"{arch}: {tables.METRIC_LABELS[metric]} to the trained network's maps, "
                                    f"mean ± std over {n} images")
        written.append((path, f"{arch}: {tables.METRIC_LABELS[metric]} of each method's map after each "
                              f"randomisation step to its map of the trained network (1: unchanged)"))
    if permuted_maps is not None:
        d = results["data_randomization"]
        values = {k: {m: (v["mean"], v["std"]) for m, v in d["similarity"][k].items()} for k in METRICS}
        path = figures.similarity_bars(values, list(METRICS), tables.METRIC_LABELS, methods, LABELS_ALL,
                                       out / "data_randomization.png",
                                       f"{arch}: maps of the permuted-label network against the trained one's")
        written.append((path, f"data randomisation: similarity of each method's maps of a {arch} trained on "
                              f"permuted labels to its maps trained on the true labels ({d['note']})"))
        for i in range(n_fig):
            maps = {m: [run_["trained"][m][i], permuted_maps[m][i]] for m in methods}
            path = figures.randomization_grid(shown[i]["image"], maps, methods, LABELS_ALL,
                                              ["trained", "permuted"], out / f"data_randomization_{i}.png",
                                              f"{shown[i]['name']}: true labels vs permuted labels")
            written.append((path, f"{shown[i]['name']}: each method's map of {arch} trained on the true "
                                  f"labels and on permuted labels"))
    f = results["faithfulness"]
    shown = methods + ([study.ORACLE] if study.ORACLE in f["deletion"] else [])
    fractions = np.arange(args.curve_steps + 1) / args.curve_steps
    panels = [(kind, fractions, {m: (np.array(v["curve"]), v["auc_mean"]) for m, v in f[kind].items()})
              for kind in ("deletion", "insertion")]
    path = figures.curves(panels, shown, LABELS_ALL, out / "deletion_insertion.png",
                          f"{arch}: deletion and insertion ({args.replacement}), mean over {n} "
                          f"images; area in brackets", "fraction of pixels removed / inserted")
    written.append((path, f"{arch}: deletion (low area: the map found what the class needs) and insertion "
                          f"(high area: the same), pixels taken in each map's order, replaced by {args.replacement}"))
    panels = [(name, list(config.road_fractions), {m: (np.array(v["curve"]), v["mean"]) for m, v in f[key].items()})
              for name, key in (("ROAD, most relevant first", "road_morf"), ("ROAD, least relevant first",
                                                                              "road_lerf"))]
    path = figures.curves(panels, methods, LABELS_ALL, out / "road.png",
                          f"{arch}: ROAD (noisy linear imputation), mean over {n} images; mean in "
                          f"brackets", "fraction of pixels removed")
    written.append((path, f"{arch}: ROAD: MoRF should fall fast (low mean), LeRF slowly (high mean)"))
    return written


def demo_section(checkpoint, test_set, out, quick=True, train_set=None):
    """The demo page's section: the study on ``test_set`` into ``out``,
    [(path, caption)]. ``quick``: 10 images, 1 figure image, a 5 s
    permuted-label network on 500 images, fewer IG steps, SmoothGrad
    samples, occluder positions and ROAD fractions, short curves, no oracle;
    otherwise the command's defaults."""
    args = argparse.Namespace(
        checkpoint=Path(checkpoint), model=None, weights=None, random_weights=False, image=None, out=Path(out), methods=list(METHODS), modes=list(MODES),
        images=10 if quick else 100, replacement="zero", blur_sigma=2.0, curve_steps=14 if quick else 28,
        figure_images=1 if quick else 3, permuted_seconds=5.0 if quick else 240.0,
        permuted_samples=500 if quick else 5000,
        road_fractions=[0.2, 0.5, 0.8] if quick else list(road.DEFAULT_FRACTIONS), permuted_epochs=200, no_data_randomization=False,
        no_oracle=quick, ig_steps=8 if quick else 32, samples=4 if quick else 16, seed=0,
        occlusion_size=7 if quick else 6, occlusion_stride=7 if quick else 3,
        dataset=None, data_dir=None, quiet=True)
    written, _ = build(args, test_set=test_set, train_set=train_set)
    return written
