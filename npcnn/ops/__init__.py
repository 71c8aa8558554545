"""The ops, one concept a file: ``X.py`` the NumPy reference (the
specification), ``X_numba.py`` the jitted kernels that must equal it.

| reference       | kernels                                                      |
| --------------- | ------------------------------------------------------------ |
| conv.py         | conv_numba.py (chooses a path), conv_direct_numba.py,        |
|                 | im2col_numba.py, winograd_numba.py, depthwise_numba.py       |
| winograd.py     | winograd_numba.py (the same F(2x2, 3x3) in bands)            |
| pool.py         | pool_numba.py                                                |
| linear.py       | linear_numba.py                                              |
| activation.py   | activation_numba.py                                          |
| class_sums.py   | class_sums_numba.py                                          |

``runtime/`` holds what the kernels run on: compilation and threads
(``jit``), row copies, reused buffers and the tuning thresholds.

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
