"""``npcnn.functional``: the ops of a CNN, named and called as in
``torch.nn.functional``, on NumPy arrays.

Layouts are torch's: activations (N, C, H, W), conv weight (C_out,
C_in/groups, kH, kW), transposed-conv weight (C_in, C_out/groups, kH, kW),
linear weight (out, in). ``stride``, ``padding``, ``kernel_size`` and
``dilation`` take an int or an (h, w) pair (a one-element sequence is
both, as torch's convolutions and max_pool2d read it; torch's max_unpool2d
refuses one, npcnn's takes it as the others do).
The conv and pooling ops also take torch's unbatched (C, H, W) form: a batch
of one, whose axis the result drops again.
float32 and float64 in, the same dtype out.

Every op takes torch's arguments, with torch's defaults, in torch's
positional order (``F.max_pool2d(x, 3, 2, 1, 1, True)`` is dilation 1,
ceil_mode True here as there); npcnn's own arguments (``backend=``, ``out=``,
``reuse=``, ``rng=``) are keyword-only. The convolutions take ``dilation``
and ``groups`` (depthwise at groups = C_in, with its own kernel on the numba
backend), max-pooling takes ``dilation``, all as torch.

Every op takes ``backend="numba"`` (the default: jitted, parallel kernels in
``ops/*_numba.py``) or ``backend="numpy"`` (the readable reference in
``ops/*.py``, which is the specification). This module only checks and
normalises arguments, then hands them to one of the two.

Besides the forward ops there is the backward of each, ``*_backward``,
returning what torch's autograd would: the gradient with respect to each
input, given the gradient of the output.

Where npcnn differs from torch on purpose:
- ``max_pool2d`` returns ``(output, switches)`` by default, torch's
  ``return_indices=True``: the switches are what the deconvnet needs.
- ``conv2d_relu`` (no torch counterpart) is a conv followed by a ReLU in
  one pass, for forward passes that keep only the ReLU's output.
- ``max_unpool2d`` adds up values whose switches coincide (overlapping
  windows, kernel > stride): it is the adjoint of max-pooling, equal to
  torch's autograd gradient of ``max_pool2d``. ``torch.nn.functional.
  max_unpool2d`` keeps one of them instead; without overlap both agree.
- ``max_unpool2d`` and ``max_pool2d_backward`` take ``out=``, an array to
  write the result into, and ``max_pool2d_backward`` takes ``reuse=True``,
  a buffer kept from call to call (the deconvnet's unpooling).
- Every integer and shape argument is checked here, and refused (a
  ValueError naming the op and the argument) where torch refuses it. npcnn
  also refuses a few that torch lets through: an input without channels
  or, in an empty batch, without a plane; an adaptive pool's empty output or
  empty input plane; unpooling arguments that no ``max_pool2d`` accepts; a
  dilated max-pooling window with no input pixel in it (torch returns -inf
  and an index outside the input); a backward's whole ``input_size`` whose
  batch or channels are not the gradient's. ``tests/test_op_arguments.py``
  draws them against torch.
- ``linear`` takes a 2-D weight and a bias of shape (out,) only, where
  torch also broadcasts a bias of (1,) or (1, out), and a 1-D weight.
- An infinity in a convolution's input reaches the outputs it reaches in
  torch, but on the numba backend's Winograd paths (``conv_path``:
  "winograd", and the direct path's F(2, 5) rows) some of them are NaN
  where torch's direct sum gives +-inf: the transforms add the infinity
  with both signs. A NaN is NaN in both.
"""
import math

import numpy as np

from . import checks
from .ops.runtime import tuning, workspace
from .ops import activation, activation_numba, conv, conv_numba, linear as _linear
from .ops import linear_numba, pool, pool_numba

_BACKENDS = {
    "conv": {"numpy": conv, "numba": conv_numba},
    "pool": {"numpy": pool, "numba": pool_numba},
    "linear": {"numpy": _linear, "numba": linear_numba},
    "activation": {"numpy": activation, "numba": activation_numba},
}


def _impl(family, op, backend):
    return _BACKENDS[family][checks.backend(op, backend)]


# ----------------------------------------------------------------------------
# convolution


def _batch_of_one(op, name, a, unbatched):
    """torch's unbatched form: a (C, H, W) array is one image of a batch of
    one, (1, C, H, W); the op removes that axis from what it returns."""
    if not unbatched:
        return a
    return checks.array(op, name, a, ndim=3)[None]  # (1, C, H, W)


