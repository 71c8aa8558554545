"""One layer across several images: the images, a heat map of every
channel's response to each of them with the shared and unique channels
marked, and the feature maps of the top shared channels and of each image's
top unique channel (groups from ``bridge.compare.shared_and_unique``)."""
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from .common import DIVERGING, plt, save, show_mosaic

SHARED_COLOUR, PARTIAL_COLOUR, SILENT_COLOUR = "black", "#bdbdbd", "white"
IMAGE_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
                 "tab:pink", "tab:olive", "tab:cyan")
MARK_ACTIVE_UP_TO = 64    # channels; beyond that a dot per cell is noise, the colour says it
HEAT_TITLE = 0.6          # inches: the heat map's three lines of explanation


def _numpy(groups):
    """The groups' tensors as numpy arrays: responses, active, shared, unique, partial, silent."""
    return (groups.responses.detach().cpu().numpy(), groups.active.cpu().numpy(), groups.shared.numpy(),
            [u.numpy() for u in groups.unique], groups.partial.numpy(), groups.silent.numpy())


def _check(images, groups, maps):
    N, C = groups.responses.shape
    if len(images) != N:
        raise ValueError(f"filters_across_images: {len(images)} images but responses of shape ({N}, {C})")
    for n, image in enumerate(images):
        shape = np.shape(image)
        if not (len(shape) == 2 or (len(shape) == 3 and shape[2] == 3)):
            raise ValueError(f"filters_across_images: images[{n}] must be (H, W) or (H, W, 3) for display "
                             f"(bridge.images.to_display), got shape {shape}")
    if maps is not None and (np.ndim(maps) not in (2, 4) or tuple(np.shape(maps)[:2]) != (N, C)):
        raise ValueError(f"filters_across_images: maps must be (N, C, H, W) or (N, C) with (N, C) = ({N}, {C}), "
                         f"got shape {np.shape(maps)}")


def _group_of(groups_np, N, C):
    """(C,) group id per channel: 0 shared, 1..N unique to image n-1, N+1 partial, N+2 silent."""
    _, _, shared, unique, partial, silent = groups_np
    ids = np.empty(C, dtype=int)
    ids[shared] = 0
    for n, u in enumerate(unique):
        ids[u] = n + 1
    ids[partial] = N + 1
    ids[silent] = N + 2
    return ids


def _colours(N):
    return [IMAGE_COLOURS[n % len(IMAGE_COLOURS)] for n in range(N)]


def _axes(fig, left, top, width, height):
    """Axes placed in inches from the figure's top-left corner: the layout is
    computed, not negotiated, so no label can land on another at any size."""
    W, H = fig.get_size_inches()
    return fig.add_axes((left / W, 1 - (top + height) / H, width / W, height / H))


