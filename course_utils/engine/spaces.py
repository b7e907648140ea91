"""Pixel space, model space and feature-map space.

Baselines, fills and hidden colours are pixel-space notions (a black image), not zeros of the
preprocessed tensor: :func:`to_model_space` and :func:`to_pixels` map between pixel space
(``[0, pixel_max]``) and the model's input space through ``registry.info(model)``;
:func:`input_map` is the same map as two constants inside a compiled function (the feature
tools optimize pixels); :func:`blur` is the one blurred copy (baselines, fills, deletion);
:func:`upsample` brings a feature-map-sized map to the input size.

Examples
--------
>>> import keras, numpy as np
>>> m = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
>>> x = to_model_space(m, np.full((1, 2, 2, 1), 0.5))
>>> bool(np.allclose(to_pixels(m, x), 0.5))
True
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from course_utils import surgery
from course_utils.engine import checks
from course_utils.engine.images import image_input_shape
from course_utils.models import registry

#: What a pixel-space fill, baseline or hidden colour may be (for messages).
PIXEL_VALUES = ("'black', 'white', 'grey', 'mean', 'blur', a number, a colour per channel, or an "
                "image-shaped array (pixel units)")


# --------------------------------------------------------------------------------------------
# Pixel space -> model space
# --------------------------------------------------------------------------------------------


def to_model_space(model: keras.Model, pixels) -> np.ndarray:
    """Map pixel-space images (``[0, pixel_max]``) through the model's preprocessing (a copy)."""
    arr = np.array(pixels, dtype="float32", copy=True)
    return np.asarray(registry.info(model).preprocess(arr), dtype="float32")


def pixel_constant(model: keras.Model, spec, image_pixels: np.ndarray,
                   name: str = "value") -> np.ndarray:
    """A pixel-space fill/baseline for one image, as a pixel-space array of the image's shape.

    ``spec``: ``"black"`` (0), ``"white"`` (pixel_max), ``"grey"`` (pixel_max / 2), ``"mean"``
    (the image's mean colour), ``"blur"`` (:func:`blur`: a Gaussian of sigma = 1/16 of its
    size), a number or a per-channel sequence in pixel units, or an array of the image's
    shape. ``name`` (the option: ``"fill"``...) is used in error
    messages; NaN and infinite values are refused.
    """
    pmax = float(registry.info(model).pixel_max)
    shape = image_pixels.shape
    if isinstance(spec, str):
        named = {"black": 0.0, "white": pmax, "grey": pmax / 2, "gray": pmax / 2}
        if spec == "mean":
            return np.broadcast_to(image_pixels.mean(axis=(0, 1), keepdims=True), shape).copy()
        if spec == "blur":
            return blur(image_pixels[None])[0]
        if spec not in named:
            raise ValueError(f"Unknown pixel-space {name} {spec!r}; use {PIXEL_VALUES}.")
        return np.full(shape, named[spec], "float32")
    try:
        arr = np.asarray(spec, dtype="float32")
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be {PIXEL_VALUES}; got {spec!r}.") from None
    checks.finite(arr, name, f"use {PIXEL_VALUES}")
    try:
        return np.broadcast_to(arr, shape).astype("float32")
    except ValueError:
        raise ValueError(
            f"A pixel-space {name} of shape {arr.shape} does not fit images of shape {shape}."
        ) from None


def model_space_constant(model: keras.Model, spec, x: np.ndarray,
                         name: str = "value") -> np.ndarray:
    """Per-image constants (``(N, H, W, C)``, model space) from a pixel-space ``spec``.

    ``spec`` may also be ``("model", array)`` to give the value already in model space.
    ``name`` (the option: ``"baseline"``, ``"fill"``) is used in error messages; NaN and
    infinite values are refused.
    """
    if isinstance(spec, tuple) and len(spec) == 2 and spec[0] == "model":
        out = np.broadcast_to(np.asarray(spec[1], "float32"), x.shape).astype("float32")
    elif not isinstance(spec, str) and np.ndim(spec) == 4:  # one pixel-space array per image
        arr = checks.finite(np.asarray(spec, dtype="float32"), name)
        if arr.shape != x.shape:
            raise ValueError(f"Per-image {name} of shape {arr.shape} does not match the "
                             f"images' {x.shape}.")
        out = to_model_space(model, arr)
    else:
        needs_pixels = isinstance(spec, str) and spec in ("mean", "blur")
        pixels = to_pixels(model, x) if needs_pixels else np.zeros_like(x)
        out = to_model_space(
            model, np.stack([pixel_constant(model, spec, p, name) for p in pixels])
        )
    return checks.finite(out, name, "in the model's input space")


# --------------------------------------------------------------------------------------------
# Model space -> pixel space
# --------------------------------------------------------------------------------------------


def affine_of_preprocess(model: keras.Model, channels: int) -> tuple | None:
    """``(A, b)`` (float64) with ``preprocess(p) = p @ A + b`` for every pixel ``p`` of
    ``channels`` values, or ``None`` when the model's preprocessing is not such a map.

    ``keras.applications`` preprocessors (caffe: RGB->BGR and mean subtraction; tf: [-1, 1];
    torch: mean/std) are all affine per pixel. Found by probing ``info(model).preprocess`` on
    black, one full channel at a time and a random colour, computed in float64 and checked on the
    random colour to ``1e-4`` of the output's scale; cached per model, preprocessing and number
    of channels.

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten()])
    >>> _ = registry.register(m, registry.ModelInfo(preprocess=lambda x: 2.0 * x - 1.0))
    >>> a, b = affine_of_preprocess(m, 1)
    >>> a.tolist(), b.tolist()
    ([[2.0]], [-1.0])
    """
    meta = registry.info(model)
    key = (meta.preprocess, float(meta.pixel_max), int(channels))
    cache = surgery.model_cache(model, "_course_utils_affine")
    if key not in cache:
        cache[key] = _probe_affine(meta.preprocess, float(meta.pixel_max), int(channels))
    return cache[key]


