"""``npcnn bench --kernel``: a kernel that agrees with npcnn's reference on
the sweep is timed; one that does not is rejected, naming the first failing
case; a bad MODULE:FUNCTION is one line. Never a time assertion."""
import json
from pathlib import Path

import pytest

import bench_kernels
from benchmarks import bandwidth, cases, kernel_judge, op_sweep, timing
from vis.cli import main

EXAMPLE = str(Path(__file__).resolve().parent.parent / "benchmarks" / "examples" / "naive_conv2d.py")


def test_the_example_kernel_agrees_on_every_sweep_case():
    verdicts = kernel_judge.check(kernel_judge.load_kernel(f"{EXAMPLE}:conv2d"), "conv2d")
    assert len(verdicts) == len(op_sweep.sweep("conv2d")) and all(v["ok"] for v in verdicts), verdicts


def test_the_example_is_timed_beside_npcnn_and_torch(tmp_path, monkeypatch, capsys):
    """The CLI end to end, on one small row (the bench's rows take longer)."""
    monkeypatch.setattr(timing, "SETTLE_MAX_S", 0)
    monkeypatch.setattr(bandwidth, "MIN_ARRAY_BYTES", 2 ** 20)
    monkeypatch.setattr(bandwidth, "CACHE_MULTIPLE", 0)
    monkeypatch.setitem(cases.OP_ROWS, "conv2d", [
        ("tiny depthwise dilated", dict(N=2, C=4, H=9, W=9, Fo=4, k=3, stride=1, pad=2, dilation=2, groups=4),
         True)])
    code = main(["bench", "--kernel", f"{EXAMPLE}:conv2d", "--op", "conv2d", "--quick", "--repeats", "1",
                 "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    data = json.loads((tmp_path / "kernel.json").read_text())
    assert data["first_failure"] is None and all(v["ok"] for v in data["sweep"])
    (row,) = data["results"]
    assert row["case"] == "conv2d tiny depthwise dilated" and row["max_rel_diff"] <= cases.AGREE
    assert set(row["ms"]) == {"kernel", "npcnn-numba", "torch"} and all(v > 0 for v in row["ms"].values())
    text = (tmp_path / "kernel.md").read_text()
    assert "| conv2d tiny depthwise dilated |" in text and "Copy bandwidth" in text and "Rejected" not in text


def test_a_kernel_that_disagrees_with_torch_on_a_bench_row_is_rejected_there(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(timing, "SETTLE_MAX_S", 0)
    monkeypatch.setattr(bandwidth, "MIN_ARRAY_BYTES", 2 ** 20)
    monkeypatch.setattr(bandwidth, "CACHE_MULTIPLE", 0)
    monkeypatch.setitem(cases.OP_ROWS, "conv2d", [
        ("tiny 13 wide", dict(N=1, C=2, H=5, W=13, Fo=3, k=3, stride=1, pad=1), True)])
    code = main(["bench", "--kernel", "bench_kernels:conv2d_wrong_at_width_13", "--op", "conv2d", "--quick",
                 "--repeats", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "on a bench row: conv2d tiny 13 wide" in err
    data = json.loads((tmp_path / "kernel.json").read_text())
    assert data["first_failure"] is None and data["bench_failure"].startswith("conv2d tiny 13 wide")


@pytest.mark.parametrize("name,op,first_case,detail", [
    ("conv2d_without_padding", "conv2d", "stride 2, padding 1: 8x9 does not tile (positional)", "has shape"),
    ("max_pool2d_last_tie", "max_pool2d", "2x2 after a ReLU: ties at zero, float32", "indices differ"),
    ("max_unpool2d_overwriting", "max_unpool2d", "3x3 stride 2, overlapping: repeated indices add up",
     "output differs"),
    ("linear_writing_into_its_input", "linear", "(4, 5) -> 3 with bias, float64", "changed an input"),
    ("max_pool2d_without_indices", "max_pool2d", "2x2 after a ReLU: ties at zero, float32",
     "not the pair (output, indices)"),
    ("conv2d_raising", "conv2d", "3x3 kernel with bias, float64", "raised NotImplementedError: dilation"),
])
def test_a_flawed_kernel_is_rejected_naming_the_first_failing_case(name, op, first_case, detail, tmp_path,
                                                                   capsys):
    code = main(["bench", "--kernel", f"bench_kernels:{name}", "--op", op, "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert f"sweep case '{first_case}'" in err and detail in err
    data = json.loads((tmp_path / "kernel.json").read_text())
    assert data["first_failure"]["case"] == first_case and data["results"] == []
    assert f"First failing case: {first_case}" in (tmp_path / "kernel.md").read_text()


def test_the_tie_rule_alone_decides_the_pooling_verdict():
    """The same pooling with ties to the first maximum passes the case its
    last-maximum twin fails: the case catches the tie rule, not something else."""
    first = kernel_judge.check(bench_kernels.max_pool2d_first_tie, "max_pool2d")
    last = kernel_judge.check(bench_kernels.max_pool2d_last_tie, "max_pool2d")
    assert first[0]["ok"] and not last[0]["ok"]


@pytest.mark.parametrize("spec,message", [
    ("no_such_module_for_npcnn:conv2d", "importing no_such_module_for_npcnn failed: ModuleNotFoundError"),
    ("bench_kernels:no_such_function", "has no attribute 'no_such_function'"),
    ("bench_kernels:NOT_A_FUNCTION", "NOT_A_FUNCTION is a int, not a function"),
    ("bench_kernels", "expected module:function"),
    ("no/such/file.py:conv2d", "no such file"),
])
def test_a_bad_kernel_name_is_one_line(spec, message, tmp_path, capsys):
    code = main(["bench", "--kernel", spec, "--op", "conv2d", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and message in err, err


def test_a_kernel_whose_import_fails_is_one_line(tmp_path, capsys):
    broken = tmp_path / "broken.py"
    broken.write_text("import numpy\nraise RuntimeError('no GPU here\\nsecond line')\n")
    code = main(["bench", "--kernel", f"{broken}:conv2d", "--op", "conv2d", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "RuntimeError: no GPU here" in err


@pytest.mark.parametrize("argv,message", [
    (["--kernel", "bench_kernels:conv2d_without_padding"], "--kernel and --op go together"),
    (["--op", "conv2d"], "--kernel and --op go together"),
    (["--repeats", "3"], "--repeats is for --kernel"),
])
def test_kernel_arguments_go_together(argv, message, tmp_path, capsys):
    assert main(["bench", *argv, "--out", str(tmp_path)]) == 1
    assert message in capsys.readouterr().err


def test_repeats_must_be_positive(tmp_path, capsys):
    assert main(["bench", "--kernel", "m:f", "--op", "conv2d", "--repeats", "0", "--out", str(tmp_path)]) == 2
    assert "--repeats: must be at least 1" in capsys.readouterr().err


def test_every_op_of_the_judge_has_bench_rows():
    assert set(op_sweep.OPS) <= set(cases.OP_ROWS) and all(cases.OP_ROWS[op] for op in op_sweep.OPS)


def test_benchmarks_readme_shows_the_example_as_it_is():
    readme = (Path(EXAMPLE).parent.parent / "README.md").read_text()
    assert f"```python\n{Path(EXAMPLE).read_text()}```" in readme
