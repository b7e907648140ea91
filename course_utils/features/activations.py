"""Intermediate activations: every channel of any set of layers, from one forward pass.

The forward pass is compiled once per (model, set of layers) and reused: asking for ten layers
costs one pass through the network, not ten sub-models. Nested models (an ``keras.applications``
base inside a ``Sequential``) work, because layers are resolved by ``course_utils.surgery``.

:func:`depth_summary` measures the two claims the lesson makes about depth:

``zero_fraction``
    the fraction of a layer's activations that are exactly zero (after ReLU): higher layers are
    sparser;
``dead_channels``
    the fraction of channels that are zero everywhere on the image;
``input_corr``
    how much of the input still shows: every channel map is resized (bilinear) to the input's
    size (at most 112 px per side) and its Pearson correlation with the input's luminance is
    taken; the value is the mean
    absolute correlation of the best 10 % of the live channels (at least one). Lower layers keep
    the picture (values near 1), higher layers keep little of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from course_utils.engine import checks, kernels, taps
from course_utils.engine.images import as_batch
from course_utils.models.registry import info
from course_utils.surgery import LayerRef, path_name, spatial_layers


def _fn(model: keras.Model, paths: list[tuple]):
    def build():
        @kernels.graph()
        def run(x):
            return taps.forward_until(model, x, paths)

        return run

    return kernels.compiled(model, "features.activations", build,
                            options=tuple(id(p[-1]) for p in paths))


def _names(layers, paths) -> list[str]:
    refs = [layers] if isinstance(layers, (str, int, np.integer, keras.layers.Layer)) else layers
    return [r if isinstance(r, str) else path_name(p) for r, p in zip(refs, paths)]


def default_layers(model: keras.Model) -> list[str]:
    """Names of every layer with a spatial output ``(N, H, W, C)``, in forward order (nested
    ones as ``"outer/inner"``): the layers :func:`activations` reads when given none.

    Examples
    --------
    >>> m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3, name="c"),
    ...                       keras.layers.GlobalAveragePooling2D(name="gap")])
    >>> default_layers(m)
    ['c']
    """
    return [path_name(p) for p in spatial_layers(model)]


def activations(
    model: keras.Model,
    images,
    layers: LayerRef | Sequence[LayerRef] | None = None,
    *,
    preprocess: bool = True,
    batch_size: int = 32,
) -> dict[str, np.ndarray]:
    """All activations of ``layers`` for ``images``, from one compiled forward pass.

    Parameters
    ----------
    model
        A Keras model with one image input (nested models are fine).
    images
        One image ``(H, W, C)`` or a batch ``(N, H, W, C)`` in pixel space
        ``[0, info(model).pixel_max]``.
    layers
        Layer names/indices/objects; default: every layer with a spatial output.
    preprocess
        Apply ``info(model).preprocess`` first (set ``False`` for already-preprocessed input).
    batch_size
        Images per forward pass (bounds memory).

    Returns
    -------
    ``{name: array (N, ...)}`` in the order given; names as passed (or ``"outer/inner"``).

    Examples
    --------
    >>> import keras, numpy as np
    >>> m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="c")])
    >>> activations(m, np.zeros((8, 8, 1)), ["c"])["c"].shape
    (1, 6, 6, 2)
    """
    if layers is None:
        layers = default_layers(model)
    paths = taps.resolve(model, layers)
    batch_size = checks.integer(batch_size, "batch_size", example="images per pass, e.g. 32")
    x = as_batch(model, images, pixels=True)
    if preprocess:
        x = np.asarray(info(model).preprocess(x.copy()), dtype="float32")
    run = _fn(model, paths)
    chunks = [run(tf.constant(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
    names = _names(layers, paths)
    return {
        name: np.concatenate([np.asarray(c[j]) for c in chunks], axis=0)
        for j, name in enumerate(names)
    }


def dead_channels(activation: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Boolean mask of the channels whose activation never exceeds ``threshold``.

    ``activation`` is ``(H, W, C)`` or ``(N, H, W, C)``; a channel is dead when it stays at or
    below ``threshold`` at every position of every image.

    Examples
    --------
    >>> a = np.zeros((4, 4, 3)); a[..., 1] = 1.0
    >>> dead_channels(a).tolist()
    [True, False, True]
    """
    a = np.asarray(activation)
    if a.ndim not in (3, 4):
        raise ValueError(f"Expected a feature map (H, W, C) or (N, H, W, C), got shape {a.shape}.")
    return np.all(a.reshape(-1, a.shape[-1]) <= threshold, axis=0)


def _luminance(image: np.ndarray) -> np.ndarray:
    if image.shape[-1] == 3:
        return image @ np.array([0.299, 0.587, 0.114], dtype=image.dtype)
    return image.mean(axis=-1)


