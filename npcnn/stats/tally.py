"""Statistics over a whole data set, in shards: in this process, or on a
Dask cluster.

    stats = tally("lenet5.npz", IdxSource(images, labels),
                  [ClassMeans(["relu_1", "fc_1"], 10), TopK("relu_2", k=9)],
                  client=None, shard_size=5000)

The data set is cut into shards [start, stop). Each shard is one task: it
opens the source itself, reads its range in batches, runs the model
(loaded from the weight file once per process, as ``Model.save`` wrote it,
so that workers need no torch) and adds every batch into fresh, empty
copies of the statistics. The shards' statistics merge pairwise in a tree.
Merging is exact for counts and top-k and float64 for sums, so the result
does not depend on the shard size, the number of workers or the order in
which tasks finish; a task that a lost worker never finished is run again
by Dask, and as tasks return values, nothing is counted twice.

``client``: None (this process) or a ``dask.distributed.Client``; Dask is
imported only then (``pip install 'dask[distributed]'``).
"""
import os
from pathlib import Path

import numba
import numpy as np

from .. import checks
from ..model import Model
from .sources import as_inputs

_MODELS = {}   # per process: (path, size, mtime) -> Model, so a worker loads each weight file once


def load_weights(weights):
    path = Path(weights)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _MODELS:
        _MODELS.clear()
        _MODELS[key] = Model.load(path)
    return _MODELS[key]


def normalization(model):
    """(mean, std) the weights were trained with: the file's metadata, else MNIST's."""
    norm = model.meta.get("normalization", {"mean": 0.1307, "std": 0.3081})
    return norm["mean"], norm["std"]


def shards(n, shard_size, limit=None):
    """[(start, stop)] covering the first ``limit`` (default all) of n images."""
    checks.count("tally", "shard_size", shard_size)
    n = n if limit is None else min(n, limit)
    return [(s, min(s + shard_size, n)) for s in range(0, n, shard_size)]


def fill(stats, model, x, labels=None, first_id=0, batch_size=500):
    """Add the inputs ``x`` (N, C, H, W, in the network's units) into
    ``stats``, in batches, and return them: image i gets the id
    ``first_id + i``; labels (N,) or None (-1). The network runs only as far
    as the last layer the statistics read, recording only those layers."""
    labels = np.full(len(x), -1, dtype=np.int64) if labels is None else np.asarray(labels)
    names = {layer: model.resolve(layer) for s in stats for layer in s.layers}
    keep = sorted(set(names.values()))
    last = max(keep, key=model.layer_names.index)
    for b in range(0, len(x), batch_size):
        e = min(b + batch_size, len(x))
        _, acts = model.forward(x[b:e], record=True, until=last, keep=keep)
        outputs = {layer: acts[name] for layer, name in names.items()}
        ids = np.arange(first_id + b, first_id + e, dtype=np.int64)
        for s in stats:
            s.add(outputs, labels[b:e], ids)
    return stats


def tally_shard(weights, source, start, stop, stats, batch_size=500):
    """Fresh copies of ``stats`` filled with the images [start, stop) of ``source``."""
    model = load_weights(weights)
    mean, std = normalization(model)
    filled = [s.empty() for s in stats]
    for b in range(start, stop, batch_size):
        e = min(b + batch_size, stop)
        images, labels = source.read(b, e)
        try:
            fill(filled, model, as_inputs(images, mean, std, model.dtype), labels, first_id=b, batch_size=e - b)
        except ValueError as err:
            raise ValueError(f"{source.name}, images {b}..{e - 1}: {err}") from None
    return filled


def merge_all(parts):
    """Merge a list of statistics lists into the first (in place) and return it."""
    total = parts[0]
    for part in parts[1:]:
        for mine, theirs in zip(total, part):
            mine.merge(theirs)
    return total


def _merge_pair(a, b):
    return merge_all([a, b])


