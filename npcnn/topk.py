"""Find, for every feature map of a layer, the images that excite it most
(the search behind Zeiler & Fergus's figure 2)."""
import numpy as np


def batched_forward(model, x, until=None, batch_size=500):
    """``model.forward(x, until=...)`` in batches, to bound memory."""
    return np.concatenate([model.forward(x[i:i + batch_size], until=until)
                           for i in range(0, len(x), batch_size)])


def top_activations(model, x, layer, k=9, batch_size=500):
    """For each channel of ``layer``, the k images with the strongest unit.

    Returns ``(images, values, positions)``, each with a row per channel:
    images (C, k) indices into x, strongest first; values (C, k) that unit's
    activation; positions (C, k, 2) its (i, j) in the map. Ties keep the
    lower image index first.
    """
    name = model.resolve(layer)
    peak, where = [], []
    for i in range(0, len(x), batch_size):
        a = model.forward(x[i:i + batch_size], until=name)  # (n, C, H, W)
        flat = a.reshape(a.shape[0], a.shape[1], -1)
        arg = flat.argmax(axis=2)                             # (n, C) first maximum
        peak.append(np.take_along_axis(flat, arg[..., None], 2)[..., 0])
        where.append(np.stack(np.unravel_index(arg, a.shape[2:]), axis=-1))
    peak = np.concatenate(peak)      # (N, C)
    where = np.concatenate(where)    # (N, C, 2)
    order = np.argsort(-peak, axis=0, kind="stable")[:k].T  # (C, k)
    channels = np.arange(peak.shape[1])[:, None]
    return order, peak[order, channels], where[order, channels]
