"""bridge.verify and ``npcnn verify-deconv``: the torch reference deconvnet
passes every case; deconvnets written with the known mistakes
(tests/flawed_deconvnets.py) fail with the right diagnosis; bad input is
one line naming the case, and the report is still written."""
import json
import time

import numpy as np
import pytest
import torch

import bridge
import flawed_deconvnets as flawed
from bridge.verify import TOLERANCES, WRONG_RULES, deconvnet
from bridge.verify import cases as verify_cases
from bridge.verify.diagnosis import diagnose, relative_error
from bridge.verify.wrong_rules import CORRECT, Rules, pool_switches, walk
from npcnn import deconv
from vis import cli

STANDARD = [case.name for case in verify_cases.standard_cases()]


@pytest.fixture
def npcnn_main():
    return cli.main


def test_the_torch_reference_passes_every_case():
    verdict = deconvnet("bridge:project_reference", model="lenet5")
    assert [r.name for r in verdict.results] == STANDARD + [
        f"lenet5 {layer}" for layer in ("conv_1", "relu_1", "pool_1", "conv_2", "relu_2", "pool_2")]
    assert verdict.passed, [r.line() for r in verdict.results if not r.passed]
    assert all(r.calls == r.probes for r in verdict.results)
    assert sum(r.calls for r in verdict.results if r.name.startswith("lenet5")) == 2 * (6 * 3 + 16 * 3)


def test_a_torch_deconvnet_written_by_hand_passes():
    verdict = deconvnet(flawed.by_hand, cases=STANDARD, isolation="thread")   # the worker: tests naming module:function
    assert verdict.passed, [r.line() for r in verdict.results if not r.passed]


@pytest.mark.parametrize("fn,cause,caught_by", [      # the overwriting unpool: on the command line below
    (flawed.bias_added, "bias added", "overlapping-pools"),
    (flawed.guided_called_deconvnet, "guided-backprop ReLU rule", "ties-after-relu"),
], ids=["bias-added", "guided-called-deconvnet"])
def test_flawed_deconvnets_are_caught_with_the_right_diagnosis(fn, cause, caught_by):
    verdict = deconvnet(fn, cases=STANDARD, isolation="thread")
    failed = [r for r in verdict.results if not r.passed]
    assert verdict.first_failure.name == caught_by
    assert {r.status for r in failed} == {"not equal"}
    assert {r.diagnosis.cause for r in failed} == {cause}
    assert all(r.diagnosis.matched for r in failed)
    # every case built to catch this mistake does
    assert {c.name for c in verify_cases.standard_cases() if cause in c.catches} <= {r.name for r in failed}


def test_every_case_tells_apart_the_mistakes_it_is_built_for():
    caught = set()
    for case in verify_cases.standard_cases():
        model = case.network.model()
        _, acts = model.forward(case.x, record=True)
        tolerance = TOLERANCES[np.dtype(case.network.dtype).name]
        for name in case.catches:
            rules = WRONG_RULES[name][0]
            gap = max(relative_error(walk(model, acts, p.layer, p.channel, p.select, rules),
                                     walk(model, acts, p.layer, p.channel, p.select)) for p in case.probes)
            assert gap > 1000 * tolerance, f"{case.name} does not show {name}: {gap:.1e}"
        caught.update(case.catches)
    assert caught == set(WRONG_RULES)


def test_the_cases_hold_what_they_are_built_on():
    by_name = {case.name: case for case in verify_cases.standard_cases()}

    def recording(name):
        case = by_name[name]
        return case.network.model().forward(case.x, record=True)[1]

    shared = recording("overlapping-pools").switches["pool_1"].reshape(2, -1)
    assert all(len(np.unique(row)) < row.size for row in shared)                  # switches coincide
    relu = recording("ties-after-relu")["relu_1"]                                   # (1, 2, 8, 8)
    windows = relu.reshape(1, 2, 4, 2, 4, 2).max(axis=(3, 5))
    assert np.count_nonzero(windows == 0) >= 8                                      # all-zero windows
    conv = recording("select-max-ties")["conv_1"][0]
    assert all(np.count_nonzero(conv[c] == conv[c].max()) >= 2 for c in range(2))  # tied maxima
    assert by_name["pool-padding-ceil"].network.model().output_shapes((1, 1, 8, 8))["pool_1"] == (1, 2, 5, 5)
    assert len({image.tobytes() for image in by_name["batch"].x}) == 4


def test_the_plain_walk_is_npcnns_deconvnet_and_its_switches_torchs():
    for case in verify_cases.standard_cases():
        model = case.network.model()
        _, acts = model.forward(case.x, record=True)
        for p in case.probes:
            np.testing.assert_allclose(walk(model, acts, p.layer, p.channel, p.select, CORRECT),
                                       deconv.project(model, case.x, p.layer, p.channel, p.select),
                                       rtol=1e-5, atol=1e-6, err_msg=f"{case.name} {p}")
        for name, switches in acts.switches.items():
            below = acts[model.layer_names[model.layer_names.index(name) - 1]]
            np.testing.assert_array_equal(pool_switches(below, **model.layers[name].arguments), switches)


