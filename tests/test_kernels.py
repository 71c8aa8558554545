"""Each numba kernel is compiled twice, parallel and serial (npcnn/ops/runtime/jit.py);
both compilations must give the same numbers as torch."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch.nn.functional as TF

import npcnn.functional as F
from npcnn.ops.runtime import tuning
from parity import check_op


def _run_script(folder, name, text, *args, **environ):
    """The words a Python script prints, run in a process of its own in
    ``folder`` with these environment variables set (a crash or an abort
    there fails the test, not the whole run)."""
    (folder / name).write_text(text)
    done = subprocess.run([sys.executable, name, *args], cwd=folder, env={**os.environ, **environ},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-500:]
    return done.stdout.split()


@pytest.fixture(params=["parallel", "serial"])
def threading(request, monkeypatch):
    monkeypatch.setattr(tuning, "PARALLEL_MIN_WORK", 0 if request.param == "parallel" else 1 << 62)
    return request.param


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_every_kernel_in_both_compilations(threading, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 13, 11)).astype(dtype)
    w = (rng.standard_normal((4, 3, 3, 3)) / 5).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    check_op(lambda x, w, b: F.conv2d(x, w, b, 2, 1), lambda x, w, b: TF.conv2d(x, w, b, 2, 1), [x, w, b],
             backward=lambda g, x, w, b: F.conv2d_backward(g, x, w, 2, 1))
    wt = (rng.standard_normal((3, 4, 3, 3)) / 5).astype(dtype)
    check_op(lambda x, w: F.conv_transpose2d(x, w, None, 2, 1, 1),
             lambda x, w: TF.conv_transpose2d(x, w, None, 2, 1, 1), [x, wt],
             backward=lambda g, x, w: F.conv_transpose2d_backward(g, x, w, 2, 1, 1)[:2])
    r = np.maximum(x, 0)
    check_op(lambda r: F.max_pool2d(r, 3, 2, 1, ceil_mode=True),
             lambda r: TF.max_pool2d(r, 3, 2, 1, ceil_mode=True, return_indices=True), [r],
             backward=lambda g, r: F.max_pool2d_backward(g, F.max_pool2d(r, 3, 2, 1, ceil_mode=True)[1], r.shape))
    check_op(lambda r: F.max_pool2d(r, 2), lambda r: TF.max_pool2d(r, 2, return_indices=True), [r])
    check_op(lambda r: F.max_pool2d(r, 2, return_indices=False), lambda r: TF.max_pool2d(r, 2), [r])
    check_op(lambda x: F.adaptive_avg_pool2d(x, (4, 3)), lambda x: TF.adaptive_avg_pool2d(x, (4, 3)), [x],
             backward=lambda g, x: F.adaptive_avg_pool2d_backward(g, x.shape))
    check_op(F.relu, TF.relu, [x], backward=lambda g, x: F.relu_backward(g, x))
    z = rng.standard_normal((6, 10)).astype(dtype)
    check_op(lambda z: F.log_softmax(z, 1), lambda z: TF.log_softmax(z, 1), [z],
             backward=lambda g, z: F.log_softmax_backward(g, F.log_softmax(z, 1), 1))
    check_op(lambda z: F.softmax(z, 1), lambda z: TF.softmax(z, 1), [z],
             backward=lambda g, z: F.softmax_backward(g, F.softmax(z, 1), 1))
    wl = (rng.standard_normal((5, 10)) / 3).astype(dtype)
    bl = rng.standard_normal(5).astype(dtype)
    check_op(lambda z, w, b: F.linear(z, w, b), TF.linear, [z, wl, bl],
             backward=lambda g, z, w, b: F.linear_backward(g, z, w))


def _zero_channels(shape, dtype, seed):
    """Random images in which some channels are zero everywhere, differently
    per image: image 0 keeps channel 0 only, image 1 is all zero, image 2
    keeps one nonzero in the last element of channel 1, the rest keep every
    other channel."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    x[0, 1:] = 0
    x[1] = 0
    x[2] = 0
    x[2, 1, -1, -1] = 1.5
    x[3:, ::2] = 0
    return x


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_the_direct_kernel_leaves_zero_channels_out(threading, dtype):
    """LeNet-sized stride-1 convolutions (the direct kernel) skip each image's
    zero channels; the result is still torch's, forward and transposed."""
    x = _zero_channels((5, 6, 14, 12), dtype, seed=1)
    w = (np.random.default_rng(2).standard_normal((16, 6, 5, 5)) / 10).astype(dtype)
    b = np.random.default_rng(3).standard_normal(16).astype(dtype)
    assert F.conv_path("conv2d", x, w) == "direct"
    for pad in (0, 2):
        check_op(lambda x, w, b: F.conv2d(x, w, b, 1, pad), lambda x, w, b: TF.conv2d(x, w, b, 1, pad),
                 [x, w, b])
    wt = np.ascontiguousarray(w.transpose(1, 0, 2, 3))  # (6, 16, 5, 5): 6 -> 16 channels
    xt = _zero_channels((5, 6, 10, 10), dtype, seed=4)
    assert F.conv_path("conv_transpose2d", xt, wt, 1, 1) == "flipped direct"
    check_op(lambda x, w: F.conv_transpose2d(x, w, None, 1, 1), lambda x, w: TF.conv_transpose2d(x, w, None, 1, 1),
             [xt, wt])


