"""``npcnn.stats``: statistics of layers over whole data sets, mergeable, in
shards, in this process or on a Dask cluster.

- ``ClassMeans(layers, n_classes)``: per class and layer, count, sum and sum
  of squares (mean, variance, zero fraction).
- ``TopK(layer, k=9)``: per channel, the k strongest units as (value, image
  id, position).
- ``tally(weights, source, stats, client=None, shard_size=...)``: run them
  over a source, in shards; ``fill(stats, model, x, labels)``: over inputs
  already in memory.
- Sources: ``ArraySource``, ``IdxSource``, ``NpySource``.
- ``save_stats(path, stats)`` / ``load_stats(path)``: ``.npz`` of plain arrays.

Each statistic has ``add(activations, labels, ids)``, ``merge(other)``,
``result()``, ``state_dict()`` and ``load_state_dict()``.
"""
from .class_means import ClassMeans, ClassMeansResult
from .sources import ArraySource, IdxSource, NpySource, as_inputs
from .storage import load_stats, save_stats
from .tally import fill, shards, tally
from .top_k import TopK

__all__ = ["ArraySource", "ClassMeans", "ClassMeansResult", "IdxSource", "NpySource", "TopK", "as_inputs",
           "fill", "load_stats", "save_stats", "shards", "tally"]
