"""Judge anyone's deconvnet against npcnn's: ``bridge.verify.deconvnet``.

The contract: a function ``project(module, x, layer, channel, select)``
that takes a torch ``nn.Module`` with the layout of npcnn's twins
(``bridge.torch_model``: an ``nn.Sequential`` of named Conv2d, ReLU and
MaxPool2d layers), a batch ``x`` (an (N, C, H, W) tensor), a layer name, a
channel and ``"map"`` or ``"max"``, and returns the projection to pixels
(NumPy array or tensor) shaped like x::

    from bridge.verify import deconvnet
    verdict = deconvnet("mydeconv:project", model="lenet5")   # or the function itself
    verdict.passed, verdict.first_failure.diagnosis.cause
    write_report(verdict, "out/verify")                        # report.md, report.json

It lives on the torch side because the contract takes a torch module; the
engine ``npcnn`` never imports torch. ``npcnn verify-deconv`` runs it from
the command line.

    cases.py        the cases that break implementations, and the whole-network sweep
    wrong_rules.py  npcnn's deconvnet under the known wrong rules
    diagnosis.py    which wrong rule reproduces a wrong output
    runner.py       the user's function called with a time limit (a worker process)
    judge.py        the verdict, case by case
    report.py       Markdown and JSON
"""
from .judge import TOLERANCES, CaseResult, Verdict, deconvnet
from .report import write_report
from .wrong_rules import WRONG_RULES

__all__ = ["deconvnet", "write_report", "Verdict", "CaseResult", "WRONG_RULES", "TOLERANCES"]
