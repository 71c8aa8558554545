"""The benchmark cases: npcnn (numpy and numba backends) against torch on the
CPU, at LeNet-5 and VGG16 shapes, ops and whole pipelines.

Every case first checks that npcnn and torch agree (max relative difference
<= 1e-4 in float32), then times them. Times are in milliseconds: the median call of the fastest
round (``timing.interleaved_ms``).
"""
import numpy as np
import torch
import torch.nn.functional as TF

import bridge
import npcnn
import npcnn.functional as F
from npcnn import deconv
from npcnn.analysis import class_averages, select_per_class
from npcnn.ops import conv_direct_numba, winograd_rows_numba

from . import traffic
from .timing import Result, interleaved_ms, max_rel_diff, median_ms

AGREE = 1e-4  # float32, relative to the largest magnitude
WINOGRAD = "npcnn-numba runs Winograd's F(2x2, 3x3): 4/9 of the multiplications (see GFLOP/s below)"
WINOGRAD_ROWS = ("npcnn-numba runs Winograd's F(2, 5) along the rows: 6/10 of the multiplications "
                 "(see GFLOP/s below)")


def _runs_winograd_rows(x, w, pad):
    """Whether the direct path runs its F(2, 5) variant on this dense batch
    (``ops/winograd_rows_numba.py``)."""
    return conv_direct_numba.over_images(x.shape, w.shape, (pad, pad), x.dtype, 1.0) is winograd_rows_numba


def _check(case, ours, theirs):
    diff = max_rel_diff(ours, theirs)
    if not diff <= AGREE:
        raise AssertionError(f"{case}: it and torch differ by {diff:.2e} (relative); not timing it")
    return diff


def _time_all(case, group, flops, impls, reference, repeats, budget_s, note="", bytes=0.0):
    """impls: {name: fn} (fn returns the output); reference: the torch output.

    Each implementation's repeats run back to back, as a user's calls would,
    in three rounds that take the implementations in turn, each after a
    pause in which the other library's idle threads go to sleep
    (``timing.interleaved_ms``). Alternating them call by call was tried:
    numpy's OpenBLAS threads, still spinning after npcnn's call, then took a
    core from torch, whose LeNet-5 forward at batch 500 went from 20 to 50
    ms."""
    result = Result(case, group, flops, note=note, bytes=bytes)
    for name, fn in impls.items():
        if name != "torch":
            result.max_rel_diff = max(result.max_rel_diff, _check(f"{case} [{name}]", fn(), reference))
    result.ms = interleaved_ms(impls, repeats, budget_s)
    return result


def _t(a):
    return torch.from_numpy(a)


def _with(impls, numpy_impl, kernel_impl):
    """The implementations of an op row: torch and npcnn-numba, then
    ``npcnn bench --kernel``'s function if given (the readable reference is
    left out then: the row is about the user's kernel), else npcnn-numpy
    where asked for."""
    if kernel_impl is not None:
        impls[KERNEL] = kernel_impl
    elif numpy_impl is not None:
        impls["npcnn-numpy"] = numpy_impl
    return impls


KERNEL = "kernel"  # the name of ``npcnn bench --kernel``'s function in a row's timings


# -- ops ------------------------------------------------------------------------
# Each op case takes ``kernel``: a function with torch's signature for that op,
# on NumPy arrays (``npcnn bench --kernel``), timed beside npcnn and torch.