def test_the_diagnosis_names_two_mistakes_and_a_rescaled_output():
    case = next(c for c in verify_cases.standard_cases() if c.name == "ties-after-relu")
    model = case.network.model()
    _, acts = model.forward(case.x, record=True)
    probe = case.probes[0]
    right = walk(model, acts, probe.layer, probe.channel, probe.select)
    both = Rules(pool_ties="last", bias=1)
    two = diagnose(model, acts, probe, walk(model, acts, probe.layer, probe.channel, probe.select, both), right, 1e-9)
    assert two.cause == "bias added and last-maximum ties in pooling"
    assert diagnose(model, acts, probe, 3 * right, right, 1e-9).cause == "the right projection times 3"
    unknown = diagnose(model, acts, probe, np.roll(right, 1, axis=-1), right, 1e-9)
    assert not unknown.matched and unknown.cause == "no known mistake reproduces it"


@pytest.mark.parametrize("fn,message", [
    (flawed.raises, "raised RuntimeError: my deconvnet is not finished"),
    (flawed.wrong_shape, "returned shape (1, 9, 9), expected (1, 1, 9, 9) (like x)"),
    (flawed.nan_output, "returned NaN or inf in 1 of 81 values"),
    (flawed.returns_a_list, "returned a list, not a NumPy array or a tensor"),
    (flawed.returns_bfloat16, "returned a torch.bfloat16 tensor NumPy cannot hold (TypeError: Got unsupported "
                              "ScalarType BFloat16)"),
], ids=["raises", "wrong-shape", "nan", "list", "bfloat16"])
def test_bad_output_is_one_line_naming_the_case(fn, message):
    verdict = deconvnet(fn, cases=["overlapping-pools", "float64"], isolation="thread")
    first, second = verdict.results
    assert (first.status, first.message) == ("error", message)
    assert first.line() == f"FAIL overlapping-pools (pool_1, channel 0, select='map'): error: {message}"
    assert second.status == "error" and second.name == "float64"                   # the rest is still judged


def test_a_function_that_cannot_be_loaded_is_one_line_before_any_case(npcnn_main, tmp_path, capsys):
    """A mistyped module or function name is a mistake in the arguments: one
    line naming it and why, exit status 1, no case run and no report
    written (a report of every case "not run" said nothing more)."""
    out = tmp_path / "report"
    for target, why in (("no_such_module:project", "ModuleNotFoundError: No module named 'no_such_module'"),
                        ("flawed_deconvnets:no_such_function", "no_such_function")):
        assert npcnn_main(["verify-deconv", "--impl", target, "--cases", "batch", "float32",
                           "--out", str(out)]) == 1
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1
        assert captured.err.startswith(f"npcnn verify-deconv: error: cannot load {target}: ") and why in captured.err
        assert "no case was run" in captured.err
        assert not out.exists()


def test_arguments_are_checked_before_any_work(npcnn_main, tmp_path, capsys):
    out = tmp_path / "never"
    assert npcnn_main(["verify-deconv", "--impl", "project", "--out", str(out)]) == 2
    assert "argument --impl: 'project': expected module:function" in capsys.readouterr().err
    assert npcnn_main(["verify-deconv", "--impl", "a:b", "--timeout", "0", "--out", str(out)]) == 2
    assert npcnn_main(["verify-deconv", "--impl", "a:b", "--cases", "overlaping-pools", "--out", str(out)]) == 1
    assert "unknown case 'overlaping-pools'; cases: overlapping-pools, ties-after-relu" in capsys.readouterr().err
    assert not out.exists()


def test_a_call_that_takes_minutes_or_ends_the_process_is_stopped_and_the_rest_judged(npcnn_main, tmp_path,
                                                                                      capsys):
    out = tmp_path / "slow"
    start = time.monotonic()
    assert npcnn_main(["verify-deconv", "--impl", "flawed_deconvnets:slow_on_batches_of_four_and_exits_on_float64",
                       "--cases", "batch", "float32", "float64", "--timeout", "5", "--out", str(out)]) == 1
    assert time.monotonic() - start < 60
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "FAIL batch (pool_2, channel 1, select='map'): error: took longer than 5 s (stopped)"
    assert lines[1].startswith("PASS float32: equal (2 calls")                       # in a new worker
    assert lines[2] == ("FAIL float64 (pool_2, channel 3, select='map'): error: the worker process died "
                        "running it (exit code 3)")
    assert lines[3] == f"1 of 3 cases equal; report: {out / 'report.md'}"          # batch has nothing to draw
    report = json.loads((out / "report.json").read_text())
    assert report["first_failure"]["message"] == "took longer than 5 s (stopped)"


