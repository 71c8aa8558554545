"""Values computed from weights, kept while the weights hold the same bits.

Winograd's path transforms its filters on every call, and a forward pass
calls it with the same weights every time. ``derived(name, weight,
compute)`` returns ``compute(weight)``, from a cache when a weight of the
same shape and dtype, holding the same bits, was seen under ``name``: the
cache keeps a copy of each weight beside its value and compares the two
element by element, as unsigned integers of their width (bit patterns:
-0.0 is not 0.0, and a NaN equals itself). Comparing reads the weight and
its copy where the transform reads the weight and writes 16/9 of it, and
a hit spares the transform's BLAS call, whose threads keep spinning after
it and take a core from the kernels that follow.

It is keyed by content, not by the array's identity: a writeable array
changed in place, or a new array at the freed address of an old one, can
never get the old value. (Identity with a read-only flag is no promise:
the owner of an array may make it writeable again, views taken before it
was made read-only stay writeable, and a Model's ``load_state_dict`` and
the sanity checks rewrite its weights in place.)

The copies and the values count against ``tuning.WEIGHT_CACHE_BYTES``;
the least recently used go first. Values are read-only arrays, shared by
every caller.
"""
import threading
from collections import OrderedDict

import numpy as np
from numba import njit

from . import tuning

_LOCK = threading.Lock()
_ENTRIES = OrderedDict()     # (name, shape, dtype, serial) -> (copy of the weight, value), oldest first
_SIZE = [0]                  # bytes held: copies and values
_SERIAL = [0]


def _bits(array):
    """A C-contiguous array's elements as unsigned integers of their width, 1-d."""
    return array.reshape(-1).view(f"u{array.itemsize}")


def _same_bits(a, b):
    """Whether two 1-d unsigned integer arrays of one length are equal:
    every pair XORed and all ORed together in one pass, with no exit at
    the first difference, so that LLVM vectorises the loop (one that stops
    early stays scalar) and no array of booleans is written (as
    ``np.array_equal`` writes one before it reduces it)."""
    if a.size == 0:
        return True
    differ = a[0] ^ a[0]                   # zero, in the arrays' dtype
    for i in range(a.size):
        differ |= a[i] ^ b[i]
    return differ == 0


_same_bits = njit(cache=True)(_same_bits)


def _lookup(name, weight):
    """The cached value of a weight with ``weight``'s bits under ``name``, or None."""
    with _LOCK:
        candidates = [(key, entry) for key, entry in _ENTRIES.items()
                      if key[:3] == (name, weight.shape, weight.dtype.str)]
    if not candidates:
        return None
    bits = _bits(weight)
    for key, (copy, value) in candidates:
        kept = _bits(copy)
        # another layer's weights of this shape differ in their first elements: told apart at once
        if np.array_equal(kept[:64], bits[:64]) and _same_bits(kept, bits):
            with _LOCK:
                if key in _ENTRIES:
                    _ENTRIES.move_to_end(key)
            return value
    return None


def derived(name, weight, compute):
    """``compute(weight)``, an array, or the value kept for a weight with
    the same bits (see the module docstring). The result is read-only."""
    weight = np.ascontiguousarray(weight)
    value = _lookup(name, weight)
    if value is not None:
        return value
    value = compute(weight)
    value.flags.writeable = False
    copy = weight.copy()
    size = copy.nbytes + value.nbytes
    if size > tuning.WEIGHT_CACHE_BYTES:
        return value
    with _LOCK:
        _SERIAL[0] += 1
        _ENTRIES[(name, weight.shape, weight.dtype.str, _SERIAL[0])] = (copy, value)
        _SIZE[0] += size
        while _SIZE[0] > tuning.WEIGHT_CACHE_BYTES:
            _, (old_copy, old_value) = _ENTRIES.popitem(last=False)
            _SIZE[0] -= old_copy.nbytes + old_value.nbytes
    return value


def clear():
    """Forget every entry (tests; or to give the memory back)."""
    with _LOCK:
        _ENTRIES.clear()
        _SIZE[0] = 0


def held_bytes():
    """Bytes the cache holds now: the copies of the weights and their values."""
    return _SIZE[0]
