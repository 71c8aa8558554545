"""Reading an image file as the 8-bit picture a person sees in it, or
refusing it in one line that names the file.

What a plain ``Image.open(path).convert("RGB")`` gets wrong, and what is
done instead:

- 16-bit grey ("I;16", "I"): ``convert`` clips every value above 255, so a
  16-bit PNG turns black and white; here it is scaled by 65535.
- Transparency (RGBA, grey+alpha, palettes with a transparent colour):
  ``convert`` drops the alpha and keeps whatever colour the transparent
  pixels hold, often black, so black ink on a transparent background turns
  all black. Here the picture is composited on the background that keeps
  the ink visible: white under dark ink, black under light ink.
- EXIF orientation: a phone's portrait photo is stored sideways with a tag
  saying so; the tag is applied.
- Size: a PNG of a few bytes may claim 100000 x 100000 pixels, or 100000 x 1
  that a resize to 256 on the short side turns into gigabytes. The header's
  size is checked before any pixel is decoded.
- Formats: only the raster formats below. Pillow's EPS reader runs
  Ghostscript, a program, on the file; npcnn runs no file's code.
"""
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from npcnn.data.files import readable_file

FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")
# the file names of those formats: what a folder or a pattern of images is searched for
SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")

# Pillow's own default bound (about 89 megapixels, a 9,500 x 9,500 photo):
# enough for any camera, and a RGB decode of at most ~270 MB.
MAX_PIXELS = 89_478_485
# An image more than 32 times wider than tall (or taller than wide) is a
# strip, not a picture of one thing; resizing its short side up is what
# turns a few bytes into gigabytes.
MAX_ASPECT = 32

# 8-bit modes that hold exactly what is seen; everything else is converted below.
_PLAIN = {"L": "L", "RGB": "RGB", "1": "L", "CMYK": "RGB", "YCbCr": "RGB"}


def read_image(path, max_pixels=MAX_PIXELS):
    """The image at ``path`` as a decoded 8-bit Pillow image, mode "L" or
    "RGB", orientation and transparency applied. ``ValueError`` naming the
    file for anything that is not a readable picture of sane size."""
    path = readable_file(path, "image")
    try:
        with warnings.catch_warnings():
            # Pillow warns (rather than fails) between its bound and twice it
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path, formats=FORMATS)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        raise ValueError(f"{path}: refused before decoding: {_first_line(err)}") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ValueError(f"{path}: not an image npcnn reads ({', '.join(FORMATS)}): "
                         f"{_first_line(err)}") from None
    with image:
        check_size(path, image.size, max_pixels)   # holds even where Image.MAX_IMAGE_PIXELS = None
        try:
            image.load()                            # decode now: a cut-off file fails here
            image = ImageOps.exif_transpose(image)
        except (OSError, ValueError, SyntaxError, EOFError) as err:
            raise ValueError(f"{path}: cannot decode the image (truncated or corrupt?): "
                             f"{_first_line(err)}") from None
        return to_8bit(path, image)


def check_size(path, size, max_pixels=MAX_PIXELS):
    """Refuse, from the header's (width, height), an image too large to
    decode or too long and thin to resize."""
    w, h = size
    if w < 1 or h < 1:
        raise ValueError(f"{path}: has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise ValueError(f"{path}: {w}x{h} is {w * h:,} pixels, over the {max_pixels:,} "
                         f"npcnn decodes")
    if max(w, h) > MAX_ASPECT * min(w, h):
        raise ValueError(f"{path}: {w}x{h}: one side is more than {MAX_ASPECT} times the other; "
                         f"crop it to the part to look at")


def to_8bit(path, image):
    """An 8-bit "L" or "RGB" copy of a decoded image of any common mode."""
    mode = image.mode
    if mode in _PLAIN:
        return image.convert(_PLAIN[mode])
    if mode == "P" or mode == "PA":
        # a palette may mark one colour transparent; RGBA keeps that
        return to_8bit(path, image.convert("RGBA"))
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        return Image.fromarray(_scaled_16bit(path, np.asarray(image)))          # uint8 (H, W): "L"
    if mode in ("LA", "La", "RGBA", "RGBa"):
        straight = image.convert("LA" if mode.startswith("L") else "RGBA")  # premultiplied undone
        return _composite(path, np.asarray(straight))
    raise ValueError(f"{path}: its pixels are {mode}, which npcnn does not read "
                     f"(save it as 8- or 16-bit grey, RGB or RGBA)")


def _scaled_16bit(path, values):
    """16-bit grey -> 8-bit: v * 255 / 65535, rounded (never clipped at 255)."""
    values = values.astype(np.int64)
    if values.min() < 0 or values.max() > 65535:
        raise ValueError(f"{path}: 32-bit integer pixels from {values.min()} to {values.max()}, "
                         f"outside 16-bit grey's 0..65535")
    return np.round(values * (255 / 65535)).astype(np.uint8)


def _composite(path, array):
    """(H, W, C+1) 8-bit colour and alpha -> the colour over a white
    background when the visible ink is dark, over black when it is light."""
    colour = array[..., :-1].astype(np.float64) / 255          # (H, W, C)
    alpha = array[..., -1:].astype(np.float64) / 255            # (H, W, 1)
    if alpha.max() == 0:
        raise ValueError(f"{path}: every pixel is fully transparent: there is nothing to see")
    ink = float((colour.mean(axis=2, keepdims=True) * alpha).sum() / alpha.sum())
    background = 1.0 if ink < 0.5 else 0.0
    pixels = np.round((colour * alpha + background * (1 - alpha)) * 255).astype(np.uint8)
    return Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)   # "L" or "RGB"


def _first_line(err):
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
