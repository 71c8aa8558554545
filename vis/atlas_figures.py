"""Figures of the activation study: samples, architecture, feature maps,
dense activations, ReLU effects, filters, class averages and the measures
(sparsity, redundancy, selectivity)."""
import numpy as np

from .common import DIVERGING, plt, save, show_image, show_mosaic, title

CLASS_COLOUR, OTHER_COLOUR = "tab:red", "tab:gray"


def _grid(n, max_cols=8):
    cols = min(n, max_cols)
    return -(-n // cols), cols


def sample_grid(images, labels, path, heading="random samples"):
    rows, cols = _grid(len(images), 10)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 1.0 + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, label in zip(axes.flat, images, labels):
        show_image(ax, image, str(label))
    title(fig, heading)
    return save(fig, path)


def architecture(rows, heading, path):
    """rows: (layer, kind, output shape, parameters)."""
    fig, ax = plt.subplots(figsize=(6.5, 0.28 * len(rows) + 0.9))
    ax.axis("off")
    cells = [[name, kind, "x".join(map(str, shape)), f"{params:,}"] for name, kind, shape, params in rows]
    table = ax.table(cellText=cells, colLabels=["layer", "kind", "output shape", "parameters"],
                     loc="center", cellLoc="left", colLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.2)
    title(fig, heading)
    return save(fig, path)


def feature_maps(maps, heading, path, vmin=None, vmax=None, cmap="viridis"):
    """Every channel of one layer for one image, one shared colour scale and
    a colour bar. maps: (C, H, W)."""
    rows, cols = _grid(len(maps))
    vmin = float(maps.min()) if vmin is None else vmin
    vmax = float(maps.max()) if vmax is None else vmax
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.15 + 0.8, rows * 1.25 + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for c, (ax, m) in enumerate(zip(axes.flat, maps)):
        im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(str(c), fontsize=7, pad=2)
    fig.colorbar(im, ax=axes, fraction=0.03, pad=0.02)
    fig.suptitle(heading, fontsize=10)
    return save(fig, path)


def dense_bars(values, heading, path, highlight=None, labels=None):
    """One bar per neuron; ``highlight`` (the true class) drawn in red."""
    fig, ax = plt.subplots(figsize=(max(4.0, 0.12 * len(values) + 2), 2.6))
    colours = [CLASS_COLOUR if i == highlight else OTHER_COLOUR for i in range(len(values))]
    ax.bar(np.arange(len(values)), values, color=colours)
    ax.axhline(0, color="black", lw=0.6)
    if labels is not None:
        ax.set_xticks(np.arange(len(values)), labels)
    ax.set_xlabel("neuron" if labels is None else "class")
    ax.set_title(heading, fontsize=9)
    return save(fig, path)


def pre_post_relu(pre, post, heading, path):
    """The same activations before and after a ReLU, side by side, with the
    fraction of zeros the ReLU made. pre/post: (C, H, W) or (D,)."""
    zeros = float((post == 0).mean())
    if pre.ndim == 1:
        fig, axes = plt.subplots(1, 2, figsize=(9, 2.6), sharey=True)
        for ax, v, name in ((axes[0], pre, "before ReLU"), (axes[1], post, "after ReLU")):
            ax.bar(np.arange(len(v)), v, color=OTHER_COLOUR)
            ax.axhline(0, color="black", lw=0.6)
            ax.set_title(name, fontsize=9)
    else:
        C = len(pre)
        fig, axes = plt.subplots(2, C, figsize=(C * 1.0 + 0.8, 2.9), squeeze=False)
        m = float(np.abs(pre).max()) or 1.0
        for c in range(C):
            axes[0, c].imshow(pre[c], cmap=DIVERGING, vmin=-m, vmax=m, interpolation="nearest")
            im = axes[1, c].imshow(post[c], cmap=DIVERGING, vmin=-m, vmax=m, interpolation="nearest")
            for r in (0, 1):
                axes[r, c].set_xticks([])
                axes[r, c].set_yticks([])
        axes[0, 0].set_ylabel("before", fontsize=8)
        axes[1, 0].set_ylabel("after", fontsize=8)
        fig.colorbar(im, ax=axes, fraction=0.03, pad=0.02)
    fig.suptitle(f"{heading}: {100 * zeros:.1f}% zeros after the ReLU", fontsize=10)
    return save(fig, path)


def filters(weight, heading, path):
    """Conv filters (F, C, kH, kW): a row per filter, a column per input
    channel, one diverging scale for the layer."""
    F, C = weight.shape[:2]
    m = float(np.abs(weight).max()) or 1.0
    fig, ax = plt.subplots(figsize=(C * 0.5 + 1.6, F * 0.5 + 0.8))
    im = show_mosaic(ax, weight, DIVERGING, -m, m, [str(f) for f in range(F)], [str(c) for c in range(C)])
    ax.set_xlabel("input channel", fontsize=8)
    ax.set_ylabel("filter", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    ax.set_title(heading, fontsize=9)
    return save(fig, path)


def class_overview(layer, means, counts, path):
    """Digits x channels: every class average of one layer. means: (10, C, H, W)
    or (10, D) for dense layers (drawn as a heat map)."""
    K = len(means)
    if means.ndim == 2:
        fig, ax = plt.subplots(figsize=(max(5.0, 0.12 * means.shape[1] + 2), 3.2))
        im = ax.imshow(means, aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set_yticks(range(K), [f"{k} (n={counts[k]})" for k in range(K)], fontsize=7)
        ax.set_xlabel("neuron")
        fig.colorbar(im, ax=ax)
        ax.set_title(f"{layer}: class averages", fontsize=9)
        return save(fig, path)
    C = means.shape[1]
    fig, ax = plt.subplots(figsize=(C * 0.75 + 1.8, K * 0.75 + 0.8))
    im = show_mosaic(ax, means, "viridis", float(means.min()), float(means.max()),
                     [f"{k} (n={counts[k]})" for k in range(K)], [str(c) for c in range(C)])
    ax.set_xlabel("channel", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
    ax.set_title(f"{layer}: class averages (rows: digits, columns: channels; one scale)", fontsize=9)
    return save(fig, path)


def sparsity(table, layers, path):
    """Heat map of the fraction of zeros: layers x classes, values printed."""
    fig, ax = plt.subplots(figsize=(7, 0.42 * len(layers) + 1.2))
    im = ax.imshow(table, cmap="magma", vmin=0, vmax=1, aspect="auto")
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            ax.text(j, i, f"{table[i, j]:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if table[i, j] < 0.6 else "black")
    ax.set_yticks(range(len(layers)), layers, fontsize=8)
    ax.set_xticks(range(table.shape[1]), [str(k) for k in range(table.shape[1])])
    ax.set_xlabel("class")
    fig.colorbar(im, ax=ax)
    ax.set_title("fraction of exact zeros per layer and class", fontsize=9)
    return save(fig, path)


def redundancy(layer, corr, pairs, path):
    fig, ax = plt.subplots(figsize=(4.6, 4))
    im = ax.imshow(corr, cmap=DIVERGING, vmin=-1, vmax=1)
    for i, j, _ in pairs:
        for a, b in ((i, j), (j, i)):
            ax.add_patch(plt.Rectangle((b - 0.5, a - 0.5), 1, 1, fill=False, ec="black", lw=1.2))
    ax.set_xlabel("channel")
    ax.set_ylabel("channel")
    fig.colorbar(im, ax=ax)
    flagged = ", ".join(f"{i}~{j}" for i, j, _ in pairs[:6]) or "none"
    ax.set_title(f"{layer}: correlation of class-averaged maps\nnear-duplicates (r >= 0.95): "
                 f"{flagged}", fontsize=8)
    return save(fig, path)


def selectivity(layer, index, preferred, path, silent=None):
    """Selectivity per neuron, sorted, coloured and labelled by preferred
    class; ``silent`` neurons (never active) are grey and labelled '-'."""
    silent = np.zeros(len(index), dtype=bool) if silent is None else np.asarray(silent)
    order = np.lexsort((silent, -index))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.13 * len(index) + 2), 2.8))
    colours = [OTHER_COLOUR if silent[n] else plt.cm.tab10(preferred[n] % 10) for n in order]
    ax.bar(np.arange(len(index)), index[order], color=colours)
    for x, n in enumerate(order):
        ax.text(x, index[n] + 0.01, "-" if silent[n] else str(preferred[n]), ha="center", fontsize=5)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("neuron, sorted (digit above: its preferred class; '-': never active)")
    ax.set_ylabel("selectivity index")
    ax.set_title(f"{layer}: class selectivity (mu_max - mu_rest) / (mu_max + mu_rest); "
                 f"{int(silent.sum())} of {len(index)} neurons never active", fontsize=9)
    return save(fig, path)


def class_average_maps(layer, digit, maps, count, path):
    """One digit's class average of one layer: channel panels or bars."""
    if maps.ndim == 1:
        return dense_bars(maps, f"{layer}: mean over {count} images of digit {digit}", path)
    return feature_maps(maps, f"{layer}-({digit}): mean over {count} images", path)



def dense_layers(values, heading, path, highlight=None):
    """Every dense layer of one image, a bar chart each, stacked; in the
    last (the logits) the true class ``highlight`` is red. values: {layer: (D,)}."""
    fig, axes = plt.subplots(len(values), 1, figsize=(8, 2.0 * len(values) + 0.4), squeeze=False)
    last = list(values)[-1]
    for ax, (layer, v) in zip(axes[:, 0], values.items()):
        mark = highlight if layer == last else None
        colours = [CLASS_COLOUR if i == mark else OTHER_COLOUR for i in range(len(v))]
        ax.bar(np.arange(len(v)), v, color=colours)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_ylabel(layer, fontsize=8)
        if layer == last:
            ax.set_xticks(np.arange(len(v)))
    fig.suptitle(heading, fontsize=10)
    fig.tight_layout()
    return save(fig, path)
