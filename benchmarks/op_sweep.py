"""The hard cases of each op, on which ``npcnn bench --kernel`` judges a
user's kernel against npcnn's readable reference before it times it, and on
which ``tests/test_op_sweep.py`` proves that reference equal to torch.

Each case is one call in torch's form, ``op(*args, **kwargs)`` on NumPy
arrays: the things that break kernels (ties after a ReLU, overlapping
pools, padding, strides, dilation, groups, sizes that do not tile, bias
None, float32 and float64) and torch's argument forms (ints and pairs,
positional and keyword, padding "same" and "valid"). Inputs are batched
(N, C, H, W); ``max_pool2d`` is always called with ``return_indices=True``
and must return ``(output, indices)``; ``max_unpool2d``'s indices are those
of a real pooling, and where windows overlap they repeat, so values must
add up (npcnn's rule, autograd's; ``torch.nn.functional.max_unpool2d``
keeps one of them instead).

The arrays come from a generator seeded per op: the same cases in every run.
"""
from dataclasses import dataclass, field

import numpy as np

import npcnn.functional as F

OPS = ("conv2d", "conv_transpose2d", "max_pool2d", "max_unpool2d", "linear")
SEED = 2024


@dataclass(frozen=True)
class SweepCase:
    op: str
    name: str                                 # what makes it hard
    args: tuple                               # positional arguments, torch's order
    kwargs: dict = field(default_factory=dict)

    def call(self, fn):
        """``fn(*args, **kwargs)`` on copies of the arrays, so that a
        function that writes into its input spoils no other call."""
        copy = lambda v: v.copy() if isinstance(v, np.ndarray) else v  # noqa: E731
        return fn(*map(copy, self.args), **{k: copy(v) for k, v in self.kwargs.items()})

    def reference(self):
        """npcnn's readable reference (backend="numpy") on this case."""
        return self.call(lambda *a, **k: getattr(F, self.op)(*a, **k, backend="numpy"))

    def arrays(self):
        return [v for v in (*self.args, *self.kwargs.values()) if isinstance(v, np.ndarray)]

    def describe(self):
        """The call, with each array written as its dtype and shape."""
        show = lambda v: f"{v.dtype}{list(v.shape)}" if isinstance(v, np.ndarray) else repr(v)  # noqa: E731
        parts = [show(v) for v in self.args] + [f"{k}={show(v)}" for k, v in self.kwargs.items()]
        return f"{self.op}({', '.join(parts)})"


