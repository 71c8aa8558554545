"""``npcnn demo``: load MNIST, run LeNet-5 and SimpleCNN in npcnn (both
backends) and in torch on the same weights, and print how far apart every
layer is. Later issues grow it into the full tour (training, figures)."""
import time

import numpy as np
import torch

import bridge
import npcnn
from npcnn.data import load_mnist, to_tensor

EXAMPLE = "example: npcnn demo --samples 500 --data-dir ../shared/data/mnist"

# The parity the tests assert, quoted here so the summary says pass or fail.
TOLERANCE = {"float32": 1e-5, "float64": 1e-10}


def add_parser(sub):
    p = sub.add_parser("demo", help="load MNIST, run both networks in npcnn and torch, print parity",
                       description=__doc__, epilog=EXAMPLE)
    p.add_argument("--dataset", default="mnist", choices=["mnist", "mnist5k", "fashion-mnist"])
    p.add_argument("--data-dir", help="directory of the four IDX files (default: $NPCNN_DATA_DIR)")
    p.add_argument("--samples", type=int, default=1000, help="test images to run (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.set_defaults(run=run)


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run(args):
    if args.samples < 1:
        raise ValueError(f"--samples must be >= 1, got {args.samples}")
    test = load_mnist(args.dataset, "test", data_dir=args.data_dir)
    print(f"data: {test.name} test split, {len(test)} images, from {test.source}")
    x = to_tensor(test.images[:args.samples], dtype=np.dtype(args.dtype))
    print(f"input: {x.shape} {x.dtype}, normalised (x/255 - 0.1307)/0.3081")
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    tol = TOLERANCE[args.dtype]
    worst_overall, all_within = 0.0, True
    for arch in ("lenet5", "simplecnn"):
        torch.manual_seed(args.seed)
        module = bridge.torch_model(arch, dtype=torch_dtype)
        model = bridge.from_torch(module)
        print(f"\n{arch}: {model.num_parameters():,} parameters, random weights (seed {args.seed}), "
              "the same in npcnn and torch")
        timings = {}
        for backend in ("numba", "numpy"):
            model.backend = backend
            model(x[:2])  # compile (numba) before timing
            _, timings[backend] = _timed(lambda: model(x))
        with torch.no_grad():
            module(torch.from_numpy(x[:2]))
            _, timings["torch"] = _timed(lambda: module(torch.from_numpy(x)))
        model.backend = "numba"
        rows = bridge.compare_activations(model, module, x, atol=tol, rtol=tol)
        print(f"  {'layer':<12} {'output shape':<20} {'max |npcnn - torch|':>20} {'relative':>10}")
        for r in rows:
            print(f"  {r.layer:<12} {str(r.shape):<20} {r.max_abs:>20.3e} {r.max_rel:>10.2e}")
        worst = max(r.max_abs for r in rows)
        worst_overall = max(worst_overall, worst)
        all_within &= all(r.within for r in rows)
        print("  forward of {} images: npcnn-numba {:.1f} ms, npcnn-numpy {:.1f} ms, torch {:.1f} ms"
              .format(len(x), *(1e3 * timings[k] for k in ("numba", "numpy", "torch"))))
    verdict = "PASS" if all_within else "FAIL"
    print(f"\nparity: largest difference over every layer {worst_overall:.2e}; every entry within "
          f"atol {tol:g} + rtol {tol:g} x |torch| ({args.dtype}) -> {verdict}")
    return 0 if verdict == "PASS" else 1
