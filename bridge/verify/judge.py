"""``deconvnet(fn)``: judge a user's deconvnet on the cases that break them.

For each case (``cases.py``) every probe is a call of ``fn`` (through a
runner with a time limit, ``runner.py``); its output is checked (an array
shaped like x, floating point, finite) and compared with npcnn's
projection, ``npcnn.deconv.project_channels``, which the tests hold equal
to two independent references. A case stops at its first failing call;
a projection that differs is diagnosed (``diagnosis.py``).

Equal means a relative error (max |difference| / the largest magnitude)
within 1e-4 in float32 and 1e-9 in float64: both far above the rounding of
two correct walks, far below what any of the known mistakes gives on the
cases built to show it.
"""
from dataclasses import dataclass

import numpy as np

from npcnn import deconv
from npcnn.architectures import SPECS

from .cases import network_cases, standard_cases
from .diagnosis import diagnose, relative_error
from .runner import runner_for

TOLERANCES = {"float32": 1e-4, "float64": 1e-9}
MODELS = tuple(SPECS)


@dataclass(eq=False)
class CaseResult:
    name: str
    purpose: str
    dtype: str
    calls: int                       # calls of the function made (of len(probes))
    probes: int
    status: str                      # "equal", "not equal", "error" (bad output), "not run"
    error: float = None              # the largest relative error over the calls compared
    probe: object = None             # the call that failed
    message: str = ""
    diagnosis: object = None
    x: np.ndarray = None             # the images, the function's output and npcnn's of the failed
    got: np.ndarray = None           # call (or, for an equal case, of its first)
    expected: np.ndarray = None

    @property
    def passed(self):
        return self.status == "equal"

    def line(self):
        """One line: the verdict, the case, and what went wrong."""
        head = f"{'PASS' if self.passed else 'FAIL'} {self.name}"
        if self.passed:
            return f"{head}: equal ({self.calls} calls, relative error {self.error:.1e})"
        if self.status == "not equal":
            note = f" ({self.message})" if self.message else ""
            return (f"{head} ({self.probe}): not equal, relative error {self.error:.2e}{note}; "
                    f"likely cause: {self.diagnosis.cause}")
        where = f" ({self.probe})" if self.probe else ""
        return f"{head}{where}: {self.status}: {self.message}"


@dataclass(eq=False)
class Verdict:
    implementation: str
    model: str
    timeout: float
    results: list

    @property
    def passed(self):
        return all(r.passed for r in self.results)

    @property
    def first_failure(self):
        return next((r for r in self.results if not r.passed), None)


