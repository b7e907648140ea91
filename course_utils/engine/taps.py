"""The one layer-tap helper: which layer a method reads, and how to read, watch or replace
its output during a forward pass (:func:`course_utils.surgery.forward`'s taps); a forward pass
that stops at the last layer asked for (:func:`forward_until`, the feature tools) and where to
read a layer before its ReLU (:func:`pre_relu`).

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

from collections.abc import Sequence

import keras
import numpy as np

from course_utils import surgery
from course_utils.engine import kernels, scoring


def resolve(model: keras.Model, layers) -> list[tuple]:
    """Resolve one layer reference or a sequence of them to paths (see ``surgery.find_path``).

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(2, 3, name="c")])
    >>> [path[-1].name for path in resolve(m, "c")]
    ['c']
    """
    if layers is None:
        raise ValueError("Give at least one layer (name, index or layer object).")
    if isinstance(layers, (str, int, np.integer, keras.layers.Layer)):
        layers = [layers]
    paths = [surgery.find_path(model, ref) for ref in layers]
    if not paths:
        raise ValueError("Give at least one layer (name, index or layer object), not [].")
    return paths


def output_shape(path: tuple) -> tuple:
    """Symbolic output shape of the last layer of ``path`` (batch axis first)."""
    return tuple(surgery.output_shape(path[-1]))


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


# --------------------------------------------------------------------------------------------
# A forward pass that stops at the last layer asked for
# --------------------------------------------------------------------------------------------


class _Stop(Exception):
    """Raised by a tap once every requested activation is recorded (ends the forward pass)."""


def forward_until(model: keras.Model, x, paths: Sequence[tuple], linear: Sequence = ()) -> list:
    """Activations of ``paths`` from one forward pass that stops after the last of them;
    ``linear``: layers computed without their activation
    (:func:`course_utils.engine.scoring.read_linear`).

    Works eagerly and inside ``tf.function`` (the layers after the last requested one are then
    never traced, so visualizing ``block1_conv1`` of VGG16 does not pay for ``block5``).

    Examples
    --------
    >>> import keras, numpy as np
    >>> m = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(2, 3, name="c"),
    ...                       keras.layers.Conv2D(1, 3, name="d")])
    >>> [tuple(a.shape) for a in forward_until(m, np.ones((1, 6, 6, 1)), resolve(m, "c"))]
    [(1, 4, 4, 2)]
    """
    layers = []
    for path in paths:
        if not any(layer is path[-1] for layer in layers):
            layers.append(path[-1])
    got: dict[int, object] = {}

    def make(layer):
        def tap(t):
            got[id(layer)] = t
            if len(got) == len(layers):
                raise _Stop

        return tap

    try:
        surgery.forward(model, x, {layer: make(layer) for layer in layers}, linear=linear)
    except _Stop:
        pass
    return [got[id(path[-1])] for path in paths]


# --------------------------------------------------------------------------------------------
# Before the ReLU
# --------------------------------------------------------------------------------------------


def _is_relu(layer: keras.layers.Layer) -> bool:
    """A plain ReLU layer (no cap, slope or threshold: its output is ``max(input, 0)``)."""
    if isinstance(layer, keras.layers.ReLU):
        return layer.max_value is None and not layer.negative_slope and not layer.threshold
    if isinstance(layer, keras.layers.Activation):
        return surgery.activation_name(layer) == "relu"
    return False


def producer_path(model: keras.Model, path: tuple) -> tuple | None:
    """Path of the layer whose output feeds the last layer of ``path`` (one input only)."""
    nodes = getattr(path[-1], "_inbound_nodes", None) or []
    if len(nodes) != 1:
        return None
    tensors = list(getattr(nodes[0], "input_tensors", []))
    if len(tensors) != 1:
        return None
    history = getattr(tensors[0], "_keras_history", None)
    op = getattr(history, "operation", None)
    if op is None or isinstance(op, keras.layers.InputLayer):
        return None
    try:
        return surgery.find_path(model, op)
    except (ValueError, TypeError):
        return None


def pre_relu(model: keras.Model, path: tuple) -> tuple[tuple | None, bool]:
    """Where to read a layer's activation *before* its ReLU, for optimization.

    Returns ``(path, fused)``: for a separate ``ReLU`` layer, the layer that feeds it and
    ``False``; for a layer with a fused ``relu`` activation that can be computed without it
    (:func:`course_utils.engine.scoring.read_linear` with ``"relu"``), the layer itself and
    ``True``; otherwise ``None`` and ``False`` (no ReLU to look behind).
    """
    if _is_relu(path[-1]):
        prev = producer_path(model, path)
        if prev is not None:
            return prev, False
    if (surgery.activation_name(path[-1]) == "relu"
            and surgery.pre_activation_call(path[-1]) is not None):
        return path, True
    return None, False
