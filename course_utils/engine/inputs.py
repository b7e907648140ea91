"""What a method is asked: the images, the targets and the batch size, validated once.

:func:`prepare` validates images, model and targets and returns a :class:`Job`: the batch as
float32 ``(N, H, W, C)``, one target per image and the per-image score weights
(:func:`course_utils.engine.scoring.score_weights`). Bad input raises ``ValueError`` or
``TypeError`` with a message that says what was expected.

Examples
--------
>>> import keras, numpy as np
>>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
...                       keras.layers.Dense(3, activation="softmax")])
>>> model_input_shape(m)
(4, 4, 1)
>>> as_batch(m, np.zeros((4, 4, 1))).shape
(1, 4, 4, 1)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from course_utils import surgery
from course_utils.engine import batching, scoring

# --------------------------------------------------------------------------------------------
# The model's input
# --------------------------------------------------------------------------------------------


def model_input_shape(model: keras.Model) -> tuple:
    """``(H, W, C)`` of the model's single image input (entries may be ``None``)."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"Expected a keras.Model, got {type(model).__name__}.")
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ValueError(
            f"Model {model.name!r} has no defined input; build it with keras.Input(shape) first."
        )
    if len(inputs) != 1:
        raise ValueError(
            f"Model {model.name!r} has {len(inputs)} inputs; attribution methods explain models "
            "with a single image input. Wrap the model so that it takes one image tensor."
        )
    shape = tuple(inputs[0].shape[1:])
    if len(shape) != 3:
        raise ValueError(
            f"Model {model.name!r} takes inputs of shape {shape}; attribution methods need "
            "an image input (H, W, C)."
        )
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        outputs = None
    if outputs is not None and len(outputs) != 1:
        raise ValueError(
            f"Model {model.name!r} has {len(outputs)} outputs; explain one output at a time "
            "(build a keras.Model with the output you want)."
        )
    if outputs is not None and len(outputs[0].shape) != 2:
        raise ValueError(
            f"Model {model.name!r} outputs shape {tuple(outputs[0].shape)}; expected class scores "
            "(N, classes)."
        )
    return shape


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def as_batch(model: keras.Model, images) -> np.ndarray:
    """Validate ``images`` (one ``(H, W, C)`` image or a batch) and return float32 NHWC.

    Raises ``ValueError``/``TypeError`` for the wrong rank, channels, size or dtype and for
    NaN/inf; warns for ``uint8`` images (pixels that were probably not preprocessed).
    """
    shape = model_input_shape(model)
    if isinstance(images, (tf.Tensor, tf.Variable)) or hasattr(images, "numpy"):
        images = images.numpy()
    try:
        arr = np.asarray(images)
    except ValueError:  # a ragged list: NumPy refuses to stack it
        raise ValueError(
            "Images must all have the same shape (H, W, C); got a list of arrays of different "
            "shapes. Resize them to the model's input size and stack them with np.stack."
        ) from None
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(
            f"Images must be a numeric array, got dtype {arr.dtype}; pass float32 images "
            "preprocessed for the model."
        )
    if arr.dtype == np.uint8:
        warnings.warn(
            "Images are uint8: they look like raw pixels that were not preprocessed for the model. "
            "Apply the model's preprocessing (course_utils.models.info(model).preprocess) first; "
            "explaining them as they are.",
            UserWarning,
            stacklevel=3,
        )
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise ValueError(
            f"Expected one image (H, W, C) or a batch (N, H, W, C), got an array of shape "
            f"{arr.shape} (rank {arr.ndim}). Add or remove the batch/channel axis."
        )
    if arr.shape[0] == 0:
        raise ValueError("Got an empty batch of images.")
    if shape[2] is not None and arr.shape[3] != shape[2]:
        raise ValueError(
            f"Model {model.name!r} expects {shape[2]} channel(s), the images have {arr.shape[3]} "
            f"(shape {arr.shape}). Convert grayscale/RGB to match the model input {shape}."
        )
    for axis, (got, want) in enumerate(zip(arr.shape[1:3], shape[:2], strict=True)):
        if want is not None and got != want:
            raise ValueError(
                f"Model {model.name!r} expects images of size {shape[:2]}, got {arr.shape[1:3]} "
                f"(axis {axis + 1}). Resize the images to the model's input size."
            )
    if None in shape[:2]:
        _check_size_fits(model, arr.shape[1:])
    arr = arr.astype("float32", copy=True)
    if not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.isfinite(arr)))
        raise ValueError(f"Images contain {bad} NaN or infinite value(s); clean the input first.")
    return arr


