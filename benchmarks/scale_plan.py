"""The plan past one machine: ImageNet's 1.3 million training images
through VGG16 with ``npcnn.stats``, worked out from measured rates.

    python -m benchmarks.scale_plan [--images 8] [--efficiency 0.9]

It measures how many images a second one process here tallies through
VGG16 (224x224, float32; class means of every ReLU per channel and the
top-9 of every conv-stage ReLU), computes each statistic's state size from
the network's shapes, and prints, for 1 to 512 workers like this machine:
bytes sent per task, tasks, and hours. ``--efficiency`` is the scaling
efficiency assumed past one worker (``benchmarks/stats_rates.py``
measures it on this machine for LeNet-5). The page benchmarks/SCALE.md
holds one run's output and its reading.
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from npcnn import Model
from npcnn.stats import ArraySource, ClassMeans, TopK, tally

IMAGENET_TRAIN = 1_281_167
CLASSES = 1000


def vgg16_layers(model):
    shapes = model.output_shapes((1, 3, 224, 224))
    relus = [n for n, layer in model.layers.items() if layer.kind == "relu"]
    return relus, [n for n in relus if len(shapes[n]) == 4], shapes


# the statistics a task computes (and returns); the per-unit class means are listed for scale only
TALLIED = ("class means per channel (spatial='mean')", "top-9 of every conv-stage ReLU")


def state_bytes(shapes, relus, conv_relus, k=9):
    """Bytes of each statistic's state (float64 sums and squares, int64 counts)."""
    channels = sum(shapes[n][1] for n in relus)
    full_units = sum(int(np.prod(shapes[n][1:])) for n in relus)
    return {
        "class means per channel (spatial='mean')": CLASSES * channels * 2 * 8 + CLASSES * len(relus) * 8,
        "class means of every unit (spatial='keep')": CLASSES * full_units * 2 * 8,
        "top-9 of every conv-stage ReLU": sum(shapes[n][1] for n in conv_relus) * k * (8 + 8 + 16),
    }


def measure_rate(images):
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "vgg16.npz"
        model = Model.from_spec("vgg16", seed=0)
        model.save(weights)
        relus, conv_relus, shapes = vgg16_layers(model)
        rng = np.random.default_rng(0)
        source = ArraySource(rng.integers(0, 256, (images, 224, 224, 3), dtype=np.uint8),
                             rng.integers(0, CLASSES, images))
        stats = [ClassMeans(relus, CLASSES, spatial="mean")] + [TopK(n) for n in conv_relus]
        tally(weights, ArraySource(source.images[:1], source.labels[:1]), stats, batch_size=1)   # warm up
        started = time.perf_counter()
        tally(weights, source, stats, batch_size=4)
        return images / (time.perf_counter() - started), shapes, relus, conv_relus


def plan(rate, sizes, efficiency, shard=5000):
    tasks = -(-IMAGENET_TRAIN // shard)
    sent = sum(sizes[name] for name in TALLIED)
    lines = [f"VGG16 on this machine (one process, 2 cores): {rate:.2f} images/s; shards of {shard:,} images: "
             f"{tasks} tasks, each returning {sent / 2**20:.0f} MiB of statistics "
             f"({shard / rate / 60:.0f} min of work per task), merged in a tree of "
             f"{int(np.ceil(np.log2(tasks)))} levels.", "",
             "| workers | hours |", "| ---: | ---: |"]
    for w in (1, 8, 32, 128, 512):
        e = 1.0 if w == 1 else efficiency
        hours = IMAGENET_TRAIN / (rate * w * e) / 3600
        lines.append(f"| {w} | {hours:,.1f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale_plan", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=8)
    p.add_argument("--efficiency", type=float, default=0.9)
    args = p.parse_args(argv)
    rate, shapes, relus, conv_relus = measure_rate(args.images)
    sizes = state_bytes(shapes, relus, conv_relus)
    print("State of each statistic (1,000 classes):")
    for name, size in sizes.items():
        print(f"- {name}: {size / 2**20:,.1f} MiB")
    print()
    print(plan(rate, sizes, args.efficiency))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
