"""Generic fixtures shared by the unit tests: tiny models and a tiny ground-truth dataset."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import course_utils  # noqa: E402, F401 - before TensorFlow, as in the lessons: picks the CPU kernels

# isort: split
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

#: Options that make every attribution method cheap enough for a unit test.
FAST = {
    "smoothgrad": {"n_samples": 3},
    "integrated_gradients": {"steps": 4},
    "occlusion": {"window": 4, "stride": 4},
    "lime": {"n_samples": 20, "segmentation": "slic",
             "segmentation_options": {"n_segments": 6, "compactness": 100}},
    "shap_gradients": {"n_samples": 4},
    "rise": {"n_masks": 16},
}


def conv_gap_model(size=16, channels=3, classes=3, head="softmax", seed=0, bn=True):
    """Conv -> Conv -> (BN) -> ReLU -> GAP -> Dense: the CAM-compatible tiny CNN."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, channels))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv2")(x)
    if bn:
        x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    units = 1 if head == "sigmoid" else classes
    act = {"softmax": "softmax", "sigmoid": "sigmoid", "linear": None}[head]
    out = keras.layers.Dense(units, activation=act, name="head")(x)
    return keras.Model(inp, out, name=f"tiny_{head}")


def nested_model(size=16, channels=3, classes=3, seed=0):
    """A functional 'base' inside a Sequential: the ordinary transfer-learning model."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, channels))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="b_conv1")(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", name="b_conv2")(x)
    x = keras.layers.BatchNormalization(name="b_bn")(x)
    x = keras.layers.ReLU(name="b_relu")(x)
    base = keras.Model(inp, x, name="base")
    return keras.Sequential([
        keras.Input((size, size, channels)),
        base,
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(classes, activation="softmax", name="head"),
    ], name="nested")


def images(n=3, size=16, channels=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, size, size, channels)).astype("float32")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tiny():
    return conv_gap_model()


@pytest.fixture(scope="session")
def tiny_nested():
    return nested_model()


def square_dataset(n, size=24, square=6, seed=0):
    """Grey noise images with one coloured square; the class is the square's colour (R, G or B).

    Returns ``(x, y, masks)`` with boolean object masks: constructed ground truth.
    """
    rng = np.random.default_rng(seed)
    x = np.repeat(rng.uniform(0.0, 0.5, (n, size, size, 1)), 3, axis=-1).astype("float32")
    y = rng.integers(0, 3, n)
    masks = np.zeros((n, size, size), bool)
    for i in range(n):
        t, left = rng.integers(0, size - square + 1, 2)
        x[i, t:t + square, left:left + square] = 0.1
        x[i, t:t + square, left:left + square, y[i]] = 1.0
        masks[i, t:t + square, left:left + square] = True
    return x, y, masks


@pytest.fixture(scope="session")
def squares():
    """A tiny CNN trained on :func:`square_dataset` and held-out test data with masks."""
    keras.utils.set_random_seed(1)
    x, y, _ = square_dataset(1200, seed=1)
    model = conv_gap_model(size=24, classes=3, bn=False, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=6, batch_size=64, verbose=0)
    xt, yt, mt = square_dataset(24, seed=2)
    acc = float(np.mean(np.argmax(model.predict(xt, verbose=0), -1) == yt))
    return model, xt, yt, mt, acc


@pytest.fixture(scope="session")
def food101_tree(tmp_path_factory):
    """A miniature Food-101 folder (apple pie, pizza, omelette; 6 train + 2 test photos each)."""
    from _photos import make_food101

    return make_food101(tmp_path_factory.mktemp("food"))


@pytest.fixture(scope="session")
def pet_images_tree(tmp_path_factory):
    """A miniature PetImages folder (10 cats, 10 dogs, and one truncated cat JPEG)."""
    from _photos import make_pet_images

    return make_pet_images(tmp_path_factory.mktemp("pets"))