def _conv_args(op, input, weight, bias, stride, padding, groups, transposed, values=True):
    """The checked arguments ``(x, w, b, s, p, G)``; an unbatched (C, H, W)
    input comes back as (1, C, H, W). The weight is conv2d's (C_out,
    C_in/groups, kH, kW) or, ``transposed``, (C_in, C_out/groups, kH, kW).
    ``values=False`` checks shapes and arguments only, not that the weight
    is finite (``conv_path``: a question about shapes, which the deconvnet
    asks before every transposed conv, need not read every weight)."""
    x = checks.array(op, "input", input, ndim=(3, 4))
    x = x[None] if x.ndim == 3 else x  # (1, C, H, W)
    w = checks.array(op, "weight", weight, ndim=4, dtype=x.dtype)
    if values:
        checks.finite(op, "weight", w)
    G = checks.groups(op, groups)
    if w.shape[0] % G:
        what = "input channels (C_in)" if transposed else "filters (C_out)"
        raise ValueError(f"{op}: groups={G} must divide the weight's {w.shape[0]} {what} "
                         f"(input {x.shape}, weight {w.shape})")
    expected = w.shape[0] if transposed else w.shape[1] * G
    if expected != x.shape[1]:
        per_group = "/groups" if G > 1 else ""
        layout = f"(C_in, C_out{per_group}, kH, kW)" if transposed else f"(C_out, C_in{per_group}, kH, kW)"
        with_groups = f" with groups={G}" if G > 1 else ""
        raise ValueError(
            f"{op}: weight {layout}{with_groups} expects {expected} input channels but "
            f"input has {x.shape[1]} (input {x.shape}, weight {w.shape})")
    if 0 in w.shape:
        raise ValueError(f"{op}: weight {w.shape} is empty: it needs at least one filter, one "
                         f"channel and a 1x1 kernel (input {x.shape})")
    if 0 in x.shape[2:]:
        raise ValueError(f"{op}: input {x.shape} has an empty plane (weight {w.shape})")
    out_channels = w.shape[1] * G if transposed else w.shape[0]
    b = None
    if bias is not None:
        b = checks.array(op, "bias", bias, ndim=1, dtype=x.dtype)
        checks.finite(op, "bias", b)
        if b.shape != (out_channels,):
            with_groups = f" and groups={G}" if G > 1 else ""
            raise ValueError(f"{op}: bias must have shape ({out_channels},) to match "
                             f"weight {w.shape}{with_groups}, got {b.shape}")
    s = checks.positive(op, "stride", checks.pair(op, "stride", stride))
    p = checks.non_negative(op, "padding", checks.pair(op, "padding", padding))
    return x, w, b, s, p, G


def _conv2d_out_size(op, x, w, s, p, d):
    (H, W), (kH, kW) = x.shape[2:], w.shape[2:]
    eH, eW = d[0] * (kH - 1) + 1, d[1] * (kW - 1) + 1  # the dilated kernel's extent
    if eH > H + 2 * p[0] or eW > W + 2 * p[1]:
        spans = "" if d == (1, 1) else f" at dilation {d} spans {eH}x{eW} and"
        raise ValueError(f"{op}: kernel {kH}x{kW}{spans} is larger than the padded input "
                         f"{H + 2 * p[0]}x{W + 2 * p[1]} (input {x.shape}, weight {w.shape}, "
                         f"padding {p})")
    Ho, Wo = conv.conv_output_size(H, kH, s[0], p[0], d[0]), conv.conv_output_size(W, kW, s[1], p[1], d[1])
    # a padding of 2**31 or so: numpy's error, or the kernels' int64 sizes
    # overflowing, would not say which op or argument (torch fails allocating)
    if x.shape[0] * w.shape[0] * Ho * Wo * x.itemsize > checks.INT64_MAX:
        raise ValueError(f"{op}: the output {(x.shape[0], w.shape[0], Ho, Wo)} would take over 2**63 bytes "
                         f"(input {x.shape}, weight {w.shape}, padding {p})")
    return Ho, Wo


def _conv2d_args(op, input, weight, bias, stride, padding, dilation, groups, values=True):
    """conv2d's arguments checked, torch's ``padding="same"``/``"valid"``
    resolved: ``(x, w, b, s, p, d, G, extra)``. "valid" is padding 0; "same"
    (stride 1 only) pads dilation*(k - 1) in all, half before: an odd total
    puts the extra one after, at the bottom and right, as torch does. That
    ``extra`` (bottom, right) is added to ``x`` here, so both backends see a
    plain symmetric padding ``p``."""
    mode = padding if isinstance(padding, str) else None
    x, w, b, s, p, G = _conv_args(op, input, weight, bias, stride, 0 if mode else padding, groups, False,
                                  values)
    d = checks.dilation(op, dilation)
    extra = (0, 0)
    if mode == "same":
        if s != (1, 1):
            raise ValueError(f"{op}: padding='same' needs stride 1 (as torch), got stride {s}")
        total = (d[0] * (w.shape[2] - 1), d[1] * (w.shape[3] - 1))
        p, extra = (total[0] // 2, total[1] // 2), (total[0] % 2, total[1] % 2)
        if extra != (0, 0):
            x = np.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))  # (N, C, H + eH, W + eW)
    elif mode not in (None, "valid"):
        raise ValueError(f"{op}: padding must be an int, a pair of ints, 'same' or 'valid', "
                         f"got {padding!r}")
    _conv2d_out_size(op, x, w, s, p, d)
    return x, w, b, s, p, d, G, extra


