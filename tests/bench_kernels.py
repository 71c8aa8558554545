"""Kernels as users write them, right and wrong, for tests/test_bench_kernel.py
(``npcnn bench --kernel bench_kernels:NAME``; tests/ is on the path)."""
import numpy as np
import torch
import torch.nn.functional as TF

from benchmarks.examples.naive_conv2d import conv2d


def conv2d_without_padding(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """The example kernel, which forgets the padding."""
    return conv2d(input, weight, bias, stride, 0, dilation, groups)


def _plain_max_pool2d(input, kernel_size, stride, last):
    """Max-pooling of square windows without padding, dilation or ceil_mode;
    a tie goes to the first maximum in row-major window order, or to the
    last with ``last``."""
    k, s = kernel_size, stride or kernel_size
    N, C, H, W = input.shape
    Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
    y, indices = np.empty((N, C, Ho, Wo), input.dtype), np.empty((N, C, Ho, Wo), np.int64)
    for i in range(Ho):
        for j in range(Wo):
            window = input[:, :, i * s:i * s + k, j * s:j * s + k].reshape(N, C, k * k)
            at = k * k - 1 - np.argmax(window[..., ::-1], axis=-1) if last else np.argmax(window, axis=-1)
            y[:, :, i, j] = np.take_along_axis(window, at[..., None], -1)[..., 0]
            indices[:, :, i, j] = (i * s + at // k) * W + j * s + at % k
    return y, indices


def max_pool2d_first_tie(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                         return_indices=False):
    return _plain_max_pool2d(input, kernel_size, stride, last=False)


def max_pool2d_last_tie(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                        return_indices=False):
    return _plain_max_pool2d(input, kernel_size, stride, last=True)


def max_unpool2d_overwriting(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """torch's own max_unpool2d: where indices repeat it keeps one value."""
    return TF.max_unpool2d(torch.from_numpy(input), torch.from_numpy(indices), kernel_size, stride, padding,
                           output_size).numpy()


def linear_writing_into_its_input(input, weight, bias=None):
    y = input @ weight.T + (0 if bias is None else bias)
    input[...] = 0  # a scratch buffer it should not have taken
    return y


NOT_A_FUNCTION = 3


def max_pool2d_without_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                               return_indices=False):
    """Ignores return_indices: the values alone."""
    return max_pool2d_first_tie(input, kernel_size, stride)[0]


def conv2d_raising(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    raise NotImplementedError("dilation\nnot yet")


def conv2d_wrong_at_width_13(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Right on the sweep (no input there is 13 wide), wrong on a bench row that is."""
    y = conv2d(input, weight, bias, stride, padding, dilation, groups)
    return y + 1 if input.shape[-1] == 13 else y
