"""Batch-norm folding and in-graph logits in surgery.forward: the same function as the model,
checked against the model's own inference call."""

from __future__ import annotations

import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_utils import attribution, folding, surgery
from course_utils.engine import kernels, scoring


def _randomize_bn(model, seed=0):
    """Give every batch norm non-trivial statistics (fresh ones are the identity)."""
    rng = np.random.default_rng(seed)
    for _, layer in surgery.iter_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            for name in ("gamma", "moving_variance", "beta", "moving_mean"):
                v = getattr(layer, name)
                if v is not None:
                    positive = name in ("gamma", "moving_variance")
                    v.assign(rng.uniform(0.5, 2.0, v.shape) if positive
                             else rng.normal(0.0, 0.5, v.shape))


@pytest.fixture(scope="module")
def bn_model():
    """Every supported pair, with and without bias / centre / scale, and a conv whose output
    also feeds a skip connection (must not be folded)."""
    keras.utils.set_random_seed(1)
    inp = keras.Input((12, 12, 3))
    z = keras.layers.Conv2D(6, 3, padding="same", name="c1")(inp)
    z = keras.layers.BatchNormalization(name="bn1")(z)
    z = keras.layers.ReLU()(z)
    z = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False, name="dw")(z)
    z = keras.layers.BatchNormalization(center=False, name="bn2")(z)
    z = keras.layers.SeparableConv2D(8, 3, strides=2, padding="same", name="sep")(z)
    z = keras.layers.BatchNormalization(scale=False, name="bn3")(z)
    skip = keras.layers.Conv2D(8, 1, name="shared")(z)
    y = keras.layers.BatchNormalization(name="bn4")(skip)
    z = keras.layers.Add()([skip, y])
    z = keras.layers.GlobalAveragePooling2D()(z)
    model = keras.Model(inp, keras.layers.Dense(4, activation="softmax", name="head")(z))
    _randomize_bn(model)
    return model


def _x(n=3, size=12, seed=0):
    return np.random.default_rng(seed).normal(0, 1, (n, size, size, 3)).astype("float32")


def test_fold_pairs_finds_exactly_the_foldable_pairs(bn_model):
    pairs = {c.name: b.name for c, b in folding.fold_pairs(bn_model)}
    assert pairs == {"c1": "bn1", "dw": "bn2", "sep": "bn3"}  # "shared" also feeds the Add


def test_folded_forward_equals_the_model(bn_model):
    x = _x()
    ref = bn_model(x, training=False).numpy()
    out = surgery.forward(bn_model, x, fold=True)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-6)


def test_tapped_convolution_sees_the_raw_convolution(bn_model):
    x = _x()
    want = keras.Model(bn_model.inputs[0], bn_model.get_layer("c1").output)(x).numpy()
    got = {}
    surgery.forward(bn_model, x, {"c1": lambda t: got.setdefault("c1", t)})
    np.testing.assert_allclose(got["c1"].numpy(), want, rtol=1e-5, atol=1e-6)


def test_folding_inside_a_nested_model_and_weight_changes_after_tracing(bn_model):
    outer = keras.Sequential([keras.Input((12, 12, 3)), bn_model], name="outer")
    x = _x(2)
    fn = tf.function(lambda t: surgery.forward(outer, t))
    np.testing.assert_allclose(fn(x).numpy(), outer(x, training=False).numpy(),
                               rtol=1e-5, atol=1e-6)
    bn = bn_model.get_layer("bn1")
    old = bn.get_weights()
    try:
        bn.moving_variance.assign(bn.moving_variance * 9.0)  # changed after tracing
        np.testing.assert_allclose(fn(x).numpy(), outer(x, training=False).numpy(),
                                   rtol=1e-5, atol=1e-6)
    finally:
        bn.set_weights(old)


def test_sequential_pairs_are_folded(monkeypatch):
    keras.utils.set_random_seed(2)
    m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, name="c"),
                          keras.layers.BatchNormalization(name="b"), keras.layers.Flatten(),
                          keras.layers.Dense(2)])
    _randomize_bn(m)
    assert [(c.name, b.name) for c, b in folding.fold_pairs(m)] == [("c", "b")]
    x = _x(2, 8)[..., :1]
    want = m(x, training=False).numpy()

    def no_batch_norm(*args, **kwargs):
        raise AssertionError("batch norm was called")

    monkeypatch.setattr(keras.layers.BatchNormalization, "call", no_batch_norm)
    np.testing.assert_allclose(surgery.forward(m, x).numpy(), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(AssertionError, match="batch norm was called"):
        surgery.forward(m, x, fold=False)


def test_logits_in_graph_without_touching_the_model(bn_model):
    x = _x()
    head = bn_model.get_layer("head")
    assert scoring.head(bn_model).in_graph
    linear = keras.Model(bn_model.inputs[0], bn_model.get_layer("head").input)(x).numpy()
    want = linear @ head.kernel.numpy() + head.bias.numpy()
    got = scoring.forward_scores(bn_model, x).numpy()
    assert head.activation is keras.activations.softmax  # nothing swapped
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_activation_swap_fallback_is_thread_safe():
    """A head whose softmax cannot be computed from its variables (an EinsumDense): its own call
    runs on a view of the layer with the activation off; concurrent explanations give the
    sequential result and leave the model as it was."""
    keras.utils.set_random_seed(3)
    inp = keras.Input((6, 6, 2))
    z = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, activation="tanh")(inp))
    head = keras.layers.EinsumDense("ab,bc->ac", output_shape=3, bias_axes="c",
                                    activation="softmax", name="einsum_head")
    model = keras.Model(inp, head(z))
    assert scoring.head(model).swappable and not scoring.head(model).in_graph
    x = _x(4, 6)[..., :2]
    want = attribution.saliency(model, x, 1)
    results, errors = [None] * 6, []

    def work(i):
        try:
            results[i] = attribution.saliency(model, x, 1)
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in results:
        np.testing.assert_allclose(r, want, rtol=1e-5, atol=1e-7)
    assert head.activation is keras.activations.softmax
    # and the maps are of the logit, not of the saturating probability
    logit_model = keras.Model(inp, keras.layers.EinsumDense(
        "ab,bc->ac", output_shape=3, bias_axes="c")(z))
    logit_model.layers[-1].set_weights(head.get_weights())
    np.testing.assert_allclose(attribution.saliency(logit_model, x, 1), want, rtol=1e-4)