def _check_grad(op, grad_output, expected_shape, dtype):
    g = checks.array(op, "grad_output", grad_output, dtype=dtype)
    if g.shape != tuple(expected_shape):
        raise ValueError(f"{op}: grad_output must have the forward output's shape "
                         f"{tuple(expected_shape)}, got {g.shape}")
    return g


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, backend="numba"):
    """2-D convolution (cross-correlation) of ``input`` with ``weight``.

        y[n,f,i,j] = b[f] + sum_{c<C_in/groups, p, q} xpad[n, g*C_in/groups + c, i*sH+p*dH, j*sW+q*dW] * w[f,c,p,q]

    with g = f // (C_out/groups) the group of filter f: groups split the
    channels into independent convolutions (groups = C_in is depthwise);
    dilation d puts the kernel's taps d pixels apart.

    Shape:
        input (N, C_in, H, W), weight (C_out, C_in/groups, kH, kW), bias (C_out,)
        -> (N, C_out, Ho, Wo),  Ho = (H + 2*padding - dilation*(kH - 1) - 1) // stride + 1

    ``padding`` may also be torch's "valid" (0) or "same" (stride 1; Ho = H,
    dilation*(k - 1) in all, an odd one at the bottom and right).

    >>> x = np.ones((1, 1, 4, 4)); w = np.ones((2, 1, 3, 3))
    >>> conv2d(x, w, padding=1)[0, 0]
    array([[4., 6., 6., 4.],
           [6., 9., 9., 6.],
           [6., 9., 9., 6.],
           [4., 6., 6., 4.]])
    """
    x, w, b, s, p, d, G, _ = _conv2d_args("conv2d", input, weight, bias, stride, padding, dilation, groups)
    y = _impl("conv", "conv2d", backend).conv2d(x, w, b, s, p, d, G)
    return y[0] if input.ndim == 3 else y


def conv2d_relu(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
                backend="numba"):
    """``relu(conv2d(input, weight, bias, stride, padding, dilation, groups))``
    in one pass over the output: the ReLU is applied as the convolution
    writes it. Not a torch function: a model's forward pass runs it for a
    conv followed by a ReLU when nothing keeps the conv's own output, so its
    errors name conv2d, the op the user's layer holds."""
    x, w, b, s, p, d, G, _ = _conv2d_args("conv2d", input, weight, bias, stride, padding, dilation, groups)
    y = _impl("conv", "conv2d", backend).conv2d_relu(x, w, b, s, p, d, G)
    return y[0] if input.ndim == 3 else y


def conv2d_backward(grad_output, input, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    backend="numba"):
    """Gradients of ``conv2d``: ``(grad_input, grad_weight, grad_bias)``.

        dx = conv_transpose2d(dy, w, stride, padding, groups=groups, dilation=dilation),
        dw[f,c,p,q] = sum_{n,i,j} dy[n,f,i,j] xpad[n, g*C_in/groups + c, i*sH+p*dH, j*sW+q*dW],
        db[f] = sum_{n,i,j} dy[n,f,i,j]
    """
    op = "conv2d_backward"
    x, w, _, s, p, d, G, extra = _conv2d_args(op, input, weight, None, stride, padding, dilation, groups)
    Ho, Wo = _conv2d_out_size(op, x, w, s, p, d)
    unbatched = input.ndim == 3
    g = _batch_of_one(op, "grad_output", grad_output, unbatched)
    g = _check_grad(op, g, (x.shape[0], w.shape[0], Ho, Wo), x.dtype)
    dx, dw, db = _impl("conv", op, backend).conv2d_backward(g, x, w, s, p, d, G)
    if extra != (0, 0):  # "same" padded x at the bottom and right: not the input's gradient
        dx = np.ascontiguousarray(dx[:, :, :x.shape[2] - extra[0], :x.shape[3] - extra[1]])
    return (dx[0] if unbatched else dx), dw, db


def _conv_transpose_args(op, input, weight, bias, stride, padding, output_padding, groups, dilation,
                         values=True):
    """conv_transpose2d's arguments checked: ``(x, w, b, s, p, op_hw, G, d,
    (Ho, Wo))``. output_padding must be smaller than the stride or the
    dilation, as torch's (either lengthens the output by whole pixels)."""
    x, w, b, s, p, G = _conv_args(op, input, weight, bias, stride, padding, groups, True, values)
    d = checks.dilation(op, dilation)
    op_hw = checks.non_negative(op, "output_padding", checks.pair(op, "output_padding", output_padding))
    # the output grows with these, and torch holds them in 32 bits
    for name, hw in (("stride", s), ("padding", p), ("output_padding", op_hw)):
        checks.int32(op, name, hw)
    if not all(op_hw[a] < s[a] or op_hw[a] < d[a] for a in (0, 1)):
        raise ValueError(f"{op}: output_padding {op_hw} must be smaller than stride {s} or "
                         f"dilation {d}")
    (H, W), (kH, kW) = x.shape[2:], w.shape[2:]
    Ho = conv.conv_transpose_output_size(H, kH, s[0], p[0], op_hw[0], d[0])
    Wo = conv.conv_transpose_output_size(W, kW, s[1], p[1], op_hw[1], d[1])
    if Ho < 1 or Wo < 1:
        raise ValueError(f"{op}: padding {p} leaves an empty output {Ho}x{Wo} "
                         f"(input {x.shape}, weight {w.shape}, stride {s}, dilation {d})")
    return x, w, b, s, p, op_hw, G, d, (Ho, Wo)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, backend="numba"):
    """2-D transposed convolution: the adjoint of ``conv2d`` in its input.

        yfull[n, g*Fg+f, i*sH+p*dH, j*sW+q*dW] += sum_{c<Cg} x[n, g*Cg+c, i, j] * w[g*Cg+c, f, p, q]
        y = crop(yfull) + b,       Cg = C_in/groups, Fg = C_out/groups

    Shape:
        input (N, C_in, H, W), weight (C_in, C_out/groups, kH, kW), bias (C_out,)
        -> (N, C_out, Ho, Wo),
        Ho = (H - 1)*stride - 2*padding + dilation*(kH - 1) + output_padding + 1

    torch's order: ``output_padding, groups, dilation``.
    """
    op = "conv_transpose2d"
    x, w, b, s, p, op_hw, G, d, _ = _conv_transpose_args(op, input, weight, bias, stride, padding,
                                                          output_padding, groups, dilation)
    y = _impl("conv", op, backend).conv_transpose2d(x, w, b, s, p, op_hw, G, d)
    return y[0] if input.ndim == 3 else y


