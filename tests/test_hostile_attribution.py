"""Hostile inputs (issue #12): student models, probability heads written as ops, extreme and
malformed options. Each test failed before its fix."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import FAST, images

from course_utils import folding
from course_utils.attribution import METHODS

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
    ("integrated_gradients", {"steps": None}, TypeError, r"steps must be .*'auto'.*got None"),
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


def test_a_layer_without_spatial_output_is_named_with_its_shape(tiny):
    with pytest.raises(ValueError, match=r"its output has shape \(None, 3\).*conv1, conv2"):
        METHODS["gradcam"](tiny, images(1), layer="head")


def test_gradcam_on_a_nested_model_uses_its_output(tiny_nested):
    x = images(2)
    base = tiny_nested.get_layer("base")
    np.testing.assert_allclose(METHODS["gradcam"](tiny_nested, x, layer=base),
                               METHODS["gradcam"](tiny_nested, x, layer="base/b_relu"))
    np.testing.assert_allclose(METHODS["gradcam"](tiny_nested, x, layer="base"),
                               METHODS["gradcam"](tiny_nested, x, layer="base/b_relu"))


# ---------------------------------------------------------------- 3, 13: coverage and memory


def _flat_model(size, channels=1):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((size, size, channels)), keras.layers.Flatten(),
                             keras.layers.Dense(2)])


def test_occlusion_with_a_stride_larger_than_the_window_covers_every_pixel():
    """Window 4, stride 8 on 32 px: 768 of 1024 pixels were returned as exactly 0. Each pixel
    now shows the drop of its nearest window."""
    model = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(1, kernel_initializer="ones")])
    x = np.full((1, 32, 32, 1), 0.5, "float32")
    maps = METHODS["occlusion"](model, x, targets=0, window=4, stride=8, fill="black")
    np.testing.assert_allclose(maps, 8.0, rtol=1e-5)  # every window drops 16 * 0.5
    keras.utils.set_random_seed(0)
    rand = METHODS["occlusion"](_flat_model(32), images(1, size=32, channels=1), window=4,
                                stride=8)
    assert np.all(rand != 0)
    np.testing.assert_array_equal(rand[0, :6, :6], rand[0, 0, 0])  # window 0-3 grown to 8: -2..5


def _peak_numpy_bytes(fn) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_occlusion_memory_is_bounded_by_the_batch():
    """64 x 64 px, window 1, stride 1: 4096 windows; all masks at once would be 67 MB."""
    model, x = _flat_model(64), images(1, size=64, channels=1)
    METHODS["occlusion"](model, x, window=1, stride=1, batch_size=64)  # compile first
    peak = _peak_numpy_bytes(
        lambda: METHODS["occlusion"](model, x, window=1, stride=1, batch_size=64))
    assert peak < 16e6


def test_integrated_gradients_memory_is_bounded_by_the_batch():
    """10 ** 7 steps of a 2 x 2 image: the path positions alone would be 40 MB (80 MB as int64
    indices), a chunk of 10 ** 5 rows is 1.6 MB."""
    model, x = _flat_model(2), images(1, size=2, channels=1)
    run = lambda: METHODS["integrated_gradients"](model, x, targets=0, steps=10 ** 7,  # noqa: E731
                                                  batch_size=10 ** 5)
    assert _peak_numpy_bytes(run) < 24e6


# ---------------------------------------------------------------- IG: steps="auto"


def _tanh_model(steepness=3.0):
    """f(x) = tanh(k (sum(x) - 4)): a smooth model whose path integral needs 32 steps at k=3."""
    return keras.Sequential([
        keras.Input((4, 4, 1)), keras.layers.Flatten(),
        keras.layers.Dense(1, activation="tanh",
                           kernel_initializer=keras.initializers.Constant(steepness),
                           bias_initializer=keras.initializers.Constant(-4 * steepness)),
        keras.layers.Dense(2, kernel_initializer="ones"),
    ])


def _ig(model, x, **kw):
    return METHODS["integrated_gradients"](model, x, targets=0, return_info=True, **kw)


def test_ig_auto_steps_reach_the_tolerance_where_two_steps_do_not():
    model = _tanh_model()
    x = np.random.default_rng(0).uniform(0.2, 0.8, (2, 4, 4, 1)).astype("float32")
    with pytest.warns(UserWarning, match="completeness"):
        _, two = _ig(model, x, steps=2)
    assert np.all(two["relative_error"] > 0.01) and two["steps"].tolist() == [2, 2]
    maps, info = _ig(model, x, steps="auto")
    assert np.all(info["relative_error"] < 0.01)
    assert info["steps"].tolist() == [32, 32]  # 16 missed 1% (3-5%), 32 met it
    np.testing.assert_allclose(maps, _ig(model, x, steps=32)[0])


def test_ig_auto_stops_at_the_first_count_on_a_linear_model():
    model = _flat_model(4)
    _, info = _ig(model, images(3, size=4, channels=1), steps="auto")
    assert info["steps"].tolist() == [16, 16, 16]


def test_ig_auto_warns_at_max_steps_and_checks_its_options():
    model, x = _tanh_model(), np.full((1, 4, 4, 1), 0.5, "float32")
    with pytest.warns(UserWarning, match="raise max_steps"):
        _, info = _ig(model, x, steps="auto", max_steps=8, tolerance=1e-9)
    assert info["steps"].tolist() == [8]
    with pytest.raises(ValueError, match="reduce='sum'"):
        _ig(model, x, steps="auto", reduce="max_abs")
    with pytest.raises(ValueError, match="tolerance must be a finite number > 0"):
        _ig(model, x, steps="auto", tolerance=0)


# ---------------------------------------------------------------- 4: position in the batch


@pytest.mark.parametrize("name", ["smoothgrad", "shap_gradients", "lime"])
def test_a_map_does_not_depend_on_the_image_position_in_the_batch(tiny, name):
    x = images(2)
    kw = FAST[name] | ({"local_smoothing": 0.1} if name == "shap_gradients" else {})
    alone = METHODS[name](tiny, x[1:], targets=1, **kw)
    second = METHODS[name](tiny, x, targets=1, **kw)[1:]
    np.testing.assert_allclose(second, alone, rtol=1e-4, atol=1e-6)
    same = METHODS[name](tiny, x[[1, 1]], targets=1, **kw)
    np.testing.assert_allclose(same[0], same[1], rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- 8: never modify the model


def test_other_callers_never_see_a_modified_model_during_an_attribution():
    """A head whose activation is not computed from its variables (EinsumDense): plain model
    calls from another thread during attributions always get probabilities."""
    import threading

    keras.utils.set_random_seed(3)
    inp = keras.Input((6, 6, 2))
    z = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, activation="tanh")(inp))
    head = keras.layers.EinsumDense("ab,bc->ac", output_shape=3, bias_axes="c",
                                    activation="softmax")
    model = keras.Model(inp, head(z))
    x = np.random.default_rng(0).normal(0, 1, (2, 6, 6, 2)).astype("float32")
    stop, errors = threading.Event(), []

    def explain():
        try:
            while not stop.is_set():
                METHODS["smoothgrad"](model, x, targets=1, n_samples=20, batch_size=1)
        except Exception as err:  # noqa: BLE001 - asserted below
            errors.append(err)

    worker = threading.Thread(target=explain)
    worker.start()
    try:
        sums = [np.asarray(model(x)).sum(axis=1) for _ in range(30)]
        swapped = [head.activation is not keras.activations.softmax for _ in range(30)]
    finally:
        stop.set()
        worker.join()
    assert not errors
    np.testing.assert_allclose(sums, 1.0, rtol=1e-5)
    assert not any(swapped)


# ---------------------------------------------------------------- 2: probability heads as ops


def _logit_model(seed=0, units=3):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((8, 8, 3))
    z = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    return keras.Model(inp, keras.layers.Dense(units, name="logits")(
        keras.layers.GlobalAveragePooling2D()(z)))


HEADS = {
    "ops.softmax": lambda t: keras.ops.softmax(t),
    "activations.softmax": lambda t: keras.activations.softmax(t),
    "Lambda(ops.softmax)": lambda t: keras.layers.Lambda(lambda u: keras.ops.softmax(u))(t),
    "Lambda(activations.softmax)": lambda t: keras.layers.Lambda(keras.activations.softmax)(t),
}


@pytest.mark.parametrize("kind", sorted(HEADS))
def test_softmax_written_as_an_op_is_read_past(kind):
    logits = _logit_model()
    model = keras.Model(logits.inputs[0], HEADS[kind](logits.outputs[0]))
    x = images(2, size=8)
    np.testing.assert_allclose(METHODS["saliency"](model, x, targets=1),
                               METHODS["saliency"](logits, x, targets=1), rtol=1e-5)
    nested = keras.Sequential([keras.Input((8, 8, 3)), model])
    np.testing.assert_allclose(METHODS["saliency"](nested, x, targets=1),
                               METHODS["saliency"](logits, x, targets=1), rtol=1e-5)
    np.testing.assert_allclose(METHODS["cam"](model, x, targets=1),
                               METHODS["cam"](logits, x, targets=1), rtol=1e-5)
    from course_utils import metrics

    probs = np.asarray(model(x))
    curve = metrics.deletion(model, x, np.ones((2, 8, 8)), targets=1, steps=2)
    np.testing.assert_allclose(curve.scores[:, 0], probs[:, 1], rtol=1e-5)  # softmax once


def test_sigmoid_op_head_picks_the_class_from_the_logit():
    logits = _logit_model(seed=4, units=1)
    x = images(8, size=8, seed=2)
    bias = logits.get_layer("logits").bias
    bias.assign(bias - np.median(np.asarray(logits(x))))  # half the images on each side
    model = keras.Model(logits.inputs[0], keras.ops.sigmoid(logits.outputs[0]))
    p = np.asarray(model(x))[:, 0]
    assert np.any(p > 0.5) and np.any(p < 0.5)
    maps = METHODS["saliency"](model, x, reduce="sum")
    expected = np.where(p > 0.5, 0, 1)
    np.testing.assert_allclose(maps, METHODS["saliency"](logits, x, expected, reduce="sum"),
                               rtol=1e-5, atol=1e-7)


def test_an_unreadable_probability_head_is_detected_and_warned_about():
    import tensorflow as tf

    logits = _logit_model(seed=1)
    model = keras.Model(logits.inputs[0],
                        keras.layers.Lambda(lambda t: tf.nn.softmax(t))(logits.outputs[0]))
    x = images(2, size=8)
    with pytest.warns(UserWarning, match="looks like probabilities"):
        METHODS["saliency"](model, x, targets=1)
    from course_utils import metrics

    curve = metrics.deletion(model, x, np.ones((2, 8, 8)), targets=1, steps=2)
    np.testing.assert_allclose(curve.scores[:, 0], np.asarray(model(x))[:, 1], rtol=1e-5)


@pytest.mark.parametrize("options, error, match", [
    ({"steps": 2.5}, ValueError, r"steps must be an integer >= 1.*got 2.5"),
    ({"seed": -1}, ValueError, r"seed must be an integer >= 0"),
    ({"blur_sigma": np.inf}, ValueError, r"blur_sigma must be a finite number > 0"),
    ({"baseline": np.nan}, ValueError, r"baseline contains .* NaN"),
])
def test_deletion_options_use_the_same_checks(tiny, options, error, match):
    from course_utils import metrics

    with pytest.raises(error, match=match):
        metrics.deletion(tiny, images(1), np.ones((1, 16, 16)), **options)


def test_expected_gradient_draws_are_the_draws_of_shap_gradients():
    """Lesson 08 recomputes SHAP by hand from expected_gradient_draws(1, n, m, seed)."""
    import tensorflow as tf

    from course_utils.attribution.shap_gradients import expected_gradient_draws

    model = _tanh_model(steepness=0.5)
    bg = np.random.default_rng(1).uniform(0, 1, (5, 4, 4, 1)).astype("float32")
    x = np.random.default_rng(2).uniform(0, 1, (2, 4, 4, 1)).astype("float32")
    idx, t = expected_gradient_draws(2, 12, len(bg), seed=3)
    path = tf.constant(bg[idx[1]] + t[1][:, None, None, None] * (x[1] - bg[idx[1]]))
    with tf.GradientTape() as tape:
        tape.watch(path)
        f = model(path)[:, 0]
    by_hand = ((x[1] - bg[idx[1]]) * tape.gradient(f, path).numpy()).mean(axis=0).sum(-1)
    maps = METHODS["shap_gradients"](model, x, 0, background=bg, n_samples=12, seed=3)
    np.testing.assert_allclose(maps[1], by_hand, rtol=1e-4, atol=1e-6)
