"""The figure of ``npcnn verify-deconv``: for the first failing case (or,
when every case is equal, the first case), one row per image (up to four):
the image, the user's projection, npcnn's, their difference and, when the
diagnosis found the mistake, npcnn's projection under that mistake.
Colour images and projections are summed over their channels."""
import numpy as np

from .common import plt, save, show_image, show_signed, title

MAX_ROWS = 4


def draw_verdict(result, path):
    """Write the figure of ``result`` (a CaseResult holding its arrays) to
    ``path``; returns the path, or None when the case has no arrays to show
    (its function raised, timed out or returned something unusable)."""
    if result.got is None:
        return None
    diagnosis = result.diagnosis
    columns = [("image", None), ("your projection", result.got), ("npcnn's projection", result.expected),
               ("yours - npcnn's", result.got.astype(np.float64) - result.expected)]
    if diagnosis is not None and diagnosis.matched:
        columns.append((f"npcnn with\n{_short(diagnosis.cause)}", diagnosis.closest))   # two lines: a panel's width
    rows = min(MAX_ROWS, len(result.x))
    fig, axes = plt.subplots(rows, len(columns), figsize=(1.9 * len(columns), 1.9 * rows + 0.6), squeeze=False)
    for n in range(rows):
        for k, (label, values) in enumerate(columns):
            heading = label if n == 0 else None
            if values is None:
                show_image(axes[n, k], result.x[n].sum(axis=0), heading)
            else:
                plane = values[n].sum(axis=0)
                scale = np.abs(plane).max()
                show_signed(axes[n, k], plane, f"{heading}\nmax |.| {scale:.2g}" if heading else f"max |.| {scale:.2g}")
    verdict = "equal" if result.passed else result.status
    error = "" if result.error is None else f", relative error {result.error:.2e}"
    call = f" ({result.probe})" if result.probe else ""
    title(fig, f"{result.name}{call}: {verdict}{error}", fontsize=8)
    return save(fig, path)


def _short(cause, keep=28):
    return cause if len(cause) <= keep else cause[:keep - 1] + "…"
