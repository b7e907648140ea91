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

from course_utils.engine import checks, kernels, spaces, taps
from course_utils.engine.images import as_batch, fixed_hw
from course_utils.surgery import LayerRef

#: The smallest octave, in pixels per side: a smaller photo is refused.
MIN_SIDE = 8
#: How far (as a fraction of the pixel range) a photo may overshoot it, e.g. after resampling.
RANGE_TOLERANCE = 0.05


def _weights(model, layers) -> tuple[list[tuple], np.ndarray]:
    if isinstance(layers, Mapping):
        refs, weights = list(layers.keys()), [float(w) for w in layers.values()]
    else:
        refs = [layers] if isinstance(layers, (str, int, keras.layers.Layer)) else list(layers)
        weights = [1.0] * len(refs)
    paths = taps.resolve(model, refs)
    return paths, np.asarray(weights, "float32")


def _engine(model, paths, c):
    key = tuple(id(p[-1]) for p in paths)
    imap = spaces.input_map(model)
    # a fixed-size model's spatial layers take any size; anything else sees a resized picture
    spatial = all(len(taps.output_shape(p)) == 4 for p in paths)
    fixed = None if spatial else fixed_hw(model)

    def build():
        @kernels.graph(  # plain Python and tf.while_loop: nothing for autograph to convert
            [
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
                acts = taps.forward_until(model, imap(x * imap.pixel_max), paths)
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

    return kernels.compiled(model, "features.deepdream", build, options=key)


def _check_range(img: np.ndarray, pmax: float) -> None:
    """Refuse a photo outside the model's pixel range ``[0, pmax]``: a ``[0, 255]`` photo on a
    ``[0, 1]`` model would be dreamt as a white one, a ``[0, 1]`` photo on a ``[0, 255]`` model
    as a black one. A few percent over the range (resampling overshoot) is fine."""
    lo, hi = float(img.min()), float(img.max())
    tolerance = RANGE_TOLERANCE * pmax
    expected = (f"deepdream takes a photo in the model's pixel range [0, {pmax:g}] "
                f"(info(model).pixel_max); this one ranges {lo:g}..{hi:g}")
    if lo < -tolerance or hi > pmax + tolerance:
        in_0_255 = pmax == 1.0 and lo >= -tolerance and hi <= 255.0 * (1 + RANGE_TOLERANCE)
        hint = "divide it by 255" if in_0_255 else f"rescale it to [0, {pmax:g}]"
        raise ValueError(f"{expected}: {hint}.")
    if pmax > 1.0 and 0.0 < hi <= 1.0:
        raise ValueError(f"{expected}, which looks like [0, 1]: multiply it by {pmax:g}.")


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
        A photo ``(H, W, C)`` in pixel space ``[0, info(model).pixel_max]``, at least
        :data:`MIN_SIDE` pixels per side. A photo in another range (``[0, 255]`` for a
        ``[0, 1]`` model or the reverse), with NaNs, or a file name is refused with a message.
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
    The dreamed photo, same shape and range as ``image`` (clipped to the model's range).

    Examples
    --------
    >>> import keras, numpy as np
    >>> m = keras.Sequential([keras.Input((None, None, 3)),
    ...                       keras.layers.Conv2D(4, 3, activation="relu", name="c")])
    >>> deepdream(m, np.full((32, 32, 3), 0.5), "c", steps=2, progress=False).shape
    (32, 32, 3)
    """
    # a fixed-size model takes a photo of any size: the octaves are resized for it
    img = as_batch(model, image, pixels=True, name="image", check_size=fixed_hw(model) is None)
    if img.shape[0] != 1:
        raise ValueError(f"deepdream takes one photo (H, W, C); got shape {np.shape(image)}.")
    h, w, c = img.shape[1:]
    if min(h, w) < MIN_SIDE:
        raise ValueError(
            f"The photo is {h}x{w} pixels; deepdream needs at least {MIN_SIDE}x{MIN_SIDE} (its "
            "smallest octave) and returns the photo's own size. Resize the photo first."
        )
    octaves = checks.integer(octaves, "octaves", example="scales, e.g. 3")
    steps = checks.integer(steps, "steps", example="steps per octave, e.g. 20")
    jitter = checks.integer(jitter, "jitter", minimum=0, example="pixels, e.g. 32")
    seed = checks.seed(seed)
    octave_scale = checks.at_least(octave_scale, "octave_scale", 1.0, strict=True)
    step_size = checks.at_least(step_size, "step_size", 0.0, strict=True)
    paths, weights = _weights(model, layers)
    pmax = spaces.input_map(model).pixel_max
    _check_range(img, pmax)
    original = img / pmax
    shapes = [
        (max(int(round(h / octave_scale**i)), MIN_SIDE),
         max(int(round(w / octave_scale**i)), MIN_SIDE))
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