def _activated(linear: bool):
    """The same weights with fused activations on (relu / relu6 / softmax) or all off."""
    keras.utils.set_random_seed(5)
    act = (lambda name: None) if linear else (lambda name: name)
    inp = keras.Input((10, 10, 3))
    z = keras.layers.Conv2D(4, 3, activation=act("relu"), name="c")(inp)
    z = keras.layers.DepthwiseConv2D(3, use_bias=False, activation=act("relu6"), name="dw")(z)
    z = keras.layers.SeparableConv2D(5, 3, padding="same", activation=act("relu"), name="sep")(z)
    z = keras.layers.Conv2D(5, 1, name="lin")(z)  # no activation, folded with its batch norm
    z = keras.layers.BatchNormalization(name="bn")(z)
    z = keras.layers.GlobalAveragePooling2D()(z)
    model = keras.Model(inp, keras.layers.Dense(3, activation=act("softmax"), name="d")(z))
    _randomize_bn(model)
    return model


def test_forward_linear_computes_layers_without_their_activation():
    """Checked against the same weights built without activations; nothing is modified."""
    model, plain = _activated(False), _activated(True)
    plain.set_weights(model.get_weights())
    x = _x(2, size=10)
    names = ["c", "dw", "sep", "lin", "d"]
    seen = {}

    def record(name):
        return lambda t: seen.setdefault(name, t)

    out = surgery.forward(model, tf.constant(x), {n: record(n) for n in names}, linear=names)
    expected = keras.Model(plain.input, [plain.get_layer(n).output for n in names])(x)
    for n, e in zip(names, expected, strict=True):
        np.testing.assert_allclose(seen[n], e, rtol=1e-4, atol=1e-5, err_msg=n)
    np.testing.assert_allclose(out, plain(x), rtol=1e-4, atol=1e-5)
    assert np.any(np.asarray(seen["c"]) < 0)  # the relu really was left out
    # an untapped linear conv before a batch norm is not folded away with it
    np.testing.assert_allclose(surgery.forward(model, x, linear=["lin"]), model(x), rtol=1e-4,
                               atol=1e-6)
    # the activated model is untouched: compiled, it still applies its activations
    assert model.get_layer("c").activation is keras.activations.relu
    fn = tf.function(lambda x: surgery.forward_with(model, x, ["c"]), autograph=False)
    probs, (c,) = fn(tf.constant(x))
    assert float(tf.reduce_min(c)) >= 0.0
    np.testing.assert_allclose(tf.reduce_sum(probs, -1), np.ones(2), rtol=1e-5)


def test_forward_linear_rejects_a_layer_it_cannot_compute():
    inp = keras.Input((6, 3))
    model = keras.Model(inp, keras.layers.Conv1D(2, 3, activation="relu", name="c1d")(inp))
    with pytest.raises(ValueError, match=r"'c1d' \(Conv1D\).*Dense, Conv2D"):
        surgery.forward(model, np.zeros((1, 6, 3), "float32"), linear=["c1d"])


def test_small_chunks_run_unfolded_and_agree_with_folded_ones(bn_model, monkeypatch):
    """Chunks of fewer than FOLD_MIN_ROWS rows run a graph traced in surgery.unfolded(), where
    the batch norms are called; the maps are the same as from folded chunks."""
    x = _x(5)
    assert kernels.FOLD_MIN_ROWS > 1
    folded = attribution.saliency(bn_model, x, 0, batch_size=5)
    small = attribution.saliency(bn_model, x, 0, batch_size=1)
    np.testing.assert_allclose(small, folded, rtol=1e-4, atol=1e-6)
    called = []
    original = keras.layers.BatchNormalization.call

    def spy(self, *args, **kwargs):
        called.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(keras.layers.BatchNormalization, "call", spy)
    surgery.forward(bn_model, x)
    assert called == ["bn4"]  # the one batch norm that cannot be folded
    called.clear()
    with surgery.unfolded():
        surgery.forward(bn_model, x)
    assert sorted(called) == ["bn1", "bn2", "bn3", "bn4"]
    called.clear()
    surgery.forward(bn_model, x)  # the block ended
    assert called == ["bn4"]
