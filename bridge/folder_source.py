"""A folder of image files as a data-set source for ``npcnn.stats.tally``
(the engine's sources read arrays and IDX files; decoding PNG and JPEG
needs Pillow, so this one lives on this side).

Layout, as torchvision's ImageFolder: one sub-folder per class, classes
numbered in sorted order of their names, images sorted by path within the
whole tree. A folder with no sub-folders is one unlabelled set (label -1).

Each image is read as a person sees it (``bridge.image_read``: 16-bit,
transparency, orientation, size bounds), then made the network's size:
grey ``size`` x ``size`` for the MNIST networks (inverted when the
background is light, as ``load_digit_image`` does), or colour, the shorter
side resized and the centre cropped, for AlexNet and VGG16. Images come out
uint8, as ``npcnn.stats.as_inputs`` expects.
"""
from pathlib import Path

import numpy as np
from PIL import Image

from .image_read import SUFFIXES, read_image


class FolderSource:
    def __init__(self, folder, size=28, colour=False):
        self.folder, self.size, self.colour = Path(folder), int(size), bool(colour)
        self.name = str(self.folder)
        if not self.folder.is_dir():
            raise ValueError(f"{folder}: not a folder")
        classes = sorted(p.name for p in self.folder.iterdir() if p.is_dir())
        self.classes = classes
        if classes:
            found = [(p, k) for k, c in enumerate(classes) for p in sorted((self.folder / c).rglob("*"))
                     if p.suffix.lower() in SUFFIXES and p.is_file()]
        else:
            found = [(p, -1) for p in sorted(self.folder.iterdir()) if p.suffix.lower() in SUFFIXES and p.is_file()]
        if not found:
            raise ValueError(f"{folder}: holds no image file ({', '.join(SUFFIXES)})")
        self.paths = [str(p) for p, _ in found]
        self.labels = np.array([k for _, k in found], dtype=np.int64)

    def __len__(self):
        return len(self.paths)

    @property
    def image_shape(self):
        return (self.size, self.size, 3) if self.colour else (self.size, self.size)

    def _one(self, path):
        image = read_image(path)
        if not self.colour:
            a = np.asarray(image.convert("L").resize((self.size, self.size), Image.BILINEAR), dtype=np.uint8)
            return 255 - a if np.median(a) > 127 else a
        image = image.convert("RGB")
        w, h = image.size
        scale = self.size / min(w, h)
        image = image.resize((max(self.size, round(w * scale)), max(self.size, round(h * scale))), Image.BILINEAR)
        w, h = image.size
        left, top = (w - self.size) // 2, (h - self.size) // 2
        return np.asarray(image.crop((left, top, left + self.size, top + self.size)), dtype=np.uint8)

    def read(self, start, stop):
        return np.stack([self._one(p) for p in self.paths[start:stop]]), self.labels[start:stop]
