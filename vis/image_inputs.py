"""The images a command is given: files, folders and glob patterns, expanded
to one sorted list of image files before any work starts.

    --image cat.png             that file
    --image photos/             every image file directly in the folder, by name
    --image 'photos/*.jpg'      what the pattern matches (quoted, or the shell expands it)

A folder with no image in it, or a pattern that matches none, is an error
naming it; so is a path that does not exist. A file named directly is taken
whatever its suffix (Pillow decides whether it is an image).
"""
import glob
from pathlib import Path

from bridge.image_read import SUFFIXES as IMAGE_SUFFIXES   # the formats the images are read in
_PATTERN_CHARACTERS = "*?["


def _is_image(path):
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def expand_images(arguments):
    """The image files named by ``arguments`` (files, folders, patterns), in
    the order given, each folder's and pattern's files sorted by name;
    a file named twice is kept once, where it first appears."""
    found = []
    for text in arguments:
        path = Path(text)
        if any(c in text for c in _PATTERN_CHARACTERS) and not path.exists():
            matches = [Path(p) for p in sorted(glob.glob(text, recursive=True))]
            images = [p for p in matches if _is_image(p)]
            if not images:
                raise ValueError(f"--image {text}: the pattern matches no image file "
                                 f"({', '.join(IMAGE_SUFFIXES)})")
            found += images
        elif path.is_dir():
            images = sorted((p for p in path.iterdir() if _is_image(p)), key=lambda p: p.name)
            if not images:
                raise ValueError(f"--image {text}: the folder holds no image file "
                                 f"({', '.join(IMAGE_SUFFIXES)})")
            found += images
        elif path.exists():
            found.append(path)
        else:
            raise ValueError(f"--image {text}: no such file or folder")
    unique, seen = [], set()
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique
