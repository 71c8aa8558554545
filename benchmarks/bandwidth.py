"""This machine's copy bandwidth: the yardstick of the memory-bound ops, as
the SGEMM rate is the compute-bound ones'.

A STREAM-like copy ``dst[i] = src[i]`` of arrays several times the size of
the last-level cache, so that both stream from and to memory, timed as a
jitted parallel loop on numba's threads (the threads npcnn's kernels run
on) and as numpy's ``np.copyto`` (one thread). The best of several calls
of each is kept, and the better of the two is the machine's rate. Bytes
count as STREAM counts them: each element read once and written once,
2 * nbytes a copy; the cache line that a store first reads in
(write-allocate) is not counted, so a rate above it is possible but rare.

    python -m benchmarks.bandwidth          # prints both rates
"""
import os
import time

import numpy as np
from numba import njit, prange

MIN_ARRAY_BYTES = 128 * 2 ** 20   # each array, at the least: 4x the dev VM's 32 MiB L3
CACHE_MULTIPLE = 4                # each array at least this many times the L3, where the OS says its size


def _copy_py(src, dst):
    for i in prange(src.size):
        dst[i] = src[i]


_copy = njit(cache=True, parallel=True)(_copy_py)


def array_bytes():
    """The size of each array: ``CACHE_MULTIPLE`` times the last-level cache
    where the OS reports it (Linux), ``MIN_ARRAY_BYTES`` at the least."""
    try:
        l3 = os.sysconf("SC_LEVEL3_CACHE_SIZE")
    except (ValueError, OSError, AttributeError):   # not Linux, or no such name
        l3 = 0
    return max(MIN_ARRAY_BYTES, CACHE_MULTIPLE * max(l3, 0))


def _best_seconds(fn, repeats):
    fn()  # the compile, and the pages of dst faulted in
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def copy_bandwidth(nbytes=None, repeats=5):
    """{"numba": GB/s, "numpy": GB/s, "best": GB/s, "array_bytes": nbytes}:
    read + write bytes per second of the best of ``repeats`` copies."""
    nbytes = array_bytes() if nbytes is None else int(nbytes)
    if nbytes < 4:
        raise ValueError(f"copy_bandwidth: nbytes must be at least 4 (one float32), got {nbytes}")
    src = np.ones(nbytes // 4, dtype=np.float32)
    dst = np.zeros_like(src)  # written once here, so no call below pays its page faults
    rates = {"numba": 2 * src.nbytes / _best_seconds(lambda: _copy(src, dst), repeats) / 1e9,
             "numpy": 2 * src.nbytes / _best_seconds(lambda: np.copyto(dst, src), repeats) / 1e9}
    return dict(rates, best=max(rates.values()), array_bytes=src.nbytes)


if __name__ == "__main__":
    r = copy_bandwidth()
    print(f"copy of {r['array_bytes'] / 2**20:.0f} MiB: numba {r['numba']:.1f} GB/s, "
          f"numpy {r['numpy']:.1f} GB/s")
