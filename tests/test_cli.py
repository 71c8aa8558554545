"""The npcnn command: the demo runs and reports parity; bad input is one line."""
import subprocess
import sys

import pytest

from vis.cli import main


def test_bad_input_is_one_line_and_non_zero(tmp_path, capsys):
    empty = tmp_path / "no-idx-files"
    empty.mkdir()
    assert main(["demo", "--data-dir", str(empty), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("npcnn demo: error: ") and str(empty) in err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists()       # refused before anything was written


def test_debug_shows_the_traceback(tmp_path):
    empty = tmp_path / "no-idx-files"
    empty.mkdir()
    with pytest.raises(ValueError, match="no-idx-files"):
        main(["--debug", "demo", "--data-dir", str(empty), "--out", str(tmp_path / "o")])


def test_console_script_help_lists_the_subcommands(capsys):
    """The command's help, from a process of its own, names every
    subcommand, and each subcommand's help ends with an example (asked in
    this process: a process each took two seconds to import torch)."""
    done = subprocess.run([sys.executable, "-m", "vis.cli", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0
    for command in ("demo", "train", "deconv", "atlas", "explain", "bench"):
        assert command in done.stdout
        assert main([command, "--help"]) == 0
        assert f"example: npcnn {command}" in capsys.readouterr().out


def test_train_writes_a_checkpoint_that_loads(tmp_path, capsys):
    import bridge
    out = tmp_path / "simplecnn.pt"
    assert main(["train", "--model", "simplecnn", "--dataset", "mnist5k", "--epochs", "1",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "simplecnn: test accuracy" in printed and f"wrote {out}" in printed
    assert bridge.load(out).meta["epochs"] == 1


def test_train_refuses_an_unwritable_output_before_training(tmp_path, capsys):
    out = tmp_path / "missing-folder" / "x.pt"
    assert main(["train", "--model", "lenet5", "--dataset", "mnist5k", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("npcnn train: error: argument --out: output folder") and err.count("\n") == 1
    assert not out.parent.exists()
