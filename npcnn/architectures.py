"""The networks, as data.

A spec is an ordered list of ``(name, kind, arguments)``. ``kind`` names a
layer of ``npcnn.layers`` and its arguments are those of the torch module of
the same name (``nn.Conv2d(in_channels, out_channels, kernel_size, ...)``),
so one spec builds the npcnn model here and the torch twin in ``bridge``.

Layer names are the state_dict prefixes: our own for the MNIST networks
(``conv_1``, ``fc_1``), torchvision's module paths for AlexNet and VGG16
(``features.0``, ``classifier.6``), so torchvision's weight files load
as they are. Those two also get readable aliases (``conv5_3``, ``pool5``).
"""
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Spec:
    name: str
    input_shape: tuple          # (C, H, W) of one image
    layers: tuple               # ((name, kind, {arguments}), ...)
    aliases: dict = field(default_factory=dict)  # readable name -> layer name

    @property
    def layer_names(self):
        return [name for name, _, _ in self.layers]


def conv(name, c_in, c_out, k, stride=1, padding=0, dilation=1, groups=1):
    return (name, "conv2d", dict(in_channels=c_in, out_channels=c_out, kernel_size=k,
                                 stride=stride, padding=padding, dilation=dilation, groups=groups))


def relu(name):
    return (name, "relu", {})


def max_pool(name, k, stride=None):
    return (name, "max_pool2d", dict(kernel_size=k, stride=k if stride is None else stride))


def fc(name, n_in, n_out):
    return (name, "linear", dict(in_features=n_in, out_features=n_out))


def flatten(name="flatten"):
    return (name, "flatten", dict(start_dim=1))


SIMPLECNN = Spec("simplecnn", (1, 28, 28), (
    conv("conv_1", 1, 8, 3, padding=1),    # (8, 28, 28)
    relu("relu_1"),
    max_pool("max_pool_1", 2),             # (8, 14, 14)
    conv("conv_2", 8, 16, 3, padding=1),   # (16, 14, 14)
    relu("relu_2"),
    max_pool("max_pool_2", 2),             # (16, 7, 7)
    flatten(),                             # (784,)
    fc("fc_1", 16 * 7 * 7, 64),
    relu("relu_3"),
    fc("fc_2", 64, 10),
))

LENET5 = Spec("lenet5", (1, 28, 28), (
    conv("conv_1", 1, 6, 5, padding=2),    # (6, 28, 28)
    relu("relu_1"),
    max_pool("pool_1", 2),                 # (6, 14, 14)
    conv("conv_2", 6, 16, 5),              # (16, 10, 10)
    relu("relu_2"),
    max_pool("pool_2", 2),                 # (16, 5, 5)
    flatten(),                             # (400,)
    fc("fc_1", 16 * 5 * 5, 120),
    relu("relu_3"),
    fc("fc_2", 120, 84),
    relu("relu_4"),
    fc("fc_3", 84, 10),
    ("log_softmax", "log_softmax", dict(dim=1)),
))

# A depthwise-separable net in the manner of MobileNet (a per-channel 3x3,
# then a 1x1 that mixes the channels), its depthwise conv dilated as in
# DeepLab, and a ResNeXt-like grouped conv (4 groups of 8 -> 16 channels),
# dilated too and with stride 2, which drops the last row and column it
# cannot start a window on (14 -> 7): every conv shape that dilation and
# groups make, small enough to train on MNIST in seconds on a CPU.
# Dilation 2 with padding 2 keeps a 3x3's output the size of its input.
SEPARABLE = Spec("separable", (1, 28, 28), (
    conv("conv_1", 1, 16, 3, padding=1),                                    # (16, 28, 28)
    relu("relu_1"),
    max_pool("pool_1", 2),                                                  # (16, 14, 14)
    conv("depthwise_1", 16, 16, 3, padding=2, dilation=2, groups=16),       # (16, 14, 14)
    relu("relu_2"),
    conv("pointwise_1", 16, 32, 1),                                         # (32, 14, 14)
    relu("relu_3"),
    conv("grouped_2", 32, 64, 3, stride=2, padding=2, dilation=2, groups=4),  # (64, 7, 7)
    relu("relu_4"),
    flatten(),                                                              # (3136,)
    fc("fc_1", 64 * 7 * 7, 10),
))


