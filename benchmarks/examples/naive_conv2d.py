"""torch's conv2d as a sum over the kernel's offsets, in NumPy: the example
kernel of ``npcnn bench --kernel benchmarks/examples/naive_conv2d.py:conv2d --op conv2d``."""
import numpy as np


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    N, C, H, W = input.shape
    F, Cg, kH, kW = weight.shape                                   # Cg = C // groups
    if padding == "same":                                          # the odd row or column after, as torch
        th, tw = dh * (kH - 1), dw * (kW - 1)
        pads = ((th // 2, th - th // 2), (tw // 2, tw - tw // 2))
    else:
        ph, pw = pair(0 if padding == "valid" else padding)
        pads = ((ph, ph), (pw, pw))
    x = np.pad(input, ((0, 0), (0, 0), *pads))
    x = x.reshape(N, groups, Cg, *x.shape[2:])                     # (N, G, Cg, Hp, Wp)
    Ho = (x.shape[3] - dh * (kH - 1) - 1) // sh + 1
    Wo = (x.shape[4] - dw * (kW - 1) - 1) // sw + 1
    w = weight.reshape(groups, F // groups, Cg, kH, kW)            # (G, F/G, Cg, kH, kW)
    y = np.zeros((N, groups, F // groups, Ho, Wo), dtype=input.dtype)
    for p in range(kH):                                            # y += x shifted by (p, q) times w[..., p, q]
        for q in range(kW):
            rows, cols = slice(p * dh, p * dh + sh * (Ho - 1) + 1, sh), slice(q * dw, q * dw + sw * (Wo - 1) + 1, sw)
            y += np.einsum("ngchw,gfc->ngfhw", x[:, :, :, rows, cols], w[..., p, q], optimize=True)
    y = y.reshape(N, F, Ho, Wo)
    return y if bias is None else y + bias[:, None, None]
