"""The gradient kernels: the score's gradient with respect to the input or a layer, and how a
gradient becomes one value per pixel.

One kernel, :func:`gradient_rows_fn`, serves saliency (``z = x``), SmoothGrad
(``z = x + noise``), Integrated Gradients (``z`` on the path, ``delta = x - x'``) and expected
gradients; its ``relu`` option swaps ReLU's backward rule
(:func:`course_utils.engine.kernels.relu_taps`), e.g. ``"guided"`` for Guided Backprop.

Examples
--------
>>> import keras, numpy as np
>>> m = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
>>> fn = gradient_rows_fn(m, "sum", with_delta=False)
>>> ones = np.ones((1, 1), "float32")
>>> g = fn(np.zeros((1, 2, 2, 1), "float32"), ones, np.zeros(1, "float32")).numpy()
>>> bool(np.allclose(g.ravel(), m.layers[-1].kernel.numpy().ravel()))
True
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from course_utils.engine import checks, kernels, taps
from course_utils.engine.scoring import score

#: How a gradient's channels become one value per pixel (:func:`reduce_channels`).
REDUCTIONS = ("max_abs", "sum", "l2", "mean_abs")


# --------------------------------------------------------------------------------------------
# Channels -> one value per pixel
# --------------------------------------------------------------------------------------------


def reduce_channels(grads, how: str):
    """Reduce ``(..., C)`` attributions to one value per pixel (a TF op).

    ``"max_abs"``: max over channels of the absolute value (Simonyan et al. 2013);
    ``"sum"``: signed sum (keeps completeness for IG/SHAP); ``"l2"``: Euclidean norm;
    ``"mean_abs"``: mean absolute value.
    """
    if how == "max_abs":
        return tf.reduce_max(tf.abs(grads), axis=-1)
    if how == "sum":
        return tf.reduce_sum(grads, axis=-1)
    if how == "l2":
        return tf.norm(grads, axis=-1)
    if how == "mean_abs":
        return tf.reduce_mean(tf.abs(grads), axis=-1)
    raise ValueError(f"Unknown channel reduction {how!r}; use 'max_abs', 'sum', 'l2', 'mean_abs'.")


def check_reduce(how: str) -> str:
    """``reduce``: one of :data:`REDUCTIONS`."""
    return checks.choice(how, "reduce", REDUCTIONS)


# --------------------------------------------------------------------------------------------
# Gradients (TF ops, inside traced functions)
# --------------------------------------------------------------------------------------------


def input_gradients(model: keras.Model, z, weights, offset, relu: str | None = None):
    """Gradient of the explained score w.r.t. the input rows ``z`` (a TF op); ``relu``: a
    ReLU backward rule (:data:`course_utils.engine.kernels.RELU_BACKWARD`) or None."""
    with tf.GradientTape() as tape:
        tape.watch(z)
        s = score(model, z, weights, offset, taps=kernels.relu_taps(model, relu) or None)
    return tape.gradient(s, z)


def feature_gradients(model: keras.Model, path: tuple, x, weights, offset):
    """``(A, dS/dA)``: a layer's activations and the score's gradient w.r.t. them (a TF op).

    The layer is tapped during the forward pass (works inside nested models) and watched.
    """
    with tf.GradientTape() as tape:
        tap = taps.LayerTap(path[-1], tape=tape)
        s = score(model, x, weights, offset, taps=tap.taps)
    return tap.value, tape.gradient(s, tap.value)


# --------------------------------------------------------------------------------------------
# The compiled gradient kernel
# --------------------------------------------------------------------------------------------


def gradient_rows_fn(model: keras.Model, reduce: str, with_delta: bool,
                     relu: str | None = None) -> Callable:
    """Compiled ``f(z, [delta,] weights, offset) -> reduce(grad(z) [* delta])``, ``(B, H, W)``.

    The one gradient kernel behind saliency (``z = x``), SmoothGrad (``z = x + noise``),
    Integrated Gradients (``z`` on the path, ``delta = x - x'``) and expected gradients;
    ``relu`` swaps ReLU's backward rule (``None``: the true gradient).
    """

    def build():
        if with_delta:
            def fn(z, delta, weights, offset):
                return reduce_channels(
                    input_gradients(model, z, weights, offset, relu) * delta, reduce)
        else:
            def fn(z, weights, offset):
                return reduce_channels(input_gradients(model, z, weights, offset, relu), reduce)
        return kernels.tf_function(fn)

    options = (reduce, with_delta) if relu is None else (reduce, with_delta, relu)
    return kernels.compiled(model, "gradient_rows", build, options=options)
