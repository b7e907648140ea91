"""What activation maximization maximizes, batched: image ``i`` of a batch serves unit ``i``.

``channel``
    mean activation of channel ``c`` over the whole feature map (Lucid's ``channel``);
``neuron``
    activation of channel ``c`` at the centre of the map (a single unit; for a ``Dense`` layer,
    unit ``c``);
``layer``
    mean squared activation of a whole layer (DeepDream's objective; unit indices are ignored);
``class``
    a class logit (Simonyan et al. 2013): the model's last layer with its softmax removed.

Every score is a vector with one value per image, so one forward/backward pass optimizes a whole
batch of units at once, each image only by its own unit's gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from course_utils import surgery
from course_utils.engine import checks, taps

KINDS = ("channel", "neuron", "layer", "class")


@dataclass(frozen=True)
class Target:
    """A resolved objective: kind, layer path, and one unit index per picture."""

    kind: str
    path: tuple
    units: tuple[int, ...]

    @property
    def layer_name(self) -> str:
        """``"outer/inner"`` name of the layer."""
        return surgery.path_name(self.path)

    @property
    def layer(self) -> keras.layers.Layer:
        """The layer object."""
        return self.path[-1]


def target(model: keras.Model, kind: str, layer=None, units=None) -> Target:
    """Check an objective request and resolve it to a :class:`Target`.

    Parameters
    ----------
    model
        The model.
    kind
        One of ``"channel"``, ``"neuron"``, ``"layer"``, ``"class"``.
    layer
        Layer reference (ignored for ``"class"``, which uses the logits).
    units
        Channel / unit / class indices (an int or a sequence); ``None`` means all channels for
        ``"channel"`` and ``"neuron"``; ignored for ``"layer"`` (one picture).

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="c")])
    >>> target(m, "channel", "c", [0, 3]).units
    (0, 3)
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown objective {kind!r}; choose one of {', '.join(KINDS)}.")
    if kind == "class":
        path = surgery.find_path(model, surgery.output_layer(model))  # read as logits
    else:
        if layer is None:
            raise ValueError(f"Objective {kind!r} needs a layer.")
        path = surgery.require_spatial(model, layer) if kind == "channel" else surgery.find_path(
            model, layer
        )
    name = surgery.path_name(path)
    shape = taps.output_shape(path)
    if kind == "neuron" and len(shape) not in (2, 4):
        raise ValueError(
            f"Layer {name!r} outputs shape {shape}; a neuron objective needs (N, H, W, C) or "
            "(N, units)."
        )
    if kind == "layer":
        return Target(kind, path, (0,))
    n = int(shape[-1])
    what = "class" if kind == "class" else ("channel" if len(shape) == 4 else "unit")
    if units is None:
        if kind == "class":
            raise ValueError(f"Give the class indices to visualize (0..{n - 1}).")
        units = range(n)
    idx = checks.indices(list(units) if not np.isscalar(units) else units, n, what, name)
    return Target(kind, path, tuple(int(i) for i in idx))


def score(kind: str, act: tf.Tensor, units: tf.Tensor, floor: tf.Tensor | None = None
          ) -> tf.Tensor:
    """Per-image objective values ``(B,)`` of activation ``act`` for ``units`` ``(B,)``.

    With ``floor`` (a scalar; ``"channel"`` and ``"neuron"`` only) the unit's values are read
    as ``max(value, floor)`` before they are averaged: ``floor = 0`` turns a pre-ReLU activation
    into the layer's output, a very negative one leaves it as it is (the pre-ReLU warm-up of
    :func:`~course_utils.features.visualize`). Only the unit's values pass through the max,
    never the whole map.

    Examples
    --------
    >>> act = tf.constant([[[[1.0, -2.0]], [[-3.0, 4.0]]]])  # (1, 2, 1, 2)
    >>> float(score("channel", act, tf.constant([1]))[0])
    1.0
    >>> float(score("channel", act, tf.constant([1]), floor=tf.constant(0.0))[0])
    2.0
    """
    if floor is not None and kind not in ("channel", "neuron"):
        raise ValueError(f"A floor applies to channel and neuron objectives, not {kind!r}.")
    if kind == "layer":
        axes = list(range(1, len(act.shape)))
        return tf.reduce_mean(tf.square(act), axis=axes)
    if len(act.shape) == 2:  # a dense layer: neuron or class logit
        picked = tf.gather(act, units, axis=1, batch_dims=1)
        return picked if floor is None else tf.maximum(picked, floor)
    if kind == "channel":
        if floor is None:
            # average first, then pick: gathering one channel of a big map (with batch_dims)
            # copies the whole map and scatters a dense gradient back; (B, C) means are cheap
            return tf.gather(tf.reduce_mean(act, axis=[1, 2]), units, axis=1, batch_dims=1)
        # pick each image's channel as a batched product with a one-hot vector (one read of
        # the map; its gradient, one write, is the dense tensor the layer's backward pass needs
        # anyway), then the max on that channel alone
        one_hot = tf.one_hot(units, tf.shape(act)[-1], dtype=act.dtype)
        picked = tf.einsum("bhwc,bc->bhw", act, one_hot)
        return tf.reduce_mean(tf.maximum(picked, floor), axis=[1, 2])
    if kind == "neuron":
        h, w = tf.shape(act)[1], tf.shape(act)[2]
        centre = act[:, h // 2, w // 2, :]
        picked = tf.gather(centre, units, axis=1, batch_dims=1)
        return picked if floor is None else tf.maximum(picked, floor)
    raise ValueError(f"Objective {kind!r} needs a dense output, got shape {tuple(act.shape)}.")


def channel_means(act: np.ndarray) -> np.ndarray:
    """Mean activation of every channel per image: ``(N, H, W, C)`` -> ``(N, C)``."""
    a = np.asarray(act)
    return a.reshape(a.shape[0], -1, a.shape[-1]).mean(axis=1)
