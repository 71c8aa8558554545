"""The cases a deconvnet is judged on, each built to break a known mistake.

A case is a small network (a ``Spec``, the layout of npcnn's twins), its
weights, a batch of images and the projections asked of it (``Probe``s:
layer, channel, select). ``catches`` names the wrong rules of
``wrong_rules.WRONG_RULES`` whose projections the case tells apart from the
deconvnet's (tests/test_verify_deconv.py holds each to it).

    case                 built so that
    overlapping-pools    3x3 windows at stride 2 (AlexNet's) share switches: a
                         bright pixel is the maximum of several windows
    ties-after-relu      a negative bias leaves most windows all zero after the
                         ReLU, and the walk starts above the pool, so signal
                         reaches those tied windows
    pool-padding-ceil    a 3x3 pool, stride 2, padding 1, ceil_mode on 8x8: the
                         last window overhangs the input
    select-max-ties      the same pattern twice in the image: the map's strongest
                         unit is tied
    start-conv, start-relu, start-pool
                         every layer kind as the starting point, at both depths
    batch                four different images in one batch
    float32, float64     the same network and images in both dtypes

The ties cases use integer weights and images, so every sum is exact in any
order and a tie in npcnn's forward is a tie in any torch forward too. Their
kernels are 2x2: a 3x3 kernel may take a Winograd path whose fractions
round.

``network_cases`` adds the sweep: every map (or four per layer) of every
projectable layer of any spec (LeNet-5, SimpleCNN, the separable net, AlexNet, VGG16) on two images.
"""
from dataclasses import dataclass, field

import numpy as np

import npcnn
from npcnn import deconv
from npcnn.architectures import Spec, conv, get_spec, max_pool, relu

from ..train import TRAINABLE

SELECTIONS = ("map", "max")


@dataclass(frozen=True)
class Probe:
    """One call of the user's function: project ``channel`` of ``layer``."""
    layer: str
    channel: int
    select: str

    def __str__(self):
        return f"{self.layer}, channel {self.channel}, select={self.select!r}"


@dataclass(eq=False)
class Network:
    """A network to judge on: its layout and weights (NumPy, state_dict keys)."""
    key: str
    spec: Spec
    state: dict
    dtype: np.dtype = field(default=np.dtype(np.float32))
    _model: object = field(default=None, init=False, repr=False)

    def model(self):
        """npcnn's twin, with these weights (built once: VGG16's takes seconds)."""
        if self._model is None:
            self._model = npcnn.Model.from_spec(self.spec, dtype=self.dtype,
                                                initialise=False).load_state_dict(self.state)
        return self._model

    def __getstate__(self):   # sent to the worker without the npcnn model
        return {**vars(self), "_model": None}


@dataclass(eq=False)
class Case:
    name: str
    purpose: str
    network: Network
    x: np.ndarray                    # (N, C, H, W) in the network's dtype
    probes: tuple
    catches: tuple = ()


def standard_cases():
    """The cases that break implementations, small enough to run in seconds."""
    return [_overlapping_pools(), _ties_after_relu(), _pool_padding_ceil(), _select_max_ties(),
            *_starting_points(), _batch(), *_dtypes()]


