"""Pixel space, model space and feature-map space.

Baselines, fills and hidden colours are pixel-space notions (a black image), not zeros of the
preprocessed tensor: :func:`to_model_space` and :func:`to_pixels` map between pixel space
(``[0, pixel_max]``) and the model's input space through ``registry.info(model)``;
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

import keras
import numpy as np
import tensorflow as tf

from course_utils.engine import checks
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
    (the image's mean colour), ``"blur"`` (the image blurred with a Gaussian of sigma = 1/20 of
    its size), a number or a per-channel sequence in pixel units, or an array of the image's
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
            from scipy.ndimage import gaussian_filter

            sigma = max(shape[:2]) / 20.0
            return gaussian_filter(image_pixels, sigma=(sigma, sigma, 0)).astype("float32")
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


def _affine_of_preprocess(model: keras.Model, channels: int):
    """Fit ``y = x @ A + b`` to the model's per-pixel preprocessing, or return None."""
    info = registry.info(model)
    pmax = float(info.pixel_max)
    probe = np.zeros((channels + 2, 1, 1, channels), "float32")
    for c in range(channels):
        probe[c + 1, 0, 0, c] = pmax
    rng = np.random.default_rng(0)
    probe[-1, 0, 0, :] = rng.uniform(0, pmax, channels)
    try:
        out = to_model_space(model, probe)[:, 0, 0, :]
    except Exception:  # noqa: BLE001 - any failure means "not a per-pixel affine map"
        return None
    if out.shape != (channels + 2, channels):
        return None
    b = out[0]
    a = (out[1:-1] - b) / pmax
    if not np.allclose(probe[-1, 0, 0] @ a + b, out[-1], rtol=1e-4, atol=1e-4):
        return None
    if abs(np.linalg.det(a)) < 1e-12:
        return None
    return a, b


def to_pixels(model: keras.Model, x) -> np.ndarray:
    """Undo the model's preprocessing: model-space images -> pixel space ``[0, pixel_max]``.

    Works for any per-pixel affine preprocessing (scaling, mean subtraction, channel flips),
    found by probing ``info(model).preprocess``; otherwise each image is min-max scaled with a
    warning. Results are clipped to the pixel range.
    """
    arr = np.asarray(x, dtype="float32")
    pmax = float(registry.info(model).pixel_max)
    fit = _affine_of_preprocess(model, arr.shape[-1])
    if fit is None:
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