def _alexnet():
    # torchvision.models.AlexNet: features.0..12, avgpool, classifier.0..6
    features = (
        conv("features.0", 3, 64, 11, stride=4, padding=2), relu("features.1"),
        max_pool("features.2", 3, 2),
        conv("features.3", 64, 192, 5, padding=2), relu("features.4"),
        max_pool("features.5", 3, 2),
        conv("features.6", 192, 384, 3, padding=1), relu("features.7"),
        conv("features.8", 384, 256, 3, padding=1), relu("features.9"),
        conv("features.10", 256, 256, 3, padding=1), relu("features.11"),
        max_pool("features.12", 3, 2),
    )
    classifier = (
        ("classifier.0", "dropout", dict(p=0.5)), fc("classifier.1", 256 * 6 * 6, 4096),
        relu("classifier.2"),
        ("classifier.3", "dropout", dict(p=0.5)), fc("classifier.4", 4096, 4096),
        relu("classifier.5"),
        fc("classifier.6", 4096, 1000),
    )
    aliases = {"conv1": "features.0", "relu1": "features.1", "pool1": "features.2",
               "conv2": "features.3", "relu2": "features.4", "pool2": "features.5",
               "conv3": "features.6", "relu3": "features.7", "conv4": "features.8",
               "relu4": "features.9", "conv5": "features.10", "relu5": "features.11",
               "pool5": "features.12", "fc6": "classifier.1", "relu6": "classifier.2",
               "fc7": "classifier.4", "relu7": "classifier.5", "fc8": "classifier.6"}
    layers = features + (("avgpool", "adaptive_avg_pool2d", dict(output_size=(6, 6))),
                         flatten()) + classifier
    return Spec("alexnet", (3, 224, 224), layers, aliases)


def _vgg16():
    # torchvision.models.vgg16 (configuration "D"): 13 conv3x3 + ReLU, 5 max-pools
    widths = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]
    layers, aliases, index, c_in = [], {}, 0, 3
    for block, block_widths in enumerate(widths, start=1):
        for k, c_out in enumerate(block_widths, start=1):
            layers += [conv(f"features.{index}", c_in, c_out, 3, padding=1),
                       relu(f"features.{index + 1}")]
            aliases[f"conv{block}_{k}"] = f"features.{index}"
            aliases[f"relu{block}_{k}"] = f"features.{index + 1}"
            index, c_in = index + 2, c_out
        layers.append(max_pool(f"features.{index}", 2))
        aliases[f"pool{block}"] = f"features.{index}"
        index += 1
    layers += [("avgpool", "adaptive_avg_pool2d", dict(output_size=(7, 7))), flatten(),
               fc("classifier.0", 512 * 7 * 7, 4096), relu("classifier.1"),
               ("classifier.2", "dropout", dict(p=0.5)),
               fc("classifier.3", 4096, 4096), relu("classifier.4"),
               ("classifier.5", "dropout", dict(p=0.5)),
               fc("classifier.6", 4096, 1000)]
    aliases.update({"fc6": "classifier.0", "relu6": "classifier.1", "fc7": "classifier.3",
                    "relu7": "classifier.4", "fc8": "classifier.6"})
    return Spec("vgg16", (3, 224, 224), tuple(layers), aliases)


ALEXNET = _alexnet()
VGG16 = _vgg16()

SPECS = {spec.name: spec for spec in (SIMPLECNN, LENET5, SEPARABLE, ALEXNET, VGG16)}


def get_spec(name):
    """The spec of ``"simplecnn" | "lenet5" | "separable" | "alexnet" | "vgg16"``."""
    try:
        return SPECS[name.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(SPECS)}") from None
