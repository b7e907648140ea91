"""Transfer learning and the lecture's small convnet, for the capstone.

Three recipes from the lectures:

- :func:`small_convnet`: a convnet trained from scratch, with data augmentation and dropout
  (four conv + max-pool blocks, flatten, dropout, dense), as in the cats-vs-dogs seminar;
- :func:`transfer_model`: a pretrained convolutional base *inside* a ``Sequential`` with a new
  head (global average pooling, dropout, dense): the ordinary transfer-learning model, whose
  nested base the course's attribution methods resolve (``course_utils.surgery``), and
  :func:`head`, its head alone, to train on the frozen base's features computed once;
- :func:`finetune`: the capstone's real-data run, a ``keras.applications`` base without its
  top (:func:`backbone`) fine-tuned on a photo dataset (Food-101's apple pie, pizza, omelette
  with InceptionV3; cats vs dogs with MobileNetV2), under a ``tf.distribute`` strategy if
  given. Offline, EfficientNet-Lite0's real ImageNet base takes the place of the named one
  when the call asks for it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import keras

from course_utils.models import efficientnet_lite, imagenet
from course_utils.models.registry import ModelInfo, info, register

if TYPE_CHECKING:
    import tensorflow as tf

    from course_utils.data.folders import ImageSet


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


# Layers that act differently in training even when frozen: a head trained on the frozen base's
# features computed once would miss their training-time randomness.
_TRAINING_ONLY = (keras.layers.Dropout, keras.layers.GaussianNoise, keras.layers.GaussianDropout,
                  keras.layers.AlphaDropout, keras.layers.RandomFlip, keras.layers.RandomRotation,
                  keras.layers.RandomZoom, keras.layers.RandomTranslation,
                  keras.layers.RandomContrast)


def head(model: keras.Model) -> keras.Sequential:
    """The head of a frozen-base :func:`transfer_model`, as its own model sharing its layers.

    A frozen base gives each image the same features at every epoch (it runs in inference
    mode), so compute them once with ``base.predict`` and train the head on them: the same
    updates as ``model.fit`` on the images, at one pass of the base per image instead of one
    per image and epoch (Chollet's "fast feature extraction"). Training the head trains
    ``model``: the layers are the same objects.

    Parameters
    ----------
    model
        A :func:`transfer_model` with ``train_base=False`` (a ``Sequential`` whose first layer
        is the base).

    Returns
    -------
    keras.Sequential
        ``[gap, dropout, logits, probabilities]`` with the base's output as its input.

    Raises
    ------
    ValueError
        ``model`` is not a ``Sequential`` with a nested base, its base is trainable (its
        features change as it learns), or the base holds a layer that acts only in training
        (dropout, noise, augmentation), which features computed once would leave out.

    Examples
    --------
    >>> import keras, numpy as np
    >>> inp = keras.Input((8, 8, 3))
    >>> base = keras.Model(inp, keras.layers.Conv2D(4, 3)(inp), name="base")
    >>> net = transfer_model(base, 2)
    >>> top = head(net)
    >>> x = np.random.default_rng(0).random((2, 8, 8, 3))
    >>> bool(np.allclose(top.predict(base.predict(x, verbose=0), verbose=0),
    ...                  net.predict(x, verbose=0), atol=1e-6))
    True
    """
    layers = model.layers if isinstance(model, keras.Sequential) else []
    if len(layers) < 2 or not isinstance(layers[0], keras.Model):
        raise ValueError(f"Expected a transfer_model (a Sequential whose first layer is the "
                         f"base), got {type(model).__name__} {model.name!r}; build it with "
                         "course_utils.models.transfer.transfer_model(base, n_classes).")
    base = layers[0]
    if base.trainable:
        raise ValueError(f"The base {base.name!r} of {model.name!r} is trainable, so its features "
                         "change as it learns and cannot be computed once; train the whole model "
                         "with model.fit, or freeze it (transfer_model(..., train_base=False)).")
    from course_utils import surgery

    active = [layer.name for _, layer in surgery.iter_layers(base)
              if isinstance(layer, _TRAINING_ONLY)]
    if active:
        raise ValueError(f"The base {base.name!r} holds layers that act only in training "
                         f"({', '.join(active[:3])}), which features computed once would leave "
                         "out; train the whole model with model.fit.")
    return keras.Sequential([keras.Input(base.output.shape[1:], name="features"), *layers[1:]],
                            name=f"{model.name}_head")


def feature_base(model: keras.Model, layer: str, name: str = "base") -> keras.Model:
    """The part of a Functional ``model`` from its input up to ``layer``, as its own model
    (sharing weights), to serve as the base of :func:`transfer_model`.

    For a pretrained ImageNet base at another input size, use :func:`backbone`.

    Examples
    --------
    >>> import keras
    >>> inp = keras.Input((32, 32, 3))
    >>> conv = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    >>> model = keras.Model(inp, keras.layers.GlobalAveragePooling2D()(conv))
    >>> base = feature_base(model, "conv")
    >>> base.output.shape, base.get_layer("conv") is model.get_layer("conv")
    ((None, 30, 30, 4), True)
    """
    base = keras.Model(model.input, model.get_layer(layer).output, name=name)
    register(base, info(model))
    return base


def backbone(name: str, size: int | None = None, fallback: str | None = None) -> keras.Model:
    """A pretrained ImageNet convolutional base without its classifier, at input ``size``.

    For a ``keras.applications`` network it is the network built with ``include_top=False,
    weights="imagenet"``, which reads Keras' *no-top* weight file
    (:func:`course_utils.models.imagenet.weights_file`); for ``"efficientnet_lite0"`` its
    layers up to ``top_activation``, with the weights of its package (always offline).

    Parameters
    ----------
    name
        A name of :data:`course_utils.models.NAMES`.
    size
        Input size in pixels (default: the network's own, 299 or 224).
    fallback
        A network to use instead when the weights of ``name`` are not available, as in
        :func:`course_utils.models.load` (e.g. ``"efficientnet_lite0"``): announced on screen,
        and the base's ``info(...).label`` says which network stands for which.

    Returns
    -------
    keras.Model
        Output ``(None, h, w, channels)``; registered with the network's preprocessing and
        pixel range 255.

    Raises
    ------
    WeightsUnavailableError
        The no-top weights are not cached and cannot be downloaded (or ``COURSE_OFFLINE=1``),
        and no ``fallback``: the message names the file and ``python -m course_utils fetch``.

    Examples
    --------
    >>> backbone("efficientnet_lite0", size=128).output.shape
    (None, 4, 4, 1280)
    """
    key = imagenet.canonical(name)
    size = size or imagenet.input_size(key)
    if key == imagenet.LITE0:
        lite0 = efficientnet_lite.pretrained(size=size, include_top=False)  # ends at top_activation
        base = keras.Model(lite0.input, lite0.output, name=f"{key}_base")
        return imagenet._register(base, key, classes=False)
    s = imagenet.spec(key)

    def build() -> keras.Model:
        return getattr(keras.applications, s.builder)(
            include_top=False, weights="imagenet", input_shape=(size, size, 3))

    model, reason = imagenet._obtain(key, build,
                                     imagenet.weights_path(key, include_top=False, size=size))
    if model is not None:
        return imagenet._register(model, key, classes=False)
    fallback_key = imagenet.canonical(fallback) if fallback is not None else None
    if fallback_key is not None and fallback_key != key:
        note = imagenet._instead(key, fallback_key, fallback, reason)
        base = backbone(fallback_key, size)
        return register(base, dataclasses.replace(info(base), note=note, stands_for=key))
    raise imagenet._unavailable(
        key, imagenet.weights_file(key, include_top=False, size=size), s.notop_mb, reason,
        f"`fallback={imagenet.LITE0!r}` fine-tunes EfficientNet-Lite0's base, a real "
        "pretrained network whose weights come with the course, instead (labelled)."
    )


def _image_set(dataset: ImageSet | str) -> ImageSet:
    """``dataset`` itself, or the training split of the dataset it names."""
    if not isinstance(dataset, str):
        return dataset
    from course_utils.data import folders

    loaders: dict[str, Callable[..., ImageSet]] = {"food101": folders.food101,
                                                   "cats_vs_dogs": folders.cats_vs_dogs}
    if dataset not in loaders:
        raise ValueError(f"Unknown dataset {dataset!r}; valid: {', '.join(loaders)}, or an "
                         "ImageSet from course_utils.data.")
    return loaders[dataset](split="train")


def finetune(dataset: ImageSet | str, base: str = "inception_v3", size: int | None = None,
             epochs: int = 3, batch_size: int = 32, strategy: tf.distribute.Strategy | None = None,
             fallback: str | None = None, learning_rate: float = 1e-3,
             steps_per_epoch: int | None = None, train_base: bool = False, seed: int = 0,
             verbose: int = 0) -> keras.Model:
    """The capstone's fine-tuning on real photos: a pretrained base without its top, a new
    GAP + dropout + dense head (:func:`transfer_model`), trained with Adam on the dataset's
    ``tf.data`` pipeline (images preprocessed for the base inside the pipeline).

    Parameters
    ----------
    dataset
        An :class:`~course_utils.data.folders.ImageSet` (e.g. ``data.food101(split="train")``)
        or the name of one, ``"food101"`` or ``"cats_vs_dogs"`` (its training split).
    base
        The ImageNet network whose base is fine-tuned (see :func:`backbone`); the lecture uses
        ``"inception_v3"`` on Food-101 and ``"mobilenet_v2"`` on cats vs dogs.
    size
        Input size in pixels (default: the base's own).
    strategy
        A ``tf.distribute.Strategy``: the model is built and compiled inside its ``scope()``,
        as Keras' ``fit`` expects, and ``fit`` then runs under it. Default: TensorFlow's
        current strategy (one device).
    fallback
        Another network's base to fine-tune when the weights of ``base`` are not available
        (``"efficientnet_lite0"`` works offline); labelled, as in :func:`backbone`.
    steps_per_epoch
        Train on only this many batches per epoch (default: the whole dataset).
    train_base
        Fine-tune the base too (default: only the head learns).

    Returns
    -------
    keras.Model
        ``[base, gap, dropout, logits, probabilities]``, registered with the dataset's class
        names and the base's preprocessing (pixel range 255), so the attribution methods and
        :mod:`course_utils.plotting` work on it; ``model.history`` holds the training curves.

    Raises
    ------
    WeightsUnavailableError
        The base's ImageNet weights are not available and no ``fallback`` was given (checked
        before the dataset is read).
    FileNotFoundError
        A named dataset is not on this machine (the message names the fetch command).

    Examples
    --------
    Two photos of scikit-image as a two-class dataset, EfficientNet-Lite0's base (offline):

    >>> import tempfile, pathlib, numpy as np, skimage.data
    >>> from PIL import Image
    >>> from course_utils.data.folders import ImageSet
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for photo in ("chelsea", "coffee"):
    ...     Image.fromarray(getattr(skimage.data, photo)()).save(folder / f"{photo}.jpg")
    >>> images = ImageSet(("cat", "cup"), [folder / "chelsea.jpg", folder / "coffee.jpg"],
    ...                   np.array([0, 1]))
    >>> net = finetune(images, base="efficientnet_lite0", size=64, epochs=1, batch_size=2)
    >>> net.predict(np.zeros((1, 64, 64, 3)), verbose=0).shape, info(net).class_names
    ((1, 2), ['cat', 'cup'])

    With the real data and internet: ``finetune("food101", base="inception_v3", size=299)``.
    """
    import tensorflow as tf

    size = size or imagenet.input_size(base)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        feature = backbone(base, size, fallback=fallback)
        images = _image_set(dataset)
        net = transfer_model(feature, len(images.class_names),
                             class_names=list(images.class_names), train_base=train_base,
                             seed=seed)
        net.compile(optimizer=keras.optimizers.Adam(learning_rate),
                    loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    prep = info(feature).preprocess
    train = images.dataset(size, batch_size=batch_size, shuffle=True, seed=seed).map(
        lambda x, y: (prep(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    net.fit(train, epochs=epochs, steps_per_epoch=steps_per_epoch, shuffle=False,  # shuffled above
            verbose=verbose)
    return net
