"""The explorer as files: the same page, with every answer the server would
give for its example images (one test image per digit) computed ahead and
written into data.js, so that it opens from disk with no server.

    DIR/index.html, explore.css, explore.js   the page, as the server sends it
    DIR/data.js                               window.EXPLORE = {..., "static": {...}}

``static``: ``responses[i]`` is /api/predict's answer for example i,
``units[i][layer][c]`` the projections of /api/unit for every map, and
``facts[layer][c]`` what the unit's panel shows beside them (filter, class
average, top-9). Drawing needs the server; the page says so.
"""
from pathlib import Path

import numpy as np

from npcnn import deconv
from npcnn.atomic import atomic_path

from .explore_server import PAGE_FILES, data_script, page_file
from .explore_wire import encode
from .paths import writing_into


def static_data(explorer):
    """``EXPLORE`` for the static page: ``page_data()`` and ``static``."""
    images = explorer.examples.astype(np.float64) / 255                       # (n, H, W)
    responses = [explorer.predict(image) for image in images]
    x = explorer.normalize(images)                                             # (n, 1, H, W)
    units = [{} for _ in images]
    for row in explorer.layout:
        if row["group"] != "maps":
            continue
        channels = range(row["shape"][0])
        with explorer.lock:
            maps = deconv.project_channels(explorer.model, x, row["name"], channels, rule="deconvnet")
            guided = deconv.project_channels(explorer.model, x, row["name"], channels, rule="guided")
        for i in range(len(images)):                                          # (K, n, 1, H, W)
            units[i][row["name"]] = [{"projection": encode(maps[c, i, 0]), "guided": encode(guided[c, i, 0])}
                                     for c in channels]
    facts = {row["name"]: [explorer.facts(row["name"], c) for c in range(row["shape"][0])]
             for row in explorer.layout}
    return {**explorer.page_data(), "static": {"responses": responses, "units": units, "facts": facts}}


def write_static(explorer, out):
    """Write the static page into ``out`` (created); returns index.html's path."""
    data = data_script(static_data(explorer))
    with writing_into(Path(out)) as folder:
        for name, _ in PAGE_FILES.values():
            _write(folder / name, page_file(name))
        _write(folder / "data.js", data)
    return folder / "index.html"


def _write(path, data):
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
