"""Faithfulness of maps, the torch side: the network's score along the
deletion and insertion paths and on ROAD's imputed images
(``npcnn.sanity.curves``, ``npcnn.sanity.road``), and the pixel oracle.

The score is the probability of the target class (softmax of the output;
for LeNet-5, which ends in log_softmax, the same), as in RISE.

The pixel oracle ranks each pixel by what changing it alone does to the
score: for deletion p(x) - p(x with that pixel replaced), for insertion
p(baseline with that pixel put back) - p(baseline). It is the best order
for the first pixel of a curve, and a strong one where pixels act
independently; it is a reference, not a bound (pixels interact). It costs
one forward pass per pixel and image.
"""
import numpy as np
import torch

from npcnn.sanity import curves, road

from ..scores import as_targets, chunks, class_scores


@torch.no_grad()
def probabilities(module, images, target, batch_size=512):
    """p(target[n]) of each image (M, C, H, W) (NumPy or tensor); target (M,). Returns (M,) float64."""
    p = next(module.parameters())
    x = torch.as_tensor(np.asarray(images), dtype=p.dtype, device=p.device)
    t = as_targets(target, len(x), p.device)
    return torch.cat([class_scores(torch.softmax(module(x[s]), dim=1), t[s])
                      for s in chunks(len(x), batch_size)]).double().cpu().numpy()


def deletion_insertion(module, x, maps, target, replacement, steps, batch_size=512):
    """{"deletion": (N, S+1), "insertion": (N, S+1)}: the probability along each
    curve; x and replacement (N, C, H, W) NumPy, maps (N, H, W), target (N,)."""
    orders = curves.ranking(maps)
    out = {}
    for kind in curves.KINDS:
        images = np.concatenate([curves.path(x[n], orders[n], replacement[n], steps, kind)
                                 for n in range(len(x))])                       # (N*(S+1), C, H, W)
        rows = np.repeat(np.asarray(target), steps + 1)
        out[kind] = probabilities(module, images, rows, batch_size).reshape(len(x), steps + 1)
    return out


def road_scores(module, x, maps, target, fractions=road.DEFAULT_FRACTIONS, noise=road.DEFAULT_NOISE,
                seed=0, batch_size=512):
    """{"morf": (N, F), "lerf": (N, F)} probabilities and {"morf_accuracy", "lerf_accuracy"}: (N, F)
    whether the network still predicts the target, on ROAD's imputed images."""
    out = {}
    F = len(fractions)
    for order in road.ORDERS:
        images = np.concatenate([road.road_images(x[n], maps[n], fractions, order, noise,
                                                  seed=[seed, n]) for n in range(len(x))])
        rows = np.repeat(np.asarray(target), F)
        out[order] = probabilities(module, images, rows, batch_size).reshape(len(x), F)
        out[f"{order}_accuracy"] = _predicts(module, images, rows, batch_size).reshape(len(x), F)
    return out


@torch.no_grad()
def _predicts(module, images, target, batch_size):
    p = next(module.parameters())
    x = torch.as_tensor(images, dtype=p.dtype, device=p.device)
    t = torch.as_tensor(target, device=p.device)
    return torch.cat([module(x[s]).argmax(1) == t[s] for s in chunks(len(x), batch_size)]).cpu().numpy().astype(float)


def pixel_oracle(module, x, target, replacement, kind, batch_size=512):
    """(N, H, W): each pixel's effect alone on the probability (see the module docstring)."""
    N, C, H, W = x.shape
    out = np.empty((N, H, W))
    eye = np.eye(H * W, dtype=bool).reshape(H * W, 1, H, W)                   # one pixel each
    for n in range(N):
        start, other = (x[n], replacement[n]) if kind == "deletion" else (replacement[n], x[n])
        images = np.where(eye, other[None], start[None])                       # (P, C, H, W)
        p = probabilities(module, images, np.full(H * W, target[n]), batch_size)
        p0 = probabilities(module, start[None], target[n:n + 1], batch_size)[0]
        out[n] = ((p0 - p) if kind == "deletion" else (p - p0)).reshape(H, W)
    return out