def conv_transpose2d_backward(grad_output, input, weight, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, *, backend="numba"):
    """Gradients of ``conv_transpose2d``: ``(grad_input, grad_weight, grad_bias)``.

    grad_input is ``conv2d(grad_output, weight, None, stride, padding, dilation, groups)``.
    """
    op = "conv_transpose2d_backward"
    x, w, _, s, p, op_hw, G, d, (Ho, Wo) = _conv_transpose_args(op, input, weight, None, stride, padding,
                                                                output_padding, groups, dilation)
    unbatched = input.ndim == 3
    g = _batch_of_one(op, "grad_output", grad_output, unbatched)
    g = _check_grad(op, g, (x.shape[0], w.shape[1] * G, Ho, Wo), x.dtype)
    dx, dw, db = _impl("conv", op, backend).conv_transpose2d_backward(g, x, w, s, p, op_hw, G, d)
    return (dx[0] if unbatched else dx), dw, db


def conv_path(op, input, weight, stride=1, padding=0, dilation=1, groups=1, *, backend="numba"):
    """Which algorithm ``op`` ("conv2d" or "conv_transpose2d") runs for
    these arguments (not a torch function; after ``op``, conv2d's arguments
    without the bias, padding modes included): on the numba backend a path
    of the table in ``ops/conv_numba.py``, "direct", "winograd", "im2col",
    "depthwise", "flipped direct", "flipped im2col" or "col2im"; "reference"
    on numpy. The "direct" paths leave out each image's all-zero channels by
    themselves, which the deconvnet's sparse signals rely on."""
    if op not in ("conv2d", "conv_transpose2d"):
        raise ValueError(f"conv_path: op must be 'conv2d' or 'conv_transpose2d', got {op!r}")
    if op == "conv2d":
        x, w, _, s, p, d, G, _ = _conv2d_args(op, input, weight, None, stride, padding, dilation, groups,
                                              values=False)
    else:
        x, w, _, s, p, _, G, d, _ = _conv_transpose_args(op, input, weight, None, stride, padding, 0,
                                                          groups, dilation, values=False)
    if checks.backend(op, backend) == "numpy":
        return "reference"
    return conv_numba.path(op, x, w, s, p, d, G)


# ----------------------------------------------------------------------------
# pooling


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=True, *, backend="numba"):
    """Max-pooling that returns ``(output, switches)``; the output alone with
    ``return_indices=False`` (torch's default, and faster: no switches).

    The arguments and their order are torch's; only the default of
    ``return_indices`` differs (True here, False in torch), as the switches
    are what the deconvnet needs.

        y[n,c,i,j] = max_{p<kH, q<kW} xpad[n,c,i*sH+p*dH, j*sW+q*dW]      (xpad padded with -inf)

    ``switches[n,c,i,j]`` is the flat index ``h*W + w`` of that maximum in
    the unpadded input plane, int64, identical to torch's
    ``return_indices=True``; ties go to the first maximum in row-major window
    order.

    Shape:
        input (N, C, H, W) -> output and switches (N, C, Ho, Wo),
        Ho = (H + 2*padding - dilation*(kH - 1) - 1) // stride + 1, rounded
        up instead with ceil_mode (dropping a last window that would start in
        the padding). ``stride`` defaults to ``kernel_size``.

    npcnn refuses a dilation that leaves a window with every tap in the
    padding (an input smaller than the dilation), where torch returns -inf
    and an index outside the input.
    """
    op = "max_pool2d"
    d = checks.dilation(op, dilation)
    x = checks.array(op, "input", input, ndim=(3, 4))
    unbatched = x.ndim == 3
    x = x[None] if unbatched else x  # (1, C, H, W)
    checks.finite(op, "input", x)
    if 0 in x.shape[1:]:
        raise ValueError(f"{op}: input {x.shape} must have channels and a non-empty plane")
    k, s, p = _pool_args(op, kernel_size, stride, padding)
    ceil_mode = checks.boolean(op, "ceil_mode", ceil_mode)
    dilated = "" if d == (1, 1) else f" at dilation {d}"
    for axis, name in ((0, "height"), (1, "width")):
        size = x.shape[2 + axis]
        # ceil_mode keeps a window that starts in the input and overhangs it
        out = pool.pool_output_size(size, k[axis], s[axis], p[axis], ceil_mode, d[axis])
        if out < 1:
            raise ValueError(f"{op}: kernel_size {k}{dilated} is larger than the padded input "
                             f"{x.shape[2] + 2 * p[0]}x{x.shape[3] + 2 * p[1]} in {name} "
                             f"(input {x.shape}, stride {s}, padding {p}, ceil_mode {ceil_mode})")
        empty = pool.empty_windows(size, k[axis], s[axis], p[axis], d[axis], out)
        if empty:
            raise ValueError(f"{op}: dilation {d} leaves {empty} window(s) wholly in the padding "
                             f"in {name} (input {x.shape}, kernel_size {k}, stride {s}, padding {p})")
    impl = _impl("pool", op, backend)
    if return_indices:
        y, switches = impl.max_pool2d(x, k, s, p, bool(ceil_mode), d)
        return (y[0], switches[0]) if unbatched else (y, switches)
    y = impl.max_pool2d_values(x, k, s, p, bool(ceil_mode), d)
    return y[0] if unbatched else y


