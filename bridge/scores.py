"""What every attribution method shares: the targets (one class for every
image, or one per image), the class score, the gradient of the score for
one batch, and the split of the work into batches of bounded size."""
from numbers import Integral

import torch


def as_targets(target, n, device):
    """``target`` as a (n,) int64 tensor on ``device``: one int means that
    class for every image (as Captum reads it); a sequence or tensor must
    hold one class per image."""
    if isinstance(target, Integral) or (torch.is_tensor(target) and target.dim() == 0):
        return torch.full((n,), int(target), dtype=torch.int64, device=device)
    try:
        t = torch.as_tensor(target)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"target must be one class index or one per image ({n},), got {target!r}") from None
    if t.dim() != 1 or len(t) != n or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"target must be one class index or one per image, shape ({n},) integers; "
                         f"got {t.dtype} of shape {tuple(t.shape)}")
    return t.to(device=device, dtype=torch.int64)


def check_classes(target, classes):
    """A target out of range named as such (on a GPU, gather would fail with a
    device-side assert that ends the process's CUDA context)."""
    if len(target):
        low, high = int(target.min()), int(target.max())
        if low < 0 or high >= classes:
            bad = high if high >= classes else low
            raise ValueError(f"target: class {bad} is out of range for a network with {classes} outputs")


def class_scores(out, target):
    """out[n, target[n]] for each n, (N,)."""
    check_classes(target, out.shape[1])
    return out.gather(1, target.view(-1, 1)).squeeze(1)


def chunks(n, size):
    """Slices of range(n), ``size`` at a time (all at once when size is None)."""
    if size is not None and not (isinstance(size, Integral) and size >= 1):
        raise ValueError(f"batch sizes must be integers >= 1, got {size!r}")
    size = n if size is None else size
    return [slice(i, min(i + size, n)) for i in range(0, n, max(size, 1))]


def check_input(x, method):
    if not (torch.is_tensor(x) and x.dim() == 4 and x.is_floating_point()):
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f"{method}: x must be a float tensor (N, C, H, W), got {shape}")


def score_gradient(module, x, target):
    """dS/dx for one batch, S = sum_n out[n, target[n]]: the images do not
    interact, so row n is image n's own gradient. autograd.grad, not
    backward: the module's parameters collect no .grad."""
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(class_scores(module(x), target).sum(), x)
    return grad
