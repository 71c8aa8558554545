"""Figures of the deconvnet study (Zeiler & Fergus 2013, on LeNet-5)."""
import numpy as np

from .common import plt, save, show_image, show_signed, title

PER_ROW = 8  # projections per row in the per-digit grid


def digit_grid(image, projections, title, path):
    """The input beside every projection of one image, a block per layer.

    projections: {layer: (C, H, W)} in display order.
    """
    rows = sum(-(-len(p) // PER_ROW) for p in projections.values())
    fig = plt.figure(figsize=(1.3 * (PER_ROW + 2), 1.4 * rows + 0.6))
    grid = fig.add_gridspec(rows, PER_ROW + 2, width_ratios=[2, 0.3] + [1] * PER_ROW)
    show_image(fig.add_subplot(grid[:, 0]), image, "input")
    row = 0
    for layer, maps in projections.items():
        for c, proj in enumerate(maps):
            r, col = row + c // PER_ROW, c % PER_ROW
            show_signed(fig.add_subplot(grid[r, 2 + col]), proj, f"{layer}[{c}]")
        row += -(-len(maps) // PER_ROW)
    fig.suptitle(title, fontsize=10)
    return save(fig, path)


def combined_grid(images, projections, labels, path):
    """One row per digit: the input, then its projections of every layer.

    images: (D, 1, H, W); projections: {layer: (D, C, H, W)}; labels: row titles.
    """
    cols = 1 + sum(p.shape[1] for p in projections.values())
    fig, axes = plt.subplots(len(images), cols, figsize=(0.75 * cols, 0.9 * len(images) + 0.5),
                             squeeze=False)
    for d, image in enumerate(images):
        show_image(axes[d, 0], image, labels[d])
        k = 1
        for layer, maps in projections.items():
            for c in range(maps.shape[1]):
                show_signed(axes[d, k], maps[d, c], f"{layer[-1]}.{c}" if d == 0 else None)
                k += 1
    title(fig, "deconvnet projections of every map of " + " and ".join(projections)
          + " (red +, blue -, each panel on its own scale)")
    return save(fig, path)


def top9(layer, patches, projections, values, path, searched="the test set"):
    """For each map of ``layer``: its 9 strongest activations, each as the
    receptive-field patch (grey) beside the projection of that activation.

    patches, projections: (C, 9, h, w) crops; values: (C, 9) activations;
    searched: where they were found, for the title.
    """
    C, k = values.shape
    fig, axes = plt.subplots(C, 2 * k, figsize=(0.55 * 2 * k, 0.62 * C + 0.5), squeeze=False)
    for c in range(C):
        for i in range(k):
            show_image(axes[c, 2 * i], patches[c, i])
            show_signed(axes[c, 2 * i + 1], projections[c, i])
        axes[c, 0].set_ylabel(f"{c}", rotation=0, fontsize=7, labelpad=8)
    title(fig, f"{layer}: for each map (row), the {k} strongest activations in {searched}: "
               "receptive field | its projection")
    return save(fig, path)


def evolution(layer, projections, epochs, path):
    """Rows: maps of ``layer``; columns: epochs. projections: (C, E, h, w),
    each cropped to the receptive field of the unit it starts from."""
    C, E = projections.shape[:2]
    fig, axes = plt.subplots(C, E, figsize=(0.8 * E + 0.6, 0.8 * C + 0.6), squeeze=False)
    for c in range(C):
        for e in range(E):
            show_signed(axes[c, e], projections[c, e], f"epoch {epochs[e]}" if c == 0 else None)
        axes[c, 0].set_ylabel(f"{c}", rotation=0, fontsize=7, labelpad=8)
    title(fig, f"{layer}: projection of each map's strongest activation (its receptive field), "
               "epoch by epoch")
    return save(fig, path)


def occlusion(image, label, probability, activation, projection, channel, layer, box, path):
    """The image with one occluder drawn, the probability map of the true
    class, the activation map of the strongest ``layer`` map, and its
    projection (Zeiler & Fergus, figure 7)."""
    fig, axes = plt.subplots(1, 4, figsize=(11, 3))
    show_image(axes[0], image, f"input (label {label}); square where p is lowest")
    h0, w0, size, stride = box
    axes[0].add_patch(plt.Rectangle((w0 - 0.5, h0 - 0.5), size, size, fill=False, ec="yellow", lw=1.5))
    # each cell drawn at the centre of its occluder, so the maps line up with the image
    H, W = np.squeeze(image).shape
    half = size / 2 - 0.5
    extent = (half - stride / 2, half + (probability.shape[1] - 0.5) * stride,
              half + (probability.shape[0] - 0.5) * stride, half - stride / 2)
    for ax, values, text in ((axes[1], probability, f"p(class {label}), occluder centred here"),
                             (axes[2], activation, f"{layer}[{channel}] total activation")):
        im = ax.imshow(values, cmap="viridis", interpolation="nearest", extent=extent)
        ax.set_xlim(-0.5, W - 0.5)
        ax.set_ylim(H - 0.5, -0.5)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(text, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    show_signed(axes[3], projection, f"projection of {layer}[{channel}] (strongest map)")
    return save(fig, path)

