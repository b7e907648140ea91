"""Cascading randomization: a weight-independent 'explanation' is flagged, saliency is not."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import conv_gap_model, images
from scipy import ndimage

from course_utils import metrics
from course_utils.metrics import sanity


def edge_detector(model, x, targets=None, **_):
    """An 'explanation' that ignores the model: the image's Sobel edge magnitude."""
    g = np.asarray(x).mean(axis=-1)
    return np.hypot(ndimage.sobel(g, axis=1), ndimage.sobel(g, axis=2)).astype("float32")


def test_weight_independent_method_is_flagged_and_saliency_is_not(squares):
    model, xt, yt, _, acc = squares
    assert acc > 0.8  # the model learned something worth explaining
    res = metrics.cascading_randomization(
        model, xt[:8], {"edges": edge_detector, "saliency": "saliency"}, targets=yt[:8])
    assert res.stages == ["original", "head", "conv2", "conv1"]
    np.testing.assert_allclose(res.correlation["edges"], 1.0)
    assert res.flagged("edges")
    assert res.final("saliency") < metrics.THRESHOLD and not res.flagged("saliency")
    np.testing.assert_allclose(res.correlation["saliency"][0], 1.0)
    assert res.maps["saliency"].shape == (4, 8, 24, 24)
    assert set(res.summary()) == {"edges", "saliency"}


def test_the_model_itself_is_not_changed_and_targets_stay_fixed(tiny):
    before = [w.copy() for w in tiny.get_weights()]
    seen = []

    def spy(model, x, targets=None):
        seen.append(np.asarray(targets).copy())
        return np.asarray(x).mean(-1)

    x = images(4, size=16)
    res = metrics.cascading_randomization(tiny, x, [spy], seed=3)
    for a, b in zip(before, tiny.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    predicted = tiny.predict(x, verbose=0).argmax(-1)
    assert len(seen) == len(res.stages) == len(sanity.weighted_layers(tiny))  # bn2 joins conv2
    assert res.stages == ["original", "head", "conv2+bn2", "conv1"]
    for t in seen:
        np.testing.assert_array_equal(t, predicted)


def test_layers_are_reinitialized_with_their_own_initializers():
    layer = keras.layers.Dense(3, kernel_initializer="zeros", bias_initializer="ones")
    layer.build((None, 4))
    layer.set_weights([np.full((4, 3), 7.0, "float32"), np.full(3, 7.0, "float32")])
    sanity.randomize_layer(layer)
    np.testing.assert_array_equal(layer.kernel.numpy(), 0.0)
    np.testing.assert_array_equal(layer.bias.numpy(), 1.0)
    conv = keras.layers.Conv2D(4, 3, kernel_initializer=keras.initializers.HeNormal(seed=0))
    conv.build((None, 8, 8, 3))
    sanity.randomize_layer(conv, seed=1)
    a = conv.kernel.numpy().copy()
    sanity.randomize_layer(conv, seed=1)
    np.testing.assert_array_equal(a, conv.kernel.numpy())  # seeded: reproducible
    assert a.std() == pytest.approx(np.sqrt(2 / 27), rel=0.3)  # He normal's scale


def test_only_chosen_layers_in_the_given_order(tiny):
    res = metrics.cascading_randomization(tiny, images(2, size=16), ["saliency"],
                                          layers=["head", ["bn2", "conv2"]])
    assert res.stages == ["original", "head", "bn2+conv2"]
    with pytest.raises(ValueError, match="no weights"):
        metrics.cascading_randomization(tiny, images(2, size=16), ["saliency"], layers=["gap"])


def test_bad_input(tiny):
    x = images(2, size=16)
    with pytest.raises(ValueError, match="Unknown attribution method"):
        metrics.cascading_randomization(tiny, x, ["salency"])
    with pytest.raises(ValueError, match="options"):
        metrics.cascading_randomization(tiny, x, ["saliency"], options={"lime": {}})
    with pytest.raises(ValueError, match="shape"):
        metrics.cascading_randomization(tiny, x, [lambda m, x, t: np.zeros((2, 8, 8))])
    with pytest.raises(ValueError, match="NaN"):
        metrics.cascading_randomization(tiny, x, [lambda m, x, t: np.full((2, 16, 16), np.nan)])


def test_shuffled_label_model_is_a_fresh_copy():
    model = conv_gap_model(size=16, bn=False)
    x = images(16, size=16)
    y = np.arange(16) % 3
    r = metrics.shuffled_label_model(model, x, y, epochs=1)
    assert r is not model and r.count_params() == model.count_params()
    assert not np.allclose(r.get_weights()[0], model.get_weights()[0])


def test_constant_maps_count_as_uncorrelated_in_the_means():
    res = sanity.SanityResult(
        stages=["original", "head"], maps={},
        correlation={"a": np.array([[1.0, 1.0], [np.nan, 0.5]])},
        correlation_signed={"a": np.array([[1.0, 1.0], [0.9, 0.7]])},
        targets=np.zeros(2, int), methods=["a"])
    np.testing.assert_allclose(res.mean_correlation("a"), [1.0, 0.25])
    assert res.final("a") == pytest.approx(0.25) and not res.flagged("a")
    assert res.final("a", signed=True) == pytest.approx(0.8)
