"""Every sample of PyTorch's OpInfo corpus for the ops npcnn.functional
mirrors, on both backends and both float types, is either equal to torch
(values, shape, dtype; switches exactly; gradients where npcnn has the
backward) or refused with a ValueError naming the argument npcnn does not
take, as ``REFUSED`` below predicts: no more, no fewer. ``opinfo_samples``
translates each sample into an npcnn call and makes the comparison;
unpooling is compared with autograd's accumulating rule (scatter_add), and
with ``F.max_unpool2d`` too where no switch repeats; dropout's random mask
by its structure and statistics.

Run with ``-s`` to see how many samples each parametrisation compared and
how many it refused.
"""
import collections
from typing import Callable, NamedTuple

import pytest
import torch

from opinfo_samples import COMPARE, OPINFOS, Refused, describe_sample, samples

TORCH_DTYPES = [torch.float64, torch.float32]

# torch's own note on a sample it makes (conv2d, padding="same", an even kernel)
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")


class Refusal(NamedTuple):
    ops: tuple  # keys of OPINFOS
    argument: str  # the word npcnn's ValueError must contain
    applies: Callable  # SampleInput -> bool: the samples refused
    why: str


SOFTMAXES = ("softmax", "softmax.with_dtype", "log_softmax", "log_softmax.with_dtype")

# The samples npcnn refuses, and why. The list is exact: a sample refused
# that no row predicts fails, as does a sample that a row predicts refused
# and npcnn computes, and a row that matches no sample (a dead row).
REFUSED = [
    # A 0-d input: npcnn's softmax acts along an axis of an array of 1 to 32
    # dimensions; torch treats a 0-d tensor as one element (softmax 1, log 0).
    Refusal(SOFTMAXES, "input", lambda s: s.input.ndim == 0,
            "a 0-d input (torch: one element, softmax 1, log_softmax 0)"),
]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """torch on one thread: its reference calls here are on tiny tensors,
    where a second thread only waits (six times slower on 2 busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def refusals(op, sample):
    return [r for r in REFUSED if op in r.ops and r.applies(sample)]


@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=str)
@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("op", list(OPINFOS))
def test_opinfo_samples(op, backend, dtype):
    counts = collections.Counter()
    for i, sample in enumerate(samples(op, dtype)):
        where = f"{op} sample {i} ({describe_sample(sample)}), backend={backend}"
        expected = refusals(op, sample)
        try:
            outcome = COMPARE[op](sample, backend)
        except Refused as refused:
            assert expected, f"{where}: refused, and no row of REFUSED predicts it: {refused}"
            assert expected[0].argument in str(refused), (
                f"{where}: the refusal should name {expected[0].argument!r}: {refused}")
            counts["refused"] += 1
            continue
        except AssertionError as e:
            raise AssertionError(f"{where}: {e}") from e
        except Exception as e:  # anything else npcnn (or torch) raises: neither equal nor refused
            raise AssertionError(f"{where}: {type(e).__name__}: {e}") from e
        assert not expected, (f"{where}: computed, equal to torch, but REFUSED predicts a refusal "
                              f"({expected[0].why}): remove that row")
        counts["compared"] += 1
        if outcome:
            counts[outcome] += 1
    print(f"\nopinfo {op} {backend} {dtype}: {dict(counts)}")
    assert counts["compared"] > 0, f"{op}: every sample refused"
    if op == "max_unpool2d":  # the accumulating rule, where torch's F.max_unpool2d differs, is exercised
        assert counts["repeated switches"] > 0 and counts["unique switches"] > 0, counts
    if op == "dropout":
        assert counts["mask"] > 0 and counts["deterministic"] > 0, counts


def test_no_dead_refusal_rows():
    """Each row of REFUSED matches a sample of each op it names."""
    for row in REFUSED:
        for op in row.ops:
            assert any(row.applies(s) for dtype in TORCH_DTYPES for s in samples(op, dtype)), (
                f"REFUSED row {row.why!r} matches no sample of {op}: remove it")
