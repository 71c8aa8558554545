"""The ops, one concept a file: ``X.py`` the NumPy reference (the
specification), ``X_numba.py`` the jitted kernels that must equal it.

| reference       | kernels                                                      |
| --------------- | ------------------------------------------------------------ |
| conv.py         | conv_numba.py (chooses a path), conv_direct_numba.py (and    |
|                 | conv_lanes_numba.py, the same sum vectorised over images),   |
|                 | im2col_numba.py, winograd_numba.py, depthwise_numba.py       |
| winograd.py     | winograd_numba.py (the same F(2x2, 3x3) in bands), its 16    |
|                 | products in plane_products_numba.py                          |
| pool.py         | pool_numba.py                                                |
| linear.py       | linear_numba.py                                              |
| activation.py   | activation_numba.py                                          |
| class_sums.py   | class_sums_numba.py                                          |

``runtime/`` holds what the kernels run on: compilation and threads
(``jit``), 64-byte vectors (``simd``: numba keeps accumulators held in
arrays in memory, so register tiles need vector values), row copies,
reused aligned buffers (``workspace``), transformed weights kept from call
to call (``weight_cache``, keyed by the weights' content) and the tuning
thresholds.

numba's parallel loops run on its OpenMP threading layer where it loads
(it needs the GNU OpenMP runtime, libgomp), else on "workqueue", unless
NUMBA_THREADING_LAYER says otherwise. OpenMP's threads spin for a few
milliseconds after a parallel loop before they sleep, as torch's own do,
so the next loop starts at once; workqueue's sleep at once, and waking
them costs every launch as much as a small kernel's whole run (the
measurements, and what the spin costs beside other work:
``benchmarks/TUNING.md``, "Threading layer"). Two consequences: a shard
of ``npcnn.stats`` runs numba on one thread on a Dask worker
(``npcnn/stats/tally.py``), so that workers sharing a machine do not spin
against each other; and a child forked after numba's threads started runs
every kernel on one thread (GNU OpenMP is not fork-safe: numba stops a
forked child that starts a parallel loop; ``runtime/jit.py``), so npcnn's
own child processes are spawned.
"""
import os

import numba


def _threading_layer():
    """"omp" where numba's OpenMP layer loads, else "workqueue"."""
    try:
        from numba.np.ufunc import omppool  # noqa: F401  (loads libgomp; starts no thread)
    except ImportError:
        return "workqueue"
    return "omp"


if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = _threading_layer()
