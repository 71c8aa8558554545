"""ImageNet class names ship with the package and print in predictions."""
import torch

from bridge.class_names import class_names, describe_top, imagenet_classes


def test_the_thousand_imagenet_names_in_torchvision_order():
    names = imagenet_classes()
    assert len(names) == 1000 and len(set(names)) == 1000
    # spot checks of torchvision's numbering, both ends and the middle
    assert (names[0], names[1], names[281], names[999]) == ("tench", "goldfish", "tabby", "toilet tissue")
    assert class_names("vgg16") is names and class_names("alexnet") is names
    assert class_names("lenet5") == tuple(f"digit {d}" for d in range(10))


def test_top_five_by_name_most_probable_first():
    probs = torch.zeros(1000)
    probs[[281, 282, 0, 7, 9, 12]] = torch.tensor([0.5, 0.2, 0.1, 0.08, 0.07, 0.05])
    assert describe_top(probs, "vgg16") == ("tabby (50.0%), tiger cat (20.0%), tench (10.0%), "
                                            "cock (8.0%), ostrich (7.0%)")
    assert describe_top(torch.tensor([0.1, 0.9]), "lenet5", k=1) == "digit 1 (90.0%)"
