"""The whole study of one trained network on a set of test images, as
numbers: model randomisation, data randomisation (given the network
trained on permuted labels) and faithfulness; what ``npcnn sanity`` draws
and tabulates.

Images: N test images balanced over the classes (the first of each class
in test order, then the second of each, ...). Targets: the class the
trained network predicts for each image, for every map of every network.
"""
from dataclasses import dataclass, field

import numpy as np
import torch

from npcnn.sanity import road
from npcnn.sanity.baselines import replacement
from npcnn.sanity.curves import area
from npcnn.sanity.similarity import compare

from . import faithfulness, randomization
from .methods import METHODS, Settings, compute_all
from .randomize import MODES

ORACLE = "oracle"
PERMUTED_STEP = 1000   # the random map of the permuted-label network: a step number of its own


@dataclass(frozen=True)
class Config:
    methods: tuple = METHODS
    modes: tuple = MODES
    settings: Settings = field(default_factory=Settings)
    seed: int = 0
    replacement: str = "zero"          # npcnn.sanity.baselines.REPLACEMENTS
    mean: float = 0.0                  # the dataset's mean pixel in input units ("mean")
    blur_sigma: float = 2.0
    curve_steps: int = 28
    road_fractions: tuple = road.DEFAULT_FRACTIONS
    road_noise: float = road.DEFAULT_NOISE
    oracle: bool = True


def balanced_indices(labels, n):
    """The first n indices taking the classes in turn: the first image of each
    class in order, then the second of each, ... (a class that runs out is skipped)."""
    labels = np.asarray(labels)
    queues = [list(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    picked = []
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(int(q.pop(0)))
    return np.array(picked, dtype=np.int64)


def _mean_std(values):
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def predicted(module, x, batch_size=512):
    with torch.no_grad():
        return torch.cat([module(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def model_randomization(module, x, target, config, progress=None):
    """(numbers, run): {mode: {"steps": [labels], "similarity": summary}} and the maps of every step."""
    run = randomization.run(module, x, target, config.methods, config.settings, config.seed,
                            config.modes, progress)
    numbers = {}
    for mode in config.modes:
        similar = randomization.similarities(run["trained"], run[mode])
        numbers[mode] = {"steps": [s.label for s in run[mode]], "layers": [list(s.layers) for s in run[mode]],
                         "similarity": randomization.summary(similar)}
    return numbers, run


def data_randomization(permuted_module, x, target, trained_maps, config):
    """(numbers, maps): each method's maps of the permuted-label network
    against the trained network's, {metric: {method: {mean, std}}}."""
    seed = randomization.step_seed(config.seed, PERMUTED_STEP)
    maps = compute_all(permuted_module, x, target, config.methods, config.settings, seed)
    numbers = {}
    for method in config.methods:
        for metric, values in compare(trained_maps[method], maps[method]).items():
            numbers.setdefault(metric, {})[method] = _mean_std(values)
    return numbers, maps


def faithfulness_numbers(module, x, target, trained_maps, config, progress=None):
    """{"deletion"|"insertion": {method: {curve, auc_mean, auc_std}},
    "road_morf"|"road_lerf": {method: {curve, accuracy, mean, std}}}, oracle included for the curves."""
    xn = x.detach().cpu().numpy()
    t = target.cpu().numpy()
    s = config.settings
    rep = replacement(xn, config.replacement, black=s.black, mean=config.mean, sigma=config.blur_sigma)
    out = {"deletion": {}, "insertion": {}, "road_morf": {}, "road_lerf": {}}
    maps = dict(trained_maps)
    for method, m in maps.items():
        if progress:
            progress(f"faithfulness: {method}")
        found = faithfulness.deletion_insertion(module, xn, m, t, rep, config.curve_steps)
        for kind, curve in found.items():
            out[kind][method] = _curve(curve)
        ro = faithfulness.road_scores(module, xn, m, t, config.road_fractions, config.road_noise, config.seed)
        for order in road.ORDERS:
            out[f"road_{order}"][method] = {"curve": ro[order].mean(axis=0).tolist(),
                                            "accuracy": ro[f"{order}_accuracy"].mean(axis=0).tolist(),
                                            **_mean_std(ro[order].mean(axis=1))}
    if config.oracle:
        for kind in ("deletion", "insertion"):
            if progress:
                progress(f"faithfulness: the pixel oracle ({kind})")
            oracle = faithfulness.pixel_oracle(module, xn, t, rep, kind)
            curve = faithfulness.deletion_insertion(module, xn, oracle, t, rep, config.curve_steps)[kind]
            out[kind][ORACLE] = _curve(curve)
    return out


def _curve(curve):
    auc = area(curve)
    return {"curve": curve.mean(axis=0).tolist(), "auc_mean": float(auc.mean()), "auc_std": float(auc.std())}
