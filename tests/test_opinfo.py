"""Every sample of PyTorch's OpInfo corpus for the ops npcnn.functional
mirrors, on both backends and both float types, is equal to torch (values,
shape, dtype; switches exactly; gradients where npcnn has the backward):
none is refused. ``opinfo_samples`` translates each sample into an npcnn
call and makes the comparison; unpooling is compared with autograd's accumulating rule (scatter_add), and
with ``F.max_unpool2d`` too where no switch repeats; dropout's random mask
by its structure and statistics.

Run with ``-s`` to see how many samples each parametrisation compared.
"""
import collections

import pytest
import torch

from opinfo_samples import COMPARE, OPINFOS, Refused, describe_sample, samples

TORCH_DTYPES = [torch.float64, torch.float32]

# torch's own note on a sample it makes (conv2d, padding="same", an even kernel)
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")

# None of these samples is refused at torch 2.13: a refusal (npcnn's
# ValueError) fails the test as a wrong number does.

@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """torch on one thread: its reference calls here are on tiny tensors,
    where a second thread only waits (six times slower on 2 busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=str)
@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("op", list(OPINFOS))
def test_opinfo_samples(op, backend, dtype):
    counts = collections.Counter()
    for i, sample in enumerate(samples(op, dtype)):
        where = f"{op} sample {i} ({describe_sample(sample)}), backend={backend}"
        try:
            outcome = COMPARE[op](sample, backend)
        except Refused as refused:
            raise AssertionError(f"{where}: refused: {refused}") from refused
        except AssertionError as e:
            raise AssertionError(f"{where}: {e}") from e
        except Exception as e:  # anything else npcnn (or torch) raises: neither equal nor refused
            raise AssertionError(f"{where}: {type(e).__name__}: {e}") from e
        counts["compared"] += 1
        if outcome:
            counts[outcome] += 1
    print(f"\nopinfo {op} {backend} {dtype}: {dict(counts)}")
    assert counts["compared"] > 0, f"{op}: every sample refused"
    if op == "max_unpool2d":  # the accumulating rule, where torch's F.max_unpool2d differs, is exercised
        assert counts["repeated switches"] > 0 and counts["unique switches"] > 0, counts
    if op == "dropout":
        assert counts["mask"] > 0 and counts["deterministic"] > 0, counts
