"""vis.arguments: the ranged argument types every command uses."""
import argparse

import pytest

from vis.arguments import (BadArgument, bounded, digit, finite_float, non_empty_str, non_negative_int,
                           positive_float, positive_int, seed_int, unit_interval_float)


@pytest.mark.parametrize("parse, text, value", [
    (positive_int, "1", 1), (positive_int, " 128 ", 128), (positive_int, "+3", 3),
    (non_negative_int, "0", 0), (seed_int, "4294967295", 2**32 - 1), (digit, "9", 9),
    (finite_float, "-1e-3", -0.001), (finite_float, ".5", 0.5), (finite_float, "2.", 2.0),
    (positive_float, "1e-300", 1e-300), (unit_interval_float, "0", 0.0), (unit_interval_float, "1", 1.0),
    (positive_int, 7, 7), (finite_float, 0.25, 0.25),          # defaults given as numbers
])
def test_values_in_range_are_parsed(parse, text, value):
    assert parse(text) == value and type(parse(text)) is type(value)


@pytest.mark.parametrize("parse, text, message", [
    (positive_int, "0", "must be in [1, 1000000], got 0"),
    (positive_int, "1000001", "got 1000001"),
    (non_negative_int, "-1", "must be in [0, 1000000], got -1"),
    (seed_int, "4294967296", "must be in [0, 4294967295]"),
    (digit, "10", "must be in [0, 9], got 10"),
    (positive_int, "1.0", "expected an integer, got '1.0'"),
    (positive_int, "1_000", "expected an integer"),
    (positive_int, "١٢", "expected an integer"),
    (positive_int, "0x10", "expected an integer"),
    (positive_int, "", "expected an integer, got ''"),
    (positive_int, "9" * 5000, "(5000 characters)"),
    (positive_int, True, "expected an integer, got 'True'"),
    (finite_float, "nan", "expected a finite number, got 'nan'"),
    (finite_float, "-inf", "expected a finite number"),
    (finite_float, "1e999", "expected a finite number, got '1e999'"),
    (finite_float, "1,5", "expected a finite number"),
    (finite_float, float("nan"), "expected a finite number"),
    (positive_float, "0", "must be > 0, got 0"),
    (positive_float, "-0.0", "must be > 0"),
    (unit_interval_float, "1.0001", "must be in [0, 1], got 1.0001"),
    (unit_interval_float, "-1e-9", "got -1e-09"),
    (bounded(float, 0, 1, low_open=True, high_open=True), "1", "must be in (0, 1), got 1"),
    (bounded(int, high=5), "6", "must be <= 5, got 6"),
    (non_empty_str, "", "must not be empty"),
    (non_empty_str, " \t", "must not be empty"),
    (non_empty_str, "a\0b", "NUL"),
])
def test_values_out_of_range_say_what_is_accepted(parse, text, message):
    with pytest.raises(BadArgument) as err:
        parse(text)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert isinstance(err.value, ValueError)


def test_argparse_keeps_the_message_and_names_the_option(capsys):
    parser = argparse.ArgumentParser(prog="p", exit_on_error=False)
    parser.add_argument("--steps", type=positive_int)
    with pytest.raises(argparse.ArgumentError) as err:
        parser.parse_args(["--steps", "-1"])
    assert str(err.value) == "argument --steps: must be in [1, 1000000], got -1"


def test_bounded_takes_int_or_float_only():
    with pytest.raises(TypeError, match="int or float"):
        bounded(str, 0, 1)
