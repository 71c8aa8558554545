"""Argument types for the ``npcnn`` commands: each parses one value and
checks its range, so a bad value is refused before any work starts, in one
line that names the option::

    p.add_argument("--batch-size", type=positive_int, default=128)
    $ npcnn train ... --batch-size 0
    npcnn train: error: argument --batch-size: must be in [1, 1000000], got 0 (see npcnn train --help)

argparse names the option because these raise ``ArgumentTypeError`` (its
message is kept; a plain ``ValueError`` would become "invalid value").
``BadArgument`` is also a ``ValueError``, so the same checks can be called
outside argparse (on a ``Namespace`` built in code) and still mean "bad
input" to callers.

Numbers are read from ASCII text only: Python's ``int`` and ``float`` also
accept other scripts' digits and underscores ("١٢", "1_0"), which no user
means to type. Floats must be finite: "nan" and "inf" parse, and pass no
comparison the way a user expects.
"""
import argparse
import math
import re


class BadArgument(argparse.ArgumentTypeError, ValueError):
    """A value outside what an option accepts; the message says what it accepts."""


_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
MAX_DIGITS = 30   # far beyond any range below; keeps int() off 4,300-digit inputs


def _parse(kind, text):
    """``text`` as an int or a finite float, or BadArgument saying which was expected."""
    if isinstance(text, kind) and not isinstance(text, bool):
        value = text                        # a default given as a number
    else:
        text = str(text).strip()
        if kind is int:
            if not _INT.fullmatch(text) or len(text) > MAX_DIGITS:
                raise BadArgument(f"expected an integer, got {_clip(text)}")
            value = int(text)
        else:
            if not _FLOAT.fullmatch(text):
                raise BadArgument(f"expected a finite number, got {_clip(text)}")
            value = float(text)
    if kind is float and not math.isfinite(value):
        raise BadArgument(f"expected a finite number, got {_clip(text)}")  # 1e999 overflows to inf
    return value


def bounded(kind, low=None, high=None, *, low_open=False, high_open=False):
    """An argparse ``type=``: ``kind`` (int or float) within [low, high].

    ``low_open`` / ``high_open`` exclude that end (``bounded(float, 0,
    low_open=True)`` is "> 0"); None leaves that side unbounded.
    The message states the range: "must be >= 1, got 0".
    """
    if kind not in (int, float):
        raise TypeError(f"bounded: kind must be int or float, got {kind!r}")

    def parse(text):
        value = _parse(kind, text)
        too_low = low is not None and (value < low or (low_open and value == low))
        too_high = high is not None and (value > high or (high_open and value == high))
        if too_low or too_high:
            raise BadArgument(f"must be {describe_range(low, high, low_open, high_open)}, "
                              f"got {_show(value)}")
        return value

    parse.__name__ = f"{kind.__name__} {describe_range(low, high, low_open, high_open)}"
    return parse


def describe_range(low, high, low_open=False, high_open=False):
    """">= 1", "in [0, 1]", "in (0, 1]", "< 10", "any value"."""
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{_show(low)}, {_show(high)}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {_show(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {_show(high)}"
    return "any value"


def _clip(text, keep=24):
    """``repr(text)``, shortened when long: the message stays one readable line."""
    text = str(text)
    return repr(text) if len(text) <= keep else f"{text[:keep]!r}... ({len(text)} characters)"


def _show(number):
    """Integers in full (a seed's bound is 4294967295, not 4.29497e+09), floats short."""
    return str(number) if isinstance(number, int) else f"{number:g}"


# The ranges every command uses. Upper ends are far above any sensible use
# but below what turns into a MemoryError or an overflow inside torch.
MAX_COUNT = 10**6

positive_int = bounded(int, 1, MAX_COUNT)             # epochs, steps, batch sizes, per-class counts
non_negative_int = bounded(int, 0, MAX_COUNT)         # "0 means off": --save-every
seed_int = bounded(int, 0, 2**32 - 1)                 # what both numpy and torch accept as a seed
digit = bounded(int, 0, 9)                            # an MNIST class
finite_float = bounded(float)
positive_float = bounded(float, 0, low_open=True)     # learning rates, scales
non_negative_float = bounded(float, 0)
unit_interval_float = bounded(float, 0, 1)            # fractions, probabilities, epsilons in [0, 1]


def non_empty_str(text):
    """Any text with something other than white space in it ('' and '  ' refused)."""
    if not str(text).strip():
        raise BadArgument(f"must not be empty, got {text!r}")
    if "\0" in str(text):
        raise BadArgument(f"must not contain a NUL character, got {_clip(text)}")
    return str(text)
