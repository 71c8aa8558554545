"""``npcnn atlas``: the activation study of a trained MNIST network.

Computes with npcnn from the checkpoint's weights and draws: samples of the
data; the architecture; feature maps of every conv and ReLU layer for one
correctly classified test image per digit (its first where none is); the
dense layers as bar charts; each ReLU before and after; the conv filters;
class-wise averages of every layer (a figure per layer per digit and an
overview per layer); and what the averages show: sparsity per layer and
class, redundant channels, and the class selectivity of the first dense
layer's neurons. index.md and index.html link every figure with a caption.

The class averages, and the sparsity and selectivity read from them, are
mergeable statistics (``npcnn.stats.ClassMeans``) over a whole split:
``--split train --scheduler local:2`` runs them over the 60,000 training
images on two worker processes; ``class_means.npz`` keeps them (``npcnn
explore --stats`` shows them).
"""
import argparse
import functools
from pathlib import Path

import numpy as np

from npcnn.analysis import channel_correlation, class_selectivity, near_duplicates, select_per_class
from npcnn.atomic import atomic_write_text
from npcnn.data import DATASET_NAMES
from npcnn.stats import ArraySource, ClassMeans, save_stats
from npcnn.stats.cluster import check_scheduler
from npcnn.topk import batched_forward

from . import atlas_figures as figures
from . import dataset_stats
from .arguments import digit, positive_int, seed_int
from .deconv_cmd import example_line, pick_examples
from .index_page import write_index
from .paths import input_dir, input_file, output_dir, writing_into
from .study_inputs import load_study

EXAMPLE = ("example: npcnn atlas --checkpoint simplecnn.pt --out out/atlas --per-class 500\n"
           "         npcnn atlas --checkpoint simplecnn.pt --out out/atlas --split train --scheduler local:2")


def add_parser(sub):
    p = sub.add_parser("atlas", help="feature maps, filters, class averages and measures of a trained "
                       "MNIST network", description=__doc__, epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=functools.partial(input_file, what="checkpoint"), required=True,
                   help="weights (.pt from npcnn train, or .npz)")
    p.add_argument("--out", type=output_dir, required=True,
                   help="folder for the figures (created when the first one is written)")
    p.add_argument("--per-class", type=positive_int,
                   help="samples per digit for the class averages: the first N images of each in the split "
                   "(default: every image)")
    p.add_argument("--correct-only", action="store_true",
                   help="average only correctly classified images")
    p.add_argument("--dataset", choices=DATASET_NAMES, help="default: the checkpoint's dataset")
    p.add_argument("--data-dir", type=input_dir,
                   help="directory of the four IDX files (default: $NPCNN_DATA_DIR)")
    p.add_argument("--digits", type=digit, nargs="+", default=list(range(10)),
                   help="digits 0-9 that get their own figures (default all; overviews always show all)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the random sample grid")
    dataset_stats.add_arguments(p, "test", "the class averages")
    p.set_defaults(run=run)


def layer_groups(model):
    """(map layers: conv and ReLU before the flatten, dense layers: linear and
    ReLU after it, ReLU layers, conv layers)."""
    maps, dense, seen_flatten = [], [], False
    for name, layer in model.layers.items():
        if layer.kind == "flatten":
            seen_flatten = True
        elif layer.kind in ("conv2d", "relu") and not seen_flatten:
            maps.append(name)
        elif layer.kind in ("linear", "relu") and seen_flatten:
            dense.append(name)
    relus = [n for n, l in model.layers.items() if l.kind == "relu"]
    convs = [n for n, l in model.layers.items() if l.kind == "conv2d"]
    return maps, dense, relus, convs


def run(args):
    build(args)
    return 0


def build(args):
    """Compute and draw the atlas, write its index; returns
    ``(sections, facts)`` as given to ``write_index``. The folder is
    created once the inputs have loaded and checked out."""
    if args.per_class is not None and args.per_class < 1:
        raise ValueError(f"--per-class must be >= 1, got {args.per_class}")
    study = load_study(args.checkpoint, args.dataset, args.data_dir)
    check_scheduler(args.scheduler)
    with writing_into(Path(args.out)) as out:
        return _draw(args, study, out)