def _pool_args(op, kernel_size, stride, padding):
    k = checks.positive(op, "kernel_size", checks.pair(op, "kernel_size", kernel_size))
    s = checks.pool_stride(op, stride, k)
    p = checks.non_negative(op, "padding", checks.pair(op, "padding", padding))
    for name, hw in (("kernel_size", k), ("stride", s), ("padding", p)):
        checks.int32(op, name, hw)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{op}: padding {p} must be at most half of kernel_size {k}")
    return k, s, p


def _switches(op, input, indices, input_name="input"):
    """The pooled array and its switches, both (N, C, Hp, Wp); unbatched
    ones, (C, Hp, Wp), come back with a batch axis of one."""
    y = checks.array(op, input_name, input, ndim=(3, 4))
    if not isinstance(indices, np.ndarray) or indices.dtype != np.int64:
        got = indices.dtype if isinstance(indices, np.ndarray) else type(indices).__name__
        raise ValueError(f"{op}: indices (the switches) must be an int64 array, got {got}")
    if indices.shape != y.shape:
        raise ValueError(f"{op}: indices must have the shape of {input_name} {y.shape}, "
                         f"got {indices.shape}")
    if y.ndim == 3:
        return y[None], np.ascontiguousarray(indices)[None]  # (1, C, Hp, Wp)
    return y, np.ascontiguousarray(indices)


def _plane_size(op, name, size, ndim, leading=None):
    """(H, W) from ``size``, (H, W) or a whole shape of ``ndim`` dimensions,
    whose leading (N, C) or (C,) must then be ``leading`` where given (a
    backward's input size; unpooling's output_size ignores them, as torch)."""
    if isinstance(size, (tuple, list)) and len(size) in (2, ndim):
        hw = tuple(size)[-2:]
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in hw):
            if leading is not None and len(size) == ndim and tuple(size)[:-2] != tuple(leading):
                raise ValueError(f"{op}: {name} {tuple(size)} does not match the gradient's leading "
                                 f"dimensions {tuple(leading)}")
            return int(hw[0]), int(hw[1])
    raise ValueError(f"{op}: {name} must be (H, W) or a full (N, C, H, W) shape, got {size!r}")


def _check_out(op, out, shape, *inputs):
    """``out`` is None or a writeable C-contiguous array of ``shape`` and the
    inputs' dtype that overlaps none of them."""
    if out is None:
        return
    if not isinstance(out, np.ndarray):
        raise ValueError(f"{op}: out must be a numpy array, got {type(out).__name__}")
    if out.shape != tuple(shape) or out.dtype != inputs[0].dtype:
        raise ValueError(f"{op}: out must have shape {tuple(shape)} and dtype {inputs[0].dtype}, "
                         f"got shape {out.shape} and dtype {out.dtype}")
    if not (out.flags.c_contiguous and out.flags.writeable):
        raise ValueError(f"{op}: out must be C-contiguous and writeable (shape {out.shape})")
    if any(np.may_share_memory(out, a) for a in inputs):
        raise ValueError(f"{op}: out must not overlap the input or the indices (shape {out.shape})")


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                 out=None, backend="numba"):
    """Send every pooled value back to its switch; zeros elsewhere.

        x[n, c, s // Wo, s % Wo] += y[n,c,i,j]      with s = indices[n,c,i,j]

    Values whose switches coincide add up (overlapping windows): this is the
    adjoint of ``max_pool2d``, equal to torch's autograd gradient of
    max-pooling, where ``torch.nn.functional.max_unpool2d`` would keep only
    one. With non-overlapping windows the two are equal. An index outside
    the output plane (s < 0 or s >= Ho*Wo) is refused by name; the numba
    backend tests each as it scatters, so ``out`` is then partly written.

    Shape:
        input and indices (N, C, Hp, Wp) -> (N, C, Ho, Wo), with (Ho, Wo) =
        ``output_size`` if given (the pooled input's size: pass it whenever
        pooling did not tile), else Ho = (Hp - 1)*stride - 2*padding + kH.

    ``out`` (not in torch): a C-contiguous array of that shape and dtype to
    write the result into, which is returned; the deconvnet reuses one, as a
    fresh array of a few MB is page-faulted in on every call.
    """
    op = "max_unpool2d"
    y, idx = _switches(op, input, indices)
    # as torch: a batch's channels and plane (an unbatched input's plane) must not be empty
    if 0 in (y.shape[2:] if input.ndim == 3 else y.shape[1:]):
        raise ValueError(f"{op}: input {input.shape} must have channels and a non-empty plane")
    k, s, p = _pool_args(op, kernel_size, stride, padding)
    default = ((y.shape[2] - 1) * s[0] - 2 * p[0] + k[0], (y.shape[3] - 1) * s[1] - 2 * p[1] + k[1])
    if output_size is None:
        plane = default
    else:
        plane = _plane_size(op, "output_size", output_size, 4)
        # torch's rule: the sizes that pool to the input's size, with these arguments
        for axis in (0, 1):
            low, high = default[axis] - s[axis], default[axis] + s[axis]
            if not low < plane[axis] < high:
                raise ValueError(f"{op}: output_size {plane} must lie strictly between {low} and "
                                 f"{high} in {('height', 'width')[axis]}, the sizes a pooling with "
                                 f"kernel_size {k}, stride {s}, padding {p} maps to input {y.shape}")
    if input.ndim == 3:  # unbatched: out is (C, Ho, Wo), seen as (1, C, Ho, Wo)
        given = out
        out = out[None] if isinstance(out, np.ndarray) else out
        _check_out(op, out, y.shape[:2] + plane, y, idx)
        x = _impl("pool", op, backend).max_unpool2d(y, idx, plane, out, op)
        return given if given is not None else x[0]
    _check_out(op, out, y.shape[:2] + plane, y, idx)
    return _impl("pool", op, backend).max_unpool2d(y, idx, plane, out, op)


