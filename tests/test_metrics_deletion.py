"""Deletion and insertion: analytic curves on a model that depends on known pixels."""

from __future__ import annotations

import importlib

import keras
import numpy as np
import pytest
from conftest import conv_gap_model, images
from scipy import ndimage

from course_utils import metrics
from course_utils.models import registry

SIZE = 8
# the module (``metrics.deletion`` is the function of the same name)
deletion_mod = importlib.import_module("course_utils.metrics.deletion")


def known_pixel_model(weight=0.5, activation="softmax"):
    """logit_0 = weight * (sum of the pixels in the top-left 4x4 block), logit_1 = 0."""
    w = np.zeros((SIZE * SIZE, 2), "float32")
    block = np.zeros((SIZE, SIZE), bool)
    block[:4, :4] = True
    w[block.ravel(), 0] = weight
    model = keras.Sequential([
        keras.Input((SIZE, SIZE, 1)), keras.layers.Flatten(),
        keras.layers.Dense(2, activation=activation),
    ])
    model.layers[-1].set_weights([w, np.zeros(2, "float32")])
    return model, block


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def test_oracle_deletion_matches_the_analytic_curve():
    model, block = known_pixel_model()
    x = np.ones((1, SIZE, SIZE, 1), "float32")
    oracle = block.astype("float32")[None]
    c = metrics.deletion(model, x, oracle, targets=0, steps=4, baseline="black")
    # step k removes 16k pixels; the 16 block pixels go first
    assert c.fractions.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    expected = [sigmoid(0.5 * 16), 0.5, 0.5, 0.5, 0.5]
    np.testing.assert_allclose(c.scores[0], expected, rtol=1e-5)
    np.testing.assert_allclose(c.auc, np.trapezoid(expected, c.fractions), rtol=1e-5)


def test_oracle_beats_random_and_inverted_maps():
    model, block = known_pixel_model()
    x = np.ones((3, SIZE, SIZE, 1), "float32")
    oracle = np.repeat(block.astype("float32")[None], 3, axis=0)
    kw = dict(targets=0, steps=16, baseline="black")
    d_oracle = metrics.deletion(model, x, oracle, **kw).auc
    d_random = metrics.deletion(model, x, metrics.random_maps(oracle, seed=1), **kw).auc
    d_inverted = metrics.deletion(model, x, -oracle, **kw).auc
    assert np.all(d_oracle < d_random) and np.all(d_random < d_inverted)
    i_oracle = metrics.insertion(model, x, oracle, **kw).auc
    i_random = metrics.insertion(model, x, metrics.random_maps(oracle, seed=1), **kw).auc
    i_inverted = metrics.insertion(model, x, -oracle, **kw).auc
    assert np.all(i_oracle > i_random) and np.all(i_random > i_inverted)


def test_insertion_goes_from_the_removed_image_to_the_image():
    model, block = known_pixel_model()
    x = np.ones((1, SIZE, SIZE, 1), "float32")
    c = metrics.insertion(model, x, block.astype("float32"), targets=0, steps=4,
                          baseline="black")
    np.testing.assert_allclose(c.scores[0], [0.5] + [sigmoid(8.0)] * 4, rtol=1e-5)


def test_other_target_and_logit_models_use_softmax_probability():
    model, block = known_pixel_model(activation=None)  # a logits model
    x = np.ones((1, SIZE, SIZE, 1), "float32")
    c = metrics.deletion(model, x, block.astype("float32"), targets=1, steps=4,
                         baseline="black")
    np.testing.assert_allclose(c.scores[0], [1 - sigmoid(8.0), 0.5, 0.5, 0.5, 0.5], rtol=1e-5)


def test_results_do_not_depend_on_batch_size(tiny):
    x = images(3, size=16)
    maps = metrics.random_maps((3, 16, 16), seed=2)
    a = metrics.deletion(tiny, x, maps, steps=8, batch_size=5)
    b = metrics.deletion(tiny, x, maps, steps=8, batch_size=128)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)
    # predicted class by default, and the first point is the unmodified image's probability
    probs = tiny.predict(x, verbose=0)
    np.testing.assert_array_equal(a.targets, probs.argmax(-1))
    np.testing.assert_allclose(a.scores[:, 0], probs.max(-1), rtol=1e-5)


def test_removed_values_are_defined_in_pixel_space():
    model = conv_gap_model(size=16)
    registry.register(model, registry.ModelInfo(preprocess=lambda p: np.asarray(p) * 2.0 - 1.0))
    x = images(2, size=16) * 2.0 - 1.0  # model space
    grey = deletion_mod.removed_images(model, x, "grey")
    np.testing.assert_allclose(grey, 0.0, atol=1e-6)  # grey 0.5 -> 0 in model space
    blur = deletion_mod.removed_images(model, x, "blur", blur_sigma=2.0)
    pixels = (x + 1.0) / 2.0
    expected = ndimage.gaussian_filter(pixels, (0, 2.0, 2.0, 0), mode="nearest") * 2.0 - 1.0
    np.testing.assert_allclose(blur, expected, atol=1e-5)


def test_ties_are_broken_at_random_not_in_raster_order():
    r = deletion_mod.ranks(np.zeros((1, 8, 8)), seed=0)[0]
    assert sorted(r.ravel().tolist()) == list(range(64))
    assert r[:4].mean() != pytest.approx(15.5)  # raster order would put the top half first
    assert deletion_mod.ranks(np.array([[[0.1, 3.0], [2.0, -1.0]]]))[0].tolist() == [[2, 0],
                                                                                      [1, 3]]


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 15, 16)), "shape"),
    (np.zeros((3, 16, 16)), "shape"),
    (np.full((2, 16, 16), np.nan), "NaN"),
    (np.zeros((2, 16, 16, 3)), "batch"),
])
def test_bad_maps_are_rejected(tiny, bad, message):
    with pytest.raises(ValueError, match=message):
        metrics.deletion(tiny, images(2, size=16), bad)


def test_bad_options_are_rejected(tiny):
    x, maps = images(1, size=16), np.zeros((1, 16, 16))
    with pytest.raises(ValueError, match="mode"):
        deletion_mod.curves(tiny, x, maps, mode="erase")
    with pytest.raises(ValueError, match="steps"):
        metrics.deletion(tiny, x, maps, steps=0)
    with pytest.raises(ValueError, match="baseline"):
        metrics.deletion(tiny, x, maps, baseline=np.zeros((2, 16, 16, 3)))
