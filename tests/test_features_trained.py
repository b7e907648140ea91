"""Feature visualization on a trained model: measured quality, not just pictures.

A small CNN is trained in the fixture (about 10 s on 2 cores) on 8000 Fashion-MNIST images from
``course_utils.data.fashion_mnist()`` (Keras' cache or Debian's dataset-fashion-mnist).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from course_utils.data import fashion_mnist
from course_utils.features import (
    class_visualization,
    diagonal_dominance,
    high_frequency_share,
    natural_ratio,
    response_matrix,
    shift_robustness,
    visualize,
)


@pytest.fixture(scope="module")
def trained():
    (x, y), (xt, _) = fashion_mnist()  # a clear error says how to install it when missing
    x = (x[:8000].astype("float32") / 255.0)[..., None]
    keras.utils.set_random_seed(0)
    inp = keras.Input((28, 28, 1))
    h = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv1")(inp)
    h = keras.layers.BatchNormalization(name="bn1")(h)
    h = keras.layers.ReLU(name="relu1")(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Flatten()(h)
    out = keras.layers.Dense(10, activation="softmax", name="probs")(h)
    model = keras.Model(inp, out)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y[:8000], epochs=2, batch_size=128, verbose=0)
    assert hist.history["accuracy"][-1] > 0.7
    natural = (xt[:256].astype("float32") / 255.0)[..., None]
    return model, natural


@pytest.fixture(scope="module")
def conv2_pictures(trained):
    model, _ = trained
    return visualize(model, "conv2", steps=256, lr=0.1, progress=False)


def test_pictures_drive_their_channel_far_above_natural_images(trained, conv2_pictures):
    model, natural = trained
    ratio = natural_ratio(model, conv2_pictures, natural)
    live = np.isfinite(ratio)
    assert live.sum() >= 14
    assert np.all(ratio[live] > 2.0), ratio
    assert np.median(ratio[live]) > 3.0, ratio


def test_diagonal_of_channel_by_picture_matrix_dominates(trained, conv2_pictures):
    model, _ = trained
    m = response_matrix(model, conv2_pictures)
    margin = diagonal_dominance(m)
    diag = np.diag(m)
    off = m[~np.eye(len(m), dtype=bool)]
    assert (margin > 0).sum() >= 14, margin
    assert np.all(margin > -0.1 * diag), margin  # near ties only (near-duplicate channels)
    assert diag.mean() > 1.5 * off.mean()


def test_class_pictures_are_classified_as_their_class(trained):
    model, _ = trained
    vis = class_visualization(model, list(range(10)), steps=128, lr=0.1, progress=False)
    pred = model.predict(vis.pixels(), verbose=0).argmax(axis=1)
    assert pred.tolist() == list(range(10))


def test_lucid_pictures_are_more_readable_than_naive_ones(trained, conv2_pictures):
    """Readability, measured on the trained model (Olah et al. 2017): plain gradient ascent puts
    most of the picture's energy in the highest frequencies (natural images: under 10%);
    Lucid's parameterization and transformations do not, and its pictures keep their channel's
    response when moved by two pixels."""
    model, natural = trained
    naive = visualize(model, "conv2", method="naive", progress=False)
    hf_lucid = np.median(high_frequency_share(conv2_pictures.pixels()))
    hf_naive = np.median(high_frequency_share(naive.pixels()))
    hf_natural = np.median(high_frequency_share(natural[:64]))
    assert hf_natural < hf_lucid < 0.5 * hf_naive, (hf_natural, hf_lucid, hf_naive)
    robust = shift_robustness(model, conv2_pictures)
    live = np.isfinite(robust)
    assert live.sum() >= 14 and np.all(robust[live] > 0.8), robust
