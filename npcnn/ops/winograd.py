"""Winograd's F(2x2, 3x3) in NumPy: the readable reference of ``winograd_numba.py``.

A 3x3 stride-1 convolution computes each 2x2 tile of its output from a 4x4
tile d of the padded input. Per pair of channels, with g the 3x3 filter,

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* elementwise, on 4x4)

and the sum over input channels is taken on the 4x4 products, before A^T
(.) A (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
2016). It equals ``conv.conv2d`` at stride 1 up to rounding; the numba
kernel computes the same transforms row by row, in bands of tile rows.
Dimension letters as in ``conv.py``; th, tw output tiles down and across.
"""
import numpy as np

B_T = np.array([[1, 0, -1, 0],
                [0, 1, 1, 0],
                [0, -1, 1, 0],
                [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0],
              [0.5, 0.5, 0.5],
              [0.5, -0.5, 0.5],
              [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0],
                [0, 1, -1, -1]], dtype=np.float64)


def conv2d_3x3(x, weight, bias, padding):
    """``conv.conv2d(x, weight, bias, (1, 1), padding)`` for 3x3 filters.

    Inputs:
        x: (N, C, H, W);  weight: (F, C, 3, 3);  bias: (F,) or None
    Returns:
        y: (N, F, Ho, Wo),  Ho = H + 2*pH - 2,  Wo = W + 2*pW - 2
    """
    pH, pW = padding
    N, C, H, W = x.shape
    F = weight.shape[0]
    Ho, Wo = H + 2 * pH - 2, W + 2 * pW - 2
    th, tw = -(-Ho // 2), -(-Wo // 2)
    # zero padding, and below and right enough for a last tile cut in half
    xp = np.zeros((N, C, 2 * th + 2, 2 * tw + 2), dtype=x.dtype)
    xp[:, :, pH:pH + H, pW:pW + W] = x
    U = G @ weight @ G.T                                   # (F, C, 4, 4): the filters, transformed
    y = np.empty((N, F, 2 * th, 2 * tw), dtype=x.dtype)
    for i in range(th):
        for j in range(tw):
            d = xp[:, :, 2 * i:2 * i + 4, 2 * j:2 * j + 4]   # (N, C, 4, 4)
            V = B_T @ d @ B_T.T                            # (N, C, 4, 4): the tiles, transformed
            M = np.einsum("fcrs,ncrs->nfrs", U, V)         # (N, F, 4, 4): summed over c
            y[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2] = A_T @ M @ A_T.T   # (N, F, 2, 2)
    y = y[:, :, :Ho, :Wo]                                  # drop the half tiles
    if bias is not None:
        y = y + bias[:, None, None]
    return np.ascontiguousarray(y)
