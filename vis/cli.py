"""The ``npcnn`` command.

It lives in ``vis``, the top of the dependency chain (vis -> bridge ->
npcnn), because its subcommands tie the engine, the torch side and the
figures together; the engine itself never imports it.

Bad input prints one line and exits non-zero; ``--debug`` shows the
traceback instead.
"""
import argparse
import sys

from . import atlas_cmd, bench_cmd, deconv_cmd, demo, explain_cmd, train_cmd


def build_parser():
    parser = argparse.ArgumentParser(
        prog="npcnn",
        description="CNN layers in readable NumPy and fast Numba, proven equal to PyTorch.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo.add_parser(sub)
    train_cmd.add_parser(sub)
    deconv_cmd.add_parser(sub)
    atlas_cmd.add_parser(sub)
    explain_cmd.add_parser(sub)
    bench_cmd.add_parser(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("npcnn: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one line for users; --debug for developers
        if args.debug:
            raise
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"npcnn {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
