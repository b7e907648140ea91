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
