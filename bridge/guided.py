"""Guided backpropagation (Springenberg et al. 2015, "Striving for
Simplicity"): the gradient of the class score with every ReLU's backward
rule changed so that only positive signals pass.

At a ReLU y = max(x, 0), with R the signal arriving from above:

    gradient        R * [x > 0]
    deconvnet       max(R, 0)                (Zeiler & Fergus; npcnn.deconv)
    guided          max(R, 0) * [x > 0]      (both masks)

The ReLU modules of the network (``nn.ReLU``, in place or not) are
switched to the guided rule for the duration of the call by forward hooks
that route their output through the reference deconvnet's rule function
(``bridge.deconv_reference``); the network itself is neither copied (a
VGG16 on a GPU would need its weights twice) nor changed. ReLUs applied as functions inside a
module's forward are not reached.
"""
import contextlib

import torch
from torch import nn

from .deconv_reference import RuleReLUFunction
from .scores import as_targets, check_input, chunks, score_gradient


@contextlib.contextmanager
def guided_relus(module):
    """Within the block, every ``nn.ReLU`` of ``module`` backpropagates by the guided rule."""
    # the ReLU's output is itself rectified, so passing it through once more
    # changes no value and gives autograd the guided backward (an in-place
    # ReLU's input is its output, which this covers too)
    hooks = [m.register_forward_hook(lambda _m, _i, out: RuleReLUFunction.apply(out, "guided"))
             for m in module.modules() if isinstance(m, nn.ReLU)]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


def guided_backprop(module, x, target, batch_size=None):
    """The guided-backpropagation map of the class score, shaped like x, on
    x's device and dtype; target: one class for every image or one per image."""
    check_input(x, "guided_backprop")
    target = as_targets(target, len(x), x.device)
    with guided_relus(module):
        return torch.cat([score_gradient(module, x[s], target[s]) for s in chunks(len(x), batch_size)])
