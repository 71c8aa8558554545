"""Deconvnets as users write them, right and wrong, for tests/test_verify_deconv.py.

``walk_down`` is a plain torch deconvnet (forward with return_indices,
then unpool, rectify, filter down) with switches for the mistakes seen in
public code. Each function below is module-level so that the judge's worker
process can import it by name ("flawed_deconvnets:overwriting_unpool").
"""
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import bridge


def walk_down(module, x, layer, channel, select, *, unpool="add", relu="deconvnet", bias=False):
    layers = list(bridge.named_layers(module).items())
    stop = [name for name, _ in layers].index(layer)
    inputs, switches = [], {}
    h = x
    with torch.no_grad():
        for name, m in layers[:stop + 1]:
            inputs.append(h)
            if isinstance(m, nn.MaxPool2d):
                h, switches[name] = F.max_pool2d(h, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode,
                                                 return_indices=True)
            else:
                h = m(h)
        g = torch.zeros_like(h)
        if select == "map":
            g[:, channel] = h[:, channel]
        else:
            best = h[:, channel].flatten(1).argmax(1)                      # (N,) first maximum
            n = torch.arange(len(h))
            g[n, channel, best // h.shape[3], best % h.shape[3]] = h[n, channel, best // h.shape[3], best % h.shape[3]]
        for i in range(stop, -1, -1):
            (name, m), below = layers[i], inputs[i]
            if isinstance(m, nn.Conv2d):
                if bias:
                    g = g + m.bias.view(1, -1, 1, 1)                      # the mistake: bias on the way down
                extra = [(below.shape[2 + a] + 2 * m.padding[a] - m.kernel_size[a]) % m.stride[a] for a in (0, 1)]
                g = F.conv_transpose2d(g, m.weight, None, m.stride, m.padding, tuple(extra))
            elif isinstance(m, nn.ReLU):
                g = g.clamp(min=0) * (below > 0) if relu == "guided" else g.clamp(min=0)
            elif isinstance(m, nn.MaxPool2d):
                if unpool == "overwrite":                                 # the mistake: one value per switch
                    g = F.max_unpool2d(g, switches[name], m.kernel_size, m.stride, m.padding,
                                       output_size=below.shape[-2:])
                else:                                                     # shared switches add up
                    flat = torch.zeros(below.shape[:2] + (below.shape[2] * below.shape[3],), dtype=g.dtype)
                    g = flat.scatter_add_(2, switches[name].flatten(2), g.flatten(2)).view(below.shape)
    return g


def by_hand(module, x, layer, channel, select):
    return walk_down(module, x, layer, channel, select)


def overwriting_unpool(module, x, layer, channel, select):
    return walk_down(module, x, layer, channel, select, unpool="overwrite")


def bias_added(module, x, layer, channel, select):
    return walk_down(module, x, layer, channel, select, bias=True)


def guided_called_deconvnet(module, x, layer, channel, select):
    return bridge.project_reference(module, x, layer, channel, select, rule="guided")


def raises(module, x, layer, channel, select):
    raise RuntimeError("my deconvnet is not finished")


def wrong_shape(module, x, layer, channel, select):
    return by_hand(module, x, layer, channel, select)[0]


def nan_output(module, x, layer, channel, select):
    out = by_hand(module, x, layer, channel, select)
    out[..., 0, 0] = float("nan")
    return out


def slow_on_batches_of_four_and_exits_on_float64(module, x, layer, channel, select):
    """Right, but takes minutes on the case with four images and ends the
    process on float64 input."""
    if len(x) == 4:
        time.sleep(600)
    if x.dtype == torch.float64:
        os._exit(3)
    return by_hand(module, x, layer, channel, select)


def returns_a_list(module, x, layer, channel, select):
    return np.asarray(by_hand(module, x, layer, channel, select)).tolist()


def returns_bfloat16(module, x, layer, channel, select):
    return by_hand(module, x, layer, channel, select).to(torch.bfloat16)


def spoils_its_module(module, x, layer, channel, select):
    """Right, then zeroes every weight of the module it was given."""
    out = by_hand(module, x, layer, channel, select)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.zero_()
    return out
