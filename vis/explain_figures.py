"""Figures of the torch-side methods: attributions, activation maximization, FGSM."""
import numpy as np

from .common import DIVERGING, plt, save, show_image, show_mosaic, show_signed, title


def _overlay(ax, image, heat, text):
    """A heat map (>= 0) over the grey image."""
    ax.imshow(np.squeeze(image), cmap="gray", interpolation="nearest")
    ax.imshow(heat, cmap="jet", alpha=0.45, interpolation="bilinear")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(text, fontsize=7, pad=2)


def attributions(images, labels, maps, path, heading, kind="label"):
    """Rows: images; columns: the input, then one map per method.

    ``labels``: each image's class, under the input as "{kind} {label}": the
    true label ("label", the demo's test images), or the class the maps
    explain ("class": the prediction or ``--target``, for photos).

    maps: {method: (N, H, W) or (N, C, H, W)}; signed maps (gradients,
    Integrated Gradients) use the diverging scale, non-negative ones
    (CAMs, occlusion drops) are laid over the image."""
    N, M = len(images), len(maps)
    fig, axes = plt.subplots(N, M + 1, figsize=(1.45 * (M + 1), 1.55 * N + 0.5), squeeze=False)
    for n in range(N):
        show_image(axes[n, 0], images[n], f"{kind} {labels[n]}" if n else f"input\n{kind} {labels[n]}")
        for m, (method, values) in enumerate(maps.items()):
            v = np.squeeze(values[n])
            head = method if n == 0 else None
            if v.min() < 0:
                show_signed(axes[n, m + 1], v, head)
            else:
                _overlay(axes[n, m + 1], images[n], v, head or "")
    title(fig, heading)
    return save(fig, path)


def actmax(images, titles, history, path, heading):
    """The optimised inputs in a row and the objective's curve per target."""
    K = len(images)
    fig = plt.figure(figsize=(max(6.0, 1.2 * K), 3.6))
    grid = fig.add_gridspec(2, K, height_ratios=[1, 0.9])
    for k in range(K):
        show_signed(fig.add_subplot(grid[0, k]), images[k], titles[k])
    ax = fig.add_subplot(grid[1, :])
    curve = np.stack(history)  # (steps+1, K)
    for k in range(K):
        ax.plot(curve[:, k], lw=1, label=titles[k])
    ax.set_xlabel("step")
    ax.set_ylabel("objective")
    ax.legend(fontsize=6, ncol=min(K, 5))
    fig.suptitle(heading, fontsize=9)
    return save(fig, path)


def fgsm(image, adversarial, before, after, labels, sal_before, sal_after, change, path, heading):
    """Original, adversarial, their difference, saliency before and after, and
    the relative change of each layer's activations."""
    fig, axes = plt.subplots(1, 6, figsize=(15, 2.8), gridspec_kw={"width_ratios": [1, 1, 1, 1, 1, 1.8]})
    show_image(axes[0], image, f"original: predicted {before}")
    show_image(axes[1], adversarial, f"adversarial: predicted {after}")
    diff = np.squeeze(adversarial) - np.squeeze(image)
    show_signed(axes[2], diff.sum(axis=-1) if diff.ndim == 3 else diff, "difference")
    show_signed(axes[3], sal_before, f"saliency for {labels}, before")
    show_signed(axes[4], sal_after, f"saliency for {labels}, after")
    names = list(change)
    axes[5].barh(range(len(names)), [change[n] for n in names], color="tab:purple")
    axes[5].set_yticks(range(len(names)), names, fontsize=7)
    axes[5].invert_yaxis()
    axes[5].set_xlabel("||a_adv - a|| / ||a||", fontsize=8)
    fig.suptitle(heading, fontsize=9)
    return save(fig, path)


def filter_tiles(weight, layer, path, colour=False):
    """Conv filters (F, C, kH, kW): in colour (first layer of an RGB network),
    or as the mean over input channels; each filter scaled on its own."""
    F = len(weight)
    cols = min(F, 16)
    rows = -(-F // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.7 + 0.4, rows * 0.75 + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for f in range(F):
        ax = axes.flat[f]
        if colour:
            w = weight[f].transpose(1, 2, 0)
            ax.imshow((w - w.min()) / max(float(np.ptp(w)), 1e-12), interpolation="nearest")
        else:
            w = weight[f].mean(axis=0)
            m = float(np.abs(w).max()) or 1.0
            ax.imshow(w, cmap=DIVERGING, vmin=-m, vmax=m, interpolation="nearest")
    title(fig, f"{layer}: {F} filters, " + ("in colour" if colour else "mean over input channels")
          + ", each on its own scale")
    return save(fig, path)


def channel_grid(maps, heading, path):
    """Channels (C, H, W) of one layer for one image, one shared scale."""
    C = len(maps)
    cols = min(C, 8)
    rows = -(-C // cols)
    tiles = np.full((rows * cols,) + maps.shape[1:], np.nan)
    tiles[:C] = maps
    fig, ax = plt.subplots(figsize=(cols * 1.1 + 1.2, rows * 1.1 + 0.6))
    im = show_mosaic(ax, tiles.reshape((rows, cols) + maps.shape[1:]), "viridis", float(maps.min()),
                     float(maps.max()))
    fig.colorbar(im, ax=ax, fraction=0.03)
    ax.set_title(heading, fontsize=9)
    return save(fig, path)


def progression(image, means, heading, path):
    """The image, then the channel mean of each layer in forward order."""
    n = len(means) + 1
    cols = min(n, 8)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.4, rows * 1.5 + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    show_image(axes.flat[0], image, "input")
    for ax, (name, m) in zip(axes.flat[1:], means.items()):
        ax.imshow(m, cmap="viridis", interpolation="nearest")
        ax.set_title(name, fontsize=7)
    title(fig, heading)
    return save(fig, path)


def summary(thumbnails, maps, captions, path, heading):
    """A page of many images: each image with its map laid over it (the map's
    own scale: >= 0 as heat, signed as |value|), captioned with its name and
    prediction. thumbnails: (h, w[, 3]) in [0, 1]; maps: (h', w') each."""
    n = len(thumbnails)
    cols = min(n, 8)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.5, rows * 1.75 + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, heat, caption in zip(axes.flat, thumbnails, maps, captions):
        h, w = np.shape(image)[:2]
        ax.imshow(np.squeeze(image), cmap="gray", interpolation="nearest", extent=(0, w, h, 0))
        ax.imshow(np.abs(heat), cmap="jet", alpha=0.45, interpolation="bilinear", extent=(0, w, h, 0))
        ax.set_title(caption, fontsize=6, pad=2)
    title(fig, heading)
    return save(fig, path)
