"""Argument checks shared by every op: one place that turns bad input into a
``ValueError`` naming the op, the argument and the shapes involved."""

import numpy as np
from numba import prange

from .ops.runtime.jit import Kernel

FLOAT_DTYPES = (np.float32, np.float64)
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1


def pair(op, name, value):
    """An int, or a sequence of one or two ints -> (h, w), as torch's
    conv and pooling ops read their sizes; each fits in int64, as torch's."""
    # the common cases first, without the general test's generator, which
    # costs more than the rest of a small conv call's checks
    if type(value) is int and INT64_MIN <= value <= INT64_MAX:
        return value, value
    if type(value) is tuple and len(value) == 2:
        h, w = value
        if type(h) is int and type(w) is int and INT64_MIN <= h <= INT64_MAX and INT64_MIN <= w <= INT64_MAX:
            return value
    one = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if one or isinstance(value, (tuple, list)) and len(value) in (1, 2) and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        h, w = (value, value) if one else (value[0], value[-1])
        if not (INT64_MIN <= min(h, w) and max(h, w) <= INT64_MAX):
            raise ValueError(f"{op}: {name} must fit in 64 bits, as torch's (at most 2**63 - 1), "
                             f"got {value!r}")
        return int(h), int(w)
    raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")


def integer(op, name, value):
    """A Python or numpy int (not a bool, nor an array), as torch's int
    arguments (softmax's ``dim``, flatten's dims)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{op}: {name} must be an int, got {value!r}")
    return int(value)


def count(op, name, value):
    """An int >= 1 (not a bool): a number of things, such as a batch size."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{op}: {name} must be an integer >= 1, got {value!r}")
    return int(value)


def boolean(op, name, value):
    """A bool (Python's or numpy's), as torch's C++ flags (``ceil_mode``,
    dropout's ``training``): a 2.0 or a "yes" is a mistake, not a flag."""
    if value is True or value is False:
        return value
    if not isinstance(value, np.bool_):
        raise ValueError(f"{op}: {name} must be a bool, got {value!r}")
    return bool(value)


def pool_stride(op, stride, kernel_size):
    """A pooling stride as a pair: ``kernel_size`` (already a pair) where it
    is not given, None or torch's empty list (its signature's "not
    given"); otherwise an int or a pair, each >= 1."""
    if stride is None or isinstance(stride, (tuple, list)) and len(stride) == 0:
        return kernel_size
    return positive(op, "stride", pair(op, "stride", stride))


def positive(op, name, hw):
    if min(hw) < 1:
        raise ValueError(f"{op}: {name} must be >= 1, got {hw}")
    return hw


def non_negative(op, name, hw):
    if min(hw) < 0:
        raise ValueError(f"{op}: {name} must be >= 0, got {hw}")
    return hw


# torch's pooling and transposed-convolution kernels hold sizes in 32-bit
# ints and refuse larger ones; npcnn refuses the same (conv2d takes int64).
INT32_MAX = 2**31 - 1


def int32(op, name, hw):
    if max(hw) > INT32_MAX:
        raise ValueError(f"{op}: {name} must be at most 2**31 - 1, got {hw}")
    return hw


def array(op, name, a, ndim=None, dtype=None):
    """Check an array argument and return it C-contiguous.

    ``ndim`` is an int or a tuple of allowed ranks; ``dtype`` is the dtype the
    array must have (that of the op's main input), else any float dtype.
    """
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{op}: {name} must be a numpy array, got {type(a).__name__}")
    if ndim is not None and not (a.ndim == ndim if isinstance(ndim, int) else a.ndim in ndim):
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        want = (f"{allowed[0]}-D to {allowed[-1]}-D" if len(allowed) > 4
                else " or ".join(f"{d}-D" for d in allowed))
        raise ValueError(f"{op}: {name} must be {want}, got shape {a.shape}")
    if dtype is None:
        if a.dtype not in FLOAT_DTYPES:
            raise ValueError(f"{op}: {name} must be float32 or float64, got {a.dtype} "
                             f"(shape {a.shape})")
    elif a.dtype != dtype:
        raise ValueError(f"{op}: {name} has dtype {a.dtype} but the input has {dtype}; "
                         f"cast one of them (shape {a.shape})")
    # (0-d arrays too go through ascontiguousarray, which makes them (1,))
    return a if type(a) is np.ndarray and a.ndim and a.flags.c_contiguous else np.ascontiguousarray(a)


def _sum_of_zeros_py(flat):
    """sum(x * 0): 0 if every x is finite, NaN otherwise (inf * 0 is NaN).
    The sum may be reordered ("reassoc" below), so it vectorises and splits
    across threads; no flag here lets LLVM fold x * 0 to 0 (that needs
    "nnan" and "nsz")."""
    zero = flat.dtype.type(0)  # of flat's dtype: a literal 0 would make float32 sums float64
    total = zero
    for k in prange(flat.size):
        total += flat[k] * zero
    return total


# One pass over the elements, on numba's threads for large arrays: every
# conv call checks its weights (14.7M of them in VGG16). BLAS's dot of
# the array with itself is as fast on one thread, but OpenBLAS's threads
# keep spinning after it, beside the conv that follows (benchmarks/TUNING.md).
_sum_of_zeros = Kernel(_sum_of_zeros_py, cost="COST_ELEMENTWISE", fastmath={"reassoc"})


def finite(op, name, a, masked=False):
    """Refuse NaN and infinity where they would make the result meaningless;
    ``masked``: -inf is allowed (softmax's masked elements)."""
    flat = np.asarray(a).reshape(-1)  # (an np.matrix stays 2-D under reshape)
    if _sum_of_zeros(flat, work=flat.size) == 0:
        return a
    bad = int(np.isnan(a).sum() + np.isposinf(a).sum()) if masked else int(a.size - np.isfinite(a).sum())
    if bad:
        what = "NaN or +inf; -inf, a masked element, is allowed" if masked else "NaN or inf"
        raise ValueError(f"{op}: {name} holds {bad} non-finite value(s) ({what}), shape {a.shape}")
    return a


def backend(op, name):
    if name not in ("numpy", "numba"):
        raise ValueError(f"{op}: backend must be 'numpy' or 'numba', got {name!r}")
    return name


def dilation(op, value):
    """torch's ``dilation``: an int or a pair, each >= 1 (the distance
    between two kernel taps; 1 is the plain, contiguous kernel)."""
    hw = pair(op, "dilation", value)
    if min(hw) < 1:
        raise ValueError(f"{op}: dilation must be >= 1, got {hw}")
    return int32(op, "dilation", hw)


def groups(op, value):
    """torch's ``groups``: a positive int (whether it divides the channels
    is the op's check, which knows them)."""
    value = integer(op, "groups", value)
    if value < 1:
        raise ValueError(f"{op}: groups must be >= 1, got {value}")
    return value
