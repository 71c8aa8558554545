"""A smoke of the benchmarks: they run, and what they time agrees with torch.
Never a time assertion (timings on a shared 2-core machine mean nothing here)."""
import json
import time

import numpy as np
import pytest

from benchmarks import bandwidth, cases, traffic
from benchmarks.process import first_call_times
from benchmarks.run import bar_chart, report
from benchmarks import timing
from benchmarks.timing import Result, interleaved_ms, max_rel_diff, median_ms
from npcnn.data import load_mnist, to_tensor


def test_cases_run_and_agree_with_torch(tmp_path, monkeypatch):
    monkeypatch.setattr(timing, "SETTLE_MAX_S", 0)  # the pauses matter for times, not for agreement
    r = [cases.conv_case("tiny", 2, 3, 9, 9, 4, 3, 1, 1, 1, None),
         cases.conv_transpose_case("tiny", 2, 3, 9, 9, 4, 3, 2, 1, 1, None),
         cases.pool_case("tiny", 2, 3, 9, 9, 3, 2, 1, None),
         cases.unpool_case("tiny", 2, 3, 8, 8, 2, 2, 1, None),
         cases.linear_case("tiny", 3, 20, 7, 1, None),
         cases.relu_case("tiny", (2, 3, 5, 5), 1, None),
         cases.conv_case("tiny depthwise", 1, 4, 9, 9, 4, 3, 1, 1, 1, None, groups=4),
         cases.conv_case("tiny dilated", 1, 3, 9, 9, 4, 3, 1, 2, 1, None, dilation=2),
         cases.forward_case("lenet5", 2, 28, 1, None, flops=cases.LENET5_FLOPS)]
    test = load_mnist("mnist5k", "test", verbose=False)
    x, y = to_tensor(test.images[:300]), test.labels[:300]
    r.append(cases.deconv_suite_case(x[:2], 1, None))
    r.append(cases.class_average_case(x, y, 1, None))
    for result in r:
        assert result.max_rel_diff <= cases.AGREE, result.case
        assert set(result.ms) >= {"torch", "npcnn-numba"} and all(v > 0 for v in result.ms.values())
    copy = dict(numba=20.0, numpy=10.0, best=20.0, array_bytes=2 ** 27)
    text = report(r, 100.0, copy, {"cold": {"first_call_s": 1, "import_s": 1, "second_call_s": 0.001},
                                   "warm": {"first_call_s": 0.1, "import_s": 0.2, "second_call_s": 0.001}},
                  None, 2, True)
    assert text.count("\n| ") == len(r) + 2 and "lenet5 forward batch 2" in text
    assert "Copy bandwidth" in text and "20.0 GB/s" in text
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in text.splitlines() if line.startswith("| ")}
    for case in ("max_pool2d+switches tiny", "max_unpool2d tiny", "relu tiny"):  # memory-bound: GB/s
        assert rows[case][6] == rows[case][7] == "" and rows[case][8] and rows[case][9].endswith("%"), case
    for case in ("conv2d tiny depthwise", "linear tiny"):  # compute-bound: GFLOP/s
        assert rows[case][6] and rows[case][8] == rows[case][9] == "", case
    assert bar_chart(r, tmp_path / "ratios.png").stat().st_size > 1000


def test_the_minimum_traffic_of_the_memory_bound_ops():
    """A 2x2 pool of a 4x4 float32 plane reads 16 floats and writes 4 floats
    and 4 int64 switches; unpooling reads those back and writes 16 floats."""
    assert traffic.max_pool2d_bytes((1, 1, 4, 4), (1, 1, 2, 2), 4) == 16 * 4 + 4 * 4 + 4 * 8
    assert traffic.max_pool2d_bytes((1, 1, 4, 4), (1, 1, 2, 2), 4, switches=False) == 16 * 4 + 4 * 4
    assert traffic.max_unpool2d_bytes((1, 1, 2, 2), (1, 1, 4, 4), 4) == 4 * (4 + 8) + 16 * 4
    assert traffic.relu_bytes((2, 3), 8) == 2 * 6 * 8


