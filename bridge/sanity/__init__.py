"""Sanity checks and faithfulness of attribution maps, the torch side
(the measures themselves, which need no autograd, are ``npcnn.sanity``).

| module        | what                                                                 |
| ---           | ---                                                                  |
| randomize     | re-initialise layers with the architecture's own initialiser:       |
|               | cascading (from the logits down) and independent (one at a time)     |
| methods       | every method's map of a batch, (N, H, W), the deconvnet included    |
| randomization | the maps at every randomisation step and their similarity to the    |
|               | trained model's (Adebayo et al. 2018)                                |
| permuted      | a network trained on permuted labels (data randomisation)           |
| faithfulness  | deletion and insertion curves, ROAD, the pixel oracle               |
| study         | all of it on N test images, as the numbers ``npcnn sanity`` tables   |

    from bridge.sanity import methods, randomization
    run = randomization.run(module, x, target, methods.METHODS, methods.Settings())
    similar = randomization.similarities(run["trained"], run["cascading"])   # {metric: {method: (S, N)}}
    table = randomization.summary(similar)                                   # mean and std over the images
"""
from . import faithfulness, methods, permuted, randomization, randomize, study

__all__ = ["faithfulness", "methods", "permuted", "randomization", "randomize", "study"]