def _draw(args, study, out):
    model, test, x, y = study.model, study.test, study.x, study.test.labels
    maps, dense, relus, convs = layer_groups(model)
    digits = list(dict.fromkeys(args.digits))
    predicted = batched_forward(model, x).argmax(axis=1)
    picks, misread = pick_examples(predicted, y, digits)
    accuracy = float((predicted == y).mean())
    print(f"{model.arch} from {args.checkpoint}: {100 * accuracy:.2f}% on {len(test)} {test.name} "
          f"test images; examples (test index per digit): {picks}")
    for d in misread:
        print(example_line(d, picks[digits.index(d)], misread))
    sections = []

    # the data and the network
    rng = np.random.default_rng(args.seed)
    shown = rng.choice(len(test), size=40, replace=False)
    summary = model.summary((1,) + x.shape[1:])
    rows = [(n, k, s[1:], p) for n, k, s, p in summary]
    text = "\n".join(f"{n:<12} {k:<20} {'x'.join(map(str, s)):<12} {p:>8,}" for n, k, s, p in rows)
    text = (f"{'layer':<12} {'kind':<20} {'output':<12} {'params':>8}\n{text}\n"
            f"total parameters: {model.num_parameters():,}")
    atomic_write_text(out / "architecture.txt", text + "\n")
    sections.append(("Data and architecture", [
        (figures.sample_grid(test.images[shown], y[shown], out / "samples.png",
                             f"40 random {test.name} test images (seed {args.seed})").name,
         f"40 random test images of {test.name} with their labels"),
        (figures.architecture(rows, f"{model.arch}: {model.num_parameters():,} parameters",
                              out / "architecture.png").name,
         "every layer, its output shape and parameter count (also architecture.txt)")], text))

    # one image per digit through the network
    _, acts = model.forward(x[picks], record=True)
    items = []
    for layer in maps:
        for k, d in enumerate(digits):
            a = acts[layer][k]
            items.append((figures.feature_maps(a, f"{layer}-({d})", out / f"maps_{layer}_{d}.png").name,
                          f"{layer}-({d}): every channel for test image #{picks[k]}, one colour scale"))
    sections.append(("Feature maps, one test image per digit", items, None))
    items = [(figures.dense_layers({l: acts[l][k] for l in dense},
                                   f"dense layers for digit {d} (test #{picks[k]}); true class in red",
                                   out / f"dense_{d}.png", highlight=d).name,
              f"{', '.join(dense)} for digit {d}: bars per neuron, logit of the true class in red")
             for k, d in enumerate(digits)]
    sections.append(("Dense layers", items, None))
    items = []
    for relu in relus:
        before = model.layer_names[model.layer_names.index(relu) - 1]
        items.append((figures.pre_post_relu(acts[before][0], acts[relu][0],
                                            f"{before} -> {relu}, digit {digits[0]}",
                                            out / f"relu_{relu}.png").name,
                      f"{before} before and after {relu} (digit {digits[0]}), with the fraction of zeros"))
    sections.append(("What each ReLU does", items, None))
    items = [(figures.filters(model[c].params["weight"], f"{c} filters (rows) x input channels",
                              out / f"filters_{c}.png").name,
              f"the {c} filters, one diverging scale") for c in convs]
    sections.append(("Filters", items, None))

    # class averages and what they show, over the split as mergeable statistics
    recorded = [n for n in model.layer_names if model.layers[n].kind != "flatten"]
    cm = class_means(model, study, args, recorded, predicted)
    result = cm.result()
    avg, counts = result.means, result.counts
    used = ", ".join(f"{d}: {c}" for d, c in enumerate(counts))
    if counts.min() == 0:
        raise ValueError(f"no samples of digit {int(counts.argmin())} to average ({used})")
    save_stats(out / "class_means.npz", [cm])
    scope = f"{'correctly classified ' if args.correct_only else ''}{args.split} images"
    print(f"class averages over {scope}, per digit {used}")
    items = []
    for layer in recorded:
        items.append((figures.class_overview(layer, avg[layer], counts, out / f"avg_{layer}.png").name,
                      f"{layer}: class averages, digits x channels"))
        for d in digits:
            items.append((figures.class_average_maps(layer, d, avg[layer][d], counts[d],
                                                     out / f"avg_{layer}_{d}.png").name,
                          f"{layer}, digit {d}: mean over {counts[d]} images"))
    chosen = "every image" if args.per_class is None else f"the first {args.per_class} per digit"
    sections.append((f"Class averages ({scope}, {chosen}; used {used})", items, None))

    table = np.stack([result.zero_fraction[l] for l in recorded])
    sparsity_text = "layer        " + " ".join(f"{d:>5}" for d in range(10)) + "\n" + "\n".join(
        f"{l:<12} " + " ".join(f"{v:5.2f}" for v in row) for l, row in zip(recorded, table))
    atomic_write_text(out / "sparsity.txt", sparsity_text + "\n")
    items = [(figures.sparsity(table, recorded, out / "sparsity.png").name,
              "fraction of exact zeros of each layer's output, per class")]
    flagged = []
    for layer in maps:
        corr = channel_correlation(avg[layer])
        pairs = near_duplicates(corr)
        flagged += [f"{layer}: channels {i} and {j}, r = {r:.3f}" for i, j, r in pairs]
        items.append((figures.redundancy(layer, corr, pairs, out / f"redundancy_{layer}.png").name,
                      f"{layer}: correlation between channels' class-averaged maps; "
                      f"{len(pairs)} near-duplicate pair(s)"))
    first_dense_relu = next(l for l in dense if model.layers[l].kind == "relu")
    si, preferred = class_selectivity(avg[first_dense_relu])
    silent = (avg[first_dense_relu] == 0).all(axis=0)
    items.append((figures.selectivity(first_dense_relu, si, preferred,
                                      out / f"selectivity_{first_dense_relu}.png", silent).name,
                  f"class selectivity of each neuron of {first_dense_relu} (the first dense layer "
                  f"after its ReLU): mean {si[~silent].mean() if (~silent).any() else 0:.2f} over "
                  f"the {int((~silent).sum())} neurons that ever fire"))
    measures = (sparsity_text + "\n\nnear-duplicate channels (r >= 0.95):\n"
                + ("\n".join(flagged) if flagged else "none"))
    sections.append(("Measures: sparsity, redundancy, selectivity", items, measures))

    facts = [("network", f"{model.arch}, {args.checkpoint}"), ("data", f"{test.name} test set, {test.source}"),
             ("class averages", f"{scope}, {chosen} ({int(counts.sum())} images, class_means.npz)"),
             ("test accuracy", f"{100 * accuracy:.2f}%"), ("computed by", "npcnn (numba backend)")]
    md, page = write_index(out, f"Activation atlas of {model.arch}", sections, facts)
    print(f"wrote {sum(len(s[1]) for s in sections)} figures, {md} and {page}")
    return sections, facts


def class_means(model, study, args, layers, predicted_on_test):
    """``ClassMeans`` of ``layers`` over the images the options choose: the
    split (its first --limit), the first --per-class of each digit, only the
    correctly classified with --correct-only."""
    if args.split == "test":
        data = dataset_stats.load_split(study.test.name, "test", args.data_dir, args.limit) \
            if args.limit else study.test
        predicted = predicted_on_test[:len(data)]
    else:
        data = dataset_stats.load_split(study.test.name, "train", args.data_dir, args.limit)
        predicted = (batched_forward(model, dataset_stats.inputs(model, data, study.normalization)).argmax(axis=1)
                     if args.correct_only else None)
    keep = predicted == data.labels if args.correct_only else None
    index = select_per_class(data.labels, args.per_class or len(data), keep=keep)
    source = ArraySource(data.images[index], data.labels[index], f"{data.name} {data.split} ({data.source})")
    (stats,) = dataset_stats.run_tally(model, source, [ClassMeans(layers, 10)], args, "class averages")
    return stats
