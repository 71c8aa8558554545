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

numba's parallel loops run on its "workqueue" threading layer unless
NUMBA_THREADING_LAYER says otherwise: its OpenMP layer keeps its threads
spinning after every parallel loop, and on a small machine they then take
the cores from the BLAS call that follows. Workqueue threads sleep when
idle.
"""
import os

import numba

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"
