"""course_utils.features: one-pass activations, depth summary, dead channels, bad input."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from course_utils import surgery
from course_utils.engine import taps
from course_utils.features import (
    CachedActivations,
    activations,
    dead_channels,
    depth_summary,
    input_correlation,
)
from course_utils.models.registry import ModelInfo, register


def _base(name="base", size=(16, 16)):
    keras.utils.set_random_seed(1)
    inp = keras.Input((*size, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inp)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="c2")(x)
    return keras.Model(inp, x, name=name)


@pytest.fixture(scope="module")
def nested():
    base = _base()
    outer = keras.Sequential(
        [keras.Input((16, 16, 3)), base, keras.layers.GlobalAveragePooling2D(name="gap"),
         keras.layers.Dense(3, name="head")],
        name="outer",
    )
    return outer, base


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(size=(5, 16, 16, 3)).astype("float32")


def test_one_pass_equals_sub_models(images):
    model = _base("flat")
    got = activations(model, images, ["c1", "pool", "c2"], batch_size=2)
    assert list(got) == ["c1", "pool", "c2"]
    for name in got:
        sub = keras.Model(model.input, model.get_layer(name).output)
        np.testing.assert_allclose(got[name], sub.predict(images, verbose=0), rtol=1e-5,
                                   atol=1e-6)


def test_nested_model_layers(nested, images):
    outer, base = nested
    got = activations(outer, images, ["base/c1", "c2", "head"])
    sub = keras.Model(base.input, [base.get_layer("c1").output, base.get_layer("c2").output])
    c1, c2 = sub.predict(images, verbose=0)
    np.testing.assert_allclose(got["base/c1"], c1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["c2"], c2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["head"], outer.predict(images, verbose=0), rtol=1e-5,
                               atol=1e-6)


def test_compiled_once_per_layer_set(images):
    model = _base("traced")
    activations(model, images[:2], ["c1", "c2"])
    activations(model, images[:3], ["c1", "c2"])
    fns = {k: f for k, f in surgery.model_cache(model, "_course_utils_compiled").items()
           if k.method == "features.activations"}
    assert len(fns) == 1
    (fn,) = fns.values()
    assert fn.experimental_get_tracing_count() <= 2  # batch sizes 2 and 3 at most


def test_forward_stops_after_last_requested_layer(images):
    model = _base("stop")
    seen = []
    layer = model.get_layer("c2")
    original = layer.call

    def spy(*args, **kwargs):
        seen.append("c2")
        return original(*args, **kwargs)

    layer.call = spy
    try:
        taps.forward_until(model, images[:1], taps.resolve(model, ["c1"]))
        assert seen == []
        taps.forward_until(model, images[:1], taps.resolve(model, ["c2"]))  # control
        assert seen == ["c2"]
    finally:
        del layer.call


def test_preprocessing_is_applied(images):
    model = _base("pre")
    register(model, ModelInfo(name="pre", preprocess=lambda x: x / 255.0 * 2 - 1,
                              pixel_max=255.0))
    got = activations(model, images * 255, ["c1"])["c1"]
    raw = activations(model, images * 2 - 1, ["c1"], preprocess=False)["c1"]
    np.testing.assert_allclose(got, raw, rtol=1e-4, atol=1e-5)


def test_dead_channels_and_zero_fraction():
    inp = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(3, 1, activation="relu", name="c")
    model = keras.Model(inp, conv(inp))
    # channel 0 copies the input, channel 1 is its negative (dead on positive input),
    # channel 2 is a constant 0.5
    conv.set_weights([np.array([1.0, -1.0, 0.0]).reshape(1, 1, 1, 3), np.array([0, 0, 0.5])])
    img = np.random.default_rng(0).uniform(0.1, 1.0, size=(8, 8, 1))
    act = activations(model, img, ["c"])["c"][0]
    assert dead_channels(act).tolist() == [False, True, False]
    summary = depth_summary(model, img)
    assert summary.zero_fraction[0] == pytest.approx(1 / 3)
    assert summary.dead_channels[0] == pytest.approx(1 / 3)
    # the best channel is the input itself: correlation 1 (top 10% of 2 live channels = 1)
    assert summary.input_corr[0] == pytest.approx(1.0, abs=1e-5)
    assert "c" in summary.table()


def test_input_correlation_drops_with_blur():
    rng = np.random.default_rng(0)
    img = rng.uniform(size=(32, 32, 3)).astype("float32")
    lum = img @ np.array([0.299, 0.587, 0.114], "float32")
    sharp = lum[..., None]
    coarse = lum.reshape(4, 8, 4, 8).mean(axis=(1, 3))[..., None]  # 4x4 map of the image
    assert input_correlation(sharp, img) == pytest.approx(1.0, abs=1e-5)
    assert input_correlation(coarse, img) < 0.5
    # a big image is compared on a reduced grid: a smooth map still correlates fully
    yy, xx = np.mgrid[:300, :300]
    big = np.repeat(((np.sin(xx / 20) + np.cos(yy / 30)) / 4 + 0.5)[..., None], 3, axis=-1)
    assert input_correlation(big[..., :1], big.astype("float32")) == pytest.approx(1.0, abs=1e-3)


def test_cached_activations(images):
    model = _base("cached")
    cache = CachedActivations(model, images[:2], ["c1", "c2"])
    direct = activations(model, images[:2], ["c2"])["c2"]
    np.testing.assert_allclose(cache.channel("c2", 5, image=1), direct[1, ..., 5])
    with pytest.raises(ValueError, match="valid indices are 0..5"):
        cache.channel("c2", 6)
    with pytest.raises(ValueError, match="not cached"):
        cache.layer("pool")
    with pytest.raises(ValueError, match="valid 0..1"):
        cache.layer("c1", image=2)


def test_bad_input(nested, images):
    outer, _ = nested
    with pytest.raises(ValueError, match="no layer named 'nope'.*Valid layer names"):
        activations(outer, images, ["nope"])
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        activations(outer, images[..., :1], ["c1"])
    with pytest.raises(ValueError, match="takes 16x16"):
        activations(outer, np.zeros((1, 8, 8, 3)), ["c1"])
    with pytest.raises(ValueError, match="batch_size"):
        activations(outer, images, ["c1"], batch_size=0)
    with pytest.raises(ValueError, match="no spatial output"):
        depth_summary(outer, images[0], ["head"])
