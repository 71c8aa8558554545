"""Every threshold that chooses a kernel, a thread count or a buffer size.

One line each says why it sits where it does. The measurements behind
them, the machine they were taken on and the command that re-measures each
are in ``benchmarks/TUNING.md``; the code reads these names from this
module at call time, so a test or an experiment can change one with
``monkeypatch.setattr(tuning, NAME, value)``.
"""

# --- threads (runtime/jit.py) -------------------------------------------------
# Below this much weighted work a kernel runs on one thread: waking numba's
# workers after they went to sleep costs more than a small layer's whole loop.
PARALLEL_MIN_WORK = 1 << 16
# Weights of the work a caller counts: an element of an elementwise pass
# (ReLU, pooling, bias add, channel scan; for unpooling every pixel it
# writes, zeros included) is cheap ...
COST_ELEMENTWISE = 1 / 16
# ... and so is one multiply-add of a convolution: threads from 8M of them.
COST_MULTIPLY_ADD = 1 / 128
# The dense tile kernel's multiply-adds, as a convolution's: threads from 8M
# of them (LeNet-5's fc_1 at batch 500 has 24M). It was 1/512 while waking
# the threads cost each launch tens of microseconds (npcnn/ops/__init__.py).
COST_DENSE_MULTIPLY_ADD = 1 / 128

# --- which convolution path (conv_numba.path) ---------------------------------
# Few, small filters: shifted copies of the image beat a thin BLAS product;
# past a few thousand weights BLAS is ahead.
DIRECT_MAX_WEIGHTS = 4096
# The direct kernel spreads images over threads: a single image larger than
# this goes to BLAS, which spreads one product.
DIRECT_MAX_SINGLE_IMAGE_PIXELS = 64 * 64
# From this many images (float32; half as many float64, whose vectors
# hold half as many lanes) the direct path runs the kernel vectorised over
# images: below one vector of lanes the empty ones are wasted work.
DIRECT_LANES_MIN_IMAGES = 16
# ... for filters of at least this many taps (C*kH*kW): with fewer, copying
# the images into lanes and the outputs back costs more than the sums save
# (SimpleCNN's conv_1 has 9 taps, LeNet-5's conv_1 25, which gain) ...
DIRECT_LANES_MIN_TAPS = 20
# ... and if at least this share of the (image, channel) pairs is nonzero: it
# computes every channel, where the wide-row kernel skips the zero ones
# (the deconvnet's signals hold one channel in sixteen).
DIRECT_LANES_MIN_ACTIVE = 0.5
# Bytes of packed images and sums per launch of that kernel: its buffers
# stay bounded whatever the batch and the image size.
DIRECT_LANES_CHUNK_BYTES = 32 * 2**20
# Winograd's F(2, 5) along the rows (winograd_rows_numba.py) instead of
# that kernel, for filters 5 wide: its tiles load a vector of V per
# multiply-add, so it wins only where enough filters reuse each vector ...
WINOGRAD_ROWS_MIN_FILTERS = 12
# ... a position's sum is long enough to pay for its tile's transforms
# (one channel of 5 taps is not) ...
WINOGRAD_ROWS_MIN_TAPS = 10
# ... and a block's transformed strips stay near the first-level cache
# (LeNet-5's conv_2 within it, and 8 channels of its size).
WINOGRAD_ROWS_MAX_STRIP_BYTES = 224 * 2**10
# With fewer input or output channels Winograd's 16 products are thin and
# its transforms cost more than they save.
WINOGRAD_MIN_CHANNELS = 64
# With fewer 2x2 output tiles the 16 products are too thin (a few vectors
# of columns) to beat one im2col product.
WINOGRAD_MIN_TILES = 32
# A stride-1 transposed conv whose column matrix (per image) is at most this
# many bytes scatters it back (col2im); a larger one convolves with the
# flipped filters, which needs no column matrix to scatter.
TRANSPOSED_COL2IM_MAX_BYTES = 8 * 2**20

# --- buffers -------------------------------------------------------------------
# Bytes of im2col column matrix per chunk of the batch: wide products for
# BLAS, and a buffer reused rather than page-faulted in on every call.
COLS_BUDGET = 32 * 2**20
# From this many channels one wide product (R, C) @ (C, n*L) beats one
# product per image, which reads the weights once per image.
WIDE_MIN_INNER = 32
# Bytes of Winograd's transformed tiles and products (V and M) per band of
# tile rows: they stay in reused buffers of bounded size.
WINOGRAD_BAND_BYTES = 16 * 2**20
# Filters transformed into at most this many bytes (128 -> 128 channels:
# 1 MiB) stay in each core's cache, and the layer runs in one parallel loop,
# each thread taking tile rows whose V and M take about WINOGRAD_BY_THREAD_BYTES;
# larger ones would be read again by every task.
WINOGRAD_BY_THREAD_MAX_FILTER_BYTES = 2**20
WINOGRAD_BY_THREAD_BYTES = 4 * 2**20
# Elements between the 16 planes of a workspace.planes array: a plane whose
# size is a multiple of 4 KiB makes a kernel writing one position of every
# plane hit one cache set 16 times (4K aliasing).
PLANE_SKEW = 64

# Bytes of transformed filters (and the copies of the weights they came
# from) kept for the next call with the same weights: VGG16's Winograd
# layers, forward and flipped (the deconvnet), fit.
WEIGHT_CACHE_BYTES = 512 * 2**20

# --- dense layers (linear_numba.py) --------------------------------------------
# Dense layers up to this many weights over a batch run the jitted tile
# kernel: OpenBLAS's threads keep spinning after a threaded product and take
# a core from the next forward's convolutions. Larger layers go to BLAS.
LINEAR_TILES_MAX_WEIGHTS = 1 << 17
# ... and at least one whole 4x4 tile of rows. Fewer rows, whatever the
# size of the weight, run as dot products of weight rows (each read once,
# in place: no transposed copy to keep, VGG16's fc6 has 411 MB of them).
LINEAR_TILES_MIN_ROWS = 4

# --- the deconvnet (npcnn/deconv.py, npcnn/sparse_signal.py) -------------------
# Signals go down in batches of at most this many bytes per layer output, so
# 512 maps of VGG16 at 224x224 do not need 6 GB at once.
DECONV_BATCH_BYTES = 256 * 2**20
# F.max_pool2d_backward(reuse=True) keeps a buffer up to this size (a fresh
# map is page-faulted in on every call); larger results are fresh arrays.
REUSED_BUFFER_MAX_BYTES = 32 * 2**20
# Filter channel by channel when at most one (signal, channel) pair in this
# many holds a nonzero (below the starting layer: one channel per signal).
SPARSE_FEW_CHANNELS = 4
# Filter the box of nonzeros alone when it covers at most this share of the map.
SPARSE_SMALL_BOX = 0.75
