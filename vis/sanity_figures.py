"""Figures of the sanity checks and faithfulness study (``npcnn sanity``).

    randomization_grid   the figure of Adebayo et al.: one image, a row per
                         method, a column per randomisation step
    metric_lines         one metric: mean similarity to the trained maps by
                         step, a line per method, the spread as a band; a
                         panel per mode (cascading, independent)
    similarity_bars      data randomisation: a panel per metric, a bar per method
    curves               deletion and insertion (or ROAD's MoRF and LeRF):
                         mean probability by step, a line per method

Maps are drawn signed (red +, blue -), each on its own scale: the question
is whether the pattern survives, not its strength.
"""
import numpy as np

from .common import DIVERGING, plt, save, show_image, show_mosaic, title

FLOOR = "random"      # drawn grey and dashed: the floor
ORACLE = "oracle"     # drawn black and dotted


def _unit(tile):
    m = float(np.abs(tile).max())
    return tile / m if m > 0 else tile


def randomization_grid(image, maps, methods, labels, column_labels, path, heading):
    """image (H, W) in display units; maps {method: [(H, W) per column]}."""
    tiles = np.stack([[_unit(np.asarray(t, dtype=np.float64)) for t in maps[m]] for m in methods])  # (R, K, H, W)
    R, K = tiles.shape[:2]
    # the labels of the rows take the left; the input sits on the right, level with the first rows
    width, height = 1.6 + 0.6 * K + 1.4, 0.6 * R + 1.2
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes([1.6 / width, 0.9 / height, 0.6 * K / width, 0.6 * R / height])
    show_mosaic(ax, tiles, DIVERGING, -1, 1, [labels[m] for m in methods], column_labels)
    ax.tick_params(axis="x", labelrotation=60)
    side = fig.add_axes([(1.8 + 0.6 * K) / width, (0.9 + 0.6 * R - 1.2) / height, 1.1 / width, 1.1 / height])
    show_image(side, image, "input")
    title(fig, heading)
    return save(fig, path)


# tab10 without its grey, which is the floor's: one colour per method, the same in every chart
PALETTE = [plt.get_cmap("tab10")(i) for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)]


def _line(ax, x, mean, std, method, label, colour):
    style = dict(color="0.5", linestyle="--") if method == FLOOR else \
        dict(color="black", linestyle=":") if method == ORACLE else dict(color=colour)
    (line,) = ax.plot(x, mean, marker="o", markersize=3, label=label, **style)
    if std is not None:
        ax.fill_between(x, np.subtract(mean, std), np.add(mean, std), color=line.get_color(), alpha=0.12)


def metric_lines(panels, methods, labels, metric_label, path, heading):
    """panels: [(panel title, step labels, {method: {"mean": [S], "std": [S]}})]."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0), squeeze=False)
    for ax, (panel, steps, values) in zip(axes[0], panels):
        x = np.arange(len(steps))
        for k, m in enumerate(methods):
            _line(ax, x, values[m]["mean"], values[m]["std"], m, labels[m], PALETTE[k % len(PALETTE)])
        ax.set_xticks(x, steps, rotation=45, fontsize=7)
        ax.set_title(panel, fontsize=9)
        ax.set_ylabel(metric_label, fontsize=8)
        ax.axhline(0, color="0.8", linewidth=0.6)
        ax.set_ylim(-1.05, 1.05)
    axes[0, -1].legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    title(fig, heading)
    return save(fig, path)


def similarity_bars(values, metrics, metric_labels, methods, labels, path, heading):
    """values {metric: {method: (mean, std)}}: a panel per metric, a bar per method."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.0 * len(metrics), 3.4), squeeze=False)
    y = np.arange(len(methods))
    for ax, metric in zip(axes[0], metrics):
        means = [values[metric][m][0] for m in methods]
        stds = [values[metric][m][1] for m in methods]
        colours = ["0.6" if m == FLOOR else "C0" for m in methods]
        ax.barh(y, means, xerr=stds, color=colours, error_kw=dict(lw=0.8))
        ax.set_yticks(y, [labels[m] for m in methods] if ax is axes[0, 0] else [], fontsize=7)
        ax.invert_yaxis()
        ax.axvline(0, color="black", linewidth=0.6)
        ax.set_xlim(-1, 1)
        ax.set_title(metric_labels[metric], fontsize=8)
    title(fig, heading)
    return save(fig, path)


def curves(panels, methods, labels, path, heading, xlabel):
    """panels: [(panel title, x values, {method: (mean (S,), area)})]: a line per method."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 3.8), squeeze=False)
    for ax, (panel, x, values) in zip(axes[0], panels):
        for k, m in enumerate(methods):
            if m in values:
                mean, area = values[m]
                _line(ax, x, mean, None, m, f"{labels[m]} ({area:.3f})", PALETTE[k % len(PALETTE)])
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel("p(class)", fontsize=8)
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=6, loc="best")
    title(fig, heading)
    return save(fig, path)
