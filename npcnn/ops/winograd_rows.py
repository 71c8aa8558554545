"""Winograd's F(2, r) along the rows, in NumPy: the readable reference of
``winograd_rows_numba.py``.

Two neighbouring outputs of one row of a stride-1 convolution,

    y[j]   = d[j]   g[0] + ... + d[j+r-1] g[r-1]
    y[j+1] = d[j+1] g[0] + ... + d[j+r]   g[r-1],

take 2r multiplications as written, and r + 1 by Toom-Cook's method: the
r + 1 inputs d of the pair and the r taps g of a filter row are each
mapped to r + 1 values, those are multiplied one by one, and the r + 1
products are mapped back to the two outputs:

    (y[j], y[j+1]) = A^T [ (G g) * (B^T d) ]        (* elementwise)

For a 5-wide filter (LeNet-5's) that is 6 multiplications for 10. The
input map B^T d is shared by every filter and the output map A^T by every
input channel and filter row, so a convolution with a few channels and
filters spends most of its time in the products, which 5 taps across
make 40 % fewer. Where ``winograd.py`` transforms 2-D tiles of a 3x3
filter, this transforms 1 x (r + 1) strips of any filter of 2 to 5 taps
across, and sums over the filter's rows directly. The numba kernel writes
the transforms out for 5 taps (LeNet-5's filters) only.

The three matrices come from evaluating polynomials at r + 1 points
(0, 1, -1, 2, -2 and "infinity", the leading coefficient), as Lavin &
Gray ("Fast Algorithms for Convolutional Neural Networks", 2016) derive
F(2, 3): the correlation is the transpose of a linear convolution
c = g * u, which is evaluation at the points (Vg g, Vu u), a product and
interpolation V^-1, so A^T = Vu^T, G = Vg and B^T = (V^-1)^T. Each row of
B^T is scaled to whole numbers and the same row of G by the inverse.

Output size (stride 1): Ho = H + 2*pH - kH + 1, Wo = W + 2*pW - kW + 1,
in tw = ceil(Wo / 2) pairs per row, the last cut in half when Wo is odd.
Dimension letters as in ``conv.py``.
"""
import functools
import math
from fractions import Fraction

import numpy as np

POINTS = (0, 1, -1, 2, -2)   # the finite points; "infinity" is the last
MAX_TAPS = len(POINTS)       # kW + 1 points: filters of 2 to 5 taps across


def _vandermonde(columns, rows):
    """rows x columns: row k holds point k's powers 0 .. columns - 1; the
    last row ("infinity") picks a polynomial's leading coefficient."""
    finite = [[Fraction(p) ** j for j in range(columns)] for p in POINTS[:rows - 1]]
    return finite + [[Fraction(int(j == columns - 1)) for j in range(columns)]]


def _inverse(M):
    """The inverse of a square matrix of Fractions, exactly (Gauss-Jordan)."""
    n = len(M)
    A = [row[:] + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(M)]
    for c in range(n):
        pivot = next(r for r in range(c, n) if A[r][c] != 0)
        A[c], A[pivot] = A[pivot], A[c]
        A[c] = [v / A[c][c] for v in A[c]]
        for r in range(n):
            if r != c and A[r][c] != 0:
                A[r] = [a - A[r][c] * b for a, b in zip(A[r], A[c])]
    return [row[n:] for row in A]


@functools.lru_cache(maxsize=None)
def transforms(r):
    """(B^T (r+1, r+1), G (r+1, r), A^T (2, r+1)), float64 and read-only,
    for F(2, r): (y0, y1) = A^T [(G g) * (B^T d)] for a filter row g of r
    taps and r + 1 inputs d."""
    if not 2 <= r <= MAX_TAPS:
        raise ValueError(f"winograd_rows: filters of 2 to {MAX_TAPS} taps across, got {r}")
    alpha = r + 1
    B_T = [list(column) for column in zip(*_inverse(_vandermonde(alpha, alpha)))]
    G = _vandermonde(r, alpha)
    A_T = [list(column) for column in zip(*_vandermonde(2, alpha))]
    for k in range(alpha):               # B^T's rows in whole numbers, G's rows divided to match
        scale = math.lcm(*(v.denominator for v in B_T[k]))
        B_T[k] = [v * scale for v in B_T[k]]
        G[k] = [v / scale for v in G[k]]
    arrays = tuple(np.array(M, dtype=np.float64) for M in (B_T, G, A_T))
    for a in arrays:
        a.flags.writeable = False
    return arrays


def conv2d_rows(x, weight, bias, padding):
    """``conv.conv2d(x, weight, bias, (1, 1), padding)`` by F(2, kW) along
    the rows, for filters of 2 to 5 taps across.

    Inputs:
        x: (N, C, H, W);  weight: (F, C, kH, kW);  bias: (F,) or None
    Returns:
        y: (N, F, Ho, Wo)
    """
    pH, pW = padding
    N, C, H, W = x.shape
    F, _, kH, kW = weight.shape
    B_T, G, A_T = transforms(kW)
    alpha = kW + 1
    Ho, Wo = H + 2 * pH - kH + 1, W + 2 * pW - kW + 1
    tw = -(-Wo // 2)
    # zero padding, and on the right enough for a last pair cut in half
    xp = np.zeros((N, C, H + 2 * pH, 2 * tw + kW - 1), dtype=np.float64)
    xp[:, :, pH:pH + H, pW:pW + W] = x
    d = np.lib.stride_tricks.sliding_window_view(xp, alpha, axis=3)[:, :, :, ::2]  # (N, C, Hp, tw, alpha)
    V = d @ B_T.T                                    # the strips, transformed
    U = weight @ G.T                                 # (F, C, kH, alpha): the filter rows, transformed
    M = np.zeros((N, F, Ho, tw, alpha))
    for p in range(kH):                              # filter row p meets input rows i + p
        M += np.einsum("fca,ncija->nfija", U[:, :, p], V[:, :, p:p + Ho])
    y = (M @ A_T.T).reshape(N, F, Ho, 2 * tw)[..., :Wo]   # pairs back to outputs; the half pair dropped
    if bias is not None:
        y = y + bias[:, None, None]
    return np.ascontiguousarray(y.astype(x.dtype))
