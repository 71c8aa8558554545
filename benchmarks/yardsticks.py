"""Where a row stands against the machine: the two yardsticks measured at
the start of a run (the SGEMM rate for compute-bound ops, the copy
bandwidth for memory-bound ones) and a row's share of each."""


def machine_lines(sgemm, copy):
    """The two yardsticks measured at the start of a run, as report lines."""
    return [f"SGEMM (numpy float32 2048x2048 matmul): {sgemm:.1f} GFLOP/s.",
            f"Copy bandwidth (STREAM-like copy of {copy['array_bytes'] / 2**20:.0f} MiB, read + write "
            f"bytes, best of several; benchmarks/bandwidth.py): {copy['best']:.1f} GB/s (numba parallel "
            f"{copy['numba']:.1f}, numpy {copy['numpy']:.1f})."]


def rate_cells(r, impl, sgemm, copy):
    """GFLOP/s and % of SGEMM for a compute-bound row, GB/s and % of the copy
    bandwidth for a memory-bound one (traffic.py), blanks where neither is
    counted."""
    g, b = r.gflops(impl), r.gbps(impl)
    return ("" if g is None else f"{g:.1f}", "" if g is None else f"{100 * g / sgemm:.0f}%",
            "" if b is None else f"{b:.1f}", "" if b is None else f"{100 * b / copy['best']:.0f}%")
