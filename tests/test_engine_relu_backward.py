"""The override point of ReLU's backward pass (course_utils.engine.kernels.relu_taps),
checked against Guided Backprop computed by hand on a two-layer ReLU network."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_utils.attribution.guided_backprop import guided_backprop
from course_utils.attribution.saliency import saliency
from course_utils.engine import gradients, kernels

W1 = np.array([[1.0, -2.0, 0.5], [-1.0, 1.0, 2.0]], "float32")  # 2 inputs -> 3 hidden
B1 = np.array([0.5, 0.1, -0.2], "float32")
W2 = np.array([[1.0, -1.5], [-2.0, 1.0], [0.5, 1.0]], "float32")  # 3 hidden -> 2 hidden
B2 = np.array([0.2, -0.1], "float32")
W3 = np.array([[1.0, -0.5], [-1.0, 1.0]], "float32")  # 2 hidden -> 2 classes
X = np.array([[0.8, 0.3], [-0.5, 1.2], [1.0, 1.0]], "float32")


def _model(style: str) -> keras.Model:
    """Input (1, 1, 2) -> Flatten -> Dense(3)+ReLU -> Dense(2)+ReLU -> Dense(2), with the ReLU
    fused (``activation="relu"``), as ``keras.layers.ReLU`` or inside a nested model."""
    inp = keras.Input((1, 1, 2))
    z = keras.layers.Flatten()(inp)
    if style == "fused":
        d1 = keras.layers.Dense(3, activation="relu")
        d2 = keras.layers.Dense(2, activation="relu")
        z = d2(d1(z))
    elif style == "layers":
        d1, d2 = keras.layers.Dense(3), keras.layers.Dense(2)
        z = keras.layers.ReLU()(d2(keras.layers.ReLU()(d1(z))))
    else:  # nested
        d1 = keras.layers.Dense(3, activation="relu")
        d2 = keras.layers.Dense(2)
        inner = keras.Sequential([keras.Input((3,)), d2, keras.layers.Activation("relu")])
        z = inner(d1(z))
    d3 = keras.layers.Dense(2, use_bias=False)
    model = keras.Model(inp, d3(z))
    d1.set_weights([W1, B1])
    d2.set_weights([W2, B2])
    d3.set_weights([W3])
    return model


def _by_hand(x: np.ndarray, target: int, guided: bool) -> np.ndarray:
    """dS/dx of S = relu(relu(x W1 + b1) W2 + b2) W3[:, target], with Guided Backprop's ReLU
    rule (pass back where both the input and the gradient are positive) or the true one."""
    z1 = x @ W1 + B1
    z2 = np.maximum(z1, 0) @ W2 + B2
    g = W3[:, target].copy()

    def through_relu(g, z):
        return g * (z > 0) * ((g > 0) if guided else 1.0)

    g = through_relu(g, z2) @ W2.T
    g = through_relu(g, z1) @ W1.T
    return g


@pytest.mark.parametrize("style", ["fused", "layers", "nested"])
@pytest.mark.parametrize("target", [0, 1])
def test_guided_relu_rule_matches_the_hand_computation(style, target):
    model = _model(style)
    before = [w.copy() for w in model.get_weights()]
    fn = gradients.gradient_rows_fn(model, "sum", with_delta=False, relu="guided")
    weights = np.zeros((len(X), 2), "float32")
    weights[:, target] = 1.0
    x = X[:, None, None, :]
    got = fn(x, weights, np.zeros(len(X), "float32")).numpy()[:, 0, 0]
    want_guided = np.array([_by_hand(row, target, True).sum() for row in X])
    want_plain = np.array([_by_hand(row, target, False).sum() for row in X])
    assert not np.allclose(want_guided, want_plain)  # the example tells the rules apart
    np.testing.assert_allclose(got, want_guided, rtol=1e-5, atol=1e-6)
    per_channel = gradients.input_gradients(model, tf.constant(x), tf.constant(weights),
                                            tf.zeros(len(X)), relu="guided").numpy()[:, 0, 0]
    np.testing.assert_allclose(per_channel, [_by_hand(row, target, True) for row in X],
                               rtol=1e-5, atol=1e-6)
    # The true gradient is untouched (same model, no rule), and so is the model.
    plain = saliency(model, x, targets=target, reduce="sum")[:, 0, 0]
    np.testing.assert_allclose(plain, want_plain, rtol=1e-5, atol=1e-6)
    for a, b in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(model(x).numpy(), np.maximum(np.maximum(
        X @ W1 + B1, 0) @ W2 + B2, 0) @ W3, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("style", ["fused", "layers", "nested"])
def test_guided_backprop_method_is_the_hand_computation_per_channel(style):
    model = _model(style)
    targets = [0, 1, 0]
    for reduce, how in (("max_abs", lambda g: np.abs(g).max()), ("sum", np.sum)):
        maps = guided_backprop(model, X[:, None, None, :], targets=targets, reduce=reduce)
        want = [how(_by_hand(row, t, True)) for row, t in zip(X, targets, strict=True)]
        np.testing.assert_allclose(maps[:, 0, 0], want, rtol=1e-5, atol=1e-6)


def test_relu_layers_and_unknown_rule():
    model = _model("layers")
    assert len(kernels.relu_layers(model)) == 2
    assert kernels.relu_taps(model, None) == {}
    with pytest.raises(ValueError, match="Unknown ReLU backward rule 'bogus'"):
        kernels.relu_taps(model, "bogus")
    leaky = keras.Sequential([keras.Input((2,)), keras.layers.ReLU(negative_slope=0.1)])
    assert kernels.relu_layers(leaky) == []


def test_guided_rule_passes_positive_gradients_only():
    y = tf.constant([1.0, 2.0, 3.0])
    with tf.GradientTape() as tape:
        tape.watch(y)
        out = kernels.RELU_BACKWARD["guided"](y) * tf.constant([2.0, -1.0, 0.5])
    np.testing.assert_array_equal(tape.gradient(out, y).numpy(), [2.0, 0.0, 0.5])
