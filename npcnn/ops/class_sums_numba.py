"""Per-class sums of a batch sorted by class: the fast kernel.

Same function and signature as ``class_sums.py`` (the specification). numpy
needs two passes (a sum, casting each row to float64 in a buffer, and
``count_nonzero``) and ran on one thread; here each class is one task and
its rows are read once, while in cache, by two loops LLVM vectorises. The
rows are added in the same order, so the sums are the same to the bit.
"""
import numpy as np
from numba import prange

from .runtime import tuning
from .runtime.jit import Kernel


def _add_class_sums_py(flat, bounds, sums, zeros):
    D = flat.shape[1]
    for k in prange(bounds.size - 1):
        if bounds[k + 1] == bounds[k]:
            continue
        total = np.zeros(D)           # the batch's sum first, then added: the reference's order
        count = 0
        for r in range(bounds[k], bounds[k + 1]):
            row = flat[r]
            for d in range(D):
                total[d] += row[d]
            for d in range(D):        # a loop of its own: mixed with the sum it did not vectorise
                count += row[d] == 0
        sums[k] += total
        zeros[k] += count


_add_class_sums = Kernel(_add_class_sums_py, cost=tuning.COST_ELEMENTWISE)


def add_class_sums(flat, bounds, sums, zeros):
    """See ``class_sums.add_class_sums``."""
    _add_class_sums(flat, bounds, sums, zeros, work=flat.size)
