"""The one vocabulary of the engine's tests: ``check_op`` runs npcnn and torch
on the same inputs and compares shape, dtype, values and gradients
(tinygrad's ``helper_test_op``); ``assert_close`` compares two arrays the same
way. Both take the tolerances of the arrays' dtype from ``TOL`` unless the
call writes its own (``atol=``, ``rtol=``), where a test needs tighter or
looser ones and says why."""
import numpy as np
import torch

# The default tolerances, per dtype: float64 tight, float32 looser.
TOL = {np.float64: dict(atol=1e-10, rtol=1e-10), np.float32: dict(atol=1e-5, rtol=1e-5)}


def tolerances(dtype, atol=None, rtol=None):
    """(atol, rtol): the call's own where given, else ``TOL``'s for dtype."""
    default = TOL.get(np.dtype(dtype).type, TOL[np.float64])
    return (default["atol"] if atol is None else atol), (default["rtol"] if rtol is None else rtol)


def assert_close(name, ours, theirs, atol=None, rtol=None):
    """Shape, then dtype, then values (exactly for integer arrays such as
    switches). ``theirs`` may be a torch tensor; tolerances as ``tolerances``."""
    theirs = theirs.detach().cpu().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert isinstance(ours, np.ndarray), f"{name}: npcnn returned {type(ours).__name__}, not ndarray"
    assert ours.shape == theirs.shape, f"{name}: shape {ours.shape} != torch {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{name}: dtype {ours.dtype} != torch {theirs.dtype}"
    if np.issubdtype(ours.dtype, np.integer):
        diff = np.argwhere(ours != theirs)
        assert diff.size == 0, (f"{name}: {len(diff)} entries differ, first at {tuple(diff[0])}: "
                                f"{ours[tuple(diff[0])]} != torch {theirs[tuple(diff[0])]}")
    else:
        atol, rtol = tolerances(ours.dtype, atol, rtol)
        np.testing.assert_allclose(ours, theirs, atol=atol, rtol=rtol, err_msg=name)


def check_op(ours, theirs, inputs, *, atol=None, rtol=None, backward=None, grad_seed=0):
    """Run ``ours(*inputs)`` (numpy) and ``theirs(*tensors)`` (torch) and compare.

    ``inputs`` are numpy arrays (None passes through, as an absent bias);
    the tolerances default to those of each output's dtype.
    Either function may return a tuple (max_pool2d's output and switches);
    every element is compared. With ``backward``, a random upstream gradient
    g of the first output is drawn; ``backward(g, *inputs)`` must return one
    gradient per non-None input, equal to what torch's autograd puts in
    ``.grad``.
    """
    tensors = [None if a is None else torch.tensor(a, requires_grad=backward is not None)
               for a in inputs]
    out = ours(*inputs)
    ref = theirs(*tensors)
    outs = out if isinstance(out, tuple) else (out,)
    refs = ref if isinstance(ref, tuple) else (ref,)
    assert len(outs) == len(refs), f"npcnn returned {len(outs)} outputs, torch {len(refs)}"
    for k, (o, r) in enumerate(zip(outs, refs)):
        assert_close(f"output {k}", o, r, atol, rtol)
    if backward is None:
        return out
    # Scaled by 1/sqrt(entries per output channel): weight gradients sum g
    # over the batch and every position, and this keeps them O(1), as
    # gradients of a mean loss are, so float32's tolerance measures the
    # kernel and not cancellation in sums of thousands of large terms.
    shape = outs[0].shape
    per_channel = max(np.prod(shape) / max(shape[1] if len(shape) > 1 else 1, 1), 1)  # 1 when empty
    g = np.random.default_rng(grad_seed).standard_normal(shape) / np.sqrt(per_channel)
    g = np.asarray(g.astype(outs[0].dtype))  # a 0-d output's g stays an array, not a NumPy scalar
    refs[0].backward(torch.from_numpy(g))
    grads = backward(g, *inputs)
    grads = grads if isinstance(grads, tuple) else (grads,)
    wanted = [t for t in tensors if t is not None]
    assert len(grads) == len(wanted), f"backward returned {len(grads)} gradients, expected {len(wanted)}"
    for k, (mine, t) in enumerate(zip(grads, wanted)):
        assert_close(f"gradient {k}", mine, t.grad, atol, rtol)
    return out
