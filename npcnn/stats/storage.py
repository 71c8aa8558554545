"""Statistics saved as ``.npz`` of plain arrays (no pickle): each statistic's
``state_dict`` under a prefix ``<k>:``, read back with ``allow_pickle=False``."""
import numpy as np

from ..atomic import atomic_path
from ..weight_files import read_npz
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
    """The statistics ``save_stats`` wrote, in order. A file that is not one
    (a folder, another archive, keys or arrays that are not a statistic's,
    a zip claiming more than ``MAX_WEIGHT_BYTES``) is a ValueError that
    starts with its path; nothing is unpickled."""
    path, arrays = read_npz(path, "npcnn statistics file")
    grouped = {}
    for key, value in arrays.items():
        k, colon, name = key.partition(":")
        if not (colon and k.isdigit()):
            raise ValueError(f"{path}: {key!r} is not a statistic's array (saved as '<k>:<name>' by save_stats)")
        grouped.setdefault(int(k), {})[name] = value
    if sorted(grouped) != list(range(len(grouped))):
        raise ValueError(f"{path}: statistics numbered {sorted(grouped)}, expected 0 to {len(grouped) - 1}")
    stats = []
    for k in sorted(grouped):
        state = grouped[k]
        kind = str(state.get("kind", ""))
        if kind not in KINDS:
            raise ValueError(f"{path}: statistic {k} is of an unknown kind {kind!r}")
        try:
            stats.append(KINDS[kind].from_state_dict(state))
        except (KeyError, TypeError, ValueError) as err:   # a key missing, a shape or value out of place
            raise ValueError(f"{path}: statistic {k} ({kind}) does not load: {describe(err)}") from None
    return stats


def describe(err):
    return f"missing {err}" if isinstance(err, KeyError) else str(err).splitlines()[0]