def input_correlation(
    activation: np.ndarray, image: np.ndarray, top: float = 0.1, max_side: int = 112
) -> float:
    """How much of the input still shows in a feature map (see the module docstring).

    Parameters
    ----------
    activation
        ``(h, w, C)`` feature map of one image.
    image
        ``(H, W, c)`` pixel-space image it came from.
    top
        Fraction of live channels averaged (the best correlated ones).
    max_side
        The comparison runs on a grid of at most this many pixels per side (the image is
        area-averaged down to it, the maps bilinearly resized to it).
    """
    lum = _luminance(np.asarray(image, dtype="float32"))
    # compare on a grid of at most `max_side` px (bounds memory for 512 maps of a big image)
    f = min(1.0, max_side / max(lum.shape))
    size = (max(1, round(lum.shape[0] * f)), max(1, round(lum.shape[1] * f)))
    if size != lum.shape:
        lum = np.asarray(tf.image.resize(lum[None, ..., None], size, method="area"))[0, ..., 0]
    maps = tf.image.resize(np.asarray(activation, "float32")[None], size, method="bilinear")
    maps = np.asarray(maps)[0].reshape(-1, activation.shape[-1])
    live = maps.std(axis=0) > 1e-8
    if not live.any() or lum.std() < 1e-8:
        return 0.0
    m = maps[:, live]
    m = (m - m.mean(0)) / m.std(0)
    v = lum.ravel()
    v = (v - v.mean()) / v.std()
    corr = np.abs(v @ m) / len(v)
    k = max(1, int(round(top * corr.size)))
    return float(np.sort(corr)[-k:].mean())


@dataclass
class DepthSummary:
    """Per-layer sparsity and input resemblance; see the module docstring for definitions."""

    layers: list[str]
    shapes: list[tuple]
    zero_fraction: np.ndarray
    dead_channels: np.ndarray
    input_corr: np.ndarray
    label: str = ""
    rows: list[dict] = field(default_factory=list)

    def table(self) -> str:
        """A plain-text table, one row per layer."""
        head = f"{'layer':<28} {'shape':<16} {'zeros':>6} {'dead ch':>8} {'input corr':>10}"
        lines = [head, "-" * len(head)]
        for i, name in enumerate(self.layers):
            lines.append(
                f"{name:<28} {'x'.join(map(str, self.shapes[i])):<16} "
                f"{self.zero_fraction[i]:6.2f} {self.dead_channels[i]:8.2f} "
                f"{self.input_corr[i]:10.2f}"
            )
        if self.label:
            lines.append(self.label)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def depth_summary(
    model: keras.Model,
    image,
    layers: Sequence[LayerRef] | None = None,
    *,
    top: float = 0.1,
) -> DepthSummary:
    """Per layer: fraction of zero activations, of dead channels, and input correlation.

    Parameters
    ----------
    model
        The model (nested ones too).
    image
        One pixel-space image ``(H, W, C)`` (or a batch: the values are averaged over images).
    layers
        Layers to summarise; default: every layer with a spatial output.
    top
        Fraction of channels whose correlation with the input is averaged.

    Examples
    --------
    >>> import keras, numpy as np
    >>> m = keras.Sequential([keras.Input((8, 8, 1)),
    ...                       keras.layers.Conv2D(2, 3, activation="relu", name="c")])
    >>> s = depth_summary(m, np.random.default_rng(0).uniform(size=(8, 8, 1)))
    >>> s.layers
    ['c']
    """
    if layers is None:
        layers = default_layers(model)
    x = as_batch(model, image, pixels=True, name="image")
    acts = activations(model, x, layers)
    names = list(acts)
    zero, dead, corr, shapes = [], [], [], []
    for name in names:
        a = acts[name]
        if a.ndim != 4:
            raise ValueError(
                f"Layer {name!r} has no spatial output (shape {a.shape}); depth_summary needs "
                "feature maps. Leave it out of `layers`."
            )
        shapes.append(a.shape[1:])
        zero.append(float(np.mean(a == 0)))
        dead.append(float(np.mean([dead_channels(ai).mean() for ai in a])))
        corr.append(float(np.mean([input_correlation(ai, xi, top) for ai, xi in zip(a, x)])))
    return DepthSummary(
        layers=names,
        shapes=shapes,
        zero_fraction=np.array(zero),
        dead_channels=np.array(dead),
        input_corr=np.array(corr),
        label=info(model).label,
    )


class CachedActivations:
    """Activations of a fixed set of images, computed once, served per layer and channel.

    For slider explorers: the first access runs one forward pass for every layer; moving a
    slider afterwards only indexes arrays.

    Examples
    --------
    >>> import keras, numpy as np
    >>> m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="c")])
    >>> cache = CachedActivations(m, np.zeros((8, 8, 1)))
    >>> cache.channel("c", 1).shape
    (6, 6)
    """

    def __init__(self, model: keras.Model, images, layers: Sequence[LayerRef] | None = None):
        self.model = model
        self.images = as_batch(model, images, pixels=True)
        self.layers = list(layers) if layers is not None else default_layers(model)
        taps.resolve(model, self.layers)
        self._acts: dict[str, np.ndarray] | None = None

    @property
    def all(self) -> dict[str, np.ndarray]:
        """``{layer: (N, ...) array}`` for every layer (computed on first access)."""
        if self._acts is None:
            self._acts = activations(self.model, self.images, self.layers)
        return self._acts

    def layer(self, layer: str, image: int = 0) -> np.ndarray:
        """The whole activation of ``layer`` for image number ``image``."""
        acts = self.all
        if layer not in acts:
            raise ValueError(f"Layer {layer!r} is not cached; cached layers: {list(acts)}")
        n = len(self.images)
        if not 0 <= image < n:
            raise ValueError(f"Image index {image} is out of range: valid 0..{n - 1}.")
        return acts[layer][image]

    def channel(self, layer: str, channel: int, image: int = 0) -> np.ndarray:
        """One channel's map ``(H, W)`` of ``layer`` for image number ``image``."""
        a = self.layer(layer, image)
        if a.ndim != 3:
            raise ValueError(f"Layer {layer!r} has no spatial output (shape {a.shape}).")
        (c,) = checks.indices(channel, a.shape[-1], "channel", layer)
        return a[..., c]
