"""The sweep that ``npcnn bench --kernel`` judges kernels on is itself proven:
on every case, npcnn's readable reference equals torch (values within the
dtype's tolerance, dtype and shape exact, switches exact)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from benchmarks import op_sweep
from benchmarks.timing import max_rel_diff

TOLERANCE = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}  # relative to the largest |value|
CASES = [case for op in op_sweep.OPS for case in op_sweep.sweep(op)]


def _tensor(v):
    return torch.from_numpy(v) if isinstance(v, np.ndarray) else v


def _torch(case):
    """torch's answer to the same call. max_unpool2d: values whose indices
    coincide add up (autograd's gradient of max-pooling, npcnn's rule), and
    where none coincide torch's own max_unpool2d must give the same."""
    args, kwargs = [_tensor(v) for v in case.args], {k: _tensor(v) for k, v in case.kwargs.items()}
    if case.op != "max_unpool2d":
        out = getattr(TF, case.op)(*args, **kwargs)
        return tuple(t.numpy() for t in out) if isinstance(out, tuple) else out.numpy()
    unpooled = TF.max_unpool2d(*args, **kwargs).numpy()
    y, indices = (case.args + tuple(case.kwargs.values()))[:2]   # both cases' forms put them first
    N, C, H, W = unpooled.shape
    added = torch.zeros(N, C, H * W, dtype=_tensor(y).dtype).scatter_add_(
        2, _tensor(indices).reshape(N, C, -1), _tensor(y).reshape(N, C, -1)).reshape(N, C, H, W).numpy()
    if all(len(np.unique(i)) == i.size for i in indices.reshape(N * C, -1)):
        np.testing.assert_array_equal(added, unpooled)
    return added


def test_the_sweep_is_the_same_in_every_run_and_named_uniquely():
    again = [case for op in op_sweep.OPS for case in op_sweep.sweep(op)]
    assert [c.describe() for c in again] == [c.describe() for c in CASES]
    assert all(np.array_equal(a, b) for c, d in zip(CASES, again) for a, b in zip(c.arrays(), d.arrays()))
    for op in op_sweep.OPS:
        names = [c.name for c in CASES if c.op == op]
        assert len(names) == len(set(names)) >= 6, op
        assert {a.dtype for c in CASES if c.op == op for a in c.arrays()} >= {np.dtype(np.float32),
                                                                            np.dtype(np.float64)}


def test_overlapping_unpool_cases_repeat_indices():
    """The accumulation rule is exercised: some case's switches coincide."""
    case = next(c for c in op_sweep.sweep("max_unpool2d") if "repeated indices" in c.name)
    indices = case.args[1].reshape(-1, case.args[1].shape[-2] * case.args[1].shape[-1])
    assert any(len(np.unique(row)) < row.size for row in indices)


@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel lengths")
@pytest.mark.parametrize("case", CASES, ids=[f"{c.op}: {c.name}" for c in CASES])
def test_npcnn_reference_equals_torch(case):
    with torch.no_grad():
        theirs = _torch(case)
    ours = case.reference()
    if case.op == "max_pool2d":
        (ours, switches), (theirs, their_switches) = ours, theirs
        assert switches.dtype == np.int64 and np.array_equal(switches, their_switches)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    assert max_rel_diff(ours, theirs) <= TOLERANCE[ours.dtype]


def test_an_unknown_op_is_refused():
    with pytest.raises(ValueError, match="op must be one of"):
        op_sweep.sweep("avg_pool2d")
