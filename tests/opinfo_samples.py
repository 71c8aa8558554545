"""PyTorch's own sample inputs (the OpInfo corpus of
``torch.testing._internal.common_methods_invocations``) run through
``npcnn.functional`` and torch side by side.

``samples(op, dtype)`` lists the samples of one OpInfo; ``COMPARE[op](sample,
backend)`` calls npcnn with the sample's arguments exactly as the sample
calls torch (the same positions and keywords), translated to NumPy (a
tensor becomes its array, a ``torch.Size`` a tuple, a torch dtype a NumPy
one), and compares what it returns with torch's result through
``parity.check_op``, gradients too where npcnn has the backward. A
ValueError from the npcnn forward call is a refusal and comes out as
``Refused``; ``tests/test_opinfo.py`` holds the table of the refusals
expected. A refusal by a backward, once the forward computed, is a failure,
and so is a ValueError from anywhere else (torch, the comparison).

The samples are random (``make_tensor``): they are drawn under a fixed
torch seed, in a forked RNG so that the rest of the suite sees the same
global stream, and are the same on every run.
"""
import functools
import inspect
import math

import numpy as np
import torch
import torch.nn.functional as TF


def _import_torchs_test_internals():
    """torch's test-suite modules, imported without the one lasting change
    they make to the process: ``common_utils`` freezes ``torch.backends``'
    flags on import (``disable_global_flags``, for torch's own tests), and
    the rest of this suite trains, which sets cudnn's flags
    (``bridge.train``), and would then fail."""
    frozen = torch.backends.flags_frozen()
    from torch.testing._internal import common_methods_invocations, opinfo
    if not frozen:  # the switch disable_global_flags turned off, a global of torch.backends' functions
        torch.backends.flags_frozen.__globals__["__allow_nonbracketed_mutation_flag"] = True
    assert torch.backends.flags_frozen() == frozen
    return common_methods_invocations, opinfo.core


_common_methods_invocations, _opinfo_core = _import_torchs_test_internals()
SampleInput = _opinfo_core.SampleInput

import npcnn.functional as F
from parity import assert_close, check_op

# test id -> (OpInfo name, variant_test_name)
OPINFOS = {
    "conv2d": ("nn.functional.conv2d", ""),
    "conv_transpose2d": ("nn.functional.conv_transpose2d", ""),
    "max_pool2d": ("nn.functional.max_pool2d", ""),
    "max_unpool2d": ("nn.functional.max_unpool2d", ""),
    "max_unpool2d.grad": ("nn.functional.max_unpool2d", "grad"),
    "adaptive_avg_pool2d": ("nn.functional.adaptive_avg_pool2d", ""),
    "linear": ("nn.functional.linear", ""),
    "relu": ("nn.functional.relu", ""),
    "softmax": ("softmax", ""),
    "softmax.with_dtype": ("softmax", "with_dtype"),
    "log_softmax": ("log_softmax", ""),
    "log_softmax.with_dtype": ("log_softmax", "with_dtype"),
    "dropout": ("nn.functional.dropout", ""),
}

SEED = 0


class Refused(Exception):
    """npcnn's forward refused the sample: the message is its ValueError's
    (chained as the cause)."""


@functools.lru_cache(maxsize=None)
def _op_db():
    return {(o.name, o.variant_test_name): o for o in _common_methods_invocations.op_db}


@functools.lru_cache(maxsize=None)
def samples(op, dtype):
    """The OpInfo's samples of ``op`` (a key of OPINFOS) for a torch float
    dtype, as a tuple of SampleInput, drawn under torch seed SEED."""
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        return tuple(_op_db()[OPINFOS[op]].sample_inputs("cpu", dtype))