def network_cases(arch, module=None, every_map=None, images=None):
    """The sweep: one case per projectable layer of ``arch``, every map of
    it (LeNet-5 and SimpleCNN; with ``every_map``, AlexNet and VGG16 too,
    else their first, second, middle and last) under both selections.

    ``module``: the torch twin with the weights to judge on (default: torch's
    initialisation, seed 0). ``images``: the batch (default: two MNIST
    test digits, or two random images of AlexNet's 67x67 / VGG16's 32x32,
    the smallest sizes their pools take). AlexNet and VGG16 run in float64:
    in float32 two forwards of random weights round differently enough to
    flip a near-tied switch now and then (tests/test_deconv.py), which would
    fail a correct implementation.
    """
    import torch   # the torch side makes the default weights

    from ..networks import torch_model
    spec = get_spec(arch)
    small = spec.name in TRAINABLE   # the MNIST networks
    dtype = np.dtype(np.float32 if small else np.float64)
    if module is None:
        torch.manual_seed(0)
        module = torch_model(spec.name)
    state = {k: v.detach().cpu().numpy().astype(dtype) for k, v in module.state_dict().items()}
    network = Network(f"{spec.name} {dtype.name}", spec, state, dtype)
    x = _sweep_images(spec, dtype) if images is None else np.asarray(images, dtype=dtype)
    model = network.model()
    shapes = model.output_shapes(x.shape)
    every = small if every_map is None else every_map
    cases = []
    for layer in deconv.projectable_layers(model):
        width = shapes[layer][1]
        channels = range(width) if every else sorted({0, 1, width // 2, width - 1})
        probes = tuple(Probe(layer, c, s) for s in SELECTIONS for c in channels)
        cases.append(Case(f"{spec.name} {layer}", f"the whole-network sweep: {len(channels)} maps of "
                          f"{layer} ({model.layers[layer].kind}), map and max", network, x, probes))
    return cases


def _sweep_images(spec, dtype):
    if spec.name in TRAINABLE:
        from npcnn.data import load_mnist, to_tensor
        digits = load_mnist("mnist5k", "test", verbose=False).images[:2]  # flat backgrounds: ties
        return to_tensor(digits, dtype=dtype)
    size = 67 if spec.name == "alexnet" else 32
    return np.random.default_rng(0).standard_normal((2, 3, size, size)).astype(dtype)


# -- the networks -------------------------------------------------------------------------


def _integer_network(key, spec, seed, bias):
    """Weights drawn from {-2, ..., 2} (each kernel checked to be asymmetric,
    so flipping it matters), biases ``bias[layer]``: every sum is exact."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, kind, arguments in spec.layers:
        if kind != "conv2d":
            continue
        k = arguments["kernel_size"]
        shape = (arguments["out_channels"], arguments["in_channels"], k, k)
        while True:
            w = rng.integers(-2, 3, size=shape).astype(np.float64)
            if all(np.any(kernel != kernel[::-1, ::-1]) for kernel in w.reshape(-1, k, k)):
                break
        state[f"{name}.weight"] = w
        state[f"{name}.bias"] = np.full(shape[0], float(bias[name]))
    return Network(key, spec, state, np.dtype(np.float64))


def _random_network(key, spec, seed, dtype):
    """torch's initialisation (uniform in +-1/sqrt(fan_in)), seeded."""
    model = npcnn.build(spec, dtype=np.float64, seed=seed)
    return Network(key, spec, {k: v.astype(dtype) for k, v in model.state_dict().items()}, np.dtype(dtype))


def _two_stage(name, input_size, pool, kernel=2, padding=0):
    """conv - ReLU - pool - conv - ReLU, two channels each."""
    return Spec(name, (1, input_size, input_size), (
        conv("conv_1", 1, 2, kernel, padding=padding), relu("relu_1"), pool,
        conv("conv_2", 2, 2, 2), relu("relu_2")))


SMALL_CNN = Spec("verify-small-cnn", (1, 12, 12), (
    conv("conv_1", 1, 3, 3, padding=1), relu("relu_1"), max_pool("pool_1", 2),    # (3, 6, 6)
    conv("conv_2", 3, 4, 3, padding=1), relu("relu_2"), max_pool("pool_2", 2)))   # (4, 3, 3)


def _strokes(n, size, seed):
    """Images like digits: zero background, a few bright strokes."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 1, size, size))
    for image in x[:, 0]:
        for _ in range(3):
            r, c = rng.integers(1, size - 4, size=2)
            if rng.random() < 0.5:
                image[r, c:c + 4] = rng.uniform(0.5, 1.5)
            else:
                image[r:r + 4, c] = rng.uniform(0.5, 1.5)
    return x


# -- the cases --------------------------------------------------------------------------


def _overlapping_pools():
    spec = _two_stage("verify-overlapping-pools", 9, max_pool("pool_1", 3, 2))   # pool_1: (2, 3, 3)
    network = _integer_network("overlapping-pools", spec, seed=3, bias={"conv_1": 0, "conv_2": 1})
    x = np.zeros((1, 1, 9, 9))
    x[0, 0, 3, 3], x[0, 0, 4, 5], x[0, 0, 6, 4] = 3, 2, 1   # each peak wins the windows around it
    probes = (Probe("pool_1", 0, "map"), Probe("pool_1", 1, "map"), Probe("relu_2", 0, "map"))
    return Case("overlapping-pools", "3x3 pools at stride 2 whose windows share switches", network, x,
                probes, catches=("overwriting unpool", "unflipped kernels"))


def _ties_after_relu():
    spec = _two_stage("verify-ties-after-relu", 9, max_pool("pool_1", 2))       # pool_1: (2, 4, 4)
    network = _integer_network("ties-after-relu", spec, seed=5, bias={"conv_1": -2, "conv_2": 1})
    x = np.zeros((1, 1, 9, 9))
    x[0, 0, 2, 1:7], x[0, 0, 3:8, 6] = 1, 2                                     # a "7"
    probes = (Probe("conv_2", 0, "map"), Probe("conv_2", 1, "map"))
    return Case("ties-after-relu", "all-zero pooling windows after a ReLU, reached from above", network, x,
                probes, catches=("last-maximum ties in pooling", "guided-backprop ReLU rule",
                                 "plain-gradient ReLU rule", "bias added", "bias subtracted"))


def _pool_padding_ceil():
    pool = ("pool_1", "max_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True))
    spec = _two_stage("verify-pool-padding-ceil", 8, pool, kernel=3, padding=1)  # pool_1: (2, 5, 5)
    network = _random_network("pool-padding-ceil", spec, seed=7, dtype=np.float64)
    x = np.random.default_rng(7).standard_normal((2, 1, 8, 8))
    probes = (Probe("pool_1", 0, "map"), Probe("relu_2", 1, "map"), Probe("relu_2", 0, "max"))
    return Case("pool-padding-ceil", "a pool with padding 1 and ceil_mode, its last window overhanging",
                network, x, probes, catches=("overwriting unpool", "unflipped kernels", "bias added"))


def _select_max_ties():
    spec = _two_stage("verify-select-max-ties", 8, max_pool("pool_1", 2))       # conv_1: (2, 7, 7)
    network = _integer_network("select-max-ties", spec, seed=11, bias={"conv_1": 0, "conv_2": 0})
    pattern = np.array([[2, 1], [0, 3]])
    x = np.zeros((1, 1, 8, 8))
    x[0, 0, 1:3, 1:3] = x[0, 0, 4:6, 5:7] = pattern                           # the same pattern twice
    probes = (Probe("conv_1", 0, "max"), Probe("relu_1", 1, "max"), Probe("pool_1", 0, "max"))
    return Case("select-max-ties", "select='max' on maps whose strongest unit is tied", network, x, probes,
                catches=("last-maximum ties in select='max'",))


def _starting_points():
    network = _random_network("small-cnn float32", SMALL_CNN, seed=13, dtype=np.float32)
    x = _strokes(2, 12, seed=13).astype(np.float32)
    kinds = {"conv": ("conv_1", "conv_2"), "relu": ("relu_1", "relu_2"), "pool": ("pool_1", "pool_2")}
    return [Case(f"start-{kind}", f"the walk starting at a {kind} layer, at both depths", network, x,
                 (Probe(low, 1, "map"), Probe(high, 2, "map"), Probe(high, 3, "max")),
                 catches=("unflipped kernels", "bias added", "plain-gradient ReLU rule"))
            for kind, (low, high) in kinds.items()]


def _batch():
    network = _random_network("small-cnn float32", SMALL_CNN, seed=13, dtype=np.float32)
    x = _strokes(4, 12, seed=17).astype(np.float32)
    return Case("batch", "four different images in one batch", network, x,
                (Probe("pool_2", 1, "map"), Probe("relu_2", 2, "max")), catches=("unflipped kernels",))


def _dtypes():
    x = _strokes(2, 12, seed=19)
    probes = (Probe("pool_2", 3, "map"), Probe("conv_2", 0, "max"))
    return [Case(dtype, f"the same network and images in {dtype}",
                 _random_network(f"small-cnn {dtype}", SMALL_CNN, seed=13, dtype=dtype),
                 x.astype(dtype), probes, catches=("unflipped kernels",))
            for dtype in ("float32", "float64")]
