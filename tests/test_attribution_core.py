"""Shared plumbing of course_utils.attribution: validation, targets, logits, nested models."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import FAST, conv_gap_model, images

from course_utils import surgery
from course_utils.attribution import METHODS, gradcam, saliency
from course_utils.engine import inputs, scoring, spaces, taps
from course_utils.models import registry


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("kind", ["functional", "nested", "sigmoid", "gray"])
def test_every_method_every_model_kind(name, kind, tiny, tiny_nested):

    model = {"functional": tiny, "nested": tiny_nested}.get(kind)
    channels = 1 if kind == "gray" else 3
    if model is None:
        model = conv_gap_model(head="sigmoid" if kind == "sigmoid" else "softmax",
                               channels=channels, size=12)
    size = model.inputs[0].shape[1]
    x = images(2, size=size, channels=channels)
    maps = METHODS[name](model, x, **FAST.get(name, {}))
    assert maps.shape == (2, size, size) and maps.dtype == np.float32
    assert np.all(np.isfinite(maps)) and np.any(maps != 0)
    single = METHODS[name](model, x[0], **FAST.get(name, {}))
    assert single.shape == (1, size, size)


def test_sigmoid_targets_mean_scored_class_and_other(rng):
    model = conv_gap_model(head="sigmoid", size=12)
    x = images(2, size=12)
    pos = saliency(model, x, targets=0, reduce="sum")
    neg = saliency(model, x, targets=1, reduce="sum")
    np.testing.assert_allclose(pos, -neg, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="0..1"):
        saliency(model, x, targets=2)


def test_predicted_class_is_the_default(tiny):
    x = images(3)
    pred = np.argmax(tiny.predict(x, verbose=0), axis=-1)
    np.testing.assert_allclose(saliency(tiny, x), saliency(tiny, x, targets=pred))
    assert not np.allclose(saliency(tiny, x, targets=(pred + 1) % 3), saliency(tiny, x))


def test_scores_are_logits_not_probabilities(tiny):
    x = images(2)
    job = inputs.prepare(tiny, x, targets=[0, 1])
    s = scoring.row_scores(tiny, job.x, job.weights, job.offset, 8)
    logits_model = keras.Model(tiny.inputs, tiny.get_layer("gap").output @ tiny.get_layer(
        "head").kernel + tiny.get_layer("head").bias)
    expected = logits_model.predict(x, verbose=0)[[0, 1], [0, 1]]
    np.testing.assert_allclose(s, expected, rtol=1e-5)
    assert scoring.head(tiny).activation == "softmax"  # restored after the compiled call
    np.testing.assert_allclose(tiny.predict(x, verbose=0).sum(1), 1.0, rtol=1e-5)


def test_separate_softmax_layer_is_read_before_it():
    inp = keras.Input((8, 8, 3))
    z = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    logits = keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling2D()(z))
    model = keras.Model(inp, keras.layers.Softmax()(logits))
    plain = keras.Model(inp, logits)
    x = images(2, size=8)
    np.testing.assert_allclose(saliency(model, x, targets=1), saliency(plain, x, targets=1),
                               rtol=1e-5)
    np.testing.assert_allclose(model.predict(x, verbose=0).sum(1), 1.0, rtol=1e-5)


def test_default_layer_inside_nested_model_is_after_activation(tiny_nested):
    path = taps.feature_path(tiny_nested, None)
    assert [p.name for p in path] == ["base", "b_relu"]
    by_name = gradcam(tiny_nested, images(2), layer="b_relu")
    np.testing.assert_allclose(gradcam(tiny_nested, images(2)), by_name)
    idx = surgery.layer_names(tiny_nested).index("base/b_relu")
    np.testing.assert_allclose(gradcam(tiny_nested, images(2), layer=idx), by_name)


@pytest.mark.parametrize("name", ["saliency", "smoothgrad", "integrated_gradients", "occlusion",
                                  "gradcam", "shap_gradients", "lime"])
def test_batch_size_does_not_change_results(name, tiny):
    x = images(3)
    a = METHODS[name](tiny, x, batch_size=2, **FAST.get(name, {}))
    b = METHODS[name](tiny, x, batch_size=64, **FAST.get(name, {}))
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- bad input -> clear errors


def test_unknown_layer_lists_valid_names(tiny):
    with pytest.raises(ValueError, match="Valid layer names: .*conv1"):
        gradcam(tiny, images(1), layer="nope")


def test_dense_layer_for_gradcam_is_refused(tiny):
    with pytest.raises(ValueError, match="spatial"):
        gradcam(tiny, images(1), layer="head")


def test_target_outside_classes(tiny):
    with pytest.raises(ValueError, match="outside the model's classes 0..2"):
        saliency(tiny, images(2), targets=[0, 3])
    with pytest.raises(ValueError, match="one per image"):
        saliency(tiny, images(2), targets=[0, 1, 2])


@pytest.mark.parametrize("shape, match", [((16, 16), "rank 2"), ((1, 2, 16, 16, 3), "rank 5"),
                                          ((1, 16, 16, 1), "3 channel"),
                                          ((1, 20, 20, 3), "size")])
def test_wrong_shape(tiny, shape, match):
    with pytest.raises(ValueError, match=match):
        saliency(tiny, np.zeros(shape, "float32"))


def test_dtype_nan_and_uint8(tiny):
    with pytest.raises(TypeError, match="numeric"):
        saliency(tiny, np.full((16, 16, 3), "a"))
    bad = images(1)
    bad[0, 3, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        saliency(tiny, bad)
    with pytest.warns(UserWarning, match="uint8"):
        saliency(tiny, (images(1) * 255).astype("uint8"))


def test_several_inputs_refused():
    a, b = keras.Input((8, 8, 3)), keras.Input((8, 8, 3))
    out = keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.Add()([a, b])))
    with pytest.raises(ValueError, match="2 inputs"):
        saliency(keras.Model([a, b], out), images(1, size=8))


def test_bad_batch_size(tiny):
    with pytest.raises(ValueError, match="batch_size"):
        saliency(tiny, images(1), batch_size=0)


# ---------------------------------------------------------------- pixel space


def _scaled_model():
    model = conv_gap_model(size=8)
    return registry.register(model, registry.ModelInfo(
        preprocess=lambda p: p / 127.5 - 1.0, pixel_max=255.0))


def test_pixel_space_constants_go_through_preprocessing():
    model = _scaled_model()
    x = images(2, size=8) * 2 - 1
    black = spaces.model_space_constant(model, "black", x)
    np.testing.assert_allclose(black, -1.0)
    grey = spaces.model_space_constant(model, "grey", x)
    np.testing.assert_allclose(grey, 0.0, atol=1e-6)
    np.testing.assert_allclose(spaces.model_space_constant(model, ("model", 0.5), x), 0.5)


def test_to_pixels_inverts_affine_preprocessing_with_channel_flip():
    model = conv_gap_model(size=8)
    mean = np.array([103.9, 116.8, 123.7], "float32")
    registry.register(model, registry.ModelInfo(
        preprocess=lambda p: p[..., ::-1] - mean, pixel_max=255.0))
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    x = spaces.to_model_space(model, pixels)
    np.testing.assert_allclose(spaces.to_pixels(model, x), pixels, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("name", ["saliency", "gradcam", "occlusion"])
def test_any_input_size_the_model_accepts(name):
    inp = keras.Input((None, None, 3))
    z = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(z)))
    for size in (8, 12):
        maps = METHODS[name](model, images(2, size=size), **FAST.get(name, {}))
        assert maps.shape == (2, size, size)


def test_blur_and_per_image_fills():
    model = _scaled_model()
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    x = pixels / 127.5 - 1.0
    blur = spaces.model_space_constant(model, "blur", x)
    assert blur.shape == x.shape and blur.std() < x.std()
    np.testing.assert_allclose(blur.mean(axis=(1, 2)), x.mean(axis=(1, 2)), atol=0.05)
    per_image = spaces.model_space_constant(model, pixels, x)
    np.testing.assert_allclose(per_image, x, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="Unknown pixel-space value"):
        spaces.model_space_constant(model, "purple", x)


@pytest.mark.parametrize("layer", [None, "conv1"])
def test_shap_local_smoothing_does_not_depend_on_batch_size(tiny, layer):
    from course_utils.attribution import shap_gradients

    x = images(2)
    kw = {"n_samples": 6, "local_smoothing": 0.1, "layer": layer, "background": images(2, seed=3)}
    np.testing.assert_allclose(shap_gradients(tiny, x, batch_size=4, **kw),
                               shap_gradients(tiny, x, batch_size=5, **kw), rtol=1e-4, atol=1e-6)


def test_cached_spatial_layers_follow_sequential_add():
    m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="first")])
    assert surgery.last_spatial_layer(m).name == "first"
    m.add(keras.layers.Conv2D(2, 3, name="second"))
    assert surgery.last_spatial_layer(m).name == "second"
