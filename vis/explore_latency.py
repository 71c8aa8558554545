"""Latency of ``npcnn explore``: from a drawing request to the updated
prediction and maps, as the server sees it, and a burst of local requests.

    python -m benchmarks.explore_latency [--checkpoint lenet5.pt] [--requests 200]

(It lives in vis, whose server it drives, so that ``npcnn bench`` can run it:
the benchmarks package never imports vis; ``benchmarks/explore_latency.py``
is the command's stand-alone entry.)

A stroke is replayed as the page sends it: one request per pointer move,
each image holding a little more ink than the one before. Per request:

- server ms: the handler's own time (the ``Server-Timing`` header): from
  the request's headers read to the answer ready (body read, JSON parsed
  and checked, the engine's forward with every layer recorded, the answer
  encoded), without the socket;
- round trip ms: the client's time from sending to the last byte of the
  answer, over a kept-alive connection to 127.0.0.1;
- and, with a map selected, the page's second request (its deconvnet
  projection and guided backpropagation): "stroke ms" is both round trips.

The first answer is checked against the engine before anything is timed,
and the first 20 requests are not counted (numba's compile, caches).
Target (#23): server ms <= 50 at the 95th percentile on the 2-core machine.
"""
import argparse
import http.client
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

WARM_UP = 20


def stroke_images(n, size=28, seed=0):
    """n images (n, size, size) in 0..1: a random walk of a soft pen, one more step each."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    image, point = np.zeros((size, size)), np.array([size / 2, size / 2])
    images = []
    for _ in range(n):
        point = np.clip(point + rng.normal(0, 1.5, 2), 4, size - 4)
        image = np.maximum(image, np.clip(1.6 - np.hypot(ys - point[0], xs - point[1]), 0, 1))
        images.append(image.copy())
    return np.stack(images)


def _post(connection, path, body):
    started = time.perf_counter()
    connection.request("POST", path, body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = response.read()
    round_trip = 1000 * (time.perf_counter() - started)
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {answer[:200]!r}")
    server = float(response.getheader("Server-Timing").split("dur=")[1])
    return answer, server, round_trip


def _percentiles(values):
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95)),
            "max": float(np.max(values))}


def default_checkpoint(folder):
    """A LeNet-5 checkpoint with torch's initialisation (seed 0): the timing
    does not depend on what the weights learned."""
    import torch

    import bridge
    torch.manual_seed(0)
    return bridge.save_checkpoint(Path(folder) / "lenet5.pt", bridge.torch_model("lenet5"), dataset="mnist5k")


def measure(checkpoint=None, requests=200, layer="pool_2", channel=3):
    """{"predict": {"server": {p50, p95, max}, "round_trip": {...}}, "unit": {...},
    "stroke": {...}} in ms, over ``requests`` strokes after the warm-up."""
    from vis import explore_server
    from vis.explore_cmd import build_explorer
    from vis.explore_model import softmax as probabilities

    with tempfile.TemporaryDirectory() as folder:
        explorer = build_explorer(checkpoint or default_checkpoint(folder), quick=True)
        server = explore_server.start(explorer)
        try:
            connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
            images = stroke_images(WARM_UP + requests)
            first, _, _ = _post(connection, "/api/predict", json.dumps({"pixels": images[0].ravel().tolist()}))
            expected = probabilities(explorer.model.forward(explorer.normalize(images[:1]))[0])
            np.testing.assert_allclose(json.loads(first)["probabilities"], expected, rtol=1e-5, atol=1e-7)
            times = {key: [] for key in ("predict server", "predict round trip", "unit server",
                                         "unit round trip", "stroke")}
            for k, image in enumerate(images):
                pixels = image.ravel().tolist()
                _, p_server, p_trip = _post(connection, "/api/predict", json.dumps({"pixels": pixels}))
                _, u_server, u_trip = _post(connection, "/api/unit", json.dumps(
                    {"pixels": pixels, "layer": layer, "channel": channel}))
                if k >= WARM_UP:
                    for key, value in zip(times, (p_server, p_trip, u_server, u_trip, p_trip + u_trip)):
                        times[key].append(value)
            connection.close()
        finally:
            server.shutdown()
            server.server_close()
    return {key: _percentiles(values) for key, values in times.items()}


def _resident_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def burst(checkpoint=None, requests=1000, clients=8):
    """A burst of local requests, a third each predictions, projections and
    bad requests (400): {"answered", "lost", "seconds", "rss_growth_kib"}
    (resident memory after the burst minus after a warm-up burst of 200)."""
    from vis import explore_server
    from vis.explore_cmd import build_explorer

    with tempfile.TemporaryDirectory() as folder:
        explorer = build_explorer(checkpoint or default_checkpoint(folder), quick=True)
        server = explore_server.start(explorer)
        pixels = (explorer.examples[0] / 255).ravel().tolist()
        plan = [("/api/predict", json.dumps({"pixels": pixels}), 200),
                ("/api/unit", json.dumps({"pixels": pixels, "layer": "relu_2", "channel": 7}), 200),
                ("/api/predict", json.dumps({"pixels": pixels[:-1]}), 400)]

        def client(n):
            connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
            right = 0
            for k in range(n):
                path, body, status = plan[k % len(plan)]
                connection.request("POST", path, body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                right += response.status == status and len(response.read()) > 0
            connection.close()
            return right

        try:
            with ThreadPoolExecutor(clients) as pool:
                sum(pool.map(client, [200 // clients] * clients))
                before = _resident_kib()
                started = time.perf_counter()
                answered = sum(pool.map(client, [requests // clients] * clients))
                seconds = time.perf_counter() - started
            growth = _resident_kib() - before
        finally:
            server.shutdown()
            server.server_close()
    sent = requests // clients * clients
    return {"answered": answered, "lost": sent - answered, "seconds": seconds, "rss_growth_kib": growth}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="weights (default: an untrained LeNet-5)")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    for key, value in measure(args.checkpoint, args.requests).items():
        print(f"{key:<20} p50 {value['p50']:6.2f} ms   p95 {value['p95']:6.2f} ms   max {value['max']:6.2f} ms")
    b = burst(args.checkpoint)
    print(f"burst: {b['answered']} of {b['answered'] + b['lost']} answered right in {b['seconds']:.1f} s, "
          f"resident memory {b['rss_growth_kib'] / 1024:+.1f} MiB")


if __name__ == "__main__":
    main()
