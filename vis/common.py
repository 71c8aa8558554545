"""What every figure shares: the headless backend, atomic saving, and the
colour conventions (grey for images, a diverging map centred on zero for
signed signals such as projections)."""
import matplotlib

matplotlib.use("Agg")  # no display anywhere: CI, servers

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from npcnn.atomic import atomic_path  # noqa: E402

DIVERGING = "RdBu_r"   # red positive, blue negative, white zero
DPI = 100


def save(fig, path):
    """Write ``fig`` as PNG atomically (temp file, then rename) and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def title(fig, text, fontsize=9):
    """A figure title half an inch tall, the axes moved up under it whatever
    the figure's height (matplotlib's default leaves 12 % of it empty)."""
    height = fig.get_figheight()
    fig.subplots_adjust(top=1 - 0.45 / height)
    fig.suptitle(text, fontsize=fontsize, y=1 - 0.1 / height)


def mosaic(tiles, gap=1):
    """Tiles (R, C, h, w) as one (R*(h+gap), C*(w+gap)) array with NaN gaps:
    one imshow instead of R*C axes, which matplotlib draws many times faster."""
    R, C, h, w = tiles.shape
    out = np.full((R * (h + gap) - gap, C * (w + gap) - gap), np.nan)
    for r in range(R):
        for c in range(C):
            out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tiles[r, c]
    return out


def show_mosaic(ax, tiles, cmap, vmin, vmax, row_labels=(), col_labels=(), gap=1):
    """Draw ``mosaic(tiles)`` with labelled rows and columns; the gaps are
    grey for a diverging map (whose zero is white) and white otherwise."""
    R, C, h, w = tiles.shape
    colours = plt.get_cmap(cmap).with_extremes(bad="#999999" if cmap == DIVERGING else "white")
    im = ax.imshow(mosaic(tiles, gap), cmap=colours, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([c * (w + gap) + (w - 1) / 2 for c in range(len(col_labels))], col_labels, fontsize=7)
    ax.set_yticks([r * (h + gap) + (h - 1) / 2 for r in range(len(row_labels))], row_labels, fontsize=7)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    return im


def show_image(ax, image, title=None):
    """A grey image: (H, W) or (1, H, W)."""
    ax.imshow(np.squeeze(image), cmap="gray", interpolation="nearest")
    _frame(ax, title)


def show_signed(ax, values, title=None):
    """A signed map, colour centred on zero, limits symmetric per panel so a
    weak map is still visible (its scale goes in the title when asked)."""
    v = np.squeeze(values)
    m = float(np.abs(v).max()) or 1.0
    ax.imshow(v, cmap=DIVERGING, vmin=-m, vmax=m, interpolation="nearest")
    _frame(ax, title)


def _frame(ax, title):
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7, pad=2)