def check(weights, source, stats):
    """What can be found wrong before any work: the layers, the labels of a
    source that holds them in memory, and the images' size against the
    network (one image through it). A streamed source's labels are checked
    shard by shard, as they are read."""
    model = load_weights(weights)
    for s in stats:
        resolved = [model.resolve(layer) for layer in s.layers]   # ValueError naming the layer and the valid ones
        if len(set(resolved)) < len(resolved):   # a name and its alias: each batch added twice over
            raise ValueError(f"tally: {s.kind} names one layer more than once: {s.layers} are {resolved}")
        labels = getattr(source, "labels", None)
        if getattr(s, "n_classes", None) and labels is not None and len(labels):
            outside = labels[(labels < 0) | (labels >= s.n_classes)]
            if len(outside):
                raise ValueError(f"{source.name}: label {int(outside[0])} is out of range "
                                 f"0..{s.n_classes - 1} ({len(outside)} such labels)")
    mean, std = normalization(model)
    images, _ = source.read(0, 1)
    try:
        model.forward(as_inputs(images, mean, std, model.dtype))
    except ValueError as err:
        raise ValueError(f"{source.name}: its images, of shape {source.image_shape}, do not fit "
                         f"{model.arch or 'the network'}: {str(err).splitlines()[0]}") from None


def tally(weights, source, stats, client=None, shard_size=5000, batch_size=500, limit=None, progress=None):
    """Fill ``stats`` (a list of ClassMeans / TopK, empty) over ``source``
    and return the merged statistics, a new list in the same order.

    progress: optional callable(done, total) in shards."""
    if not len(source):
        raise ValueError(f"{source.name}: holds no image")
    stats = list(stats)
    if not stats:
        raise ValueError("tally: stats is empty: pass the statistics to fill (ClassMeans, TopK)")
    held = [k for k, s in enumerate(stats) if not s.is_empty()]
    if held:   # each shard starts from an empty copy: what they hold would be dropped
        raise ValueError(f"tally: stats[{held[0]}] ({stats[held[0]].kind}) already holds data; pass empty "
                         f"statistics and merge the result with it")
    checks.count("tally", "batch_size", batch_size)
    if limit is not None:
        checks.count("tally", "limit", limit)
    check(weights, source, stats)
    parts = shards(len(source), shard_size, limit)
    if client is None:
        total = None
        for done, (start, stop) in enumerate(parts, start=1):
            part = tally_shard(weights, source, start, stop, stats, batch_size)
            total = part if total is None else merge_all([total, part])
            if progress:
                progress(done, len(parts))
        return total
    return _tally_on_dask(client, weights, source, stats, parts, batch_size, progress)


def on_one_numba_thread(fn, *args):
    """fn(*args), numba's parallel loops on one thread in this thread (a Dask
    worker's): a worker's parallelism is its processes and threads, as Dask
    counts them, and numba's OpenMP threads, which spin for milliseconds
    after each loop, would take the cores of the workers beside it
    (``npcnn/ops/__init__.py``), as Dask sets OMP_NUM_THREADS=1 in its
    workers for other libraries. (The setting is the calling thread's.)"""
    numba.set_num_threads(1)
    return fn(*args)


def _tally_on_dask(client, weights, source, stats, parts, batch_size, progress):
    from dask.distributed import as_completed

    weights = os.path.abspath(weights)
    # sent to every worker once, not with every task (an in-memory source holds the images)
    [shared] = client.scatter([source], broadcast=True, hash=False)
    futures = [client.submit(on_one_numba_thread, tally_shard, weights, shared, start, stop, stats, batch_size,
                             pure=False)
               for start, stop in parts]
    done = 0
    for _ in as_completed(futures):       # progress; failures surface below
        done += 1
        if progress:
            progress(done, len(parts))
    level = futures
    while len(level) > 1:                 # a merge tree: log2(shards) levels
        level = [client.submit(_merge_pair, level[i], level[i + 1], pure=False) if i + 1 < len(level)
                 else level[i] for i in range(0, len(level), 2)]
    return level[0].result()
