"""``npcnn bench --kernel module:function --op OP``: judge a user's kernel,
then time it.

The function has torch's signature for the op, on NumPy arrays (see
``op_sweep`` for what each op is called with). First it must agree with
npcnn's readable reference on every case of ``op_sweep.sweep(op)``: the
same shape and dtype, values within the dtype's tolerance, switches exactly,
its inputs left as they were. Only then is it timed beside npcnn-numba and
torch on the bench's rows for that op (``cases.OP_ROWS``), where it must
agree with torch again. ``kernel.md`` and ``kernel.json`` say what passed,
the first failing case (its call, shapes, max abs and rel diff, or the
exception), and the times.
"""
import importlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from npcnn.atomic import atomic_path

from . import cases, op_sweep
from .bandwidth import copy_bandwidth
from .timing import max_rel_diff
from .yardsticks import machine_lines, rate_cells

# Agreement with the reference, relative to its largest |value|: a kernel
# may sum in another order (float32 sums of a few hundred terms differ in
# the 6th digit), but not compute another thing.
TOLERANCE = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): cases.AGREE}


def load_kernel(spec):
    """The function named by ``module:function`` (importable from the current
    folder, as ``python -m`` has it) or ``path/to/file.py:function``.
    Anything wrong is a ValueError of one line that names it."""
    where, colon, name = str(spec).rpartition(":")
    if not colon or not where.strip() or not name.strip():
        raise ValueError(f"--kernel {spec!r}: expected module:function or path/to/file.py:function")
    try:
        if where.endswith(".py"):
            module = _module_from_file(Path(where).expanduser())
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(where.strip())
    except ValueError:
        raise
    except (Exception, SystemExit) as err:  # its import ran the user's code: anything may come out
        raise ValueError(f"--kernel {spec}: importing {where} failed: {_first_line(err)}") from err
    fn = module
    for part in name.strip().split("."):
        if not hasattr(fn, part):
            raise ValueError(f"--kernel {spec}: {where} has no attribute {part!r}")
        fn = getattr(fn, part)
    if not callable(fn):
        raise ValueError(f"--kernel {spec}: {name} is a {type(fn).__name__}, not a function")
    return fn


def _module_from_file(path):
    if not path.is_file():
        raise ValueError(f"--kernel: {path}: no such file")
    name = f"npcnn_bench_kernel_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    spec.loader.exec_module(module)
    return module


def _first_line(err):
    text = str(err).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


# -- the sweep ----------------------------------------------------------------------

def difference(case, out, ref):
    """None where ``out`` agrees with ``ref``, else what differs, in one line."""
    if case.op == "max_pool2d":  # (output, indices), as return_indices=True asks
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            return (f"returned a {type(out).__name__}, not the pair (output, indices) "
                    f"(max_pool2d is called with return_indices=True)")
        pairs = zip(out, ref)
    else:
        pairs = [(out, ref)]
    for k, (a, r) in enumerate(pairs):
        what = "indices" if k == 1 else "output"
        if not isinstance(a, np.ndarray):
            return f"{what} is a {type(a).__module__}.{type(a).__name__}, not a NumPy array"
        if a.shape != r.shape:
            return f"{what} has shape {a.shape}, the reference {r.shape}"
        if a.dtype != r.dtype:
            return f"{what} has dtype {a.dtype}, the reference {r.dtype}"
        if k == 1:  # switches: exact
            wrong = np.argwhere(a != r)
            if len(wrong):
                at = tuple(int(v) for v in wrong[0])
                return (f"indices differ at {len(wrong)} of {a.size} positions, first at {at}: "
                        f"{a[at]} where the reference has {r[at]}")
            continue
        rel = max_rel_diff(a, r)
        if not rel <= TOLERANCE[r.dtype]:
            abs_diff = float(np.abs(a.astype(np.float64) - r).max())
            return (f"{what} differs: max abs diff {abs_diff:.3g}, max rel diff {rel:.3g} "
                    f"(tolerance {TOLERANCE[r.dtype]:g} of the largest |value|)")
    return None


def check(fn, op):
    """Every case of the sweep: [{case, call, ok, detail}], in order."""
    verdicts = []
    for case in op_sweep.sweep(op):
        ref = case.reference()
        inputs = [a.copy() for a in case.arrays()]
        try:
            out = case.call(lambda *a, **k: _watching_inputs(fn, inputs, a, k))
        except _ChangedInput as changed:
            detail = str(changed)
        except Exception as err:  # noqa: BLE001 - the user's kernel failing is a verdict, not a crash
            detail = f"raised {_first_line(err)}"
        else:
            detail = difference(case, out, ref)
        verdicts.append(dict(case=case.name, call=case.describe(), ok=detail is None, detail=detail or ""))
    return verdicts


class _ChangedInput(Exception):
    pass