@pytest.mark.parametrize("pad", [0, 2])
def test_channels_found_in_the_kernel_or_before_it_agree(pad):
    """The direct kernel finds each image's active channels itself when it
    runs on one thread anyway, else takes them from ``_nonzero_channels``;
    both compilations, both ways: the same counts, the same output."""
    import npcnn.ops.conv_direct_numba as kernels
    x = _zero_channels((5, 6, 14, 12), np.float32, seed=5)
    w = (np.random.default_rng(6).standard_normal((16, 6, 5, 5)) / 10).astype(np.float32)
    b = np.random.default_rng(7).standard_normal(16).astype(np.float32)
    found = np.empty((5, 6), dtype=np.int64)
    expected = kernels._nonzero_channels(x, found, work=0)
    outputs = []
    for compiled in (kernels._conv_direct.serial, kernels._conv_direct.parallel):
        for find in (True, False):
            active, count = (np.full((5, 6), -1), np.full(5, -1)) if find else (found, expected.copy())
            outputs.append(compiled(x, active, count, w, b, True, pad, pad, find))
            assert count.tolist() == expected.tolist() == [1, 0, 1, 3, 3]
            assert all((active[n, :count[n]] == found[n, :count[n]]).all() for n in range(5))
    for y in outputs[1:]:
        np.testing.assert_array_equal(y, outputs[0])
    check_op(lambda x, w, b: F.conv2d_relu(x, w, b, 1, pad), lambda x, w, b: TF.relu(TF.conv2d(x, w, b, 1, pad)),
             [x, w, b])


def test_which_channels_count_as_nonzero(threading):
    """Any nonzero counts, however small, and NaN and inf too; -0.0 does not."""
    import npcnn.ops.conv_direct_numba as kernels
    x = np.zeros((2, 7, 3, 300), dtype=np.float32)     # 900 elements per channel
    x[0, 0, 2, 299] = np.finfo(np.float32).smallest_subnormal
    x[0, 1, 0, 0] = -0.0
    x[0, 2, 1, 5] = np.nan
    x[0, 3, 0, 0] = np.inf
    x[0, 4, 0, 0], x[0, 4, 0, 1] = np.inf, -np.inf
    x[0, 5] = 1e30                                       # a sum that overflows to inf
    x[1, 6, 1, 100] = -2.0
    active = np.full((2, 7), -1, dtype=np.int64)
    count = kernels._nonzero_channels(x, active, work=x.size)
    assert count.tolist() == [5, 1]
    assert active[0, :5].tolist() == [0, 2, 3, 4, 5] and active[1, 0] == 6


PROBE = '''
import sys
import numpy as np
from numba import get_thread_id, prange
from npcnn.ops.runtime.jit import Kernel

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
    def threads_used(variant):
        return int(_run_script(tmp_path, "probe.py", PROBE, variant, NUMBA_CACHE_DIR=str(tmp_path / "cache"),
                               NUMBA_NUM_THREADS="2")[-1])

    assert threads_used("parallel") == 2
    assert threads_used("serial") == 1


BY_THREAD = '''
import sys
import numpy as np
import npcnn.functional as F
from npcnn.ops.runtime import tuning

tuning.PARALLEL_MIN_WORK = 1 << 62                   # every kernel on its serial compilation
rng = np.random.default_rng(0)
if sys.argv[1] == "depthwise":
    x, w, groups = rng.standard_normal((1, 4, 7, 7)), np.ones((4, 1, 3, 3)), 4
