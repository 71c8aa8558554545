"""Compiling a kernel twice: parallel for big inputs, serial for small ones.

Waking numba's worker threads costs tens of microseconds, more than a whole
LeNet-5 layer on one image, so a kernel runs on one thread when its input
is small (fewer than ``PARALLEL_MIN_WORK`` elements) and on all of them
otherwise. Both are compiled from the same plain-Python function (``prange``
is an ordinary ``range`` in the serial one), so they compute the same thing.
"""
from numba import njit

PARALLEL_MIN_WORK = 1 << 16


class Kernel:
    """``Kernel(fn)(*args, work=n)``: run the parallel or serial compilation of fn."""

    def __init__(self, fn):
        self.py = fn  # the plain function, for reading and for NUMBA_DISABLE_JIT debugging
        self.parallel = njit(cache=True, parallel=True)(fn)
        self.serial = njit(cache=True)(fn)

    def __call__(self, *args, work):
        return (self.parallel if work >= PARALLEL_MIN_WORK else self.serial)(*args)
