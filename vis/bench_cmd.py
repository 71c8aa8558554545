"""``npcnn bench``: the kernel benchmarks against torch (see benchmarks/run.py)."""
import argparse

from .arguments import BadArgument
from .paths import output_dir, writing_into

EXAMPLE = ("example: npcnn bench --quick --out out/bench\n"
           "         npcnn bench --kernel benchmarks/examples/naive_conv2d.py:conv2d --op conv2d --quick "
           "--out out/kernel")


def add_parser(sub):
    from benchmarks.run import add_arguments
    p = sub.add_parser("bench", help="time npcnn's kernels and pipelines against torch",
                       description="Time npcnn (numpy and numba backends) against torch on the CPU: "
                       "ops at LeNet-5 and VGG16 shapes and whole pipelines; then the attribution methods' "
                       "images/s, the data-set statistics on 1 and 2 Dask workers and the explorer's "
                       "latency; results.md, results.json and ratios.png. With --kernel, judge your own kernel instead: "
                       "checked against npcnn's reference on a sweep of hard cases, then timed beside npcnn and "
                       "torch on the bench's shapes (kernel.md, kernel.json; exit 1 if it disagrees).",
                       epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(run=run)


def run(args):
    from benchmarks.run import run as run_benchmarks
    # benchmarks/run.py declares --out as plain text; checked here, before
    # minutes of timing, and the folder is removed again if the run fails
    try:
        out = output_dir(args.out)
    except BadArgument as err:
        raise ValueError(f"argument --out: {err}") from None
    with writing_into(out):
        return run_benchmarks(args, extra_sections=[explorer_section])


def explorer_section(quick):
    """The explorer's server time from a stroke to the updated prediction (target: p95 <= 50 ms)."""
    from vis.explore_latency import measure
    times = measure(requests=100 if quick else 200)
    rows = ["| request | p50 ms | p95 ms | max ms |", "| --- | ---: | ---: | ---: |"]
    rows += [f"| {key} | {t['p50']:.2f} | {t['p95']:.2f} | {t['max']:.2f} |" for key, t in times.items()]
    p95 = times["predict server"]["p95"]
    verdict = f"p95 server time of a stroke's prediction {p95:.2f} ms: target <= 50 ms " + (
        "met" if p95 <= 50 else "**missed**")
    return "Explorer (npcnn explore): latency", verdict + "\n\n" + "\n".join(rows), times
