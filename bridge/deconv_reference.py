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

from npcnn import checks

from .networks import forward_to, named_layers, resolve_layer

RULES = ("deconvnet", "guided", "saliency")
_BATCH_BUDGET = 512 * 2**20  # bytes of recorded activations per batch of copies


class RuleReLUFunction(torch.autograd.Function):
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
        return RuleReLUFunction.apply(x, self.rule)


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
        rows, h, w = torch.arange(len(act), device=act.device), best // width, best % width
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

    def project(self, x, layer, channels, select="map"):
        """(K, N, C, H, W): the projection of every image for each channel of
        ``channels``, each from that channel's own starting signal.

        The K signals go down as one batch: the images are repeated once per
        signal (K*N copies, forward up to ``layer`` only) and one ordinary
        autograd backward takes all K*N signals. Each copy records the same
        switches and ReLU inputs, so this is K separate backward passes;
        batched so, torch runs its usual batched kernels (vmap over the
        gradients was several times slower on VGG16). The first batch holds
        one signal and measures what a copy records; the later ones are as
        large as ``_BATCH_BUDGET`` allows."""
        name = resolve_layer(self.net, layer)
        xt = torch.tensor(np.asarray(x))
        # as npcnn's: int(2.7) or int("3") would project another map than asked
        channels = [checks.integer("ReferenceDeconvnet.project", "channel", c) for c in channels]
        out = np.empty((len(channels),) + tuple(xt.shape), dtype=xt.numpy().dtype)
        start, step = 0, 1
        while start < len(channels):
            chunk = channels[start:start + step]
            grad, recorded = self._down(xt, name, layer, chunk, channels, select)
            out[start:start + len(chunk)] = grad
            start += len(chunk)
            step = max(1, _BATCH_BUDGET // max(1, recorded))
        return out

    def _down(self, xt, name, layer, chunk, channels, select):
        """The projections of ``chunk`` (k, N, C, H, W), and the bytes that one
        signal's batch of N copies records on the way up and down."""
        k, N = len(chunk), len(xt)
        recorded = [0]

        def count(_m, _i, output):
            recorded[0] += output.numel() * output.element_size()

        handles = [m.register_forward_hook(count) for m in self.layers.values()]
        copies = xt.repeat(k, 1, 1, 1).requires_grad_(True)                  # (k*N, C, H, W)
        try:
            act_k = forward_to(self.net, copies, name)                       # (k*N, ...)
        finally:
            for h in handles:
                h.remove()
        act = act_k[:N].detach()                                              # every copy records the same
        if act.dim() != 4:
            raise ValueError(f"layer {layer!r} has output shape {tuple(act.shape)}: only conv, "
                             f"ReLU and pooling outputs (N, C, H, W) can be projected")
        for channel in channels:
            if not 0 <= channel < act.shape[1]:
                raise ValueError(f"channel {channel} is out of range for layer {layer!r} with "
                                 f"{act.shape[1]} channels")
        signals = torch.cat([starting_signal(act, c, select) for c in chunk])  # (k*N, ...), k-major
        (grad,) = torch.autograd.grad(act_k, copies, signals)
        # x2: the backward holds a gradient as large as each recorded output
        return grad.reshape((k,) + tuple(xt.shape)).numpy(), 2 * recorded[0] // k


def project_reference(module, x, layer, channel, select="map", rule="deconvnet"):
    """Project one channel of ``layer`` down to the input, per image.

    ``module``: a torch twin from ``bridge.torch_model``; ``x``: numpy
    (N, C, H, W); ``layer``: a layer name (or alias) of the network.
    Returns a numpy array shaped like ``x``.
    """
    return ReferenceDeconvnet(module, rule).project(x, layer, [channel], select)[0]
