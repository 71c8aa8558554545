"""Class names for the networks' outputs: ImageNet's 1,000 for AlexNet and
VGG16 (shipped as data, ``bridge/data/imagenet_classes.txt``, so that
predictions print as names without torchvision or a download), the digits
for the MNIST networks."""
from functools import lru_cache
from importlib import resources

IMAGENET_ARCHS = ("alexnet", "vgg16")


@lru_cache(maxsize=None)
def imagenet_classes():
    """The 1,000 ImageNet-1k names, index k = torchvision's class k."""
    text = resources.files("bridge").joinpath("data", "imagenet_classes.txt").read_text(encoding="utf-8")
    names = tuple(line for line in text.splitlines() if line and not line.startswith("#"))
    if len(names) != 1000:  # a damaged install, not a user error: say what is wrong
        raise RuntimeError(f"bridge/data/imagenet_classes.txt has {len(names)} names, expected 1000")
    return names


def class_names(arch):
    """The names of ``arch``'s output classes, in output order."""
    if arch in IMAGENET_ARCHS:
        return imagenet_classes()
    return tuple(f"digit {d}" for d in range(10))


def describe_top(probs, arch, k=5):
    """``"tabby (81.2%), tiger cat (9.0%), ..."``: the k most probable classes
    of one probability vector (a 1-D tensor or array), by name."""
    names = class_names(arch)
    order = sorted(range(len(probs)), key=lambda i: -float(probs[i]))[:k]
    return ", ".join(f"{names[i]} ({100 * float(probs[i]):.1f}%)" for i in order)
