"""What every study of a trained MNIST network starts from: its weights in
npcnn, the test set it was trained for, normalised as it was trained."""
import math
from dataclasses import dataclass

import numpy as np

import bridge
from bridge.train import TRAINABLE
from npcnn.data import DATASET_NAMES, MNIST_MEAN, MNIST_STD, load_mnist, to_tensor

# The networks these studies draw: every spec that takes one 28x28 grey image.
MNIST_ARCHS = TRAINABLE


@dataclass
class Study:
    model: object        # npcnn.Model
    test: object         # npcnn.data.Dataset
    x: np.ndarray        # (N, 1, 28, 28) in the model's dtype, normalised
    normalization: dict  # {"mean", "std"}


def first_example(predicted, labels, label):
    """``(index, right)``: the first test image of class ``label`` that the
    network classifies right, or the first of the class where it classifies
    none right (an untrained network), and whether it is right; ``(None,
    False)`` where the test set has no image of the class."""
    of_class = np.flatnonzero(labels == label)
    if of_class.size == 0:
        return None, False
    right = of_class[predicted[of_class] == label]
    return int(right[0] if right.size else of_class[0]), bool(right.size)


def load_study(checkpoint, dataset=None, data_dir=None):
    """The model of ``checkpoint`` and the test split of its dataset (or ``dataset``)."""
    model = bridge.load(checkpoint)
    if model.arch not in MNIST_ARCHS:
        raise ValueError(f"{checkpoint}: holds {model.arch}, and these studies are of the MNIST "
                         f"networks ({', '.join(MNIST_ARCHS)})")
    dataset = dataset or recorded_dataset(checkpoint, model.meta)
    norm = recorded_normalization(checkpoint, model.meta)
    test = load_mnist(dataset, "test", data_dir=data_dir)
    return Study(model, test, to_tensor(test.images, norm["mean"], norm["std"], dtype=model.dtype), norm)


def recorded_dataset(checkpoint, meta):
    """The dataset named in the checkpoint's metadata (MNIST when none is)."""
    name = meta.get("dataset", "mnist")
    if name not in DATASET_NAMES:
        raise ValueError(f"{checkpoint}: its metadata names the dataset {name!r}, not one of "
                         f"{', '.join(DATASET_NAMES)}; pass --dataset")
    return name


def recorded_normalization(checkpoint, meta):
    """``{"mean", "std"}`` from the metadata (MNIST's when absent): finite
    numbers and std > 0, or the whole test set would be NaN."""
    norm = meta.get("normalization", {"mean": MNIST_MEAN, "std": MNIST_STD})
    numbers = isinstance(norm, dict) and all(
        isinstance(norm.get(k), (int, float)) and not isinstance(norm.get(k), bool) for k in ("mean", "std"))
    if not numbers or not (math.isfinite(norm["mean"]) and math.isfinite(norm["std"]) and norm["std"] > 0):
        raise ValueError(f"{checkpoint}: its metadata's normalization {repr(norm):.60} is not "
                         f"{{'mean': a finite number, 'std': a number > 0}}")
    return {"mean": float(norm["mean"]), "std": float(norm["std"])}
