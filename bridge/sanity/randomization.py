"""Model randomisation, run: every method's maps at every step of each mode
(``randomize``), and their similarity to the trained network's maps
(``npcnn.sanity.similarity``), per image; summarised as mean and standard
deviation over the images.

The target of every step is the same: the class the trained network
predicts for each image (given by the caller), so each step's map answers
the trained map's question. The random map is drawn afresh at each step
from (seed, step number): its similarity to the trained step's random map
is what two unrelated maps score, the floor of each metric.
"""
from dataclasses import dataclass

import numpy as np

from npcnn.sanity.similarity import METRICS, compare

from .methods import compute_all
from .randomize import MODES, randomized, steps


@dataclass
class Step:
    mode: str
    number: int          # cascading: 0 (trained) .. L; independent: 1 .. L
    label: str           # the layer randomised last ("trained" at cascading step 0)
    layers: tuple        # every layer re-initialised at this step
    maps: dict           # {method: (N, H, W)}


def step_seed(seed, number):
    """The random map's seed at step ``number`` (0: the trained network's)."""
    return int(np.random.SeedSequence([int(seed), int(number)]).generate_state(1)[0])


def run(module, x, target, names, settings, seed=0, modes=MODES, progress=None):
    """{"trained": {method: maps}, mode: [Step], ...}. ``progress(text)`` is
    called before each step. Cascading step 0 is computed on an untouched
    copy of the network, like every other step."""
    out = {}
    for mode in modes:
        out[mode] = []
        for k, (label, layers) in enumerate(steps(module, mode)):
            number = k if mode == "cascading" else k + 1
            if progress:
                progress(f"{mode} {number}: {label}")
            net = randomized(module, layers, seed)
            out[mode].append(Step(mode, number, label, layers,
                                  compute_all(net, x, target, names, settings, step_seed(seed, number))))
    if "cascading" in out:
        out["trained"] = out["cascading"][0].maps
    else:
        out["trained"] = compute_all(module, x, target, names, settings, step_seed(seed, 0))
    return out


def similarities(reference, steps_):
    """{metric: {method: (S, N)}}: each step's maps against the reference maps."""
    found = {metric: {} for metric in METRICS}
    for method, ref in reference.items():
        per_step = [compare(ref, step.maps[method]) for step in steps_]
        for metric in METRICS:
            found[metric][method] = np.stack([scores[metric] for scores in per_step])
    return found


def summary(similar):
    """{metric: {method: {"mean": [S], "std": [S]}}} over the images (the std over the images, ddof 0)."""
    return {metric: {method: {"mean": values.mean(axis=1).tolist(), "std": values.std(axis=1).tolist()}
                     for method, values in by_method.items()}
            for metric, by_method in similar.items()}
