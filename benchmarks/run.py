"""Run the benchmark suite: npcnn (numpy, numba) against torch on the CPU, in
one process, with the same thread count, and report a Markdown table, JSON
and a bar chart.

    python -m benchmarks.run [--quick] [--out DIR]      (or: npcnn bench)
    npcnn bench --kernel MODULE:FUNCTION --op OP [--quick] [--repeats N] [--out DIR]
        (judge your own kernel: benchmarks/kernel_judge.py, benchmarks/README.md)
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np
import torch

from npcnn.atomic import atomic_path
from npcnn.data import load_mnist, to_tensor

from . import cases
from .bandwidth import copy_bandwidth
from .kernel_judge import judge
from .op_sweep import OPS
from .process import first_call_times, vgg16_forward_memory
from .yardsticks import machine_lines, rate_cells

# Targets, as the ratio npcnn-numba / torch in the same run (lower is better)
# or as a fraction of the SGEMM rate; keyed by the start of a case's name.
# Issue #22's: every op at LeNet-5's and VGG16's shapes at torch's speed or
# better, the pipelines well below it; LeNet-5 at batch 1's is an earlier
# issue's.
RATIO_TARGETS = {
    "conv2d LeNet-5": 1.0,
    "conv2d VGG16": 1.0,
    "conv_transpose2d LeNet-5": 1.0,
    "conv_transpose2d VGG16": 1.0,
    "max_pool2d+switches": 1.0,
    "max_unpool2d": 1.0,
    "linear": 1.0,
    "lenet5 forward batch 1": 0.5,
    "lenet5 forward batch 500": 0.7,
    "deconv suite": 0.2,
    "class averages": 1.0,
    "vgg16 forward batch 1": 0.9,
    "VGG16 deconv": 0.7,
}
SGEMM_TARGET = ("conv2d VGG16 conv3_x 256->256 56x56", 0.90)
MEMORY_TARGET = 1.5


def target_of(case):
    return next((t for prefix, t in RATIO_TARGETS.items() if case.startswith(prefix)), None)


def collect(quick):
    # Up to 9 repeats (15 in the full run), cut short once a case has taken
    # its time budget: the fast cases get enough repeats for a median that
    # a slow spell of a 2-core machine does not decide; VGG16 gets 6-9.
    # The cases of a few milliseconds or less get many more, so that their
    # repeats span a tenth of a second or so: the 20 repeats LeNet-5 at
    # batch 1 had (4 ms in all) once sat wholly in such a spell (0.34 ms a
    # call against 0.18).
    reps, budget = (9, 2.0) if quick else (15, 6.0)
    digits = load_mnist("mnist", "test", verbose=False)
    x_all = to_tensor(digits.images)
    y_all = digits.labels
    results = [r for op in cases.OP_ROWS for r in cases.op_rows(op, reps, budget, quick)]
    results += [cases.forward_case("lenet5", 1, 28, 500, budget, flops=cases.LENET5_FLOPS),
                cases.forward_case("lenet5", 500, 28, reps, budget, flops=cases.LENET5_FLOPS)]
    if not quick:
        results.append(cases.forward_case("lenet5", 5000, 28, reps, budget, flops=cases.LENET5_FLOPS))
    x4 = x_all[[3, 2, 8, 61]]  # one 0, 1, 5 and 8 of the test set
    results.append(cases.deconv_suite_case(x4, 40, budget))
    n = 1000 if quick else 5000
    results.append(cases.class_average_case(x_all[:2 * n], y_all[:2 * n], reps, budget)
                   if quick else cases.class_average_case(x_all, y_all, reps, budget))
    results.append(cases.forward_case("vgg16", 1, 224, reps, budget, numpy=not quick,
                                      flops=cases.VGG16_FLOPS))
    results.append(cases.vgg_deconv_case(reps, budget))
    return results


def report(results, sgemm, copy, first_call, memory, threads, quick):
    lines = [f"npcnn benchmarks ({'quick' if quick else 'full'}), {time.strftime('%Y-%m-%d')}: "
             f"{os.cpu_count()} CPUs, {threads} threads for numba and torch, torch {torch.__version__}, "
             f"numba {numba.__version__}, numpy {np.__version__}; float32; ms: the median call of each "
             f"implementation's fastest of three rounds.",
             *machine_lines(sgemm, copy), "",
             "| case | npcnn-numpy ms | npcnn-numba ms | torch ms | numba / torch | target | "
             "numba GFLOP/s | % of SGEMM | numba GB/s | % of copy | max rel diff |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        ratio, target = r.ratio(), target_of(r.case)
        g = r.gflops("npcnn-numba")
        mark = "" if target is None else (f"<= {target} " + ("met" if ratio <= target else "**missed**"))
        if r.case.startswith(SGEMM_TARGET[0]):
            mark += f"; >= {100 * SGEMM_TARGET[1]:.0f}% SGEMM " + ("met" if g / sgemm >= SGEMM_TARGET[1]
                                                                 else "**missed**")
        cell = lambda k: f"{r.ms[k]:.2f}" if k in r.ms else "-"  # noqa: E731
        lines.append(f"| {r.case} | {cell('npcnn-numpy')} | {cell('npcnn-numba')} | {cell('torch')} | "
                     f"{ratio:.2f} | {mark} | {' | '.join(rate_cells(r, 'npcnn-numba', sgemm, copy))} | "
                     f"{r.max_rel_diff:.1e} |")
    lines += [""] + [f"- {r.case}: {r.note}" for r in results if r.note]
    lines += ["", RATES_NOTE]
    cold, warm = first_call["cold"], first_call["warm"]
    lines += ["", f"numba first call (LeNet-5 forward, new process): cold cache {cold['first_call_s']:.2f} s, "
              f"warm cache {warm['first_call_s']:.2f} s (import {warm['import_s']:.2f} s); "
              f"second call {1e3 * warm['second_call_s']:.2f} ms."]
    if memory:
        n, t = memory["npcnn"], memory["torch"]
        ratio = n["peak_bytes"] / t["peak_bytes"]
        lines.append(f"VGG16 forward 1x3x224x224, peak resident memory (weights included): npcnn "
                     f"{n['peak_bytes'] / 2**20:.0f} MiB, torch {t['peak_bytes'] / 2**20:.0f} MiB: "
                     f"{ratio:.2f}x (target <= {MEMORY_TARGET}x: {'met' if ratio <= MEMORY_TARGET else 'missed'}); "
                     f"added by the forward itself: npcnn {n['forward_bytes'] / 2**20:.0f} MiB, "
                     f"torch {t['forward_bytes'] / 2**20:.0f} MiB.")
    return "\n".join(lines) + "\n"


RATES_NOTE = ("GFLOP/s count the multiply-adds of the direct sum, 2*N*F*(C/groups)*kH*kW*Ho*Wo, whatever "
              "the algorithm: on the Winograd paths npcnn multiplies 4/9 of them (3x3) or 6/10 (5 wide, "
              "along the rows), so its rate there is an effective one. GB/s count the bytes a memory-bound op must read and write at the least "
              "(benchmarks/traffic.py says which and why), against the copy bandwidth above; above 100% "
              "the arrays were still in the cache.")


def bar_chart(results, path):
    # matplotlib here, not vis's figure helpers: vis imports benchmarks (the
    # bench command), so benchmarks importing vis would make a cycle
    import matplotlib
    matplotlib.use("Agg")  # no display: CI, servers
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter
    named = [r for r in results if r.ratio() is not None]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(named) + 1.2))
    ratios = [r.ratio() for r in named]
    colours = ["tab:green" if (target_of(r.case) or 1.0) >= q else "tab:red" for r, q in zip(named, ratios)]
    ax.barh(range(len(named)), ratios, color=colours)
    for i, r in enumerate(named):
        t = target_of(r.case)
        if t is not None:
            ax.plot([t, t], [i - 0.4, i + 0.4], color="black", lw=2)
    ax.axvline(1.0, color="gray", ls="--", lw=0.8)
    ax.set_xscale("log")
    # plain numbers at 1-2-5 steps: the default log labels (3x10^-1, 4x10^-1) ran into each other
    ticks = [t for t in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20) if min(ratios) / 2 <= t <= max(ratios) * 2]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(range(len(named)), [r.case for r in named], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time npcnn-numba / time torch (log scale; < 1: npcnn faster; black tick: target)")
    ax.set_title("npcnn-numba against torch on this CPU", fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(prog="npcnn bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run(args)
    except ValueError as err:  # bad input, or a rejected kernel: one line, as npcnn bench prints it
        print(f"{p.prog}: error: {err}", file=sys.stderr)
        return 1


def add_arguments(p):
    p.add_argument("--quick", action="store_true", help="fewer repeats and cases: 2-3 minutes on 2 cores")
    p.add_argument("--out", default="bench", help="folder for results.md, results.json, ratios.png "
                   "(with --kernel: kernel.md, kernel.json)")
    p.add_argument("--no-memory", action="store_true", help="skip the VGG16 peak-memory processes")
    p.add_argument("--kernel", metavar="MODULE:FUNCTION",
                   help="judge your own kernel instead (module:function or path/to/file.py:function, with "
                   "torch's signature for --op, on NumPy arrays): checked against npcnn's reference on a sweep "
                   "of hard cases, then, if it agrees, timed beside npcnn and torch; see benchmarks/README.md")
    p.add_argument("--op", choices=OPS, help="the op --kernel implements")
    p.add_argument("--repeats", type=positive_int, metavar="N",
                   help="with --kernel: timed calls per implementation and row (default 9, 3 with --quick)")


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def run(args, extra_sections=()):
    """The bench; ``extra_sections``: callables(quick) -> (title, markdown, data), run after the
    kernels (``npcnn bench`` adds the explorer's latency this way). With ``--kernel``, the
    judge of a user's kernel instead (``kernel_judge``)."""
    threads = numba.config.NUMBA_NUM_THREADS
    torch.set_num_threads(threads)
    # a caller that builds its own Namespace (vis/demo.py) gives only --quick, --out and --no-memory
    kernel, op, repeats = (getattr(args, name, None) for name in ("kernel", "op", "repeats"))
    if (kernel is None) != (op is None):
        raise ValueError("--kernel and --op go together: --kernel MODULE:FUNCTION --op OP")
    if repeats is not None and kernel is None:
        raise ValueError("--repeats is for --kernel (the bench itself takes --quick)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if kernel is not None:
        text, rejected = judge(kernel, op, out, args.quick, repeats)
        print(text)
        if rejected:
            raise ValueError(rejected)  # after kernel.md and kernel.json are written: one line, exit 1
        print(f"wrote {out / 'kernel.md'}, {out / 'kernel.json'}")
        return 0
    start = time.perf_counter()
    sgemm = cases.sgemm_rate(repeats=3 if args.quick else 7)
    copy = copy_bandwidth(repeats=3 if args.quick else 7)
    results = collect(args.quick)
    first_call = first_call_times()
    memory = None if args.no_memory else vgg16_forward_memory(threads)
    text = report(results, sgemm, copy, first_call, memory, threads, args.quick)
    sections = [make(args.quick) for make in (*sections_of_the_bench(), *extra_sections)]
    text += "".join(f"\n## {title}\n\n{markdown}\n" for title, markdown, _ in sections)
    print(text)
    data = dict(machine=dict(cpus=os.cpu_count(), threads=threads, platform=platform.platform(),
                             torch=str(torch.__version__), numba=numba.__version__, numpy=np.__version__),
                quick=args.quick, sgemm_gflops=sgemm, copy_bandwidth=copy, first_call=first_call, memory=memory,
                results=[dict(case=r.case, group=r.group, ms=r.ms, flops=r.flops, bytes=r.bytes, ratio=r.ratio(),
                              target=target_of(r.case), max_rel_diff=r.max_rel_diff, note=r.note)
                         for r in results],
                sections={title: values for title, _, values in sections},
                seconds=time.perf_counter() - start)
    with atomic_path(out / "results.json") as tmp:
        Path(tmp).write_text(json.dumps(data, indent=1))
    with atomic_path(out / "results.md") as tmp:
        Path(tmp).write_text(text)
    bar_chart(results, out / "ratios.png")
    print(f"wrote {out / 'results.md'}, {out / 'results.json'}, {out / 'ratios.png'} "
          f"in {time.perf_counter() - start:.0f} s")
    return 0


def sections_of_the_bench():
    from .sections import attribution_section, stats_section
    return attribution_section, stats_section


if __name__ == "__main__":
    raise SystemExit(main())
