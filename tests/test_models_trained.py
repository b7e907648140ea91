"""The course's own models: trained for real, accurate, cached, and honest about themselves."""

import keras
import numpy as np
import pytest

from course_utils import data, models
from course_utils.models import trained


@pytest.fixture(scope="module")
def fashion():
    return models.fashion_cnn()


def test_fashion_cnn_reaches_90_percent_on_the_test_split(fashion):
    (_, _), (x_test, y_test) = data.fashion_mnist()
    x = (x_test.astype("float32") / 255.0)[..., None]
    acc = (fashion.predict(x, batch_size=1000, verbose=0).argmax(1) == y_test).mean()
    assert acc >= 0.90
    assert models.history(fashion)["test_accuracy"] == pytest.approx(acc, abs=2e-3)


def test_second_call_loads_from_the_cache_without_training(fashion, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("fit() was called although the model is cached")

    monkeypatch.setattr(keras.Model, "fit", no_training)
    again = models.fashion_cnn()
    x = np.random.default_rng(0).uniform(0, 1, (4, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(again.predict(x, verbose=0), fashion.predict(x, verbose=0),
                               atol=1e-6)


def test_course_models_carry_their_facts(fashion):
    info = models.info(fashion)
    assert not info.standin and info.pixel_max == 1.0
    assert list(info.class_names) == list(data.fashion.CLASS_NAMES)


def test_cache_key_changes_with_architecture_or_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    x = np.random.default_rng(0).uniform(0, 1, (64, 8, 8, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype("int64")

    def tiny(width):
        def build():
            inp = keras.Input((8, 8, 1), name="x")
            h = keras.layers.Conv2D(width, 3, activation="relu", name="conv")(inp)
            h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
            out = keras.layers.Dense(2, activation="softmax", name="out")(h)
            return keras.Model(inp, out, name="tiny")
        return build

    def train(width, epochs):
        return trained.train_or_load(
            "tiny", tiny(width), lambda: ((x, y), (x, y)),
            trained.TrainSettings(epochs=epochs, batch_size=32), models.ModelInfo(),
        )

    train(2, 1)
    train(2, 1)
    assert len(list((tmp_path / "cache" / "models").glob("tiny-*.keras"))) == 1
    train(3, 1)
    train(2, 2)
    assert len(list((tmp_path / "cache" / "models").glob("tiny-*.keras"))) == 3
    leftovers = [p for p in (tmp_path / "cache" / "models").iterdir() if p.name.startswith(".")]
    assert leftovers == []


@pytest.fixture(scope="module")
def shapes_test():
    return data.shapes(600, seed=trained.SHAPES_TEST_SEED + 1)


def test_shapes_cnn_is_accurate_on_held_out_images(shapes_test):
    model = models.shapes_cnn()
    images, labels, _ = shapes_test
    acc = (model.predict(images, verbose=0).argmax(1) == labels).mean()
    assert acc >= 0.9


def test_spurious_model_is_accurate_with_the_watermark_and_fails_when_it_moves():
    model = models.shapes_cnn(spurious=True)
    own = data.shapes(600, seed=trained.SHAPES_TEST_SEED + 1, spurious=True,
                      shape_agreement=trained.SPURIOUS_SHAPE_AGREEMENT)
    moved = data.shapes(600, seed=trained.SHAPES_TEST_SEED + 1, spurious="shuffled")
    acc_own = (model.predict(own.images, verbose=0).argmax(1) == own.labels).mean()
    acc_moved = (model.predict(moved.images, verbose=0).argmax(1) == moved.labels).mean()
    assert acc_own >= 0.95  # far above the 70% the objects alone could give
    assert acc_moved < 0.6  # the watermark moved: it relied on the junk
    clean = models.shapes_cnn()
    acc_clean = (clean.predict(moved.images, verbose=0).argmax(1) == moved.labels).mean()
    assert acc_clean >= 0.9  # a model trained without the cue does not care where it is
