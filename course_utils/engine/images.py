"""Images validated once: the model's image input (its shape, a fixed size or not) and a batch
of images, in the model's input space (attribution, metrics) or in pixel space (the feature
tools). Bad input raises ``ValueError`` or ``TypeError`` with a message that says what was
expected and what to do.

Examples
--------
>>> import keras, numpy as np
>>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
...                       keras.layers.Dense(3, activation="softmax")])
>>> model_input_shape(m)
(4, 4, 1)
>>> as_batch(m, np.zeros((4, 4, 1))).shape
(1, 4, 4, 1)
>>> as_batch(m, np.zeros((4, 4)), pixels=True).shape  # a grey picture in pixel space
(1, 4, 4, 1)
"""

from __future__ import annotations

import os
import warnings

import keras
import numpy as np
import tensorflow as tf

from course_utils import surgery
from course_utils.models import registry

# --------------------------------------------------------------------------------------------
# The model's input
# --------------------------------------------------------------------------------------------


def image_input_shape(model: keras.Model) -> tuple:
    """``(H, W, C)`` of the model's single image input (``H``, ``W`` may be ``None``).

    Examples
    --------
    >>> import keras
    >>> image_input_shape(keras.Sequential([keras.Input((None, None, 3)),
    ...                                     keras.layers.Conv2D(2, 3)]))
    (None, None, 3)
    """
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
            f"Model {model.name!r} has {len(inputs)} inputs; the course's methods work on "
            "models with a single image input. Wrap the model so that it takes one image tensor."
        )
    shape = tuple(inputs[0].shape[1:])
    if len(shape) != 3:
        raise ValueError(
            f"Model {model.name!r} takes inputs of shape {shape}; the course's methods need "
            "an image input (H, W, C)."
        )
    return shape[0], shape[1], None if shape[2] is None else int(shape[2])


def model_input_shape(model: keras.Model) -> tuple:
    """:func:`image_input_shape` of a model that attribution can explain: one output of class
    scores ``(N, classes)``."""
    shape = image_input_shape(model)
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


def fixed_hw(model: keras.Model) -> tuple[int, int] | None:
    """The model's fixed input height and width, or ``None`` when it takes any size.

    Examples
    --------
    >>> import keras
    >>> fixed_hw(keras.Sequential([keras.Input((8, 6, 1)), keras.layers.Flatten()]))
    (8, 6)
    """
    h, w, _ = image_input_shape(model)
    return None if h is None or w is None else (int(h), int(w))


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def _refuse_file_name(model: keras.Model, images, name: str) -> None:
    if isinstance(images, (str, os.PathLike)):
        raise TypeError(
            f"{name} must be pixels, an array (H, W, C), not the file name {str(images)!r}. "
            "Load the photo first, e.g. keras.utils.img_to_array(keras.utils.load_img(path)) "
            f"(pixels in [0, 255]; this model takes [0, {registry.info(model).pixel_max:g}])."
        )


def as_batch(model: keras.Model, images, *, pixels: bool = False, name: str = "images",
             check_size: bool = True) -> np.ndarray:
    """Validate ``images`` (one ``(H, W, C)`` image or a batch) and return float32 NHWC.

    ``pixels=False``: images in the model's input space (what attribution explains; ``uint8``
    images get a warning: pixels that were probably not preprocessed). ``pixels=True``: images
    in pixel space ``[0, pixel_max]`` (the feature tools; a 2-D picture is one grey image, a file
    name is refused with how to load it). ``check_size=False`` accepts any height and width
    (for a method that resizes itself). ``name`` is the argument named in messages. Raises
    ``ValueError``/``TypeError`` for the wrong rank, channels, size or dtype and for NaN/inf.
    """
    if pixels:
        _refuse_file_name(model, images, name)
    h, w, c = image_input_shape(model) if pixels else model_input_shape(model)
    if isinstance(images, (tf.Tensor, tf.Variable)) or hasattr(images, "numpy"):
        images = images.numpy()
    try:
        arr = np.asarray(images)
    except ValueError:  # a ragged list: NumPy refuses to stack it
        raise ValueError(
            f"{name} must all have the same shape (H, W, C); got a list of arrays of different "
            "shapes. Resize them to the model's input size and stack them with np.stack."
        ) from None
    numeric = np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    if arr.dtype == object or not (numeric or (pixels and arr.dtype == bool)):
        raise TypeError(f"{name} must be a numeric array of "
                        f"{'pixels' if pixels else 'images preprocessed for the model'}, "
                        f"got dtype {arr.dtype}.")
    if arr.dtype == np.uint8 and not pixels:
        warnings.warn(
            "Images are uint8: they look like raw pixels that were not preprocessed for the model. "
            "Apply the model's preprocessing (course_utils.models.info(model).preprocess) first; "
            "explaining them as they are.",
            UserWarning,
            stacklevel=3,
        )
    arr = arr[None] if arr.ndim == 3 else arr
    arr = arr[None, ..., None] if (pixels and arr.ndim == 2 and c == 1) else arr
    space = "pixel space" if pixels else "the model's input space"
    expected = f"one image (H, W, {c}) or a batch (N, H, W, {c}) in {space}"
    if arr.ndim != 4:
        raise ValueError(f"{name} must be {expected}; got an array of shape {np.shape(images)} "
                         f"(rank {np.ndim(images)}). Add or remove the batch/channel axis.")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch.")
    if c is not None and arr.shape[3] != c:
        raise ValueError(
            f"Model {model.name!r} expects {c} channel(s), {name} have {arr.shape[3]} (shape "
            f"{arr.shape}); give {expected}, converting grayscale/RGB to match."
        )
    if check_size and ((h is not None and arr.shape[1] != h)
                       or (w is not None and arr.shape[2] != w)):
        raise ValueError(
            f"Model {model.name!r} takes {h}x{w} images; got {arr.shape[1]}x{arr.shape[2]}. "
            "Resize the images to the model's input size first."
        )
    if check_size and None in (h, w):
        _check_size_fits(model, arr.shape[1:])
    arr = arr.astype("float32", copy=True)
    bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise ValueError(f"{name}: {bad} NaN or infinite value(s); clean the input first.")
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
