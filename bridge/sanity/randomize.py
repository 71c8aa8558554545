"""Model randomisation (Adebayo et al. 2018): re-initialise a network's
layers with the architecture's own initialiser, each layer's
``reset_parameters()`` (for torch's Conv2d and Linear: Kaiming-uniform
weights, a = sqrt(5), and uniform biases in +-1/sqrt(fan_in)), and see
whether a method's maps change.

    cascading    step k re-initialises the k layers nearest the logits
                 (step 0: the trained network; the last step: every layer)
    independent  step k re-initialises the k-th layer from the top alone,
                 every other layer trained

Each layer's random weights come from a seed made of the run's seed and the
layer's name, so a layer gets the same random weights in both modes and at
every step, whatever else is randomised. They are drawn on the CPU (the
same on every device) inside ``torch.random.fork_rng``: the caller's
random state is left as it was. The given module is never changed; each
step is a copy.
"""
import copy
import zlib

import numpy as np
import torch

from ..networks import named_layers

MODES = ("cascading", "independent")


def parameter_layers(module):
    """The names of the layers with weights (conv, linear), from the logits down."""
    return [name for name, m in reversed(named_layers(module).items())
            if any(True for _ in m.parameters(recurse=False)) and hasattr(m, "reset_parameters")]


def layer_seed(seed, name):
    """A torch seed from the run's seed and the layer's name."""
    state = np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]).generate_state(2, np.uint32)
    return int(state[0]) << 32 | int(state[1])


def randomized(module, layers, seed):
    """A copy of ``module`` (eval mode, on its device and dtype) with the
    parameters of ``layers`` re-initialised, each from ``layer_seed(seed, name)``."""
    parameter = next(module.parameters())
    copy_ = copy.deepcopy(module).cpu()
    found = named_layers(copy_)
    for name in layers:
        if name not in found:
            raise ValueError(f"randomized: no layer {name!r}; layers with weights: "
                             f"{', '.join(parameter_layers(module))}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(layer_seed(seed, name))
            found[name].reset_parameters()
    return copy_.to(device=parameter.device).eval()


def steps(module, mode):
    """[(label, layers re-initialised)] of a mode: cascading from "trained"
    (nothing) to every layer, one more from the top at each step; independent
    one layer at a time, from the top."""
    top_down = parameter_layers(module)
    if mode == "cascading":
        return [("trained", ())] + [(name, tuple(top_down[:k + 1])) for k, name in enumerate(top_down)]
    if mode == "independent":
        return [(name, (name,)) for name in top_down]
    raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
