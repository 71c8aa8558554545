"""Figures of feature inversion (Mahendran & Vedaldi 2015): what each layer's
representation still determines about the image, as pictures and as SSIM
and PSNR against depth."""
import numpy as np

from .common import plt, save, show_image, title


def _pixels(ax, image, text, scores):
    """An image in display form, (H, W) grey or (H, W, 3) colour, on the
    fixed [0, 1] scale (a reconstruction's contrast is compared, not
    stretched), the layer above it and its scores below."""
    show_image(ax, image, text)
    ax.images[0].set_clim(0, 1)   # ignored for colour, which imshow takes as it is
    if scores:
        ax.set_xlabel(scores, fontsize=7, labelpad=2)


def inversions(originals, reconstructions, ssim, psnr, history, path, heading):
    """Rows: images; columns: the original, then its reconstruction from each
    layer in forward order, with its SSIM and PSNR underneath. Below: SSIM
    and PSNR (means over the images) against depth, and the loss curves.

    originals: N display images ((H, W) or (H, W, 3) in [0, 1]);
    reconstructions: {layer: N display images}, in forward order;
    ssim, psnr: {layer: (N,)}; history: {layer: (steps + 1, N) loss}.
    """
    layers = list(reconstructions)
    N, L = len(originals), len(layers)
    width = max(8.0, 1.3 * (L + 1))
    fig = plt.figure(figsize=(width, 1.5 * N + 3.2))
    grid = fig.add_gridspec(N + 1, L + 1, height_ratios=[1] * N + [1.7], hspace=0.3, wspace=0.1)
    for n in range(N):
        _pixels(fig.add_subplot(grid[n, 0]), originals[n], "original" if n == 0 else None, None)
        for k, layer in enumerate(layers):
            _pixels(fig.add_subplot(grid[n, k + 1]), reconstructions[layer][n], layer if n == 0 else None,
                    f"SSIM {ssim[layer][n]:.2f}, {psnr[layer][n]:.1f} dB")
    # the two plots share the bottom row whatever the number of columns; the
    # gap leaves room for the PSNR axis on the right of the first
    bottom = grid[N, :].subgridspec(1, 2, wspace=0.6)
    _quality_curves(fig.add_subplot(bottom[0]), layers, ssim, psnr)
    _loss_curves(fig.add_subplot(bottom[1]), layers, history)
    title(fig, heading)
    return save(fig, path)


def _quality_curves(ax, layers, ssim, psnr):
    """SSIM (left axis) and PSNR (right axis) against depth, means over the images."""
    depth = np.arange(len(layers))
    ax.plot(depth, [np.mean(ssim[k]) for k in layers], "o-", color="tab:blue", lw=1.2, ms=3)
    ax.set_ylabel("SSIM", color="tab:blue", fontsize=8)
    ax.set_ylim(min(0.0, min(np.min(ssim[k]) for k in layers)), 1.02)
    ax.tick_params(axis="y", colors="tab:blue", labelsize=7)
    right = ax.twinx()
    right.plot(depth, [np.mean(psnr[k]) for k in layers], "s--", color="tab:red", lw=1.2, ms=3)
    right.set_ylabel("PSNR (dB)", color="tab:red", fontsize=8)
    right.tick_params(axis="y", colors="tab:red", labelsize=7)
    ax.set_xticks(depth, layers, rotation=40, ha="right", fontsize=7)
    ax.set_title("reconstruction quality against depth", fontsize=8)


def _loss_curves(ax, layers, history):
    """The loss per step for each layer, mean over the images, log scale;
    the colour darkens with depth."""
    colours = plt.get_cmap("viridis")(np.linspace(0.9, 0.0, len(layers)))
    for colour, layer in zip(colours, layers):
        ax.plot(np.asarray(history[layer]).mean(axis=1), lw=1, color=colour, label=layer)
    ax.set_yscale("log")
    ax.set_xlabel("step", fontsize=8)
    ax.set_ylabel("loss", fontsize=8)
    ax.tick_params(which="both", labelsize=7)   # minor labels too: a log axis under a decade has only those
    ax.legend(fontsize=6, ncol=2 if len(layers) > 6 else 1, loc="upper right")
    ax.set_title("loss during the optimisation", fontsize=8)
