"""Scratch buffers reused from call to call.

A fresh array of tens of megabytes costs as much to page-fault in as the
kernel that fills it costs to run, so the big temporaries of the fast
convolutions (column matrices, Winograd's transformed tiles) live in
buffers kept here, one per (name, dtype) and Python thread, so that
callers in two threads keep out of each other's way. Each stays as large
as the largest request seen under its name.
"""
import threading

import numpy as np

from . import tuning

_local = threading.local()


def _buffers():
    """This thread's {(name, dtype): 1-D array}."""
    return _local.__dict__.setdefault("buffers", {})


ALIGN = 64  # bytes: a vector of ``simd`` (a load that crosses a cache line costs two)


def buffer(name, size, dtype):
    """A 1-D array of ``size`` elements, shared by every caller of ``name``,
    starting on an ``ALIGN``-byte boundary."""
    key, buffers = (name, np.dtype(dtype)), _buffers()
    buf = buffers.get(key)
    if buf is None or buf.size < size:
        itemsize = np.dtype(dtype).itemsize
        raw = np.empty(size + ALIGN // itemsize, dtype=dtype)
        skip = (-raw.ctypes.data % ALIGN) // itemsize
        buf = buffers[key] = raw[skip:skip + size]
    return buf[:size]


def holds(name, array):
    """Whether ``array`` may be (a view of) this thread's buffer ``name``."""
    return any(np.may_share_memory(array, buf) for (n, _), buf in _buffers().items() if n == name)


def planes(name, count, size, dtype):
    """``count`` planes of ``size`` elements, a C-contiguous (count, size +
    skew) array, skew = ``tuning.PLANE_SKEW`` (against 4K aliasing): plane e
    is ``[e, :size]`` and the skew columns past it are unused. (Kernels get
    the whole array, whose contiguity numba knows and vectorises on; a
    ``[:, :size]`` view of it compiles to strided code.)"""
    width = size + tuning.PLANE_SKEW
    return buffer(name, count * width, dtype).reshape(count, width)
