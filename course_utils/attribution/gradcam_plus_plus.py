"""Grad-CAM++ (Chattopadhay, Sarkar, Howlader & Balasubramanian 2018)."""

from __future__ import annotations

import tensorflow as tf

from course_utils.attribution.cam_family import cam_variant


@cam_variant
def gradcam_plus_plus(a, g):
    """Grad-CAM++: pixel-wise weighted gradients, better when several instances are present.

    Same layer default, score (pre-softmax), order (weights, sum, ReLU, bilinear upsampling)
    and raw (unnormalized) output as :func:`course_utils.attribution.gradcam`; only the
    channel weights differ: ``w_k = sum_ij alpha_kij ReLU(g_kij)`` with
    ``alpha = g^2 / (2 g^2 + sum_ab A_kab g^3)``, the paper's closed form for ``Y = exp(S)``;
    the common factor ``exp(S)`` of the weights is dropped (it only rescales the map per image
    and overflows for large logits).

    Returns
    -------
    float32 ``(N, H, W)``, non-negative.

    Examples
    --------
    >>> import keras, numpy as np
    >>> inp = keras.Input((8, 8, 3))
    >>> x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    >>> out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    >>> gradcam_plus_plus(keras.Model(inp, out), np.random.rand(8, 8, 3)).shape
    (1, 8, 8)
    """
    g2 = tf.square(g)
    g3 = g2 * g
    denom = 2.0 * g2 + tf.reduce_sum(a, axis=(1, 2), keepdims=True) * g3
    safe = tf.where(tf.abs(denom) > 0.0, denom, tf.ones_like(denom))
    alpha = tf.where(tf.abs(denom) > 0.0, g2 / safe, tf.zeros_like(g2))
    return tf.reduce_sum(alpha * tf.nn.relu(g), axis=(1, 2), keepdims=True)
