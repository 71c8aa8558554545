"""SSIM of two maps (Wang, Bovik, Sheikh & Simoncelli 2004), per map pair,
in NumPy; the same formula as ``bridge.quality.ssim`` (which is checked
against scikit-image), for (N, H, W) maps:

    mu_a = G * a,   s_a^2 = G * a^2 - mu_a^2,   s_ab = G * (a b) - mu_a mu_b
    SSIM = mean_ij (2 mu_a mu_b + C1)(2 s_ab + C2) / ((mu_a^2 + mu_b^2 + C1)(s_a^2 + s_b^2 + C2))
    C1 = (0.01 L)^2,  C2 = (0.03 L)^2

with G a Gaussian window (``window`` taps, ``sigma``) and * its 'valid'
correlation. 1 for identical maps (the constants keep even two zero maps
at 1), symmetric, <= 1.
"""
import numpy as np


def gaussian_window(window, sigma):
    """g[k] = exp(-(k - r)^2 / (2 sigma^2)) / sum, k = 0..window-1, r = (window - 1) / 2."""
    k = np.arange(window, dtype=np.float64) - (window - 1) / 2
    g = np.exp(-k ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def local_mean(x, g):
    """G * x, 'valid', separable: (N, H, W) -> (N, H - w + 1, W - w + 1)."""
    w = len(g)
    H, W = x.shape[1:]
    cols = sum(g[k] * x[:, k:H - w + 1 + k, :] for k in range(w))      # (N, H-w+1, W)
    return sum(g[k] * cols[:, :, k:W - w + 1 + k] for k in range(w))   # (N, H-w+1, W-w+1)


def ssim(a, b, data_range=1.0, window=11, sigma=1.5):
    """SSIM of each pair a[n], b[n] (N, H, W), in float64. Returns (N,).
    Maps smaller than the window are compared with the largest odd window that fits."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"ssim: maps must have one shape (N, H, W); got {a.shape} and {b.shape}")
    fit = min(a.shape[1:])
    window = min(window, fit if fit % 2 else fit - 1)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    g = gaussian_window(window, sigma)
    mu_a, mu_b = local_mean(a, g), local_mean(b, g)
    var_a = local_mean(a * a, g) - mu_a ** 2
    var_b = local_mean(b * b, g) - mu_b ** 2
    cov = local_mean(a * b, g) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return s.mean(axis=(1, 2))
