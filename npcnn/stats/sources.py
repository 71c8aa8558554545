"""Data sets read in shards, never whole: a source says how many images it
holds and reads any index range [start, stop) on its own, so that a worker
given (source, start, stop) opens the files itself.

Every source has ``name`` (for errors), ``len(source)``, ``image_shape``
and ``read(start, stop) -> (images, labels)``: images uint8 (n, H, W) grey
or (n, H, W, 3) colour, pixels 0..255, or float (n, C, H, W) already in
the network's units; labels int64 (n,), -1 where a source has none. The
image ids are the indices start..stop-1.

- ``ArraySource``: arrays in memory (``npcnn.data.load_mnist``'s Dataset).
- ``IdxSource``: an IDX image file and its label file (raw: memory-mapped;
  ``.gz``: decompressed up to the range, by chunk).
- ``NpySource``: an ``.npy`` image array (memory-mapped) and optional labels.
(A folder of image files: ``bridge.folder_source.FolderSource``, which needs
Pillow, outside the engine.)

A read that finds a file shorter than its header says, or a broken gzip
stream, raises ``DataError`` naming the file and the range.
"""
import gzip
import zlib
from pathlib import Path

import numpy as np

from ..data.errors import DataError
from ..data.idx import parse_header


class ArraySource:
    def __init__(self, images, labels=None, name="arrays in memory"):
        self.images = images
        if labels is not None and not np.issubdtype(np.asarray(labels).dtype, np.integer):
            # a cast would floor 0.7 to class 0
            raise ValueError(f"{name}: labels must be integers, got {np.asarray(labels).dtype}")
        self.labels = (np.full(len(images), -1, dtype=np.int64) if labels is None
                       else np.asarray(labels, dtype=np.int64))
        if len(self.labels) != len(images):
            raise ValueError(f"{name}: {len(images)} images and {len(self.labels)} labels")
        self.name = name

    @classmethod
    def from_dataset(cls, dataset):
        return cls(dataset.images, dataset.labels, f"{dataset.name} {dataset.split} ({dataset.source})")

    def __len__(self):
        return len(self.images)

    @property
    def image_shape(self):
        return tuple(self.images.shape[1:])

    def read(self, start, stop):
        return np.asarray(self.images[start:stop]), self.labels[start:stop]


_VERIFIED = set()   # (path, size, mtime) of .gz files whose whole stream this process has checked


