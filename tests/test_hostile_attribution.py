"""Hostile inputs (issue #12): student models, probability heads written as ops, extreme and
malformed options. Each test failed before its fix."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import images

from course_utils import folding
from course_utils.attribution import METHODS

FAST = {
    "smoothgrad": {"n_samples": 3},
    "integrated_gradients": {"steps": 4},
    "occlusion": {"window": 4, "stride": 4},
    "lime": {"n_samples": 20, "segmentation": "slic",
             "segmentation_options": {"n_segments": 6, "compactness": 100}},
    "shap_gradients": {"n_samples": 4},
}


# ---------------------------------------------------------------- 1: conv -> activation layer

AFTER_CONV = [keras.layers.Activation("relu"), keras.layers.ReLU(), keras.layers.LeakyReLU(),
              keras.layers.MaxPooling2D(), keras.layers.Dropout(0.1)]


@pytest.mark.parametrize("after", AFTER_CONV, ids=lambda la: type(la).__name__)
def test_sequential_conv_followed_by_a_non_batch_norm_layer(after):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, padding="same"), after,
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax"),
    ])
    assert folding.fold_pairs(model) == []
    for name in ("smoothgrad", "integrated_gradients", "occlusion", "shap_gradients"):
        maps = METHODS[name](model, images(1, size=8), **FAST.get(name, {}))
        assert maps.shape == (1, 8, 8) and np.all(np.isfinite(maps))


def test_functional_activation_after_conv_does_not_turn_folding_off():
    inp = keras.Input((8, 8, 3))
    z = keras.layers.Conv2D(4, 3, name="c1")(inp)
    z = keras.layers.Activation("relu")(z)
    z = keras.layers.Conv2D(4, 3, name="c2")(z)
    z = keras.layers.BatchNormalization(name="bn")(z)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(z)))
    assert [(c.name, b.name) for c, b in folding.fold_pairs(model)] == [("c2", "bn")]


# ---------------------------------------------------------------- 6, 12: options and messages


@pytest.mark.parametrize("name, options, error, match", [
    ("smoothgrad", {"noise_level": np.inf}, ValueError, r"noise_level must be a finite number"),
    ("smoothgrad", {"noise_level": "0.1"}, TypeError, r"noise_level .* got '0.1' \(str\)"),
    ("shap_gradients", {"local_smoothing": np.inf}, ValueError, "local_smoothing must be a fin"),
    ("integrated_gradients", {"baseline": np.nan}, ValueError, "baseline contains .* NaN"),
    ("occlusion", {"fill": np.nan}, ValueError, "fill contains .* NaN"),
    ("lime", {"hide_color": np.nan}, ValueError, "hide_color contains .* NaN"),
    ("integrated_gradients", {"steps": None}, TypeError, r"steps must be .*got None"),
    ("integrated_gradients", {"steps": 2.7}, ValueError, r"steps must be .*got 2.7"),
    ("occlusion", {"window": "big"}, TypeError, r"window must be a positive integer.*'big'"),
    ("occlusion", {"window": 2.5}, ValueError, r"window must be an integer.*got 2.5"),
    ("smoothgrad", {"seed": None}, TypeError, r"seed must be an integer >= 0.*got None"),
    ("smoothgrad", {"seed": -1}, ValueError, r"seed must be an integer >= 0.*got -1"),
    ("shap_gradients", {"seed": -1}, ValueError, r"seed must be an integer >= 0"),
    ("lime", {"seed": None}, TypeError, r"seed must be an integer >= 0"),
    ("smoothgrad", {"n_samples": 2.5}, ValueError, r"n_samples must be an integer"),
])
def test_bad_options_say_what_is_expected(tiny, name, options, error, match):
    with pytest.raises(error, match=match):
        METHODS[name](tiny, images(1), **(FAST.get(name, {}) | options))


def test_lime_accepts_named_hide_colours_like_occlusion_and_ig(tiny):
    grey = METHODS["lime"](tiny, images(1), hide_color="grey", **FAST["lime"])
    half = METHODS["lime"](tiny, images(1), hide_color=0.5, **FAST["lime"])
    np.testing.assert_allclose(grey, half, rtol=1e-5, atol=1e-7)


def test_ragged_list_of_images(tiny):
    with pytest.raises(ValueError, match="same shape"):
        METHODS["saliency"](tiny, [images(1)[0], images(1, size=8)[0]])


def test_image_too_small_for_the_network():
    inp = keras.Input((None, None, 3))
    z = keras.layers.Conv2D(4, 5, activation="relu")(inp)
    z = keras.layers.Conv2D(4, 5, activation="relu")(z)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(z)))
    with pytest.raises(ValueError, match="too small for model"):
        METHODS["saliency"](model, images(1, size=4))


def test_nested_targets_are_refused_with_their_shape(tiny):
    with pytest.raises(ValueError, match=r"shape \(2, 1\)"):
        METHODS["saliency"](tiny, images(2), targets=[[0], [1]])


def test_gradcam_on_a_nested_model_uses_its_output(tiny_nested):
    x = images(2)
    base = tiny_nested.get_layer("base")
    np.testing.assert_allclose(METHODS["gradcam"](tiny_nested, x, layer=base),
                               METHODS["gradcam"](tiny_nested, x, layer="base/b_relu"))
    np.testing.assert_allclose(METHODS["gradcam"](tiny_nested, x, layer="base"),
                               METHODS["gradcam"](tiny_nested, x, layer="base/b_relu"))
