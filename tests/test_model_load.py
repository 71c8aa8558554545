"""npcnn's own loader (``Model.load``, the engine's API, no bridge in
between) refuses a bad weight file in one ValueError that names it."""
import json
import os
import threading

import numpy as np
import pytest

from npcnn import Model
from npcnn.model import FORMAT_KEY


def _write(path, meta=None, **arrays):
    entries = dict(arrays)
    if meta is not None:
        entries[FORMAT_KEY] = meta if isinstance(meta, np.ndarray) else np.array(meta)
    np.savez(path, **entries)
    return path


@pytest.fixture
def good(tmp_path):
    return Model.from_spec("lenet5", seed=0).save(tmp_path / "good.npz")


def test_a_saved_model_loads_back(good):
    model = Model.load(good)
    assert model.arch == "lenet5" and model.dtype == np.float32


@pytest.mark.parametrize("change,fragment", [
    (lambda state, meta: (state, "not json {"), "metadata is not valid JSON"),
    (lambda state, meta: (state, json.dumps([1, 2])), "metadata is a list, not a dict"),
    (lambda state, meta: (state, np.zeros(3)), "entry is a float64 array of shape (3,), not the JSON text npcnn writes"),
    (lambda state, meta: (state, json.dumps({**meta, "meta": "x"})), "meta is a str, not a dict"),
    (lambda state, meta: (state, json.dumps({**meta, "arch": 5})), "arch is a int, not a name"),
    (lambda state, meta: ({k: v.astype(np.float16) for k, v in state.items()}, json.dumps(meta)),
     "holds float16 weights"),
    (lambda state, meta: ({**state, "conv_1.bias": np.full_like(state["conv_1.bias"], np.nan)},
                          json.dumps(meta)), "conv_1.bias holds non-finite values"),
])
def test_a_bad_file_is_named(good, tmp_path, change, fragment):
    with np.load(good) as data:
        state = {k: data[k] for k in data.files if k != FORMAT_KEY}
        meta = json.loads(str(data[FORMAT_KEY]))
    state, text = change(state, meta)
    bad = _write(tmp_path / "bad.npz", text, **state)
    with pytest.raises(ValueError, match=r"bad\.npz: ") as caught:
        Model.load(bad)
    assert fragment in str(caught.value)


def test_a_fifo_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "weights.npz"
    os.mkfifo(fifo)
    # a writer, so that a regression fails instead of blocking the suite
    writer = threading.Thread(target=lambda: open(fifo, "wb").close(), daemon=True)
    writer.start()
    with pytest.raises(ValueError, match="weights.npz: is not a regular file"):
        Model.load(fifo)
    if writer.is_alive():
        open(fifo, "rb").close()
    writer.join(5)


def test_not_an_npz_and_no_file_are_named(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match=r"text\.npz: not an \.npz file \(an \.npz is a zip archive of arrays\)"):
        Model.load(tmp_path / "text.npz")
    with pytest.raises(ValueError, match=r"missing\.npz: no such npcnn weight file"):
        Model.load(tmp_path / "missing.npz")
