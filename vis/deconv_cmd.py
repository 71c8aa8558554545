"""``npcnn deconv``: the deconvnet study of a trained MNIST network.

Computes with npcnn (from the checkpoint's weights) and draws:
  digit_D.png      one correctly classified test image of digit D (its first
                   where none is: an untrained network) and the
                   projection of every map of every conv layer
  all_digits.png   the same for all the digits, one row each
  top9_LAYER.png   per map, its 9 strongest activations over a whole split
                   (--split, default the training set: 60,000 MNIST images, as
                   the paper searched ImageNet's training set), found as
                   mergeable statistics (npcnn.stats.TopK, in this process or
                   on Dask with --scheduler): receptive-field patch |
                   projection (Zeiler & Fergus fig. 2)
  evolution_LAYER.png  per map, the projection of its strongest activation
                   in each per-epoch checkpoint (fig. 4); needs
                   CHECKPOINT.epochNN.pt files (npcnn train --save-every 1)
  occlusion_D.png  a grey square slid over the image: p(true class) and the
                   strongest map's activation by position, and its projection (fig. 7)
"""
import argparse
import functools
import re
from pathlib import Path

import numpy as np

import bridge
from npcnn import deconv
from npcnn.data import DATASET_NAMES
from npcnn.occlusion import occlusion_maps, probabilities
from npcnn.receptive_field import receptive_field, unit_window
from npcnn.stats import TopK, save_stats
from npcnn.stats.cluster import check_scheduler
from npcnn.topk import batched_forward, top_activations

from . import dataset_stats
from . import deconv_figures as figures
from .arguments import digit, non_empty_str
from .paths import input_dir, input_file, output_dir, writing_into
from .study_inputs import first_example, load_study

EXAMPLE = "example: npcnn deconv --checkpoint lenet5.pt --digits 0 1 5 8 --out out/deconv"
STAGES = {"conv": "conv2d", "relu": "relu", "pool": "max_pool2d"}
FIGURES = ("digits", "top9", "evolution", "occlusion")


def add_parser(sub):
    p = sub.add_parser("deconv", help="deconvnet projections of every map of a trained MNIST network",
                       description=__doc__, epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=functools.partial(input_file, what="checkpoint"), required=True,
                   help="weights (.pt from npcnn train, or .npz)")
    p.add_argument("--digits", type=digit, nargs="+", default=[0, 1, 5, 8], help="digits 0-9")
    p.add_argument("--out", type=output_dir, required=True,
                   help="folder for the figures (created when the first one is written)")
    p.add_argument("--dataset", choices=DATASET_NAMES, help="default: the checkpoint's dataset")
    p.add_argument("--data-dir", type=input_dir,
                   help="directory of the four IDX files (default: $NPCNN_DATA_DIR)")
    p.add_argument("--stage", default="pool", choices=list(STAGES),
                   help="project each conv layer's output, its ReLU, or its pooled output (default)")
    p.add_argument("--layers", type=non_empty_str, nargs="+", metavar="LAYER",
                   help="project these layers instead (conv, ReLU or pool layers, e.g. conv_2 relu_2)")
    p.add_argument("--select", default="map", choices=deconv.SELECTIONS,
                   help="keep the whole map (default) or only its strongest unit")
    p.add_argument("--rule", default="deconvnet", choices=deconv.RULES)
    p.add_argument("--figures", nargs="+", default=list(FIGURES), choices=FIGURES)
    dataset_stats.add_arguments(p, "train", "the top-9 search")
    p.set_defaults(run=run)


def stage_layers(model, stage):
    """For each conv layer, the layer whose output is projected: the conv
    itself, or the first ReLU / max-pool after it."""
    wanted, names, found = STAGES[stage], model.layer_names, []
    for i, name in enumerate(names):
        if model.layers[name].kind != "conv2d":
            continue
        for later in names[i:]:
            kind = model.layers[later].kind
            if kind == wanted:
                found.append(later)
                break
            if kind == "flatten" or (kind == "conv2d" and later != name):
                raise ValueError(f"conv layer {name} has no {stage} stage before the next layer")
    return found


def pick_examples(predicted, labels, digits):
    """Index of the first correctly classified test image of each digit
    (``predicted``: the network's class of every test image), and ``{digit:
    predicted class}`` for the digits of which the network classifies none
    right (an untrained one): their first test image is taken. A digit
    with no test image at all is an error."""
    picks, misread = [], {}
    for d in digits:
        index, right = first_example(predicted, labels, d)
        if index is None:
            raise ValueError(f"the test set has no image of digit {d}")
        picks.append(index)
        if not right:
            misread[d] = int(predicted[index])
    return picks, misread