else:                                                # 64 tiles, filters small enough to go by thread
    x, w, groups = rng.standard_normal((1, 64, 16, 16)), rng.standard_normal((64, 64, 3, 3)) / 24, 1
print(F.conv_path("conv2d", x, w, 1, 1, 1, groups), F.conv2d(x, w, None, 1, 1, 1, groups).sum())
'''


@pytest.mark.parametrize("path", ["depthwise", "winograd"])
def test_kernels_with_a_buffer_per_thread_run_serial_from_the_cache(tmp_path, path):
    """The depthwise and Winograd kernels index their buffers by
    ``get_thread_id``, which crashed (SIGSEGV) in a serial compilation
    loaded from numba's disk cache into a process whose thread pool had
    not started. Process 1 compiles and caches; process 2 loads and runs
    the same serial kernel and prints the same numbers."""
    def run():
        return _run_script(tmp_path, "by_thread.py", BY_THREAD, path, NUMBA_CACHE_DIR=str(tmp_path / "cache"))

    first = run()
    assert first[0] == path
    assert run() == first


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_class_sums_equal_the_reference(threading, dtype):
    """The per-class sums behind class_averages: the same float64 sums, to
    the bit, and the same zero counts as the numpy reference; classes with
    no rows (first, middle, last) are left as they were."""
    from npcnn.ops import class_sums, class_sums_numba
    rng = np.random.default_rng(5)
    flat = np.maximum(rng.standard_normal((40, 333)), 0).astype(dtype)   # half zeros, as after a ReLU
    flat[7, :] = 0
    bounds = np.array([0, 0, 9, 9, 9, 25, 26, 40, 40], dtype=np.int64)     # classes 0, 2, 3 and 7 empty
    start = rng.standard_normal((8, 333))
    ours, reference = (start.copy(), np.arange(8.0)), (start.copy(), np.arange(8.0))
    class_sums_numba.add_class_sums(flat, bounds, *ours)
    class_sums.add_class_sums(flat, bounds, *reference)
    np.testing.assert_array_equal(ours[0], reference[0])
    np.testing.assert_array_equal(ours[1], reference[1])
    np.testing.assert_array_equal(ours[0][[0, 2, 3, 7]], start[[0, 2, 3, 7]])
    assert ours[1][2] == 2 + np.count_nonzero(flat[9:9] == 0) and ours[1][1] == 1 + np.count_nonzero(flat[:9] == 0)


TWO_THREADS = '''
import threading
import numpy as np
import npcnn.functional as F
rng = np.random.default_rng(0)
x, w, b = rng.random((500, 400)), rng.random((120, 400)), rng.random(120)
images, filters = rng.random((64, 6, 14, 14)), rng.random((16, 6, 5, 5))
want = (F.linear(x, w, b), F.conv2d(images, filters))
same = []
def run():
    same.append(all(np.array_equal(F.linear(x, w, b), want[0]) and np.array_equal(F.conv2d(images, filters), want[1])
                    for _ in range(100)))
