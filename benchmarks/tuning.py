"""Re-measure a threshold of ``npcnn/ops/runtime/tuning.py``: time the case
it was chosen on with the shipped value and with a value that sends the
case down the other path, after checking that both give the same numbers.

    python -m benchmarks.tuning                  # every experiment
    python -m benchmarks.tuning DIRECT_MAX_WEIGHTS WINOGRAD_MIN_TILES

Each experiment prints the milliseconds of both settings, timed in
interleaved rounds (``timing.interleaved_ms``). The results, the machine and
what they decided are in ``benchmarks/TUNING.md``.
"""
import argparse
import sys

import numpy as np

import npcnn
import npcnn.functional as F
from npcnn import deconv
from npcnn.ops.runtime import tuning

from .timing import interleaved_ms, max_rel_diff


def _random(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _conv(x_shape, w_shape, stride=1, padding=0):
    x, w = _random(*x_shape), _random(*w_shape, seed=1) / np.float32(np.sqrt(np.prod(w_shape[1:])))
    return lambda: F.conv2d(x, w, None, stride, padding)


def _conv_transpose(x_shape, w_shape, stride=1, padding=0):
    x, w = _random(*x_shape), _random(*w_shape, seed=1) / np.float32(np.sqrt(np.prod(w_shape[1:])))
    return lambda: F.conv_transpose2d(x, w, None, stride, padding)


def _lenet5_forward(batch):
    model, x = npcnn.build("lenet5", seed=0), _random(batch, 1, 28, 28)
    return lambda: model.forward(x)


def _lenet5_deconv_suite():
    model, x = npcnn.build("lenet5", seed=0), np.abs(_random(100, 1, 28, 28))
    return lambda: deconv.project_channels(model, x, "pool_2", range(16), select="max")


def _linear(x_shape, w_shape):
    x, w = _random(*x_shape), _random(*w_shape, seed=1) / np.float32(np.sqrt(w_shape[1]))
    return lambda: F.linear(x, w, None)


# threshold -> (the case, its function, a value that sends it the other way)
EXPERIMENTS = {
    "PARALLEL_MIN_WORK": ("LeNet-5's conv_2 at batch 4, serial vs parallel",
                          lambda: _conv((4, 6, 14, 14), (16, 6, 5, 5)), 0),
    "DIRECT_MAX_WEIGHTS": ("LeNet-5's conv_2 at batch 500, direct vs im2col",
                           lambda: _conv((500, 6, 14, 14), (16, 6, 5, 5)), 0),
    "DIRECT_LANES_MIN_IMAGES": ("LeNet-5's conv_2 at batch 500: vectorised over images vs wide rows",
                                lambda: _conv((500, 6, 14, 14), (16, 6, 5, 5)), 10**9),
    "DIRECT_LANES_MIN_TAPS": ("LeNet-5's conv_1 at batch 500 (25 taps): vectorised over images vs wide rows",
                              lambda: _conv((500, 1, 28, 28), (6, 1, 5, 5), padding=2), 64),
    "DIRECT_LANES_MIN_ACTIVE": ("LeNet-5's 16 pool_2 maps projected for 100 images (one channel a signal): "
                                "wide rows vs vectorised over images", _lenet5_deconv_suite, 0.0),
    "WINOGRAD_ROWS_MIN_FILTERS": ("LeNet-5's conv_2 at batch 500: Winograd along the rows vs vectorised "
                                  "over images", lambda: _conv((500, 6, 14, 14), (16, 6, 5, 5)), 10**9),
    "WINOGRAD_ROWS_MIN_TAPS": ("1 -> 16 channels, 5x5 at 14x14, batch 500 (5 taps): vectorised over images "
                               "vs Winograd along the rows", lambda: _conv((500, 1, 14, 14), (16, 1, 5, 5)), 1),
    "WINOGRAD_ROWS_MAX_STRIP_BYTES": ("10 -> 16 channels, 5x5 at 14x14, batch 500 (262 KiB of strips a block): "
                                      "vectorised over images vs Winograd along the rows",
                                      lambda: _conv((500, 10, 14, 14), (16, 10, 5, 5)), 2**30),
    "DIRECT_MAX_SINGLE_IMAGE_PIXELS": ("one 6-channel 128x128 image, 16 5x5 filters: im2col vs direct",
                                       lambda: _conv((1, 6, 128, 128), (16, 6, 5, 5)), 10**9),
    "WINOGRAD_MIN_CHANNELS": ("VGG16's conv1_1 (3 -> 64 at 224x224): im2col vs Winograd",
                              lambda: _conv((1, 3, 224, 224), (64, 3, 3, 3), padding=1), 1),
    "WINOGRAD_MIN_TILES": ("512 -> 512 channels at 7x7 (16 tiles): im2col vs Winograd",
                           lambda: _conv((1, 512, 7, 7), (512, 512, 3, 3), padding=1), 1),
    "TRANSPOSED_COL2IM_MAX_BYTES": ("transposed 512 -> 512 at 9x9: col2im vs flipped filters",
                                    lambda: _conv_transpose((1, 512, 9, 9), (512, 512, 3, 3), padding=1), 0),
    "WIDE_MIN_INNER": ("transposed stride 2, 256 -> 128 at 14x14, batch 8: one wide product vs per image",
                       lambda: _conv_transpose((8, 256, 14, 14), (256, 128, 3, 3), stride=2), 10**9),
    "COLS_BUDGET": ("64 -> 128, stride 2 at 112x112, batch 8: 32 MB vs 2 MB of columns a chunk",
                    lambda: _conv((8, 64, 112, 112), (128, 64, 3, 3), stride=2, padding=1), 2 * 2**20),
    "WINOGRAD_BAND_BYTES": ("VGG16's conv3_x (256 -> 256 at 56x56): 16 MB vs 2 MB bands",
                            lambda: _conv((1, 256, 56, 56), (256, 256, 3, 3), padding=1), 2 * 2**20),
    "WINOGRAD_BY_THREAD_MAX_FILTER_BYTES": ("VGG16's conv1_2 (64 -> 64 at 224x224): the layer in one loop "
                                            "by thread vs band by band",
                                            lambda: _conv((1, 64, 224, 224), (64, 64, 3, 3), padding=1), 0),
    "WINOGRAD_BY_THREAD_BYTES": ("VGG16's conv1_2 by thread: tasks of 4 MB vs 1 MB of V and M",
                                 lambda: _conv((1, 64, 224, 224), (64, 64, 3, 3), padding=1), 2**20),
    "PLANE_SKEW": ("VGG16's conv1_2 by Winograd: skewed vs aligned planes",
                   lambda: _conv((1, 64, 224, 224), (64, 64, 3, 3), padding=1), 0),
    "WEIGHT_CACHE_BYTES": ("VGG16's conv3_x (256 -> 256 at 56x56) by Winograd: filters kept vs transformed "
                           "on every call", lambda: _conv((1, 256, 56, 56), (256, 256, 3, 3), padding=1), 0),
    "COST_DENSE_MULTIPLY_ADD": ("LeNet-5's fc_1 at batch 500: one thread vs two",
                                lambda: _linear((500, 400), (120, 400)), 1 / 512),
    "LINEAR_TILES_MAX_WEIGHTS": ("a LeNet-5 forward at batch 500: tile kernel vs BLAS for the fc layers",
                                 lambda: _lenet5_forward(500), 0),
    "LINEAR_TILES_MIN_ROWS": ("a LeNet-5 forward at batch 1: dot products by rows vs the tile kernel",
                              lambda: _lenet5_forward(1), 1),
    "REUSED_BUFFER_MAX_BYTES": ("LeNet-5's 16 pool_2 maps projected for 100 images: reused vs fresh "
                                  "unpooling buffer", _lenet5_deconv_suite, 0),
}


def measure(name, repeats=30, budget_s=10.0):
    """{"shipped": ms, "other": ms} for one threshold, after checking that
    both settings give the same result."""
    what, make, other = EXPERIMENTS[name]
    shipped = getattr(tuning, name)
    fn = make()
    reference = fn()
    setattr(tuning, name, other)
    try:
        diff = max_rel_diff(fn(), reference) if isinstance(reference, np.ndarray) else 0.0
        assert diff < 1e-4, f"{name}: the two settings differ by {diff:.2e}"

        def with_value(value):
            def call():
                setattr(tuning, name, value)
                fn()
            return call

        times = interleaved_ms({"shipped": with_value(shipped), "other": with_value(other)}, repeats, budget_s)
    finally:
        setattr(tuning, name, shipped)
    print(f"{name} = {shipped!r} (other: {other!r}), {what}: "
          f"{times['shipped']:.3f} ms shipped, {times['other']:.3f} ms other", flush=True)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="thresholds to re-measure (default: all): " + ", ".join(EXPERIMENTS))
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in EXPERIMENTS]
    if unknown:
        parser.error(f"no experiment for {', '.join(unknown)}; there are: {', '.join(EXPERIMENTS)}")
    for name in args.names or EXPERIMENTS:
        measure(name, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
