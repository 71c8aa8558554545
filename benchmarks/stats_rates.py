"""Images per second of the data-set statistics (``npcnn.stats.tally``):
class means of every layer and the top-9 of every conv-stage map of
LeNet-5, over MNIST's 60,000 training images (the full set from
NPCNN_DATA_DIR; without it the 4,000-image subset repeated to 60,000), in
this process and on Dask LocalClusters of 1 and 2 worker processes.

    python -m benchmarks.stats_rates [--images N] [--shard-size N]

Scaling efficiency = rate on w workers / (w * rate on 1 worker). The first
tally on a cluster (each worker loading numba's cache and the weights) is
run once before the timing, on a few shards.
"""
import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from npcnn import Model
from npcnn.data import load_mnist
from npcnn.stats import ArraySource, ClassMeans, TopK, tally
from npcnn.stats.cluster import dask_client

CLASS_MEAN_LAYERS = ["relu_1", "pool_1", "relu_2", "pool_2", "relu_3", "relu_4", "fc_3"]
TOP9_LAYERS = ["relu_1", "relu_2"]


def statistics():
    return [ClassMeans(CLASS_MEAN_LAYERS, 10)] + [TopK(layer, 9) for layer in TOP9_LAYERS]


def training_images(n):
    data_dir = os.environ.get("NPCNN_DATA_DIR")
    digits = load_mnist("mnist" if data_dir else "mnist5k", "train", data_dir=data_dir, verbose=False)
    repeat = -(-n // len(digits))
    return ArraySource(np.tile(digits.images, (repeat, 1, 1))[:n], np.tile(digits.labels, repeat)[:n],
                       f"{digits.name} train" + (f" x{repeat}" if repeat > 1 else ""))


def _rate(weights, source, shard_size, client=None):
    started = time.perf_counter()
    tally(weights, source, statistics(), client=client, shard_size=shard_size)
    return len(source) / (time.perf_counter() - started)


def measure(n=60000, shard_size=5000, workers=(1, 2)):
    """{"process": images/s, 1: images/s, 2: images/s, ...} and the source's name."""
    source = training_images(n)
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "lenet5.npz"
        Model.from_spec("lenet5", seed=0).save(weights)
        tally(weights, ArraySource(source.images[:1000], source.labels[:1000]), statistics())   # warm this process
        rates = {"process": _rate(weights, source, shard_size)}
        for w in workers:
            with dask_client(f"local:{w}") as client:   # the cluster npcnn's --scheduler local:N starts
                small = ArraySource(source.images[:200 * w], source.labels[:200 * w])
                tally(weights, small, statistics(), client=client, shard_size=200)   # warm every worker
                rates[w] = _rate(weights, source, shard_size, client)
    return rates, source.name


def markdown(rates, name, n):
    one = rates.get(1)
    lines = [f"Class means of 7 layers and top-9 of 2 conv-stage layers, LeNet-5, {n:,} images ({name}):", "",
             "| where | images/s | scaling efficiency |", "| --- | ---: | ---: |",
             f"| this process | {rates['process']:,.0f} | |"]
    for w, r in rates.items():
        if w != "process":
            lines.append(f"| Dask, {w} worker{'s' if w > 1 else ''} | {r:,.0f} | {r / (w * one):.2f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.stats_rates", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=60000)
    p.add_argument("--shard-size", type=int, default=5000)
    args = p.parse_args(argv)
    rates, name = measure(args.images, args.shard_size)
    print(markdown(rates, name, args.images))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
