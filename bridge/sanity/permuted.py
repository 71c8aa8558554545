"""Data randomisation (Adebayo et al. 2018): the same architecture trained
on the training images with their labels randomly permuted, so nothing but
memorisation can fit them. A method whose maps of this network look like
those of the network trained on the true labels does not show what the
network learned from the labels.

Training: Adam at a constant learning rate (memorising needs many epochs,
and a cosine schedule would need their number in advance), batch 128,
until the training accuracy plateaus, i.e. gains less than ``min_gain`` over
the last ``patience`` epochs, or ``max_epochs`` or ``seconds`` run out,
whichever comes first (the time is tested before each batch: the last
epoch may end early). The accuracy is measured on the whole (permuted)
training set in eval mode after each epoch. Deterministic under ``seed``
for a given number of epochs; the time limit makes the number of epochs
depend on the machine, so the result says which limit stopped it.
"""
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from npcnn.data import to_tensor

from ..networks import torch_model
from ..train import classification_loss, evaluate


@dataclass
class PermutedResult:
    module: torch.nn.Module
    labels: np.ndarray            # the permuted training labels
    history: list = field(default_factory=list)   # per epoch: images trained on, loss, train accuracy, seconds
    stopped: str = ""             # "plateau", "max_epochs" or "seconds"
    seconds: float = 0.0

    @property
    def train_accuracy(self):
        return self.history[-1]["train_accuracy"] if self.history else 0.0


def train_permuted(arch, train_set, mean, std, seed=0, seconds=60.0, max_epochs=200, patience=3,
                   min_gain=0.005, lr=1e-3, batch_size=128, progress=None):
    """Train ``arch`` on ``train_set`` (an npcnn Dataset) with permuted labels;
    ``progress(record)`` after each epoch. Returns a ``PermutedResult``."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(train_set.labels)
    x = torch.from_numpy(to_tensor(train_set.images, mean, std))
    y = torch.from_numpy(labels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = torch_model(arch)
    shuffle = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)
    result = PermutedResult(module, labels)
    start = time.perf_counter()
    for epoch in range(1, max_epochs + 1):
        module.train()
        order = torch.randperm(len(x), generator=shuffle)
        loss_sum, seen = 0.0, 0
        for i in range(0, len(x), batch_size):
            # the limit is tested batch by batch: an epoch of the full set takes minutes on a CPU
            if seen and time.perf_counter() - start >= seconds:
                break
            idx = order[i:i + batch_size]
            loss = classification_loss(module, module(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(idx)
            seen += len(idx)
        record = dict(epoch=epoch, images=seen, loss=loss_sum / seen, train_accuracy=evaluate(module, x, y),
                      seconds=time.perf_counter() - start)
        result.history.append(record)
        if progress:
            progress(record)
        if seen < len(x) or record["seconds"] >= seconds:   # an epoch cut short: time stopped it
            result.stopped = "seconds"
            break
        accuracies = [r["train_accuracy"] for r in result.history]
        if len(accuracies) > patience and accuracies[-1] - accuracies[-1 - patience] < min_gain:
            result.stopped = "plateau"
            break
    else:
        result.stopped = "max_epochs"
    result.seconds = time.perf_counter() - start
    module.eval()
    return result
