"""Occlusion sensitivity (Zeiler & Fergus, figure 7): slide a grey square
over the image and watch what the network's output and one feature map do."""
import numpy as np

from . import checks
from . import functional as F


def probabilities(model, out):
    """Class probabilities from the output of a network that ends in
    logits, a softmax or a log-softmax."""
    last = list(model.layers.values())[-1].kind
    if last == "log_softmax":
        return np.exp(out)
    if last == "softmax":
        return out
    return F.softmax(out, 1, backend=model.backend)


def occluded_images(image, size, stride, fill):
    """Every placement of a ``size`` x ``size`` square of value ``fill``.

    image: (C, H, W). Returns (images (P, C, H, W), grid (rows, cols)) where
    placement p = r * cols + c covers rows r*stride .. r*stride+size.
    """
    C, H, W = image.shape
    rows, cols = (H - size) // stride + 1, (W - size) // stride + 1
    out = np.repeat(image[None], rows * cols, axis=0)
    for r in range(rows):
        for c in range(cols):
            out[r * cols + c, :, r * stride:r * stride + size, c * stride:c * stride + size] = fill
    return out, (rows, cols)


def occlusion_maps(model, image, label, layer, channel, size=6, stride=2, fill=0.0, batch_size=512):
    """What an occluder at each position does to the network.

    Returns ``(probability, activation)``, each (rows, cols): the
    probability of ``label`` and the summed activation of ``channel`` of
    ``layer`` with the square's top-left corner at (r*stride, c*stride).
    ``fill`` is the grey value in the network's input units.
    """
    op = "occlusion_maps"
    image = checks.array(op, "image", image, ndim=3, dtype=model.dtype)
    size, stride = checks.integer(op, "size", size), checks.integer(op, "stride", stride)
    if not 1 <= size <= min(image.shape[1:]) or stride < 1:
        raise ValueError(f"{op}: size must be 1 to {min(image.shape[1:])} and stride >= 1 for an image "
                         f"{image.shape}, got size {size}, stride {stride}")
    name = model.resolve(layer)
    shapes = model.output_shapes((1,) + image.shape)
    if len(shapes[name]) != 4:
        raise ValueError(f"{op}: layer {layer!r} has no feature maps to sum (output {shapes[name]})")
    # a negative class or channel would index from the end: another one than asked
    for what, value, count in (("label", label, shapes[model.layer_names[-1]][1]),
                               ("channel", channel, shapes[name][1])):
        if not 0 <= checks.integer(op, what, value) < count:
            raise ValueError(f"{op}: {what} {value} is out of range 0..{count - 1}")
    images, grid = occluded_images(image, size, stride, fill)
    prob, act = [], []
    for i in range(0, len(images), batch_size):
        chunk = images[i:i + batch_size]
        out, acts = model.forward(chunk, record=True)
        prob.append(probabilities(model, out)[:, label])
        act.append(acts[name][:, channel].sum(axis=(1, 2)))
    return np.concatenate(prob).reshape(grid), np.concatenate(act).reshape(grid)