def example_line(digit, index, misread):
    """What the commands print about the example of a digit."""
    line = f"digit {digit}: test image #{index}"
    if digit in misread:
        line += (f" (no image of digit {digit} is classified right; its first, classified as "
                 f"{misread[digit]})")
    return line


def padded_crop(image, box, size, fill):
    """The receptive-field box of a unit, padded to the full field size where
    it runs off the image, so every crop of a layer has one shape."""
    h0, h1, w0, w1 = box
    out = np.full(size, fill, dtype=float)
    img = np.squeeze(image)
    top = size[0] - (h1 - h0) if h0 == 0 else 0
    left = size[1] - (w1 - w0) if w0 == 0 else 0
    out[top:top + h1 - h0, left:left + w1 - w0] = img[h0:h1, w0:w1]
    return out


def run(args):
    for path, _ in build(args):
        print(f"wrote {path}")
    return 0


def build(args):
    """Compute and draw every figure; returns [(path, caption)]."""
    out = Path(args.out)
    digits = list(dict.fromkeys(args.digits))     # "--digits 3 3" draws digit 3 once
    study = load_study(args.checkpoint, args.dataset, args.data_dir)
    model, test, x, norm = study.model, study.test, study.x, study.normalization
    layers = stage_layers(model, args.stage) if not getattr(args, "layers", None) else \
        [deconv.check_layer(model, layer) for layer in args.layers]
    # every epoch checkpoint read now: a bad one is refused before any figure is drawn
    series = load_series(args.checkpoint, model) if "evolution" in args.figures else []
    if args.figures == ["evolution"] and not series:   # among others it is skipped with a note
        raise ValueError(f"--figures evolution: {missing_epochs(args.checkpoint)}")
    print(f"{model.arch} from {args.checkpoint}; {test.name} test set ({len(test)} images); "
          f"projecting {', '.join(layers)} ({args.select}, {args.rule})")
    picks, misread = pick_examples(batched_forward(model, x).argmax(axis=1), test.labels, digits)
    for d, i in zip(digits, picks):
        print(example_line(d, i, misread))
    if "top9" in args.figures:
        check_scheduler(args.scheduler)
    written = []
    with writing_into(out):
        if "digits" in args.figures:
            written += draw_digits(model, x, picks, digits, args, layers, out, misread)
        if "top9" in args.figures:
            written += draw_top9(model, study, layers, args, out)
        if "evolution" in args.figures:
            written += draw_evolution(args.checkpoint, series, x, layers, out)
        if "occlusion" in args.figures:
            written += draw_occlusion(model, x, test.labels, picks, digits, layers[-1], norm, out)
    return written


def draw_digits(model, x, picks, digits, args, layers, out, misread=None):
    """One figure per digit (its example and every map's projection) and one
    of them all; a digit in ``misread`` says what its example was
    classified as."""
    misread = misread or {}
    images = x[picks]
    _, acts = model.forward(images, record=True)
    projections = {layer: deconv.project_channels(model, images, layer, range(acts[layer].shape[1]),
                                                  args.select, args.rule, acts=acts).transpose(1, 0, 2, 3, 4)
                   for layer in layers}                                  # {layer: (D, C, 1, H, W)}
    written = []
    for k, (d, i) in enumerate(zip(digits, picks)):
        read_as = f", classified as {misread[d]}" if d in misread else ""
        title = (f"digit {d} (test #{i}{read_as}): {args.rule} projection of every map "
                 f"({args.select}); red +, blue -, each panel on its own scale")
        written.append((figures.digit_grid(images[k], {l: p[k] for l, p in projections.items()},
                                           title, out / f"digit_{d}.png"),
                        f"digit {d} (test #{i}) and the {args.rule} projections of all "
                        f"{sum(p.shape[1] for p in projections.values())} maps of {', '.join(layers)}"))
    labels = [f"{d} (#{i})" for d, i in zip(digits, picks)]
    squeezed = {l: p[:, :, 0] for l, p in projections.items()}
    written.append((figures.combined_grid(images, squeezed, labels, out / "all_digits.png"),
                    "all the digits, one row each: input and every map's projection"))
    return written


