"""``npcnn verify-deconv``: judge your deconvnet against npcnn's.

--impl names your function, module:function (the module found on the
Python path or in the current folder), with the signature

    project(module, x, layer, channel, select) -> projection shaped like x

module: a torch nn.Module with the layout of npcnn's twins (an
nn.Sequential of named Conv2d, ReLU and MaxPool2d layers, as
bridge.torch_model builds); x: an (N, C, H, W) tensor; layer: a layer
name (conv_2, features.5); channel: an int; select: "map" (the channel's
whole map) or "max" (its strongest unit). Return a NumPy array or a tensor.

The cases: overlapping pools, ties after ReLU, pooling with padding and
ceil_mode, select="max" with tied maxima, every layer kind as the start,
a batch of different images, float32 and float64, and the sweep of
--model (every map of every conv, ReLU and pool layer; four maps a layer
of AlexNet and VGG16 unless --every-map), with --weights or torch's
initialisation. Each call runs in a worker process, stopped after
--timeout seconds.

Writes into --out: report.md, report.json (per case: equal or not, the
relative error; for the first failure the likely cause, found by
comparing your output with npcnn's projections under the known wrong
rules) and verdict.png (your projection, npcnn's and their difference).
Prints one line per case. Exit status 1 when any case is not equal.
"""
import argparse
import functools

from bridge.verify import deconvnet, write_report
from bridge.verify.judge import MODELS
from bridge.verify.runner import check_target

from .arguments import BadArgument, bounded, non_empty_str
from .paths import input_file, output_dir, writing_into
from .verify_figures import draw_verdict

EXAMPLE = "example: npcnn verify-deconv --impl mydeconv:project --model lenet5 --out out/verify"
DAY_S = 24 * 3600
timeout_s = bounded(float, 0, DAY_S, low_open=True)


def implementation(text):
    """An argparse type: text of the form module:function."""
    try:
        return check_target(non_empty_str(text))
    except ValueError as err:
        raise BadArgument(str(err)) from None


def add_parser(sub):
    p = sub.add_parser("verify-deconv", help="judge your deconvnet (module:function) against npcnn's, "
                       "with the likely cause of a difference", description=__doc__, epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--impl", required=True, type=implementation, metavar="MODULE:FUNCTION",
                   help="your function project(module, x, layer, channel, select)")
    p.add_argument("--model", default="lenet5", choices=MODELS, help="the network of the whole-network sweep")
    p.add_argument("--weights", "--checkpoint", dest="weights", type=functools.partial(input_file, what="weights"),
                   help="its weights (state_dict or checkpoint; default: torch's initialisation, seed 0)")
    p.add_argument("--cases", nargs="+", type=non_empty_str, metavar="CASE",
                   help="run only these cases (a model's name runs its sweep; default: all)")
    p.add_argument("--every-map", action="store_true", help="sweep every map of AlexNet and VGG16 too "
                   "(hours with a per-channel function)")
    p.add_argument("--timeout", type=timeout_s, default=60.0, help="seconds one call may take (default 60)")
    p.add_argument("--out", type=output_dir, default="out/verify-deconv", help="folder for the report "
                   "(created; default out/verify-deconv)")
    p.set_defaults(run=run)


def run(args):
    with writing_into(args.out) as out:
        verdict = deconvnet(args.impl, model=args.model, weights=args.weights, cases=args.cases,
                            timeout=args.timeout, every_map=args.every_map or None,
                            on_result=lambda result: print(result.line(), flush=True))
        shown = verdict.first_failure or verdict.results[0]
        figure = draw_verdict(shown, out / "verdict.png")
        markdown, _ = write_report(verdict, out, figure.name if figure else None)
    equal = sum(r.passed for r in verdict.results)
    print(f"{equal} of {len(verdict.results)} cases equal; report: {markdown}"
          + (f", figure: {figure}" if figure else ""))
    return 0 if verdict.passed else 1
