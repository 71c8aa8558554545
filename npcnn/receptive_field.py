"""Which input pixels a unit of a layer can see.

Walking up the layers, a unit's receptive field grows by (k - 1) * jump
per conv or pool (k its kernel's reach: d * (k - 1) + 1 for a kernel of k
taps dilated by d) and its jump (the input distance between neighbouring
units) multiplies by the stride:

    size_out  = size_in + (k - 1) * jump_in
    jump_out  = jump_in * s
    start_out = start_in + ((k - 1) / 2 - p) * jump_in      (centre of unit 0)

so unit (i, j) of the layer sees input rows
    [start + i*jump - (size-1)/2,  start + i*jump + (size-1)/2]
(and columns likewise), clipped to the image.
"""
from . import checks

_GEOMETRY = ("conv2d", "max_pool2d")


def _geometry(layer):
    """(reach, stride, padding) of a conv or pool, each an (h, w) pair.
    Groups do not change what a unit sees in the plane, only which
    channels."""
    args = layer.arguments
    taps = checks.pair(layer.kind, "kernel_size", args["kernel_size"])
    d = checks.pair(layer.kind, "dilation", args.get("dilation", 1))
    k = (d[0] * (taps[0] - 1) + 1, d[1] * (taps[1] - 1) + 1)
    s = checks.pair(layer.kind, "stride", args.get("stride") or args["kernel_size"])
    if layer.kind == "conv2d":
        p = layer.padding_sides()[0]  # what the top and left get, torch's "same" too
    else:
        p = checks.pair(layer.kind, "padding", args.get("padding", 0))
    return k, s, p


def receptive_field(model, layer):
    """``(size, jump, start)`` per axis, each an (h, w) pair, for the units
    of ``layer``'s output."""
    name = model.resolve(layer)
    size, jump, start = [1, 1], [1, 1], [0.0, 0.0]
    for layer_name, layer_obj in model.layers.items():
        if layer_obj.kind in _GEOMETRY:
            k, s, p = _geometry(layer_obj)
            for a in (0, 1):
                start[a] += ((k[a] - 1) / 2 - p[a]) * jump[a]
                size[a] += (k[a] - 1) * jump[a]
                jump[a] *= s[a]
        elif layer_obj.kind == "flatten":
            raise ValueError(f"receptive_field: layer {layer!r} comes after the flatten")
        if layer_name == name:
            break
    return tuple(size), tuple(jump), tuple(start)


def unit_window(model, layer, i, j, image_size):
    """Input box ``(h0, h1, w0, w1)`` (half-open, clipped to ``image_size``)
    that unit (i, j) of ``layer`` sees."""
    for what, value in (("i", i), ("j", j)):
        if checks.integer("unit_window", what, value) < 0:
            raise ValueError(f"unit_window: unit ({i}, {j}) has a negative index")
    size, jump, start = receptive_field(model, layer)
    box = []
    for a, idx in enumerate((i, j)):
        centre = start[a] + idx * jump[a]
        lo = int(round(centre - (size[a] - 1) / 2))
        hi = lo + size[a]
        box += [max(lo, 0), min(hi, image_size[a])]
    if box[0] >= box[1] or box[2] >= box[3]:   # a unit past the map: a box upside down, outside the image
        raise ValueError(f"unit_window: unit ({i}, {j}) of {layer!r} sees no pixel of an image of "
                         f"{tuple(image_size)}: it is past the layer's map")
    return box[0], box[1], box[2], box[3]
