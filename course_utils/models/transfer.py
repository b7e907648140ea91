"""Transfer learning and the lecture's small convnet, for the capstone.

Two recipes from the lectures:

- :func:`small_convnet`: a convnet trained from scratch, with data augmentation and dropout
  (four conv + max-pool blocks, flatten, dropout, dense), as in the cats-vs-dogs seminar;
- :func:`transfer_model`: a pretrained convolutional base *inside* a ``Sequential`` with a new
  head (global average pooling, dropout, dense): the ordinary transfer-learning model, whose
  nested base the course's attribution methods resolve (``course_utils.surgery``).
"""

from __future__ import annotations

import keras

from course_utils.models.registry import ModelInfo, info, register


def augmentation(seed: int = 0) -> keras.Sequential:
    """Random flips, small rotations and zooms; active only in training."""
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomRotation(0.05, seed=seed),
            keras.layers.RandomZoom(0.1, seed=seed),
        ],
        name="augmentation",
    )


def small_convnet(input_shape: tuple[int, int, int], n_classes: int, seed: int = 0,
                  class_names: list[str] | None = None) -> keras.Model:
    """The lecture's convnet from scratch: augmentation, 4 conv/pool blocks, dropout, dense.

    Outputs logits through a ``Dense`` and probabilities through a separate ``Softmax``.

    Examples
    --------
    >>> small_convnet((64, 64, 3), 3).output.shape
    (None, 3)
    """
    keras.utils.set_random_seed(seed)
    inp = keras.Input(input_shape, name="image")
    x = augmentation(seed)(inp)
    for i, filters in enumerate((32, 64, 128, 128), start=1):
        x = keras.layers.Conv2D(filters, 3, activation="relu", padding="same",
                                name=f"conv{i}")(x)
        x = keras.layers.MaxPooling2D(name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    x = keras.layers.Dense(128, activation="relu", name="dense")(x)
    logits = keras.layers.Dense(n_classes, name="logits")(x)
    out = keras.layers.Softmax(name="probabilities")(logits)
    model = keras.Model(inp, out, name="small_convnet")
    return register(model, ModelInfo(name="small_convnet", pixel_max=1.0,
                                     class_names=list(class_names or [])))


def transfer_model(base: keras.Model, n_classes: int, class_names: list[str] | None = None,
                   dropout: float = 0.3, train_base: bool = False, seed: int = 0) -> keras.Model:
    """A pretrained base inside a ``Sequential`` with a new GAP + dropout + dense head.

    Parameters
    ----------
    base
        A convolutional base whose output is a spatial feature map, e.g.
        ``keras.applications.MobileNetV2(include_top=False, input_shape=(160, 160, 3))`` or the
        layers of a course model up to its last feature map (see :func:`feature_base`).
    n_classes
        Number of classes of the new task.
    train_base
        Fine-tune the base too (``False``: only the head learns, the usual first stage).

    Returns
    -------
    keras.Sequential
        ``[base, gap, dropout, logits, probabilities]``; it inherits the base's registered
        preprocessing (:func:`course_utils.models.info`) and is labelled a stand-in if the base is.
    """
    keras.utils.set_random_seed(seed)
    base.trainable = train_base
    model = keras.Sequential(
        [
            keras.Input(base.input.shape[1:], name="image"),
            base,
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dropout(dropout, name="dropout"),
            keras.layers.Dense(n_classes, name="logits"),
            keras.layers.Softmax(name="probabilities"),
        ],
        name=f"{base.name}_transfer",
    )
    base_info = info(base)
    return register(model, ModelInfo(
        name=model.name, preprocess=base_info.preprocess, pixel_max=base_info.pixel_max,
        class_names=list(class_names or []), standin=base_info.standin,
        note=base_info.note, stands_for=base_info.stands_for,
    ))


def feature_base(model: keras.Model, layer: str, name: str = "base") -> keras.Model:
    """The part of a Functional ``model`` from its input up to ``layer``, as its own model
    (sharing weights), to serve as the base of :func:`transfer_model`."""
    base = keras.Model(model.input, model.get_layer(layer).output, name=name)
    register(base, info(model))
    return base
