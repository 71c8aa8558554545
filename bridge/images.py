"""Images in and out of the networks: read as the 8-bit picture a person
sees (``image_read``: 16-bit, transparency, orientation, size bounds) and
normalised as the weights expect (torchvision's ImageNet statistics for
AlexNet and VGG16, the checkpoint's MNIST statistics for the MNIST
networks)."""
import numpy as np
import torch
from PIL import Image

from .image_read import MAX_PIXELS, read_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_imagenet_image(path, size=224):
    """(1, 3, size, size) float32: the shorter side resized to size*256/224,
    the centre cropped, scaled to [0, 1] and normalised per channel, as
    torchvision's weights were trained."""
    image = read_image(path).convert("RGB")
    short = round(size * 256 / 224)
    w, h = image.size
    scale = short / min(w, h)
    resized = (max(short, round(w * scale)), max(short, round(h * scale)))
    if resized[0] * resized[1] > MAX_PIXELS:      # checked before Pillow allocates it
        raise ValueError(f"{path}: {w}x{h} resized to {resized[0]}x{resized[1]} for the network "
                         f"would be over {MAX_PIXELS:,} pixels")
    image = image.resize(resized, Image.BILINEAR)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    a = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.float32) / 255  # (H, W, 3)
    a = (a - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


def load_digit_image(path, mean, std):
    """(1, 1, 28, 28) float32 for the MNIST networks: grey, 28x28, and
    inverted when the background is light (MNIST digits are white on black)."""
    if not (np.isfinite(mean) and np.isfinite(std) and std > 0):
        raise ValueError(f"load_digit_image: the normalization needs a finite mean and a std > 0, "
                         f"got mean {mean}, std {std}")
    a = np.asarray(read_image(path).convert("L").resize((28, 28), Image.BILINEAR), dtype=np.float32) / 255
    if np.median(a) > 0.5:
        a = 1 - a
    return torch.from_numpy(((a - mean) / std)[None, None].astype(np.float32))


def to_display(x, mean, std):
    """Undo the normalisation for display: (C, H, W) tensor -> (H, W[, 3]) in [0, 1]."""
    mean = np.asarray(mean, np.float32).reshape(-1, 1, 1)
    std = np.asarray(std, np.float32).reshape(-1, 1, 1)
    a = np.clip(x.detach().cpu().numpy() * std + mean, 0, 1)
    return a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
