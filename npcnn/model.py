"""``npcnn.Model``: a named sequential network that records what it computes.

    model = npcnn.build("lenet5", seed=0)
    y = model(x)                                   # (N, 10)
    y, acts = model.forward(x, record=True)
    acts["conv_1"]                                 # (N, 6, 28, 28), every layer by name
    acts.switches["pool_1"]                        # (N, 6, 14, 14) int64
    model.save("lenet5.npz"); npcnn.load("lenet5.npz")

Parameters live in the layers as plain arrays and are reached by torch's
state_dict keys (``conv_1.weight``), so the bridge only copies.
"""
import json

import numpy as np

from . import checks
from . import functional as F
from .architectures import Spec, get_spec
from .atomic import atomic_path
from .layers import make_layer
from .weight_files import read_metadata, read_npz

FORMAT_KEY = "__npcnn__"  # npz entry holding the metadata as a JSON string


class Activations(dict):
    """Every layer's output keyed by layer name, in forward order (or only
    the layers asked for with ``forward(..., keep=)``).

    ``switches`` maps each max-pool layer's name to its int64 switches,
    ``shapes`` every layer's output shape (kept or not), and ``input`` is
    the array the network was given.
    """

    def __init__(self, input):
        super().__init__()
        self.input = input
        self.switches = {}
        self.shapes = {}


class _HookHandle:
    def __init__(self, hooks, name, hook):
        self._hooks, self._name, self._hook = hooks, name, hook

    def remove(self):
        if self._hook in self._hooks.get(self._name, []):
            self._hooks[self._name].remove(self._hook)


