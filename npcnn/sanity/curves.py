"""Deletion and insertion (Petsiuk, Das & Saenko 2018, "RISE"): does the
score fall fastest when the pixels a map ranks first are taken away, and
rise fastest when they are put back first?

For a map m of an image x (C, H, W), P = H*W pixels ranked by m (largest
first), S steps and n_k = floor(k P / S) pixels changed at step k:

    deletion   x_k = x with its first n_k pixels (all channels) set to the baseline's
    insertion  x_k = the baseline with the image's first n_k pixels put back
    AUC = 1/S sum_{k=0}^{S-1} (s_k + s_{k+1}) / 2           (trapezoids over the fraction k/S)

where s_k is the network's score of x_k (computed by the caller: the
engine knows no network here). A faithful map has a low deletion AUC and a
high insertion AUC. The baseline (``baselines``) is what "removed" means.
"""
import numpy as np

KINDS = ("deletion", "insertion")


def ranking(maps):
    """(N, P) pixel indices of maps (N, H, W), most relevant first; equal
    values in row-major order (a stable sort), so the order is reproducible."""
    m = np.asarray(maps)
    return np.argsort(-m.reshape(len(m), -1), axis=1, kind="stable")


def changed_counts(pixels, steps):
    """n_k = floor(k P / S), k = 0..S: pixels changed after each step (n_0 = 0, n_S = P)."""
    if not (isinstance(steps, (int, np.integer)) and 1 <= steps <= pixels):
        raise ValueError(f"curves: steps must be an integer in [1, {pixels}], got {steps!r}")
    return (np.arange(steps + 1) * pixels) // steps


def path(image, order, baseline, steps, kind):
    """The S+1 images of one curve, (S+1, C, H, W): ``kind`` "deletion"
    (from the image towards the baseline) or "insertion" (from the baseline
    towards the image), pixels taken in ``order`` (P,)."""
    if kind not in KINDS:
        raise ValueError(f"curves: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    image = np.asarray(image)
    C, H, W = image.shape
    baseline = np.broadcast_to(np.asarray(baseline, dtype=image.dtype), image.shape)
    start, end = (image, baseline) if kind == "deletion" else (baseline, image)
    counts = changed_counts(H * W, steps)
    # the step at which each pixel changes: the first k with n_k > its place in the order
    place = np.empty(H * W, dtype=np.int64)
    place[order] = np.arange(H * W)
    flips_at = np.searchsorted(counts, place, side="right").reshape(H, W)   # (H, W) in 1..S
    changed = np.arange(steps + 1)[:, None, None] >= flips_at[None]         # (S+1, H, W)
    return np.where(changed[:, None], end[None], start[None])              # (S+1, C, H, W)


def area(scores):
    """The area under curves sampled at k/S, k = 0..S, along the last axis: the trapezoid rule."""
    s = np.asarray(scores, dtype=np.float64)
    steps = s.shape[-1] - 1
    if steps < 1:
        raise ValueError(f"curves: a curve needs 2 or more points, got {s.shape[-1]}")
    return (s.sum(axis=-1) - (s[..., 0] + s[..., -1]) / 2) / steps
