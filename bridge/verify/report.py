"""The verdict as Markdown (for a reader) and JSON (for a program), both
written atomically."""
import json
from pathlib import Path

from npcnn.atomic import atomic_write_text

from .judge import TOLERANCES


def write_report(verdict, folder, figure=None):
    """``report.md`` and ``report.json`` in ``folder`` (which must exist);
    ``figure``: the file name of the figure of the first failure, to link."""
    folder = Path(folder)
    md = atomic_write_text(folder / "report.md", markdown(verdict, figure))
    js = atomic_write_text(folder / "report.json", json.dumps(as_dict(verdict, figure), indent=2) + "\n")
    return md, js


def as_dict(verdict, figure=None):
    failure = verdict.first_failure
    return {
        "implementation": verdict.implementation,
        "model": verdict.model,
        "passed": verdict.passed,
        "tolerances": TOLERANCES,
        "timeout_s": verdict.timeout,
        "cases": [_case(r) for r in verdict.results],
        "first_failure": None if failure is None else {**_case(failure), **_diagnosis(failure)},
        "figure": figure,
    }


def _case(r):
    return {"name": r.name, "purpose": r.purpose, "dtype": r.dtype, "status": r.status, "equal": r.passed,
            "relative_error": r.error, "calls": r.calls, "probes": r.probes,
            "failed_call": None if r.probe is None else vars(r.probe), "message": r.message}


def _diagnosis(r):
    d = r.diagnosis
    if d is None:
        return {"likely_cause": None}
    return {"likely_cause": d.cause, "matched": d.matched, "advice": d.advice}


def markdown(verdict, figure=None):
    passed, count = sum(r.passed for r in verdict.results), len(verdict.results)
    swept = any(r.name.startswith(verdict.model + " ") for r in verdict.results)
    lines = [f"# Deconvnet verdict: {'all equal' if verdict.passed else 'NOT equal'}", "",
             f"Implementation `{verdict.implementation}`, judged against npcnn's deconvnet on "
             f"{count} case{'s' if count > 1 else ''}{f' (the sweep on {verdict.model})' if swept else ''}; "
             f"{passed} equal. "
             f"Equal: relative error (max |difference| / largest magnitude) at most "
             f"{TOLERANCES['float32']:g} in float32, {TOLERANCES['float64']:g} in float64. "
             f"Time limit {verdict.timeout:g} s a call.", "",
             "| case | what it tests | dtype | calls | verdict | relative error | note |",
             "| --- | --- | --- | ---: | --- | ---: | --- |"]
    for r in verdict.results:
        error = "-" if r.error is None else f"{r.error:.2e}"
        note = (r.diagnosis.cause if r.diagnosis else r.message).replace("|", "\\|")
        if r.probe is not None:
            note = f"{r.probe}: {note}"
        lines.append(f"| {r.name} | {r.purpose} | {r.dtype} | {r.calls}/{r.probes} | "
                     f"{'equal' if r.passed else r.status} | {error} | {note} |")
    failure = verdict.first_failure
    if failure is not None:
        lines += ["", "## First failure", "", f"Case **{failure.name}** ({failure.purpose}), "
                  f"call `{failure.probe}`: {failure.status}" + (
                      f", relative error {failure.error:.2e}." if failure.error is not None else
                      f": {failure.message}")]
        if failure.diagnosis is not None:
            d = failure.diagnosis
            lines += ["", f"Likely cause: **{d.cause}**. {d.advice[0].upper()}{d.advice[1:]}."]
    if figure:
        lines += ["", f"![your projection, npcnn's and their difference]({figure})"]
    return "\n".join(lines) + "\n"
