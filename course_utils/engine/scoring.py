"""What a method explains: the model's head, its logits and the score of the target class.

:func:`score` is the scalar each method explains: the **pre-softmax** score of the target
class. Gradients of a softmax probability saturate (a confident prediction has a near-zero
gradient everywhere) and mix in every other class through the normalization; the logit is the
quantity the papers differentiate (Simonyan et al. 2013, Selvaraju et al. 2017). The final
layer is computed without its softmax/sigmoid in the traced graph
(``surgery.forward(logits=True)``); the model itself is never modified, so other callers
(other threads, plain ``model(x)``) always see it as it is. Where the activation cannot be
left out a warning says so.

Examples
--------
>>> import keras, numpy as np
>>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
>>> w, o = score_weights(m, np.array([1]))
>>> w.tolist(), o.tolist()
([[0.0, 1.0]], [0.0])
"""

from __future__ import annotations

import dataclasses
import warnings
import weakref
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from course_utils import surgery
from course_utils.engine import batching, kernels, replicas

#: Output activations that turn scores into probabilities (left out to read logits).
PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")
#: Models already warned about (probabilities explained instead of logits): warned once.
_WARNED: weakref.WeakSet = weakref.WeakSet()


# --------------------------------------------------------------------------------------------
# The model's head: where the pre-softmax score is
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    """What the last layer of a model is and how to get its pre-activation score."""

    layer: keras.layers.Layer | None
    n_outputs: int
    activation: str  # "softmax", "sigmoid", "linear" or another name
    swappable: bool  # True when the activation can be left out to read logits
    # True when surgery.pre_activation_call computes the logit from the layer's variables;
    # otherwise the layer's own call runs on a view of it (surgery.activation_off_call)
    in_graph: bool = False
    # True when nothing in the graph says what the output is (a Lambda, an operation, a layer
    # without an activation): :func:`probe_head` looks at the first images' outputs
    opaque: bool = False

    @property
    def binary(self) -> bool:
        """A single output unit: a sigmoid (or a raw logit) scoring one class against the other."""
        return self.n_outputs == 1

    @property
    def logits(self) -> bool:
        """True when :func:`score` reads a pre-activation value."""
        return self.swappable or self.activation not in PROBABILITY_ACTIVATIONS


def head(model: keras.Model) -> Head:
    """Describe the model's output layer (cached).

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    >>> h = head(m)
    >>> (h.n_outputs, h.activation, h.logits)
    (3, 'softmax', True)
    """
    cache = surgery.model_cache(model, "_course_utils_head")
    if "head" in cache:
        return cache["head"]
    layer = surgery.output_layer(model)
    name = surgery.activation_name(layer)
    n_out = int(model.outputs[0].shape[-1])
    in_graph = surgery.pre_activation_call(layer) is not None
    swappable = in_graph or surgery.activation_off_call(layer) is not None
    result = Head(layer=layer, n_outputs=n_out, activation=name, swappable=swappable,
                  in_graph=in_graph, opaque=name == "linear" and not hasattr(layer, "activation"))
    cache["head"] = result
    return result


def probe_head(model: keras.Model, x: np.ndarray) -> Head:
    """:func:`head`, after checking an opaque head's output on (up to 8 of) the images ``x``.

    A head written as a ``Lambda`` or an operation that :func:`course_utils.surgery.
    probability_op` does not recognise (``tf.nn.softmax(2 * t)``, a custom layer) cannot be
    read past. If its outputs look like probabilities (rows >= 0 that sum to 1; a single unit
    within [0, 1]) they are treated as such (targets, deletion) and a warning says that
    probabilities, not logits, are explained; otherwise they are taken as scores. Done once
    per model.
    """
    h = head(model)
    if not h.opaque:
        return h
    out = np.asarray(model(tf.constant(x[:8]), training=False), "float64")
    in_unit = bool(np.all((out >= 0.0) & (out <= 1.0)))
    kind = None
    if in_unit and h.binary:
        kind, why = "sigmoid", "its single output is within [0, 1]"
    elif in_unit and np.allclose(out.sum(axis=-1), 1.0, atol=1e-3):
        kind, why = "softmax", "its outputs are >= 0 and sum to 1"
    h = dataclasses.replace(h, opaque=False, activation=kind or h.activation)
    surgery.model_cache(model, "_course_utils_head")["head"] = h
    if kind is not None:
        _WARNED.add(model)
        warnings.warn(
            f"Model {model.name!r} ends in a {type(h.layer).__name__} {h.layer.name!r} whose "
            f"output looks like probabilities ({why}), but it is not a {kind} the course can "
            f"leave out: explaining {kind} probabilities, whose gradients saturate, not logits. "
            f"End the model with a Dense layer with activation='{kind}', a Softmax layer or "
            f"keras.ops.{kind} (these are read past), or give a model that outputs logits.",
            UserWarning,
            stacklevel=5,
        )
    return h


