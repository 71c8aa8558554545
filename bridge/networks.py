"""Torch twins of npcnn's architectures, built from the same specs.

A spec's layer names are module paths: ``conv_1`` becomes a child of the
top-level ``nn.Sequential``, ``features.0`` the child ``0`` of a nested
``features`` Sequential. So the state_dict keys of the torch module are the
npcnn keys (``conv_1.weight``, ``features.0.weight``), and AlexNet and VGG16
have torchvision's keys without depending on torchvision.
"""
from collections import OrderedDict

import torch
from torch import nn

from npcnn.architectures import SPECS, Spec, get_spec

TORCH_LAYERS = {
    "conv2d": nn.Conv2d,
    "linear": nn.Linear,
    "relu": nn.ReLU,
    "max_pool2d": nn.MaxPool2d,
    "adaptive_avg_pool2d": nn.AdaptiveAvgPool2d,
    "flatten": nn.Flatten,
    "dropout": nn.Dropout,
    "log_softmax": nn.LogSoftmax,
    "softmax": nn.Softmax,
}


def torch_model(name, dtype=torch.float32):
    """``torch.nn.Module`` of a spec's name (``npcnn.SPECS``) or a ``Spec``,
    with torch's default initialisation, in eval mode."""
    spec = name if isinstance(name, Spec) else get_spec(name)
    groups = OrderedDict()  # top-level child name -> module or OrderedDict of children
    for layer_name, kind, arguments in spec.layers:
        module = TORCH_LAYERS[kind](**arguments)
        if "." in layer_name:
            group, child = layer_name.split(".", 1)
            groups.setdefault(group, OrderedDict())[child] = module
        else:
            groups[layer_name] = module
    top = nn.Sequential(OrderedDict(
        (k, nn.Sequential(v) if isinstance(v, OrderedDict) else v) for k, v in groups.items()))
    top.arch = spec.name
    return top.to(dtype).eval()


def named_layers(module):
    """``{npcnn layer name: torch submodule}``: every leaf module by its path."""
    return OrderedDict((name, m) for name, m in module.named_modules()
                       if name and not list(m.children()))


@torch.no_grad()
def torch_activations(module, x, switches=False):
    """Run ``module`` on ``x`` and return ``(output, {layer name: output})``,
    recorded with forward hooks on every leaf module.

    With ``switches=True`` also return ``{pool name: indices}``: where each
    max-pool found its maxima (torch's ``return_indices``), so a trained
    network's switches are reachable from outside without changing it.
    """
    acts, found = OrderedDict(), OrderedDict()

    def record(name, m, inputs, out):
        acts[name] = out
        if switches and isinstance(m, nn.MaxPool2d):
            found[name] = torch.nn.functional.max_pool2d(
                inputs[0], m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode,
                return_indices=True)[1]

    handles = [m.register_forward_hook(lambda m, i, o, name=name: record(name, m, i, o))
               for name, m in named_layers(module).items()]
    try:
        out = module(x)
    finally:
        for h in handles:
            h.remove()
    return (out, acts, found) if switches else (out, acts)


def last_conv_relu(module):
    """The last ReLU before the flatten: the end of the conv stage, where
    Grad-CAM and the other layer-reading methods look by default."""
    items = list(named_layers(module).items())
    cut = next(i for i, (_, m) in enumerate(items) if isinstance(m, nn.Flatten))
    return [n for n, m in items[:cut] if isinstance(m, nn.ReLU)][-1]


def resolve_layer(module, layer):
    """The module path of ``layer``: a path (``features.28``) or, for a network
    from ``torch_model``, an alias of its spec (``conv5_3``). An unknown name is
    a ValueError listing the valid ones."""
    spec = SPECS.get(getattr(module, "arch", None))  # a hand-built module has no spec
    aliases = spec.aliases if spec else {}
    name = aliases.get(layer, layer)
    layers = named_layers(module)
    if name not in layers:
        raise ValueError(f"unknown layer {layer!r}; valid layers: {', '.join(layers)}"
                         + (f"; aliases: {', '.join(aliases)}" if aliases else ""))
    return name


def forward_capturing(module, x, layer):
    """Run ``module`` on ``x`` (with autograd, if x needs it) and return
    ``(output, output of layer)``; an unknown layer name is an error listing
    the valid ones."""
    target = named_layers(module)[resolve_layer(module, layer)]
    captured = {}
    handle = target.register_forward_hook(lambda _m, _i, out: captured.__setitem__("a", out))
    try:
        out = module(x)
    finally:
        handle.remove()
    return out, captured["a"]


class _Reached(Exception):
    """Raised by the hook on a layer to stop the forward pass there."""


def forward_to(module, x, layer):
    """The output of ``layer`` for input x, running the network only as far
    as that layer (a forward hook raises once it has the output): the layers
    after it cost nothing, and need not accept the input's size."""
    target = named_layers(module)[resolve_layer(module, layer)]
    captured = {}

    def stop(_m, _i, out):
        captured["a"] = out
        raise _Reached

    handle = target.register_forward_hook(stop)
    try:
        module(x)
    except _Reached:
        pass
    finally:
        handle.remove()
    if "a" not in captured:
        raise ValueError(f"layer {layer!r} was not reached by the forward pass")
    return captured["a"]
