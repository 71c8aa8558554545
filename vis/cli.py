"""The ``npcnn`` command.

It lives in ``vis``, the top of the dependency chain (vis -> bridge ->
npcnn), because its subcommands tie the engine, the torch side and the
figures together; the engine itself never imports it.

Every failure is one line on stderr and a non-zero exit: a bad argument
(exit 2, from argparse, naming the option), bad input found while running
(exit 1), Ctrl-C (exit 130), at any moment, the first seconds of importing
torch included. ``--debug`` shows the traceback instead, and the warnings
that torch, Pillow or numba raised on the way, which are otherwise held
back on failure (the one line must be the only line) and shown one line
each after a run that succeeds.
"""
import argparse
import os
import sys
import warnings

# This module imports nothing heavy at the top: a Ctrl-C while torch is
# still loading must land inside main()'s handler, not in a traceback.


class Parser(argparse.ArgumentParser):
    """argparse with its errors on one line: "npcnn train: error: argument
    --batch-size: must be in [1, 1000000], got 0 (npcnn train --help)", no
    usage block above it."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def build_parser():
    from . import (atlas_cmd, bench_cmd, deconv_cmd, demo, explain_cmd, explore_cmd, sanity_cmd, train_cmd,
                   verify_cmd)
    parser = Parser(
        prog="npcnn",
        description="CNN layers in readable NumPy and fast Numba, proven equal to PyTorch.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks and warnings on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo.add_parser(sub)
    train_cmd.add_parser(sub)
    deconv_cmd.add_parser(sub)
    atlas_cmd.add_parser(sub)
    explain_cmd.add_parser(sub)
    sanity_cmd.add_parser(sub)
    verify_cmd.add_parser(sub)
    explore_cmd.add_parser(sub)
    bench_cmd.add_parser(sub)
    return parser


def main(argv=None):
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    command = "npcnn"
    try:
        with warnings.catch_warnings(record=not debug) as caught:
            if not debug:
                warnings.simplefilter("default")   # once per place, as Python shows them
            parser = build_parser()
            try:
                args = parser.parse_args(argv)
            except SystemExit as done:             # --help (0) or a bad argument (2), already printed
                return done.code
            if args.command is None:
                parser.print_help()
                return 2
            command = f"npcnn {args.command}"
            code = args.run(args)
        for line in dict.fromkeys(_warning_lines(caught or [])):   # after success only
            print(f"{command}: warning: {line}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout was closed (npcnn ... | head -1): stop quietly, as Unix tools do
        _silence_stdout()
        return 141
    except Exception as err:                       # one line for users; --debug for developers
        if debug:
            raise
        print(f"{command}: error: {describe(err)}", file=sys.stderr)
        return 1


def describe(err):
    """The first line of the error's message. A bad-input error (ValueError,
    OSError) says what is wrong by itself; anything else is npcnn's own
    failure, so its type and where to look go with it."""
    text = str(err).strip()
    first = one_line(text.splitlines()[0]) if text else type(err).__name__
    if isinstance(err, (ValueError, OSError)):
        return first
    return f"{first} ({type(err).__name__}; npcnn --debug shows where)" if text else \
        f"{first} (npcnn --debug shows where)"


def one_line(text):
    """Line breaks (in a file name, say) written as \\n, so one line stays one."""
    return str(text).replace("\r", "\\r").replace("\n", "\\n")


def _silence_stdout():
    """Point stdout at /dev/null, so that Python's flush at exit does not
    print "Exception ignored ... BrokenPipeError" after we return."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):   # a stdout without a file (a test's capture)
        pass


def _warning_lines(caught):
    for w in caught:
        first = str(w.message).strip().splitlines()
        yield f"{first[0] if first else ''} ({w.category.__name__})"


if __name__ == "__main__":
    sys.exit(main())