def max_pool2d_backward(grad_output, indices, input_size, *, out=None, reuse=False, backend="numba"):
    """Gradient of ``max_pool2d``: each gradient goes to its window's maximum.

    The same scatter-add as ``max_unpool2d``, into a plane of ``input_size``
    ((H, W) or the input's full shape); ``out`` as there.

    ``reuse=True`` (not in torch): write into a buffer this thread keeps
    from call to call, so that a walk that unpools on every call (the
    deconvnet) does not page-fault a fresh map in each time. The result is
    overwritten by the next such call: copy what must outlive it. A fresh
    array instead where ``grad_output`` lies in that buffer, or above
    ``tuning.REUSED_BUFFER_MAX_BYTES``, which the buffer would keep for good.
    """
    op = "max_pool2d_backward"
    g, idx = _switches(op, grad_output, indices, "grad_output")
    unbatched, given = grad_output.ndim == 3, out
    plane = _plane_size(op, "input_size", input_size, grad_output.ndim, grad_output.shape[:-2])
    if unbatched and isinstance(out, np.ndarray):
        out = out[None]  # (1, C, H, W)
    _check_out(op, out, g.shape[:2] + plane, g, idx)
    if reuse and out is None:
        out = _reused_buffer(op, g.shape[:2] + plane, g)
    dx = _impl("pool", op, backend).max_unpool2d(g, idx, plane, out, op)
    if unbatched:
        return given if given is not None else dx[0]
    return dx


def _reused_buffer(op, shape, input):
    """This thread's kept buffer for ``op``, shaped ``shape``; None (a
    fresh array) where ``input`` lies in it or it would be too large."""
    size = int(np.prod(shape))
    if size * input.itemsize > tuning.REUSED_BUFFER_MAX_BYTES or workspace.holds(op, input):
        return None
    return workspace.buffer(op, size, input.dtype).reshape(shape)


def _adaptive_size(op, output_size, input_hw):
    if isinstance(output_size, (int, np.integer)):
        output_size = (output_size, output_size)
    # a bare None, which torch refuses too, would be a size left out by mistake
    if not isinstance(output_size, (tuple, list)) or len(output_size) != 2:
        raise ValueError(f"{op}: output_size must be an int or an (H, W) pair (None in the pair keeps "
                         f"that axis's size), got {output_size!r}")
    # None keeps that dimension's input size, as in torch
    hw = tuple(int(input_hw[i]) if v is None else v for i, v in enumerate(output_size))
    # torch returns an empty output for a 0; npcnn refuses it, as no layer asks for one
    return checks.positive(op, "output_size", checks.pair(op, "output_size", hw))


def adaptive_avg_pool2d(input, output_size, *, backend="numba"):
    """Average-pool to a fixed output size.

        y[n,c,i,j] = mean(x[n, c, floor(i*H/Ho):ceil((i+1)*H/Ho), floor(j*W/Wo):ceil((j+1)*W/Wo)])

    Shape: input (N, C, H, W) -> (N, C, Ho, Wo), (Ho, Wo) = output_size;
    an int is (n, n), and None in the pair keeps the input's size on that
    axis.
    """
    op = "adaptive_avg_pool2d"
    x = checks.array(op, "input", input, ndim=(3, 4))
    unbatched = x.ndim == 3
    x = x[None] if unbatched else x  # (1, C, H, W)
    if 0 in x.shape[1:]:
        raise ValueError(f"{op}: input {x.shape} must have channels and a non-empty plane")
    size = _adaptive_size(op, output_size, x.shape[2:])
    y = _impl("pool", op, backend).adaptive_avg_pool2d(x, size)
    return y[0] if unbatched else y