def test_the_copy_bandwidth_copies_and_reports_rates():
    src, dst = np.arange(1000, dtype=np.float32), np.zeros(1000, np.float32)
    bandwidth._copy(src, dst)
    assert np.array_equal(src, dst)
    rates = bandwidth.copy_bandwidth(nbytes=2 ** 20, repeats=2)
    assert rates["array_bytes"] == 2 ** 20 and rates["best"] == max(rates["numba"], rates["numpy"]) > 0
    assert bandwidth.array_bytes() >= bandwidth.MIN_ARRAY_BYTES
    with pytest.raises(ValueError, match="nbytes"):
        bandwidth.copy_bandwidth(nbytes=2)


def test_every_op_row_names_a_case_and_runs_its_kernel_argument(monkeypatch):
    """The bench's op rows are the rows ``--kernel`` times: each op has a
    case function, and a kernel given to it is timed and checked."""
    monkeypatch.setattr(timing, "SETTLE_MAX_S", 0)
    assert set(cases.OP_ROWS) == set(cases.CASE_OF)
    calls = []

    def kernel(x):  # a ReLU that counts its calls
        calls.append(1)
        return np.maximum(x, 0)
    r = cases.relu_case("tiny", (2, 3), 1, None, kernel=kernel)
    assert calls and set(r.ms) == {"torch", "npcnn-numba", cases.KERNEL}
    with pytest.raises(AssertionError, match="differ"):
        cases.relu_case("tiny", (2, 3), 1, None, kernel=lambda x: x)


def test_a_disagreeing_implementation_is_refused():
    with pytest.raises(AssertionError, match="differ"):
        cases._time_all("wrong", "op", 0, {"torch": lambda: np.ones(3), "npcnn-numba": lambda: np.zeros(3)},
                        np.ones(3), 1, None)


def test_timing_helpers():
    assert max_rel_diff(np.array([1.0, 2.0]), np.array([1.0, 2.5])) == pytest.approx(0.2)
    assert median_ms(lambda: None, repeats=3) >= 0
    assert Result("c", "op", 2e6, {"npcnn-numba": 1.0, "torch": 2.0}).ratio() == 0.5


