"""The ops, one concept a file: ``X.py`` the NumPy reference, ``X_numba.py`` the kernels.

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
