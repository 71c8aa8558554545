"""The deconvnet of Zeiler & Fergus (2013), and its two relatives, on the engine.

To see what one activation of a layer responds to: present an image,
record that layer's output and every pooling layer's switches; keep that
activation (one channel's whole map, ``select="map"``, or only its
strongest unit, ``select="max"``), zero every other activation of the layer,
and walk down to the pixels, layer by layer:

    max-pool   unpool: each value goes back to its switch (values that
               share a switch add up: overlapping pools)
    ReLU       rectify the signal: max(g, 0)
    conv       filter with the transposed filters: conv_transpose2d(g, W),
               no bias, the conv's own groups and dilation
    dropout    nothing (inference)

Only the ReLU rule changes between the three methods (``rule=``):

    "deconvnet"  max(g, 0)               Zeiler & Fergus
    "guided"     max(g, 0) * [x > 0]     guided backpropagation (Springenberg et al. 2015)
    "saliency"   g * [x > 0]             the plain gradient (Simonyan et al. 2014)

where x is the ReLU's input on the way up. The starting signal is the
activation itself, not 1, so the projection has the activation's scale;
every step is linear or a ReLU, so scaling the signal by a > 0 scales the
projection by a.

    proj = npcnn.deconv.project(model, x, "conv_2", channel=3)          # like x
    many = npcnn.deconv.project_channels(model, x, "pool_2", range(16))  # (16, N, C, H, W)
"""
from typing import NamedTuple, Optional

import numpy as np

from . import checks, sparse_signal
from . import functional as F
from .ops.runtime import tuning

RULES = ("deconvnet", "guided", "saliency")
SELECTIONS = ("map", "max")
PROJECTABLE = ("conv2d", "relu", "max_pool2d")


def projectable_layers(model):
    """Names of the layers a projection may start from: conv, ReLU and
    max-pool layers with an (N, C, H, W) output, i.e. before the flatten."""
    names = []
    for name, layer in model.layers.items():
        if layer.kind == "flatten":
            break
        if layer.kind in PROJECTABLE:
            names.append(name)
    return names


def check_layer(model, layer):
    """The name of a layer a projection can start from, or an error listing them."""
    name = model.resolve(layer)  # unknown names: an error listing the valid ones
    valid = projectable_layers(model)
    if name not in valid:
        raise ValueError(f"layer {layer!r} ({model.layers[name].kind}) cannot be projected: only "
                         f"conv, ReLU and max-pool outputs before the flatten can; "
                         f"projectable: {', '.join(valid)}")
    return name