def _normal(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _relu(rng, shape, dtype):
    """A ReLU's output: about half the entries exactly 0, so most pooling
    windows of a sparse region tie."""
    return np.maximum(_normal(rng, shape, dtype), 0)


def _conv2d(rng):
    f64, f32 = np.float64, np.float32

    def xwb(N, C, H, W, Fo, kH, kW, groups=1, dtype=f64):  # weight (Fo, C/groups, kH, kW)
        return (_normal(rng, (N, C, H, W), dtype), _normal(rng, (Fo, C // groups, kH, kW), dtype),
                _normal(rng, (Fo,), dtype))

    c = []
    x, w, b = xwb(2, 3, 7, 7, 4, 3, 3)
    c.append(("3x3 kernel with bias, float64", (x, w, b), {}))
    x, w, _ = xwb(2, 3, 8, 9, 4, 3, 3, dtype=f32)
    c.append(("bias None, float32, 8x9 input", (x, w, None), {}))
    x, w, b = xwb(2, 3, 8, 9, 4, 3, 3)
    c.append(("stride 2, padding 1: 8x9 does not tile (positional)", (x, w, b, 2, 1), {}))
    x, w, b = xwb(2, 3, 9, 8, 5, 5, 3, dtype=f32)
    c.append(("pairs: 5x3 kernel, stride (2, 1), padding (1, 2)", (x, w), dict(bias=b, stride=(2, 1),
                                                                               padding=(1, 2))))
    x, w, b = xwb(1, 4, 10, 10, 5, 1, 1)
    c.append(("1x1 kernel, stride 3: the last row and column skipped", (x, w, b, 3), {}))
    x, w, b = xwb(2, 2, 5, 5, 3, 7, 7, dtype=f32)
    c.append(("7x7 kernel as large as the padded 5x5 input (padding 1)", (x, w, b, 1, 1), {}))
    x, w, b = xwb(2, 3, 6, 7, 4, 3, 3)
    c.append(("padding 'valid'", (x, w, b, 1, "valid"), {}))
    x, w, b = xwb(2, 3, 6, 7, 4, 4, 2, dtype=f32)
    c.append(("padding 'same', even 4x2 kernel: the odd row and column of padding at the bottom and right",
              (x, w, b), dict(padding="same")))
    x, w, b = xwb(2, 3, 9, 9, 4, 3, 3)
    c.append(("dilation 2, padding 2", (x, w, b, 1, 2, 2), {}))
    x, w, b = xwb(1, 2, 11, 12, 3, 3, 3, dtype=f32)
    c.append(("dilation (2, 3), stride 2, padding (2, 1): does not tile", (x, w, b),
              dict(stride=2, padding=(2, 1), dilation=(2, 3))))
    x, w, b = xwb(2, 3, 8, 8, 4, 3, 2)
    c.append(("padding 'same' with dilation 2 and an even kernel width", (x, w, b, 1, "same", 2), {}))
    x, w, b = xwb(2, 4, 6, 6, 6, 3, 3, groups=2)
    c.append(("groups 2: each half of the filters sees half of the channels", (x, w, b, 1, 1, 1, 2), {}))
    x, w, b = xwb(2, 3, 7, 7, 6, 3, 3, groups=3, dtype=f32)
    c.append(("depthwise: groups = 3 channels, 2 filters each, stride 2, padding 1",
              (x, w, b), dict(stride=2, padding=1, groups=3)))
    x, w, _ = xwb(1, 4, 9, 9, 4, 3, 3, groups=4, dtype=f32)
    c.append(("depthwise with dilation 2, bias None", (x, w, None, 1, 2, 2, 4), {}))
    x, w, b = xwb(2, 4, 7, 6, 4, 3, 3, groups=2)
    c.append(("every argument by keyword", (), dict(input=x, weight=w, bias=b, stride=(1, 2), padding=1,
                                                    dilation=1, groups=2)))
    x, w, b = xwb(1, 1, 5, 5, 1, 3, 3, dtype=f32)
    c.append(("one image, one channel, one filter", (x, w, b), {}))
    return c


def _conv_transpose2d(rng):
    f64, f32 = np.float64, np.float32

    def xwb(N, C, H, W, Fo, kH, kW, groups=1, dtype=f64):  # weight (C, Fo/groups, kH, kW)
        return (_normal(rng, (N, C, H, W), dtype), _normal(rng, (C, Fo // groups, kH, kW), dtype),
                _normal(rng, (Fo,), dtype))

    c = []
    x, w, b = xwb(2, 3, 5, 5, 4, 3, 3)
    c.append(("3x3 kernel with bias, float64", (x, w, b), {}))
    x, w, _ = xwb(2, 3, 5, 6, 4, 3, 3, dtype=f32)
    c.append(("stride 2, padding 1, bias None, float32", (x, w, None, 2, 1), {}))
    x, w, b = xwb(2, 3, 4, 5, 2, 3, 3)
    c.append(("stride 2, output_padding 1: the extra row and column", (x, w, b, 2, 1, 1), {}))
    x, w, b = xwb(1, 2, 4, 3, 3, 4, 3, dtype=f32)
    c.append(("pairs: 4x3 kernel, stride (2, 3), padding (1, 0), output_padding (1, 2)", (x, w, b),
              dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2))))
    x, w, b = xwb(2, 2, 3, 3, 3, 2, 2)
    c.append(("stride 3 past a 2x2 kernel: rows and columns of bias alone", (x, w, b, 3), {}))
    x, w, b = xwb(2, 4, 5, 5, 6, 3, 3, groups=2)
    c.append(("groups 2 (positional, torch's order: output_padding, groups, dilation)",
              (x, w, b, 1, 0, 0, 2), {}))
    x, w, b = xwb(2, 3, 5, 6, 4, 3, 3, dtype=f32)
    c.append(("dilation 2, padding 1", (x, w, b, 1, 1, 0, 1, 2), {}))
    x, w, b = xwb(1, 3, 4, 4, 3, 3, 3, groups=3)
    c.append(("depthwise: groups = 3 channels, stride 2, dilation 2, output_padding 1",
              (x, w, b), dict(stride=2, output_padding=1, groups=3, dilation=2)))
    x, w, _ = xwb(2, 2, 4, 5, 3, 3, 2, dtype=f32)
    c.append(("every argument by keyword", (), dict(input=x, weight=w, bias=None, stride=2, padding=(1, 0),
                                                    output_padding=(1, 0), groups=1, dilation=1)))
    return c


def _max_pool2d(rng):
    f64, f32 = np.float64, np.float32
    c = [
        ("2x2 after a ReLU: ties at zero, float32", (_relu(rng, (2, 3, 8, 8), f32), 2),
         dict(return_indices=True)),
        ("3x3 stride 2, overlapping windows, after a ReLU", (_relu(rng, (2, 3, 9, 9), f32), 3, 2),
         dict(return_indices=True)),
        ("3x3 stride 1, values in {0, 1, 2}: ties among the maxima",
         (rng.integers(0, 3, (2, 2, 7, 7)).astype(f64), 3, 1), dict(return_indices=True)),
        ("a constant plane: every window a tie", (np.ones((1, 2, 6, 6), f32), 2), dict(return_indices=True)),
        ("2x2 on 7x9: sizes that do not tile", (_normal(rng, (2, 3, 7, 9), f64), 2, 2),
         dict(return_indices=True)),
        ("3x3 stride 2 padding 1, all values negative: the padding never wins",
         (-np.abs(_normal(rng, (2, 2, 8, 7), f32)) - 0.5, 3, 2, 1), dict(return_indices=True)),
        ("ceil_mode: 2x2 on 7x7 keeps the window that overhangs (positional, torch's order)",
         (_normal(rng, (1, 2, 7, 7), f64), 2, 2, 0, 1, True, True), {}),
        ("ceil_mode, 3x3 stride 3 padding 1 on 5x5: the window that would start in the padding is dropped",
         (_normal(rng, (1, 2, 5, 5), f32), 3, 3, 1), dict(ceil_mode=True, return_indices=True)),
        ("pairs: kernel (3, 2), stride (2, 1), padding (1, 0)", (_relu(rng, (2, 2, 8, 7), f64),),
         dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), return_indices=True)),
        ("stride None: the kernel size", (_normal(rng, (2, 2, 9, 9), f32), 3, None),
         dict(return_indices=True)),
        ("dilation 2, stride 2, padding 1, after a ReLU", (_relu(rng, (2, 2, 10, 11), f32), 3, 2, 1, 2),
         dict(return_indices=True)),
        ("every argument by keyword", (), dict(input=_relu(rng, (2, 3, 7, 8), f64), kernel_size=2, stride=2,
                                               padding=1, dilation=1, ceil_mode=False, return_indices=True)),
    ]
    return c


def _max_unpool2d(rng):
    f64, f32 = np.float64, np.float32

    def pooled(x, *pool_args):  # npcnn's reference pooling: the values and their switches
        return F.max_pool2d(x, *pool_args, return_indices=True, backend="numpy")

    c = []
    y, i = pooled(_normal(rng, (2, 3, 8, 8), f32), 2)
    c.append(("2x2, non-overlapping, float32", (y, i, 2), {}))
    y, i = pooled(rng.integers(0, 3, (2, 2, 9, 9)).astype(f64), 3, 2)
    c.append(("3x3 stride 2, overlapping: repeated indices add up", (y, i, 3, 2), {}))
    y, i = pooled(_normal(rng, (2, 2, 7, 9), f64), 2, 2)
    c.append(("output_size (7, 9): the pooled 2x2 did not tile (positional)", (y, i, 2, 2, 0, (7, 9)), {}))
    y, i = pooled(_normal(rng, (2, 3, 7, 7), f32), 2, 2)
    c.append(("output_size as the full (N, C, H, W) shape", (y, i, 2), dict(output_size=(2, 3, 7, 7))))
    y, i = pooled(_relu(rng, (2, 2, 8, 7), f32), 3, 2, 1)
    c.append(("3x3 stride 2 padding 1 after a ReLU", (y, i, 3, 2, 1), dict(output_size=(8, 7))))
    y, i = pooled(_normal(rng, (1, 2, 6, 6), f64), 3)
    c.append(("stride None: the kernel size", (y, i, 3), {}))
    y, i = pooled(_normal(rng, (2, 2, 8, 7), f64), (3, 2), (2, 1), (1, 0))
    c.append(("pairs: kernel (3, 2), stride (2, 1), padding (1, 0), overlapping rows",
              (y, i), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), output_size=(8, 7))))
    y, i = pooled(_normal(rng, (2, 2, 6, 8), f32), 2)
    c.append(("every argument by keyword", (), dict(input=y, indices=i, kernel_size=2, stride=2, padding=0,
                                                    output_size=(6, 8))))
    return c


