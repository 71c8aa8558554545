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
import re
from pathlib import Path

import numpy as np
import torch

import npcnn
from npcnn.atomic import atomic_path
from npcnn.data.files import readable_file
from npcnn.weight_files import check_archive

from .networks import torch_model

HUB_CACHE = Path(torch.hub.get_dir()) / "checkpoints"

# torchvision's published files, found in the torch hub cache by load_pretrained()
TORCHVISION_FILES = {"vgg16": "vgg16-397923af.pth", "alexnet": "alexnet-owt-7be5be79.pth"}


def save_checkpoint(path, module, **meta):
    """Write ``module``'s weights and ``meta`` atomically (temp file + rename)."""
    # str(): torch.__version__ is a TorchVersion, which weights_only loading refuses
    meta = {"arch": module.arch, "torch_version": str(torch.__version__), **meta}
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    _check_finite(path, state)    # a NaN checkpoint would only be refused when read back
    with atomic_path(path) as tmp:
        torch.save({"state_dict": state, "meta": meta}, tmp)
    return Path(path)


def read_checkpoint(path):
    """``(state_dict of tensors, meta dict)`` from a checkpoint or a plain
    state_dict file. Clear errors for missing, corrupt and unsafe files."""
    path = readable_file(path, "checkpoint")     # no FIFO, device or folder: they block or fail late
    check_archive(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        refused = _refused_global(err)
        if refused:
            raise ValueError(f"{path}: refused: the file needs arbitrary code to unpickle, and npcnn "
                             f"loads weights only (torch.load weights_only=True): {refused}") from None
        raise ValueError(f"{path}: not a torch file (corrupt, or another format): "
                         f"{_unpickler_detail(err)}") from None
    except Exception as err:  # noqa: BLE001 - any failure to parse hostile bytes is "unreadable"
        # torch.load on arbitrary bytes raises RuntimeError, EOFError, BadZipFile, OSError,
        # and from its unpickler KeyError or IndexError: all mean the same to the user
        raise ValueError(f"{path}: not a readable torch file (truncated or corrupt?): "
                         f"{type(err).__name__}: {_first_line(err)}") from None
    meta = {}
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        meta = obj.get("meta")
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise ValueError(f"{path}: its meta is a {type(meta).__name__}, not a dict")
        obj = obj["state_dict"]
    elif isinstance(obj, dict) and isinstance(obj.get("model_state_dict"), dict):
        obj = obj["model_state_dict"]
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise ValueError(f"{path}: holds no state_dict (a dict of tensors)")
    # nn.DataParallel saves every key under "module."
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    _check_finite(path, obj)
    return obj, meta


def _refused_global(err):
    """The line of torch's page-long refusal that names the refused global
    ("Unsupported global: GLOBAL posix.system", or in torch 2.6+ "Trying to
    load unsupported GLOBAL posix.system ..."), found whatever its case;
    None when the unpickler failed for another reason (garbage bytes)."""
    for line in str(err).splitlines():
        if "unsupported global" in line.lower():
            line = re.sub(r"^(WeightsUnpickler error: |Trying to load )", "", line.strip())
            return line.split(" was not an allowed global")[0]
    return None


def _unpickler_detail(err):
    """What torch's unpickler said after "WeightsUnpickler error:" (e.g.
    "Unsupported operand 80"), rather than its page of advice."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if "WeightsUnpickler error:" in line:
            rest = line.split("WeightsUnpickler error:", 1)[1].strip()
            return rest or (lines[i + 1] if i + 1 < len(lines) else "")
    return lines[0] if lines else type(err).__name__


def _check_finite(path, state):
    """Every tensor a dense floating-point one without NaN or inf: such
    weights compute NaN and print "digit 0 (nan%)" rather than fail."""
    for key, value in state.items():
        if value.layout != torch.strided or not value.is_floating_point():
            raise ValueError(f"{path}: {key} is a {value.dtype} tensor ({value.layout}); weights are "
                             f"dense floating point")
        if not torch.isfinite(value).all():
            raise ValueError(f"{path}: {key} holds non-finite values (NaN or inf), shape "
                             f"{tuple(value.shape)}")


def _first_line(err):
    """The first line of an error, without torch's advice to load unsafely
    ("In PyTorch 2.6, we changed the default ... weights_only ...")."""
    text = str(err).strip()
    first = text.splitlines()[0] if text else type(err).__name__
    return first.split(" In PyTorch 2.6, we changed")[0]


def spec_keys(arch):
    """The state_dict keys of ``arch``: every conv and linear layer of the
    specs has a weight and a bias."""
    return {f"{layer}.{p}" for layer, kind, _ in npcnn.SPECS[arch].layers
            if kind in ("conv2d", "linear") for p in ("weight", "bias")}


def infer_arch(state):
    """The architecture whose keys match ``state``, or None."""
    return next((name for name in npcnn.SPECS if spec_keys(name) == set(state)), None)


def _resolve_arch(path, state, meta, arch):
    """The architecture to build, its keys checked against the file's
    before anything is built (VGG16 is 138 M parameters to allocate)."""
    recorded = meta.get("arch")
    if recorded is not None and (not isinstance(recorded, str) or recorded not in npcnn.SPECS):
        raise ValueError(f"{path}: its meta names the architecture {recorded!r}, not one of "
                         f"{', '.join(npcnn.SPECS)}")
    if arch and recorded and arch != recorded:
        raise ValueError(f"{path}: is a {recorded} checkpoint, not {arch}")
    arch = arch or recorded or infer_arch(state)
    if arch is None:
        raise ValueError(f"{path}: cannot tell the architecture from its keys "
                         f"({len(state)} tensors, first {next(iter(state))!r}); pass arch=")
    if arch not in npcnn.SPECS:
        raise ValueError(f"{path}: arch must be one of {', '.join(npcnn.SPECS)}, got {arch!r}")
    own = spec_keys(arch)
    missing, unexpected = sorted(own - set(state)), sorted(set(state) - own)
    if missing or unexpected:
        raise ValueError(f"{path}: load_state_dict ({arch}): missing keys {missing}, "
                         f"unexpected keys {unexpected}")
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
        return npcnn.load(path, arch=arch, backend=backend)     # the engine's loader checks the file
    state, meta = read_checkpoint(path)
    arch = _resolve_arch(path, state, meta, arch)
    arrays = {k: v.detach().cpu().numpy() for k, v in state.items()}
    dtypes = {a.dtype for a in arrays.values()}
    dtype = np.float64 if dtypes == {np.dtype(np.float64)} else np.float32
    model = npcnn.Model.from_spec(arch, dtype=dtype, backend=backend, initialise=False)   # the file fills it
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
    if arch not in TORCHVISION_FILES:
        raise ValueError(f"load_pretrained: arch must be one of {', '.join(TORCHVISION_FILES)}, got {arch!r}")
    path = Path(weights) if weights else HUB_CACHE / TORCHVISION_FILES[arch]
    if not path.exists():        # anything else there (a folder, a FIFO) is read_checkpoint's to name
        raise ValueError(f"{path}: not found; put torchvision's {TORCHVISION_FILES.get(arch, arch)} "
                         f"there or pass its path")
    return load_module(path, arch=arch, device=device)