def starting_signal(activation, channels, select):
    """Signals (K, N, C, H, W): for each channel k, the layer's activation
    with every other channel zeroed and, with ``select="max"``, every unit
    but the strongest of that map (the first maximum, per image)."""
    if select not in SELECTIONS:
        raise ValueError(f"select must be 'map' or 'max', got {select!r}")
    N, C, H, W = activation.shape
    signal = np.zeros((len(channels), N, C, H, W), dtype=activation.dtype)
    for k, c in enumerate(channels):
        if select == "map":
            signal[k, :, c] = activation[:, c]
        else:
            best = activation[:, c].reshape(N, H * W).argmax(axis=1)  # (N,) first maximum
            n = np.arange(N)
            signal[k, n, c, best // W, best % W] = activation[n, c, best // W, best % W]
    return signal


def backward_from(model, acts, layer, signal, rule="deconvnet"):
    """Walk ``signal`` (shaped like ``acts[layer]``, any batch) down to the
    input with the deconvnet's steps; ``acts`` is the recording of a forward
    pass (``model.forward(x, record=True)``) whose batch the signal's batch
    repeats a whole number of times (K signals per image, stacked K-major).
    The deconvnet's rule reads only its switches and shapes; "guided" and
    "saliency" read the input of every ReLU, so their recording must keep
    those (``keep=None``, the default).

    Returns the projection, shaped like the input batch of the signal.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    name = check_layer(model, layer)
    N = acts.input.shape[0]
    if (signal.shape[0] % N if N else signal.shape[0]) or signal.shape[1:] != acts.shapes[name][1:]:
        raise ValueError(f"backward_from: signal of shape {signal.shape} does not match layer "
                         f"{name!r} output {acts.shapes[name]}")
    if N == 0:   # an empty batch projects to an empty batch
        return np.zeros(acts.input.shape, dtype=acts.input.dtype)
    walk = _Walk(model, acts, signal, rule)
    g = signal
    for i in range(model.layer_names.index(name), -1, -1):
        step = STEPS.get(model.layers[walk.names[i]].kind)
        if step is None:  # not reachable from a projectable layer of the specs
            raise ValueError(f"backward_from: cannot pass through layer {walk.names[i]!r} "
                             f"({model.layers[walk.names[i]].kind})")
        g = step(model.layers[walk.names[i]], g, i, walk)
    if walk.reused is not None and np.may_share_memory(g, walk.reused):
        g = g.copy()  # a last step that hands back its input (a ReLU in place, a dropout)
    return g


class _Walk:
    """What the steps of one walk down read: the recording, tiled to the
    signal's batch; the rule and the backend; the sparse-signal shortcuts
    still worth trying; the last unpooled map written into a kept buffer."""

    def __init__(self, model, acts, signal, rule):
        self.names, self.acts, self.signal, self.rule = model.layer_names, acts, signal, rule
        self.kinds = [model.layers[name].kind for name in self.names]
        self.rectified = None      # the ReLU layer whose step an unpooling took first
        self.backend = model.backend
        self.repeat = signal.shape[0] // acts.input.shape[0]
        self.shortcuts = sparse_signal.Shortcuts()
        self.reused = None

    def tiled(self, a):
        """A recorded array, repeated once per signal: (K*N, ...)."""
        return a if self.repeat == 1 else np.concatenate([a] * self.repeat)

    def input_shape(self, i):
        """The shape of layer i's input on the way up."""
        return self.acts.shapes[self.names[i - 1]] if i > 0 else self.acts.input.shape

    def relu_input(self, i):
        """The recorded input of ReLU layer i, tiled."""
        if i == 0:
            return self.tiled(self.acts.input)
        if self.names[i - 1] not in self.acts:
            raise ValueError(f"backward_from: rule {self.rule!r} needs the recorded output of layer "
                             f"{self.names[i - 1]!r}, which this recording did not keep")
        return self.tiled(self.acts[self.names[i - 1]])


# The steps of the table in the module docstring, one per layer kind:
# step(layer, g, i, walk) -> the signal below layer i.

def _unpool(layer, g, i, walk):
    """max-pool: each value goes back to its switch; values that share a
    switch add up. Every unpooling but the walk's last (whose result is
    returned) writes into a buffer kept from call to call: the steps below
    only read it, and a fresh map of a few MB is page-faulted in each time.

    Where the deconvnet's ReLU is the next step and the pool's windows do
    not overlap, the ReLU goes first, on the pooled signal (a quarter of
    the unpooled one after a 2x2 pool): each value then lands on a pixel
    of its own among zeros, which max(., 0) leaves zero, so both orders
    give the same map. (Where windows overlap, values that share a switch
    add up, and max(a + b, 0) is not max(a, 0) + max(b, 0).)"""
    if walk.rule == "deconvnet" and i > 0 and walk.kinds[i - 1] == "relu" and not _overlaps(layer):
        g = F.relu(g, inplace=g is not walk.signal, backend=walk.backend)
        walk.rectified = i - 1
    switches = walk.tiled(walk.acts.switches[walk.names[i]])
    g = F.max_pool2d_backward(g, switches, walk.input_shape(i)[2:], reuse=i > 0, backend=walk.backend)
    walk.reused = g if i > 0 else walk.reused
    return g


def _overlaps(pool):
    """Whether a MaxPool2d layer's windows overlap: a window's reach,
    dilation * (kernel - 1) + 1, longer than the stride."""
    args = pool.arguments
    k = checks.pair("max_pool2d", "kernel_size", args["kernel_size"])
    s = checks.pool_stride("max_pool2d", args.get("stride"), k)
    d = checks.pair("max_pool2d", "dilation", args.get("dilation", 1))
    return any(d[a] * (k[a] - 1) + 1 > s[a] for a in (0, 1))


def _rectify(layer, g, i, walk):
    """ReLU: the rule's nonlinearity, max(g, 0) for the deconvnet (done
    already where the unpooling above took it first)."""
    if walk.rectified == i:
        return g
    if walk.rule == "deconvnet":
        # in place once g is an array made here, never the caller's signal
        return F.relu(g, inplace=g is not walk.signal, backend=walk.backend)
    if walk.rule == "guided":
        return F.relu_backward(F.relu(g, backend=walk.backend), walk.relu_input(i), backend=walk.backend)
    return F.relu_backward(g, walk.relu_input(i), backend=walk.backend)     # saliency


def _filter(layer, g, i, walk):
    """conv: the transposed filters, no bias, with the conv's groups and
    dilation (each group's signal goes back through its own filters only,
    along the same spaced taps)."""
    t = transposed_conv(layer, walk.input_shape(i))
    # only where g is nonzero, while that is a small part of it (sparse_signal.py)
    g = sparse_signal.conv_transpose2d(g, layer.params["weight"], t.stride, t.padding, t.output_padding,
                                       layer.groups, t.dilation, walk.backend, walk.shortcuts)
    return g if t.crop is None else np.ascontiguousarray(g[:, :, :t.crop[0], :t.crop[1]])


class TransposedConv(NamedTuple):
    """The arguments of the ``conv_transpose2d`` that maps a conv layer's
    output back onto its input's shape, and the rows and columns to keep
    (``crop``, None for all)."""
    stride: tuple
    padding: tuple
    output_padding: tuple
    dilation: tuple
    crop: Optional[tuple]


def transposed_conv(layer, input_shape):
    """``TransposedConv`` of the Conv2d ``layer`` whose input was ``input_shape``
    (N, C, H, W): the output_padding gives back the rows and columns the
    stride stepped over (those past the last window, whose reach is
    dilation * (k - 1) + 1)."""
    stride = checks.pair("conv2d", "stride", layer.stride)
    dilation = checks.pair("conv2d", "dilation", layer.dilation)
    before, after = layer.padding_sides()
    # torch's padding="same" pads one row (column) more after than before
    # where dilation * (k - 1) is odd: the transposed conv, padded as before,
    # gives those back too, and they are cut off
    extra = (after[0] - before[0], after[1] - before[1])
    (kH, kW), (H, W) = layer.params["weight"].shape[2:], input_shape[2:]
    output_padding = ((H + extra[0] + 2 * before[0] - dilation[0] * (kH - 1) - 1) % stride[0],
                      (W + extra[1] + 2 * before[1] - dilation[1] * (kW - 1) - 1) % stride[1])
    return TransposedConv(stride, before, output_padding, dilation, None if extra == (0, 0) else (H, W))


def _pass(layer, g, i, walk):
    """dropout: nothing (inference)."""
    return g


STEPS = {"max_pool2d": _unpool, "relu": _rectify, "conv2d": _filter, "dropout": _pass}


def project_channels(model, x, layer, channels, select="map", rule="deconvnet", acts=None):
    """Project several channels of ``layer`` from one forward pass.

    Returns (K, N, C, H, W): projection k of every image for ``channels[k]``.
    All K signals go down together as one batch of K*N. Pass ``acts`` (a
    recording of ``model.forward(x, record=True)``, which must keep
    ``layer``) to reuse a forward pass; a recording of another input is
    refused (its switches would route x's projection).
    """
    name = check_layer(model, layer)
    if acts is not None and not (x is acts.input or (np.shape(x) == acts.input.shape
                                                     and np.array_equal(x, acts.input, equal_nan=True))):
        raise ValueError(f"project_channels: acts is a recording of another input (shape "
                         f"{acts.input.shape}) than x (shape {np.shape(x)}); pass the x it recorded, acts.input")
    if acts is None:
        # The deconvnet's rule needs only the switches and the shapes below
        # the layer, so the forward may run each conv with its ReLU as one op.
        keep = [name] if rule == "deconvnet" else None
        _, acts = model.forward(x, record=True, until=name, keep=keep)
    elif name not in acts:
        raise ValueError(f"project_channels: the recording passed as acts did not keep layer {name!r}, "
                         f"where the projection starts")
    # a channel is an int: int(2.7) or int("3") would project another map than asked
    channels = [checks.integer("project_channels", "channel", c) for c in channels]
    n_channels = acts[name].shape[1]
    bad = [c for c in channels if not 0 <= c < n_channels]
    if bad:
        raise ValueError(f"project_channels: channel {bad[0]} is out of range for layer {layer!r} with "
                         f"{n_channels} channels")
    N = acts.input.shape[0]
    below = [acts.input.shape] + [acts.shapes[n] for n in model.layer_names[:model.layer_names.index(name)]]
    # the largest map a signal passes through, in bytes
    per_signal = max(int(np.prod(shape[1:])) for shape in below) * acts.input.itemsize
    step = max(1, tuning.DECONV_BATCH_BYTES // max(1, N * per_signal))   # (an empty batch: N = 0)
    out = np.empty((len(channels),) + acts.input.shape, dtype=acts.input.dtype)
    for start in range(0, len(channels), step):
        chunk = channels[start:start + step]
        signal = starting_signal(acts[name], chunk, select)     # (k, N, C, H, W)
        flat = signal.reshape((len(chunk) * N,) + signal.shape[2:])
        out[start:start + len(chunk)] = backward_from(model, acts, name, flat, rule).reshape(
            (len(chunk),) + acts.input.shape)
    return out


def project(model, x, layer, channel, select="map", rule="deconvnet"):
    """Project one channel of ``layer`` down to the pixels, per image.

    ``x``: (N, C, H, W) in the model's dtype. Returns an array shaped like x.
    """
    return project_channels(model, x, layer, [channel], select, rule)[0]
