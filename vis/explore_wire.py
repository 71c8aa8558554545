"""What the explorer's page and server say to each other: arrays out,
requests in.

Arrays go to the page as ``{"shape": [...], "f32": base64}``: the float32
values little-endian, which the page reads back with a ``Float32Array``,
exact and about a third the size of the same numbers written in JSON.

Requests come in as JSON bodies and are checked here, before any work:
each fault raises ``BadRequest`` with the one-line reason the server
sends back with its 400.

    {"pixels": [784 numbers in 0..1]}                         POST /api/predict
    {"pixels": [...], "layer": "pool_2", "channel": 3,        POST /api/unit
     "select": "map" | "max"}
"""
import base64
import json
import math

import numpy as np

from npcnn.deconv import SELECTIONS

MAX_BODY_BYTES = 64 * 1024   # 784 pixels written out in full are ~20 KB


class BadRequest(ValueError):
    """A request the server refuses with a 400; the message is the reason, one line."""


def encode(array):
    """``{"shape", "f32"}``: the array as float32 bytes in base64."""
    a = np.ascontiguousarray(array, dtype="<f4")
    return {"shape": list(a.shape), "f32": base64.b64encode(a.tobytes()).decode("ascii")}


def decode(message):
    """The array ``encode`` wrote (for tests and the benchmark)."""
    raw = base64.b64decode(message["f32"])
    return np.frombuffer(raw, dtype="<f4").reshape(message["shape"])


def parse_body(body):
    """A JSON object from the request's bytes, or BadRequest."""
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"body of {len(body)} bytes is over the limit of {MAX_BODY_BYTES}")
    try:
        request = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:   # RecursionError: [[[[... nested deep
        raise BadRequest(f"body is not JSON: {str(err).splitlines()[0][:80]}") from None
    if not isinstance(request, dict):
        raise BadRequest(f"body must be a JSON object, got {type(request).__name__}")
    return request


def pixels_of(request, height, width):
    """The image (H, W) float64 in 0..1 from ``request["pixels"]``: a flat
    list of H*W finite numbers (row-major), white ink on black as MNIST."""
    pixels = request.get("pixels")
    if not isinstance(pixels, list):
        raise BadRequest(f"pixels: expected a list of {height * width} numbers ({height}x{width}), "
                         f"got {type(pixels).__name__ if pixels is not None else 'nothing'}")
    if len(pixels) != height * width:
        raise BadRequest(f"pixels: expected {height * width} numbers ({height}x{width}), got {len(pixels)}")
    for k, p in enumerate(pixels):
        # bool is an int in Python; true/false in the body is a client bug
        if isinstance(p, bool) or not isinstance(p, (int, float)):
            raise BadRequest(f"pixels[{k}]: expected a number, got {json.dumps(p)[:20]}")
        if not math.isfinite(p):               # json.loads reads NaN and Infinity
            raise BadRequest(f"pixels[{k}]: not a finite number ({p})")
        if not 0 <= p <= 1:
            raise BadRequest(f"pixels[{k}]: {p} is outside 0..1")
    return np.asarray(pixels, dtype=np.float64).reshape(height, width)


def unit_of(request, channels):
    """``(layer, channel, select)`` from a unit request; ``channels`` maps
    each layer the page may ask about to its channel (or unit) count."""
    layer = request.get("layer")
    if not isinstance(layer, str) or layer not in channels:
        raise BadRequest(f"layer: {json.dumps(layer)[:40]} is not a layer of this network; "
                         f"layers: {', '.join(channels)}")
    channel = request.get("channel")
    if isinstance(channel, bool) or not isinstance(channel, int):
        raise BadRequest(f"channel: expected an integer, got {json.dumps(channel)[:20]}")
    if not 0 <= channel < channels[layer]:
        raise BadRequest(f"channel: {layer} has channels 0..{channels[layer] - 1}, got {channel}")
    select = request.get("select", "map")
    if select not in SELECTIONS:
        raise BadRequest(f"select: expected one of {', '.join(SELECTIONS)}, got {json.dumps(select)[:20]}")
    return layer, channel, select