def test_the_implementations_are_timed_in_rounds_each_in_turn(monkeypatch):
    """Three rounds, each taking every implementation in turn after a pause:
    a discarded call, then its share of the repeats back to back."""
    calls, pauses = [], []
    monkeypatch.setattr(timing, "settle", lambda: pauses.append(len(calls)))
    ms = interleaved_ms({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=6, budget_s=None,
                        span_s=0.0)
    assert set(ms) == {"a", "b"} and all(v >= 0 for v in ms.values())
    assert "".join(calls) == "aaa" "bbb" "aaa" "bbb" "aaa" "bbb"  # per round: 1 discarded + 2 timed each
    assert pauses == [0, 3, 6, 9, 12, 15]


def test_fast_calls_repeat_until_they_span_the_round_and_slow_ones_stop_at_the_budget():
    fast = timing.call_times(lambda: time.sleep(0.01), repeats=2, span_s=0.05)
    assert 5 <= len(fast) <= 6
    slow = timing.call_times(lambda: time.sleep(0.01), repeats=100, budget_s=0.03, at_least=1, span_s=1.0)
    assert len(slow) <= 4


class _Clock:
    """Stands in for the time module: the process burns a whole window of
    CPU in each of its first ``busy`` sleeps, none after."""

    def __init__(self, busy):
        self.now, self.cpu, self.busy, self.sleeps = 0.0, 0.0, busy, 0

    def perf_counter(self):
        return self.now

    def process_time(self):
        return self.cpu

    def sleep(self, seconds):
        self.now += seconds
        self.sleeps += 1
        self.cpu += seconds if self.sleeps <= self.busy else 0.0


@pytest.mark.parametrize("busy,sleeps", [(0, 1), (6, 7), (1000, 15)])
def test_settling_waits_until_the_process_is_idle(busy, sleeps, monkeypatch):
    """One quiet window ends the wait; a process that never quiets down is
    waited for SETTLE_MAX_S (15 windows of 20 ms)."""
    clock = _Clock(busy)
    monkeypatch.setattr(timing, "time", clock)
    timing.settle()
    assert clock.sleeps == sleeps


def test_first_call_is_measured_cold_and_warm():
    t = first_call_times()
    assert t["cold"]["first_call_s"] > t["warm"]["first_call_s"] > 0
    json.dumps(t)


def test_every_threshold_has_its_measurements_and_a_command():
    """Each name of npcnn/ops/runtime/tuning.py appears in
    benchmarks/TUNING.md, and each experiment of benchmarks/tuning.py times
    a threshold that exists."""
    from pathlib import Path

    from benchmarks import tuning as experiments
    from npcnn.ops.runtime import tuning
    names = [name for name in vars(tuning) if name.isupper()]
    notes = (Path(experiments.__file__).parent / "TUNING.md").read_text()
    assert names and [name for name in names if f"`{name}`" not in notes] == []
    assert set(experiments.EXPERIMENTS) <= set(names)


def test_a_threshold_is_remeasured_and_restored(monkeypatch):
    """Both settings give the same numbers, both are timed, and the shipped
    value is back afterwards."""
    from benchmarks import tuning as experiments
    from npcnn.ops.runtime import tuning
    monkeypatch.setattr(timing, "SETTLE_MAX_S", 0)
    shipped = tuning.DIRECT_MAX_WEIGHTS
    times = experiments.measure("DIRECT_MAX_WEIGHTS", repeats=1, budget_s=None)
    assert set(times) == {"shipped", "other"} and all(ms > 0 for ms in times.values())
    assert tuning.DIRECT_MAX_WEIGHTS == shipped


def _imported_modules(path, package):
    """Absolute names of the modules a file imports (at any depth of it)."""
    import ast
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package if node.level else (node.module or "")
            if node.level and node.module:
                base = f"{package}.{node.module}"
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


def test_no_import_cycle_between_vis_and_benchmarks():
    """vis imports benchmarks for ``npcnn bench`` and the demo; none of the
    benchmarks modules it reaches may import vis back. (Stand-alone
    benchmark scripts that drive vis, and that vis never imports, make no
    cycle.)"""
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    reached = {name.split(".")[1] for path in (root / "vis").glob("*.py")
               for name in _imported_modules(path, "vis")
               if name.startswith("benchmarks.") and (root / "benchmarks" / f"{name.split('.')[1]}.py").exists()}
    assert "run" in reached
    todo = list(reached)
    while todo:
        module = todo.pop()
        for name in _imported_modules(root / "benchmarks" / f"{module}.py", "benchmarks"):
            assert name.split(".")[0] != "vis", f"benchmarks/{module}.py, which vis imports, imports {name}"
            parts = name.split(".")
            if parts[0] == "benchmarks" and len(parts) > 1 and parts[1] not in reached \
                    and (root / "benchmarks" / f"{parts[1]}.py").exists():
                reached.add(parts[1])
                todo.append(parts[1])


def test_the_bench_runs_from_a_namespace_without_the_kernel_arguments(tmp_path, monkeypatch):
    """vis/demo.py builds its own Namespace (quick, out, no_memory): the bench,
    not the kernel judge, must start from it."""
    import argparse

    from benchmarks import run

    class Reached(Exception):
        pass

    def collect(quick):
        raise Reached
    monkeypatch.setattr(run, "collect", collect)
    monkeypatch.setattr(cases, "sgemm_rate", lambda repeats: 100.0)
    monkeypatch.setattr(run, "copy_bandwidth", lambda repeats: dict(numba=1.0, numpy=1.0, best=1.0, array_bytes=1))
    with pytest.raises(Reached):
        run.run(argparse.Namespace(quick=True, out=str(tmp_path), no_memory=True))


def test_each_implementation_gets_the_median_of_its_fastest_round(monkeypatch):
    """A slow spell adds time to one round only: the time reported is the
    median call of the implementation's fastest round, not of all calls."""
    rounds = iter([[0.005, 0.001, 0.009], [0.020, 0.030, 0.025],   # a, then b, round 1
                   [0.001, 0.002, 0.003], [0.004, 0.003, 0.005],   # round 2
                   [0.050, 0.060, 0.070], [0.002, 0.010, 0.001]])  # round 3: a slow spell on a
    monkeypatch.setattr(timing, "settle", lambda: None)
    monkeypatch.setattr(timing, "call_times", lambda *args, **kwargs: next(rounds))
    ms = interleaved_ms({"a": None, "b": None}, repeats=9, budget_s=None)
    assert ms == pytest.approx({"a": 2.0, "b": 2.0})
