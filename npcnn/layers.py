"""Layers: an op of ``npcnn.functional`` plus the parameters it owns.

Each class takes the constructor arguments of the torch module of the same
name, keeps its parameters as plain arrays in ``self.params`` (keys as in
torch's state_dict: ``weight``, ``bias``) and has ``forward(x, backend)``.
``MaxPool2d.forward`` returns ``(y, switches)`` (y alone with
``return_indices=False``); every other layer returns y.
"""
import numpy as np

from . import checks
from . import functional as F


class Layer:
    kind = ""
    params: dict

    def __init__(self):
        self.params = {}

    def forward(self, x, backend):
        raise TypeError(f"{type(self).__name__} must define forward")

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in self.arguments.items())
        return f"{type(self).__name__}({args})"


class Conv2d(Layer):
    """torch's ``nn.Conv2d``, in its argument order. With ``groups`` the
    input and output channels split into that many groups, each filtered
    only by its own: weight (C_out, C_in/groups, kH, kW), as torch's
    (groups = C_in is a depthwise conv). ``dilation`` spaces the kernel's
    taps that far apart. ``padding`` may be torch's "same" or "valid"."""
    kind = "conv2d"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, dtype=np.float32):
        super().__init__()
        kH, kW = (kernel_size, kernel_size) if np.isscalar(kernel_size) else tuple(kernel_size)
        groups = checks.groups("Conv2d", groups)  # the weight's shape depends on it
        for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
            if channels % groups:
                raise ValueError(f"Conv2d: {name} ({channels}) must be divisible by groups ({groups})")
        self.arguments = dict(in_channels=in_channels, out_channels=out_channels,
                              kernel_size=kernel_size, stride=stride, padding=padding,
                              dilation=dilation, groups=groups)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.params["weight"] = np.zeros((out_channels, in_channels // groups, kH, kW), dtype=dtype)
        if bias:
            self.params["bias"] = np.zeros(out_channels, dtype=dtype)

    @property
    def fan_in(self):
        """C_in/groups * kH * kW: the inputs one output unit sums, as torch's."""
        return int(np.prod(self.params["weight"].shape[1:]))

    def padding_sides(self):
        """``((top, left), (bottom, right))``: the rows and columns of zeros
        the conv adds before and after its input. Given as numbers, both
        sides alike; torch's "valid" is 0; "same" (stride 1) pads
        dilation * (k - 1) in all, half before and the odd one after, the
        rule of ``F.conv2d``."""
        if self.padding == "valid":
            return (0, 0), (0, 0)
        if self.padding != "same":
            p = checks.pair("Conv2d", "padding", self.padding)
            return p, p
        d = checks.pair("Conv2d", "dilation", self.dilation)
        total = [d[a] * (self.params["weight"].shape[2 + a] - 1) for a in (0, 1)]
        return (total[0] // 2, total[1] // 2), (total[0] - total[0] // 2, total[1] - total[1] // 2)

    def forward(self, x, backend, relu=False):
        """The conv's output; with ``relu``, the ReLU of it (F.conv2d_relu)."""
        op = F.conv2d_relu if relu else F.conv2d
        return op(x, self.params["weight"], self.params.get("bias"), self.stride, self.padding,
                  self.dilation, self.groups, backend=backend)


class Linear(Layer):
    kind = "linear"

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32):
        super().__init__()
        self.arguments = dict(in_features=in_features, out_features=out_features)
        self.params["weight"] = np.zeros((out_features, in_features), dtype=dtype)
        if bias:
            self.params["bias"] = np.zeros(out_features, dtype=dtype)

    @property
    def fan_in(self):
        return self.params["weight"].shape[1]

    def forward(self, x, backend):
        return F.linear(x, self.params["weight"], self.params.get("bias"), backend=backend)


class ReLU(Layer):
    kind = "relu"

    def __init__(self, inplace=False):
        super().__init__()
        self.arguments = {}  # inplace is torch's memory trick; npcnn never needs it

    def forward(self, x, backend):
        return F.relu(x, backend=backend)


class MaxPool2d(Layer):
    """torch's ``nn.MaxPool2d``, in its argument order. ``return_indices``
    is taken for that order only: a model's pools always record their
    switches (``forward(..., return_indices=True)``), the deconvnet's
    unpooling needs them."""
    kind = "max_pool2d"

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.arguments = dict(kernel_size=kernel_size, stride=stride, padding=padding,
                              dilation=dilation, ceil_mode=ceil_mode)

    def forward(self, x, backend, return_indices=True):
        return F.max_pool2d(x, **self.arguments, return_indices=return_indices, backend=backend)


class AdaptiveAvgPool2d(Layer):
    kind = "adaptive_avg_pool2d"

    def __init__(self, output_size):
        super().__init__()
        self.arguments = dict(output_size=output_size)

    def forward(self, x, backend):
        return F.adaptive_avg_pool2d(x, self.arguments["output_size"], backend=backend)


class Flatten(Layer):
    kind = "flatten"

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.arguments = dict(start_dim=start_dim, end_dim=end_dim)

    def forward(self, x, backend):
        return F.flatten(x, **self.arguments, backend=backend)


class Dropout(Layer):
    """Identity: npcnn models only run inference."""
    kind = "dropout"

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        self.arguments = dict(p=p)

    def forward(self, x, backend):
        return F.dropout(x, self.arguments["p"], training=False, backend=backend)


class LogSoftmax(Layer):
    kind = "log_softmax"

    def __init__(self, dim=None):
        super().__init__()
        self.arguments = dict(dim=dim)

    def forward(self, x, backend):
        return F.log_softmax(x, self.arguments["dim"], backend=backend)


class Softmax(LogSoftmax):
    kind = "softmax"

    def forward(self, x, backend):
        return F.softmax(x, self.arguments["dim"], backend=backend)


LAYERS = {cls.kind: cls for cls in (Conv2d, Linear, ReLU, MaxPool2d, AdaptiveAvgPool2d, Flatten,
                                    Dropout, LogSoftmax, Softmax)}


def make_layer(kind, arguments, dtype=np.float32):
    """A layer from a spec entry: ``make_layer("conv2d", {"in_channels": 1, ...})``."""
    try:
        cls = LAYERS[kind]
    except KeyError:
        raise ValueError(f"unknown layer kind {kind!r}; known: {', '.join(LAYERS)}") from None
    if cls in (Conv2d, Linear):
        return cls(**arguments, dtype=dtype)
    return cls(**arguments)
