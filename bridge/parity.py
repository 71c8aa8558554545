"""Layer-by-layer comparison of an npcnn model with its torch twin."""
from dataclasses import dataclass

import numpy as np
import torch

from .networks import torch_activations


@dataclass
class LayerParity:
    layer: str
    shape: tuple
    max_abs: float   # max |npcnn - torch|
    max_rel: float   # max_abs / max |torch|, the error relative to the layer's scale
    within: bool     # every entry within atol + rtol * |torch|


def compare_activations(model, module, x, atol=1e-5, rtol=1e-5):
    """Run ``x`` through both networks and compare every named activation.

    Returns one ``LayerParity`` per layer, in forward order. Raises if the
    two networks do not have the same layer names.
    """
    _, ours = model.forward(x, record=True)
    _, theirs = torch_activations(module, torch.from_numpy(x))
    if list(ours) != list(theirs):
        raise ValueError(f"layer names differ: npcnn {list(ours)} vs torch {list(theirs)}")
    rows = []
    for name, a in ours.items():
        b = theirs[name].numpy()
        err = float(np.abs(a - b).max()) if a.size else 0.0
        scale = float(np.abs(b).max()) if b.size else 0.0
        rows.append(LayerParity(name, a.shape, err, err / scale if scale > 0 else err,
                                bool(np.allclose(a, b, atol=atol, rtol=rtol))))
    return rows
