"""Hostile input to npcnn train, deconv, atlas, demo and bench: every bad
argument or file is one line on stderr naming the option or the file, a
non-zero exit, no traceback, and nothing left on disk.

Run in-process through ``vis.cli.main`` (fast); as real processes where
the process is the point: Ctrl-C while torch is still importing, and a
FIFO given as a checkpoint, which must not block.
"""
import os
import re
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch

import bridge
import npcnn
from vis import train_cmd
from vis.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def refused(capsys, argv, code, *fragments):
    """Run ``npcnn argv``; assert exit ``code`` and one stderr line holding every fragment."""
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith(f"npcnn {argv[0]}: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


@pytest.fixture(scope="module")
def lenet5(tmp_path_factory):
    """An untrained LeNet-5 as a checkpoint (.pt) and as npcnn's .npz."""
    folder = tmp_path_factory.mktemp("weights")
    module = bridge.torch_model("lenet5")
    bridge.save_checkpoint(folder / "lenet5.pt", module, dataset="mnist5k")
    npcnn.build("lenet5", seed=0).save(folder / "lenet5.npz")
    return folder


def checkpoint_with(path, state=None, meta=None, like=None):
    """A .pt file holding ``state`` (default: ``like``'s) and ``meta``."""
    source = torch.load(like, weights_only=True)
    torch.save({"state_dict": state if state is not None else source["state_dict"],
                "meta": meta if meta is not None else source["meta"]}, path)
    return path


# -------------------------------------------------- arguments, at parse time

TRAIN = ["train", "--model", "lenet5", "--dataset", "mnist5k"]
# each with a valid --out first: argparse checks every occurrence, so a bad one after it is still refused
T = TRAIN + ["--out", "{tmp}/o.pt"]
D = ["deconv", "--checkpoint", "{npz}", "--out", "{tmp}/o"]
A = ["atlas", "--checkpoint", "{npz}", "--out", "{tmp}/o"]
M = ["demo", "--out", "{tmp}/o"]
ARGUMENTS = [
    # (argv, fragments of the one line)
    (T + ["--batch-size", "0"], ["argument --batch-size", "[1, 1000000]", "got 0"]),
    (T + ["--batch-size", "-5"], ["argument --batch-size", "got -5"]),
    (T + ["--batch-size", "1.5"], ["argument --batch-size", "expected an integer", "'1.5'"]),
    (T + ["--batch-size", ""], ["argument --batch-size", "expected an integer"]),
    (T + ["--batch-size", "9" * 40], ["argument --batch-size", "expected an integer", "40 characters"]),
    (T + ["--batch-size", "١٢"], ["argument --batch-size", "expected an integer"]),
    (T + ["--epochs", "0"], ["argument --epochs", "got 0"]),
    (T + ["--epochs", "-1"], ["argument --epochs", "got -1"]),
    (T + ["--lr", "nan"], ["argument --lr", "finite", "'nan'"]),
    (T + ["--lr", "inf"], ["argument --lr", "finite"]),
    (T + ["--lr", "1e999"], ["argument --lr", "finite"]),
    (T + ["--lr", "0"], ["argument --lr", "(0, 1]", "got 0"]),
    (T + ["--lr", "-0.1"], ["argument --lr", "got -0.1"]),
    (T + ["--lr", "5"], ["argument --lr", "got 5"]),
    (T + ["--seed", "-1"], ["argument --seed", "[0, 4294967295]"]),
    (T + ["--seed", str(2**32)], ["argument --seed", "got 4294967296"]),
    (T + ["--save-every", "-1"], ["argument --save-every", "got -1"]),
    (T + ["--device", ""], ["argument --device", "empty"]),
    (T + ["--out", ""], ["argument --out", "empty path"]),
    (T + ["--out", "   "], ["argument --out", "empty path"]),
    (T + ["--out", "{tmp}/o.pt/"], ["argument --out", "names a folder"]),
    (T + ["--out", "{tmp}/nowhere/o.pt"], ["argument --out", "output folder", "does not exist"]),
    (D + ["--digits", "10"], ["argument --digits", "[0, 9]", "got 10"]),
    (D + ["--digits", "-1"], ["argument --digits", "got -1"]),
    (D + ["--digits", "seven"], ["argument --digits", "'seven'"]),
    (D + ["--layers", ""], ["argument --layers", "empty"]),
    (D + ["--out", ""], ["argument --out", "empty path"]),
    (D + ["--dataset", "../mnist"], ["argument --dataset", "invalid choice"]),
    (D + ["--checkpoint", ""], ["argument --checkpoint", "empty path"]),
    (A + ["--per-class", "0"], ["argument --per-class", "got 0"]),
    (A + ["--per-class", "1e3"], ["argument --per-class", "'1e3'"]),
    (A + ["--digits", "12"], ["argument --digits", "got 12"]),
    (A + ["--seed", "-3"], ["argument --seed", "got -3"]),
    (A + ["--out", "{tmp}/blocker/o"], ["argument --out", "blocker is a file"]),
    (A + ["--out", "{tmp}/" + "a" * 300], ["argument --out", "cannot be used: File name too long"]),
    (T + ["--out", "{tmp}/" + "a" * 300 + "/m.pt"], ["argument --out", "cannot be used: File name too long"]),
    (D + ["--checkpoint", "{tmp}/" + "a" * 300], ["argument --checkpoint", "File name too long"]),
    (M + ["--data-dir", "{tmp}/" + "a" * 300], ["argument --data-dir", "File name too long"]),
    (M + ["--epochs", "0"], ["argument --epochs", "got 0"]),
    (M + ["--data-dir", "{tmp}/nowhere"], ["argument --data-dir", "nowhere: no such folder"]),
    (M + ["--data-dir", "{tmp}/blocker"], ["argument --data-dir", "blocker: is a file, not a folder"]),
    (M + ["--out", "{tmp}/blocker"], ["argument --out", "exists and is not a folder"]),
]


@pytest.mark.parametrize("argv, fragments", ARGUMENTS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_a_bad_argument_is_one_line_naming_the_option(argv, fragments, lenet5, tmp_path, capsys):
    (tmp_path / "blocker").write_text("a file where a folder is expected")
    argv = [a.format(npz=lenet5 / "lenet5.npz", tmp=tmp_path) for a in argv]
    refused(capsys, argv, 2, *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]     # nothing written


# -------------------------------------------------- paths, at parse time

def test_train_refuses_an_existing_folder_as_out_before_training(tmp_path, capsys):
    (tmp_path / "folder").mkdir()
    refused(capsys, TRAIN + ["--out", str(tmp_path / "folder")], 2, "argument --out", "existing folder")
    assert list((tmp_path / "folder").iterdir()) == []


def test_train_refuses_a_fifo_as_out(tmp_path, capsys):
    os.mkfifo(tmp_path / "m.pt")
    refused(capsys, TRAIN + ["--out", str(tmp_path / "m.pt")], 2, "argument --out", "not a regular file")


def test_train_refuses_an_epoch_checkpoint_path_that_is_a_folder_before_training(tmp_path, capsys):
    (tmp_path / "m.epoch02.pt").mkdir()
    refused(capsys, TRAIN + ["--epochs", "2", "--save-every", "2", "--out", str(tmp_path / "m.pt")], 1,
            "--save-every 2", "m.epoch02.pt", "existing folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.epoch02.pt"]


def test_train_refuses_a_device_that_is_not_there_before_loading_data(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(train_cmd, "load_mnist", lambda *a, **k: pytest.fail("data loaded first"))
    device = "cuda:99" if torch.cuda.is_available() else "cuda"
    refused(capsys, TRAIN + ["--device", device, "--out", str(tmp_path / "m.pt")], 1, f"--device {device}")
    refused(capsys, TRAIN + ["--device", "toaster", "--out", str(tmp_path / "m.pt")], 1,
            "--device 'toaster'", "cpu, cuda or cuda:N")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["missing", "folder", "empty", "fifo", "dangling link"])
def test_deconv_refuses_a_checkpoint_that_is_not_a_regular_file(kind, tmp_path, capsys):
    path = tmp_path / "weights.npz"
    if kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dangling link":
        path.symlink_to(tmp_path / "nowhere.npz")
    expected = {"missing": "no such checkpoint", "folder": "is a folder", "empty": "is empty",
                "fifo": "not a regular file", "dangling link": "broken symbolic link"}[kind]
    refused(capsys, ["deconv", "--checkpoint", str(path), "--out", str(tmp_path / "o")], 2,
            "argument --checkpoint", "weights.npz", expected)
    assert not (tmp_path / "o").exists()


def test_bench_refuses_an_empty_out_before_timing(capsys):
    refused(capsys, ["bench", "--quick", "--out", ""], 1, "argument --out", "empty path")


# -------------------------------------------------- files, found bad while running

@pytest.mark.parametrize("command", ["deconv", "atlas"])
@pytest.mark.parametrize("case", ["nan", "inf", "meta str", "meta list", "normalization std 0",
                                  "dataset path", "integer weights", "garbage bytes", "pickle payload"])
def test_a_bad_checkpoint_is_one_line_naming_it_and_leaves_no_folder(command, case, lenet5, tmp_path, capsys):
    like = lenet5 / "lenet5.pt"
    state = torch.load(like, weights_only=True)["state_dict"]
    path = tmp_path / "bad.pt"
    if case in ("nan", "inf"):
        state["fc_2.weight"][3, 4] = float(case)
        checkpoint_with(path, state=state, like=like)
        expected = "fc_2.weight holds non-finite values"
    elif case == "meta str":
        checkpoint_with(path, meta="arch=lenet5", like=like)
        expected = "its meta is a str, not a dict"
    elif case == "meta list":
        checkpoint_with(path, meta=[("arch", "lenet5")], like=like)
        expected = "its meta is a list, not a dict"
    elif case == "normalization std 0":
        checkpoint_with(path, meta={"arch": "lenet5", "normalization": {"mean": 0.1, "std": 0}}, like=like)
        expected = "normalization"
    elif case == "dataset path":
        checkpoint_with(path, meta={"arch": "lenet5", "dataset": "../../etc"}, like=like)
        expected = "names the dataset '../../etc'"
    elif case == "integer weights":
        checkpoint_with(path, state={k: v.to(torch.int32) for k, v in state.items()}, like=like)
        expected = "torch.int32"
    elif case == "garbage bytes":
        path.write_bytes(b"\x80\x02garbage" * 10)
        expected = "not a torch file"
    else:
        class Payload:
            def __reduce__(self):
                return (os.system, ("touch " + str(tmp_path / "pwned"),))
        torch.save({"state_dict": state, "meta": Payload()}, path)
        expected = "refused: the file needs arbitrary code to unpickle"
    out = tmp_path / "figures"
    refused(capsys, [command, "--checkpoint", str(path), "--out", str(out)], 1, "bad.pt", expected)
    assert not out.exists() and not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("entry, expected", [
    ("{not json", "metadata is not valid JSON"),
    ("[1, 2]", "metadata is a list, not a dict"),
    ('{"arch": "lenet5", "meta": 5}', "its meta is a int, not a dict"),
    ('{"arch": 7}', "its arch is a int"),
])
def test_bad_npz_metadata_is_one_line_naming_the_file(entry, expected, lenet5, tmp_path, capsys):
    arrays = dict(np.load(lenet5 / "lenet5.npz"))
    arrays["__npcnn__"] = np.array(entry)
    np.savez(tmp_path / "bad.npz", **arrays)
    refused(capsys, ["deconv", "--checkpoint", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "o")], 1,
            "bad.npz", expected)
    assert not (tmp_path / "o").exists()


def test_an_untrained_network_draws_its_digits_and_says_which_it_misreads(lenet5, tmp_path, capsys):
    """Untrained weights classify (nearly) everything as one class: a digit
    with no correctly classified image is drawn from its first test image,
    and the command says so (it refused, once: random filters are a study
    too)."""
    argv = ["deconv", "--checkpoint", str(lenet5 / "lenet5.npz"), "--dataset", "mnist5k",
            "--digits", *map(str, range(10)), "--figures", "digits", "--out", str(tmp_path / "a")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"digit \d: test image #\d+ \(no image of digit \d is classified right; its first, "
                     r"classified as \d\)", out), out
    assert len(list((tmp_path / "a").glob("*.png"))) >= 10


def test_demo_names_a_foreign_file_in_its_checkpoint_folder(tmp_path, capsys):
    (tmp_path / "checkpoints").mkdir(parents=True)
    (tmp_path / "checkpoints" / "lenet5-mnist5k-1ep.pt").write_bytes(b"not a checkpoint at all")
    refused(capsys, ["demo", "--quick", "--dataset", "mnist5k", "--out", str(tmp_path)], 1,
            "lenet5-mnist5k-1ep.pt", "not a")


# -------------------------------------------------- warnings and the one line

def test_warnings_are_held_back_on_failure_and_shown_after_success(capsys, monkeypatch):
    def warns_then(fails):
        def run(args):
            warnings.warn("torch says something long\nover two lines", UserWarning)
            if fails:
                raise ValueError("the real problem")
            return 0
        return run
    monkeypatch.setattr(train_cmd, "run", warns_then(True))
    err = refused(capsys, TRAIN + ["--out", "unused.pt"], 1, "the real problem")
    assert "warning" not in err.lower()
    monkeypatch.setattr(train_cmd, "run", warns_then(False))
    assert main(TRAIN + ["--out", "unused.pt"]) == 0
    assert capsys.readouterr().err == "npcnn train: warning: torch says something long (UserWarning)\n"


def test_an_internal_error_says_so_in_one_line(capsys, monkeypatch):
    monkeypatch.setattr(train_cmd, "run", lambda args: {}["missing key"])
    refused(capsys, TRAIN + ["--out", "unused.pt"], 1, "'missing key' (KeyError; npcnn --debug shows where)")


def test_a_line_break_in_a_path_stays_one_line(tmp_path, capsys):
    refused(capsys, ["deconv", "--checkpoint", str(tmp_path / "a\nb.npz"), "--out", str(tmp_path / "o")], 2,
            "a\\nb.npz: no such checkpoint")


# -------------------------------------------------- real processes

def npcnn_process(*argv):
    """``npcnn argv`` in a new process that says "started" on stdout once
    vis.cli is imported (it imports nothing heavy) and right before main()
    imports the subcommands, torch among them."""
    code = "import sys; from vis.cli import main; print('started', flush=True); sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *argv], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_ctrl_c_while_importing_torch_is_one_line(tmp_path):
    process = npcnn_process(*TRAIN, "--out", str(tmp_path / "m.pt"))
    assert process.stdout.readline() == "started\n"
    time.sleep(0.3)                                 # into main(), which imports torch for over a second
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    # "npcnn:" not "npcnn train:": the parser was not built yet, so this was during the imports
    assert (process.returncode, err) == (130, "npcnn: interrupted\n")
    assert list(tmp_path.iterdir()) == []


def test_a_fifo_named_npz_does_not_block(tmp_path):
    os.mkfifo(tmp_path / "weights.npz")
    process = npcnn_process("deconv", "--checkpoint", str(tmp_path / "weights.npz"), "--out", str(tmp_path / "o"))
    try:
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 2
    assert err.count("\n") == 1 and "weights.npz: is not a regular file" in err and "argument --checkpoint" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.npz"]


def test_a_closed_stdout_stops_quietly(lenet5, tmp_path):
    process = npcnn_process("deconv", "--checkpoint", str(lenet5 / "lenet5.npz"), "--dataset", "mnist5k",
                            "--out", str(tmp_path / "o"))
    assert process.stdout.readline() == "started\n"
    process.stdout.close()                          # as `npcnn deconv ... | head -1` does
    err = process.stderr.read()
    assert process.wait(timeout=120) == 141 and err == ""
    assert list(tmp_path.iterdir()) == []


def test_demo_names_a_checkpoint_without_the_facts_its_page_reports(lenet5, tmp_path, capsys):
    (tmp_path / "checkpoints").mkdir()
    state = torch.load(lenet5 / "lenet5.pt", weights_only=True)["state_dict"]
    torch.save({"state_dict": state, "meta": {"arch": "lenet5", "test_accuracy": 0.99}},
               tmp_path / "checkpoints" / "lenet5-mnist5k-1ep.pt")
    refused(capsys, ["demo", "--quick", "--dataset", "mnist5k", "--out", str(tmp_path)], 1,
            "lenet5-mnist5k-1ep.pt: not a checkpoint of npcnn train")