def adaptive_avg_pool2d_backward(grad_output, input_size, *, backend="numba"):
    """Gradient of ``adaptive_avg_pool2d``: dy spread evenly over its window."""
    op = "adaptive_avg_pool2d_backward"
    g = checks.array(op, "grad_output", grad_output, ndim=(3, 4))
    plane = _plane_size(op, "input_size", input_size, g.ndim, g.shape[:-2])
    if g.ndim == 3:
        return _impl("pool", op, backend).adaptive_avg_pool2d_backward(g[None], plane)[0]
    return _impl("pool", op, backend).adaptive_avg_pool2d_backward(g, plane)


# ----------------------------------------------------------------------------
# dense layers, activations, reshapes


def linear(input, weight, bias=None, *, backend="numba"):
    """y = x W^T + b.

    Shape: input (*, in), weight (out, in), bias (out,) -> (*, out).
    """
    op = "linear"
    x = checks.array(op, "input", input, ndim=range(1, 33))
    # No finiteness check of the weight here: for a dense layer it costs as
    # much as the product itself (VGG16's fc6: 400 MB read twice). Models
    # check their weights once, when they are loaded.
    w = checks.array(op, "weight", weight, ndim=2, dtype=x.dtype)
    if w.shape[1] != x.shape[-1]:
        raise ValueError(f"{op}: weight (out, in) expects {w.shape[1]} input features but input "
                         f"has {x.shape[-1]} (input {x.shape}, weight {w.shape})")
    b = None
    if bias is not None:
        b = checks.array(op, "bias", bias, ndim=1, dtype=x.dtype)
        if b.shape != (w.shape[0],):
            raise ValueError(f"{op}: bias must have shape ({w.shape[0]},) to match weight "
                             f"{w.shape}, got {b.shape}")
    return _impl("linear", op, backend).linear(x, w, b)


def linear_backward(grad_output, input, weight, *, backend="numba"):
    """Gradients of ``linear``: ``(grad_input, grad_weight, grad_bias)``.

        dx = dy W,  dW = dy^T x,  db = sum of dy over all leading dimensions
    """
    op = "linear_backward"
    x = checks.array(op, "input", input, ndim=range(1, 33))
    w = checks.array(op, "weight", weight, ndim=2, dtype=x.dtype)
    if w.shape[1] != x.shape[-1]:
        raise ValueError(f"{op}: weight {w.shape} does not match input {x.shape}")
    g = _check_grad(op, grad_output, x.shape[:-1] + (w.shape[0],), x.dtype)
    return _impl("linear", op, backend).linear_backward(g, x, w)


def relu(input, inplace=False, *, backend="numba"):
    """y = max(x, 0), elementwise; any shape.

    ``inplace=True`` overwrites ``input`` (an ndarray) and returns it, as
    torch's: no new array, which spares allocating (and page-faulting in)
    one as large as the input.
    """
    x = checks.array("relu", "input", input)
    impl = _impl("activation", "relu", backend)
    if inplace and not input.flags.writeable:   # (torch tests inplace for truth: 1 and None pass)
        raise ValueError(f"relu: inplace=True needs a writeable input, got a read-only {input.shape} array")
    if not inplace:
        y = impl.relu(x)
        return y.reshape(()) if input.ndim == 0 else y  # checks.array made a 0-d input (1,)
    if x is input and x.flags.writeable:  # checks.array handed back the same, contiguous array
        return impl.relu(x, out=x)
    input[...] = impl.relu(x)  # a strided view: computed contiguous, then copied back
    return input


def relu_backward(grad_output, input, *, backend="numba"):
    """Gradient of ``relu``: dy where x > 0, else 0."""
    op = "relu_backward"
    x = checks.array(op, "input", input)
    g = _check_grad(op, grad_output, x.shape, x.dtype)
    dx = _impl("activation", op, backend).relu_backward(g, x)
    return dx.reshape(()) if input.ndim == 0 else dx  # checks.array made a 0-d input (1,)


def _softmax_dim(op, x, dim):
    if dim is None:  # torch's legacy implicit choice (it warns; we follow it)
        dim = 0 if x.ndim in (0, 1, 3) else 1
    dim = checks.integer(op, "dim", dim)
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"{op}: dim {dim} is out of range for input of shape {x.shape}")
    return dim % x.ndim


def _softmax_input(op, input, dtype):
    """torch's ``dtype=``: the input is cast to it before the op."""
    if dtype is not None:
        try:
            floating = isinstance(dtype, (type, np.dtype, str)) and np.dtype(dtype).type in checks.FLOAT_DTYPES
        except TypeError:   # a name numpy does not know
            floating = False
        if not floating:
            raise ValueError(f"{op}: dtype must be float32 or float64, got {dtype!r}")
        if not isinstance(input, np.ndarray):
            raise ValueError(f"{op}: input must be a numpy array, got {type(input).__name__}")
        input = input.astype(dtype, copy=False)
    # -inf is a masked element (exp(-inf) = 0), as in torch; NaN and +inf
    # make the whole row NaN
    return checks.finite(op, "input", checks.array(op, "input", input, ndim=range(0, 33)), masked=True)


