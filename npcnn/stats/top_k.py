"""The k strongest units of each channel of a layer over a data set, as in
Zeiler & Fergus's figure 2 (the top 9 patches of each feature map),
mergeable across shards.

Each image contributes to each channel c its strongest unit: the value
a[c, i, j] at the first maximum of the map in row-major order, with the
image's id and the position (i, j). Per channel, the k largest of these are
kept, ordered by (value descending, id ascending): a total order, so any
split into shards and any order of merges gives the identical result.
"""
import numpy as np

from .. import checks

_EMPTY_ID = np.iinfo(np.int64).max   # an unfilled slot: below every real entry in the order


class TopK:
    """For each channel of ``layer``: the k strongest units, as (value, image id, position)."""

    kind = "top_k"

    def __init__(self, layer, k=9):
        checks.count("TopK", "k", k)
        self.layer, self.k = str(layer), int(k)
        self.values = self.ids = self.positions = None     # (C, k), (C, k), (C, k, 2) once data arrives

    @property
    def layers(self):
        return [self.layer]

    def empty(self):
        return TopK(self.layer, self.k)

    def is_empty(self):
        return self.values is None

    def add(self, activations, labels=None, ids=None):
        """Add a batch: ``activations[layer]`` (n, C, H, W) or (n, C); ``ids`` (n,) the images' ids."""
        a = np.asarray(activations[self.layer])
        n, C = a.shape[:2]
        ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        if ids.shape != (n,):
            raise ValueError(f"TopK.add: ids must be ({n},), got {ids.shape}")
        flat = a.reshape(n, C, int(np.prod(a.shape[2:])))           # (n, C, H*W); -1 is undefined at n = 0
        first_max = flat.argmax(axis=2)                              # (n, C)
        value = np.take_along_axis(flat, first_max[..., None], 2)[..., 0].astype(np.float64)
        if not np.isfinite(value).all():
            raise ValueError(f"TopK.add: {self.layer} holds NaN or infinite values")
        width = a.shape[3] if a.ndim == 4 else 1
        position = np.stack([first_max // width, first_max % width], axis=-1)   # (n, C, 2)
        self._keep(value.T, np.broadcast_to(ids[None, :], (C, n)), position.transpose(1, 0, 2))
        return self

    def _keep(self, values, ids, positions):
        """Merge candidates (C, m) into the kept (C, k) by the total order."""
        if self.values is None:
            C = len(values)
            self.values = np.full((C, self.k), -np.inf)
            self.ids = np.full((C, self.k), _EMPTY_ID, dtype=np.int64)
            self.positions = np.full((C, self.k, 2), -1, dtype=np.int64)
        elif len(values) != len(self.values):
            raise ValueError(f"TopK: {self.layer} has {len(values)} channels here, {len(self.values)} before")
        v = np.concatenate([self.values, values], axis=1)
        i = np.concatenate([self.ids, ids], axis=1)
        p = np.concatenate([self.positions, positions], axis=1)
        order = np.lexsort((i, -v), axis=1)[:, :self.k]              # value descending, then id ascending
        self.values = np.take_along_axis(v, order, 1)
        self.ids = np.take_along_axis(i, order, 1)
        self.positions = np.take_along_axis(p, order[..., None], 1)

    def merge(self, other):
        if (other.layer, other.k) != (self.layer, self.k):
            raise ValueError(f"TopK.merge: {other.layer} top-{other.k} into {self.layer} top-{self.k}")
        if other.values is not None:
            self._keep(other.values, other.ids, other.positions)
        return self

    def result(self):
        """(ids (C, k'), values (C, k'), positions (C, k', 2)), strongest first; k' = min(k, images seen)."""
        if self.values is None:
            raise ValueError(f"TopK.result: nothing was added for {self.layer}")
        filled = int((self.ids[0] != _EMPTY_ID).sum())
        return self.ids[:, :filled], self.values[:, :filled], self.positions[:, :filled]

    def state_dict(self):
        state = {"kind": np.array(self.kind), "layer": np.array(self.layer), "k": np.array(self.k)}
        if self.values is not None:
            state.update(values=self.values, ids=self.ids, positions=self.positions)
        return state

    @classmethod
    def from_state_dict(cls, state):
        return cls(str(state["layer"]), int(state["k"])).load_state_dict(state)

    def load_state_dict(self, state):
        if str(state["kind"]) != self.kind:
            raise ValueError(f"TopK.load_state_dict: the state is of a {state['kind']}")
        self.__init__(str(state["layer"]), int(state["k"]))
        if "values" in state:
            values, ids, positions = (np.asarray(state[key]) for key in ("values", "ids", "positions"))
            C = len(values)
            if (values.shape, ids.shape, positions.shape) != ((C, self.k), (C, self.k), (C, self.k, 2)):
                raise ValueError(f"TopK.load_state_dict: values {values.shape}, ids {ids.shape} and positions "
                                 f"{positions.shape} do not hold {self.k} units of each channel")
            self.values = values.astype(np.float64)
            self.ids, self.positions = ids.astype(np.int64), positions.astype(np.int64)
        return self
