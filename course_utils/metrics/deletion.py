"""Deletion and insertion curves (Petsiuk, Das & Saenko 2018, "RISE").

A faithful map ranks pixels by how much the model needs them. **Deletion** removes pixels in that
order, most important first, and records the model's probability of the target class after each
step: a good map makes it fall fast (small area under the curve). **Insertion** starts from an
image with everything removed and puts pixels back in the same order: a good map makes the
probability rise fast (large area). Compare with a random ranking of the same pixels
(:func:`random_maps`): a map that does no better than chance says nothing about the model.

"Removed" is defined in **pixel space** (a blurred copy of the image by default, or a grey,
black or mean-colour image) and mapped through the model's preprocessing
(``course_utils.models.info(model).preprocess``): a zero in preprocessed space is not a neutral
image. The score is the **softmax probability** of the target class, as in RISE (a logit is
unbounded, so its curves could not be compared across images).

All steps of all images are evaluated in compiled batches of ``batch_size`` rows, never one
``predict`` per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from course_utils import surgery
from course_utils.engine import batching, checks, inputs, kernels, replicas, scoring, spaces
from course_utils.metrics._checks import check_maps

MODES = ("deletion", "insertion")
DEFAULT_STEPS = 32


@dataclass
class Curves:
    """Scores of the target class as pixels are removed (deletion) or added (insertion).

    Attributes
    ----------
    mode
        ``"deletion"`` or ``"insertion"``.
    fractions
        float64 ``(S + 1,)``: share of pixels removed/inserted at each step, from 0 to 1.
    scores
        float64 ``(N, S + 1)``: softmax probability of each image's target at each step.
    targets
        int ``(N,)``: the class whose probability is tracked.
    """

    mode: str
    fractions: np.ndarray
    scores: np.ndarray
    targets: np.ndarray

    @property
    def auc(self) -> np.ndarray:
        """Area under each image's curve (trapezoid rule over ``fractions``), ``(N,)`` in [0, 1].

        Deletion: lower is better. Insertion: higher is better.
        """
        return np.trapezoid(self.scores, self.fractions, axis=1)

    @property
    def mean_curve(self) -> np.ndarray:
        """The curve averaged over images, ``(S + 1,)``."""
        return self.scores.mean(axis=0)

    def __len__(self) -> int:
        return len(self.scores)


def random_maps(shape, seed: int = 0) -> np.ndarray:
    """Uniform random maps: the "random ranking" baseline of deletion and insertion.

    Parameters
    ----------
    shape
        ``(N, H, W)``, or an array of maps/images whose first three axes give it.

    Examples
    --------
    >>> random_maps((2, 4, 4)).shape
    (2, 4, 4)
    """
    if not isinstance(shape, tuple):
        shape = tuple(np.shape(shape)[:3])
    if len(shape) != 3:
        raise ValueError(f"random_maps needs a shape (N, H, W), got {shape}.")
    return np.random.default_rng(seed).random(shape).astype("float32")


def ranks(maps: np.ndarray, seed: int = 0) -> np.ndarray:
    """Rank of every pixel in its map, 0 = the largest value; ties broken at random (seeded).

    Random tie-breaking matters for maps with flat regions (LIME superpixels, an all-zero
    Grad-CAM): a raster-order tie-break would delete the top rows first.

    Examples
    --------
    >>> ranks(np.array([[[0.5, 2.0], [1.0, -1.0]]])).tolist()
    [[[2, 0], [1, 3]]]
    """
    maps = check_maps(maps)
    n, h, w = maps.shape
    rng = np.random.default_rng(seed)
    flat = maps.reshape(n, h * w)
    out = np.empty((n, h * w), "int64")
    for i in range(n):
        order = np.lexsort((rng.random(h * w), -flat[i]))
        out[i, order] = np.arange(h * w)
    return out.reshape(n, h, w)


def removed_images(model: keras.Model, x: np.ndarray, baseline, blur_sigma=None) -> np.ndarray:
    """The images with every pixel "removed", in model space ``(N, H, W, C)``.

    ``baseline``: ``"blur"`` (:func:`course_utils.engine.spaces.blur` of the pixel-space image
    with ``blur_sigma`` pixels, default ``max(H, W) / 16``), ``"grey"``, ``"black"``,
    ``"white"``, ``"mean"`` (the image's mean colour), a number or colour in pixel units, a
    pixel-space array of the images' shape, or ``("model", array)`` for a value already in
    model space.
    """
    if isinstance(baseline, str) and baseline == "blur":
        sigma = None if blur_sigma is None else checks.number(
            blur_sigma, "blur_sigma", positive=True, example="pixels, e.g. 2")
        return spaces.to_model_space(model, spaces.blur(spaces.to_pixels(model, x), sigma))
    return spaces.model_space_constant(model, baseline, x, "baseline")


def _probability(model: keras.Model, out, onehot):
    """Probability of the target from the model's output (softmax applied if it is logits)."""
    h = scoring.head(model)
    if h.binary:
        p = out[:, 0] if h.activation == "sigmoid" else tf.sigmoid(out[:, 0])
        sign = onehot[:, 0]  # +1: the scored class, -1: the other one
        return tf.where(sign > 0, p, 1.0 - p)
    if h.activation not in scoring.PROBABILITY_ACTIVATIONS:  # logits, else probabilities
        out = tf.nn.softmax(out, axis=-1)
    return tf.reduce_sum(out * onehot, axis=-1)


def _curve_fn(model: keras.Model, mode: str):
    def build():
        def fn(x, base, rank, count, onehot):
            switched = (rank < count[:, None, None])[..., None]
            z = tf.where(switched, base, x) if mode == "deletion" else tf.where(switched, x, base)
            return _probability(model, surgery.forward(model, z), onehot)

        return kernels.tf_function(fn)

    return kernels.compiled(model, "metrics.curve", build, options=(mode,))


def curves(
    model: keras.Model,
    images,
    maps,
    targets=None,
    *,
    mode: str = "deletion",
    steps: int = DEFAULT_STEPS,
    baseline="blur",
    blur_sigma: float | None = None,
    absolute: bool = False,
    seed: int = 0,
    batch_size: int = 128,
) -> Curves:
    """Deletion or insertion curves of ``maps`` on ``images``; see :func:`deletion`."""
    checks.choice(mode, "mode", MODES)
    steps = checks.integer(steps, "steps", example="points on the curve minus one, e.g. 32")
    seed = checks.seed(seed)
    batching.check_batch_size(batch_size)
    x = inputs.as_batch(model, images)
    maps = check_maps(maps, shape=x.shape[:3])
    if absolute:
        maps = np.abs(maps)
    t = inputs.resolve_targets(model, x, targets, batch_size)
    onehot, _ = scoring.score_weights(model, t)
    base = removed_images(model, x, baseline, blur_sigma)
    rank = ranks(maps, seed).astype("float32")
    n, h, w = maps.shape
    counts = np.round(np.arange(steps + 1) * (h * w) / steps).astype("float32")
    fn = _curve_fn(model, mode)
    n_rows = n * (steps + 1)
    slices = list(batching.chunks(n_rows, batch_size))
    if len(slices) > 8:
        from tqdm.auto import tqdm

        slices = tqdm(slices, desc=mode.capitalize(), leave=False)
    out = []
    for sl in slices:
        rows = np.arange(sl.start, sl.stop)
        img, k = rows // (steps + 1), rows % (steps + 1)
        args = (x[img], base[img], rank[img], counts[k], onehot[img])
        out.append(replicas.call(fn, args))
    scores = np.concatenate(out).astype("float64").reshape(n, steps + 1)
    return Curves(mode=mode, fractions=counts.astype("float64") / (h * w), scores=scores,
                  targets=t)


def deletion(
    model: keras.Model,
    images,
    maps,
    targets=None,
    *,
    steps: int = DEFAULT_STEPS,
    baseline="blur",
    blur_sigma: float | None = None,
    absolute: bool = False,
    seed: int = 0,
    batch_size: int = 128,
) -> Curves:
    """Deletion curves: remove pixels, most important first, and track the target probability.

    At step ``k`` of ``steps`` the ``round(k * H * W / steps)`` top-ranked pixels of each image
    are replaced by the "removed" image (``baseline``); the curve is the softmax probability of
    the target class. ``Curves.auc`` is the area under it: **lower is better** (the map found the
    pixels the model needs).

    Parameters
    ----------
    model
        A Keras classifier with one image input.
    images
        ``(N, H, W, C)`` (or one image), preprocessed for the model.
    maps
        ``(N, H, W)`` attribution maps of those images; larger = more important. Signed maps
        are ranked by value (evidence *for* the class first); ``absolute=True`` ranks by
        magnitude.
    targets
        ``None`` (predicted class), one class, or one per image: use the targets the maps
        explain.
    steps
        Number of deletion steps (the curve has ``steps + 1`` points).
    baseline
        The removed value in pixel space: ``"blur"`` (default), ``"grey"``, ``"black"``,
        ``"mean"``, a number/colour, a pixel-space image batch, or ``("model", array)``; see
        :func:`removed_images`.
    blur_sigma
        Gaussian blur in pixels for ``baseline="blur"`` (default ``max(H, W) / 16``).
    seed
        Seed of the random tie-break between equal map values.
    batch_size
        Rows (image x step) per compiled call.

    Returns
    -------
    Curves

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2, activation="softmax")])
    >>> c = deletion(m, np.ones((4, 4, 1)), np.ones((4, 4)), steps=4, baseline="black")
    >>> c.scores.shape, c.fractions.tolist()
    ((1, 5), [0.0, 0.25, 0.5, 0.75, 1.0])
    """
    return curves(model, images, maps, targets, mode="deletion", steps=steps,
                  baseline=baseline, blur_sigma=blur_sigma, absolute=absolute, seed=seed,
                  batch_size=batch_size)


def insertion(
    model: keras.Model,
    images,
    maps,
    targets=None,
    *,
    steps: int = DEFAULT_STEPS,
    baseline="blur",
    blur_sigma: float | None = None,
    absolute: bool = False,
    seed: int = 0,
    batch_size: int = 128,
) -> Curves:
    """Insertion curves: start from the removed image and put pixels back, most important
    first; ``Curves.auc``: **higher is better**. Parameters as in :func:`deletion`.

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2, activation="softmax")])
    >>> c = insertion(m, np.ones((4, 4, 1)), np.ones((4, 4)), steps=2, baseline="black")
    >>> bool(0.0 <= c.auc[0] <= 1.0)
    True
    """
    return curves(model, images, maps, targets, mode="insertion", steps=steps,
                  baseline=baseline, blur_sigma=blur_sigma, absolute=absolute, seed=seed,
                  batch_size=batch_size)