def softmax(input, dim=None, _stacklevel=3, dtype=None, *, backend="numba"):
    """y_k = exp(x_k) / sum_j exp(x_j) along ``dim``; ``dtype`` casts the
    input first, as torch's (``_stacklevel`` is torch's, for its warning)."""
    x = _softmax_input("softmax", input, dtype)
    dim = _softmax_dim("softmax", x, dim)
    if x.size == 0:  # as torch: an empty input has an empty softmax (no sum to take)
        return np.empty_like(x)
    # a 0-d input is one element, as in torch (checks.array made it (1,)): softmax 1
    return _impl("activation", "softmax", backend).softmax(x, dim).reshape(np.shape(input))


def log_softmax(input, dim=None, _stacklevel=3, dtype=None, *, backend="numba"):
    """y_k = x_k - log(sum_j exp(x_j)) along ``dim``; ``dtype`` as softmax's."""
    op = "log_softmax"
    x = _softmax_input(op, input, dtype)
    dim = _softmax_dim(op, x, dim)
    if x.size == 0:  # as softmax's
        return np.empty_like(x)
    return _impl("activation", op, backend).log_softmax(x, dim).reshape(np.shape(input))


def softmax_backward(grad_output, output, dim, *, backend="numba"):
    """Gradient of ``softmax`` from its output y: dx = y * (dy - sum_k dy_k y_k)."""
    return _softmax_family_backward("softmax_backward", grad_output, output, dim, backend)


def log_softmax_backward(grad_output, output, dim, *, backend="numba"):
    """Gradient of ``log_softmax`` from its output y: dx = dy - exp(y) * sum_k dy_k."""
    return _softmax_family_backward("log_softmax_backward", grad_output, output, dim, backend)


def _softmax_family_backward(op, grad_output, output, dim, backend):
    """``op``'s arguments checked, then its kernel; a 0-d output (one
    element, which checks.array makes (1,)) gives a 0-d gradient, an empty
    one an empty gradient."""
    y = checks.array(op, "output", output, ndim=range(0, 33))
    scalar = np.ndim(output) == np.ndim(grad_output) == 0
    g = _check_grad(op, np.reshape(grad_output, y.shape) if scalar else grad_output, y.shape, y.dtype)
    dim = _softmax_dim(op, y, dim)
    if y.size == 0:
        return np.empty_like(y)
    return getattr(_impl("activation", op, backend), op)(g, y, dim).reshape(np.shape(output))


def dropout(input, p=0.5, training=True, inplace=False, *, rng=None, backend="numba"):
    """Zero elements with probability ``p`` and scale the rest by 1/(1-p) while
    training; the identity when ``training=False`` (inference, as in every
    npcnn model). ``rng``: a ``numpy.random.Generator`` (a fresh one if None).
    """
    op = "dropout"
    x = checks.array(op, "input", input)
    if not isinstance(p, (int, float, np.integer, np.floating)) or not 0 <= p <= 1:   # True is 1, as torch's
        raise ValueError(f"{op}: p must be a number in [0, 1], got {p!r}")
    # torch's C++ takes training as a bool only; inplace it tests for truth
    training, inplace = checks.boolean(op, "training", training), bool(inplace)
    if inplace and not input.flags.writeable:
        raise ValueError(f"{op}: inplace=True needs a writeable input, got a read-only {input.shape} array")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise ValueError(f"{op}: rng must be a numpy.random.Generator, got {type(rng).__name__}")
    rng = np.random.default_rng() if rng is None else rng
    y = _impl("activation", op, backend).dropout(x, p, training, rng)
    y = y.reshape(()) if input.ndim == 0 else y  # checks.array made a 0-d input (1,)
    if inplace:
        input[...] = y
        return input
    return y


def flatten(input, start_dim=0, end_dim=-1, *, backend="numba"):
    """Merge dimensions ``start_dim..end_dim`` into one (``torch.flatten``).

    A reshape, the same for both backends. Models flatten with start_dim=1
    to keep the batch dimension, as ``torch.nn.Flatten`` does.
    """
    op = "flatten"
    checks.backend(op, backend)
    if not isinstance(input, np.ndarray):
        raise ValueError(f"{op}: input must be a numpy array, got {type(input).__name__}")
    start_dim, end_dim = checks.integer(op, "start_dim", start_dim), checks.integer(op, "end_dim", end_dim)
    nd = max(input.ndim, 1)
    lo, hi = start_dim % nd, end_dim % nd
    if not (-nd <= start_dim < nd and -nd <= end_dim < nd) or lo > hi:
        raise ValueError(f"{op}: start_dim {start_dim} and end_dim {end_dim} do not select "
                         f"dimensions of input {input.shape}")
    # -1 cannot be resolved beside a 0 (an empty batch): the merged size is then written out
    merged = -1 if all(input.shape) else math.prod(input.shape[lo:hi + 1])
    return input.reshape(input.shape[:lo] + (merged,) + input.shape[hi + 1:])
