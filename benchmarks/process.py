"""Measurements that need a fresh process: numba's first call with an empty
and with a warm cache, and the peak memory of a VGG16 forward."""
import json
import os
import subprocess
import sys
import tempfile
import textwrap

FIRST_CALL = textwrap.dedent("""
    import time
    start = time.perf_counter()
    import numpy as np, npcnn
    model = npcnn.build("lenet5", seed=0)
    imported = time.perf_counter()
    model(np.zeros((1, 1, 28, 28), dtype=np.float32))
    first = time.perf_counter()
    model(np.zeros((1, 1, 28, 28), dtype=np.float32))
    second = time.perf_counter()
    print({"import_s": imported - start, "first_call_s": first - imported, "second_call_s": second - first})
""")

# VmHWM (peak resident memory) is reset to the current RSS by writing 5 to
# /proc/self/clear_refs, so the peak read after the forward is the forward's.
PEAK = textwrap.dedent("""
    import sys, numpy as np
    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    which, weights = sys.argv[1], sys.argv[2]
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)
    if which == "torch":
        import torch, bridge
        torch.set_num_threads(int(sys.argv[3]))
        module = bridge.load_module(weights, arch="vgg16")
        run = lambda: module(torch.from_numpy(x))
        torch.set_grad_enabled(False)
    else:
        import npcnn
        model = npcnn.load(weights)
        run = lambda: model(x)
    run()                                  # warm: compile, allocator pools
    open("/proc/self/clear_refs", "w").write("5")
    before = status("VmRSS:")
    run()
    print({"rss_before": before, "peak": status("VmHWM:")})
""")


def _run(code, env=None, args=()):
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed: {done.stderr.strip().splitlines()[-1:]}")
    return eval(done.stdout.strip().splitlines()[-1], {})  # a dict literal we printed ourselves


def first_call_times():
    """numba's compile cost: LeNet-5's first forward in a process with an
    empty cache (cold) and in the next process, which finds the cache (warm)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {"NUMBA_CACHE_DIR": cache}
        cold = _run(FIRST_CALL, env)
        warm = _run(FIRST_CALL, env)
    return {"cold": cold, "warm": warm}


def vgg16_forward_memory(threads):
    """Peak resident memory added by one VGG16 forward at 1x3x224x224, in
    bytes, for npcnn and torch, from the same weights."""
    import torch

    import bridge
    with tempfile.TemporaryDirectory() as folder:
        torch.manual_seed(0)
        module = bridge.torch_model("vgg16")
        pt, npz = os.path.join(folder, "vgg16.pt"), os.path.join(folder, "vgg16.npz")
        torch.save(module.state_dict(), pt)
        bridge.from_torch(module).save(npz)
        del module
        out = {}
        for which, path in (("npcnn", npz), ("torch", pt)):
            m = _run(PEAK, args=(which, path, str(threads)))
            out[which] = {"forward_bytes": m["peak"] - m["rss_before"], "peak_bytes": m["peak"]}
    return out


if __name__ == "__main__":
    print(json.dumps({"first_call": first_call_times()}, indent=1))
