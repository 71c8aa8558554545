"""Dataset-scale statistics: mergeable, streamed from disk, on one process or
a Dask cluster of 2 worker processes (started and stopped here)."""
import gzip
import os
import random
import re
import signal
import threading
import time
import tracemalloc

import numba
import numpy as np
import pytest

from npcnn import Model
from npcnn.analysis import class_averages
from npcnn.data import DataError, load_mnist, to_tensor, write_idx
from npcnn.stats import (ArraySource, ClassMeans, IdxSource, NpySource, TopK, load_stats, save_stats, shards,
                         tally)
from npcnn.stats.cluster import dask_client, parse_scheduler
from npcnn.stats.tally import merge_all, on_one_numba_thread, tally_shard
from npcnn.topk import top_activations

LAYERS = ["relu_1", "pool_2", "fc_1"]


def make_stats():
    return [ClassMeans(LAYERS, 10), TopK("relu_2", k=9), TopK("fc_2", k=5)]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "lenet5.npz"
    # float64: a batch of 1 and one of 500 take different kernels, whose float32
    # results differ in the 7th digit; in float64 the shards' split shows only as rounding
    Model.from_spec("lenet5", dtype=np.float64, seed=0).save(path)
    return path


@pytest.fixture(scope="module")
def digits():
    return load_mnist("mnist", "train", verbose=False)    # 4,000 or more: the subset has 4,000


@pytest.fixture(scope="module")
def idx_files(tmp_path_factory, digits):
    """The first 3,000 test digits as IDX files, raw and gzipped."""
    folder = tmp_path_factory.mktemp("idx")
    write_idx(folder / "images.idx", digits.images[:3000])
    write_idx(folder / "labels.idx", digits.labels[:3000].astype(np.uint8))
    for name in ("images", "labels"):
        (folder / f"{name}.idx.gz").write_bytes(gzip.compress((folder / f"{name}.idx").read_bytes()))
    return folder


def assert_same(a, b, rtol=1e-12):
    """Counts, top-k ids and positions identical; float64 sums and top-k values within rtol."""
    ra, rb = a[0].result(), b[0].result()
    assert np.array_equal(ra.counts, rb.counts)
    for layer in LAYERS:
        assert np.array_equal(a[0].zeros[layer], b[0].zeros[layer])
        np.testing.assert_allclose(a[0].sums[layer], b[0].sums[layer], rtol=rtol, atol=0)
        np.testing.assert_allclose(a[0].squares[layer], b[0].squares[layer], rtol=rtol, atol=0)
    for ta, tb in zip(a[1:], b[1:]):
        (ia, va, pa), (ib, vb, pb) = ta.result(), tb.result()
        assert np.array_equal(ia, ib) and np.array_equal(pa, pb)
        np.testing.assert_allclose(va, vb, rtol=rtol, atol=0)


