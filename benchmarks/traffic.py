"""The bytes a memory-bound op must move at the least: what it reads plus
what it writes, each array once. Divided by an implementation's time this
is its GB/s, and against ``bandwidth.copy_bandwidth`` (which counts a
copy's bytes the same way) its share of what this machine can move.

These ops do next to no arithmetic per byte (a compare, an add), so memory
bounds them, not the cores: a 2x2 max-pool reads 4 floats and writes 1
float and one int64 switch for 3 comparisons. The lower bounds, and why:

- ``max_pool2d`` with switches: read the input once (the bench's pools
  have stride <= kernel, so every element lies in a window); write the
  output and its int64 switches. Overlapping windows (3x3 stride 2) read
  an element up to 4 times, but from cache: the bound counts it once.
- ``max_pool2d`` without switches: the same without the switches.
- ``max_unpool2d``: read the pooled values and their int64 switches; write
  the whole output plane, zeros included (the zeros are the output too).
- ``relu``: read the input, write the output (not in place).

Caches can beat none of these (each byte is touched once at the least), so
a rate above the copy bandwidth means the arrays still sat in the cache
from the call before, which small shapes allow.
"""
import numpy as np

SWITCH_BYTES = np.dtype(np.int64).itemsize  # torch's return_indices dtype, and npcnn's switches


def _elements(shape):
    return int(np.prod(shape, dtype=np.int64))


def max_pool2d_bytes(input_shape, output_shape, itemsize, switches=True):
    """Read the input, write the output (and the switches)."""
    out = _elements(output_shape)
    return _elements(input_shape) * itemsize + out * itemsize + (out * SWITCH_BYTES if switches else 0)


def max_unpool2d_bytes(pooled_shape, output_shape, itemsize):
    """Read the pooled values and their switches, write the whole output."""
    return _elements(pooled_shape) * (itemsize + SWITCH_BYTES) + _elements(output_shape) * itemsize


def relu_bytes(shape, itemsize):
    """Read the input, write the output."""
    return 2 * _elements(shape) * itemsize
