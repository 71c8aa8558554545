"""Max-pooling, unpooling and adaptive average pooling: the fast kernels.

Same functions and signatures as ``pool.py`` (the specification). Each
(n, c) plane is independent, so the outer loop is a parallel ``prange`` over
the N*C planes and every plane is written by one thread only.
"""
import numpy as np
from numba import njit, prange

from .runtime import tuning
from .runtime.jit import Kernel
from .pool import adaptive_bounds, check_switch_range, pool_output_size
from .runtime.rows import fill_row


def _first_tap(start, dilation):
    """The first tap start + p*dilation (p >= 0) that is >= 0."""
    return start if start >= 0 else start + ((-start + dilation - 1) // dilation) * dilation


def _max_pool_planes_py(x, kH, kW, sH, sW, pH, pW, dH, dW, Ho, Wo):
    """Every window's taps h0 + p*dH, w0 + q*dW that lie inside the image,
    in row-major order; functional.max_pool2d refuses windows without any."""
    N, C, H, W = x.shape
    y = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    switches = np.empty((N, C, Ho, Wo), dtype=np.int64)
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        plane = x[n, c]
        for i in range(Ho):
            h0 = i * sH - pH
            ha, hb = _first_tap(h0, dH), min(h0 + (kH - 1) * dH + 1, H)  # the window's rows inside
            for j in range(Wo):
                w0 = j * sW - pW
                wa, wb = _first_tap(w0, dW), min(w0 + (kW - 1) * dW + 1, W)
                # start from the window's first element (in the input's dtype:
                # no comparisons against a float64 -inf in a float32 loop)
                best = plane[ha, wa]
                arg = ha * W + wa
                for h in range(ha, hb, dH):                 # row-major window
                    for w in range(wa, wb, dW):
                        v = plane[h, w]
                        if v > best:                        # strict: first max wins
                            best = v
                            arg = h * W + w
                y[n, c, i, j] = best
                switches[n, c, i, j] = arg
    return y, switches


def _max_pool_2x2_planes_py(x, Ho, Wo):
    """``_max_pool_planes_py`` for the 2x2 window at stride 2 without padding
    (VGG16, LeNet-5, SimpleCNN): every window lies inside the image and has
    the same four taps, so the loop has no bounds to clip and LLVM turns it
    into vector code, which the general kernel's clipped loops are not. The taps are
    compared in row-major order with a strict ``>``, so ties go to the
    first, as in the general kernel and torch."""
    N, C, H, W = x.shape
    y = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    switches = np.empty((N, C, Ho, Wo), dtype=np.int64)
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for i in range(Ho):
            top, bottom = x[n, c, 2 * i], x[n, c, 2 * i + 1]
            y_row, switch_row = y[n, c, i], switches[n, c, i]
            base = 2 * i * W                                # flat index of the window's top-left
            for j in range(Wo):
                best, arg = top[2 * j], base + 2 * j
                v = top[2 * j + 1]
                if v > best:
                    best, arg = v, base + 2 * j + 1
                v = bottom[2 * j]
                if v > best:
                    best, arg = v, base + W + 2 * j
                v = bottom[2 * j + 1]
                if v > best:
                    best, arg = v, base + W + 2 * j + 1
                y_row[j] = best
                switch_row[j] = arg
    return y, switches


def _max_pool_2x2_values_py(x, Ho, Wo):
    """``_max_pool_2x2_planes_py`` without the switches: y alone, half the
    bytes written (the int64 switches are twice the size of float32 y)."""
    N, C, H, W = x.shape
    y = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for i in range(Ho):
            top, bottom = x[n, c, 2 * i], x[n, c, 2 * i + 1]
            y_row = y[n, c, i]
            for j in range(Wo):
                y_row[j] = max(max(top[2 * j], top[2 * j + 1]), max(bottom[2 * j], bottom[2 * j + 1]))
    return y


def _unpool_planes_py(y, switches, x):
    """x[n, c] = 0, then x[n, c, switches[n, c, i, j]] += y[n, c, i, j];
    x is (N, C, Ho*Wo), allocated by the caller (or the caller's ``out``).
    Returns how many switches lay outside the plane (those are skipped):
    the range is tested here, as each switch is read, rather than in a
    pass of its own over the switches before."""
    N, C, Hp, Wp = y.shape
    size = x.shape[2]
    outside = 0
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        plane = x[n, c]
        fill_row(plane, 0.0)
        for i in range(Hp):
            for j in range(Wp):
                s = switches[n, c, i, j]
                if 0 <= s < size:
                    plane[s] += y[n, c, i, j]  # adds up where windows overlap
                else:
                    outside += 1
    return outside


def _adaptive_avg_planes_py(x, h_bounds, w_bounds):
    N, C, H, W = x.shape
    Ho, Wo = h_bounds.shape[0], w_bounds.shape[0]
    y = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for i in range(Ho):
            h0, h1 = h_bounds[i, 0], h_bounds[i, 1]
            for j in range(Wo):
                w0, w1 = w_bounds[j, 0], w_bounds[j, 1]
                acc = 0.0
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        acc += x[n, c, h, w]
                y[n, c, i, j] = acc / ((h1 - h0) * (w1 - w0))
    return y


def _adaptive_avg_backward_planes_py(dy, h_bounds, w_bounds, H, W):
    N, C, Ho, Wo = dy.shape
    dx = np.zeros((N, C, H, W), dtype=dy.dtype)
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for i in range(Ho):
            h0, h1 = h_bounds[i, 0], h_bounds[i, 1]
            for j in range(Wo):
                w0, w1 = w_bounds[j, 0], w_bounds[j, 1]
                g = dy[n, c, i, j] / ((h1 - h0) * (w1 - w0))
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        dx[n, c, h, w] += g
    return dx


_first_tap = njit(cache=True, inline="always")(_first_tap)
_max_pool_planes = Kernel(_max_pool_planes_py, cost=tuning.COST_ELEMENTWISE)
_max_pool_2x2_planes = Kernel(_max_pool_2x2_planes_py, cost=tuning.COST_ELEMENTWISE)
_max_pool_2x2_values = Kernel(_max_pool_2x2_values_py, cost=tuning.COST_ELEMENTWISE)
_unpool_planes = Kernel(_unpool_planes_py, cost=tuning.COST_ELEMENTWISE)
_adaptive_avg_planes = Kernel(_adaptive_avg_planes_py)
_adaptive_avg_backward_planes = Kernel(_adaptive_avg_backward_planes_py)


def _output_size(x, kernel_size, stride, padding, ceil_mode, dilation):
    """(Ho, Wo), and whether the 2x2 stride-2 kernels apply: no padding, no
    dilation and no ceil_mode window past the edge."""
    (kH, kW), (sH, sW), (pH, pW), (dH, dW) = kernel_size, stride, padding, dilation
    Ho = pool_output_size(x.shape[2], kH, sH, pH, ceil_mode, dH)
    Wo = pool_output_size(x.shape[3], kW, sW, pW, ceil_mode, dW)
    two_by_two = ((kH, kW, sH, sW, pH, pW, dH, dW) == (2, 2, 2, 2, 0, 0, 1, 1)
                  and (Ho, Wo) == (x.shape[2] // 2, x.shape[3] // 2))
    return Ho, Wo, two_by_two


def max_pool2d(x, kernel_size, stride, padding, ceil_mode, dilation=(1, 1)):
    """See ``pool.max_pool2d``."""
    Ho, Wo, two_by_two = _output_size(x, kernel_size, stride, padding, ceil_mode, dilation)
    if two_by_two:
        return _max_pool_2x2_planes(x, Ho, Wo, work=x.size)
    return _max_pool_planes(x, *kernel_size, *stride, *padding, *dilation, Ho, Wo, work=x.size)


def max_pool2d_values(x, kernel_size, stride, padding, ceil_mode, dilation=(1, 1)):
    """See ``pool.max_pool2d_values``."""
    Ho, Wo, two_by_two = _output_size(x, kernel_size, stride, padding, ceil_mode, dilation)
    if two_by_two:
        return _max_pool_2x2_values(x, Ho, Wo, work=x.size)
    return max_pool2d(x, kernel_size, stride, padding, ceil_mode, dilation)[0]


def unpool_work(pooled_shape, output_size):
    """The elements an unpooling writes, the work that decides its threads:
    every pixel of the output plane (zeros included), not just the pooled
    values, which are a quarter of them after a 2x2 pool."""
    (N, C), (Ho, Wo) = pooled_shape[:2], output_size
    return N * C * Ho * Wo


def max_unpool2d(y, switches, output_size, out=None, op="max_unpool2d"):
    """See ``pool.max_unpool2d``. A switch outside the plane raises the same
    error, after the scatter (``out``, if given, is then partly written)."""
    (N, C), (Ho, Wo) = y.shape[:2], output_size
    x = np.empty((N, C, Ho, Wo), dtype=y.dtype) if out is None else out
    if _unpool_planes(y, switches, x.reshape(N, C, Ho * Wo), work=unpool_work(y.shape, output_size)):
        check_switch_range(op, switches, output_size)
    return x


def _bounds_array(size, out):
    return np.array(adaptive_bounds(size, out), dtype=np.int64).reshape(out, 2)


def adaptive_avg_pool2d(x, output_size):
    """See ``pool.adaptive_avg_pool2d``."""
    Ho, Wo = output_size
    return _adaptive_avg_planes(x, _bounds_array(x.shape[2], Ho), _bounds_array(x.shape[3], Wo),
                                work=x.size)


def adaptive_avg_pool2d_backward(grad_output, input_size):
    """See ``pool.adaptive_avg_pool2d_backward``."""
    H, W = input_size
    Ho, Wo = grad_output.shape[2:]
    return _adaptive_avg_backward_planes(grad_output, _bounds_array(H, Ho), _bounds_array(W, Wo), H, W,
                                         work=grad_output.shape[0] * grad_output.shape[1] * H * W)
