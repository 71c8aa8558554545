"""npcnn: the layers of a CNN in readable NumPy and fast Numba, proven equal to PyTorch.

    import npcnn
    import npcnn.functional as F          # mirrors torch.nn.functional
    model = npcnn.build("lenet5", seed=0)  # or npcnn.load("weights.npz")
    y, acts = model.forward(x, record=True)

The engine depends on NumPy and Numba only; the torch side is ``bridge``.
"""
from . import analysis, data, deconv, functional
from .architectures import SPECS, Spec, get_spec
from .model import Activations, Model, build, load

__all__ = ["functional", "deconv", "analysis", "data", "Model", "Activations", "build", "load", "Spec", "SPECS", "get_spec"]
__version__ = "0.1.0"
