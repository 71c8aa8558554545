"""Why a projection is wrong: which known mistake reproduces it.

The user's output is compared with npcnn's projection under each wrong rule
of ``wrong_rules.WRONG_RULES``, then under every pair of them (a deconvnet
can make two mistakes), and last with the right projection times a factor
(an output normalised for display). The first of these that agrees within
the case's tolerance names the cause.
"""
from dataclasses import dataclass, replace
from itertools import combinations

import numpy as np

from .wrong_rules import CORRECT, WRONG_RULES, walk


@dataclass
class Diagnosis:
    cause: str             # the wrong rule(s) that reproduce the output, or what was found instead
    advice: str            # what the mistake is and how to put it right
    matched: bool          # whether a known mistake reproduces the output
    closest: np.ndarray    # the projection of the cause (or the nearest rule), for the figure
    error: float           # the user's output against ``closest``, relative


def relative_error(got, expected):
    """max |got - expected| / the largest magnitude of either (0 when both are zero)."""
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    scale = max(np.abs(got).max(initial=0), np.abs(expected).max(initial=0))
    return 0.0 if scale == 0 else float(np.abs(got - expected).max() / scale)


def diagnose(model, acts, probe, got, expected, tolerance):
    """The Diagnosis of ``got``, the user's wrong projection for ``probe``;
    ``acts``: the full recording of the case's forward pass."""
    def project(rules):
        return walk(model, acts, probe.layer, probe.channel, probe.select, rules)

    singles = {name: project(rules) for name, (rules, _) in WRONG_RULES.items()}
    errors = {name: relative_error(got, p) for name, p in singles.items()}
    matches = [name for name, e in errors.items() if e <= tolerance]
    if matches:
        advice = "; or ".join(WRONG_RULES[name][1] for name in matches)
        cause = matches[0] if len(matches) == 1 else " or ".join(matches) + " (this case cannot tell them apart)"
        return Diagnosis(cause, advice, True, singles[matches[0]], errors[matches[0]])
    for a, b in combinations(WRONG_RULES, 2):
        both = _combined(WRONG_RULES[a][0], WRONG_RULES[b][0])
        if both is None:
            continue
        projection = project(both)
        e = relative_error(got, projection)
        if e <= tolerance:
            return Diagnosis(f"{a} and {b}", f"{WRONG_RULES[a][1]}; and {WRONG_RULES[b][1]}", True, projection, e)
    factor = float(np.vdot(got, expected) / np.vdot(expected, expected)) if np.any(expected) else 0.0
    if factor > 0 and relative_error(got, factor * expected) <= tolerance:
        return Diagnosis(f"the right projection times {factor:.4g}",
                         "the output is rescaled (normalised for display?); return the projection itself, "
                         "which has the activation's scale", True, factor * expected, 0.0)
    nearest = min(errors, key=errors.get)
    return Diagnosis("no known mistake reproduces it", f"the nearest is the {nearest} (relative error "
                     f"{errors[nearest]:.2e}); compare the projections in the figure", False,
                     singles[nearest], errors[nearest])


def _combined(first, second):
    """Rules with the wrong fields of both, or None when they change the same one."""
    changes = {k: v for k, v in vars(second).items() if v != getattr(CORRECT, k)}
    if any(getattr(first, k) != getattr(CORRECT, k) for k in changes):
        return None
    return replace(first, **changes)
