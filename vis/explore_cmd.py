"""``npcnn explore``: draw a digit, click any unit of your own network, see
what it responds to.

Serves a page (on 127.0.0.1 unless --host says otherwise) for a trained
LeNet-5 or SimpleCNN: a 28x28 canvas to draw on (or a test image to start
from), the ten probabilities, every map of every conv, ReLU and pool layer
and the dense layers as bars, all computed by npcnn's engine as you draw.
Click a map: its deconvnet projection to pixels and guided backpropagation
beside it, its filter, its class-wise average over the test set and, with
--top9 (or --stats), its nine strongest training images with their
projections.

--static --out DIR writes the same page for one test image per digit,
with everything precomputed, to open from disk with no server.
"""
import argparse
import functools

import numpy as np

from npcnn.data import DATASET_NAMES, load_mnist, to_tensor
from npcnn.topk import batched_forward

from . import explore_server, explore_stats
from .arguments import bounded, non_empty_str
from .explore_model import Explorer
from .paths import input_dir, input_file, output_dir
from .study_inputs import first_example, load_study, recorded_dataset

EXAMPLE = ("example: npcnn explore --checkpoint lenet5.pt --top9   (then open http://127.0.0.1:8000/)\n"
           "         npcnn explore --checkpoint lenet5.pt --static --out out/explore")
QUICK_TEST_IMAGES = 2000     # class means over this many test images with quick=True: well under a second


def add_parser(sub):
    p = sub.add_parser("explore", help="a page to draw a digit and see every unit of a trained MNIST "
                       "network respond (served locally, or --static)", description=__doc__, epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=functools.partial(input_file, what="checkpoint"), required=True,
                   help="weights (.pt from npcnn train, a state_dict, or .npz)")
    p.add_argument("--host", type=non_empty_str, default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=bounded(int, 0, 65535), default=8000, help="port (0: any free one)")
    p.add_argument("--top9", action="store_true",
                   help="compute each map's top-9 over the training set at start (seconds)")
    p.add_argument("--stats", type=functools.partial(input_file, what="statistics file"),
                   help="class means and top-9 from npcnn.stats.save_stats, taken over the checkpoint's "
                        "dataset (top-9 ids index its training split) instead of computing them")
    p.add_argument("--dataset", choices=DATASET_NAMES, help="default: the checkpoint's dataset")
    p.add_argument("--data-dir", type=input_dir,
                   help="directory of the four IDX files (default: $NPCNN_DATA_DIR)")
    p.add_argument("--static", action="store_true", help="write the page with precomputed data to --out "
                   "instead of serving it")
    p.add_argument("--out", type=output_dir, help="folder for --static (created)")
    p.set_defaults(run=run)


def run(args):
    if args.static:
        if args.out is None:
            raise ValueError("--static needs --out DIR")
        from .explore_static import write_static
        explorer = build_explorer(args.checkpoint, args.dataset, args.data_dir, args.stats, args.top9)
        print(f"wrote {write_static(explorer, args.out)}")
        return 0
    if args.out is not None:
        raise ValueError("--out is for --static; the server writes nothing")
    explorer = build_explorer(args.checkpoint, args.dataset, args.data_dir, args.stats, args.top9)
    explore_server.serve(explorer, args.host, args.port)
    return 0


def build_explorer(checkpoint, dataset=None, data_dir=None, stats=None, top9=False, quick=False):
    """An ``Explorer`` for ``checkpoint``: its test set's first correctly
    classified image of each digit as examples (the digit's first image
    where none is, ``first_example``), class means over the test
    set (``quick``: its first 2,000 images) unless ``stats`` holds them, and
    the top-9 over the training set with ``top9`` (or from ``stats``)."""
    study = load_study(checkpoint, dataset, data_dir)
    model, test = study.model, study.test
    dataset = dataset or recorded_dataset(checkpoint, model.meta)
    picks = example_indices(batched_forward(model, study.x).argmax(axis=1), test.labels)
    statistics = explore_stats.Statistics()
    train = None
    if stats is not None or top9:
        train = load_mnist(dataset, "train", data_dir=data_dir, verbose=False)
    if stats is not None:
        means, tops = explore_stats.read(stats, model, len(train))
        if means is not None:
            statistics.class_means, statistics.class_source = means, f"{stats.name} ({dataset})"
        if tops is not None:
            statistics.top9, statistics.top9_images = tops, train.images
            statistics.top9_source = f"{stats.name} ({dataset} training set, {len(train)} images)"
    if statistics.class_means is None:
        n = min(len(test), QUICK_TEST_IMAGES) if quick else len(test)
        statistics.class_means = explore_stats.class_means(model, study.x[:n], test.labels[:n])
        statistics.class_source = f"{test.name} test set, {'first ' if n < len(test) else ''}{n} images"
    if top9 and statistics.top9 is None:
        x = to_tensor(train.images, study.normalization["mean"], study.normalization["std"], dtype=model.dtype)
        statistics.top9, statistics.top9_images = explore_stats.top9(model, x, train.labels), train.images
        statistics.top9_source = f"{train.name} training set, {len(train)} images"
    about = {"checkpoint": checkpoint.name if hasattr(checkpoint, "name") else str(checkpoint),
             "dataset": f"{test.name} ({test.source})",
             "accuracy": accuracy if isinstance(accuracy := model.meta.get("test_accuracy"), float) else None}
    return Explorer(model, study.normalization, test.images[picks], np.asarray(test.labels)[picks],
                    statistics, about)


def example_indices(predicted, labels, n_classes=10):
    """The first correctly classified test image of each class, or the first
    of that class where none is (an untrained network), in class order;
    classes absent from the test set are left out."""
    picks = [first_example(predicted, labels, k)[0] for k in range(n_classes)]
    return [i for i in picks if i is not None]


def export_static(checkpoint, out, quick=True, dataset=None, data_dir=None):
    """For ``npcnn demo``: write the static explorer of ``checkpoint`` into
    ``out`` and return the path of its index.html (seconds with quick)."""
    from pathlib import Path

    from .explore_static import write_static
    return write_static(build_explorer(Path(checkpoint), dataset, data_dir, quick=quick), Path(out))
