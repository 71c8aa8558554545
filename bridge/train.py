"""Training the MNIST networks in torch (CUDA when present, CPU otherwise).

Deterministic under a seed: the initial weights, the shuffling and the
kernels (``torch.use_deterministic_algorithms``) all follow it, so two runs
on one machine give the same weights bit for bit.

The recipe: Adam, learning rate 2e-3 decayed by cosine annealing to zero
over the run, batch 128, no augmentation. On full MNIST that takes LeNet-5
and SimpleCNN to about 99 % test accuracy in a few epochs on two CPU cores.
Every MNIST-shaped network of the specs trains (``TRAINABLE``).
"""
import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as TF

from npcnn.architectures import SPECS
from npcnn.data import MNIST_MEAN, MNIST_STD, to_tensor

from .checkpoint import save_checkpoint
from .networks import torch_model

# every network of the specs that takes one MNIST digit
TRAINABLE = tuple(name for name, spec in SPECS.items() if spec.input_shape == (1, 28, 28))


@dataclass
class TrainResult:
    module: torch.nn.Module
    test_accuracy: float
    history: list = field(default_factory=list)  # one dict per epoch
    checkpoints: list = field(default_factory=list)
    seconds: float = 0.0


def pick_device(device=None):
    """``device`` if given ("cpu", "cuda", "cuda:N"), else CUDA when
    present, else the CPU. A device that is not there is refused now, not
    at the first batch."""
    if not device:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"--device {device!r}: not a device; use cpu, cuda or cuda:N") from None
    if chosen.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {device}: training runs on cpu or cuda, not {chosen.type}")
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: CUDA is not available on this machine")
        if chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} "
                             f"CUDA device(s), numbered from 0")
    return chosen


def saved_epochs(epochs, save_every):
    """The epochs after which ``train(..., save_every=k)`` writes an
    ``epoch_path`` checkpoint: every k-th, and the last (none for k = 0)."""
    if not save_every:
        return []
    return sorted({*range(save_every, epochs + 1, save_every), epochs})


@contextlib.contextmanager
def _deterministic(seed, device):
    """Seed torch and make its kernels deterministic for the block, then put
    the process-wide switches back as they were (they would otherwise leak
    into whatever runs next, e.g. ops that have no deterministic kernel)."""
    torch.manual_seed(seed)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    if device.type == "cuda":
        # cuBLAS needs this to be deterministic; set before its first use
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]


def classification_loss(module, logits_or_logp, target):
    """The training loss of ``module``'s output: NLL where the network ends
    in log_softmax (LeNet-5), cross-entropy on the logits otherwise."""
    if isinstance(module[-1], torch.nn.LogSoftmax):
        return TF.nll_loss(logits_or_logp, target)
    return TF.cross_entropy(logits_or_logp, target)


@torch.no_grad()
def evaluate(module, x, y, batch_size=1000):
    """Accuracy of ``module`` on tensors x (N, 1, 28, 28), y (N,)."""
    module.eval()
    device = next(module.parameters()).device
    correct = 0
    for i in range(0, len(x), batch_size):
        out = module(x[i:i + batch_size].to(device))
        correct += (out.argmax(1).cpu() == y[i:i + batch_size]).sum().item()
    return correct / max(1, len(x))


def _progress(epoch, epochs, done, total, loss, acc, start, stream):
    width = 24
    filled = int(width * done / total)
    rate = done / max(time.perf_counter() - start, 1e-9)
    eta = (total - done) / max(rate, 1e-9)
    stream.write(f"\repoch {epoch}/{epochs} [{'#' * filled}{'.' * (width - filled)}] "
                 f"{done}/{total} loss {loss:.4f} acc {acc:.4f} {rate:.0f} img/s eta {eta:.0f}s ")
    stream.flush()


def epoch_path(out, epoch):
    """Where the checkpoint after ``epoch`` goes: lenet5.pt -> lenet5.epoch03.pt."""
    out = Path(out)
    return out.with_name(f"{out.stem}.epoch{epoch:02d}{out.suffix or '.pt'}")


