"""The GPU check, in one command, for a machine with CUDA:

    python -m benchmarks.gpu [--out DIR] [--max-memory GIB] [--skip-tests]

1. the CUDA tests: the device tests (every method on CUDA, and CUDA equal
   to the CPU), the attribution tests and ``npcnn explain``'s tests, which
   pick CUDA when it is present;
2. every ``npcnn explain`` method on VGG16 (random weights) at 224x224 on CUDA;
3. timings on CUDA: the VGG16 forward (batch 1 and 64), one training epoch
   of LeNet-5 and of SimpleCNN on MNIST, and images per second of Grad-CAM,
   saliency, Integrated Gradients (50 steps) and SmoothGrad (25 samples) on
   VGG16 at batch 1 and at the best batch, with peak GPU memory (the best
   batch stays under ``--max-memory`` when given).

Writes gpu.md and gpu.json into ``--out`` (default out/gpu) and prints the
table. Without CUDA it says so in one line and exits 1: nothing here is
meaningful on a CPU (``npcnn bench`` has the CPU's rows).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

TESTS = ["tests/test_torch_devices.py", "tests/test_attribution.py", "tests/test_explain_cli.py"]
EVERY_METHOD = ["filters", "feature-maps", "saliency", "gradient-x-input", "guided-backprop", "smoothgrad",
                "integrated-gradients", "gradcam", "gradcam++", "guided-gradcam", "occlusion", "actmax",
                "inversion", "deepdream", "fgsm", "compare"]


def run_tests():
    started = time.perf_counter()
    code = subprocess.call([sys.executable, "-m", "pytest", "-q", *TESTS])
    return {"step": "CUDA tests (" + ", ".join(TESTS) + ")", "ok": code == 0,
            "seconds": time.perf_counter() - started}


def every_explain_method(device):
    from PIL import Image

    from vis.cli import main
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        rng = np.random.default_rng(0)
        paths = []
        for k in range(2):
            path = Path(folder) / f"photo{k}.png"
            Image.fromarray((rng.random((256, 320, 3)) * 255).astype(np.uint8)).save(path)
            paths.append(str(path))
        code = main(["explain", "--model", "vgg16", "--random-weights", "--device", device, "--image", *paths,
                     "--method", *EVERY_METHOD, "--steps", "50", "--out", str(Path(folder) / "out")])
    return {"step": "every explain method, VGG16 224x224", "ok": code == 0, "seconds": time.perf_counter() - started}


def _timed(call, device, repeats):
    call()
    torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        call()
    torch.cuda.synchronize(device)
    return (time.perf_counter() - started) / repeats


def vgg16_forward(device):
    import bridge
    module = bridge.torch_model("vgg16").to(device).eval()
    rows = []
    for batch in (1, 64):
        x = torch.randn(batch, 3, 224, 224, device=device)
        with torch.no_grad():
            seconds = _timed(lambda: module(x), device, 20)
        rows.append({"case": f"VGG16 forward, batch {batch}", "ms": 1000 * seconds,
                     "images_per_s": batch / seconds})
    return rows


def mnist_training(device):
    from bridge.train import train
    from npcnn.data import load_mnist
    data_dir = os.environ.get("NPCNN_DATA_DIR")
    name = "mnist" if data_dir else "mnist5k"
    train_set = load_mnist(name, "train", data_dir=data_dir, verbose=False)
    test_set = load_mnist(name, "test", data_dir=data_dir, verbose=False)
    rows = []
    for arch in ("lenet5", "simplecnn"):
        started = time.perf_counter()
        result = train(arch, train_set, test_set, epochs=1, seed=0, device=device, progress=False)
        rows.append({"case": f"train {arch}, 1 epoch of {len(train_set.labels)} ({name})",
                     "seconds": time.perf_counter() - started, "test_accuracy": result.test_accuracy})
    return rows


def attribution_rates(device, max_memory):
    import bridge
    from benchmarks.attribution_rates import method_rates
    module = bridge.torch_model("vgg16").to(device).eval()
    return method_rates(module, 224, "features.29", batches=(1,), best=True, rows=128, max_memory=max_memory)


def report(checks, forward, training, rates, device_name):
    from benchmarks.attribution_rates import markdown
    lines = [f"# GPU check on {device_name}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}", "",
             "| check | result | seconds |", "| --- | --- | ---: |"]
    lines += [f"| {c['step']} | {'passed' if c['ok'] else 'FAILED'} | {c['seconds']:.0f} |" for c in checks]
    lines += ["", "| case | time | images/s |", "| --- | ---: | ---: |"]
    lines += [f"| {r['case']} | {r['ms']:.2f} ms | {r['images_per_s']:.0f} |" for r in forward]
    lines += [f"| {r['case']} | {r['seconds']:.1f} s (test accuracy {r['test_accuracy']:.2%}) | |" for r in training]
    lines += ["", markdown(rates, "VGG16 224x224 float32 (TF32 convolutions, torch's default):")]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="out/gpu")
    p.add_argument("--max-memory", type=float, help="GiB: the best batch's peak GPU memory stays under it")
    p.add_argument("--skip-tests", action="store_true", help="timings only")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("benchmarks.gpu: no CUDA device on this machine (torch.cuda.is_available() is False); "
              "the CPU's rows are in npcnn bench", file=sys.stderr)
        return 1
    device = torch.device("cuda")
    checks = [] if args.skip_tests else [run_tests()]
    checks.append(every_explain_method("cuda"))
    forward, training = vgg16_forward(device), mnist_training("cuda")
    max_memory = None if args.max_memory is None else int(args.max_memory * 2**30)
    rates = attribution_rates(device, max_memory)
    text = report(checks, forward, training, rates, torch.cuda.get_device_name(device))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from npcnn.atomic import atomic_write_text
    atomic_write_text(out / "gpu.md", text)
    atomic_write_text(out / "gpu.json", json.dumps(
        {"checks": checks, "forward": forward, "training": training,
         "rates": [r.__dict__ for r in rates]}, indent=1))
    print(text)
    return 0 if all(c["ok"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
