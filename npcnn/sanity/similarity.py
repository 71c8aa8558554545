"""Every similarity of a map to a reference map (Adebayo et al. 2018), per
map pair; (N, H, W) maps, one per image, the reference first.

| metric       | what it compares                                         | self | negation |
| ---          | ---                                                      | ---  | ---      |
| spearman     | the order of the signed values (``ranks.spearman``)      | 1    | -1       |
| spearman_abs | the order of |m|                                         | 1    | 1        |
| ssim         | SSIM of |m| / max|m| in [0, 1], L = 1 (``ssim``)         | 1    | 1        |
| hog          | HOG features of |m| / max|m| (``hog.hog_similarity``)    | 1    | 1        |

SSIM and HOG look at what a heat map shows a viewer: the magnitude, each
map scaled by its own maximum (a zero map stays zero), so that a network
whose maps are ten times stronger is not "dissimilar" for that alone.
"""
import numpy as np

from .hog import hog_similarity
from .ranks import spearman
from .ssim import ssim

METRICS = ("spearman", "spearman_abs", "ssim", "hog")


def unit_magnitude(maps):
    """|m| / max|m| per map (N, H, W), in [0, 1]; a zero map stays zero."""
    m = np.abs(np.asarray(maps, dtype=np.float64))
    top = m.reshape(len(m), -1).max(axis=1)
    return m / np.where(top > 0, top, 1.0)[:, None, None]


def compare(reference, maps):
    """{metric: (N,)}: each map's similarity to its reference, for every metric of METRICS."""
    reference = np.asarray(reference, dtype=np.float64)
    maps = np.asarray(maps, dtype=np.float64)
    if reference.shape != maps.shape or reference.ndim != 3:
        raise ValueError(f"compare: maps must be (N, H, W) of one shape; got {reference.shape} and {maps.shape}")
    ref_unit, unit = unit_magnitude(reference), unit_magnitude(maps)
    return {"spearman": spearman(reference, maps),
            "spearman_abs": spearman(np.abs(reference), np.abs(maps)),
            "ssim": ssim(ref_unit, unit, data_range=1.0),
            "hog": hog_similarity(ref_unit, unit)}