threads = [threading.Thread(target=run) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(same)
'''


def test_parallel_kernels_called_from_two_threads(tmp_path):
    """numba's workqueue layer (npcnn's where OpenMP does not load) aborts
    the process when two threads launch parallel kernels at once; Kernel
    makes them take turns. In a process of its own, on that layer, so that
    an abort fails this test and not the whole run."""
    printed = _run_script(tmp_path, "two_threads.py", TWO_THREADS, NUMBA_THREADING_LAYER="workqueue")
    assert printed == ["[True,", "True]"]


# (N, C, H, W, k, padding): blocks of lanes cut by N (16 float32 or 8
# float64 images a vector), tiles of 4 output pixels cut by Ho*Wo and
# wrapping across output rows, non-square, padding 0 to 2
# (and at least 20 taps C*kH*kW; one channel of 25, as LeNet-5's conv_1)
LANES = [(37, 6, 13, 11, 5, 0), (21, 8, 9, 12, 3, 2), (16, 3, 7, 7, 5, 1), (19, 64, 6, 5, 1, 0),
         (18, 1, 12, 10, 5, 2)]


@pytest.mark.parametrize("case", LANES, ids=[str(c) for c in LANES])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_the_kernel_vectorised_over_images(threading, dtype, case):
    """conv_lanes_numba (register tiles of 4 or 6 filters x 4 pixels over
    blocks of images) equals torch for every filter count 1-9 (F % 4 = 0-3,
    odd and even) and 12-16 (six filters at a time twice, then four, two
    or none), with and without its ReLU, and is the direct path's choice
    for such a batch; forward and transposed (the flipped filters)."""
    from npcnn.ops import conv_direct_numba, conv_lanes_numba
    N, C, H, W, k, pad = case
    rng = np.random.default_rng(N + C)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    assert conv_direct_numba.uses_lanes(x.shape, (1, C, k, k), dtype, 1.0)
    for Fo in [*range(1, 10), 12, 14, 15, 16]:
        w = (rng.standard_normal((Fo, C, k, k)) / k).astype(dtype)
        b = rng.standard_normal(Fo).astype(dtype)
        for relu, torch_op in ((False, TF.conv2d), (True, lambda *a: TF.relu(TF.conv2d(*a)))):
            check_op(lambda x, w, b: conv_lanes_numba.conv2d(x, w, b, (pad, pad), relu, work=x.size * w.size),
                     lambda x, w, b: torch_op(x, w, b, 1, pad), [x, w, b])
        assert F.conv_path("conv2d", x, w, 1, pad) == "direct"
        check_op(lambda x, w, b: F.conv2d_relu(x, w, b, 1, pad), lambda x, w, b: TF.relu(TF.conv2d(x, w, b, 1, pad)),
                 [x, w, b])
    wt = (rng.standard_normal((C, 3, k, k)) / k).astype(dtype)    # C -> 3 channels, transposed
    padding = min(pad, k - 1)
    assert F.conv_path("conv_transpose2d", x, wt, 1, padding) == "flipped direct"
    check_op(lambda x, w: F.conv_transpose2d(x, w, None, 1, padding),
             lambda x, w: TF.conv_transpose2d(x, w, None, 1, padding), [x, wt])


def test_which_batches_run_the_kernel_vectorised_over_images():
    """A vector's worth of images at least, filters of 20 taps or more,
    mostly nonzero channels: the deconvnet's signals (one channel in 16),
    SimpleCNN's conv_1 (9 taps) and small batches keep the wide-row kernel,
    which leaves zero channels out; LeNet-5's conv_1 (25 taps) takes the lanes."""
    from npcnn.ops.conv_direct_numba import uses_lanes
    w = (16, 6, 5, 5)
    assert uses_lanes((16, 6, 14, 14), w, np.float32, 1.0)
    assert uses_lanes((8, 6, 14, 14), w, np.float64, 1.0)
    assert not uses_lanes((15, 6, 14, 14), w, np.float32, 1.0)
    assert not uses_lanes((7, 6, 14, 14), w, np.float64, 1.0)
    assert uses_lanes((500, 1, 28, 28), (6, 1, 5, 5), np.float32, 1.0)
    assert not uses_lanes((500, 1, 28, 28), (8, 1, 3, 3), np.float32, 1.0)
    assert not uses_lanes((64, 16, 5, 5), (6, 16, 5, 5), np.float32, 1 / 16)
    assert uses_lanes((64, 16, 5, 5), (6, 16, 5, 5), np.float32, 0.5)
    # batches judged sparse (the wide-row kernel) and dense (the lanes) by
    # their first 16 images, the rest of the batch otherwise: torch's numbers
    w = (np.random.default_rng(9).standard_normal((16, 6, 5, 5)) / 10).astype(np.float32)
    sparse_first = _zero_channels((40, 6, 14, 12), np.float32, seed=8)
    sparse_first[:16, 1:] = 0
    dense_first = sparse_first[::-1].copy()
    for x in (sparse_first, dense_first):
        check_op(lambda x, w: F.conv2d(x, w, None, 1, 1), lambda x, w: TF.conv2d(x, w, None, 1, 1), [x, w])


def test_a_cost_named_in_tuning_is_read_at_each_call(monkeypatch):
    """A kernel whose cost is a name in ``tuning`` (the dense tiles') follows
    a change of that value, as every threshold there does."""
    from npcnn.ops.linear_numba import _linear_tiles
    work = 500 * 120 * 400                     # LeNet-5's fc_1 at batch 500
    monkeypatch.setattr(tuning, "COST_DENSE_MULTIPLY_ADD", 1 / 512)
    assert _linear_tiles.serial_at(work)
    monkeypatch.setattr(tuning, "COST_DENSE_MULTIPLY_ADD", 1 / 128)
    assert not _linear_tiles.serial_at(work)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_the_vector_transpose_equals_its_plain_python(dtype):
    """runtime/simd.transpose (shuffles in registers) moves a square of
    lanes x lanes elements as its plain-Python version does, between rows
    of any stride, leaving every other element alone."""
    from numba import njit
    from npcnn.ops.runtime import simd

    def move(src, dst):
        simd.transpose(src, 3, 37, dst, 5, 33)

    src = np.arange(40 * 40, dtype=dtype)
    jitted, plain = np.full(40 * 40, -1, dtype=dtype), np.full(40 * 40, -1, dtype=dtype)
    njit(move)(src, jitted)
    move(src, plain)
    L = simd.lanes(dtype)
    want = np.full(40 * 40, -1, dtype=dtype)
    for i in range(L):
        want[5 + np.arange(L) * 33 + i] = src[3 + i * 37:3 + i * 37 + L]
    np.testing.assert_array_equal(plain, want)
    np.testing.assert_array_equal(jitted, want)


def test_the_kernel_vectorised_over_images_in_several_launches(threading, monkeypatch):
    """A batch whose buffers pass ``tuning.DIRECT_LANES_CHUNK_BYTES`` goes
    in several launches of whole blocks (here one block each, the last
    one cut): the same numbers as torch, and with the ReLU, a NaN in an
    image stays NaN where it reaches, as torch's."""
    from npcnn.ops import conv_lanes_numba
    monkeypatch.setattr(tuning, "DIRECT_LANES_CHUNK_BYTES", 1)
    rng = np.random.default_rng(12)
    x = rng.standard_normal((37, 6, 9, 8)).astype(np.float32)
    w = (rng.standard_normal((5, 6, 3, 3)) / 5).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    check_op(lambda x, w, b: conv_lanes_numba.conv2d(x, w, b, (1, 1), False, work=x.size * w.size),
             lambda x, w, b: TF.conv2d(x, w, b, 1, 1), [x, w, b])
    x[20, 3, 4, 4] = np.nan
    y = check_op(lambda x, w, b: conv_lanes_numba.conv2d(x, w, b, (1, 1), True, work=x.size * w.size),
                 lambda x, w, b: TF.relu(TF.conv2d(x, w, b, 1, 1)), [x, w, b])
    assert np.isnan(y[20, :, 3:6, 3:6]).all() and not np.isnan(np.delete(y, 20, axis=0)).any()


def test_the_threading_layer_is_openmp_where_it_loads_else_workqueue(monkeypatch):
    """npcnn picks numba's OpenMP layer where its runtime (libgomp) loads,
    else workqueue, and a parallel kernel runs on the layer picked."""
    import builtins
    import numba
    from npcnn import ops
    real_import = builtins.__import__

    def without_openmp(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "numba.np.ufunc" and "omppool" in (fromlist or ()):
            raise ImportError("libgomp.so.1: cannot open shared object file")
        return real_import(name, globals, locals, fromlist, level)

    picked = ops._threading_layer()
    assert picked in ("omp", "workqueue")
    F.relu(np.ones(1 << 22, dtype=np.float32))          # parallel: the threads start on the layer set
    assert numba.threading_layer() == os.environ.get("NUMBA_THREADING_LAYER", picked)
    monkeypatch.setattr(builtins, "__import__", without_openmp)
    assert ops._threading_layer() == "workqueue"


def test_numba_threading_layer_in_the_environment_wins(tmp_path):
    """NUMBA_THREADING_LAYER set by the user is left as it is (a process of
    its own: the layer is chosen when npcnn is imported)."""
    code = ("import numpy as np, numba, npcnn.functional as F\n"
            "F.relu(np.ones(1 << 22, dtype=np.float32)); print(numba.threading_layer())\n")
    assert _run_script(tmp_path, "layer.py", code, NUMBA_THREADING_LAYER="workqueue") == ["workqueue"]


FORKED = '''
import multiprocessing, numpy as np, numba
import npcnn.functional as F
from npcnn.ops.runtime import jit
x = np.linspace(-1.0, 1.0, 1 << 22, dtype=np.float32)

def child(queue):
    y = F.relu(x)                            # parallel work: the serial compilation, in a forked child
    queue.put((jit._forked_after_openmp, bool(np.array_equal(y, np.maximum(x, 0)))))

if __name__ == "__main__":
    F.relu(x)                                # numba's threads start in the parent
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=child, args=(queue,))
    process.start()
    process.join(120)
    print(numba.threading_layer(), process.exitcode, *(queue.get() if process.exitcode == 0 else ()))