def conv_case(name, N, C, H, W, Fo, k, stride, pad, repeats, budget_s, numpy=True, dilation=1, groups=1,
              kernel=None):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = (rng.standard_normal((Fo, C // groups, k, k)) / np.sqrt(C // groups * k * k)).astype(np.float32)
    b = rng.standard_normal(Fo, dtype=np.float32)
    reach = dilation * (k - 1) + 1  # the span of a dilated kernel
    Ho, Wo = (H + 2 * pad - reach) // stride + 1, (W + 2 * pad - reach) // stride + 1
    flops = 2.0 * N * Fo * Ho * Wo * (C // groups) * k * k
    args = (stride, pad, dilation, groups)
    impls = _with({"torch": lambda: TF.conv2d(_t(x), _t(w), _t(b), *args).numpy(),
                   "npcnn-numba": lambda: F.conv2d(x, w, b, *args)},
                  (lambda: F.conv2d(x, w, b, *args, backend="numpy")) if numpy else None,
                  (lambda: kernel(x, w, b, *args)) if kernel else None)
    with torch.no_grad():
        ref = impls["torch"]()
    path = F.conv_path("conv2d", x, w, *args)
    note = WINOGRAD if path == "winograd" else \
        WINOGRAD_ROWS if path == "direct" and _runs_winograd_rows(x, w, pad) else \
        "" if (dilation, groups) == (1, 1) else f"npcnn-numba runs its {path} path (ops/conv_numba.py)"
    return _time_all(f"conv2d {name}", "op", flops, impls, ref, repeats, budget_s, note=note)


def conv_transpose_case(name, N, C, H, W, Fo, k, stride, pad, repeats, budget_s, numpy=True, kernel=None):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = (rng.standard_normal((C, Fo, k, k)) / np.sqrt(C * k * k)).astype(np.float32)
    flops = 2.0 * N * C * H * W * Fo * k * k
    impls = _with({"torch": lambda: TF.conv_transpose2d(_t(x), _t(w), None, stride, pad).numpy(),
                   "npcnn-numba": lambda: F.conv_transpose2d(x, w, None, stride, pad)},
                  (lambda: F.conv_transpose2d(x, w, None, stride, pad, backend="numpy")) if numpy else None,
                  (lambda: kernel(x, w, None, stride, pad)) if kernel else None)
    note = WINOGRAD if F.conv_path("conv_transpose2d", x, w, stride, pad) == "winograd" else ""
    return _time_all(f"conv_transpose2d {name}", "op", flops, impls, impls["torch"](), repeats, budget_s,
                     note=note)


def pool_case(name, N, C, H, W, k, stride, repeats, budget_s, numpy=True, kernel=None):
    x = np.maximum(np.random.default_rng(2).standard_normal((N, C, H, W), dtype=np.float32), 0)
    impls = _with({"torch": lambda: tuple(t.numpy() for t in TF.max_pool2d(_t(x), k, stride, return_indices=True)),
                   "npcnn-numba": lambda: F.max_pool2d(x, k, stride)},
                  (lambda: F.max_pool2d(x, k, stride, backend="numpy")) if numpy else None,
                  (lambda: kernel(x, k, stride, return_indices=True)) if kernel else None)
    ref = impls["torch"]()
    return _time_all(f"max_pool2d+switches {name}", "op", 0, impls, ref, repeats, budget_s,
                     note="after a ReLU: half the windows tie",
                     bytes=traffic.max_pool2d_bytes(x.shape, ref[0].shape, x.itemsize))


def unpool_case(name, N, C, H, W, k, stride, repeats, budget_s, numpy=True, kernel=None):
    x = np.random.default_rng(3).standard_normal((N, C, H, W), dtype=np.float32)
    y, s = F.max_pool2d(x, k, stride)
    impls = _with({"torch": lambda: TF.max_unpool2d(_t(y), _t(s), k, stride, output_size=(H, W)).numpy(),
                   "npcnn-numba": lambda: F.max_unpool2d(y, s, k, stride, output_size=(H, W))},
                  (lambda: F.max_unpool2d(y, s, k, stride, output_size=(H, W), backend="numpy"))
                  if numpy else None,
                  (lambda: kernel(y, s, k, stride, output_size=(H, W))) if kernel else None)
    return _time_all(f"max_unpool2d {name}", "op", 0, impls, impls["torch"](), repeats, budget_s,
                     bytes=traffic.max_unpool2d_bytes(y.shape, x.shape, x.itemsize))


def linear_case(name, N, I, O, repeats, budget_s, numpy=True, kernel=None):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((N, I), dtype=np.float32)
    w = (rng.standard_normal((O, I)) / np.sqrt(I)).astype(np.float32)
    b = rng.standard_normal(O, dtype=np.float32)
    impls = _with({"torch": lambda: TF.linear(_t(x), _t(w), _t(b)).numpy(),
                   "npcnn-numba": lambda: F.linear(x, w, b)},
                  (lambda: F.linear(x, w, b, backend="numpy")) if numpy else None,
                  (lambda: kernel(x, w, b)) if kernel else None)
    return _time_all(f"linear {name}", "op", 2.0 * N * I * O, impls, impls["torch"](), repeats, budget_s)


def relu_case(name, shape, repeats, budget_s, numpy=True, kernel=None):
    """A ReLU on a conv's output (not in place: a new array, as a forward that
    keeps the conv's output needs)."""
    x = np.random.default_rng(8).standard_normal(shape, dtype=np.float32)
    impls = _with({"torch": lambda: TF.relu(_t(x)).numpy(), "npcnn-numba": lambda: F.relu(x)},
                  (lambda: F.relu(x, backend="numpy")) if numpy else None,
                  (lambda: kernel(x)) if kernel else None)
    return _time_all(f"relu {name}", "op", 0, impls, impls["torch"](), repeats, budget_s,
                     bytes=traffic.relu_bytes(x.shape, x.itemsize))


# The op rows of the bench, per op: (name, the case's arguments, whether the
# readable reference is timed in a quick run too). ``npcnn bench --kernel``
# times a user's kernel on the same rows.
OP_ROWS = {
    "conv2d": [
        ("LeNet-5 conv_1 (500x1x28x28, 6 5x5 p2)", dict(N=500, C=1, H=28, W=28, Fo=6, k=5, stride=1, pad=2), True),
        ("LeNet-5 conv_2 (500x6x14x14, 16 5x5)", dict(N=500, C=6, H=14, W=14, Fo=16, k=5, stride=1, pad=0), True),
        ("VGG16 conv3_x 256->256 56x56", dict(N=1, C=256, H=56, W=56, Fo=256, k=3, stride=1, pad=1), False),
        # MobileNet's depthwise 3x3 convolutions: one filter per channel (groups = channels)
        ("MobileNet depthwise 3x3 32ch 112x112", dict(N=1, C=32, H=112, W=112, Fo=32, k=3, stride=1, pad=1,
                                                      groups=32), True),
        ("MobileNet depthwise 3x3 512ch 14x14", dict(N=1, C=512, H=14, W=14, Fo=512, k=3, stride=1, pad=1,
                                                     groups=512), True),
        # DeepLab's atrous 3x3 convolutions on a 33x33 map (a 513x513 image at output stride 16)
        ("DeepLab dilated 3x3 rate 2 256->256 33x33", dict(N=1, C=256, H=33, W=33, Fo=256, k=3, stride=1, pad=2,
                                                           dilation=2), False),
        ("DeepLab dilated 3x3 rate 4 256->256 33x33", dict(N=1, C=256, H=33, W=33, Fo=256, k=3, stride=1, pad=4,
                                                           dilation=4), False),
    ],
    "conv_transpose2d": [
        ("LeNet-5 conv_2^T (500x16x10x10 -> 6)", dict(N=500, C=16, H=10, W=10, Fo=6, k=5, stride=1, pad=0), True),
        ("VGG16 conv3_x^T 256->256 56x56", dict(N=1, C=256, H=56, W=56, Fo=256, k=3, stride=1, pad=1), False),
    ],
    "max_pool2d": [
        ("LeNet-5 pool_1 (500x6x28x28, 2x2)", dict(N=500, C=6, H=28, W=28, k=2, stride=2), True),
        ("VGG16 pool1 (1x64x224x224, 2x2)", dict(N=1, C=64, H=224, W=224, k=2, stride=2), True),
    ],
    "max_unpool2d": [
        ("LeNet-5 pool_1 (500x6x28x28, 2x2)", dict(N=500, C=6, H=28, W=28, k=2, stride=2), True),
        ("VGG16 pool1 (1x64x224x224, 2x2)", dict(N=1, C=64, H=224, W=224, k=2, stride=2), True),
    ],
    "relu": [
        ("LeNet-5 conv_1's output (500x6x28x28)", dict(shape=(500, 6, 28, 28)), True),
        ("VGG16 conv1_1's output (1x64x224x224)", dict(shape=(1, 64, 224, 224)), True),
    ],
    "linear": [
        ("LeNet-5 fc_1 (500x400 -> 120)", dict(N=500, I=400, O=120), True),
        ("VGG16 fc6 (1x25088 -> 4096)", dict(N=1, I=25088, O=4096), True),
    ],
}
CASE_OF = {"conv2d": conv_case, "conv_transpose2d": conv_transpose_case, "max_pool2d": pool_case,
           "max_unpool2d": unpool_case, "relu": relu_case, "linear": linear_case}


def op_rows(op, repeats, budget_s, quick, kernel=None):
    """The bench's rows of ``op``, timed: npcnn-numba and torch, and either
    the readable reference (in a quick run only where it takes no more than
    a second or so) or ``kernel``."""
    return [CASE_OF[op](name, **shape, repeats=repeats, budget_s=budget_s, numpy=not quick or in_quick,
                        kernel=kernel)
            for name, shape, in_quick in OP_ROWS[op]]


def sgemm_rate(n=2048, repeats=5):
    """GFLOP/s of numpy's float32 matmul (this machine's BLAS), the yardstick."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    ms = median_ms(lambda: a @ b, repeats=repeats)
    return 2.0 * n ** 3 / (ms * 1e6)


# -- pipelines --------------------------------------------------------------------

def twins(arch, seed=0):
    torch.manual_seed(seed)
    module = bridge.torch_model(arch)
    return module, bridge.from_torch(module)


def forward_case(arch, N, size, repeats, budget_s, numpy=True, flops=0.0):
    module, model = twins(arch)
    x = np.random.default_rng(6).standard_normal((N, 3 if arch in ("vgg16", "alexnet") else 1, size, size),
                                                 dtype=np.float32)
    model_np = npcnn.build(arch)
    model_np.load_state_dict(model.state_dict())
    model_np.backend = "numpy"
    impls = {"torch": lambda: module(_t(x)).numpy(), "npcnn-numba": lambda: model(x)}
    if numpy:
        impls["npcnn-numpy"] = lambda: model_np(x)
    with torch.no_grad():
        ref = impls["torch"]()
        return _time_all(f"{arch} forward batch {N}", "pipeline", flops * N, impls, ref, repeats, budget_s)


def deconv_suite_case(x4, repeats, budget_s):
    """The deconvnet figures of the LeNet-5 study: 22 maps (6 of pool_1, 16 of
    pool_2) of 4 digits, each projected to the pixels."""
    module, model = twins("lenet5")
    reference = bridge.ReferenceDeconvnet(module)
    layers = {"pool_1": range(6), "pool_2": range(16)}

    def ours():
        return [deconv.project_channels(model, x4, l, c) for l, c in layers.items()]

    def theirs():
        return [reference.project(x4, l, c) for l, c in layers.items()]

    return _time_all("deconv suite: LeNet-5, 22 maps x 4 digits", "pipeline", 0,
                     {"torch": theirs, "npcnn-numba": ours}, theirs(), repeats, budget_s,
                     note="torch: the reference deconvnet (autograd, ReLU backward replaced)")


def torch_class_averages(module, x, y, index, batch=500):
    """The same averages with torch forward hooks: sums per class by index_add_."""
    sums, counts = {}, torch.zeros(10, dtype=torch.float64)
    for start in range(0, len(index), batch):
        idx = index[start:start + batch]
        labels = torch.from_numpy(y[idx])
        _, acts = bridge.torch_activations(module, _t(x[idx]))
        counts += torch.bincount(labels, minlength=10)
        for name, a in acts.items():
            flat = a.reshape(len(a), -1).double()
            s = sums.setdefault(name, torch.zeros(10, flat.shape[1], dtype=torch.float64))
            s.index_add_(0, labels, flat)
    return {k: (v / counts[:, None]).float().numpy() for k, v in sums.items()}


def class_average_case(x, y, repeats, budget_s):
    module, model = twins("simplecnn")
    index = select_per_class(y, 500)

    def ours():
        avg = class_averages(model, x, y, per_class=500)
        return [avg[k].reshape(10, -1) for k in model.layer_names]

    def theirs():
        avg = torch_class_averages(module, x, y, index)
        return [avg[k] for k in model.layer_names]

    return _time_all(f"class averages: SimpleCNN, {len(index)} images, every layer", "pipeline", 0,
                     {"torch": theirs, "npcnn-numba": ours}, theirs(), repeats, budget_s)


def vgg_deconv_case(repeats, budget_s):
    """One activation of VGG16's last pooling layer projected to the pixels
    (forward included on both sides)."""
    module, model = twins("vgg16")
    x = np.random.default_rng(7).standard_normal((1, 3, 224, 224), dtype=np.float32)
    reference = bridge.ReferenceDeconvnet(module)
    # In float32 the two forwards may break a near-tie in a pooling window
    # differently (one switch in 10^5, see tests/test_deconv.py), which moves
    # that unit's projection: take the first channel whose path agrees.
    for channel in range(8):
        ref = reference.project(x, "pool5", [channel], "max")[0]
        if max_rel_diff(deconv.project(model, x, "pool5", channel, "max"), ref) <= AGREE:
            break
    ours = lambda: deconv.project(model, x, "pool5", channel, "max")  # noqa: E731
    theirs = lambda: reference.project(x, "pool5", [channel], "max")[0]  # noqa: E731
    return _time_all(f"VGG16 deconv: pool5 unit (channel {channel}) to pixels, 224x224", "pipeline",
                     0, {"torch": theirs, "npcnn-numba": ours}, ref, repeats, budget_s)


VGG16_FLOPS = 2 * 15.47e9  # multiply-adds of one 224x224 forward (conv + fc), x2
LENET5_FLOPS = 2 * (6 * 25 * 784 + 16 * 150 * 100 + 400 * 120 + 120 * 84 + 84 * 10)
