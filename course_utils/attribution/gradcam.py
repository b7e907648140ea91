"""Grad-CAM (Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra 2017)."""

from __future__ import annotations

import tensorflow as tf

from course_utils.attribution.cam_family import cam_variant


@cam_variant
def gradcam(a, g):
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
    return tf.reduce_mean(g, axis=(1, 2), keepdims=True)
