"""The figure of a deep dream: each image beside its dream, what the dream
added (stretched to full contrast), and the objective's climb through the octaves."""
import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator

from .common import plt, save, show_image, show_signed, title


def _show(ax, image, text):
    """A display image in [0, 1] on that fixed scale, so the original and its
    dream compare (show_image would stretch a grey one to its own range)."""
    show_image(ax, image, text)
    ax.images[-1].set_clim(0, 1)


def _difference(ax, original, dream, text):
    """dream - original: a signed map for grey images; for colour ones the
    difference in RGB around mid-grey, stretched so its largest entry
    reaches black or white (a signed map would lose its colours)."""
    d = np.asarray(dream, np.float64) - np.asarray(original, np.float64)
    m = float(np.abs(d).max()) or 1.0
    if d.ndim == 3:
        gain = 0.5 / m
        show_image(ax, np.clip(0.5 + gain * d, 0, 1), f"{text} x{gain:.2g}\n(grey = unchanged)")
    else:
        show_signed(ax, d, f"{text}, +-{m:.2g}\n(white = unchanged)")


def _curve(ax, history, sizes, start):
    """One segment per octave (the objective is a mean over the layer's
    units, so it jumps when the size changes), octave boundaries dashed and
    labelled with the octave's size."""
    curve = np.stack([np.asarray(h, np.float64).reshape(-1) for h in history])  # (entries, N)
    per = len(curve) // len(sizes)   # steps + 1 entries per octave
    N = curve.shape[1]
    colours = plt.get_cmap("tab10")
    for o, (h, w) in enumerate(sizes):
        span = np.arange(o * per, (o + 1) * per)
        for n in range(N):
            ax.plot(span, curve[span, n], lw=1, color=colours(n % 10),
                    label=f"image {n}" if o == 0 and N > 1 else None)
        if o:
            ax.axvline(o * per - 0.5, color="0.5", lw=0.8, ls="--")
        ax.text(o * per + per / 2 - 0.5, 1.01, f"{h}x{w}", transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=7)
    if start is not None:
        for n, v in enumerate(np.asarray(start, np.float64).reshape(-1)):
            ax.axhline(v, color=colours(n % 10), lw=0.8, ls=":",
                       label="original image, full size" if n == 0 else None)
    label = "objective  mean(A^2)"
    if curve.min() > 0:
        ax.set_yscale("log")   # the small octaves can start orders of magnitude lower
        ax.yaxis.set_minor_locator(LogLocator(subs=(2, 5)))
        plain = FuncFormatter(lambda v, _: f"{v:.2g}")   # 0.5, not 5x10^-1
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
        label += ", log scale"
    ax.set_xlabel("step (octaves left to right)", fontsize=8)
    ax.set_ylabel(label, fontsize=8)
    ax.tick_params(which="both", labelsize=7)
    if N > 1 or start is not None:
        ax.legend(fontsize=6, loc="lower right")


def dream(originals, dreams, history, sizes, path, heading, start=None):
    """Rows: images (original, dream, difference); right: the objective.

    originals, dreams: (H, W) or (H, W, 3) arrays in [0, 1], one per image
    (``bridge.images.to_display``); history, sizes: from ``DreamResult``
    (arrays (N,)); start: the objective of the original images at full
    size (N,), drawn dotted, if given."""
    N = len(originals)
    fig = plt.figure(figsize=(10.5, 2.3 * N + 0.9))
    # column 3 is an empty spacer for the curve's tick labels
    grid = fig.add_gridspec(N, 5, width_ratios=[1, 1, 1, 0.4, 2.2], wspace=0.12)
    for n in range(N):
        head = ("original", "dream", "difference") if n == 0 else ("", "", "")
        _show(fig.add_subplot(grid[n, 0]), originals[n], head[0])
        _show(fig.add_subplot(grid[n, 1]), dreams[n], head[1])
        _difference(fig.add_subplot(grid[n, 2]), originals[n], dreams[n], head[2] or "difference")
    ax = fig.add_subplot(grid[:, 4])
    _curve(ax, history, sizes, start)
    title(fig, heading)
    return save(fig, path)
