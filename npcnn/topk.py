"""Find, for every feature map of a layer, the images that excite it most
(the search behind Zeiler & Fergus's figure 2)."""
import numpy as np

from .stats import TopK, fill


def batched_forward(model, x, until=None, batch_size=500):
    """``model.forward(x, until=...)`` in batches, to bound memory."""
    return np.concatenate([model.forward(x[i:i + batch_size], until=until)
                           for i in range(0, len(x), batch_size)])


def top_activations(model, x, layer, k=9, batch_size=500):
    """For each channel of ``layer``, the k images with the strongest unit.

    Returns ``(images, values, positions)``, each with a row per channel:
    images (C, k) indices into x, strongest first; values (C, k) that unit's
    activation; positions (C, k, 2) its (i, j) in the map. Ties keep the
    lower image index first. The search is ``npcnn.stats.TopK`` over x in
    memory; over a data set read from disk, or on a cluster, use
    ``npcnn.stats.tally`` with the same statistic.
    """
    (top,) = fill([TopK(layer, k)], model, x, batch_size=batch_size)
    return top.result()
