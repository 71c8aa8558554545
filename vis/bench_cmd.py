"""``npcnn bench``: the kernel benchmarks against torch (see benchmarks/run.py)."""
import argparse

from .arguments import BadArgument
from .paths import output_dir, writing_into

EXAMPLE = "example: npcnn bench --quick --out out/bench"


def add_parser(sub):
    from benchmarks.run import add_arguments
    p = sub.add_parser("bench", help="time npcnn's kernels and pipelines against torch",
                       description="Time npcnn (numpy and numba backends) against torch on the CPU: "
                       "ops at LeNet-5 and VGG16 shapes and whole pipelines; results.md, "
                       "results.json and ratios.png.", epilog=EXAMPLE,
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
        return run_benchmarks(args)
