"""Copy weights between torch modules and npcnn models.

Both sides use the same state_dict keys, so converting is copying, with
every key and shape checked.
"""
import numpy as np
import torch

import npcnn

from .networks import torch_model

_NP_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def from_torch(module, arch=None, backend="numba"):
    """An ``npcnn.Model`` with the weights of a torch module built by
    ``torch_model`` (or any module with the same state_dict keys)."""
    arch = arch or getattr(module, "arch", None)
    if arch is None:
        raise ValueError("from_torch: the module has no .arch; pass arch='lenet5' (or another)")
    state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    dtype = next(iter(state.values())).dtype
    model = npcnn.Model.from_spec(arch, dtype=dtype, backend=backend, initialise=False)
    return model.load_state_dict(state)    # strict: every parameter comes from the module


def to_torch(model):
    """The torch twin of an ``npcnn.Model``, with a copy of its weights."""
    dtype = {np.dtype(v): k for k, v in _NP_DTYPES.items()}[np.dtype(model.dtype)]
    module = torch_model(model.arch, dtype=dtype)
    state = {k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()}
    module.load_state_dict(state, strict=True)
    return module
