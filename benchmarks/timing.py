"""Timing that can be trusted: validate first, discard warm-up calls (the JIT
compile among them), then the median of repeats."""
import statistics
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Result:
    case: str
    group: str               # "op" or "pipeline"
    flops: float             # floating-point operations of one call (0: not counted)
    ms: dict = field(default_factory=dict)   # implementation -> median milliseconds
    max_rel_diff: float = 0.0                # npcnn vs torch, checked before timing
    note: str = ""
    bytes: float = 0.0       # bytes a call must read + write at the least (traffic.py; 0: not counted)

    def gflops(self, impl):
        return self.flops / (self.ms[impl] * 1e6) if self.flops and impl in self.ms else None

    def gbps(self, impl):
        return self.bytes / (self.ms[impl] * 1e6) if self.bytes and impl in self.ms else None

    def ratio(self, impl="npcnn-numba", base="torch"):
        if impl in self.ms and base in self.ms and self.ms[base] > 0:
            return self.ms[impl] / self.ms[base]
        return None


# numpy's OpenBLAS keeps its worker threads busy-waiting for about 0.12 s
# after each threaded call (measured: 0.07 s of CPU burnt in the 0.2 s that
# follow a LeNet-5 forward at batch 500 that ended 0.05 s earlier, none from
# 0.15 s on). A library timed within that window shares the cores with the
# spinning thread: torch's LeNet-5 forward at batch 500 took 47-54 ms right
# after npcnn's, 16-22 ms with OPENBLAS_NUM_THREADS=1. Torch's OpenMP threads
# spin briefly too. So each implementation's timing starts once the process
# burns no CPU while it sleeps: its other threads are asleep too.
SETTLE_WINDOW_S = 0.02
SETTLE_MAX_S = 0.3


def settle():
    """Sleep until the other library's idle threads have gone to sleep: a
    ``SETTLE_WINDOW_S`` sleep in which the whole process burns (almost) no
    CPU, for at most ``SETTLE_MAX_S``. After a block that woke no spinning
    threads this is one window, after BLAS's products about 0.15 s."""
    deadline = time.perf_counter() + SETTLE_MAX_S
    while time.perf_counter() < deadline:
        cpu = time.process_time()  # every thread of the process
        time.sleep(SETTLE_WINDOW_S)
        if time.process_time() - cpu < 0.1 * SETTLE_WINDOW_S:
            return


def call_times(fn, repeats=5, warmup=1, budget_s=None, at_least=3, span_s=0.0):
    """Wall times of ``fn()`` in seconds after ``warmup`` discarded calls.
    With ``budget_s``, fewer repeats when one call is slow (``at_least``);
    with ``span_s``, more when the calls are fast, until they span that
    many seconds (at most ``MOST_CALLS``)."""
    for _ in range(warmup):
        fn()
    times = []
    while True:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        n, spent = len(times), sum(times)
        if (budget_s and n >= at_least and spent > budget_s) or n >= MOST_CALLS:
            break
        if n >= repeats and spent >= span_s:
            break
    return times


MOST_CALLS = 5000
# A round of a fast case runs its calls back to back for at least this long,
# as a user's loop would: three calls of a sub-millisecond op right after
# the pause of ``settle()`` timed a waking machine, not the op (the
# numbers: benchmarks/README.md, History).
ROUND_SPAN_S = 0.1


def median_ms(fn, repeats=5, warmup=1, budget_s=None):
    """Median wall time of ``fn()`` in ms after ``warmup`` discarded calls.
    With ``budget_s``, fewer repeats when one call is slow (at least 3)."""
    return 1e3 * statistics.median(call_times(fn, repeats, warmup, budget_s))


def interleaved_ms(impls, repeats, budget_s, rounds=3, span_s=ROUND_SPAN_S):
    """{name: ms} of several implementations timed in ``rounds`` rounds,
    each taking every implementation in turn: its share of the repeats
    back to back (and more, until they span ``span_s``), after
    ``settle()`` and one discarded call (its threads were asleep). Each
    implementation's time is the median of its calls in its fastest round.

    Why rounds: the host's slow spells last seconds (a LeNet-5 forward at
    batch 500 took 11.5 ms in one process and 20.5 ms in the next), so
    timing each implementation once, in a block, let a spell fall on one
    of them. Why the fastest round's median: a spell only ever adds time,
    and in three rounds each implementation has three chances at a quiet
    one; the median over all calls still let a spell that covered one of
    an implementation's rounds move its row by tens of percent
    (benchmarks/README.md, History)."""
    rounds_ms = {name: [] for name in impls}
    for _ in range(rounds):
        for name, fn in impls.items():
            settle()
            times = call_times(fn, -(-repeats // rounds), budget_s=budget_s and budget_s / rounds,
                               at_least=1, span_s=span_s)
            rounds_ms[name].append(1e3 * statistics.median(times))
    return {name: min(ms) for name, ms in rounds_ms.items()}


def max_rel_diff(ours, reference):
    """max |ours - reference| / max |reference|, over arrays or tuples of arrays."""
    if isinstance(ours, (tuple, list)):
        return max(max_rel_diff(a, b) for a, b in zip(ours, reference))
    ours = np.asarray(ours, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if ours.shape != reference.shape:
        raise AssertionError(f"shapes differ: {ours.shape} vs {reference.shape}")
    scale = np.abs(reference).max()
    return float(np.abs(ours - reference).max() / scale) if scale > 0 else float(np.abs(ours).max())
