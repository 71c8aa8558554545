"""The benchmark cases: npcnn (numpy and numba backends) against torch on the
CPU, at LeNet-5 and VGG16 shapes, ops and whole pipelines.

Every case first checks that npcnn and torch agree (max relative difference
<= 1e-4 in float32), then times them. Times are medians in milliseconds.
"""
import numpy as np
import torch
import torch.nn.functional as TF

import bridge
import npcnn
import npcnn.functional as F
from npcnn import deconv
from npcnn.analysis import class_averages, select_per_class

from .timing import Result, interleaved_ms, max_rel_diff, median_ms

AGREE = 1e-4  # float32, relative to the largest magnitude
WINOGRAD = "npcnn-numba runs Winograd's F(2x2, 3x3): 4/9 of the multiplications (see GFLOP/s below)"


def _check(case, ours, theirs):
    diff = max_rel_diff(ours, theirs)
    if not diff <= AGREE:
        raise AssertionError(f"{case}: npcnn and torch differ by {diff:.2e} (relative); not timing it")
    return diff


def _time_all(case, group, flops, impls, reference, repeats, budget_s, note=""):
    """impls: {name: fn} (fn returns the output); reference: the torch output.

    Each implementation's repeats run back to back, as a user's calls would,
    in three rounds that take the implementations in turn, each after a
    pause in which the other library's idle threads go to sleep
    (``timing.interleaved_ms``). Alternating them call by call was tried:
    numpy's OpenBLAS threads, still spinning after npcnn's call, then took a
    core from torch, whose LeNet-5 forward at batch 500 went from 20 to 50
    ms."""
    result = Result(case, group, flops, note=note)
    for name, fn in impls.items():
        if name != "torch":
            result.max_rel_diff = max(result.max_rel_diff, _check(f"{case} [{name}]", fn(), reference))
    result.ms = interleaved_ms(impls, repeats, budget_s)
    return result


def _t(a):
    return torch.from_numpy(a)


# -- ops ------------------------------------------------------------------------

def conv_case(name, N, C, H, W, Fo, k, stride, pad, repeats, budget_s, numpy=True):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = (rng.standard_normal((Fo, C, k, k)) / np.sqrt(C * k * k)).astype(np.float32)
    b = rng.standard_normal(Fo, dtype=np.float32)
    Ho, Wo = (H + 2 * pad - k) // stride + 1, (W + 2 * pad - k) // stride + 1
    flops = 2.0 * N * Fo * Ho * Wo * C * k * k
    impls = {"torch": lambda: TF.conv2d(_t(x), _t(w), _t(b), stride, pad).numpy(),
             "npcnn-numba": lambda: F.conv2d(x, w, b, stride, pad)}
    if numpy:
        impls["npcnn-numpy"] = lambda: F.conv2d(x, w, b, stride, pad, backend="numpy")
    with torch.no_grad():
        ref = impls["torch"]()
    note = WINOGRAD if F.conv_path("conv2d", x, w, stride, pad) == "winograd" else ""
    return _time_all(f"conv2d {name}", "op", flops, impls, ref, repeats, budget_s, note=note)


def conv_transpose_case(name, N, C, H, W, Fo, k, stride, pad, repeats, budget_s, numpy=True):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = (rng.standard_normal((C, Fo, k, k)) / np.sqrt(C * k * k)).astype(np.float32)
    flops = 2.0 * N * C * H * W * Fo * k * k
    impls = {"torch": lambda: TF.conv_transpose2d(_t(x), _t(w), None, stride, pad).numpy(),
             "npcnn-numba": lambda: F.conv_transpose2d(x, w, None, stride, pad)}
    if numpy:
        impls["npcnn-numpy"] = lambda: F.conv_transpose2d(x, w, None, stride, pad, backend="numpy")
    note = WINOGRAD if F.conv_path("conv_transpose2d", x, w, stride, pad) == "winograd" else ""
    return _time_all(f"conv_transpose2d {name}", "op", flops, impls, impls["torch"](), repeats, budget_s,
                     note=note)


def pool_case(name, N, C, H, W, k, stride, repeats, budget_s, numpy=True):
    x = np.maximum(np.random.default_rng(2).standard_normal((N, C, H, W), dtype=np.float32), 0)
    impls = {"torch": lambda: tuple(t.numpy() for t in TF.max_pool2d(_t(x), k, stride, return_indices=True)),
             "npcnn-numba": lambda: F.max_pool2d(x, k, stride)}
    if numpy:
        impls["npcnn-numpy"] = lambda: F.max_pool2d(x, k, stride, backend="numpy")
    return _time_all(f"max_pool2d+switches {name}", "op", 0, impls, impls["torch"](), repeats, budget_s,
                     note="after a ReLU: half the windows tie")


def unpool_case(name, N, C, H, W, k, stride, repeats, budget_s, numpy=True):
    x = np.random.default_rng(3).standard_normal((N, C, H, W), dtype=np.float32)
    y, s = F.max_pool2d(x, k, stride)
    impls = {"torch": lambda: TF.max_unpool2d(_t(y), _t(s), k, stride, output_size=(H, W)).numpy(),
             "npcnn-numba": lambda: F.max_unpool2d(y, s, k, stride, output_size=(H, W))}
    if numpy:
        impls["npcnn-numpy"] = lambda: F.max_unpool2d(y, s, k, stride, output_size=(H, W), backend="numpy")
    return _time_all(f"max_unpool2d {name}", "op", 0, impls, impls["torch"](), repeats, budget_s)


def linear_case(name, N, I, O, repeats, budget_s):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((N, I), dtype=np.float32)
    w = (rng.standard_normal((O, I)) / np.sqrt(I)).astype(np.float32)
    b = rng.standard_normal(O, dtype=np.float32)
    impls = {"torch": lambda: TF.linear(_t(x), _t(w), _t(b)).numpy(),
             "npcnn-numba": lambda: F.linear(x, w, b),
             "npcnn-numpy": lambda: F.linear(x, w, b, backend="numpy")}
    return _time_all(f"linear {name}", "op", 2.0 * N * I * O, impls, impls["torch"](), repeats, budget_s)


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
