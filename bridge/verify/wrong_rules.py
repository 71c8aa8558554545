"""The deconvnet walked down under the rules that implementations get
wrong, one rule at a time, on the engine's recording of the forward pass.

``walk(model, acts, layer, channel, select, Rules())`` is the deconvnet of
``npcnn.deconv`` written out plainly (the tests hold it equal); each field
of ``Rules`` swaps one step for the mistake seen in public deconvnets:

    field        correct            wrong
    unpool       "accumulate"       "overwrite": torch's nn.MaxUnpool2d, which keeps one
                                    value (the last written) where overlapping windows
                                    share a switch, instead of adding them up
    relu         "deconvnet"        "guided": max(g, 0) * [x > 0] (guided backpropagation)
                                    "saliency": g * [x > 0] (the plain gradient)
    bias         0                  +1: the conv's bias added to the signal before it is
                                    filtered down, conv_transpose2d(g + b, W); -1: subtracted
    kernels      "transposed"       "unflipped": the forward kernels slid over the signal
                                    without the flip, conv_transpose2d(g, W[..., ::-1, ::-1])
    pool_ties    "first"            "last": a pooling window's switch at its last maximum
    select_ties  "first"            "last": select="max" keeps the map's last maximum

Every step uses npcnn's ops (torch's for the overwriting unpool, whose
semantics it names), so a variant differs from the deconvnet in its one
rule only.
"""
from dataclasses import dataclass, replace

import numpy as np
import torch

from npcnn import checks
from npcnn import functional as F
from npcnn.deconv import transposed_conv
from npcnn.ops.pool import pool_output_size


@dataclass(frozen=True)
class Rules:
    unpool: str = "accumulate"
    relu: str = "deconvnet"
    bias: int = 0
    kernels: str = "transposed"
    pool_ties: str = "first"
    select_ties: str = "first"


CORRECT = Rules()

# name -> (the rules, what the mistake is and how to put it right)
WRONG_RULES = {
    "overwriting unpool": (replace(CORRECT, unpool="overwrite"),
                           "unpooling keeps one value where overlapping windows share a switch "
                           "(nn.MaxUnpool2d / F.max_unpool2d); add the shared values up instead, "
                           "as the autograd backward of max_pool2d does"),
    "guided-backprop ReLU rule": (replace(CORRECT, relu="guided"),
                                  "the ReLUs pass max(g, 0) * [x > 0], guided backpropagation's rule; "
                                  "the deconvnet rectifies the signal alone: max(g, 0), whatever x was"),
    "plain-gradient ReLU rule": (replace(CORRECT, relu="saliency"),
                                 "the ReLUs pass g * [x > 0], the gradient's rule (saliency); the "
                                 "deconvnet rectifies the signal: max(g, 0)"),
    "bias added": (replace(CORRECT, bias=1),
                   "each conv's bias is added to the signal on the way down; the deconvnet "
                   "filters with the transposed weights only, no bias"),
    "bias subtracted": (replace(CORRECT, bias=-1),
                        "each conv's bias is subtracted from the signal on the way down; the "
                        "deconvnet filters with the transposed weights only, no bias"),
    "unflipped kernels": (replace(CORRECT, kernels="unflipped"),
                          "the forward kernels are slid over the signal as they are; going down "
                          "filters with the transposed (flipped) kernels: conv_transpose2d(g, W)"),
    "last-maximum ties in pooling": (replace(CORRECT, pool_ties="last"),
                                     "a pooling window whose maximum is tied (after a ReLU, all zeros) "
                                     "gets its switch at the last maximum; torch and npcnn take the "
                                     "first, in row-major window order"),
    "last-maximum ties in select='max'": (replace(CORRECT, select_ties="last"),
                                          "select='max' keeps the last of tied strongest units; keep the "
                                          "first, as argmax does"),
}


def walk(model, acts, layer, channel, select, rules=CORRECT):
    """The projection of ``channel`` of ``layer`` to pixels under ``rules``.

    ``acts``: a full recording, ``model.forward(x, record=True)`` (the
    ReLU rules and the last-maximum switches read every layer's input).
    Returns an array shaped like the input batch.
    """
    names = model.layer_names
    stop = names.index(model.resolve(layer))
    g = starting_signal(acts[names[stop]], channel, select, rules.select_ties)
    for i in range(stop, -1, -1):
        below = acts[names[i - 1]] if i > 0 else acts.input      # this layer's input
        g = _step(model.layers[names[i]], acts.switches.get(names[i]), below, g, rules)
    return g