def deconvnet(fn, model="lenet5", weights=None, module=None, cases=None, timeout=60.0, every_map=None,
              isolation="auto", on_result=None):
    """Judge ``fn(module, x, layer, channel, select)`` as a deconvnet.

    ``fn``: a function or "module:function". It gets a torch module with
    npcnn's twin layout, x a (N, C, H, W) tensor, a layer name, a channel
    and "map" or "max", and returns the projection to pixels shaped like x
    (NumPy or torch). ``model``: the network of the whole-network sweep,
    with the weights of ``module`` (a torch twin), of the file ``weights``,
    or torch's initialisation. ``cases``: names to run (a model's name runs
    its whole sweep), default all. ``timeout``: seconds a call may take.
    ``every_map``: sweep every map of AlexNet / VGG16 (default four a
    layer). ``isolation``: see ``runner.runner_for``. ``on_result``: called
    with each CaseResult as it is ready. A function that cannot be loaded
    (its module does not import, the name is not in it, or the worker
    process that loads it cannot start) raises a ValueError before any
    case is run.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    if module is None and weights is not None:
        from ..checkpoint import load_module
        module = load_module(weights, arch=model)
    sweep = not cases or any(name == model or name.startswith(model + " ") for name in cases)
    # the sweep's network is built only when asked for: VGG16's weights take seconds and a GB
    chosen = select_cases(standard_cases() + (network_cases(model, module, every_map) if sweep else []),
                          cases, model)
    runner = runner_for(fn, timeout, isolation)
    results, recordings = [], {}
    with runner:
        # a function that cannot be loaded (or run at all) is no verdict on it
        broken = runner.ready()
        if broken:
            raise ValueError(f"{broken}; no case was run")
        for case in chosen:
            results.append(judge_case(runner, case, recordings))
            if on_result:
                on_result(results[-1])
    return Verdict(str(runner.label), model, timeout, results)


def select_cases(every, names, model):
    """The cases named (a name also picks the cases it begins: "lenet5"
    picks "lenet5 conv_1" ...), in their usual order."""
    if not names:
        return every
    unknown = [n for n in names if not any(c.name == n or c.name.startswith(n + " ") for c in every)]
    if unknown:
        standard = [c.name for c in every if not c.name.startswith(model + " ")]
        raise ValueError(f"unknown case {unknown[0]!r}; cases: {', '.join(standard)}, and the sweep: "
                         f"{model} (all of it) or {model} LAYER")
    return [c for c in every if any(c.name == n or c.name.startswith(n + " ") for n in names)]


def judge_case(runner, case, recordings=None):
    """Call the function on every probe of ``case``; a CaseResult.
    ``recordings``: forward passes kept from case to case (the sweep's
    cases share their network and images)."""
    model = case.network.model()
    recordings = {} if recordings is None else recordings
    key = (case.network.key, id(case.x))
    if key not in recordings:
        recordings.clear()                            # one at a time: VGG16's is large
        recordings[key] = model.forward(case.x, record=True)[1]   # every layer: the diagnosis reads them all
    acts = recordings[key]
    dtype = np.dtype(case.network.dtype).name
    tolerance = TOLERANCES[dtype]
    expected = _Expected(model, case, acts)
    result = CaseResult(case.name, case.purpose, dtype, 0, len(case.probes), "equal", 0.0, x=case.x)
    for probe in case.probes:
        outcome = runner.call(case, probe)
        if outcome.kind == "not-run":
            return _failed(result, "not run", probe, outcome.message)
        result.calls += 1
        if outcome.kind != "ok":
            return _failed(result, "error", probe, outcome.message)
        got = outcome.array
        problem = bad_output(got, case.x)
        if problem:
            return _failed(result, "error", probe, problem)
        want = expected[probe]
        error = relative_error(got, want)
        result.error = max(result.error, error)
        if result.got is None:
            result.got, result.expected = got, want
        if error > tolerance:
            result.status, result.probe, result.got, result.expected = "not equal", probe, got, want
            if got.dtype != case.x.dtype:
                result.message = f"returned {got.dtype} for a {case.x.dtype} input"
            result.diagnosis = diagnose(model, acts, probe, got, want, tolerance)
            return result
    return result


def _failed(result, status, probe, message):
    result.status, result.probe, result.message, result.error = status, probe, message, None
    result.got = result.expected = None
    return result


def bad_output(got, x):
    """What is wrong with an output that cannot be compared, or ''."""
    if got.shape != x.shape:
        return f"returned shape {got.shape}, expected {x.shape} (like x)"
    if got.dtype.kind != "f":
        return f"returned {got.dtype} values, expected floating point"
    bad = np.count_nonzero(~np.isfinite(got))
    if bad:
        return f"returned NaN or inf in {bad:,} of {got.size:,} values"
    return ""


class _Expected:
    """npcnn's projections of a case, made per (layer, select) for all the
    case's channels at once on first need."""

    def __init__(self, model, case, acts):
        self.model, self.case, self.acts, self.made = model, case, acts, {}

    def __getitem__(self, probe):
        group = (probe.layer, probe.select)
        if group not in self.made:
            channels = sorted({p.channel for p in self.case.probes if (p.layer, p.select) == group})
            projections = deconv.project_channels(self.model, self.case.x, probe.layer, channels,
                                                  probe.select, acts=self.acts)
            self.made[group] = dict(zip(channels, projections))
        return self.made[group][probe.channel]