def _probe_affine(preprocess: Callable, pmax: float, c: int) -> tuple | None:
    probe = np.zeros((c + 2, 2, 2, c), "float32")
    for i in range(c):
        probe[i + 1, ..., i] = pmax
    probe[-1] = np.random.default_rng(0).uniform(0, pmax, size=(2, 2, c))
    try:
        out = np.asarray(preprocess(probe.copy()), dtype="float64")
    except Exception:  # noqa: BLE001 - any failure means "not a per-pixel affine map"
        return None
    if out.shape != probe.shape:
        return None
    offset = out[0, 0, 0]
    matrix = np.stack([out[i + 1, 0, 0] - offset for i in range(c)]) / pmax
    pred = probe[-1].astype("float64") @ matrix + offset
    if not np.allclose(pred, out[-1], atol=1e-4 * max(np.abs(out).max(), 1e-6)):
        return None
    return matrix, offset


@dataclass(frozen=True)
class InputMap:
    """Pixel space ``[0, pixel_max]`` -> model input inside a compiled function:
    ``x @ matrix + offset`` (two float32 constants) when the preprocessing is affine
    (:func:`affine_of_preprocess`), otherwise the preprocessing called on the tensor."""

    pixel_max: float
    matrix: np.ndarray | None
    offset: np.ndarray | None
    fn: Callable | None = None

    def __call__(self, pixels):
        """Map a pixel-space tensor (in ``[0, pixel_max]``) to the model's input space."""
        if self.matrix is None:
            return tf.convert_to_tensor(self.fn(pixels), dtype=tf.float32)
        return tf.tensordot(pixels, self.matrix, axes=[[-1], [0]]) + self.offset


def input_map(model: keras.Model) -> InputMap:
    """The model's preprocessing as an :class:`InputMap`.

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((2, 2, 3)), keras.layers.Flatten()])
    >>> imap = input_map(m)  # a model built by hand takes pixels in [0, 1] as they are
    >>> imap.pixel_max, imap.matrix.tolist() == np.eye(3).tolist()
    (1.0, True)
    """
    meta = registry.info(model)
    pmax = float(meta.pixel_max)
    fit = affine_of_preprocess(model, image_input_shape(model)[2])
    if fit is None:
        return InputMap(pmax, None, None, meta.preprocess)
    return InputMap(pmax, fit[0].astype("float32"), fit[1].astype("float32"))


def to_pixels(model: keras.Model, x) -> np.ndarray:
    """Undo the model's preprocessing: model-space images -> pixel space ``[0, pixel_max]``.

    Works for any per-pixel affine preprocessing (scaling, mean subtraction, channel flips),
    found by probing ``info(model).preprocess``; otherwise each image is min-max scaled with a
    warning. Results are clipped to the pixel range.
    """
    arr = np.asarray(x, dtype="float32")
    pmax = float(registry.info(model).pixel_max)
    fit = affine_of_preprocess(model, arr.shape[-1])
    if fit is None or abs(np.linalg.det(fit[0])) < 1e-12:
        warnings.warn(
            "Could not invert the model's preprocessing; showing min-max scaled images.",
            UserWarning,
            stacklevel=2,
        )
        lo = arr.min(axis=(-3, -2, -1), keepdims=True)
        hi = arr.max(axis=(-3, -2, -1), keepdims=True)
        return (arr - lo) / np.maximum(hi - lo, 1e-12) * pmax
    a, b = fit
    return np.clip((arr - b) @ np.linalg.inv(a), 0.0, pmax).astype("float32")


def blur(pixels: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """A blurred copy of pixel-space images ``(N, H, W, C)``: a Gaussian of ``sigma`` pixels
    (default ``max(H, W) / 16``) over height and width, edges extended (``mode="nearest"``).

    The one "blur" of the course: the ``"blur"`` baseline, fill and hidden colour
    (:func:`pixel_constant`) and deletion's removed pixels
    (:func:`course_utils.metrics.deletion.removed_images`).

    Examples
    --------
    >>> img = np.zeros((1, 16, 16, 1), "float32"); img[0, 8, 8] = 1.0
    >>> out = blur(img)  # sigma = 16 / 16 = 1 px: the peak of a 2-D Gaussian is 1 / (2 pi)
    >>> out.shape, bool(np.isclose(out.sum(), 1.0)), round(float(out.max() * 2 * np.pi), 2)
    ((1, 16, 16, 1), True, 1.0)
    """
    from scipy import ndimage

    if sigma is None:
        sigma = max(pixels.shape[1:3]) / 16
    out = ndimage.gaussian_filter(pixels, sigma=(0, sigma, sigma, 0), mode="nearest")
    return out.astype("float32")


# --------------------------------------------------------------------------------------------
# Feature-map space -> input space
# --------------------------------------------------------------------------------------------


def upsample(maps, size):
    """Bilinear upsampling of ``(N, h, w)`` maps to ``size = (H, W)`` (a TF op).

    Examples
    --------
    >>> tuple(upsample(np.ones((1, 2, 2), "float32"), (4, 4)).shape)
    (1, 4, 4)
    """
    return tf.image.resize(maps[..., None], size, method="bilinear")[..., 0]
