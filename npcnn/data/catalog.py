"""What each dataset is: its files, their checksums, sizes and counts, where
to download them, and which directories may already hold them.

Checksums are SHA-256 of the *decompressed* IDX payload: a mirror may
re-gzip a file (different .gz bytes, same pixels), and the decompressed hash
holds for every such copy. MNIST's are from /work/shared/data/mnist/README.md
(they match LeCun's originals); Fashion-MNIST's from Debian's
``dataset-fashion-mnist`` package (identical to Zalando's release).

``load_mnist`` reads ``DATASETS`` at call time, so a test may swap an entry
(e.g. tiny fake files with their own checksums) with ``monkeypatch.setitem``.
"""
from dataclasses import dataclass

# The four standard file names, without ".gz"; the same for both datasets.
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLITS = tuple(FILES)

# Every name load_mnist accepts; "mnist5k" has no files here (see subset.py).
DATASET_NAMES = ("mnist", "mnist5k", "fashion-mnist")


@dataclass(frozen=True)
class DatasetSpec:
    """Everything needed to find, download and check one IDX dataset.

    - files: split -> (images file, labels file), names without ".gz".
    - sha256, sizes: file name -> SHA-256 hex / byte count of the
      decompressed file.
    - counts: split -> number of samples.
    - image_shape: (H, W) of one image.
    - mirrors: base URLs; a file is fetched from ``mirror + name + ".gz"``.
    - system_dirs: directories a system package installs the files into.
    - env_dir: the environment variable naming an explicit data directory
      for this dataset, or None.
    """
    name: str
    files: dict
    sha256: dict
    sizes: dict
    counts: dict
    image_shape: tuple
    mirrors: tuple
    system_dirs: tuple = ()
    env_dir: str | None = None


# Both datasets: 60,000 + 10,000 images of 28x28 and their labels, so the
# decompressed files have the same sizes.
SIZES = {
    "train-images-idx3-ubyte": 47040016,
    "train-labels-idx1-ubyte": 60008,
    "t10k-images-idx3-ubyte": 7840016,
    "t10k-labels-idx1-ubyte": 10008,
}

DATASETS = {
    "mnist": DatasetSpec(
        name="mnist",
        files=FILES,
        sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        sizes=SIZES,
        counts={"train": 60000, "test": 10000},
        image_shape=(28, 28),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        # NPCNN_DATA_DIR names a directory of *MNIST* files; it does not
        # apply to Fashion-MNIST, whose files have the very same names and
        # would otherwise be silently confused with the digits.
        env_dir="NPCNN_DATA_DIR",
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        files=FILES,
        sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        sizes=SIZES,
        counts={"train": 60000, "test": 10000},
        image_shape=(28, 28),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        # Debian's dataset-fashion-mnist package installs the four .gz here.
        system_dirs=("/usr/share/datasets/fashion-mnist",),
    ),
}
