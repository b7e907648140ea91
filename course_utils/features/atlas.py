"""A cache of channel pictures for slider explorers: channel ``k`` of layer ``L``, instantly.

The first request for a channel visualizes its whole *page* (``page_size`` neighbouring channels
of the layer; in memory, those of the page not yet kept) in one batched optimization; every later
request for a channel of that page is a dictionary lookup. :meth:`ChannelAtlas.visualize` keeps
the pictures of a run that a lesson also checks, so they are not made twice. Pages can also be
kept on disk (``cache="disk"``, written atomically under
``course_utils.config.cache_dir("features")``), keyed by the model's name and weights, the
layer, the page and every setting, so a second session answers at once too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import keras
import numpy as np

from course_utils import surgery
from course_utils.cache import atomic_path, key_of
from course_utils.config import cache_dir
from course_utils.engine import checks, taps
from course_utils.features.visualize import Visualization, visualize
from course_utils.models.registry import info


def model_fingerprint(model: keras.Model) -> str:
    """A short hash of the model's name, layer names and a sample of its weights."""
    digest = hashlib.sha256(info(model).name.encode())
    for w in model.weights:
        arr = np.asarray(w)
        digest.update(w.path.encode() if hasattr(w, "path") else w.name.encode())
        digest.update(str(arr.shape).encode())
        flat = arr.ravel()
        digest.update(flat[:: max(1, flat.size // 64)].tobytes())
    return digest.hexdigest()[:16]


class ChannelAtlas:
    """Channel pictures of a model, computed a page at a time and memoized.

    Parameters
    ----------
    model
        The model.
    cache
        ``"memory"`` (default) or ``"disk"`` (also keep pages on disk).
    page_size
        Channels visualized together on a miss (one batched optimization).
    **settings
        Passed to :func:`~course_utils.features.visualize.visualize` (``steps``, ``size``,
        ``method``, ``seed``, ...).

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((None, None, 3)),
    ...                       keras.layers.Conv2D(4, 3, activation="relu", name="c")])
    >>> atlas = ChannelAtlas(m, steps=4, size=16, progress=False)
    >>> atlas.get("c", 3).shape
    (16, 16, 3)
    >>> atlas.computed("c")
    [0, 1, 2, 3]
    """

    def __init__(
        self,
        model: keras.Model,
        *,
        cache: str = "memory",
        page_size: int = 16,
        folder: str | Path | None = None,
        **settings,
    ):
        if cache not in ("memory", "disk"):
            raise ValueError(f"cache must be 'memory' or 'disk', not {cache!r}.")
        if not isinstance(page_size, int) or page_size < 1:
            raise ValueError(f"page_size must be a positive integer, got {page_size!r}.")
        if "channels" in settings or "objective" in settings:
            raise TypeError("ChannelAtlas holds channel pictures; do not pass channels/objective.")
        self.model = model
        self.page_size = page_size
        self.settings = settings
        self.disk = cache == "disk"
        self.folder = Path(folder) if folder is not None else None
        self._pictures: dict[tuple[str, int], np.ndarray] = {}
        self._scores: dict[tuple[str, int], float] = {}
        self._fingerprint: str | None = None

    def _name(self, layer) -> str:
        return surgery.path_name(taps.resolve(self.model, layer)[0])

    def n_channels(self, layer) -> int:
        """Number of channels of ``layer``."""
        return int(taps.output_shape(taps.resolve(self.model, layer)[0])[-1])

    def _file(self, name: str, page: int) -> Path:
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model)
        key = key_of({"model": self._fingerprint, "layer": name, "page": page,
                      "page_size": self.page_size, "settings": self.settings})
        folder = self.folder if self.folder is not None else cache_dir("features")
        return folder / f"{info(self.model).name}-{name.replace('/', '_')}-p{page}-{key}.npz"

    def _keep(self, name: str, channels, images, scores) -> None:
        for k, c in enumerate(channels):
            self._pictures[(name, int(c))] = images[k]
            self._scores[(name, int(c))] = float(scores[k])

    def _load_page(self, name: str, page: int, n: int) -> None:
        channels = list(range(page * self.page_size, min(n, (page + 1) * self.page_size)))
        path = self._file(name, page) if self.disk else None
        if path is not None and path.is_file():
            data = np.load(path)
            images, scores = data["images"], data["scores"]
        else:
            if path is None:  # in memory only: the page's channels not yet kept
                channels = [c for c in channels if (name, c) not in self._pictures]
            vis = visualize(self.model, name, channels, objective="channel",
                            batch_size=max(len(channels), 1), **self.settings)
            images, scores = vis.images, vis.scores
            if path is not None:
                with atomic_path(path) as tmp:
                    np.savez_compressed(tmp, images=images, scores=scores)
        self._keep(name, channels, images, scores)

    def visualize(self, layer, channels) -> Visualization:
        """Visualize ``channels`` of ``layer`` with the atlas's settings, keep their pictures
        and return the :class:`~course_utils.features.visualize.Visualization` (for the checks
        of :mod:`~course_utils.features.quality`); later requests for these channels are
        lookups. Each channel's picture does not depend on which channels share its run.

        Examples
        --------
        >>> import keras
        >>> m = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(3, 3)])
        >>> book = ChannelAtlas(m, steps=2, size=12, progress=False)
        >>> book.visualize(m.layers[0].name, [1, 2]).units, book.computed(m.layers[0].name)
        ([1, 2], [1, 2])
        """
        name = self._name(layer)
        vis = visualize(self.model, name, channels, objective="channel", **self.settings)
        self._keep(name, vis.units, vis.images, vis.scores)
        return vis

    def get(self, layer, channel: int) -> np.ndarray:
        """The picture ``(H, W, C)`` in ``[0, 1]`` of ``channel`` of ``layer``."""
        name = self._name(layer)
        n = self.n_channels(layer)
        (channel,) = checks.indices(channel, n, "channel", name)
        key = (name, int(channel))
        if key not in self._pictures:
            self._load_page(name, int(channel) // self.page_size, n)
        return self._pictures[key]

    def score(self, layer, channel: int) -> float:
        """The objective value of a channel's picture (computes it if needed)."""
        self.get(layer, channel)
        return self._scores[(self._name(layer), int(channel))]

    def layer(self, layer, channels=None) -> np.ndarray:
        """Pictures of ``channels`` (default: all) of ``layer``, ``(N, H, W, C)``."""
        n = self.n_channels(layer)
        channels = range(n) if channels is None else channels
        return np.stack([self.get(layer, c) for c in channels])

    def computed(self, layer) -> list[int]:
        """Channels of ``layer`` already in memory."""
        name = self._name(layer)
        return sorted(c for (lname, c) in self._pictures if lname == name)

    def precompute(self, layers, channels=None) -> None:
        """Fill the cache for ``channels`` (default: all) of every layer in ``layers``."""
        for layer in [layers] if isinstance(layers, str) else layers:
            self.layer(layer, channels)
