"""What "removing" a pixel puts in its place, and the random map.

Replacements, each (N, C, H, W) for images (N, C, H, W) in the network's
input units:

    "zero"   a black pixel: the input value of pixel value 0 (for
             normalised inputs (0 - mean) / std, not 0)
    "mean"   the dataset's mean pixel, per channel (for inputs normalised by
             the dataset's own statistics, 0)
    "blur"   the image blurred by a Gaussian of std ``sigma`` pixels
             (reflected at the border): removes the detail, keeps the layout

The random map is uniform noise in [-1, 1), the floor every method is
compared with: it ranks the pixels in an order that knows nothing of the
network or the image.
"""
import math

import numpy as np

REPLACEMENTS = ("zero", "mean", "blur")


def gaussian_blur(images, sigma):
    """Each plane of ``images`` (N, C, H, W) correlated with a normalised
    Gaussian of std ``sigma``, radius ceil(3 sigma), separable, reflected at the border:

        out[i, j] = sum_{p,q} g[p] g[q] x[i + p, j + q],   g[p] ~ exp(-p^2 / (2 sigma^2)), |p| <= r
    """
    x = np.asarray(images)
    if sigma <= 0:
        raise ValueError(f"gaussian_blur: sigma must be > 0, got {sigma!r}")
    r = max(1, math.ceil(3 * sigma))
    p = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-p ** 2 / (2 * sigma ** 2))
    g /= g.sum()
    H, W = x.shape[2:]
    pad = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (r, r), (r, r)), mode="reflect")
    rows = sum(g[k] * pad[:, :, k:k + H, :] for k in range(2 * r + 1))     # (N, C, H, W + 2r)
    return sum(g[k] * rows[:, :, :, k:k + W] for k in range(2 * r + 1)).astype(x.dtype)


def replacement(images, kind, black=0.0, mean=0.0, sigma=2.0):
    """The replacement images (N, C, H, W) of ``kind`` (see the module's table);
    ``black`` and ``mean``: a number or one per channel, in input units."""
    x = np.asarray(images)
    C = x.shape[1]
    if kind == "zero":
        value = black
    elif kind == "mean":
        value = mean
    elif kind == "blur":
        return gaussian_blur(x, sigma)
    else:
        raise ValueError(f"replacement must be one of {', '.join(REPLACEMENTS)}, got {kind!r}")
    value = np.broadcast_to(np.asarray(value, dtype=x.dtype).reshape(-1, 1, 1), (C, 1, 1))
    return np.broadcast_to(value, x.shape).copy()


def random_maps(shape, seed):
    """(N, H, W) uniform noise in [-1, 1) from ``seed``: the floor."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=shape)