'''


def test_a_child_forked_after_the_threads_started_runs_its_kernels(tmp_path):
    """GNU OpenMP is not fork-safe and numba stops a forked child that starts
    a parallel loop: after OpenMP's threads started, a forked child runs the
    serial compilations and gets the same numbers (a process of its own:
    forking the test process, with torch's threads, could hang it)."""
    layer, *rest = _run_script(tmp_path, "forked.py", FORKED)
    assert rest == (["0", "True", "True"] if layer == "omp" else ["0", "False", "True"]), rest


# (N, C, H, W, F, padding) for Winograd's F(2, 5) along the rows: blocks of
# lanes cut by N (16 float32 or 8 float64 images), an odd count of pairs
# (9 x 5: the last pair computed twice), rows of odd width (a last half
# pair), F odd (a zero filter beside the last) and even, 12 to 20; padding
# 0 to 2 and asymmetric, so that packed rows are widened to whole strips
WINOGRAD_ROWS = [(37, 6, 13, 14, 16, 0), (21, 4, 9, 12, 17, 2), (16, 5, 7, 11, 13, (1, 0)),
                 (19, 2, 6, 5, 20, 1)]


@pytest.mark.parametrize("case", WINOGRAD_ROWS, ids=[str(c) for c in WINOGRAD_ROWS])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_winograd_along_the_rows(threading, dtype, case):
    """winograd_rows_numba (F(2, 5): tiles of two filters x two pairs of
    outputs) and its NumPy reference equal torch, with and without the
    ReLU, in both dtypes, and the direct path takes it for such a batch
    in float32 (in float64 it won nothing)."""
    from npcnn.ops import winograd_rows, winograd_rows_numba
    N, C, H, W, Fo, pad = case
    pads = pad if isinstance(pad, tuple) else (pad, pad)
    rng = np.random.default_rng(N + Fo)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = (rng.standard_normal((Fo, C, 5, 5)) / 5).astype(dtype)
    b = rng.standard_normal(Fo).astype(dtype)
    assert winograd_rows_numba.uses_winograd_rows(x.shape, w.shape, pads, dtype) == (dtype == np.float32)
    for relu, torch_op in ((False, TF.conv2d), (True, lambda *a: TF.relu(TF.conv2d(*a)))):
        check_op(lambda x, w, b: winograd_rows_numba.conv2d(x, w, b, pads, relu, work=x.size * w.size),
                 lambda x, w, b: torch_op(x, w, b, 1, pads), [x, w, b])
    check_op(lambda x, w, b: winograd_rows.conv2d_rows(x, w, b, pads), lambda x, w, b: TF.conv2d(x, w, b, 1, pads),
             [x, w, b])
    assert F.conv_path("conv2d", x, w, 1, pads) == "direct"
    check_op(lambda x, w, b: F.conv2d_relu(x, w, b, 1, pads), lambda x, w, b: TF.relu(TF.conv2d(x, w, b, 1, pads)),
             [x, w, b])


def test_winograd_along_the_rows_in_several_launches_keeps_nan_in_its_reach(threading, monkeypatch):
    """One block a launch (the last one cut), and NaNs at a strip's first
    input, at one that three strips share and at a row's last: NaN exactly
    where torch's outputs are, with the ReLU too."""
    from npcnn.ops import winograd_rows_numba
    monkeypatch.setattr(tuning, "DIRECT_LANES_CHUNK_BYTES", 1)
    rng = np.random.default_rng(13)
    x = rng.standard_normal((37, 6, 14, 13)).astype(np.float32)
    w = (rng.standard_normal((16, 6, 5, 5)) / 5).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    x[3, 0, 2, 0] = x[20, 4, 7, 5] = x[36, 5, 13, 12] = np.nan
    for relu, torch_op in ((False, TF.conv2d), (True, lambda *a: TF.relu(TF.conv2d(*a)))):
        y = check_op(lambda x, w, b: winograd_rows_numba.conv2d(x, w, b, (1, 1), relu, work=x.size * w.size),
                     lambda x, w, b: torch_op(x, w, b, 1, 1), [x, w, b])
        assert np.isnan(y).any() and not np.isnan(np.delete(y, [3, 20, 36], axis=0)).any()


@pytest.mark.parametrize("taps", [2, 3, 4, 5])
def test_the_winograd_rows_reference_for_every_filter_width(taps):
    """winograd_rows.conv2d_rows, F(2, r) for filters 2 to 5 wide (the
    kernel takes 5 only), equals torch on rows of odd and even width,
    padded and not; a sixth tap has no transforms."""
    from npcnn.ops import winograd_rows
    rng = np.random.default_rng(taps)
    x = rng.standard_normal((3, 2, 7, 9)).astype(np.float64)
    w = rng.standard_normal((4, 2, 3, taps))
    b = rng.standard_normal(4)
    for pad in ((0, 0), (1, 2)):
        check_op(lambda x, w, b: winograd_rows.conv2d_rows(x, w, b, pad), lambda x, w, b: TF.conv2d(x, w, b, 1, pad),
                 [x, w, b])
    with pytest.raises(ValueError, match="2 to 5 taps"):
        winograd_rows.transforms(6)


def test_the_winograd_rows_transforms_are_the_derived_ones():
    """The kernel's B^T and A^T, written out over their nonzeros, are
    ``winograd_rows.transforms(5)``'s: B^T applied to one-hot strips, and
    A^T to one-hot sums (lane l of a vector stands for column l)."""
    from numba import njit
    from npcnn.ops import winograd_rows, winograd_rows_numba as rows
    from npcnn.ops.runtime import simd
    B_T, _, A_T = winograd_rows.transforms(5)
    L = simd.lanes(np.float64)
    strip = np.zeros(6 * L)
    for b in range(6):
        strip[b * L + b] = 1.0                       # input b is 1 in lane b
    V = np.zeros(6 * L)
    rows._transform_strips(strip, 1, 6, 1, V)
    np.testing.assert_array_equal(V.reshape(6, L)[:, :6], B_T)

    @njit
    def outputs(V, U, offsets, bias, out):
        y = rows._two_filters_two_pairs(V, U, 2, 0, offsets, 0, 0, bias)
        simd.store(out, 0, y[0])
        simd.store(out, L, y[1])

    U = np.ones(2 * 6)                                # one tap, two filters, every position 1
    out = np.zeros(2 * L)
    outputs(V=np.eye(6, L).ravel(), U=U, offsets=np.zeros(1, dtype=np.int64), bias=np.zeros(2), out=out)
    np.testing.assert_array_equal(out.reshape(2, L)[:, :6], A_T)


def test_which_batches_run_winograd_along_the_rows():
    """Filters 5 wide, 12 of them or more, 10 taps a position or more, and
    a block's transformed strips within 224 KiB: LeNet-5's conv_2 and 8
    channels of 14 x 14 (210 KiB), not LeNet-5's conv_1 (5 taps) nor its
    transposed conv_2 (6 filters), nor 10 channels of 14 x 14 (262 KiB), nor
    conv_2's shape with 3x3 filters or 8 filters, nor float64."""
    from npcnn.ops.winograd_rows_numba import uses_winograd_rows
    assert uses_winograd_rows((500, 6, 14, 14), (16, 6, 5, 5), (0, 0), np.float32)
    assert uses_winograd_rows((500, 8, 14, 14), (16, 8, 5, 5), (0, 0), np.float32)
    assert uses_winograd_rows((500, 2, 14, 14), (12, 2, 5, 5), (0, 0), np.float32)
    assert not uses_winograd_rows((500, 1, 28, 28), (6, 1, 5, 5), (2, 2), np.float32)
    assert not uses_winograd_rows((500, 1, 14, 14), (16, 1, 5, 5), (0, 0), np.float32)
    assert not uses_winograd_rows((500, 16, 10, 10), (6, 16, 5, 5), (4, 4), np.float32)
    assert not uses_winograd_rows((500, 10, 14, 14), (16, 10, 5, 5), (0, 0), np.float32)
    assert not uses_winograd_rows((500, 6, 14, 14), (16, 6, 3, 3), (0, 0), np.float32)
    assert not uses_winograd_rows((500, 6, 14, 14), (8, 6, 5, 5), (0, 0), np.float32)
    assert not uses_winograd_rows((500, 6, 14, 14), (16, 6, 5, 5), (0, 0), np.float64)
