"""Each numba kernel is compiled twice, parallel and serial (npcnn/ops/jit.py);
both compilations must give the same numbers as torch."""
import numpy as np
import pytest
import torch.nn.functional as TF

import npcnn.functional as F
import npcnn.ops.jit as jit
from parity import TOL, check_op


@pytest.fixture(params=["parallel", "serial"])
def threading(request, monkeypatch):
    monkeypatch.setattr(jit, "PARALLEL_MIN_WORK", 0 if request.param == "parallel" else 1 << 62)
    return request.param


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_every_kernel_in_both_compilations(threading, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 13, 11)).astype(dtype)
    w = (rng.standard_normal((4, 3, 3, 3)) / 5).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    tol = TOL[dtype]
    check_op(lambda x, w, b: F.conv2d(x, w, b, 2, 1), lambda x, w, b: TF.conv2d(x, w, b, 2, 1), [x, w, b],
             backward=lambda g, x, w, b: F.conv2d_backward(g, x, w, 2, 1), **tol)
    wt = (rng.standard_normal((3, 4, 3, 3)) / 5).astype(dtype)
    check_op(lambda x, w: F.conv_transpose2d(x, w, None, 2, 1, 1),
             lambda x, w: TF.conv_transpose2d(x, w, None, 2, 1, 1), [x, wt],
             backward=lambda g, x, w: F.conv_transpose2d_backward(g, x, w, 2, 1, 1)[:2], **tol)
    r = np.maximum(x, 0)
    check_op(lambda r: F.max_pool2d(r, 3, 2, 1, True),
             lambda r: TF.max_pool2d(r, 3, 2, 1, ceil_mode=True, return_indices=True), [r],
             backward=lambda g, r: F.max_pool2d_backward(g, F.max_pool2d(r, 3, 2, 1, True)[1], r.shape), **tol)
    check_op(lambda x: F.adaptive_avg_pool2d(x, (4, 3)), lambda x: TF.adaptive_avg_pool2d(x, (4, 3)), [x],
             backward=lambda g, x: F.adaptive_avg_pool2d_backward(g, x.shape), **tol)
    check_op(F.relu, TF.relu, [x], backward=lambda g, x: F.relu_backward(g, x), **tol)
    z = rng.standard_normal((6, 10)).astype(dtype)
    check_op(lambda z: F.log_softmax(z, 1), lambda z: TF.log_softmax(z, 1), [z],
             backward=lambda g, z: F.log_softmax_backward(g, F.log_softmax(z, 1), 1), **tol)
    check_op(lambda z: F.softmax(z, 1), lambda z: TF.softmax(z, 1), [z],
             backward=lambda g, z: F.softmax_backward(g, F.softmax(z, 1), 1), **tol)
    wl = (rng.standard_normal((5, 10)) / 3).astype(dtype)
    bl = rng.standard_normal(5).astype(dtype)
    check_op(lambda z, w, b: F.linear(z, w, b), TF.linear, [z, wl, bl],
             backward=lambda g, z, w, b: F.linear_backward(g, z, w), **tol)


PROBE = '''
import sys
import numpy as np
from numba import get_thread_id, prange
from npcnn.ops.jit import Kernel

def _which_threads_py(out):
    for k in prange(out.size):
        out[k] = get_thread_id()

which_threads = Kernel(_which_threads_py)
out = np.zeros(100000, dtype=np.int64)
getattr(which_threads, sys.argv[1])(out)
print(len(np.unique(out)))
'''


def test_the_serial_compilation_stays_serial_when_loaded_from_the_cache(tmp_path):
    """numba's disk cache is keyed by function name, not by compile options:
    had the two compilations one name, a process that finds the parallel one
    cached would run it as the "serial" kernel (waking every thread, which
    made small ops 100x slower). Process 1 caches the parallel compilation;
    process 2 runs the serial one from the same cache on one thread only."""
    import os
    import subprocess
    import sys
    (tmp_path / "probe.py").write_text(PROBE)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), NUMBA_NUM_THREADS="2")

    def threads_used(variant):
        done = subprocess.run([sys.executable, "probe.py", variant], cwd=tmp_path, env=env,
                              capture_output=True, text=True, check=True)
        return int(done.stdout.split()[-1])

    assert threads_used("parallel") == 2
    assert threads_used("serial") == 1