class Model:
    """An ordered list of named layers.

    Args:
        layers: iterable of ``(name, layer)``.
        arch: the architecture's name, stored with saved weights.
        aliases: readable names for layers (``{"conv5_3": "features.28"}``).
        backend: ``"numba"`` (default) or ``"numpy"``, used by every layer.
        meta: facts about the weights (dataset, accuracy, normalisation),
            saved with them.
    """

    def __init__(self, layers, arch=None, aliases=None, backend="numba", meta=None):
        self.layers = dict(layers)
        self.arch = arch
        self.meta = dict(meta or {})  # where the weights came from: dataset, accuracy, ...
        self.aliases = dict(aliases or {})
        self.backend = checks.backend("Model", backend)   # refused now, not at the first forward
        self._hooks = {}
        self._last_plan = None  # (what it was made for, the plan): see plan()

    @classmethod
    def from_spec(cls, spec, dtype=np.float32, seed=None, backend="numba", initialise=True):
        """Build a network from its spec, initialised as torch initialises it:
        weights and biases uniform in +-1/sqrt(fan_in), where fan_in counts the
        inputs one output unit sums (C_in/groups * kH * kW for a conv). A
        ``seed`` makes it repeatable; the numbers differ from torch's own
        random stream.
        ``initialise=False`` leaves the parameters at zero, for a loader that
        fills every one of them next (VGG16's 138 M draws take a second or two)."""
        spec = spec if isinstance(spec, Spec) else get_spec(spec)
        dtype = _float_dtype(f"build ({spec.name})", dtype)
        rng = np.random.default_rng(seed)
        layers = []
        for name, kind, arguments in spec.layers:
            layer = make_layer(kind, arguments, dtype=dtype)
            for value in layer.params.values() if initialise else ():
                bound = 1.0 / np.sqrt(layer.fan_in)
                value[...] = rng.uniform(-bound, bound, size=value.shape)
            layers.append((name, layer))
        return cls(layers, arch=spec.name, aliases=spec.aliases, backend=backend)

    # -- names ---------------------------------------------------------------

    @property
    def layer_names(self):
        return list(self.layers)

    def resolve(self, name):
        """The layer name behind ``name`` (itself or an alias); a clear error
        listing the valid names otherwise."""
        if name in self.layers:
            return name
        if name in self.aliases:
            return self.aliases[name]
        valid = ", ".join(self.layer_names)
        extra = f" (aliases: {', '.join(self.aliases)})" if self.aliases else ""
        raise ValueError(f"unknown layer {name!r}; valid layers: {valid}{extra}")

    def __getitem__(self, name):
        return self.layers[self.resolve(name)]

    def __repr__(self):
        rows = "\n".join(f"  ({name}): {layer!r}" for name, layer in self.layers.items())
        return f"Model({self.arch or ''}\n{rows}\n)"

    # -- forward -------------------------------------------------------------

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x, record=False, until=None, keep=None):
        """Run the network on ``x`` (N, C, H, W).

        Returns the output, or ``(output, activations)`` with ``record=True``
        (an ``Activations``: every layer's output by name, the switches of
        every max-pool and every layer's output shape). ``until`` stops after
        that layer and returns its output. ``keep``: with ``record``, the
        name or names of the layers whose outputs to record (default: all;
        the switches and shapes are always recorded), which lets a conv whose
        output is not kept run with its ReLU as one op.
        """
        record = checks.boolean("forward", "record", record)   # "no" is truthy: it recorded
        stop = None if until is None else self.resolve(until)
        if isinstance(keep, str):
            keep = [keep]
        kept = None if keep is None or not record else {self.resolve(name) for name in keep}
        acts = Activations(x) if record else None
        given = x
        for name, layer, how in self.plan(record, stop, kept):
            try:
                out, switches = self._step(layer, how, x, given, record)
            except ValueError as err:
                raise ValueError(f"layer {name} ({layer.kind}): {err}") from None
            for hook in self._hooks.get(name, ()):
                hook(name, x, out)
            if record:
                acts.shapes[name] = out.shape
                if switches is not None:
                    acts.switches[name] = switches
                if kept is None or name in kept:
                    acts[name] = out
            x = out
        return (x, acts) if record else x

    def plan(self, record=False, stop=None, kept=None):
        """The forward pass as ``(name, layer, how)`` steps, up to ``stop``.

        ``how`` names the one thing done differently from ``layer.forward``;
        every optimisation of the forward pass is decided here:

        - "conv+relu": a conv followed by a ReLU runs as one op,
          ``F.conv2d_relu``, when nothing needs the conv's own output (no
          hooks, not the last layer run, not kept by a recording) ...
        - "done by the conv": ... and that ReLU then has nothing left to do.
        - "relu in place": when only the output is wanted (no recording, no
          hooks), a ReLU overwrites the array the layer before it made, as
          torch's ``inplace=True``: a fresh array is page-faulted in on every
          call, which costs more than the ReLU. Never the caller's input.
        - "with switches": a max-pool in a recording also returns its
          switches (the deconvnet's unpooling needs them).
        - "run": ``layer.forward`` as it is.

        The last plan is kept, with what it was made for (the arguments,
        whether hooks are registered, the layers themselves), and returned
        again while that is the same: a forward at batch 1 is mostly Python.
        """
        hooked = any(self._hooks.values())
        items = tuple(self.layers.items())
        made_for = (record, stop, None if kept is None else frozenset(kept), hooked, items)
        last = self._last_plan            # read once: another thread may replace it
        if last is not None and last[0] == made_for:
            return last[1]
        if stop is not None:
            items = items[:[name for name, _ in items].index(stop) + 1]
        steps, fused = [], False
        for k, (name, layer) in enumerate(items):
            next_kind = items[k + 1][1].kind if k + 1 < len(items) else None
            if fused:
                how, fused = "done by the conv", False
            elif (layer.kind == "conv2d" and next_kind == "relu" and not hooked
                  and (not record or (kept is not None and name not in kept))):
                how, fused = "conv+relu", True
            elif layer.kind == "relu" and not record and not hooked:
                how = "relu in place"
            elif layer.kind == "max_pool2d" and record:
                how = "with switches"
            else:
                how = "run"
            steps.append((name, layer, how))
        steps = tuple(steps)
        self._last_plan = (made_for, steps)
        return steps

    def _step(self, layer, how, x, given, record):
        """One step of the plan: (output, switches or None)."""
        if how == "done by the conv":
            return x, None
        if how == "conv+relu":
            return layer.forward(x, self.backend, relu=True), None
        if how == "relu in place" and not np.may_share_memory(x, given):
            return F.relu(x, inplace=True, backend=self.backend), None
        if how == "with switches":
            return layer.forward(x, self.backend, return_indices=True)
        if layer.kind == "max_pool2d":
            return layer.forward(x, self.backend, return_indices=False), None
        return layer.forward(x, self.backend), None

    def register_forward_hook(self, name, hook):
        """Call ``hook(name, input, output)`` after layer ``name`` runs, as
        torch's forward hooks do; returns a handle with ``remove()``."""
        name = self.resolve(name)
        self._hooks.setdefault(name, []).append(hook)
        return _HookHandle(self._hooks, name, hook)

    def output_shapes(self, input_shape):
        """``{layer name: output shape}`` for one input shape (N, C, H, W),
        computed by a forward pass on zeros."""
        _, acts = self.forward(np.zeros(input_shape, dtype=self.dtype), record=True, keep=[])
        return dict(acts.shapes)

    # -- parameters ------------------------------------------------------------

    @property
    def dtype(self):
        for layer in self.layers.values():
            for value in layer.params.values():
                return value.dtype
        return np.dtype(np.float32)

    def state_dict(self):
        """``{"<layer>.<param>": array}``, torch's key convention; the arrays
        are the model's own (not copies)."""
        return {f"{name}.{key}": value
                for name, layer in self.layers.items() for key, value in layer.params.items()}

    def load_state_dict(self, state, strict=True):
        """Copy arrays into the parameters. Missing or unexpected keys (with
        ``strict``), any shape mismatch and any value that is not a finite
        real number in the model's dtype raise an error naming the key, and
        leave every parameter as it was."""
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if strict and (missing or unexpected):
            raise ValueError(f"load_state_dict ({self.arch}): missing keys {missing}, "
                             f"unexpected keys {unexpected}")
        checked = {}   # every value is checked before any is copied: no half-loaded model
        for key, target in own.items():
            if key not in state:
                continue
            value = np.asarray(state[key])
            if value.dtype.kind not in "biuf":   # complex would lose its imaginary part; object, anything
                raise ValueError(f"load_state_dict ({self.arch}): {key} holds {value.dtype} values, "
                                 f"not real numbers (shape {value.shape})")
            if value.shape != target.shape:
                raise ValueError(f"load_state_dict ({self.arch}): {key} has shape {value.shape} "
                                 f"in the file but {target.shape} in the model{self._layout(key)}")
            # tested in the model's dtype (a float64 1e300 is a float32 inf), through
            # a copy of one parameter at a time: kept for all, VGG16's would take 0.5 GB more
            with np.errstate(over="ignore", invalid="ignore"):   # reported just below
                if not np.isfinite(value.astype(target.dtype, copy=False)).all():
                    raise ValueError(f"load_state_dict ({self.arch}): {key} holds non-finite values "
                                     f"(NaN or inf) in {target.dtype}, shape {value.shape}")
            checked[key] = value
        for key, value in checked.items():
            own[key][...] = value
        return self

    def _layout(self, key):
        """For a grouped conv's weight, the layout behind its shape: a file
        from a network without the groups has C_in where this has C_in/groups."""
        name, _, param = key.rpartition(".")
        layer = self.layers[name]
        if layer.kind != "conv2d" or param != "weight" or layer.groups == 1:
            return ""
        return f" (weight (C_out, C_in/groups, kH, kW) with groups={layer.groups})"

    def astype(self, dtype):
        """Convert every parameter to ``dtype`` in place (float32 or float64)."""
        dtype = _float_dtype(f"astype ({self.arch})", dtype)
        for layer in self.layers.values():
            for key, value in layer.params.items():
                layer.params[key] = value.astype(dtype)
        return self

    def num_parameters(self):
        return sum(v.size for v in self.state_dict().values())

    def summary(self, input_shape=None):
        """Rows of (layer, kind, output shape, parameter count)."""
        shapes = self.output_shapes(input_shape) if input_shape else {}
        return [(name, layer.kind, shapes.get(name), sum(v.size for v in layer.params.values()))
                for name, layer in self.layers.items()]

    # -- files -----------------------------------------------------------------

    def save(self, path):
        """Write the weights and the architecture's name to an ``.npz`` file,
        atomically: a temp file in the same folder, renamed when complete."""
        meta = json.dumps({"arch": self.arch, "format": 1, "meta": self.meta})
        arrays = {FORMAT_KEY: np.array(meta), **self.state_dict()}
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path, arch=None, backend="numba"):
        """A model from an ``.npz`` written by ``save`` (never unpickles).

        Whatever is wrong with the file is a ValueError that starts with its
        path: not a regular file (a FIFO would block np.load), not an npz or
        one that unpacks to gigabytes (``weight_files``), metadata that is
        not a JSON object, weights that are not float32 or float64 arrays of
        the architecture's shapes, or not finite (``load_state_dict``)."""
        path, arrays = read_npz(path, "npcnn weight file")
        meta = read_metadata(path, arrays.pop(FORMAT_KEY), FORMAT_KEY) if FORMAT_KEY in arrays else {}
        arch = arch or meta.get("arch")
        if arch is None:
            raise ValueError(f"{path}: no architecture recorded; pass arch=")
        dtypes = {a.dtype for a in arrays.values()}
        if not dtypes <= {np.dtype(np.float32), np.dtype(np.float64)} or len(dtypes) > 1:
            raise ValueError(f"{path}: holds {' and '.join(sorted(map(str, dtypes)))} weights; npcnn "
                             f"computes in float32 or float64, one of them for every weight")
        dtype = next(iter(dtypes)) if dtypes else np.float32
        model = cls.from_spec(arch, dtype=dtype, backend=backend, initialise=False)
        try:
            model.load_state_dict(arrays)     # strict: every parameter comes from the file
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
        model.meta = meta.get("meta", {})
        return model


def _float_dtype(what, dtype):
    """``dtype`` as numpy's float32 or float64, the only ones the ops take:
    refused here, by name, rather than at the first forward."""
    try:
        dt = None if dtype is None else np.dtype(dtype)   # (numpy reads None as float64)
    except TypeError:
        dt = None
    if dt is None or dt.type not in (np.float32, np.float64):
        raise ValueError(f"{what}: dtype must be float32 or float64, got {dtype!r}")
    return dt.type


def build(arch, dtype=np.float32, seed=None, backend="numba"):
    """A freshly initialised ``Model`` of a spec's name (``npcnn.SPECS``) or a ``Spec``."""
    return Model.from_spec(arch, dtype=dtype, seed=seed, backend=backend)


load = Model.load