def test_a_closure_runs_in_a_thread_and_a_stuck_call_holds_back_the_rest():
    def slow(module, x, layer, channel, select):
        time.sleep(4 if len(x) == 4 else 0)
        return flawed.by_hand(module, x, layer, channel, select)

    verdict = deconvnet(slow, cases=["batch", "float32"], timeout=1)
    batch, float32 = verdict.results
    assert batch.message == "took longer than 1 s (still running in its thread, which cannot be stopped)"
    assert float32.status == "not run" and "a thread cannot be stopped" in float32.message


def test_the_overwriting_unpool_on_the_command_line(npcnn_main, tmp_path, capsys):
    """nn.MaxUnpool2d where windows overlap: caught, named, drawn."""
    out = tmp_path / "verdict"
    assert npcnn_main(["verify-deconv", "--impl", "flawed_deconvnets:overwriting_unpool", "--model", "lenet5",
                       "--cases", *STANDARD, "lenet5 pool_1", "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == ("FAIL overlapping-pools (pool_1, channel 0, select='map'): not equal, "
                                       "relative error 5.00e-01; likely cause: overwriting unpool")
    report = json.loads((out / "report.json").read_text())
    failed = {c["name"] for c in report["cases"] if not c["equal"]}
    assert failed == {"overlapping-pools", "pool-padding-ceil"}                     # the pools that overlap
    assert report["first_failure"]["likely_cause"] == "overwriting unpool"
    assert report["first_failure"]["failed_call"] == {"layer": "pool_1", "channel": 0, "select": "map"}
    markdown = (out / "report.md").read_text()
    assert "Likely cause: **overwriting unpool**" in markdown and "](verdict.png)" in markdown
    assert (out / "verdict.png").stat().st_size > 5000


def test_the_sweep_takes_the_weights_of_a_file(tmp_path):
    torch.manual_seed(5)
    module = bridge.torch_model("lenet5")
    path = bridge.save_checkpoint(tmp_path / "lenet5.pt", module)
    (case,) = verify_cases.network_cases("lenet5", bridge.load_module(path))[-1:]
    assert all(np.array_equal(case.network.state[k], v.numpy()) for k, v in module.state_dict().items())
    verdict = deconvnet(bridge.project_reference, weights=path, cases=["lenet5 pool_2"], isolation="thread")
    assert verdict.passed and verdict.results[0].calls == 32


def test_a_function_that_spoils_its_module_spoils_its_own_case_only():
    verdict = deconvnet(flawed.spoils_its_module, cases=["overlapping-pools", "float32"], isolation="thread")
    # each case fails at its second call, on the module its first call zeroed: the next starts afresh
    assert [(r.status, r.calls) for r in verdict.results] == [("not equal", 2), ("not equal", 2)]


def test_a_function_goes_to_the_worker_by_its_importable_name_only():
    import functools

    from bridge.verify.runner import ProcessRunner, ThreadRunner, importable_name, runner_for
    assert importable_name(flawed.by_hand) == "flawed_deconvnets:by_hand"
    assert importable_name(bridge.project_reference) == "bridge.deconv_reference:project_reference"
    for unnamed in (lambda *a: None, functools.partial(flawed.by_hand)):
        assert importable_name(unnamed) is None
        assert isinstance(runner_for(unnamed, 5), ThreadRunner)
    runner = runner_for(flawed.by_hand, 5)
    assert isinstance(runner, ProcessRunner) and runner.fn == "flawed_deconvnets:by_hand"


def test_the_separable_nets_sweep_walks_its_groups_and_dilation():
    """The sweep of a net with a depthwise, a dilated and a grouped conv:
    the torch reference passes it and the plain walk is npcnn's deconvnet."""
    verdict = deconvnet("bridge:project_reference", model="separable", cases=["separable"])
    assert verdict.passed, [r.line() for r in verdict.results if not r.passed]
    assert {r.name for r in verdict.results} >= {"separable depthwise_1", "separable grouped_2"}
    for case in verify_cases.network_cases("separable"):
        model = case.network.model()
        _, acts = model.forward(case.x, record=True)
        for p in case.probes[:4]:
            np.testing.assert_allclose(walk(model, acts, p.layer, p.channel, p.select, CORRECT),
                                       deconv.project(model, case.x, p.layer, p.channel, p.select),
                                       rtol=1e-5, atol=1e-6, err_msg=f"{case.name} {p}")


@pytest.mark.parametrize("args", [dict(kernel_size=3, stride=2, padding=1, dilation=2),
                                  dict(kernel_size=2, stride=1, padding=0, dilation=3, ceil_mode=True),
                                  dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0), dilation=(2, 1))])
def test_pool_switches_of_dilated_windows_are_torchs_and_last_ties_differ(args):
    x = np.maximum(np.random.default_rng(0).integers(-2, 3, size=(2, 3, 11, 10)), 0).astype(np.float64)
    _, torchs = torch.nn.functional.max_pool2d(torch.from_numpy(x), **args, return_indices=True)
    np.testing.assert_array_equal(pool_switches(x, **args), torchs.numpy())
    assert np.any(pool_switches(x, **args, last=True) != torchs.numpy())   # ties after the ReLU
