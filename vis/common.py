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
