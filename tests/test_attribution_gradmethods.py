"""Gradient x Input, the noise tunnel (SmoothGrad, SmoothGrad², VarGrad), Guided Backprop and
Guided Grad-CAM, each against an analytic case or a computation made here independently."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import conv_gap_model, images

from course_utils.attribution import gradient_x_input


def _linear(channels: int, activation):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((5, 5, channels)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation=activation, name="dense")])
    dense = model.get_layer("dense")
    dense.bias.assign(np.array([0.7, -1.3, 0.4], "float32"))  # a bias the map must leave out
    return model


@pytest.mark.parametrize("activation", ["softmax", None])
@pytest.mark.parametrize("channels", [1, 3])
def test_gradient_x_input_on_a_linear_model_is_w_times_x_and_complete(activation, channels):
    model = _linear(channels, activation)
    w = model.get_layer("dense").kernel.numpy()
    b = model.get_layer("dense").bias.numpy()
    x = images(3, size=5, channels=channels) * 2.0 - 0.5
    targets = np.array([0, 2, 1])
    maps = gradient_x_input(model, x, targets)
    for i, t in enumerate(targets):
        per_pixel = (w[:, t].reshape(5, 5, channels) * x[i]).sum(-1)
        np.testing.assert_allclose(maps[i], per_pixel, rtol=1e-5, atol=1e-6)
        logit = x[i].ravel() @ w[:, t] + b[t]  # the pre-softmax score, by hand
        np.testing.assert_allclose(maps[i].sum(), logit - b[t], rtol=1e-5, atol=1e-5)
    assert np.any(maps < 0) and np.any(maps > 0)  # signed


def test_gradient_x_input_on_a_relu_net_is_the_tape_computation():
    model = conv_gap_model(size=10, head="softmax")
    head = model.get_layer("head")
    features = keras.Model(model.inputs, model.get_layer("gap").output)
    x = images(2, size=10)
    targets = [2, 0]
    want = []
    for i, t in enumerate(targets):
        xi = tf.constant(x[i:i + 1])
        with tf.GradientTape() as tape:
            tape.watch(xi)
            logit = features(xi, training=False) @ head.kernel[:, t:t + 1] + head.bias[t]
        want.append((tape.gradient(logit, xi).numpy()[0] * x[i]).sum(-1))
    got = gradient_x_input(model, x, targets, batch_size=1)
    np.testing.assert_allclose(got, np.array(want), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gradient_x_input(model, x, targets), got, rtol=1e-6, atol=1e-8)