def _step(layer, switches, below, g, rules):
    if layer.kind == "conv2d":
        w, b = layer.params["weight"], layer.params.get("bias")
        if rules.kernels == "unflipped":
            w = np.ascontiguousarray(w[:, :, ::-1, ::-1])
        if rules.bias and b is not None:
            g = g + rules.bias * b[None, :, None, None]
        t = transposed_conv(layer, below.shape)
        g = F.conv_transpose2d(g, w, None, t.stride, t.padding, t.output_padding, layer.groups, t.dilation)
        return g if t.crop is None else np.ascontiguousarray(g[:, :, :t.crop[0], :t.crop[1]])
    if layer.kind == "relu":
        if rules.relu == "deconvnet":
            return np.maximum(g, 0)
        if rules.relu == "guided":
            return np.maximum(g, 0) * (below > 0)
        return g * (below > 0)
    if layer.kind == "max_pool2d":
        if rules.pool_ties == "last":
            switches = pool_switches(below, **layer.arguments, last=True)
        if rules.unpool == "overwrite":
            args = layer.arguments
            # torch's max_unpool2d only needs the output's size: the switches
            # say where every value goes, dilated windows or not
            out = torch.nn.functional.max_unpool2d(
                torch.from_numpy(np.ascontiguousarray(g)), torch.from_numpy(switches), args["kernel_size"],
                args["stride"], args["padding"], output_size=below.shape[2:])
            return out.numpy()
        return F.max_pool2d_backward(g, switches, below.shape[2:])
    if layer.kind == "dropout":
        return g
    raise ValueError(f"cannot walk down through a {layer.kind} layer")


def starting_signal(activation, channel, select, ties="first"):
    """The activation of ``channel`` alone: its whole map (``"map"``) or its
    strongest unit per image (``"max"``), the first or the last of tied ones."""
    N, _, H, W = activation.shape
    signal = np.zeros_like(activation)
    plane = activation[:, channel].reshape(N, -1)                       # (N, H*W)
    if select == "map":
        signal[:, channel] = activation[:, channel]
        return signal
    best = plane.argmax(axis=1) if ties == "first" else plane.shape[1] - 1 - plane[:, ::-1].argmax(axis=1)
    n = np.arange(N)
    signal[n, channel, best // W, best % W] = plane[n, best]
    return signal


def pool_switches(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, last=False):
    """Max-pooling's switches (flat ``h*W + w`` in the unpadded plane) with
    ties at the first maximum of each window in row-major order (torch's
    rule) or, with ``last``, at the last.

        windows (N, C, Ho, Wo, kH*kW) of x padded with -inf, their taps
        dilation apart; the switch is the argmax, or kH*kW - 1 - the argmax
        of the reversed window
    """
    N, C, H, W = x.shape
    (kH, kW), (pH, pW) = checks.pair("pool", "k", kernel_size), checks.pair("pool", "p", padding)
    dH, dW = checks.pair("pool", "d", dilation)
    sH, sW = (kH, kW) if stride is None else checks.pair("pool", "s", stride)
    Ho = pool_output_size(H, kH, sH, pH, ceil_mode, dH)
    Wo = pool_output_size(W, kW, sW, pW, ceil_mode, dW)
    reach = (dH * (kH - 1) + 1, dW * (kW - 1) + 1)
    # room for every window, ceil_mode's last one overhanging the input included
    rows, cols = max((Ho - 1) * sH + reach[0], H + pH), max((Wo - 1) * sW + reach[1], W + pW)
    xpad = np.full((N, C, rows, cols), -np.inf)
    xpad[:, :, pH:pH + H, pW:pW + W] = x
    windows = np.lib.stride_tricks.sliding_window_view(xpad, reach, axis=(2, 3))[..., ::dH, ::dW]
    windows = windows[:, :, ::sH, ::sW][:, :, :Ho, :Wo].reshape(N, C, Ho, Wo, kH * kW)
    at = kH * kW - 1 - windows[..., ::-1].argmax(-1) if last else windows.argmax(-1)   # (N, C, Ho, Wo)
    h = np.arange(Ho)[:, None] * sH + (at // kW) * dH - pH
    w = np.arange(Wo)[None, :] * sW + (at % kW) * dW - pW
    return (h * W + w).astype(np.int64)
