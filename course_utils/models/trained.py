"""The course's own trained models: small CNNs trained here, on the CPU, and cached.

They are real trained models that every lesson can explain offline. Each is cached in
``data_dir()/cache/models`` under a key made of its architecture and training settings, so the
first call trains (a few minutes on two CPU cores, with a progress bar) and later calls load in
seconds. Changing the architecture or a setting changes the key and retrains.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import keras
import numpy as np
from tqdm.auto import tqdm

from course_utils import cache, config
from course_utils.models.registry import ModelInfo, register


@dataclass(frozen=True)
class TrainSettings:
    """Training settings that, with the architecture, make the cache key."""

    epochs: int
    batch_size: int = 128
    learning_rate: float = 1e-3  # initial; decays to zero along a cosine
    schedule: str = "cosine"
    data_version: str = "1"  # bump when the training data's generator changes
    seed: int = 0
    n_train: int | None = None  # None: the whole training split


class TqdmCallback(keras.callbacks.Callback):
    """A compact progress bar for ``model.fit``: one bar over all batches of all epochs."""

    def __init__(self, epochs: int, steps: int, desc: str):
        super().__init__()
        self.bar = tqdm(total=epochs * steps, desc=desc, unit="batch", mininterval=1.0)

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.bar.set_postfix(
            {k: f"{v:.3f}" for k, v in logs.items() if k in ("loss", "accuracy", "val_accuracy")}
        )

    def on_train_end(self, logs=None):
        self.bar.close()


# --------------------------------------------------------------------------------------------
# Architectures
# --------------------------------------------------------------------------------------------

def _conv_bn_relu(x, filters: int, name: str, momentum: float = 0.99):
    """Conv2D, then batch norm, then ReLU as three layers: the useful feature map is the ReLU's
    output, which is what :func:`course_utils.surgery.last_spatial_layer` finds."""
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization(momentum=momentum, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def fashion_architecture() -> keras.Model:
    """The Fashion-MNIST CNN: four conv blocks, global average pooling, a linear classifier.

    The GAP-then-Dense head makes it a CAM model; the ``logits`` layer outputs logits and a
    separate softmax layer turns them into probabilities (so gradients can use the logits).
    """
    inp = keras.Input((28, 28, 1), name="image")
    x = _conv_bn_relu(inp, 32, "conv1")
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = _conv_bn_relu(x, 64, "conv2")
    x = _conv_bn_relu(x, 64, "conv3")
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = _conv_bn_relu(x, 128, "conv4")
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dropout(0.3, name="dropout")(x)
    logits = keras.layers.Dense(10, name="logits")(x)
    out = keras.layers.Softmax(name="probabilities")(logits)
    return keras.Model(inp, out, name="fashion_cnn")


def shapes_architecture() -> keras.Model:
    """The shapes CNN: four conv blocks, global average pooling, a linear classifier."""
    inp = keras.Input((64, 64, 3), name="image")
    # a short training run: batch-norm statistics must follow the weights closely
    x = _conv_bn_relu(inp, 16, "conv1", momentum=0.9)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = _conv_bn_relu(x, 32, "conv2", momentum=0.9)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = _conv_bn_relu(x, 64, "conv3", momentum=0.9)
    x = _conv_bn_relu(x, 64, "conv4", momentum=0.9)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    logits = keras.layers.Dense(3, name="logits")(x)
    out = keras.layers.Softmax(name="probabilities")(logits)
    return keras.Model(inp, out, name="shapes_cnn")


def architecture_key(model: keras.Model) -> dict:
    """A JSON description of an architecture (its layer configs), for the cache key.

    Layer names are part of it (lessons refer to layers by name), so architectures cached this
    way name their layers explicitly: Keras' automatic names change from one build to the next.
    """
    return {"layers": [
        {"class": type(layer).__name__, "config": layer.get_config()} for layer in model.layers
    ]}


# --------------------------------------------------------------------------------------------
# Train-or-load
# --------------------------------------------------------------------------------------------

def _paths(name: str, key: str) -> tuple[Path, Path]:
    folder = config.cache_dir("models")
    return folder / f"{name}-{key}.keras", folder / f"{name}-{key}.json"


#: Stands for the checksum of a record written before checksums were recorded.
LEGACY = "legacy"


def _load_checked(model_path: Path, meta_path: Path) -> keras.Model | None:
    """The cached model if it is the one that was saved there, else ``None`` after a warning
    that names the damaged file (the caller then retrains and replaces it).

    The meta JSON holds the SHA-256 of the saved model file: a garbage, empty, truncated or
    swapped model file, or a corrupt or missing meta JSON, fail the check. A record written
    before checksums were recorded is adopted: its model is loaded and its checksum recorded.
    """
    try:
        meta = json.loads(meta_path.read_text())
        expected = meta.get("sha256", LEGACY) if isinstance(meta, dict) else None
        if not isinstance(expected, str):
            raise TypeError(f"its checksum is {expected!r}, not a hex string")
    except (OSError, ValueError, TypeError) as exc:
        problem = (f"its record {meta_path} is unreadable or has no checksum "
                   f"({type(exc).__name__}: {exc})")
    else:
        digest = cache.sha256_of(model_path) if model_path.is_file() else None
        if digest is None:
            problem = f"{model_path} is missing"
        elif expected not in (digest, LEGACY):
            problem = (f"{model_path} is not the model saved there: its SHA-256 differs from "
                       f"the one recorded in {meta_path.name} (a damaged or replaced file)")
        else:
            try:
                model = keras.models.load_model(model_path, compile=False)
            except Exception as exc:  # noqa: BLE001 - whatever Keras makes of the file
                problem = f"{model_path} cannot be loaded ({type(exc).__name__}: {exc})"
            else:
                if expected == LEGACY:  # minutes of training kept: record its checksum now
                    cache.atomic_write_json(meta_path, {**meta, "sha256": digest})
                return model
    message = f"The cached model is not usable: {problem}. Retraining it and replacing the cache."
    warnings.warn(message, UserWarning, stacklevel=3)
    print("WARNING:", message)
    return None


def train_or_load(
    name: str,
    build: Callable[[], keras.Model],
    data: Callable[[], tuple],
    settings: TrainSettings,
    info: ModelInfo,
    retrain: bool = False,
) -> keras.Model:
    """Load model ``name`` from the cache, or train it and cache it atomically.

    ``data()`` returns ``(x_train, y_train), (x_test, y_test)`` already scaled for the model.
    The training history, the test accuracy and the SHA-256 of the saved model file are stored
    beside the model in a JSON file (:func:`history`). A cached model whose file does not match
    its checksum, or whose JSON is unreadable, is retrained with a warning naming the file.
    """
    settings = replace(settings, seed=settings.seed + config.train_seed())
    keras.utils.set_random_seed(settings.seed)
    model = build()
    key = cache.key_of({"arch": architecture_key(model), "train": asdict(settings),
                        "keras": keras.__version__.split(".")[0]})
    model_path, meta_path = _paths(name, key)
    cached = None
    if not retrain and (model_path.exists() or meta_path.exists()):
        cached = _load_checked(model_path, meta_path)
    if cached is not None:
        model = cached
    else:
        (x_train, y_train), (x_test, y_test) = data()
        if settings.n_train is not None:
            x_train, y_train = x_train[: settings.n_train], y_train[: settings.n_train]
        steps = int(np.ceil(len(x_train) / settings.batch_size))
        # cosine decay to zero: the last epoch is calm, so the final accuracy does not depend
        # on where a noisy step happened to land (batch-norm statistics settle with it)
        schedule = keras.optimizers.schedules.CosineDecay(
            settings.learning_rate, decay_steps=steps * settings.epochs
        )
        model.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        hist = model.fit(
            x_train, y_train, epochs=settings.epochs, batch_size=settings.batch_size,
            validation_data=(x_test, y_test), verbose=0,
            callbacks=[TqdmCallback(settings.epochs, steps, f"training {name}")],
        )
        test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0, batch_size=512)
        with cache.atomic_path(model_path) as tmp:
            model.save(tmp)
            digest = cache.sha256_of(tmp)
        meta = {
            "name": name, "key": key, "settings": asdict(settings),
            "history": {k: [float(v) for v in vals] for k, vals in hist.history.items()},
            "test_accuracy": float(test_acc), "test_loss": float(test_loss),
            "sha256": digest,
        }
        cache.atomic_write_json(meta_path, meta)
    model.course_meta_path = str(meta_path)
    return register(model, info)


def history(model: keras.Model) -> dict:
    """The stored training record of a course model: ``settings``, ``history`` (per-epoch
    ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``), ``test_accuracy``."""
    path = getattr(model, "course_meta_path", None)
    if path is None:
        raise ValueError("This model was not trained by course_utils; it has no stored history.")
    return json.loads(Path(path).read_text())


# --------------------------------------------------------------------------------------------
# The course's models
# --------------------------------------------------------------------------------------------

FASHION_SETTINGS = TrainSettings(epochs=5, batch_size=128, learning_rate=2e-3)
SHAPES_SETTINGS = TrainSettings(epochs=4, batch_size=64, learning_rate=2e-3, n_train=6000)
#: In the spurious model's data the object has the label's shape in 70% of the images and the
#: watermark in all of them: the junk is the better cue, as snow was for "wolf".
SPURIOUS_SHAPE_AGREEMENT = 0.7
SHAPES_TEST_SEED = 12345


def _fashion_data():
    from course_utils.data.fashion import fashion_mnist

    (x_train, y_train), (x_test, y_test) = fashion_mnist()
    scale = lambda x: (x.astype("float32") / 255.0)[..., None]  # noqa: E731
    return (scale(x_train), y_train), (scale(x_test), y_test)


def fashion_cnn(retrain: bool = False) -> keras.Model:
    """The course's Fashion-MNIST CNN (trained on first use, then loaded from the cache).

    Input: ``(N, 28, 28, 1)`` in ``[0, 1]``; output: softmax over the 10 classes of
    :data:`course_utils.data.fashion.CLASS_NAMES`. Reaches about 91-92% test accuracy.

    The first call trains for minutes, so it is not a docstring example that runs::

        model = fashion_cnn()
        history(model)["test_accuracy"]  # about 0.91-0.92

    Examples
    --------
    >>> net = fashion_architecture()  # the network it trains, untrained
    >>> net.input_shape, net.output_shape
    ((None, 28, 28, 1), (None, 10))
    """
    from course_utils.data.fashion import CLASS_NAMES

    return train_or_load(
        "fashion_cnn", fashion_architecture, _fashion_data, FASHION_SETTINGS,
        ModelInfo(name="fashion_cnn", pixel_max=1.0, class_names=list(CLASS_NAMES)),
        retrain=retrain,
    )


def shapes_cnn(spurious: bool = False, retrain: bool = False) -> keras.Model:
    """A small CNN trained on the synthetic shapes dataset (:func:`course_utils.data.shapes`).

    ``spurious=True`` trains on the variant whose watermark encodes the label and whose object
    agrees with the label in only :data:`SPURIOUS_SHAPE_AGREEMENT` of the images: the model is
    accurate on its own test split but looks at the watermark instead of the object, and fails
    when the watermark moves (``shapes(..., spurious="shuffled")``).

    The first call trains for minutes, so it is not a docstring example that runs::

        model = shapes_cnn()
        history(model)["test_accuracy"]  # above 0.9

    Examples
    --------
    >>> net = shapes_architecture()  # the network it trains, untrained
    >>> net.input_shape, net.output_shape
    ((None, 64, 64, 3), (None, 3))
    """
    from course_utils.data.synthetic import CLASS_NAMES, shapes

    settings = SHAPES_SETTINGS
    agreement = SPURIOUS_SHAPE_AGREEMENT if spurious else 1.0

    def data():
        train = shapes(settings.n_train, seed=settings.seed + 1, spurious=spurious,
                       shape_agreement=agreement)
        test = shapes(1000, seed=SHAPES_TEST_SEED, spurious=spurious, shape_agreement=agreement)
        return (train[0], train[1]), (test[0], test[1])

    name = "shapes_cnn_spurious" if spurious else "shapes_cnn"
    return train_or_load(
        name, shapes_architecture, data, replace(settings, data_version=f"2-{agreement}"),
        ModelInfo(name=name, pixel_max=1.0, class_names=list(CLASS_NAMES)),
        retrain=retrain,
    )
