"""Compiling a kernel twice: parallel for big inputs, serial for small ones.

Waking numba's worker threads costs more than a whole LeNet-5 layer on one
image, so a kernel runs on one thread when its input is small (its work,
weighted by the kernel's cost, below ``tuning.PARALLEL_MIN_WORK``) and on
all of them otherwise. Both are compiled from the same plain-Python function
(``prange`` is an ordinary ``range`` in the serial one), so they compute the
same thing.

A process forked after numba started its OpenMP threads runs every kernel's
serial compilation: GNU OpenMP is not fork-safe, and numba stops such a
child as soon as it starts a parallel loop.
"""
import os
import threading
import types

import numba
from numba import njit

from . import tuning

# numba's workqueue layer (where OpenMP does not load, npcnn/ops/__init__.py)
# aborts the process when two Python threads launch parallel kernels at once
# ("Concurrent access has been detected"), so parallel launches take turns,
# whichever the layer; serial ones need not.
_PARALLEL_LAUNCH = threading.Lock()

_forked_after_openmp = False


def _after_fork_in_child():
    global _forked_after_openmp
    try:
        _forked_after_openmp = numba.threading_layer() == "omp"
    except ValueError:  # the parent never started numba's threads: the child may
        pass


os.register_at_fork(after_in_child=_after_fork_in_child)


def _renamed(fn, suffix):
    """The same function under another qualified name. numba's on-disk cache
    is keyed by the function's name and not by the compile options, so the
    serial and the parallel compilations of one function must not share a
    name: the second would load the first's machine code from the cache (a
    "serial" kernel would wake every thread)."""
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    twin.__qualname__ = fn.__qualname__ + suffix
    twin.__doc__ = fn.__doc__
    return twin


class Kernel:
    """``Kernel(fn, cost)(*args, work=n)``: run the parallel or serial compilation of fn.

    ``work`` is the caller's count of elements (or of multiply-adds);
    ``cost`` weighs it (a number, or the name of one in ``tuning``, such as
    "COST_ELEMENTWISE", read at each call), so that cheap elementwise
    kernels stay serial up to about a million elements, where waking the
    threads starts to pay. ``fastmath`` goes to both compilations (numba's
    flags, e.g. {"reassoc"}).
    """

    def __init__(self, fn, cost=1.0, fastmath=False):
        self.py = fn  # the plain function, for reading and for NUMBA_DISABLE_JIT debugging
        self.cost = cost
        self.parallel = njit(cache=True, parallel=True, fastmath=fastmath)(fn)
        self.serial = njit(cache=True, fastmath=fastmath)(_renamed(fn, "_serial"))

    def serial_at(self, work):
        """Whether a call with this ``work`` runs the serial compilation."""
        cost = getattr(tuning, self.cost) if self.cost.__class__ is str else self.cost
        return work * cost < tuning.PARALLEL_MIN_WORK or _forked_after_openmp

    def __call__(self, *args, work):
        # serial_at's test written out: this runs on every kernel call, many
        # times in a small forward, where the extra method call shows
        # (benchmarks/TUNING.md, Threads)
        cost = getattr(tuning, self.cost) if self.cost.__class__ is str else self.cost
        if work * cost < tuning.PARALLEL_MIN_WORK or _forked_after_openmp:
            return self.serial(*args)
        with _PARALLEL_LAUNCH:
            return self.parallel(*args)


def thread_slots():
    """How many per-thread buffers a kernel indexed by ``get_thread_id``
    needs: one for every thread of numba's pool, whatever
    ``set_num_threads`` masks. The pool is started first: a serial
    compilation loaded from numba's disk cache into a process that has not
    started it crashes (SIGSEGV) in ``get_thread_id``."""
    numba.get_num_threads()
    return numba.config.NUMBA_NUM_THREADS
