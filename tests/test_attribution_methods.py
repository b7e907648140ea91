"""Analytic checks of each attribution method and checks of methods against each other."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import conv_gap_model, images

from course_utils.attribution import (
    cam,
    gradcam,
    gradcam_plus_plus,
    integrated_gradients,
    occlusion,
    saliency,
    shap_gradients,
    smoothgrad,
)
from course_utils.attribution.occlusion import spread, window_masks, windows
from course_utils.models import registry


def linear_model(size=6, channels=1, activation="softmax", seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((size, size, channels)), keras.layers.Flatten(),
        keras.layers.Dense(2, activation=activation, name="dense"),
    ])


@pytest.mark.parametrize("activation", ["softmax", None])
def test_linear_model_saliency_equals_its_weights(activation):
    model = linear_model(activation=activation)
    kernel = model.get_layer("dense").kernel.numpy()
    x = images(2, size=6, channels=1)
    got = saliency(model, x, targets=[1, 0], reduce="sum")
    np.testing.assert_allclose(got[0], kernel[:, 1].reshape(6, 6), rtol=1e-5)
    np.testing.assert_allclose(got[1], kernel[:, 0].reshape(6, 6), rtol=1e-5)


def test_linear_rgb_saliency_is_max_abs_weight_over_channels():
    model = linear_model(channels=3)
    kernel = model.get_layer("dense").kernel.numpy()[:, 1].reshape(6, 6, 3)
    got = saliency(model, images(1, size=6), targets=1)
    np.testing.assert_allclose(got[0], np.abs(kernel).max(-1), rtol=1e-5)


def _logit(model, x, target):
    """The pre-softmax score computed independently: a model ending at the Dense logits."""
    dense = model.get_layer("head")
    feats = keras.Model(model.inputs, model.get_layer("gap").output).predict(x, verbose=0)
    return feats @ dense.kernel.numpy()[:, target] + dense.bias.numpy()[target]


def test_integrated_gradients_completeness_at_64_steps(tiny):
    x = images(3)
    maps, info = integrated_gradients(tiny, x, targets=2, steps=64, return_info=True)
    delta = _logit(tiny, x, 2) - _logit(tiny, np.zeros_like(x), 2)
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), delta, rtol=0.01, atol=1e-4)
    np.testing.assert_allclose(info["delta"], delta, rtol=1e-4, atol=1e-6)
    assert np.all(info["relative_error"] < 0.01)


@pytest.mark.filterwarnings("ignore:Integrated Gradients completeness")
def test_integrated_gradients_black_baseline_is_black_in_pixel_space():
    model = registry.register(conv_gap_model(), registry.ModelInfo(
        preprocess=lambda p: p / 127.5 - 1.0, pixel_max=255.0))
    x = images(2) * 2 - 1
    maps, info = integrated_gradients(model, x, targets=0, steps=8, return_info=True)
    delta = _logit(model, x, 0) - _logit(model, np.full_like(x, -1.0), 0)
    np.testing.assert_allclose(info["delta"], delta, rtol=1e-4, atol=1e-7)
    same = integrated_gradients(model, x, targets=0, steps=8, baseline=("model", -1.0))
    np.testing.assert_allclose(maps, same, rtol=1e-6)
    zero = integrated_gradients(model, x, targets=0, steps=8, baseline=("model", 0.0))
    assert not np.allclose(maps, zero)


def test_integrated_gradients_warns_when_incomplete():
    cube = keras.Sequential([
        keras.Input((4, 4, 1)), keras.layers.Flatten(),
        keras.layers.Dense(1, kernel_initializer="ones", use_bias=False),
        keras.layers.Lambda(lambda t: t ** 3),
    ])
    x = np.full((1, 4, 4, 1), 0.25, "float32")  # f(x) = 4 ** 3; midpoint rule at 1 step: 48
    with pytest.warns(UserWarning, match="completeness"):
        maps = integrated_gradients(cube, x, targets=0, steps=1)
    np.testing.assert_allclose(maps.sum(), 48.0, rtol=1e-5)
    np.testing.assert_allclose(integrated_gradients(cube, x, targets=0, steps=64).sum(), 64.0,
                               rtol=1e-3)


def test_smoothgrad_without_noise_is_saliency(tiny):
    x = images(2)
    np.testing.assert_allclose(smoothgrad(tiny, x, noise_level=0.0, n_samples=3),
                               saliency(tiny, x), rtol=1e-5)
    np.testing.assert_allclose(smoothgrad(tiny, x, noise_level=1e-5, n_samples=3),
                               saliency(tiny, x), rtol=1e-2, atol=1e-6)
    assert not np.allclose(smoothgrad(tiny, x, noise_level=0.5, n_samples=3), saliency(tiny, x),
                           rtol=1e-2)


def test_smoothgrad_noise_is_relative_to_the_input_range(tiny):
    """Scaling the model's input range leaves the noise-to-signal ratio unchanged."""
    x = images(2)
    scaled = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255.0), tiny])
    a = smoothgrad(tiny, x, n_samples=4, noise_level=0.2)
    b = smoothgrad(scaled, x * 255.0, n_samples=4, noise_level=0.2)
    np.testing.assert_allclose(b * 255.0, a, rtol=1e-3, atol=1e-6)


