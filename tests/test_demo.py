"""The README's first command: npcnn demo, end to end (quick, on the embedded
5,000 samples), and its page checked in a real headless browser."""
import pytest

from vis.cli import main
from vis.page_check import check_page


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--dataset", "mnist5k", "--out", str(out)]) == 0
    return out


def test_demo_writes_a_page_with_every_study(demo):
    html = (demo / "index.html").read_text()
    for heading in ("npcnn equals torch, layer by layer", "The deconvnet (Zeiler &amp; Fergus 2013) on LeNet-5",
                    "Activation atlas of SimpleCNN", "Attributions, activation maximization and FGSM",
                    "Can the maps be trusted? Sanity checks"):
        assert heading in html
    assert "mnist5k" in html and "test accuracy" in html and "timings" in html
    for name in ("deconv/digit_0.png", "deconv/top9_pool_2.png", "deconv/occlusion_7.png",
                 "deconv/evolution_pool_1.png", "atlas/avg_relu_1.png", "atlas/sparsity.png",
                 "explain/lenet5/attributions.png", "explain/lenet5/actmax_classes.png",
                 "explain/lenet5/fgsm.png", "explain/simplecnn/attributions.png",
                 "explain/simplecnn/actmax_relu_2.png"):
        assert f'src="{name}"' in html and (demo / name).is_file(), name
    assert (demo / "index.md").is_file()
    assert 'href="explore/index.html"' in html and (demo / "explore" / "index.html").is_file()
    assert any((demo / "sanity").glob("*.png"))


def test_the_page_loads_in_a_headless_browser(demo):
    shot = demo / "screenshot.png"
    report = check_page(demo / "index.html", shot)
    assert report.title.startswith("npcnn demo")
    assert report.images > 40
    assert report.broken == [], report.broken
    assert report.console_errors == [], report.console_errors
    assert shot.stat().st_size > 10_000


def test_rerunning_reuses_the_checkpoints(demo, capsys, monkeypatch):
    """A second run finds both networks' checkpoints of the first and
    trains neither (the tour asks ``trained`` for each; the rest of the
    run is the first one's again, which the test above checks)."""
    from npcnn.data import load_mnist
    from vis import demo as demo_cmd

    def no_training(*args, **kwargs):
        raise AssertionError("the rerun trained a network")

    monkeypatch.setattr(demo_cmd, "train", no_training)
    train_set, test_set = load_mnist("mnist5k", "train"), load_mnist("mnist5k", "test")
    capsys.readouterr()
    for arch in ("lenet5", "simplecnn"):
        path, meta, seconds = demo_cmd.trained(arch, train_set, test_set, 1, demo / "checkpoints")
        assert path.parent == demo / "checkpoints" and seconds == 0.0 and meta["epochs"] == 1
    out = capsys.readouterr().out
    assert "lenet5: reusing" in out and "simplecnn: reusing" in out and "epoch(s) on" not in out


def test_output_path_that_is_a_file_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["demo", "--quick", "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("npcnn demo: error: argument --out:") and err.count("\n") == 1
