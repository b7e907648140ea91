"""The CAM family: a variant is its channel weights and nothing else.

A gradient-weighted CAM (Grad-CAM, Grad-CAM++, ...) reads a spatial layer's activations ``A``
and the gradient ``G = dS/dA`` of the target's pre-softmax score, weighs the channels, sums
them, keeps the positive part and upsamples bilinearly to the input size:
``upsample(ReLU(sum_k w_k A_k))``. Only ``w`` differs between variants, so a variant is one
function ``weights(A, G) -> (N, 1, 1, K)`` decorated with :func:`cam_variant`; the family does
the rest (validation, the layer default, the tap, the compiled function and its cache key,
chunking), as pytorch-grad-cam's ``BaseCAM.get_cam_weights``. A CAM whose weights are not
a function of ``(A, G)`` (CAM's classifier weights, :mod:`~course_utils.attribution.cam`)
calls the family's kernel, :func:`run_cam`, with its own map.

Examples
--------
>>> import keras, numpy as np, tensorflow as tf
>>> @cam_variant
... def mean_gradcam(a, g):
...     '''Grad-CAM's weights (a toy copy).'''
...     return tf.reduce_mean(g, axis=(1, 2), keepdims=True)
>>> inp = keras.Input((8, 8, 3))
>>> x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
>>> m = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
>>> mean_gradcam(m, np.random.rand(2, 8, 8, 3)).shape
(2, 8, 8)
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from course_utils.attribution.template import method
from course_utils.engine import batching, gradients, kernels, scoring, spaces, taps


def weighted_map(weights, a):
    """``ReLU(sum_k w_k A_k)`` (a TF op, ``(N, h, w)``): ``weights`` ``(N, 1, 1, K)``,
    ``a`` ``(N, h, w, K)``."""
    return tf.nn.relu(tf.reduce_sum(weights * a, axis=-1))


def run_cam(model, job, name: str, path: tuple, to_map: Callable, *,
            with_gradients: bool = True, options: tuple = ()):
    """The kernel of every CAM: tap the layer of ``path``, compute ``to_map(A, G, weights)``
    (``(N, h, w)``; ``G = dS/dA``, or ``None`` with ``with_gradients=False``; ``weights`` the
    job's score weights ``(N, classes)``), upsample bilinearly to the input size; compiled
    once per (model, ``name``, layer, ``options``, input shape) and run in chunks."""
    size = job.x.shape[1:3]

    def build():
        if with_gradients:
            def fn(x, weights, offset):
                a, g = gradients.feature_gradients(model, path, x, weights, offset)
                return spaces.upsample(to_map(a, g, weights), size)
        else:
            def fn(x, weights):
                tap = taps.LayerTap(path[-1])
                scoring.forward_scores(model, x, tap.taps)
                return spaces.upsample(to_map(tap.value, None, weights), size)
        return kernels.tf_function(fn)

    key = (*(id(p) for p in path), *options)
    fn = kernels.compiled(model, name, build, options=key, shape=job.shape)
    rows = job.rows if with_gradients else (lambda sl: (job.x[sl], job.weights[sl]))
    return batching.run_rows(job.n, job.batch_size, rows, fn)


def cam_variant(weights: Callable) -> Callable:
    """Make a CAM method from its channel weights ``weights(a, g) -> (N, 1, 1, K)`` (TF ops;
    ``a``: the layer's activations ``(N, h, w, K)``, ``g``: the score's gradient w.r.t. them).

    The method is ``name(model, images, targets=None, *, layer=None, batch_size=None)`` with
    the weights function's name and docstring; ``layer`` is a name or index of a layer with a
    spatial output, by default the last spatial feature map after its activation (found also
    inside a nested base model). It returns float32 ``(N, H, W)`` maps, non-negative and
    unnormalized. ``method.cam_map(a, g)`` is the map before upsampling and
    ``method.channel_weights`` the weights function.
    """
    name = weights.__name__

    def cam_map(a, g):
        return weighted_map(weights(a, g), a)

    def math(model, job, *, layer=None):
        path = taps.feature_path(model, layer)
        return run_cam(model, job, name, path, lambda a, g, _: cam_map(a, g))

    math.__name__ = math.__qualname__ = name
    math.__doc__ = weights.__doc__
    math.__module__ = weights.__module__
    public = method()(math)
    public.cam_map = cam_map
    public.channel_weights = weights
    return public
