"""The GPU check and the attribution rates: they run, and what they time agrees."""
import pytest
import torch

import bridge
from benchmarks import attribution_rates, gpu
from benchmarks.attribution_rates import METHODS, check_batch_agrees, markdown, method_rates


def test_attribution_rates_run_on_the_cpu():
    torch.manual_seed(0)
    module = bridge.torch_model("lenet5").eval()
    rates = method_rates(module, 28, "relu_2", batches=(1, 3), rows=16, min_seconds=0.0, max_calls=1)
    assert [(r.method, r.batch) for r in rates] == [(m, b) for m in METHODS for b in (1, 3)]
    assert all(r.images_per_s > 0 and r.peak_bytes is None for r in rates)
    table = markdown(rates, "LeNet-5")
    assert "| Integrated Gradients (50 steps) | 3 |" in table


def test_the_best_batch_stops_when_the_rate_stops_growing(monkeypatch):
    speeds = {1: 10.0, 2: 19.0, 4: 19.5, 8: 40.0}
    monkeypatch.setattr(attribution_rates, "rate", lambda module, method, batch, *a, **k:
                        attribution_rates.Rate(method, batch, speeds[batch], None))
    best = attribution_rates.best_rate(bridge.torch_model("lenet5"), "saliency", 28, "relu_2")
    assert (best.batch, best.images_per_s) == (4, 19.5)


def test_a_rate_is_not_timed_when_the_batch_changes_the_map(monkeypatch):
    """A method whose map of one image depends on the others in its batch is refused."""
    torch.manual_seed(0)
    module = bridge.torch_model("lenet5").eval()
    x = torch.randn(2, 1, 28, 28)
    monkeypatch.setitem(METHODS, "batch-dependent", lambda m, x, t, layer, rows: x - x.mean(dim=0, keepdim=True))
    with pytest.raises(AssertionError, match="batch-dependent: the batch's first map differs"):
        check_batch_agrees(module, "batch-dependent", x, torch.tensor([0, 1]), "relu_2", 16, 1e-4)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has CUDA: benchmarks.gpu runs in full there")
def test_the_gpu_check_says_in_one_line_that_there_is_no_gpu(capsys):
    assert gpu.main(["--out", "unused"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no CUDA device on this machine" in err