def describe(value):
    """A short text for a sample's argument: a tensor by shape and dtype."""
    if isinstance(value, torch.Tensor):
        layout = ("" if value.is_contiguous() else ", channels_last"
                  if value.is_contiguous(memory_format=torch.channels_last) else ", strided")
        return f"tensor{tuple(value.shape)}{str(value.dtype)[5:]}{layout}"
    if isinstance(value, torch.Size):
        return str(tuple(value))
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(describe(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={describe(v)}" for k, v in value.items()) + "}"
    return repr(value)


def describe_sample(sample):
    return f"input {describe(sample.input)}, args {describe(sample.args)}, kwargs {describe(sample.kwargs)}"


def to_numpy(value):
    """A sample's argument as npcnn takes it: arrays for tensors (the same
    strides: a channels_last tensor gives a non-contiguous array), tuples
    for torch.Size, NumPy dtypes for torch ones."""
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    if isinstance(value, torch.Size):
        return tuple(value)
    if isinstance(value, torch.dtype):
        return torch.empty((), dtype=value).numpy().dtype
    if isinstance(value, (tuple, list)):
        return type(value)(to_numpy(v) for v in value)
    return value


def _is_float_tensor(value):
    return isinstance(value, torch.Tensor) and value.is_floating_point()


class Call:
    """A sample's call, rebuilt around other arrays: its float tensors are
    the ``inputs`` that check_op hands, as arrays, to npcnn and, as leaf
    tensors, to torch; every other argument stays where the sample put it
    (npcnn's value translated by ``to_numpy``)."""

    def __init__(self, sample, function, backend):
        self.sample, self.function, self.backend = sample, function, backend
        bound = inspect.signature(function).bind(sample.input, *sample.args, **sample.kwargs)
        self.tensor_names = [k for k, v in bound.arguments.items() if _is_float_tensor(v)]
        self.inputs = tuple(to_numpy(v) for v in bound.arguments.values() if _is_float_tensor(v))
        bound.apply_defaults()  # for the backward: stride, padding, ... by name, npcnn's values
        self.named = {k: to_numpy(v) for k, v in bound.arguments.items()}

    def _rebuild(self, arrays, convert):
        arrays = iter(arrays)
        put = lambda v: next(arrays) if _is_float_tensor(v) else convert(v)  # noqa: E731
        s = self.sample
        return put(s.input), [put(v) for v in s.args], {k: put(v) for k, v in s.kwargs.items()}

    def ours(self, **extra):
        """npcnn's function on check_op's arrays, with ``backend=`` and
        ``extra`` (npcnn's keyword-only arguments) added."""
        def call(*arrays):
            x, args, kwargs = self._rebuild(arrays, to_numpy)
            try:
                return self.function(x, *args, **kwargs, backend=self.backend, **extra)
            except ValueError as e:
                raise Refused(str(e)) from e
        return call

    def theirs(self, function):
        def call(*tensors):
            x, args, kwargs = self._rebuild(tensors, lambda v: v)
            return function(x, *args, **kwargs)
        return call

    def arrays(self, arrays):
        """check_op's arrays by the names of npcnn's arguments."""
        return dict(zip(self.tensor_names, arrays))


def _must_compute(name, backward):
    """A backward's ValueError is a failure, not a refusal: the forward of
    the same sample computed."""
    def call(*a, **named):
        try:
            return backward(*a, **named)
        except ValueError as e:
            raise AssertionError(f"{name} refused a sample whose forward computed: {e}") from e
    return call


def _check(call, theirs, backward):
    """check_op with npcnn's backward (named arrays in, one gradient per
    float tensor out)."""
    backward = _must_compute(call.function.__name__ + "_backward", backward)
    grad = lambda g, *arrays: backward(g, **call.arrays(arrays))  # noqa: E731
    return check_op(call.ours(), call.theirs(theirs), call.inputs, backward=grad)


# ----------------------------------------------------------------------------
# one comparison per op; each raises Refused when npcnn's forward refuses


def _conv(op, sample, backend):
    """Output, and the gradients of input, weight and bias (where given)."""
    ours, backward_fn = getattr(F, op), getattr(F, op + "_backward")
    call = Call(sample, ours, backend)
    options = {k: v for k, v in call.named.items() if k not in ("input", "weight", "bias", "backend")}

    def backward(g, input, weight, bias=None):
        dx, dw, db = backward_fn(g, input, weight, **options, backend=backend)
        return (dx, dw) if bias is None else (dx, dw, db)

    _check(call, getattr(TF, op), backward)


def conv2d(sample, backend):
    _conv("conv2d", sample, backend)


def conv_transpose2d(sample, backend):
    _conv("conv_transpose2d", sample, backend)


def max_pool2d(sample, backend):
    """Values and switches (exactly); the gradient through npcnn's own
    switches (themselves compared with torch's) against torch's autograd.
    Then the same with the input rounded down to integers: OpInfo's draws
    are all distinct, so only ties (most windows here) test the rule that
    the first maximum in row-major window order wins, as in torch."""
    _max_pool2d(sample, backend)
    floored = SampleInput(torch.floor(sample.input), args=sample.args, kwargs=sample.kwargs)
    try:
        _max_pool2d(floored, backend)
    except AssertionError as e:
        raise AssertionError(f"with the input rounded down to integers (ties): {e}") from e


def _max_pool2d(sample, backend):
    call = Call(sample, F.max_pool2d, backend)
    options = {k: v for k, v in call.named.items() if k not in ("input", "backend")}
    options["return_indices"] = True

    def backward(g, input):
        _, switches = F.max_pool2d(input, **options, backend=backend)
        return F.max_pool2d_backward(g, switches, input.shape, backend=backend)

    _check(call, TF.max_pool2d, backward)


def _scatter_add(y, indices, output_size):
    """torch's autograd rule for unpooling: the gradient of max-pooling
    sends every pooled value to its switch and adds those that share one."""
    flat = y.new_zeros(y.shape[:-2] + (output_size[-2] * output_size[-1],))
    flat.scatter_add_(-1, indices.flatten(-2), y.flatten(-2))
    return flat.view(y.shape[:-2] + tuple(output_size[-2:]))


def max_unpool2d(sample, backend):
    """Against autograd's accumulating rule (scatter_add) always, and against
    torch's F.max_unpool2d too where no two switches of a plane coincide
    (with a repeated switch torch keeps one value, npcnn adds them).
    Returns which of the two it was."""
    call = Call(sample, F.max_unpool2d, backend)
    size = call.named["output_size"]  # every OpInfo sample gives it: the pooled input's shape
    indices = call.named["indices"]
    ours = check_op(call.ours(),
                    lambda y: _scatter_add(y, sample.args[0], size), call.inputs)
    planes = indices.reshape(-1, indices.shape[-2] * indices.shape[-1])
    if all(len(np.unique(p)) == p.size for p in planes):
        assert_close("max_unpool2d vs torch's F.max_unpool2d (no repeated switch)", ours,
                     TF.max_unpool2d(sample.input, *sample.args, **sample.kwargs))
        return "unique switches"
    return "repeated switches"


def adaptive_avg_pool2d(sample, backend):
    call = Call(sample, F.adaptive_avg_pool2d, backend)
    _check(call, TF.adaptive_avg_pool2d,
           lambda g, input: F.adaptive_avg_pool2d_backward(g, input.shape, backend=backend))


def linear(sample, backend):
    call = Call(sample, F.linear, backend)

    def backward(g, input, weight, bias=None):
        dx, dw, db = F.linear_backward(g, input, weight, backend=backend)
        return (dx, dw) if bias is None else (dx, dw, db)

    _check(call, TF.linear, backward)


def relu(sample, backend):
    call = Call(sample, F.relu, backend)
    _check(call, TF.relu, lambda g, input: F.relu_backward(g, input, backend=backend))


def _softmax(op, sample, backend):
    """torch's ``dtype=`` casts the input first: the gradient is the
    softmax's, cast back to the input's dtype."""
    ours, backward_fn = getattr(F, op), getattr(F, op + "_backward")
    call = Call(sample, ours, backend)
    options = {k: v for k, v in call.named.items() if k not in ("input", "backend")}

    def backward(g, input):
        y = ours(input, **options, backend=backend)
        return backward_fn(g, y, options["dim"], backend=backend).astype(input.dtype, copy=False)

    _check(call, getattr(TF, op), backward)


def softmax(sample, backend):
    _softmax("softmax", sample, backend)


def log_softmax(sample, backend):
    _softmax("log_softmax", sample, backend)


def _binomial_tails(n, p, k):
    """(P(K <= k), P(K >= k)) for K ~ Binomial(n, p)."""
    pmf = [math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(n + 1)]
    return sum(pmf[:k + 1]), sum(pmf[k:])


def dropout(sample, backend):
    """Equal to torch where dropout is deterministic (training=False, p=0,
    p=1); for 0 < p < 1 npcnn promises only the statistics (its random
    stream is NumPy's, drawn here from a seeded Generator): every output is
    0 or input/(1-p), and the number dropped is one that Binomial(n, p)
    reaches, or passes, with probability > 1e-6 on either side. Returns
    which of the two it was."""
    call = Call(sample, F.dropout, backend)
    p, training = call.named["p"], call.named["training"]
    x = call.inputs[0]
    ours = call.ours(rng=np.random.default_rng(SEED))(x)
    if not training or p in (0, 1):
        assert_close("dropout", ours, call.theirs(TF.dropout)(sample.input))
        return "deterministic"
    assert isinstance(ours, np.ndarray) and ours.shape == x.shape and ours.dtype == x.dtype, (
        f"dropout returned {type(ours).__name__} {getattr(ours, 'shape', '')} "
        f"{getattr(ours, 'dtype', '')} for input {x.shape} {x.dtype}")
    kept = ours != 0
    assert_close("dropout (kept elements = input/(1-p))", ours[kept], (x[kept] / (1 - p)).astype(x.dtype))
    nonzero = x != 0  # an input 0 is 0 whether dropped or kept
    n, dropped = int(nonzero.sum()), int((~kept & nonzero).sum())
    assert min(_binomial_tails(n, p, dropped)) > 1e-6, (
        f"dropout: {dropped} of {n} nonzero inputs dropped, implausible for p={p}")
    return "mask"


COMPARE = {op: globals()[op.split(".")[0]] for op in OPINFOS}
