"""Grad-CAM (Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra 2017)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from course_utils.attribution import core


def gradcam_map(a, g):
    """``ReLU(sum_k alpha_k A_k)``, ``alpha_k = mean_ij dS/dA_k(i, j)`` (a TF op, ``(N, h, w)``)."""
    alpha = tf.reduce_mean(g, axis=(1, 2), keepdims=True)
    return tf.nn.relu(tf.reduce_sum(alpha * a, axis=-1))


def cam_method(name: str, combine, model, images, targets, layer, batch_size) -> np.ndarray:
    """Run a gradient-weighted CAM variant: ``combine(A, dS/dA) -> (N, h, w)``, then bilinear
    upsampling to the input size, in one compiled function; shared by Grad-CAM and Grad-CAM++."""
    job = core.prepare(model, images, targets, batch_size)
    batch_size = job.batch_size
    path = core.feature_path(model, layer)
    size = job.x.shape[1:3]

    def build():
        def fn(x, weights, offset):
            a, g = core.feature_gradients(model, path, x, weights, offset)
            return core.upsample(combine(a, g), size)

        return core.tf_function(fn)

    key = (name, tuple(id(p) for p in path), tuple(size))
    fn = core.compiled(model, key, build)
    maps = core.run_rows(
        job.n, batch_size, lambda sl: (job.x[sl], job.weights[sl], job.offset[sl]), fn
    )
    return core.as_float32(maps)


def gradcam(
    model: keras.Model,
    images,
    targets=None,
    *,
    layer=None,
    batch_size: int | None = None,
) -> np.ndarray:
    """Gradient-weighted class activation map, upsampled to the input size.

    Order as in Selvaraju et al. (2017): channel weights ``alpha_k`` = spatial mean of the
    gradient of the target's **pre-softmax** score ``S`` w.r.t. feature map ``A_k``; weighted
    sum; ReLU; then bilinear upsampling. The map is returned **unnormalized**: per-image min-max
    scaling would make an irrelevant class look as strong as the predicted one; normalizing is
    the plotting layer's job. The logit is used because softmax gradients vanish for confident
    predictions.

    Parameters
    ----------
    layer
        Name or index (see ``course_utils.surgery.layer_names``) of a layer with a spatial
        output. Default: the last spatial feature map *after its activation* (not a raw
        ``Conv2D`` before batch norm), found also inside a nested base model.

    Returns
    -------
    float32 ``(N, H, W)``, non-negative.

    Examples
    --------
    >>> import keras, numpy as np
    >>> inp = keras.Input((8, 8, 3))
    >>> x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    >>> out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    >>> gradcam(keras.Model(inp, out), np.random.rand(2, 8, 8, 3)).shape
    (2, 8, 8)
    """
    return cam_method("gradcam", gradcam_map, model, images, targets, layer, batch_size)