class _IdxFile:
    """One IDX file of unsigned bytes, read by index range."""

    def __init__(self, path):
        self.path = Path(path)
        self.gz = self.path.name.endswith(".gz")
        with self._open() as f:
            head = self._guarded(lambda: f.read(4 + 4 * 255), "its header")   # the longest header IDX allows
        self.dims, self.offset = parse_header(self.path, head)   # the checks read_idx makes
        self.item = int(np.prod(self.dims[1:], dtype=np.int64))

    def _open(self):
        return gzip.open(self.path, "rb") if self.gz else open(self.path, "rb")

    def _guarded(self, read, what):
        try:
            return read()
        except (gzip.BadGzipFile, EOFError, zlib.error, OSError) as err:
            raise DataError(f"{self.path}: {what}: corrupt or unreadable ({err})") from None

    def _verify(self, what):
        """Decompress the whole stream once per process, so that gzip checks
        its CRC and length: a range read stops short of the end, where the
        check is, and damaged deflate data can decode to wrong bytes without
        an error. Bounded by the size the header announces."""
        stat = self.path.stat()
        key = (str(self.path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key in _VERIFIED:
            return
        expected = self.offset + self.dims[0] * self.item

        def read_all():
            total = 0
            with self._open() as f:
                while chunk := f.read(1 << 20):
                    total += len(chunk)
                    if total > expected:
                        raise DataError(f"{self.path}: {what}: decompresses to more than the {expected} "
                                        f"bytes its header announces")
            return total
        total = self._guarded(read_all, what)
        if total != expected:
            raise DataError(f"{self.path}: {what}: decompresses to {total} bytes, its header announces "
                            f"{expected} (truncated)")
        _VERIFIED.add(key)

    def read(self, start, stop):
        n = stop - start
        want = n * self.item
        what = f"items {start}..{stop - 1}"
        if self.gz:
            self._verify(what)

            def read():
                with self._open() as f:
                    f.seek(self.offset + start * self.item)     # decompresses up to the range, not further
                    return f.read(want)
            data = self._guarded(read, what)
            if len(data) != want:
                raise DataError(f"{self.path}: {what}: the file ends {want - len(data)} bytes early "
                                f"(truncated)")
            array = np.frombuffer(data, dtype=np.uint8)
        else:
            size = self.path.stat().st_size
            if size < self.offset + stop * self.item:
                raise DataError(f"{self.path}: {what}: the file holds {size} bytes, the range needs "
                                f"{self.offset + stop * self.item} (truncated)")
            mapped = np.memmap(self.path, dtype=np.uint8, mode="r", offset=self.offset + start * self.item,
                               shape=(want,))
            array = np.array(mapped)
        return array.reshape((n,) + tuple(self.dims[1:]))


class _FileSource:
    """What the file sources share: a length and an image shape read from
    the files' headers when opened, and labels -1 where no label file is given."""

    def __len__(self):
        return self._length

    @property
    def image_shape(self):
        return self._shape

    def _no_labels(self, start, stop):
        return np.full(stop - start, -1, dtype=np.int64)


class IdxSource(_FileSource):
    def __init__(self, images_path, labels_path=None):
        self.images_path, self.labels_path = Path(images_path), labels_path and Path(labels_path)
        self.name = str(self.images_path)
        # the headers, read once here; each worker's copy opens the files itself to read
        self._images = _IdxFile(self.images_path)
        if len(self._images.dims) != 3:
            raise DataError(f"{images_path}: {len(self._images.dims)} dimensions, expected 3 (N, H, W)")
        self._length, self._shape = self._images.dims[0], tuple(self._images.dims[1:])
        self._labels = None if self.labels_path is None else _IdxFile(self.labels_path)
        if self._labels is not None and self._labels.dims != (self._length,):
            raise DataError(f"{labels_path}: labels {self._labels.dims}, expected ({self._length},) for "
                            f"{images_path}")

    def read(self, start, stop):
        labels = (self._no_labels(start, stop) if self._labels is None
                  else self._labels.read(start, stop).astype(np.int64))
        return self._images.read(start, stop), labels


class NpySource(_FileSource):
    def __init__(self, images_path, labels_path=None):
        self.images_path, self.labels_path = Path(images_path), labels_path and Path(labels_path)
        self.name = str(self.images_path)
        images = self._map(self.images_path)
        if not (images.ndim in (3, 4) and (images.dtype == np.uint8 or images.dtype.kind == "f")):
            raise DataError(f"{images_path}: {images.dtype} {images.shape}; expected uint8 (N, H, W[, 3]) "
                            f"or float (N, C, H, W)")
        self._length, self._shape = len(images), tuple(images.shape[1:])
        if self.labels_path is not None and self._map(self.labels_path).shape != (self._length,):
            raise DataError(f"{labels_path}: labels of shape {self._map(self.labels_path).shape}, expected "
                            f"({self._length},)")
        if self.labels_path is not None and self._map(self.labels_path).dtype.kind not in "iu":
            raise DataError(f"{labels_path}: labels must be integers, got {self._map(self.labels_path).dtype} "
                            f"(a cast would floor 0.7 to class 0)")

    @staticmethod
    def _map(path):
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise DataError(f"{path}: not a readable .npy array ({str(err).splitlines()[0]})") from None

    def read(self, start, stop):
        images = np.array(self._map(self.images_path)[start:stop])
        labels = (self._no_labels(start, stop) if self.labels_path is None
                  else np.array(self._map(self.labels_path)[start:stop], dtype=np.int64))
        return images, labels


def as_inputs(images, mean, std, dtype):
    """Images as a source reads them -> the network's input (n, C, H, W):
    uint8 pixels scaled to [0, 1] and normalised, (x - mean) / std, with
    one mean and std or one per channel; float images are taken as inputs."""
    if images.dtype != np.uint8:
        return np.ascontiguousarray(images, dtype=dtype)
    x = images.astype(dtype) / 255
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)              # (n, C, H, W)
    mean = np.asarray(mean, dtype=dtype).reshape(-1, 1, 1)
    std = np.asarray(std, dtype=dtype).reshape(-1, 1, 1)
    return np.ascontiguousarray((x - mean) / std)
