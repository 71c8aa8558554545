"""How close a reconstruction is to the original image: PSNR and SSIM, per
image, for torch tensors (N, C, H, W) in the same units (display units,
e.g. pixels in [0, 1], for numbers comparable between networks).

L is ``data_range``: the span of the pixel values (1 for [0, 1], 255 for
8-bit), the peak in PSNR and the scale of SSIM's stabilising constants.
"""
import torch
import torch.nn.functional as TF


def _check_pair(function, x, y):
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"{function}: x and y must have one shape (N, C, H, W); got x {tuple(x.shape)}, "
                         f"y {tuple(y.shape)}")


def psnr(x, y, data_range):
    """Peak signal-to-noise ratio in dB, per image (N,):

        MSE = mean_{c,i,j} (x[n,c,i,j] - y[n,c,i,j])^2,   PSNR = 10 log10(L^2 / MSE)

    +inf for identical images. A constant offset d gives 10 log10(L^2 / d^2).
    """
    _check_pair("psnr", x, y)
    mse = ((x - y) ** 2).mean(dim=(1, 2, 3))                    # (N,)
    return 10 * torch.log10(data_range ** 2 / mse)


def gaussian_window(window, sigma, dtype=torch.float64, device="cpu"):
    """The 1-D window g[k] = exp(-(k - r)^2 / (2 sigma^2)) / sum, k = 0..window-1,
    r = (window - 1) / 2; SSIM's 2-D window is its outer product."""
    k = torch.arange(window, dtype=dtype, device=device) - (window - 1) / 2
    g = torch.exp(-k ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def _local_mean(x, g):
    """G * x, the Gaussian-weighted mean over each window position, 'valid'
    (no padding): (N, C, H, W) -> (N, C, H - w + 1, W - w + 1). Separable:
    a column pass then a row pass, 2w multiplications per pixel instead of w^2."""
    C, w = x.shape[1], len(g)
    column = g.view(1, 1, w, 1).expand(C, 1, w, 1).contiguous()
    row = g.view(1, 1, 1, w).expand(C, 1, 1, w).contiguous()
    return TF.conv2d(TF.conv2d(x, column, groups=C), row, groups=C)


def ssim(x, y, data_range, window=11, sigma=1.5):
    """Structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004), per image (N,).

    With G the Gaussian window (``window`` taps, standard deviation ``sigma``)
    and * its 'valid' correlation, per channel:

        mu_x = G * x,   s_x^2 = G * x^2 - mu_x^2,   s_xy = G * (x y) - mu_x mu_y
        SSIM_map = (2 mu_x mu_y + C1) (2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1) (s_x^2 + s_y^2 + C2))
        C1 = (0.01 L)^2,  C2 = (0.03 L)^2

    and SSIM is the mean of the map over channels and positions. 1 for
    identical images, symmetric in x and y, <= 1. The same numbers as
    scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=L)``.
    """
    _check_pair("ssim", x, y)
    if min(x.shape[2:]) < window:
        raise ValueError(f"ssim: images {tuple(x.shape)} are smaller than the {window}x{window} window; "
                         f"pass a smaller odd window")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    g = gaussian_window(window, sigma, x.dtype, x.device)
    mu_x, mu_y = _local_mean(x, g), _local_mean(y, g)                # (N, C, H-w+1, W-w+1)
    var_x = _local_mean(x * x, g) - mu_x ** 2
    var_y = _local_mean(y * y, g) - mu_y ** 2
    cov = _local_mean(x * y, g) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return s.mean(dim=(1, 2, 3))