def _images_row(fig, images, labels, top, size):
    """The inputs in a row, centred, each framed in the colour of its unique channels."""
    N, gap = len(images), 0.3
    left = (fig.get_figwidth() - (N * size + (N - 1) * gap)) / 2
    for n, (image, label, colour) in enumerate(zip(images, labels, _colours(N))):
        ax = _axes(fig, left + n * (size + gap), top, size, size)
        ax.imshow(image, cmap="gray" if np.ndim(image) == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(label, fontsize=8, pad=3, color=colour)
        for side in ax.spines.values():
            side.set_edgecolor(colour)
            side.set_linewidth(2)


def _heat(fig, groups, groups_np, labels, top, row, maps_below):
    """Responses (N, C) over each channel's peak, columns in group order, a
    strip of group colours under them and a legend with the counts
    (``_heat_height`` inches from ``top``)."""
    responses, active, shared, unique, partial, silent = groups_np
    N, C = responses.shape
    order = np.concatenate([shared, *unique, partial, silent])
    peak = responses.max(axis=0)                                                  # (C,)
    relative = np.clip(responses / np.where(peak > 0, peak, 1.0), 0, 1)           # (N, C)
    relative[:, silent] = np.nan  # under the floor: blank, not a misleading 1 for a near-dead channel
    W = fig.get_figwidth()
    left, width = 1.2, W - 2.4
    dots = " (dots)" if C <= MARK_ACTIVE_UP_TO else ""
    fig.text(left / W, 1 - (top + 0.05) / fig.get_figheight(),
             "mean response of each channel to each image, over the channel's peak across the images;\n"
             f"active{dots} at >= {groups.fraction:g} of that peak if the peak is >= {groups.floor:g} of the layer's "
             "largest response, else silent (blank);\ncolumns: shared by all, unique to each image, some, silent",
             fontsize=7.5, va="top", linespacing=1.3)
    y = top + HEAT_TITLE
    ax = _axes(fig, left, y, width, row * N)
    im = ax.imshow(relative[:, order], aspect="auto", cmap=plt.get_cmap("viridis").with_extremes(bad=SILENT_COLOUR),
                   vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(range(N), labels, fontsize=7)
    for tick, colour in zip(ax.get_yticklabels(), _colours(N)):
        tick.set_color(colour)
    ax.set_xticks([])
    if C <= MARK_ACTIVE_UP_TO:
        n_idx, col = np.nonzero(active[:, order])
        ax.scatter(col, n_idx, s=6, c="white", edgecolors="black", linewidths=0.4)
    sizes = [len(shared), *map(len, unique), len(partial), len(silent)]
    for edge in np.cumsum(sizes)[:-1]:
        if 0 < edge < C:
            ax.axvline(edge - 0.5, color="white", lw=1.2)
    bar = fig.colorbar(im, cax=_axes(fig, left + width + 0.12, y, 0.1, row * N))
    bar.ax.tick_params(labelsize=6)
    bar.ax.axhline(groups.fraction, color="red", lw=1.5)  # the line a response must reach to count as active
    y += row * N + 0.06

    ids = _group_of(groups_np, N, C)[order]
    palette = [SHARED_COLOUR, *_colours(N), PARTIAL_COLOUR, SILENT_COLOUR]
    strip = _axes(fig, left, y, width, 0.16)
    strip.imshow(ids[None], aspect="auto", cmap=ListedColormap(palette), vmin=-0.5, vmax=len(palette) - 0.5,
                 interpolation="nearest")
    strip.set_yticks([0], ["group"], fontsize=7)
    if C <= MARK_ACTIVE_UP_TO:  # every column is wide enough for its channel number
        strip.set_xticks(range(C), order, fontsize=6, rotation=90 if C > 24 else 0)
        strip.set_xlabel("channel", fontsize=7, labelpad=2)
        y += 0.16 + (0.55 if C > 24 else 0.42)
    else:
        strip.set_xticks([])
        strip.set_xlabel(f"{C} channels in group order" + (" (the numbers of the top ones are in the feature "
                         "maps below)" if maps_below else ""), fontsize=7, labelpad=3)
        y += 0.16 + 0.3
    names = ["shared by all", *[f"only {label}" for label in labels], "some, not all", "silent"]
    handles = [Patch(facecolor=colour, edgecolor="black", linewidth=0.5, label=f"{name} ({size})")
               for colour, name, size in zip(palette, names, sizes)]
    if N < 3:  # "some, not all" needs a third image
        del handles[N + 1]
    ncol = min(len(handles), 6)
    fig.legend(handles=handles, loc="upper center", ncol=ncol, fontsize=7, frameon=False,
               bbox_to_anchor=((left + width / 2) / W, 1 - y / fig.get_figheight()))


def _heat_height(N, C, row, legend_rows):
    """What ``_heat`` uses, in inches: title, rows, strip, ticks, legend."""
    ticks = 0.3 if C > MARK_ACTIVE_UP_TO else (0.55 if C > 24 else 0.42)
    return HEAT_TITLE + row * N + 0.06 + 0.16 + ticks + 0.25 * legend_rows + 0.1


def _picked(groups_np, labels, top_shared):
    """[(channel, row label)]: the ``top_shared`` strongest shared channels,
    then each image's strongest unique channel."""
    _, _, shared, unique, _, _ = groups_np
    rows = [(c, f"ch {c}\nshared") for c in shared[:top_shared]]
    rows += [(u[0], f"ch {u[0]}\nonly {label}") for u, label in zip(unique, labels) if len(u)]
    return rows


def _maps(fig, maps, rows, labels, top, tile):
    """Rows: the picked channels; columns: the images. Each row is divided by
    its largest |value| over the images, so a row compares the images for
    one channel (on the same scale) while weak channels stay visible."""
    channels = [c for c, _ in rows]
    tiles = np.transpose(maps[:, channels], (1, 0, 2, 3))                        # (K, N, H, W)
    scale = np.abs(tiles).max(axis=(1, 2, 3), keepdims=True)                      # (K, 1, 1, 1)
    tiles = tiles / np.where(scale > 0, scale, 1.0)
    signed = tiles.min() < 0   # a layer before its ReLU
    K, N = tiles.shape[:2]
    W = fig.get_figwidth()
    fig.text(0.5, 1 - top / fig.get_figheight(), "feature maps of the top shared channels and of each image's "
             "top unique channel; each row on its own scale (its largest |value| over the images)",
             fontsize=7.5, va="top", ha="center")
    left = (W - N * tile) / 2
    ax = _axes(fig, left, top + 0.5, N * tile, K * tile)
    im = show_mosaic(ax, tiles, DIVERGING if signed else "viridis", -1 if signed else 0, 1,
                     row_labels=[label for _, label in rows], col_labels=labels)
    ax.xaxis.tick_top()
    for tick, colour in zip(ax.get_xticklabels(), _colours(N)):
        tick.set_color(colour)
    bar = fig.colorbar(im, cax=_axes(fig, left + N * tile + 0.15, top + 0.5, 0.1, min(K * tile, 2.5)))
    bar.ax.tick_params(labelsize=6)


def filters_across_images(images, groups, maps, path, heading, labels=None, top_shared=4):
    """The filters of one layer across N >= 2 images, as one PNG: the images,
    the heat map of the groups, and the feature maps of the top shared
    channels and of each image's top unique channel.

    images: N display arrays, (H, W) grey or (H, W, 3) colour in [0, 1]
    (``bridge.images.to_display``); groups: ``bridge.compare.shared_and_unique``
    of the layer's responses; maps: the layer's output (N, C, H, W) as numpy
    (``bridge.compare.layer_output``), or None / (N, C) for a fully connected
    layer, which has no maps to show; labels: one name per image (default
    "image 0", ...).
    """
    _check(images, groups, maps)
    N, C = groups.responses.shape
    labels = [f"image {n}" for n in range(N)] if labels is None else [str(label) for label in labels]
    if len(labels) != N:
        raise ValueError(f"filters_across_images: {len(labels)} labels for {N} images")
    groups_np = _numpy(groups)
    spatial = maps is not None and np.ndim(maps) == 4
    rows = _picked(groups_np, labels, top_shared) if spatial else []
    W = float(np.clip(4 + 0.025 * C, 8, 16))
    size = min(1.6, (W - 0.6 - 0.3 * (N - 1)) / N)              # the input images, inches
    row = 0.3                                                    # a heat-map row, inches
    tile = min(1.0, (W - 3.0) / N)                               # a feature-map tile, inches
    legend_rows = -(-(N + 3 - (N < 3)) // 6)
    heat = _heat_height(N, C, row, legend_rows)
    y_images = 0.45 + 0.25                                       # under the heading and the image titles
    y_heat = y_images + size + 0.35
    y_maps = y_heat + heat + 0.3
    H = y_maps + (0.5 + len(rows) * tile + 0.2 if rows else 0.2 if spatial else -0.2)
    fig = plt.figure(figsize=(W, H))
    fig.suptitle(heading, fontsize=9, y=1 - 0.12 / H, va="top")
    _images_row(fig, images, labels, y_images, size)
    _heat(fig, groups, groups_np, labels, y_heat, row, bool(rows))
    if rows:
        _maps(fig, np.asarray(maps), rows, labels, y_maps, tile)
    elif spatial:
        fig.text(0.5, 1 - y_maps / H, "no channel is shared by all the images or unique to one: no feature maps "
                 "to show", fontsize=7.5, va="top", ha="center")
    return save(fig, path)
