"""The deconvnet of Zeiler & Fergus, written the torch way: autograd with
ReLU's backward replaced. It is the oracle npcnn's own deconvnet is tested
against.

Why autograd is the deconvnet: going down, the paper (i) unpools with the
switches, which is max-pooling's autograd backward; (iii) filters with the
transposed filters, which is convolution's autograd backward (and uses no
bias); only (ii) differs: the deconvnet rectifies the signal coming down,
ReLU(g), where backpropagation would mask it by the forward input, g*[x>0].
Swapping that one rule gives the three methods:

    rule          ReLU backward            method
    "deconvnet"   max(g, 0)                Zeiler & Fergus 2013
    "guided"      max(g, 0) * [x > 0]      guided backpropagation
    "saliency"    g * [x > 0]              plain gradient (Simonyan et al.)
"""
import copy

import numpy as np
import torch
from torch import nn

from npcnn.architectures import get_spec

from .networks import forward_capturing, named_layers

RULES = ("deconvnet", "guided", "saliency")


class _RuleReLUFunction(torch.autograd.Function):
    generate_vmap_rule = True  # so many starting signals can go down in one batched backward

    @staticmethod
    def forward(x, rule):
        return x.clamp(min=0)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, rule = inputs
        ctx.save_for_backward(x)
        ctx.rule = rule

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if ctx.rule == "deconvnet":
            return g.clamp(min=0), None
        if ctx.rule == "guided":
            return g.clamp(min=0) * (x > 0), None
        return g * (x > 0), None


class RuleReLU(nn.Module):
    """A ReLU whose backward follows ``rule`` (see the module docstring)."""

    def __init__(self, rule):
        super().__init__()
        self.rule = rule

    def forward(self, x):
        return _RuleReLUFunction.apply(x, self.rule)


def with_relu_rule(module, rule):
    """A copy of ``module`` with every ReLU's backward following ``rule``."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    clone = copy.deepcopy(module).eval()
    for name, child in list(named_layers(clone).items()):
        if isinstance(child, nn.ReLU):
            parent = clone.get_submodule(name.rpartition(".")[0]) if "." in name else clone
            setattr(parent, name.rpartition(".")[2], RuleReLU(rule))
    return clone


def starting_signal(act, channel, select):
    """The activation of one channel with every other activation of the layer
    zeroed: the whole map (``"map"``) or only its strongest unit (``"max"``),
    per image. The signal is the activation itself, not 1."""
    signal = torch.zeros_like(act)
    if select == "map":
        signal[:, channel] = act[:, channel]
    elif select == "max":
        width = act.shape[3]
        best = act[:, channel].reshape(len(act), -1).argmax(dim=1)  # (N,) first maximum
        rows, h, w = torch.arange(len(act)), best // width, best % width
        signal[rows, channel, h, w] = act[rows, channel, h, w]
    else:
        raise ValueError(f"select must be 'map' or 'max', got {select!r}")
    return signal


class ReferenceDeconvnet:
    """A torch network whose ReLUs follow ``rule`` on the way down (a copy;
    the given module is untouched), ready to project many channels."""

    def __init__(self, module, rule="deconvnet"):
        self.net = with_relu_rule(module, rule)
        self.layers = named_layers(self.net)
        self.aliases = get_spec(module.arch).aliases if hasattr(module, "arch") else {}

    def project(self, x, layer, channels, select="map"):
        """(K, N, C, H, W): one forward pass, then one autograd backward per
        channel of ``channels``, each starting from that channel's signal."""
        name = self.aliases.get(layer, layer)
        if name not in self.layers:  # named as the caller named it
            raise ValueError(f"unknown layer {layer!r}; valid layers: {', '.join(self.layers)}")
        xt = torch.tensor(np.asarray(x), requires_grad=True)
        _, act = forward_capturing(self.net, xt, name)
        if act.dim() != 4:
            raise ValueError(f"layer {layer!r} has output shape {tuple(act.shape)}: only conv, "
                             f"ReLU and pooling outputs (N, C, H, W) can be projected")
        for channel in channels:
            if not 0 <= channel < act.shape[1]:
                raise ValueError(f"channel {channel} is out of range for layer {layer!r} with "
                                 f"{act.shape[1]} channels")
        signals = torch.stack([starting_signal(act.detach(), c, select) for c in channels])  # (K, N, ...)
        # one backward for all K signals (vmap over the first dimension)
        (grad,) = torch.autograd.grad(act, xt, signals, is_grads_batched=True)
        return grad.numpy()


def project_reference(module, x, layer, channel, select="map", rule="deconvnet"):
    """Project one channel of ``layer`` down to the input, per image.

    ``module``: a torch twin from ``bridge.torch_model``; ``x``: numpy
    (N, C, H, W); ``layer``: a layer name (or alias) of the network.
    Returns a numpy array shaped like ``x``.
    """
    return ReferenceDeconvnet(module, rule).project(x, layer, [channel], select)[0]