def test_the_statistics_equal_the_in_memory_studies(weights, digits):
    model = Model.load(weights)
    total = tally(weights, ArraySource.from_dataset(digits), make_stats(), shard_size=1500, limit=4000)
    x, y = to_tensor(digits.images[:4000], dtype=np.float64), digits.labels[:4000]
    avg = class_averages(model, x, y, per_class=4000, layers=LAYERS)
    result = total[0].result()
    assert np.array_equal(result.counts, avg.counts)
    for layer in LAYERS:
        np.testing.assert_allclose(result.means[layer], avg[layer], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(result.zero_fraction[layer], avg.zero_fraction[layer], rtol=1e-12)
        a = model.forward(x, until=layer).astype(np.float64)
        np.testing.assert_allclose(result.variances[layer][3], a[y == 3].var(axis=0), rtol=1e-6, atol=1e-9)
    images, values, positions = top_activations(model, x, "relu_2", k=9)
    ids, kept, where = total[1].result()
    assert np.array_equal(ids, images) and np.array_equal(where, positions)
    np.testing.assert_allclose(kept, values, rtol=1e-7)


@pytest.mark.parametrize("shard_size", [1, 257, 1000])
def test_any_split_and_any_merge_order_give_one_result(weights, digits, shard_size):
    source = ArraySource(digits.images[:1200], digits.labels[:1200])
    whole = tally_shard(weights, source, 0, 1200, make_stats())
    parts = [tally_shard(weights, source, a, b, make_stats()) for a, b in shards(1200, shard_size)]
    for seed in range(3):
        shuffled = parts[:]
        random.Random(seed).shuffle(shuffled)
        copies = [[type(s).from_state_dict(s.state_dict()) for s in p] for p in shuffled]
        assert_same(merge_all(copies), whole)


def test_ties_order_by_value_then_by_id():
    top = TopK("a", k=3)
    top.add({"a": np.array([[[1.0]], [[5.0]], [[5.0]]])}, ids=np.array([7, 9, 2]))
    top.add({"a": np.array([[[5.0]], [[0.5]]])}, ids=np.array([4, 1]))
    ids, values, _ = top.result()
    assert ids.tolist() == [[2, 4, 9]] and values.tolist() == [[5.0, 5.0, 5.0]]


def test_streamed_sources_read_what_the_arrays_hold(idx_files, digits, tmp_path):
    for images, labels in (("images.idx", "labels.idx"), ("images.idx.gz", "labels.idx.gz")):
        source = IdxSource(idx_files / images, idx_files / labels)
        assert len(source) == 3000 and source.image_shape == (28, 28)
        got, y = source.read(1234, 1300)
        assert np.array_equal(got, digits.images[1234:1300]) and np.array_equal(y, digits.labels[1234:1300])
    np.save(tmp_path / "x.npy", digits.images[:50])
    np.save(tmp_path / "y.npy", digits.labels[:50])
    got, y = NpySource(tmp_path / "x.npy", tmp_path / "y.npy").read(10, 20)
    assert np.array_equal(got, digits.images[10:20]) and np.array_equal(y, digits.labels[10:20])


@pytest.mark.parametrize("name", ["images.idx", "images.idx.gz"])
def test_a_truncated_file_names_the_file_and_the_range(idx_files, tmp_path, weights, name):
    data = (idx_files / name).read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[:len(data) * 2 // 3])
    source = IdxSource(cut, idx_files / name.replace("images", "labels"))
    with pytest.raises(DataError, match=rf"{cut.name}: items \d+\.\.\d+: .*(truncated|corrupt)"):
        tally(weights, source, make_stats(), shard_size=1000)


def test_bad_input_before_any_work(weights, digits):
    source = ArraySource(digits.images[:20], digits.labels[:20])
    with pytest.raises(ValueError, match="unknown layer 'conv_9'"):
        tally(weights, source, [ClassMeans(["conv_9"], 10)])
    with pytest.raises(ValueError, match=r"arrays in memory: label 12 is out of range 0..9 \(20 such labels\)"):
        tally(weights, ArraySource(digits.images[:20], np.full(20, 12)), [ClassMeans(["fc_1"], 10)])
    big = ArraySource(np.zeros((4, 32, 32), np.uint8), np.zeros(4, np.int64), name="32x32 images")
    with pytest.raises(ValueError, match=r"32x32 images: its images, of shape \(32, 32\), do not fit lenet5"):
        tally(weights, big, [ClassMeans(["fc_1"], 10)])
    for text, fragment in (("local:0", "local:N needs N workers"), ("udp://x", "expected local:N")):
        with pytest.raises(ValueError, match=fragment):
            parse_scheduler(text)


def test_labels_out_of_range_in_a_streamed_source_name_the_shard(tmp_path, weights, digits):
    write_idx(tmp_path / "x.idx", digits.images[:30])
    write_idx(tmp_path / "y.idx", np.full(30, 11, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"x\.idx, images 0\.\.29: ClassMeans\.add: label 11 is out of range"):
        tally(weights, IdxSource(tmp_path / "x.idx", tmp_path / "y.idx"), [ClassMeans(["fc_1"], 10)])


def test_a_scheduler_that_does_not_answer_is_one_line():
    with pytest.raises(ValueError, match=r"--scheduler tcp://127.0.0.1:9: no Dask scheduler answered within 1 s"):
        with dask_client("tcp://127.0.0.1:9", timeout=1):
            pass


def test_saved_statistics_load_back(weights, digits, tmp_path):
    total = tally(weights, ArraySource(digits.images[:300], digits.labels[:300]), make_stats())
    path = save_stats(tmp_path / "stats.npz", total)
    assert_same(load_stats(path), total, rtol=0)


def _peak_bytes(weights, source, limit):
    tracemalloc.start()
    tally(weights, source, [ClassMeans(["relu_2"], 10), TopK("relu_2")], shard_size=2000, batch_size=100,
          limit=limit)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_memory_does_not_grow_with_the_data_set(tmp_path):
    """60,000 images streamed from an IDX file: the peak is that of one batch
    (a few MB at 100 images), not of the data set."""
    weights = tmp_path / "lenet5.npz"
    Model.from_spec("lenet5", seed=0).save(weights)     # float32: this test reads memory, not sums
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "x.idx", rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "y.idx", rng.integers(0, 10, 60000, dtype=np.uint8))
    source = IdxSource(tmp_path / "x.idx", tmp_path / "y.idx")
    small, large = _peak_bytes(weights, source, 10000), _peak_bytes(weights, source, 60000)
    assert large < 1.2 * small, (small, large)
    assert large < 60000 * 28 * 28 / 2          # the pixels alone, as uint8, would be 47 MB


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as c:
            yield c


def _numba_threads():
    import numba
    return numba.get_num_threads()


def test_a_shard_runs_numba_on_one_thread_on_a_worker(client):
    """A shard's task runs numba on one thread in its worker, as Dask counts
    a worker's threads: two workers with a numba thread per core would spin
    against each other (npcnn/ops/__init__.py); this process keeps its own."""
    threads = numba.get_num_threads()
    assert client.submit(on_one_numba_thread, _numba_threads, pure=False).result() == 1
    assert numba.get_num_threads() == threads


@pytest.mark.parametrize("shard_size", [350, 1000])
def test_two_workers_equal_one_process(client, weights, idx_files, shard_size):
    source = IdxSource(idx_files / "images.idx.gz", idx_files / "labels.idx.gz")
    serial = tally(weights, source, make_stats(), shard_size=3000)
    done = []
    spread = tally(weights, source, make_stats(), client=client, shard_size=shard_size,
                   progress=lambda d, n: done.append((d, n)))
    assert_same(spread, serial)
    assert done[-1] == (len(shards(3000, shard_size)),) * 2


def test_a_worker_killed_mid_run_changes_nothing(client, weights, idx_files):
    source = IdxSource(idx_files / "images.idx", idx_files / "labels.idx")
    serial = tally(weights, source, make_stats(), shard_size=3000)
    pids = list(client.run(os.getpid).values())
    started, result = threading.Event(), {}

    def run():
        result["stats"] = tally(weights, source, make_stats(), client=client, shard_size=100, batch_size=50,
                                progress=lambda d, n: started.set())
    worker = threading.Thread(target=run)
    worker.start()
    assert started.wait(60)
    os.kill(pids[0], signal.SIGKILL)
    worker.join(180)
    assert not worker.is_alive()
    assert_same(result["stats"], serial)
    deadline = time.time() + 60
    while len(client.scheduler_info()["workers"]) < 2 and time.time() < deadline:
        time.sleep(0.5)      # the nanny restarts the killed worker for the tests after this one


def test_a_truncated_shard_fails_the_distributed_run_naming_it(client, weights, idx_files, tmp_path):
    """A raw file cut after its first images: the check before the run reads
    image 0 fine, and the worker whose range is gone names the file and the range."""
    data = (idx_files / "images.idx").read_bytes()
    cut = tmp_path / "images.idx"
    cut.write_bytes(data[:len(data) // 2])
    source = IdxSource(cut, idx_files / "labels.idx")
    with pytest.raises(DataError, match=rf"{cut.name}: items \d+\.\.\d+: .*truncated"):
        tally(weights, source, make_stats(), client=client, shard_size=500)


def test_damaged_gzip_data_is_found_before_any_work(weights, idx_files, tmp_path):
    """Zeroed bytes in the middle of the deflate stream: they may decode to wrong
    pixels without an error, so the whole stream's CRC is checked once per process."""
    data = bytearray((idx_files / "images.idx.gz").read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = b"\0" * 64
    broken = tmp_path / "images.idx.gz"
    broken.write_bytes(bytes(data))
    source = IdxSource(broken, idx_files / "labels.idx.gz")
    with pytest.raises(DataError, match=rf"{broken.name}: items 0\.\.0: corrupt or unreadable"):
        tally(weights, source, make_stats(), shard_size=500)


def test_a_folder_of_images_is_a_source(tmp_path, weights, digits):
    from PIL import Image

    from bridge.folder_source import FolderSource
    for k in range(12):
        label = int(digits.labels[k])
        (tmp_path / f"class_{label}").mkdir(exist_ok=True)
        Image.fromarray(digits.images[k]).save(tmp_path / f"class_{label}" / f"{k:03d}.png")
    source = FolderSource(tmp_path)
    names = sorted({f"class_{int(d)}" for d in digits.labels[:12]})
    assert source.classes == names and len(source) == 12
    images, labels = source.read(0, 12)
    order = sorted(range(12), key=lambda k: (names.index(f"class_{int(digits.labels[k])}"), k))
    assert np.array_equal(images, digits.images[order])
    assert [names[c] for c in labels] == [f"class_{int(digits.labels[k])}" for k in order]
    total = tally(weights, source, [TopK("relu_2", 3)], shard_size=5)
    assert total[0].result()[0].shape == (16, 3)


def test_channel_means_keep_one_value_per_channel(weights, digits):
    source = ArraySource(digits.images[:300], digits.labels[:300])
    full, = tally(weights, source, [ClassMeans(["relu_2", "fc_1"], 10)])
    pooled, = tally(weights, source, [ClassMeans(["relu_2", "fc_1"], 10, spatial="mean")])
    a, b = full.result(), pooled.result()
    assert b.means["relu_2"].shape == (10, 16) and pooled.sums["relu_2"].shape == (10, 16)
    np.testing.assert_allclose(b.means["relu_2"], a.means["relu_2"].mean(axis=(2, 3)), rtol=1e-10)
    np.testing.assert_array_equal(b.zero_fraction["relu_2"], a.zero_fraction["relu_2"])
    np.testing.assert_array_equal(b.means["fc_1"], a.means["fc_1"])
    with pytest.raises(ValueError, match="spatial 'mean' against"):
        full.merge(pooled)
    loaded, = load_stats(save_stats(weights.parent / "pooled.npz", [pooled]))
    assert loaded.spatial == "mean" and loaded.units == pooled.units
    np.testing.assert_array_equal(loaded.result().zero_fraction["relu_2"], b.zero_fraction["relu_2"])


def test_what_would_count_wrong_is_refused_by_name(weights, digits, tmp_path, monkeypatch):
    """Found by a hunt through the statistics' API: a layer named twice (a
    name and its alias too) was summed twice, float labels were floored to
    a class, a refused batch had already counted its labels, ``limit=0``
    returned None, and statistics holding data were dropped for empty
    copies. Each is now a ValueError naming the argument, and a refused
    batch or merge changes nothing."""
    with pytest.raises(ValueError, match=r"^ClassMeans: layers name relu_1 more than once"):
        ClassMeans(["relu_1", "relu_1"], 10)
    source = ArraySource(digits.images[:20], digits.labels[:20])
    from npcnn.stats.tally import load_weights
    monkeypatch.setitem(load_weights(weights).aliases, "c1", "conv_1")   # as VGG16's conv5_3
    with pytest.raises(ValueError, match=r"^tally: class_means names one layer more than once"):
        tally(weights, source, [ClassMeans(["conv_1", "c1"], 10)])
    with pytest.raises(ValueError, match=r"^arrays in memory: labels must be integers, got float64"):
        ArraySource(digits.images[:3], np.array([0.7, 1.0, 2.0]))
    labels = tmp_path / "labels.npy"
    np.save(tmp_path / "images.npy", digits.images[:3])
    np.save(labels, np.array([0.9, 1.5, 2.0]))
    with pytest.raises(DataError, match=r"labels must be integers, got float64"):
        NpySource(tmp_path / "images.npy", labels)
    for argument, value in (("limit", 0), ("limit", -3), ("batch_size", 0), ("batch_size", True)):
        with pytest.raises(ValueError, match=rf"^tally: {argument} must be an integer >= 1, got {value!r}$"):
            tally(weights, source, [TopK("relu_2")], **{argument: value})
    with pytest.raises(ValueError, match=r"^tally: stats is empty"):
        tally(weights, source, [])
    held = TopK("relu_2").add({"relu_2": np.ones((2, 16, 3, 3))})
    with pytest.raises(ValueError, match=r"^tally: stats\[1\] \(top_k\) already holds data"):
        tally(weights, source, [TopK("relu_2"), held])
    means = ClassMeans(["a"], 3).add({"a": np.ones((2, 4))}, np.array([0, 1]))
    for bad in (lambda: means.add({"a": np.ones((3, 4))}, np.array([0, 1, 2, 2])[:2]),
                lambda: means.add({"a": np.ones((2, 5))}, np.array([0, 1])),
                lambda: means.merge(ClassMeans(["a"], 3).add({"a": np.ones((1, 5))}, np.array([2])))):
        with pytest.raises(ValueError):
            bad()
        assert means.counts.tolist() == [1, 1, 0] and means.sums["a"].sum() == 8
    assert TopK("relu_2").add({"relu_2": np.ones((0, 16, 3, 3))}).values.shape == (16, 9)
    with pytest.raises(ValueError, match=r"^ClassMeans.add: a holds NaN or infinite values"):
        means.add({"a": np.array([[np.nan, 0, 0, 0]])}, np.array([2]))
    assert means.counts.tolist() == [1, 1, 0]


def test_a_file_that_is_not_saved_statistics_is_one_error_naming_it(tmp_path):
    """load_stats has Model.load's checks: a folder, an .npy, another .npz,
    a missing array and arrays whose shapes disagree are each a ValueError
    (DataError) starting with the path, where they were numpy's or Python's
    own errors, or (mismatched top-k arrays) loaded as they were."""
    saved = save_stats(tmp_path / "s.npz", [ClassMeans(["a"], 3).add({"a": np.ones((2, 4))}, np.array([0, 1])),
                                            TopK("b", 2).add({"b": np.ones((3, 4, 2, 2))})])
    state = dict(np.load(saved))
    np.save(tmp_path / "a.npy", np.ones(3))
    np.savez(tmp_path / "other.npz", w=np.ones(3))
    broken = {"missing.npz": {k: v for k, v in state.items() if k != "0:counts"},
              "ids.npz": {**state, "1:ids": np.ones((4, 3), np.int64)},
              "counts.npz": {**state, "0:counts": np.array([1.5, 2.0, 0.0])},
              "sums.npz": {**state, "0:a/sum": np.ones((3, 5))}}
    for name, arrays in broken.items():
        np.savez(tmp_path / name, **arrays)
    for name, why in (("a.npy", "not an .npz file"), ("other.npz", "'w' is not a statistic's array"),
                      ("missing.npz", "statistic 0 (class_means) does not load: missing 'counts'"),
                      ("ids.npz", "statistic 1 (top_k) does not load: TopK.load_state_dict: values (4, 2), "
                                  "ids (4, 3)"),
                      ("counts.npz", "counts must be 3 counts >= 0, got float64"),
                      ("sums.npz", "a's sums, squares and zeros do not match its shape (4,)")):
        with pytest.raises(ValueError, match=rf"^{re.escape(str(tmp_path / name))}: .*{re.escape(why)}"):
            load_stats(tmp_path / name)
    with pytest.raises(DataError, match="is a folder"):
        load_stats(tmp_path)
    means, top = load_stats(saved)
    assert means.counts.tolist() == [1, 1, 0] and top.result()[0].shape == (4, 2)
