"""The explorer's computations: one network, answering what the page asks.

``Explorer.predict(image)``: the ten probabilities and every layer's output
for one 28x28 image (0..1, white ink on black); ``Explorer.unit(image,
layer, channel)``: that map's deconvnet projection to pixels and its
guided backpropagation beside it (``npcnn.deconv.project``, rules
"deconvnet" and "guided"), with what does not depend on the image
(``facts``): its filter, its class-wise average and its top-9.

The engine's kernels are not made for simultaneous calls from several
threads (only npcnn/ops' own lock guards its thread pool), so every model
call here holds ``self.lock``: the server's threads take turns.
"""
import threading
import time

import numpy as np

from npcnn import deconv

from . import explore_stats
from .explore_wire import encode

N_CLASSES = 10


def softmax(logits):
    """exp(z - max) / sum: the probabilities of a row of logits (or log-probabilities)."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


class Explorer:
    """A trained MNIST network, its normalisation, a few test images to
    start from and the statistics shown beside each unit.

    Args:
        model: npcnn.Model (LeNet-5 or SimpleCNN, any that takes 1x28x28).
        normalization: {"mean", "std"} the weights were trained with.
        examples: uint8 (n, 28, 28) test images the page offers, with
            ``example_labels`` (n,).
        statistics: ``explore_stats.Statistics``.
        about: {"checkpoint", "dataset", ...}: shown in the page's header.
    """

    def __init__(self, model, normalization, examples, example_labels, statistics, about):
        self.model, self.statistics, self.about = model, statistics, dict(about)
        self.mean, self.std = float(normalization["mean"]), float(normalization["std"])
        self.examples, self.example_labels = examples, np.asarray(example_labels)
        self.lock = threading.Lock()
        self.layout = self._layout()
        self.channels = {row["name"]: row["shape"][0] for row in self.layout}
        self.height, self.width = examples.shape[1:]
        self._facts = {}

    def _layout(self):
        """[{"name", "kind", "shape" (without the batch), "group": "maps" | "dense"}]
        in forward order, the flatten left out."""
        shapes = self.model.output_shapes((1, 1) + self.examples_shape())
        projectable = set(deconv.projectable_layers(self.model))
        rows = []
        for name in explore_stats.recorded_layers(self.model):
            rows.append({"name": name, "kind": self.model.layers[name].kind, "shape": list(shapes[name][1:]),
                         "group": "maps" if name in projectable else "dense"})
        return rows

    def examples_shape(self):
        return tuple(self.examples.shape[1:])

    def normalize(self, images):
        """(n, H, W) in 0..1 -> (n, 1, H, W) in the network's units and dtype."""
        images = np.asarray(images, dtype=np.float64)
        return ((images - self.mean) / self.std).astype(self.model.dtype)[:, None]

    # -- what the page asks ------------------------------------------------------

    def predict(self, image):
        """{"probabilities", "predicted", "maps": {layer: (C, H, W)}, "dense":
        {layer: [units]}} for one image (H, W) in 0..1."""
        x = self.normalize(image[None])
        with self.lock:
            started = time.perf_counter()
            out, acts = self.model.forward(x, record=True)
            compute_ms = 1000 * (time.perf_counter() - started)
        probabilities = softmax(out[0])
        maps, dense = {}, {}
        for row in self.layout:
            a = acts[row["name"]][0]
            if row["group"] == "maps":
                maps[row["name"]] = encode(a)
            else:
                dense[row["name"]] = [float(v) for v in a]
        return {"probabilities": [float(p) for p in probabilities], "predicted": int(probabilities.argmax()),
                "maps": maps, "dense": dense, "compute_ms": compute_ms}

    def unit(self, image, layer, channel, select="map", facts=True):
        """The unit's projections for one image and (``facts``) what it is
        independent of the image. A dense unit has no projection: the
        deconvnet walks down from conv-stage maps only."""
        answer = {"layer": layer, "channel": channel, "select": select}
        if self.channels.get(layer) is None:
            raise ValueError(f"unknown layer {layer!r}")
        if self._is_map(layer):
            x = self.normalize(image[None])
            with self.lock:
                projection = deconv.project(self.model, x, layer, channel, select=select, rule="deconvnet")
                guided = deconv.project(self.model, x, layer, channel, select=select, rule="guided")
            answer.update(projection=encode(projection[0, 0]), guided=encode(guided[0, 0]))
        else:
            answer.update(projection=None, guided=None)
        if facts:
            answer["facts"] = self.facts(layer, channel)
        return answer

    def _is_map(self, layer):
        return next(row["group"] for row in self.layout if row["name"] == layer) == "maps"

    def facts(self, layer, channel):
        """{"filter", "filter_of", "class_average", "top9"}: the unit's weights
        (the filter of the conv at or below a map, the weight row of the
        linear layer at or below a dense unit), its mean over each class of
        the test set, and its top-9 patches, each None when not available."""
        key = (layer, channel)
        if key not in self._facts:
            weights_of = self._weights_layer(layer)
            weights = self.model.layers[weights_of].params["weight"][channel] if weights_of else None
            means = self.statistics.class_means
            # a statistics file may hold the means of some layers only
            average = means.means[layer][:, channel] if means is not None and layer in means.means else None
            tops = self.statistics.top9
            if tops is not None and layer in tops:
                with self.lock:
                    patches = explore_stats.top9_patches(self.model, self.statistics, self.normalize,
                                                         layer, channel)
                top9 = [{"id": p["id"], "value": p["value"], "image": encode(p["image"]),
                         "projection": encode(p["projection"])} for p in patches]
            else:
                top9 = None
            self._facts[key] = {
                "filter": None if weights is None else encode(weights), "filter_of": weights_of,
                "class_average": None if average is None else encode(average),
                "top9": top9}
        return self._facts[key]

    def _weights_layer(self, layer):
        """The conv (for a map) or linear layer (for a dense unit) at or below
        ``layer`` whose output channels are ``layer``'s; None if none is."""
        names = self.model.layer_names
        for name in reversed(names[:names.index(layer) + 1]):
            kind = self.model.layers[name].kind
            if kind in ("conv2d", "linear"):
                return name
            if kind == "flatten":
                return None
        return None

    # -- what the page is given at load ------------------------------------------

    def page_data(self):
        """What data.js holds for the page: the network's layout, the example
        images and where the statistics came from."""
        s = self.statistics
        return {"about": {**self.about, "arch": self.model.arch},
                "layout": self.layout, "size": [self.height, self.width],
                "examples": [{"label": int(label), "pixels": encode(image.astype(np.float64) / 255)}
                             for image, label in zip(self.examples, self.example_labels)],
                "class_means": s.class_source if s.class_means is not None else None,
                "top9": s.top9_source if s.top9 is not None else None,
                "classes": N_CLASSES}
