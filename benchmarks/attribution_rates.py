"""Images per second of the torch attribution methods, on any device.

The four methods people run over data sets, at the settings the issue and
Captum's tutorials use: Grad-CAM and saliency (one forward-backward pass a
batch), Integrated Gradients with 50 steps and SmoothGrad with 25 samples
(50 and 25 passes' worth of rows per image, ``internal_batch_size`` rows a
pass). Each rate is validated before it is timed: the batch's maps must
equal the first image's map computed alone (so a batch size that changed a
result would be caught, not timed).

On a GPU the peak memory of the timed calls is reported
(``torch.cuda.max_memory_allocated``); on the CPU it is not measured here.
"""
import statistics
import time
from dataclasses import dataclass

import torch

from bridge.attribution import gradcam, integrated_gradients, saliency, smoothgrad

IG_STEPS, SG_SAMPLES = 50, 25
METHODS = {
    "Grad-CAM": lambda m, x, t, layer, rows: gradcam(m, x, t, layer),
    "saliency": lambda m, x, t, layer, rows: saliency(m, x, t),
    f"Integrated Gradients ({IG_STEPS} steps)":
        lambda m, x, t, layer, rows: integrated_gradients(m, x, t, steps=IG_STEPS, internal_batch_size=rows),
    f"SmoothGrad ({SG_SAMPLES} samples)":
        lambda m, x, t, layer, rows: smoothgrad(m, x, t, samples=SG_SAMPLES, internal_batch_size=rows),
}


@dataclass
class Rate:
    method: str
    batch: int
    images_per_s: float
    peak_bytes: int | None     # GPU only


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _images(module, batch, size, seed=0):
    p = next(module.parameters())
    gen = torch.Generator().manual_seed(seed)
    channels = next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d)).in_channels
    x = torch.randn((batch, channels, size, size), generator=gen, dtype=torch.float64, device="cpu")
    return x.to(device=p.device, dtype=p.dtype)


def check_batch_agrees(module, method, x, target, layer, rows, rtol):
    """The first image's map from the batch equals its map computed alone."""
    batch = METHODS[method](module, x, target, layer, rows)[:1]
    alone = METHODS[method](module, x[:1], target[:1], layer, rows)
    scale = float(alone.abs().max()) or 1.0
    error = float((batch - alone).abs().max()) / scale
    if not error <= rtol:
        raise AssertionError(f"{method}: the batch's first map differs from the map of that image alone "
                             f"(max error {error:.2e} of the map's largest value, tolerance {rtol:.0e})")


def rate(module, method, batch, size, layer, rows=64, min_seconds=1.0, max_calls=20):
    """Images per second of ``method`` at ``batch`` images of size x size:
    after one untimed call, calls are timed one by one until ``min_seconds``
    have passed (at least 3 unless ``max_calls`` is smaller, at most
    ``max_calls``), and the median call
    gives the rate, so one call slowed by the host does not decide it."""
    device = next(module.parameters()).device
    x = _images(module, batch, size)
    target = torch.zeros(batch, dtype=torch.int64, device=device)
    METHODS[method](module, x, target, layer, rows)        # warm-up: cuDNN's choice of algorithm, caches
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, start = [], time.perf_counter()
    least = min(3, max_calls)
    while len(times) < least or (len(times) < max_calls and time.perf_counter() - start < min_seconds):
        begin = time.perf_counter()
        METHODS[method](module, x, target, layer, rows)
        _sync(device)
        times.append(time.perf_counter() - begin)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return Rate(method, batch, batch / statistics.median(times), peak)


def best_rate(module, method, size, layer, rows=64, max_memory=None, largest=256, **timing):
    """The fastest batch size among 1, 2, 4, ... up to ``largest``: doubling
    stops when the rate gains less than 5 %, when a batch does not fit in
    memory, or when its peak passes ``max_memory`` bytes (GPU)."""
    on_gpu = next(module.parameters()).device.type == "cuda"
    best, batch = None, 1
    while batch <= largest:
        try:
            r = rate(module, method, batch, size, layer, rows, **timing)
        except torch.OutOfMemoryError:
            break
        finally:
            if on_gpu:
                torch.cuda.empty_cache()
        if max_memory is not None and r.peak_bytes is not None and r.peak_bytes > max_memory:
            break
        gained = best is None or r.images_per_s >= 1.05 * best.images_per_s
        if best is None or r.images_per_s > best.images_per_s:
            best = r
        if not gained:
            break
        batch *= 2
    return best


def method_rates(module, size, layer, batches=(1,), best=False, rows=64, max_memory=None, methods=None,
                 rtol=1e-4, **timing):
    """[Rate] for each method: at each of ``batches``, and at the best batch
    when ``best``; each method checked on a batch of 2 first."""
    rates = []
    device = next(module.parameters()).device
    for method in methods or METHODS:
        check_batch_agrees(module, method, _images(module, 2, size), torch.tensor([0, 1], device=device),
                           layer, rows, rtol)
        rates += [rate(module, method, b, size, layer, rows, **timing) for b in batches]
        if best:
            found = best_rate(module, method, size, layer, rows, max_memory, **timing)
            if found is not None and found.batch not in batches:
                rates.append(found)
    return rates


def markdown(rates, heading):
    lines = [heading, "", "| method | batch | images/s | peak memory |", "| --- | ---: | ---: | ---: |"]
    for r in rates:
        memory = "-" if r.peak_bytes is None else f"{r.peak_bytes / 2**30:.2f} GiB"
        lines.append(f"| {r.method} | {r.batch} | {r.images_per_s:.1f} | {memory} |")
    return "\n".join(lines)


def bench_sections(quick):
    """The attribution rows of ``npcnn bench``: [(heading, [Rate])].

    On the CPU, LeNet-5 (every method, batch 1 and the best batch) and VGG16
    at batch 1 (Grad-CAM and saliency in the quick run; all four in the
    full run, where Integrated Gradients alone takes tens of seconds); on a
    GPU, VGG16's four methods at batch 1 and the best batch. No targets on
    the CPU: these are the honest numbers of this machine."""
    import bridge
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    vgg16 = bridge.torch_model("vgg16").to(device).eval()
    timing = dict(min_seconds=0.3 if quick else 1.0, max_calls=3 if quick else 10)
    if device.type == "cuda":
        return [("VGG16 224x224 on CUDA:", method_rates(vgg16, 224, "features.29", best=True, rows=128,
                                                         **timing))]
    lenet5 = bridge.torch_model("lenet5").eval()
    vgg16_methods = ["Grad-CAM", "saliency"] if quick else None
    return [("LeNet-5 28x28 on this CPU:", method_rates(lenet5, 28, "relu_2", best=True, rows=256, **timing)),
            ("VGG16 224x224 on this CPU, batch 1:",
             method_rates(vgg16, 224, "features.29", rows=64, methods=vgg16_methods, min_seconds=0.0,
                          max_calls=1))]    # a VGG16 call takes seconds here: one after the warm-up