def _linear(rng):
    f64, f32 = np.float64, np.float32
    return [
        ("(4, 5) -> 3 with bias, float64", (_normal(rng, (4, 5), f64), _normal(rng, (3, 5), f64),
                                            _normal(rng, (3,), f64)), {}),
        ("bias None, float32", (_normal(rng, (6, 7), f32), _normal(rng, (2, 7), f32)), {}),
        ("1-D input (5,) -> (3,)", (_normal(rng, (5,), f64), _normal(rng, (3, 5), f64),
                                    _normal(rng, (3,), f64)), {}),
        ("3-D input (2, 3, 5): the leading axes kept", (_normal(rng, (2, 3, 5), f32),
                                                        _normal(rng, (4, 5), f32), _normal(rng, (4,), f32)), {}),
        ("one output feature", (_normal(rng, (3, 8), f64), _normal(rng, (1, 8), f64), _normal(rng, (1,), f64)),
         {}),
        ("every argument by keyword", (), dict(input=_normal(rng, (3, 4), f32), weight=_normal(rng, (2, 4), f32),
                                               bias=_normal(rng, (2,), f32))),
    ]


_BUILDERS = {"conv2d": _conv2d, "conv_transpose2d": _conv_transpose2d, "max_pool2d": _max_pool2d,
             "max_unpool2d": _max_unpool2d, "linear": _linear}


def sweep(op):
    """The cases of ``op``, the same in every run."""
    if op not in _BUILDERS:
        raise ValueError(f"op must be one of {', '.join(OPS)}, got {op!r}")
    rng = np.random.default_rng([SEED, OPS.index(op)])  # one stream per op: a new case moves no other op's
    return [SweepCase(op, name, args, kwargs) for name, args, kwargs in _BUILDERS[op](rng)]
