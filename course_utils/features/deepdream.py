"""DeepDream (Mordvintsev et al. 2015): amplify whatever a layer sees in a photo, over octaves.

Gradient ascent on the photo itself, maximizing the mean squared activation of one or more
layers (weighted), as in the Keras example "Deep Dream": the photo is processed from a small
scale (``octave_scale ** -(octaves - 1)``) up to full size; at each scale ``steps`` steps of
size ``step_size`` (in ``[0, 1]`` pixel units) along the gradient normalized by its mean absolute
value, each step under a random cyclic shift (the TensorFlow tutorial's "random roll", drawn from
``seed``), and the detail lost by shrinking the photo is added back after each octave.

The step loop of one octave runs inside one compiled function that accepts any image size, so
all octaves share one trace. The spatial layers of a fixed-size model (VGG16 with its top) take
any size; a non-spatial layer sees each octave resized to the model's input size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from course_utils.features import _graph
from course_utils.surgery import LayerRef


def _weights(model, layers) -> tuple[list[tuple], np.ndarray]:
    if isinstance(layers, Mapping):
        refs, weights = list(layers.keys()), [float(w) for w in layers.values()]
    else:
        refs = [layers] if isinstance(layers, (str, int, keras.layers.Layer)) else list(layers)
        weights = [1.0] * len(refs)
    paths = _graph.resolve(model, refs)
    return paths, np.asarray(weights, "float32")


def _engine(model, paths, c):
    key = ("deepdream", tuple(id(p[-1]) for p in paths))
    imap = _graph.input_map(model)
    # a fixed-size model's spatial layers take any size; anything else sees a resized picture
    spatial = all(len(_graph.layer_output_shape(p)) == 4 for p in paths)
    fixed = None if spatial else _graph.fixed_hw(model)

    def build(mref):
        @tf.function(
            input_signature=[
                tf.TensorSpec((1, None, None, c), tf.float32),  # image in [0, 1]
                tf.TensorSpec((None, 2), tf.int32),  # random shift per step
                tf.TensorSpec((), tf.float32),  # step size
                tf.TensorSpec((len(paths),), tf.float32),  # layer weights
            ]
        )
        def run(img, shifts, step_size, weights):
            n = tf.shape(shifts)[0]

            def loss_of(x):
                if fixed is not None:
                    x = tf.image.resize(x, fixed, method="bilinear")
                acts = _graph.forward_until(mref(), imap(x * imap.pixel_max), paths)
                terms = [tf.reduce_mean(tf.square(a)) for a in acts]
                return tf.reduce_sum(tf.stack(terms) * weights)

            def body(i, img, _):
                rolled = tf.roll(img, shift=shifts[i], axis=[1, 2])
                with tf.GradientTape() as tape:
                    tape.watch(rolled)
                    loss = loss_of(rolled)
                g = tape.gradient(loss, rolled)
                g = tf.roll(g, shift=-shifts[i], axis=[1, 2])
                g = g / tf.maximum(tf.reduce_mean(tf.abs(g)), 1e-8)
                img = tf.clip_by_value(img + step_size * g, 0.0, 1.0)
                return i + 1, img, loss

            _, img, loss = tf.while_loop(
                lambda i, *_: i < n, body, (tf.constant(0), img, tf.constant(0.0))
            )
            return img, loss

        return run

    return _graph.compiled(model, key, build)


def _resize(x: np.ndarray, hw) -> np.ndarray:
    return np.asarray(tf.image.resize(x, hw, method="bilinear"), dtype="float32")


def deepdream(
    model: keras.Model,
    image,
    layers: LayerRef | Sequence[LayerRef] | Mapping[LayerRef, float],
    *,
    octaves: int = 3,
    octave_scale: float = 1.4,
    steps: int = 20,
    step_size: float = 0.01,
    jitter: int = 32,
    seed: int = 0,
    progress: bool = True,
) -> np.ndarray:
    """Dream ``layers`` into a photo, over octaves; returns the photo's pixel space.

    Parameters
    ----------
    model
        A Keras model with one image input (nested models are fine).
    image
        A photo ``(H, W, C)`` in pixel space ``[0, info(model).pixel_max]``.
    layers
        One layer, a list (equal weights) or ``{layer: weight}``.
    octaves
        Number of scales (1 = no octaves).
    octave_scale
        Size ratio between successive octaves (> 1).
    steps
        Gradient-ascent steps per octave.
    step_size
        Step in ``[0, 1]`` pixel units along the mean-abs-normalized gradient.
    jitter
        Largest random cyclic shift in pixels before each step (0: none).
    seed
        Seed of the shifts.
    progress
        Show a progress bar.

    Returns
    -------
    The dreamed photo, same shape and range as ``image``.

    Examples
    --------
    >>> import keras, numpy as np
    >>> m = keras.Sequential([keras.Input((None, None, 3)),
    ...                       keras.layers.Conv2D(4, 3, activation="relu", name="c")])
    >>> deepdream(m, np.full((32, 32, 3), 0.5), "c", steps=2, progress=False).shape
    (32, 32, 3)
    """
    img = _graph.as_batch(model, image, "image") if _graph.fixed_hw(model) is None else None
    if img is None:  # fixed-size model: any photo size is fine, octaves are resized for it
        img = np.asarray(image, "float32")
        img = img[None] if img.ndim == 3 else img
    if img.ndim != 4 or img.shape[0] != 1:
        raise ValueError(f"deepdream takes one photo (H, W, C); got shape {np.shape(image)}.")
    c = _graph.input_shape(model)[2]
    if img.shape[-1] != c:
        raise ValueError(f"The model takes {c}-channel images; the photo has {img.shape[-1]}.")
    for name, value, low in (("octaves", octaves, 1), ("steps", steps, 1), ("jitter", jitter, 0),
                             ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    if not octave_scale > 1:
        raise ValueError(f"octave_scale must be > 1, got {octave_scale!r}.")
    if not step_size > 0:
        raise ValueError(f"step_size must be > 0, got {step_size!r}.")
    paths, weights = _weights(model, layers)
    pmax = _graph.input_map(model).pixel_max
    original = img / pmax
    h, w = original.shape[1:3]
    shapes = [
        (max(int(round(h / octave_scale**i)), 8), max(int(round(w / octave_scale**i)), 8))
        for i in reversed(range(octaves))
    ]
    run = _engine(model, paths, c)
    rng = np.random.default_rng(seed)
    shrunk = _resize(original, shapes[0])
    x = shrunk
    with tqdm(total=octaves * steps, disable=not progress, desc="deepdream") as bar:
        for shape in shapes:
            x = _resize(x, shape)
            shifts = rng.integers(-jitter, jitter + 1, size=(steps, 2)).astype("int32")
            x, _ = run(tf.constant(x), tf.constant(shifts), tf.constant(float(step_size)),
                       tf.constant(weights))
            x = np.asarray(x)
            # add back the detail lost by shrinking the photo (Keras example)
            x = x + _resize(original, shape) - _resize(shrunk, shape)
            shrunk = _resize(original, shape)
            bar.update(steps)
    return (np.clip(x[0], 0.0, 1.0) * pmax).astype("float32")
