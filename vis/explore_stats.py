"""The data-set statistics the explorer shows beside a unit: its class-wise
average map (``npcnn.stats.ClassMeans`` over the test set, as ``npcnn
atlas`` draws them) and its top-9 (``npcnn.stats.TopK`` over the training
set, as ``npcnn deconv``'s figure 2), computed at start or read from a
``save_stats`` file.

The top-9 ids index the training split the statistics were taken over;
its images are kept to cut the patches from.
"""
from dataclasses import dataclass

import numpy as np

from npcnn import deconv
from npcnn.receptive_field import receptive_field, unit_window
from npcnn.stats import ClassMeans, TopK, fill, load_stats

from .deconv_cmd import padded_crop


@dataclass
class Statistics:
    class_means: object = None   # ClassMeansResult, or None
    class_source: str = ""       # what the class means were taken over
    top9: dict = None            # {layer: TopK}, or None
    top9_images: object = None   # uint8 (N, H, W): the images the top-9 ids index
    top9_source: str = ""


def recorded_layers(model):
    """Every layer the page draws: all but the flatten."""
    return [name for name, layer in model.layers.items() if layer.kind != "flatten"]


def class_means(model, x, labels, n_classes=10):
    """ClassMeans of every drawn layer over ``x``: the result (means per layer (K, ...))."""
    [means] = fill([ClassMeans(recorded_layers(model), n_classes)], model, x, labels)
    return means.result()


def top9(model, x, labels):
    """{layer: TopK(k=9)} of every layer a projection can start from."""
    stats = fill([TopK(layer, 9) for layer in deconv.projectable_layers(model)], model, x, labels)
    return {s.layer: s for s in stats}


def read(path, model, n_train):
    """(ClassMeansResult or None, {layer: TopK} or None) from a ``save_stats``
    file, checked against the model: known layers, the layers' shapes, top-9
    ids within the ``n_train`` training images."""
    try:
        stats = load_stats(path)
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"{path}: not a statistics file of npcnn.stats.save_stats ({err})") from None
    means, tops = None, {}
    shapes = model.output_shapes((1,) + _input_shape(model))
    for s in stats:
        if isinstance(s, ClassMeans):
            for layer, shape in s.shapes.items():
                if shapes.get(layer, (None,))[1:] != shape:
                    raise ValueError(f"{path}: class means of {layer} {shape} do not fit {model.arch}")
            means = s.result()
        elif isinstance(s, TopK) and s.layer in deconv.projectable_layers(model) and s.values is not None:
            ids = s.result()[0]
            if len(s.values) != shapes[s.layer][1] or (ids.size and ids.max() >= n_train):
                raise ValueError(f"{path}: the top-{s.k} of {s.layer} do not fit {model.arch} and its "
                                 f"{n_train} training images")
            tops[s.layer] = s
    return means, tops or None


def _input_shape(model):
    from npcnn.architectures import get_spec
    return tuple(get_spec(model.arch).input_shape)


def top9_patches(model, statistics, normalize, layer, channel):
    """The unit's top-9 as [{"id", "value", "image", "projection"}]: the
    receptive-field patch of each image (0..1) and of the deconvnet
    projection of that strongest unit (``select="max"``, the unit TopK
    kept: both take the first maximum)."""
    ids, values, positions = (a[channel] for a in statistics.top9[layer].result())
    images = statistics.top9_images[ids].astype(np.float64) / 255          # (9, H, W)
    projections = deconv.project(model, normalize(images), layer, channel, select="max")  # (9, 1, H, W)
    size = tuple(int(s) for s in receptive_field(model, layer)[0])
    patches = []
    for k, (i, j) in enumerate(positions):
        box = unit_window(model, layer, int(i), int(j), images.shape[1:])
        patches.append({"id": int(ids[k]), "value": float(values[k]),
                        "image": padded_crop(images[k], box, size, 0.0),
                        "projection": padded_crop(projections[k, 0], box, size, 0.0)})
    return patches
