"""Scratch buffers reused from call to call.

A fresh array of tens of megabytes costs as much to page-fault in as the
kernel that fills it costs to run, so the big temporaries of the fast
convolutions (column matrices, Winograd's transformed tiles) live in
buffers kept here, one per (name, dtype). Each stays as large as the
largest request seen under its name. Functions that use them must not be
called from two Python threads at once.
"""
import numpy as np

_buffers = {}

# Extra elements between the planes of ``planes``: when a plane's size is a
# multiple of 4 KiB, a kernel that writes the same position of 16 planes
# hits one cache set 16 times (4K aliasing). Winograd's input transform at
# VGG16's 64x224x224 took 29 ms with aligned planes and 9 ms with this skew.
PLANE_SKEW = 64


def buffer(name, size, dtype):
    """A 1-D array of ``size`` elements, shared by every caller of ``name``."""
    key = (name, np.dtype(dtype))
    buf = _buffers.get(key)
    if buf is None or buf.size < size:
        buf = _buffers[key] = np.empty(size, dtype=dtype)
    return buf[:size]


def planes(name, count, size, dtype):
    """``count`` planes of ``size`` elements, a C-contiguous (count, size +
    PLANE_SKEW) array: plane e is ``[e, :size]`` and the skew columns past it
    are unused. (Kernels get the whole array, whose contiguity numba knows
    and vectorises on; a ``[:, :size]`` view of it compiles to strided code.)"""
    return buffer(name, count * (size + PLANE_SKEW), dtype).reshape(count, size + PLANE_SKEW)
