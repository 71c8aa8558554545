"""npcnn atlas and npcnn deconv over a whole split, in this process or on a
Dask LocalCluster of 2 worker processes; bad scheduler options are one line."""

import numpy as np
import pytest

import bridge
from bridge.train import train
from npcnn.data import load_mnist, to_tensor
from npcnn.stats import cluster, load_stats
from npcnn.topk import top_activations
from vis.cli import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    digits = load_mnist("mnist5k", "train", verbose=False)
    path = tmp_path_factory.mktemp("net") / "lenet5.pt"
    train("lenet5", digits, load_mnist("mnist5k", "test", verbose=False), epochs=1, seed=0, device="cpu",
          out=path, progress=False)
    return path


def test_deconv_top9_over_the_training_split_on_two_workers(checkpoint, tmp_path):
    out = tmp_path / "deconv"
    assert main(["deconv", "--checkpoint", str(checkpoint), "--figures", "top9", "--split", "train",
                 "--limit", "3000", "--shard-size", "700", "--scheduler", "local:2", "--out", str(out)]) == 0
    assert {"top9_pool_1.png", "top9_pool_2.png", "top9.npz"} <= {p.name for p in out.iterdir()}
    model = bridge.load(checkpoint)
    data = load_mnist(model.meta.get("dataset", "mnist"), "train", verbose=False)
    norm = model.meta["normalization"]
    x = to_tensor(data.images[:3000], norm["mean"], norm["std"])
    for top, layer in zip(load_stats(out / "top9.npz"), ("pool_1", "pool_2")):
        ids, values, positions = top.result()
        images, expected, where = top_activations(model, x, layer, k=9)
        assert np.array_equal(ids, images) and np.array_equal(positions, where)
        np.testing.assert_allclose(values, expected, rtol=1e-6)


def test_atlas_on_two_workers_equals_this_process(checkpoint, tmp_path):
    common = ["atlas", "--checkpoint", str(checkpoint), "--split", "train", "--limit", "2500", "--digits", "3",
              "--shard-size", "600"]
    assert main(common + ["--out", str(tmp_path / "here")]) == 0
    assert main(common + ["--scheduler", "local:2", "--out", str(tmp_path / "there")]) == 0
    (here,), (there,) = load_stats(tmp_path / "here" / "class_means.npz"), load_stats(tmp_path / "there" /
                                                                                      "class_means.npz")
    assert int(here.counts.sum()) == 2500 and np.array_equal(here.counts, there.counts)
    for layer in here.layers:
        np.testing.assert_allclose(there.sums[layer], here.sums[layer], rtol=1e-12, atol=1e-9)
        np.testing.assert_array_equal(there.zeros[layer], here.zeros[layer])
    assert (tmp_path / "there" / "sparsity.txt").read_text() == (tmp_path / "here" / "sparsity.txt").read_text()


@pytest.mark.parametrize("argv,fragment,code", [
    (["--scheduler", "yarn"], "argument --scheduler: expected local:N", 2),
    (["--scheduler", "local:0"], "argument --scheduler: local:N needs N workers, 1 to 256", 2),
    (["--limit", "0"], "argument --limit", 2),
    (["--scheduler", "tcp://127.0.0.1:9"], "--scheduler tcp://127.0.0.1:9: no Dask scheduler answered", 1),
])
@pytest.mark.parametrize("command", [["deconv", "--figures", "digits", "top9"], ["atlas"]], ids=["deconv", "atlas"])
def test_bad_scheduler_options_are_one_line(checkpoint, tmp_path, capsys, monkeypatch, argv, fragment, code,
                                            command):
    """Before any figure is drawn: an address nothing answers is found
    before the figures that need no scheduler, not after them."""
    # an address nothing answers is given up on after 1 s, not the 10 s users wait
    monkeypatch.setattr(cluster, "ANSWER_TIMEOUT_S", 1)
    out = tmp_path / "o"
    assert main([command[0], "--checkpoint", str(checkpoint), *command[1:], "--limit", "500", *argv,
                 "--out", str(out)]) == code
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1, err
    assert not out.exists()