def test_gradcam_equals_cam_on_a_gap_dense_model(tiny):
    x = images(3)
    h, w = tiny.get_layer("relu2").output.shape[1:3]
    g = gradcam(tiny, x, targets=[0, 1, 2])
    c = cam(tiny, x, targets=[0, 1, 2], relu=True)
    np.testing.assert_allclose(g * h * w, c, rtol=1e-4, atol=1e-6)


def test_gradcam_upsamples_after_relu_and_stays_unnormalized():
    keras.utils.set_random_seed(3)
    inp = keras.Input((16, 16, 3))
    z = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c")(inp)
    z = keras.layers.MaxPooling2D(4, name="pool")(z)
    model = keras.Model(inp, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(z)))
    x = images(2)
    small = gradcam(model, x, layer="pool")
    assert small.shape == (2, 16, 16) and small.min() >= 0
    # Grad-CAM of a class and of its negation: maps differ in size, not only in shape.
    maps = [gradcam(model, x, targets=t) for t in range(3)]
    assert len({round(float(m.max()), 6) for m in maps}) > 1


def test_gradcam_plus_plus_is_nonnegative_and_localizes_a_single_blob():
    inp = keras.Input((12, 12, 1))
    feat = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones", name="f")(inp)
    out = keras.layers.Dense(1, kernel_initializer="ones", use_bias=False)(
        keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU(name="r")(feat)))
    model = keras.Model(inp, out)
    x = np.zeros((1, 12, 12, 1), "float32")
    x[0, 3:6, 7:10] = 1.0
    m = gradcam_plus_plus(model, x, targets=0, layer="r")
    assert m.min() >= 0 and m[0, 3:6, 7:10].sum() > 0.9 * m.sum()


def test_occlusion_puts_mass_on_the_only_region_the_model_reads():
    keras.utils.set_random_seed(0)
    inp = keras.Input((12, 12, 1))
    region = keras.layers.Cropping2D(((2, 6), (6, 2)))(inp)  # rows 2..5, cols 6..9
    out = keras.layers.Dense(2, kernel_initializer="ones")(keras.layers.Flatten()(region))
    model = keras.Model(inp, out)
    x = images(2, size=12, channels=1) + 0.5
    maps = occlusion(model, x, targets=0, window=2, stride=1, fill="black")
    inside = np.zeros((12, 12), bool)
    inside[1:7, 5:11] = True  # the region grown by window - 1: windows that touch it
    assert np.all(maps[:, ~inside] == 0)
    for m in maps:
        r, c = np.unravel_index(np.argmax(m), m.shape)
        assert 2 <= r <= 5 and 6 <= c <= 9


def test_occlusion_divides_by_window_coverage():
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(1, kernel_initializer="ones")])
    x = np.full((1, 8, 8, 1), 0.5, "float32")
    maps = occlusion(model, x, targets=0, window=4, stride=2, fill="black")
    np.testing.assert_allclose(maps, 8.0, rtol=1e-5)  # every window drops 16 * 0.5


def test_occlusion_windows_cover_every_pixel():
    wins = windows((10, 7), (4, 3), (3, 3))
    assert window_masks((10, 7), wins).min(axis=0).min() == 0
    assert window_masks((10, 7), wins).sum(axis=0).min() >= 1
    np.testing.assert_allclose(spread(np.ones((1, len(wins))), wins, (10, 7)), 1.0)


def test_shap_gradients_sum_to_output_minus_expected_background(tiny):
    x = images(2)
    bg = images(6, seed=5)
    maps = shap_gradients(tiny, x, targets=1, background=bg, n_samples=800)
    expected = _logit(tiny, x, 1) - _logit(tiny, bg, 1).mean()
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), expected, rtol=0.1, atol=0.02)


def test_layer_shap_sums_to_the_score_difference_at_full_resolution(tiny):
    """At a same-size layer (no upsampling), layer attributions are complete as well."""
    x = images(2)
    bg = images(4, seed=7)
    maps = shap_gradients(tiny, x, targets=0, background=bg, n_samples=600, layer="conv1")
    expected = _logit(tiny, x, 0) - _logit(tiny, bg, 0).mean()
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), expected, rtol=0.1, atol=0.02)


def test_nested_model_gives_the_same_maps_as_its_flat_twin(tiny_nested):
    """The transfer-learning model and a flat functional copy with the same weights agree."""
    base = tiny_nested.get_layer("base")
    inp = keras.Input((16, 16, 3))
    z = inp
    for layer in base.layers[1:]:
        z = layer(z)
    z = keras.layers.GlobalAveragePooling2D()(z)
    flat = keras.Model(inp, tiny_nested.get_layer("head")(z))
    x = images(2)
    for method in (saliency, gradcam, cam):
        np.testing.assert_allclose(method(tiny_nested, x, targets=1), method(flat, x, targets=1),
                                   rtol=1e-5, atol=1e-7)
