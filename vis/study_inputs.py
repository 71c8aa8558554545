"""What every study of a trained MNIST network starts from: its weights in
npcnn, the test set it was trained for, normalised as it was trained."""
from dataclasses import dataclass

import numpy as np

import bridge
from npcnn.data import MNIST_MEAN, MNIST_STD, load_mnist, to_tensor


@dataclass
class Study:
    model: object        # npcnn.Model
    test: object         # npcnn.data.Dataset
    x: np.ndarray        # (N, 1, 28, 28) in the model's dtype, normalised
    normalization: dict  # {"mean", "std"}


def load_study(checkpoint, dataset=None, data_dir=None):
    """The model of ``checkpoint`` and the test split of its dataset (or ``dataset``)."""
    model = bridge.load(checkpoint)
    test = load_mnist(dataset or model.meta.get("dataset", "mnist"), "test", data_dir=data_dir)
    norm = model.meta.get("normalization", {"mean": MNIST_MEAN, "std": MNIST_STD})
    return Study(model, test, to_tensor(test.images, norm["mean"], norm["std"], dtype=model.dtype), norm)
