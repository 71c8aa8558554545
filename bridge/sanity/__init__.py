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

    steps = randomization.run(module, x, target, METHODS, Settings())
    table = randomization.similarity_table(steps)
"""
from . import faithfulness, methods, permuted, randomization, randomize

__all__ = ["faithfulness", "methods", "permuted", "randomization", "randomize"]
