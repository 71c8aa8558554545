"""Row copies for the jitted kernels, as plain loops over 1-d arrays.

numba's slice assignment (``dst[:] = src``) has a set-up cost per call
that, for LeNet-5's 28-float rows, is more than the copy itself. These are
inlined where they are called.
"""
from numba import njit


def copy_row(dst, src):
    """dst[:] = src[:] (one length)."""
    for k in range(src.size):
        dst[k] = src[k]


def copy_relu(dst, src):
    """dst[:] = max(src[:], 0), NaN staying NaN (``activation.relu``); dst
    may be src."""
    for k in range(src.size):
        v = src[k]
        dst[k] = 0.0 if v <= 0 else v


def fill_row(dst, value):
    """dst[:] = value."""
    for k in range(dst.size):
        dst[k] = value


copy_row = njit(cache=True, inline="always")(copy_row)
copy_relu = njit(cache=True, inline="always")(copy_relu)
fill_row = njit(cache=True, inline="always")(fill_row)
