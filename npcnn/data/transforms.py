"""Turn uint8 images into the float input of a network.

``to_tensor`` is torchvision's ``ToTensor()`` followed by
``Normalize((mean,), (std,))``::

    x[n, 0, i, j] = (images[n, i, j] / 255 - mean) / std

The defaults, 0.1307 and 0.3081, are the mean and standard deviation of the
pixels of MNIST's 60,000 training images (scaled to 0..1), the constants of
PyTorch's MNIST example. For other data pass its own statistics (for
Fashion-MNIST's training set they are about 0.2860 and 0.3530).
"""
import numpy as np

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


def to_tensor(images, mean=MNIST_MEAN, std=MNIST_STD, dtype=np.float32):
    """uint8 images (N, H, W) -> normalised floats (N, 1, H, W).

    Inputs:
    - images: uint8 array (N, H, W), values 0..255.
    - mean, std: the normalisation, in units of the 0..1 scale.
    - dtype: np.float32 (default) or np.float64.

    Returns a new array of ``dtype``, shape (N, 1, H, W). Float input is
    refused: it may already be scaled, and dividing by 255 twice would go
    unnoticed.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"to_tensor: images must be uint8 (0..255), got {images.dtype}")
    if images.ndim != 3:
        raise ValueError(f"to_tensor: images must be (N, H, W), got shape {images.shape}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"to_tensor: dtype must be float32 or float64, got {dtype}")
    if not std > 0:
        raise ValueError(f"to_tensor: std must be > 0, got {std}")
    x = images[:, None, :, :].astype(dtype)  # (N, 1, H, W), a copy
    x /= 255
    x -= dtype.type(mean)
    x /= dtype.type(std)
    return x
