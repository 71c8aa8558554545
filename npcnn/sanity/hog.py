"""Histograms of oriented gradients (Dalal & Triggs 2005) of maps, and the
similarity of two maps as the Pearson correlation of their HOG features
(the measure of Adebayo et al. 2018): two maps with the same edges in the
same places score near 1, whatever their contrast.

For each map m (H, W):

    gx[i, j] = m[i, j+1] - m[i, j-1],   gy[i, j] = m[i+1, j] - m[i-1, j]   (0 on the border)
    r = sqrt(gx^2 + gy^2),   theta = atan2(gy, gx) mod 180 degrees (unsigned)
    h[cell, b] = 1/c^2 sum_{pixels of the cell with theta in bin b} r       (B bins of 180/B degrees)
    block v = the 2x2 cells' histograms, 4B values;  v / sqrt(|v|^2 + eps^2)  (L2)

over cells of c x c pixels (the rows and columns that do not fill a cell
are left out) and blocks of 2x2 cells, one cell apart. The features are
every block's normalised vector, (N, (H/c - 1)(W/c - 1) 4B).
"""
import numpy as np

from .ranks import pearson

BINS = 9
EPS = 1e-5


def default_cell(shape):
    """4-pixel cells for maps up to 64 pixels a side (MNIST: 7 x 7 cells), 8 above (ImageNet)."""
    return 4 if max(shape) <= 64 else 8


def gradients(maps):
    """Central differences (gx, gy), each (N, H, W), 0 on the border."""
    m = np.asarray(maps, dtype=np.float64)
    gx, gy = np.zeros_like(m), np.zeros_like(m)
    gx[:, :, 1:-1] = m[:, :, 2:] - m[:, :, :-2]
    gy[:, 1:-1, :] = m[:, 2:, :] - m[:, :-2, :]
    return gx, gy


def cell_histograms(maps, cell, bins=BINS):
    """(N, H//c, W//c, B): each cell's gradient magnitude per orientation bin, over c^2."""
    gx, gy = gradients(maps)
    N, H, W = gx.shape
    rows, cols = H // cell, W // cell
    if rows < 2 or cols < 2:
        raise ValueError(f"hog: maps of {H}x{W} hold fewer than 2x2 cells of {cell} pixels")
    magnitude = np.hypot(gx, gy)[:, :rows * cell, :cols * cell]
    theta = np.degrees(np.arctan2(gy, gx)) % 180.0
    b = np.minimum((theta / (180.0 / bins)).astype(np.int64), bins - 1)[:, :rows * cell, :cols * cell]
    hist = np.zeros((N, rows, cols, bins))
    cell_of_row = np.arange(rows * cell) // cell                         # (rows*c,)
    cell_of_col = np.arange(cols * cell) // cell
    n = np.arange(N)[:, None, None]
    np.add.at(hist, (n, cell_of_row[None, :, None], cell_of_col[None, None, :], b), magnitude)
    return hist / cell ** 2


def features(maps, cell=None, bins=BINS):
    """HOG features (N, F) of maps (N, H, W): every 2x2 block of cells, L2-normalised."""
    maps = np.asarray(maps, dtype=np.float64)
    cell = cell or default_cell(maps.shape[1:])
    h = cell_histograms(maps, cell, bins)                                 # (N, R, K, B)
    blocks = np.concatenate([h[:, :-1, :-1], h[:, :-1, 1:], h[:, 1:, :-1], h[:, 1:, 1:]], axis=3)  # (N, R-1, K-1, 4B)
    norm = np.sqrt((blocks ** 2).sum(axis=3, keepdims=True) + EPS ** 2)
    return (blocks / norm).reshape(len(maps), -1)


def hog_similarity(a, b, cell=None, bins=BINS):
    """Pearson's correlation of the HOG features of each pair a[n], b[n] (N, H, W). Returns (N,);
    a constant map has features all 0: 0 against any other map, 1 against another constant one."""
    return pearson(features(a, cell, bins), features(b, cell, bins))
