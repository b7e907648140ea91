"""The one layer-tap helper: which feature layer a method reads, and how to read, watch or
replace its output during a forward pass (:func:`course_utils.surgery.forward`'s taps).

Examples
--------
>>> import keras, numpy as np, tensorflow as tf
>>> inp = keras.Input((6, 6, 1))
>>> a = keras.layers.Conv2D(2, 3, activation="relu", name="conv")(inp)
>>> m = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(a)))
>>> tap = LayerTap(feature_path(m, None)[-1])
>>> _ = surgery.forward(m, np.ones((1, 6, 6, 1), "float32"), tap.taps)
>>> tuple(tap.value.shape)
(1, 4, 4, 2)
"""

from __future__ import annotations

import keras

from course_utils import surgery
from course_utils.engine import kernels, scoring


def feature_path(model: keras.Model, layer) -> tuple:
    """The spatial layer a CAM-style method reads: ``layer`` or the last spatial feature map
    (after its activation), found also inside nested models.

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(2, 3, name="c"),
    ...                       keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    >>> feature_path(m, None)[-1].name
    'c'
    """
    if layer is None:
        layer = surgery.last_spatial_layer(model)
    return surgery.require_spatial(model, layer)


def activations_fn(model: keras.Model, path: tuple):
    """Compiled ``f(x) -> the output of the layer of path`` (a layer of :func:`feature_path`),
    in the forward pass every method runs; cached per (model, layer).

    Examples
    --------
    >>> import keras, numpy as np
    >>> m = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(2, 3, name="c"),
    ...                       keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    >>> tuple(activations_fn(m, feature_path(m, "c"))(np.ones((3, 6, 6, 1), "float32")).shape)
    (3, 4, 4, 2)
    """

    def build():
        def fn(x):
            tap = LayerTap(path[-1])
            scoring.forward_scores(model, x, tap.taps)
            return tap.value

        return kernels.tf_function(fn)

    return kernels.compiled(model, "activations", build, options=(id(path[-1]),))


class LayerTap:
    """Record one layer's output during a forward pass; optionally ``tape.watch`` it (for
    gradients with respect to it) or ``replace`` it by another tensor.

    Pass :attr:`taps` to :func:`course_utils.surgery.forward` (or to
    :func:`course_utils.engine.scoring.score`); read :attr:`value` after the pass (the
    layer's own output, also when it was replaced).
    """

    def __init__(self, layer, *, tape=None, replace=None):
        self.layer = layer
        self.tape = tape
        self.replace = replace
        self.value = None

    def __call__(self, t):
        if self.tape is not None:
            self.tape.watch(t)
        self.value = t
        return self.replace

    @property
    def taps(self) -> dict:
        """``{layer: self}``, the argument of :func:`course_utils.surgery.forward`."""
        return {self.layer: self}


def combine(*tap_dicts: dict) -> dict:
    """Merge ``{layer: tap}`` dicts; two taps on one layer run in order, the second seeing the
    output the first returned (or the layer's own output when it returned ``None``).

    Examples
    --------
    >>> both = combine({"a": lambda t: t + 1}, {"a": lambda t: 2 * t})
    >>> both["a"](1)
    4
    """
    out: dict = {}
    for taps in tap_dicts:
        for layer, tap in taps.items():
            first = out.get(layer)
            out[layer] = tap if first is None else _chain(first, tap)
    return out


def _chain(first, second):
    def tap(t):
        replaced = first(t)
        t = t if replaced is None else replaced
        again = second(t)
        return t if again is None else again

    return tap