def _check_size_fits(model: keras.Model, shape: tuple) -> None:
    """For a model that accepts any image size: check symbolically (no computation) that
    images of ``shape = (H, W, C)`` survive its convolutions and poolings (cached per size)."""
    cache = surgery.model_cache(model, "_course_utils_sizes")
    if shape not in cache:
        cache[shape] = None
        try:
            model.compute_output_spec(keras.KerasTensor((1, *shape)))
        except Exception as err:  # noqa: BLE001 - other failures are left to the real call
            if "zero or negative" in str(err):
                cache[shape] = str(err).split(". Received")[0]
    if cache[shape] is not None:
        raise ValueError(
            f"Images of size {shape[0]} x {shape[1]} are too small for model {model.name!r}: "
            f"its layers shrink them to nothing ({cache[shape]}). Use larger images."
        )


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------


def resolve_targets(model: keras.Model, x: np.ndarray, targets, batch_size: int) -> np.ndarray:
    """One class index per image: ``None`` -> the predicted class.

    For a single sigmoid unit, class 0 is "the class the sigmoid scores" and 1 "the other one";
    the predicted class is 0 when the logit is positive. An opaque head is checked first
    (:func:`course_utils.engine.scoring.probe_head`).
    """
    h = scoring.probe_head(model, x)
    n_classes = 2 if h.binary else h.n_outputs
    n = len(x)
    if targets is None:
        raw = scoring.predict_raw(model, x, batch_size)
        if h.binary:
            threshold = 0.0 if h.logits else 0.5
            return np.where(raw[:, 0] > threshold, 0, 1).astype("int64")
        return np.argmax(raw, axis=-1).astype("int64")
    t = np.asarray(targets)
    if t.dtype == object or not (np.issubdtype(t.dtype, np.integer) or t.dtype == bool):
        if np.issubdtype(t.dtype, np.floating) and np.all(t == np.round(t)):
            t = t.astype("int64")
        else:
            raise TypeError(f"Targets must be class indices (integers), got {targets!r}.")
    t = t.astype("int64")
    if t.ndim > 1:
        raise ValueError(
            f"Targets must be one class index or a flat list of one per image; got an array of "
            f"shape {t.shape}. Pass e.g. [0, 1] rather than [[0], [1]]."
        )
    if t.ndim == 0:
        t = np.full(n, int(t))
    if t.ndim != 1 or len(t) != n:
        raise ValueError(
            f"Give one target for all images or one per image: got {t.shape[0] if t.ndim else 1} "
            f"targets for {n} image(s)."
        )
    bad = (t < 0) | (t >= n_classes)
    if np.any(bad):
        hint = (
            " (a single sigmoid output has targets 0 = the scored class, 1 = the other one)"
            if h.binary else ""
        )
        raise ValueError(
            f"Target {int(t[bad][0])} is outside the model's classes 0..{n_classes - 1}{hint}."
        )
    return t


# --------------------------------------------------------------------------------------------
# The validated request
# --------------------------------------------------------------------------------------------


@dataclass
class Job:
    """A validated request: what to explain and against which class.

    Attributes
    ----------
    x
        float32 images ``(N, H, W, C)`` in the model's input space.
    targets
        int ``(N,)``: the class explained for each image.
    weights
        float32 ``(N, K)``: the score of image ``i`` is ``sum(weights[i] * output[i])``
        (one-hot rows; ``+1``/``-1`` for a single sigmoid unit).
    offset
        float32 ``(N,)``: added to the score (1 for "the other class" of a sigmoid that could not
        be read as a logit: ``1 - p``).
    batch_size
        Rows per compiled call.
    """

    x: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    offset: np.ndarray
    batch_size: int = 1

    @property
    def n(self) -> int:
        """Number of images."""
        return len(self.x)

    @property
    def shape(self) -> tuple:
        """``(H, W, C)`` of the images."""
        return tuple(self.x.shape[1:])

    def rows(self, sl) -> tuple:
        """``(x, weights, offset)`` of images ``sl`` (a slice or indices): the arguments of a
        compiled score or gradient function."""
        return self.x[sl], self.weights[sl], self.offset[sl]


def prepare(model: keras.Model, images, targets=None, batch_size: int | None = None) -> Job:
    """Validate the call and return a :class:`Job` (``batch_size=None``: automatic, see
    :func:`course_utils.engine.batching.auto_batch_size`).

    Examples
    --------
    >>> import keras, numpy as np
    >>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(3, activation="softmax")])
    >>> job = prepare(m, np.zeros((4, 4, 1), "float32"), targets=2)
    >>> job.x.shape, job.targets.tolist(), job.weights.tolist()
    ((1, 4, 4, 1), [2], [[0.0, 0.0, 1.0]])
    """
    x = as_batch(model, images)
    batch_size = (batching.auto_batch_size(x.shape[1:]) if batch_size is None
                  else batching.check_batch_size(batch_size))
    t = resolve_targets(model, x, targets, batch_size)
    scoring.warn_probabilities(model, stacklevel=3)
    weights, offset = scoring.score_weights(model, t)
    return Job(x=x, targets=t, weights=weights, offset=offset, batch_size=batch_size)
