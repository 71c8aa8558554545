"""Weight files: our training checkpoints, plain state_dicts (torchvision's
``vgg16-397923af.pth``, the torch hub cache, anything with the same keys),
and npcnn's own ``.npz``.

A checkpoint written by ``save_checkpoint`` is a dict
``{"state_dict": {key: tensor}, "meta": {...}}`` with the architecture,
dataset, input normalisation, epochs, test accuracy and torch version in
``meta``. Files are read with ``torch.load(..., weights_only=True)``: a file
that needs arbitrary code to unpickle is refused, never run.
"""
import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch

import npcnn
from npcnn.atomic import atomic_path

from .networks import torch_model

HUB_CACHE = Path(torch.hub.get_dir()) / "checkpoints"

# torchvision's published files, found in the torch hub cache by load_pretrained()
TORCHVISION_FILES = {"vgg16": "vgg16-397923af.pth", "alexnet": "alexnet-owt-7be5be79.pth"}


def save_checkpoint(path, module, **meta):
    """Write ``module``'s weights and ``meta`` atomically (temp file + rename)."""
    # str(): torch.__version__ is a TorchVersion, which weights_only loading refuses
    meta = {"arch": module.arch, "torch_version": str(torch.__version__), **meta}
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"state_dict": state, "meta": meta}, tmp)
    return Path(path)


def read_checkpoint(path):
    """``(state_dict of tensors, meta dict)`` from a checkpoint or a plain
    state_dict file. Clear errors for missing, corrupt and unsafe files."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's message is a page long; the line naming the refused global says it all
        why = next((line.strip() for line in str(err).splitlines() if "Unsupported global" in line), "")
        why = why.split(" was not an allowed global")[0].replace("WeightsUnpickler error: ", "")
        raise ValueError(f"{path}: refused: the file needs arbitrary code to unpickle, and npcnn "
                         f"loads weights only (torch.load weights_only=True): {why}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"{path}: not a readable torch file (truncated or corrupt?): {first}") from None
    meta = {}
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        meta = dict(obj.get("meta") or {})
        obj = obj["state_dict"]
    elif isinstance(obj, dict) and isinstance(obj.get("model_state_dict"), dict):
        obj = obj["model_state_dict"]
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise ValueError(f"{path}: holds no state_dict (a dict of tensors)")
    # nn.DataParallel saves every key under "module."
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj, meta


def infer_arch(state):
    """The architecture whose keys and shapes match ``state``, or None."""
    for name, spec in npcnn.SPECS.items():
        # every conv and linear layer of the specs has a weight and a bias
        keys = {f"{layer}.{p}" for layer, kind, _ in spec.layers
                if kind in ("conv2d", "linear") for p in ("weight", "bias")}
        if keys == set(state):
            return name
    return None


def _resolve_arch(path, state, meta, arch):
    recorded = meta.get("arch")
    if arch and recorded and arch != recorded:
        raise ValueError(f"{path}: is a {recorded} checkpoint, not {arch}")
    arch = arch or recorded or infer_arch(state)
    if arch is None:
        raise ValueError(f"{path}: cannot tell the architecture from its keys "
                         f"({len(state)} tensors, first {next(iter(state))!r}); pass arch=")
    return arch


def load(path, arch=None, backend="numba"):
    """An ``npcnn.Model`` from a weight file.

    ``.npz``: npcnn's own format. Anything else is read by torch as a
    checkpoint or a plain state_dict; the architecture comes from ``arch=``,
    the checkpoint's metadata, or the keys. Loading is strict: a missing or
    unexpected key, or a shape that differs, is an error naming it.
    The checkpoint's metadata is kept in ``model.meta``.
    """
    if str(path).endswith(".npz"):
        return npcnn.load(path, arch=arch, backend=backend)
    state, meta = read_checkpoint(path)
    arch = _resolve_arch(path, state, meta, arch)
    arrays = {k: v.detach().cpu().numpy() for k, v in state.items()}
    dtypes = {a.dtype for a in arrays.values()}
    dtype = np.float64 if dtypes == {np.dtype(np.float64)} else np.float32
    model = npcnn.build(arch, dtype=dtype, backend=backend)
    try:
        model.load_state_dict({k: a.astype(dtype, copy=False) for k, a in arrays.items()})
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    model.meta = meta
    return model


def load_module(path, arch=None, device="cpu"):
    """The torch module (eval mode) with the weights of a file; strict, like ``load``."""
    state, meta = read_checkpoint(path)
    arch = _resolve_arch(path, state, meta, arch)
    module = torch_model(arch)
    own = module.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"{path}: load_state_dict ({arch}): missing keys {missing}, "
                         f"unexpected keys {unexpected}")
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise ValueError(f"{path}: load_state_dict ({arch}): {key} has shape "
                             f"{tuple(value.shape)} in the file but {tuple(own[key].shape)} in the model")
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    module.meta = meta
    return module.to(device)


def load_pretrained(arch, weights=None, device="cpu"):
    """AlexNet or VGG16 with torchvision's weights: from ``weights`` if given,
    else from the torch hub cache (``~/.cache/torch/hub/checkpoints``).
    Nothing is downloaded: a missing file is an error saying where to put it."""
    path = Path(weights) if weights else HUB_CACHE / TORCHVISION_FILES[arch]
    if not path.is_file():
        raise ValueError(f"{path}: not found; put torchvision's {TORCHVISION_FILES.get(arch, arch)} "
                         f"there or pass its path")
    return load_module(path, arch=arch, device=device)