def draw_top9(model, study, layers, args, out, k=9):
    """Per map of each layer, its k strongest units over the split: found by
    one tally of every layer's TopK, then only those images projected."""
    data = (dataset_stats.load_split(study.test.name, args.split, args.data_dir, args.limit)
            if args.split == "train" or args.limit else study.test)
    source = dataset_stats.source_of(data)
    found = dataset_stats.run_tally(model, source, [TopK(layer, k) for layer in layers], args,
                                    f"top-{k} over {len(data)} {data.name} {data.split} images")
    # the statistics themselves, for npcnn.stats.load_stats and npcnn explore --stats
    print(f"wrote {save_stats(out / 'top9.npz', found)}")
    written = []
    for layer, top in zip(layers, found):
        ids, values, positions = top.result()                  # (C, k) each, strongest first
        x = dataset_stats.inputs(model, type(data)(data.images[ids.ravel()], data.labels[ids.ravel()], data.name,
                                                   data.split, data.source), study.normalization)
        x = x.reshape(ids.shape + x.shape[1:])                  # (C, k, 1, H, W)
        size = receptive_field(model, layer)[0]
        C, kept = ids.shape
        patches = np.zeros((C, kept) + size)
        projections = np.zeros((C, kept) + size)
        for c in range(C):
            proj = deconv.project_channels(model, x[c], layer, [c], "max")[0]  # (k, 1, H, W)
            for i in range(kept):
                box = unit_window(model, layer, *positions[c, i], x.shape[-2:])
                patches[c, i] = padded_crop(x[c, i], box, size, x.min())
                projections[c, i] = padded_crop(proj[i], box, size, 0.0)
        searched = f"{len(data):,} {data.name} {data.split} images"
        written.append((figures.top9(layer, patches, projections, values, out / f"top9_{layer}.png", searched),
                        f"{layer}: for each map, the {kept} {data.split} images (of {len(data)}) that excite "
                        f"it most: receptive field and projection of that unit (Zeiler & Fergus, fig. 2)"))
    return written


def epoch_checkpoints(checkpoint):
    """``[(epoch, path)]`` of CHECKPOINT.epochNN.ext beside ``checkpoint``."""
    path = Path(checkpoint)
    pattern = re.compile(re.escape(path.stem) + r"\.epoch(\d+)" + re.escape(path.suffix) + "$")
    found = [(int(m.group(1)), p) for p in path.parent.iterdir() if (m := pattern.match(p.name))]
    return sorted(found)


def load_series(checkpoint, model):
    """``[(epoch, npcnn.Model)]`` of the epoch checkpoints beside
    ``checkpoint``, each of ``model``'s architecture."""
    return [(epoch, bridge.load(path, arch=model.arch)) for epoch, path in epoch_checkpoints(checkpoint)]


def missing_epochs(checkpoint):
    return (f"no {Path(checkpoint).stem}.epochNN{Path(checkpoint).suffix} files beside {checkpoint} "
            f"(train with --save-every 1)")


def draw_evolution(checkpoint, series, x, layers, out, search=2000):
    if not series:
        print(f"evolution: {missing_epochs(checkpoint)}; skipped")
        return []
    pool = x[:search]
    per_layer = {layer: [] for layer in layers}
    for _, model in series:
        for layer in layers:
            images, _, positions = top_activations(model, pool, layer, k=1)   # (C, 1)
            size = receptive_field(model, layer)[0]
            crops = []
            for c in range(images.shape[0]):
                proj = deconv.project_channels(model, pool[images[c]], layer, [c], "max")[0, 0]
                box = unit_window(model, layer, *positions[c, 0], pool.shape[2:])
                crops.append(padded_crop(proj, box, size, 0.0))
            per_layer[layer].append(np.stack(crops))                    # (C, h, w)
    epochs = [e for e, _ in series]
    return [(figures.evolution(layer, np.stack(p, axis=1), epochs, out / f"evolution_{layer}.png"),
             f"{layer}: each map's strongest activation projected, after "
             + (f"each of epochs {epochs[0]}-{epochs[-1]}" if len(epochs) > 1 else f"epoch {epochs[0]}")
             + " (fig. 4)") for layer, p in per_layer.items()]


def draw_occlusion(model, x, labels, picks, digits, layer, norm, out, size=6, stride=1):
    grey = (0.5 - norm["mean"]) / norm["std"]   # mid-grey in the network's input units
    written = []
    for d, i in zip(digits, picks):
        image = x[i]
        _, acts = model.forward(image[None], record=True)
        channel = int(acts[layer][0].reshape(acts[layer].shape[1], -1).max(axis=1).argmax())
        prob, act = occlusion_maps(model, image, int(labels[i]), layer, channel, size, stride, grey)
        projection = deconv.project(model, image[None], layer, channel, "max")[0]
        p_clean = probabilities(model, model(image[None]))[0, labels[i]]
        print(f"occlusion digit {d}: p(class {labels[i]}) = {p_clean:.3f} unoccluded, "
              f"min {prob.min():.3f} with the {size}x{size} square; strongest {layer} map {channel}")
        r, c = np.unravel_index(prob.argmin(), prob.shape)
        written.append((figures.occlusion(image, int(labels[i]), prob, act, projection, channel, layer,
                                          (r * stride, c * stride, size, stride),
                                          out / f"occlusion_{d}.png"),
                        f"digit {d}: a {size}x{size} grey square slid over the image: p(true class) "
                        f"and {layer}[{channel}]'s activation by position, and that map's projection "
                        f"(fig. 7)"))
    return written
