"""Statistics saved as ``.npz`` of plain arrays (no pickle): each statistic's
``state_dict`` under a prefix ``<k>:``, read back with ``allow_pickle=False``."""
import numpy as np

from ..atomic import atomic_path
from .class_means import ClassMeans
from .top_k import TopK

KINDS = {ClassMeans.kind: ClassMeans, TopK.kind: TopK}


def save_stats(path, stats):
    arrays = {f"{k}:{name}": value for k, s in enumerate(stats) for name, value in s.state_dict().items()}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return path


def load_stats(path):
    with np.load(path, allow_pickle=False) as data:
        grouped = {}
        for key in data.files:
            k, name = key.split(":", 1)
            grouped.setdefault(int(k), {})[name] = data[key]
    stats = []
    for k in sorted(grouped):
        kind = str(grouped[k]["kind"])
        if kind not in KINDS:
            raise ValueError(f"{path}: statistic {k} is of an unknown kind {kind!r}")
        stats.append(KINDS[kind].from_state_dict(grouped[k]))
    return stats
