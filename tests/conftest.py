import sys
from pathlib import Path

import numpy as np
import pytest

# tests import the parity helper as a plain module
sys.path.insert(0, str(Path(__file__).parent))

BACKENDS = ["numpy", "numba"]
DTYPES = [np.float64, np.float32]


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(params=DTYPES, ids=["float64", "float32"])
def dtype(request):
    return request.param