def warn_saturating(layer, activation: str, doing: str, stacklevel: int) -> None:
    """The one warning for a softmax/sigmoid that cannot be left out: ``doing`` (explaining,
    optimizing) probabilities, whose gradients saturate, instead of logits."""
    name = getattr(layer, "name", "?")
    warnings.warn(
        f"Layer {name!r} ({type(layer).__name__}) cannot be computed without its "
        f"{activation}: {doing} probabilities, whose gradients saturate. A Dense or Conv2D layer "
        "with the activation (or a separate Softmax layer) gives logits.",
        UserWarning,
        stacklevel=stacklevel + 1,
    )


def warn_probabilities(model: keras.Model, stacklevel: int) -> None:
    """Warn once per model when its final softmax/sigmoid cannot be left out (probabilities,
    whose gradients saturate, are then explained)."""
    h = head(model)
    if not h.logits and model not in _WARNED:
        _WARNED.add(model)
        warn_saturating(h.layer, h.activation, "explaining", stacklevel + 1)


def read_linear(path: tuple, names: tuple = PROBABILITY_ACTIVATIONS) -> tuple:
    """The layers to compute without their activation when ``path``'s output is optimized
    (the argument ``linear`` of :func:`course_utils.engine.taps.forward_until`).

    ``(path[-1],)`` when its activation is one of ``names`` (softmax or sigmoid: optimize
    logits, whose gradients do not saturate; ``"relu"`` for the pre-ReLU warm-up) and
    :func:`course_utils.surgery.pre_activation_call` computes the layer without it from its
    variables, so the model is never modified (safe in ``tf.function`` and across threads);
    otherwise ``()``, with a warning when probabilities must be optimized instead of logits.

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    >>> read_linear((m.layers[-1],)) == (m.layers[-1],)
    True
    """
    layer = path[-1]
    name = surgery.activation_name(layer)
    if name not in names:
        return ()
    if surgery.pre_activation_call(layer) is not None:
        return (layer,)
    if name in PROBABILITY_ACTIVATIONS:
        warn_saturating(layer, name, "optimizing", stacklevel=3)
    return ()


# --------------------------------------------------------------------------------------------
# Scores (TF ops, inside traced functions)
# --------------------------------------------------------------------------------------------


def forward_scores(model: keras.Model, x, taps=None):
    """All output units of ``model`` on ``x``, pre-softmax where the activation can be left out.

    The forward pass folds batch norms into their convolutions (:mod:`course_utils.folding`).
    """
    h = head(model)
    return surgery.forward(model, x, taps, logits=h.activation in PROBABILITY_ACTIVATIONS)


def score(model: keras.Model, x, weights, offset, taps=None):
    """The explained score per row: ``sum(weights * output, -1) + offset`` (a TF op)."""
    out = forward_scores(model, x, taps)
    return tf.reduce_sum(out * weights, axis=-1) + offset


def score_weights(model: keras.Model, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image weights over the output units and offsets; see
    :class:`course_utils.engine.inputs.Job`."""
    h = head(model)
    n = len(targets)
    if h.binary:
        sign = np.where(targets == 0, 1.0, -1.0).astype("float32")[:, None]
        offset = np.where((targets == 1) & (not h.logits), 1.0, 0.0).astype("float32")
        return sign, offset
    weights = np.zeros((n, h.n_outputs), "float32")
    weights[np.arange(n), targets] = 1.0
    return weights, np.zeros(n, "float32")


# --------------------------------------------------------------------------------------------
# Scores computed (compiled, chunked)
# --------------------------------------------------------------------------------------------


def predict_raw(model: keras.Model, x: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's output (pre-activation where possible) for a batch, compiled and chunked."""
    fn = kernels.compiled(
        model, "predict", lambda: kernels.tf_function(lambda t: forward_scores(model, t)))
    outs = [replicas.call(fn, (x[sl],)) for sl in batching.chunks(len(x), batch_size)]
    return np.concatenate(outs)


def scores_fn(model: keras.Model):
    """Compiled ``f(z, weights, offset) -> score per row`` (forward passes only)."""
    return kernels.compiled(
        model, "score",
        lambda: kernels.tf_function(lambda z, w, o: score(model, z, w, o)),
    )


def row_scores(model: keras.Model, x, weights, offset, batch_size: int) -> np.ndarray:
    """The explained score of each row of ``x`` (compiled, chunked)."""
    return batching.run_rows(
        len(x), batch_size, lambda sl: (x[sl], weights[sl], offset[sl]), scores_fn(model)
    )