def _watching_inputs(fn, originals, args, kwargs):
    """fn(*args, **kwargs), then a check that it wrote into no input."""
    out = fn(*args, **kwargs)
    given = [v for v in (*args, *kwargs.values()) if isinstance(v, np.ndarray)]
    for a, original in zip(given, originals):
        if not np.array_equal(a, original):
            raise _ChangedInput(f"changed an input array of shape {a.shape} in place")
    return out


# -- the timings --------------------------------------------------------------------

def time_rows(fn, op, quick, repeats=None):
    """The bench's rows of ``op`` with the kernel beside npcnn-numba and
    torch; ``(results, failure)``, failure naming the row where the kernel
    disagreed with torch (None if it never did)."""
    reps, budget = (3, 0.5) if quick else (9, 2.0)
    results = []
    for name, shape, _ in cases.OP_ROWS[op]:
        try:
            results.append(cases.CASE_OF[op](name, **shape, repeats=repeats or reps, budget_s=budget,
                                             numpy=False, kernel=fn))
        except AssertionError as err:  # _time_all's agreement check, before any timing: it names the row
            return results, str(err)
        except Exception as err:  # noqa: BLE001 - the kernel raised on a bench shape
            return results, f"{op} {name}: the kernel raised {_first_line(err)}"
    return results, None


# -- the report ----------------------------------------------------------------------

def markdown(spec, op, verdicts, results, failure, sgemm, copy):
    passed = sum(v["ok"] for v in verdicts)
    lines = [f"`npcnn bench --kernel {spec} --op {op}`, {time.strftime('%Y-%m-%d %H:%M')}: "
             f"{passed} of {len(verdicts)} sweep cases agree with npcnn's reference (backend=\"numpy\").", ""]
    first = next((v for v in verdicts if not v["ok"]), None)
    if first:
        lines += [f"**Rejected.** First failing case: {first['case']}", "",
                  f"    {first['call']}", "", f"{first['detail']}", "", "Not timed.", ""]
    lines += ["| sweep case | agrees |", "| --- | --- |"]
    lines += [f"| {v['case']} | {'yes' if v['ok'] else '**no**: ' + v['detail'].replace('|', '/')} |"
              for v in verdicts]
    if first:
        return "\n".join(lines) + "\n"
    lines += ["", *machine_lines(sgemm, copy), "",
              "| case | kernel ms | npcnn-numba ms | torch ms | kernel / torch | kernel / npcnn-numba | "
              "kernel GFLOP/s | % of SGEMM | kernel GB/s | % of copy | max rel diff to torch |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        lines.append(f"| {r.case} | {r.ms[cases.KERNEL]:.2f} | {r.ms['npcnn-numba']:.2f} | {r.ms['torch']:.2f} | "
                     f"{r.ratio(cases.KERNEL):.2f} | {r.ratio(cases.KERNEL, 'npcnn-numba'):.2f} | "
                     f"{' | '.join(rate_cells(r, cases.KERNEL, sgemm, copy))} | {r.max_rel_diff:.1e} |")
    if failure:
        lines += ["", f"**Rejected** on a bench row: {failure}"]
    return "\n".join(lines) + "\n"


def judge(spec, op, out, quick, repeats=None):
    """Check the kernel, time it if it agrees, write ``kernel.md`` and
    ``kernel.json`` into ``out``. Returns ``(markdown, None)``, or
    ``(markdown, one line saying why it was rejected)``."""
    fn = load_kernel(spec)
    verdicts = check(fn, op)
    first = next((v for v in verdicts if not v["ok"]), None)
    results, failure, sgemm, copy = [], None, None, None
    if first is None:
        sgemm = cases.sgemm_rate(repeats=3)
        copy = copy_bandwidth(repeats=3 if quick else 5)
        results, failure = time_rows(fn, op, quick, repeats)
    text = markdown(spec, op, verdicts, results, failure, sgemm, copy)
    data = dict(kernel=spec, op=op, quick=quick, sweep=verdicts, first_failure=first, bench_failure=failure,
                sgemm_gflops=sgemm, copy_bandwidth=copy,
                results=[dict(case=r.case, ms=r.ms, flops=r.flops, bytes=r.bytes, max_rel_diff=r.max_rel_diff,
                              ratio_to_torch=r.ratio(cases.KERNEL),
                              ratio_to_npcnn=r.ratio(cases.KERNEL, "npcnn-numba")) for r in results])
    out = Path(out)
    with atomic_path(out / "kernel.json") as tmp:
        Path(tmp).write_text(json.dumps(data, indent=1))
    with atomic_path(out / "kernel.md") as tmp:
        Path(tmp).write_text(text)
    if first is not None:
        return text, (f"--kernel {spec} disagrees with npcnn's reference on sweep case "
                      f"'{first['case']}' ({first['call']}): {first['detail']}; see {out / 'kernel.md'}")
    if failure is not None:
        return text, f"--kernel {spec} disagrees with torch on a bench row: {failure}; see {out / 'kernel.md'}"
    return text, None