def train(arch, train_set, test_set, *, epochs=8, seed=0, device=None, batch_size=128, lr=2e-3,
          out=None, save_every=0, progress=True, stream=None):
    """Train ``arch`` on a ``npcnn.data.Dataset`` and test it on another.

    Writes the final checkpoint to ``out`` (if given) and, with
    ``save_every=k``, one after every k-th epoch (``epoch_path``), each
    atomically. Progress goes to ``stream`` (default: ``sys.stderr`` as it
    is at the call, not at import). Returns a ``TrainResult``.
    """
    if arch not in TRAINABLE:
        raise ValueError(f"train: --model must be one of {', '.join(TRAINABLE)}, got {arch!r}")
    _check_count("epochs", epochs, 1)
    _check_count("batch_size", batch_size, 1)
    _check_count("save_every", save_every, 0)
    _check_count("seed", seed, 0)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr <= 1:
        raise ValueError(f"train: lr must be a number in (0, 1], got {lr!r}")
    device = pick_device(device)
    stream = stream or sys.stderr
    with _deterministic(seed, device):
        return _train(arch, train_set, test_set, epochs, seed, device, batch_size, lr, out,
                      save_every, progress, stream)


def _check_count(name, value, low):
    # bool is an int to Python; True epochs is a mistake, not 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"train: {name} must be an integer >= {low}, got {value!r}")


def _train(arch, train_set, test_set, epochs, seed, device, batch_size, lr, out, save_every,
           progress, stream):
    module = torch_model(arch).to(device)
    x = torch.from_numpy(to_tensor(train_set.images))
    y = torch.from_numpy(train_set.labels)
    x_test = torch.from_numpy(to_tensor(test_set.images))
    y_test = torch.from_numpy(test_set.labels)
    steps_per_epoch = math.ceil(len(x) / batch_size)
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    shuffle = torch.Generator().manual_seed(seed)
    meta = dict(dataset=train_set.name, normalization={"mean": MNIST_MEAN, "std": MNIST_STD},
                seed=seed, batch_size=batch_size, lr=lr)
    result = TrainResult(module, 0.0)
    to_save = saved_epochs(epochs, save_every)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        module.train()
        order = torch.randperm(len(x), generator=shuffle)
        seen = correct = 0
        loss_sum = 0.0
        epoch_start = time.perf_counter()
        for step in range(steps_per_epoch):
            idx = order[step * batch_size:(step + 1) * batch_size]
            xb, yb = x[idx].to(device), y[idx].to(device)
            out_b = module(xb)
            loss = classification_loss(module, out_b, yb)
            if not torch.isfinite(loss):
                # the weights are NaN from here on: stop before any checkpoint holds them
                raise ValueError(f"train: the loss became {loss.item()} at epoch {epoch}, step "
                                 f"{step + 1}: training diverged; try a smaller --lr (now {lr})")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            seen += len(idx)
            loss_sum += loss.item() * len(idx)
            correct += (out_b.argmax(1) == yb).sum().item()
            if progress and (step % 20 == 0 or step == steps_per_epoch - 1):
                _progress(epoch, epochs, seen, len(x), loss_sum / seen, correct / seen, epoch_start, stream)
        test_acc = evaluate(module, x_test, y_test)
        record = dict(epoch=epoch, loss=loss_sum / seen, train_accuracy=correct / seen,
                      test_accuracy=test_acc, seconds=time.perf_counter() - epoch_start)
        result.history.append(record)
        if progress:
            stream.write(f"- test acc {test_acc:.4f}\n")
        if out and epoch in to_save and epoch < epochs:
            result.checkpoints.append(save_checkpoint(
                epoch_path(out, epoch), module, epochs=epoch, test_accuracy=test_acc, **meta))
    result.test_accuracy = result.history[-1]["test_accuracy"]
    result.seconds = time.perf_counter() - start
    module.eval()
    if out:
        if save_every:
            # the last epoch's checkpoint too, so the series is complete
            result.checkpoints.append(save_checkpoint(
                epoch_path(out, epochs), module, epochs=epochs,
                test_accuracy=result.test_accuracy, **meta))
        result.checkpoints.append(save_checkpoint(
            out, module, epochs=epochs, test_accuracy=result.test_accuracy,
            train_seconds=round(result.seconds, 1), device=str(device), **meta))
    return result
