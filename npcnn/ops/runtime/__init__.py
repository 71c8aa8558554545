"""What the kernels run on, not what they compute: ``jit`` (a kernel
compiled serial and parallel), ``rows`` (inlined row copies), ``workspace``
(scratch buffers kept between calls) and ``tuning`` (every threshold that
chooses a path, a thread count or a buffer size)."""
