"""Internal plumbing of ``course_utils.features``: compiled-function cache, a forward pass that
stops at the last requested layer, the model's input geometry, and pixel space -> model input.

Nothing here is specific to one method; every module of the package uses it.
"""

from __future__ import annotations

import os
import warnings
import weakref
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from course_utils import surgery
from course_utils.engine import kernels
from course_utils.models.registry import info


def compiled(model: keras.Model, key: Hashable, build: Callable[[weakref.ref], Callable]):
    """Return the compiled function cached for ``(model, key)`` (:func:`course_utils.engine.
    kernels.compiled`); ``build`` receives a weak reference to the model and returns a
    ``tf.function``."""
    return kernels.compiled(model, "features", lambda: build(weakref.ref(model)), options=(key,))


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------


def resolve(model: keras.Model, layers) -> list[tuple]:
    """Resolve one layer reference or a sequence of them to paths (see ``surgery.find_path``)."""
    if layers is None:
        raise ValueError("Give at least one layer (name, index or layer object).")
    if isinstance(layers, (str, int, np.integer, keras.layers.Layer)):
        layers = [layers]
    paths = [surgery.find_path(model, ref) for ref in layers]
    if not paths:
        raise ValueError("Give at least one layer (name, index or layer object), not [].")
    return paths


def layer_output_shape(path: tuple) -> tuple:
    """Symbolic output shape of the last layer of ``path``."""
    return tuple(surgery.output_shape(path[-1]))


def n_channels(path: tuple) -> int:
    """Number of channels (last axis) of a layer's output."""
    return int(layer_output_shape(path)[-1])


def check_indices(indices, n: int, what: str, layer_name: str) -> np.ndarray:
    """Validate integer indices into an axis of length ``n``; return them as an int array."""
    arr = np.atleast_1d(np.asarray(indices))
    if arr.size == 0:
        raise ValueError(f"Give at least one {what} index for layer {layer_name!r}.")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{what.capitalize()} indices must be integers, got {indices!r}.")
    bad = arr[(arr < 0) | (arr >= n)]
    if bad.size:
        raise ValueError(
            f"{what.capitalize()} index {int(bad[0])} is out of range for layer {layer_name!r}, "
            f"which has {n} {what}{'es' if what.endswith('s') else 's'}: "
            f"valid indices are 0..{n - 1}."
        )
    return arr.astype("int64").ravel()


def check_float(name: str, value, low: float, *, strict: bool = False) -> float:
    """``value`` as a float, finite and ``>= low`` (``> low`` when ``strict``); otherwise an
    error naming the option (a NaN or infinite option would silently give NaN pictures).

    Examples
    --------
    >>> check_float("tv", 0.5, 0.0)
    0.5
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}.") from None
    if not np.isfinite(number) or number < low or (strict and number == low):
        raise ValueError(
            f"{name} must be {'>' if strict else '>='} {low:g} (a finite number), got {value!r}."
        )
    return number


class _Stop(Exception):
    """Raised by a tap once every requested activation is recorded (ends the forward pass)."""


def forward_until(model: keras.Model, x, paths: Sequence[tuple], linear: Sequence = ()) -> list:
    """Activations of ``paths`` from one forward pass that stops after the last of them;
    ``linear``: layers computed without their activation (see :func:`read_linear`).

    Works eagerly and inside ``tf.function`` (the layers after the last requested one are then
    never traced, so visualizing ``block1_conv1`` of VGG16 does not pay for ``block5``).
    """
    layers = []
    for path in paths:
        if not any(layer is path[-1] for layer in layers):
            layers.append(path[-1])
    got: dict[int, tf.Tensor] = {}

    def make(layer):
        def tap(t):
            got[id(layer)] = t
            if len(got) == len(layers):
                raise _Stop

        return tap

    try:
        surgery.forward(model, x, {layer: make(layer) for layer in layers}, linear=linear)
    except _Stop:
        pass
    return [got[id(path[-1])] for path in paths]


PROBABILITY = ("softmax", "sigmoid")


def read_linear(path: tuple, names: Sequence[str] = PROBABILITY) -> tuple:
    """The layers to compute without their activation when ``path``'s output is optimized.

    ``(path[-1],)`` when its activation is one of ``names`` (softmax or sigmoid: optimize
    logits, whose gradients do not saturate; ``"relu"`` for the pre-ReLU warm-up) and
    :func:`course_utils.surgery.pre_activation_call` computes the layer without it from its
    variables, so the model is never modified (safe in ``tf.function`` and across threads);
    otherwise ``()``, with a warning when probabilities must be optimized instead of logits.
    """
    layer = path[-1]
    name = surgery.activation_name(layer)
    if name not in names:
        return ()
    if surgery.pre_activation_call(layer) is not None:
        return (layer,)
    if name in PROBABILITY:
        warnings.warn(
            f"Layer {layer.name!r} ({type(layer).__name__}) cannot be computed without its "
            f"{name}: optimizing probabilities, whose gradients saturate. A Dense or Conv2D "
            "layer with the activation (or a separate Softmax layer) gives logits.",
            UserWarning,
            stacklevel=3,
        )
    return ()


def _is_relu(layer: keras.layers.Layer) -> bool:
    if isinstance(layer, keras.layers.ReLU):
        return layer.max_value is None and not layer.negative_slope and not layer.threshold
    if isinstance(layer, keras.layers.Activation):
        return surgery.activation_name(layer) == "relu"
    return False


def producer_path(model: keras.Model, path: tuple) -> tuple | None:
    """Path of the layer whose output feeds the last layer of ``path`` (one input only)."""
    nodes = getattr(path[-1], "_inbound_nodes", None) or []
    if len(nodes) != 1:
        return None
    tensors = list(getattr(nodes[0], "input_tensors", []))
    if len(tensors) != 1:
        return None
    history = getattr(tensors[0], "_keras_history", None)
    op = getattr(history, "operation", None)
    if op is None or isinstance(op, keras.layers.InputLayer):
        return None
    try:
        return surgery.find_path(model, op)
    except (ValueError, TypeError):
        return None


def pre_relu(model: keras.Model, path: tuple) -> tuple[tuple, bool]:
    """Where to read a layer's activation *before* its ReLU, for optimization.

    Returns ``(path, fused)``: for a separate ``ReLU`` layer, the layer that feeds it and
    ``False``; for a layer with a fused ``relu`` activation that can be computed without it
    (:func:`read_linear` with ``"relu"``), the layer itself and ``True``; otherwise ``None``
    and ``False`` (no ReLU to look behind).
    """
    if _is_relu(path[-1]):
        prev = producer_path(model, path)
        if prev is not None:
            return prev, False
    if (surgery.activation_name(path[-1]) == "relu"
            and surgery.pre_activation_call(path[-1]) is not None):
        return path, True
    return None, False


# --------------------------------------------------------------------------------------------
# Input geometry and preprocessing
# --------------------------------------------------------------------------------------------


def input_shape(model: keras.Model) -> tuple:
    """``(H or None, W or None, C)`` of the model's single image input."""
    try:
        shape = tuple(model.inputs[0].shape)
    except (AttributeError, IndexError, TypeError, ValueError) as err:
        raise ValueError(
            f"Model {model.name!r} has no defined input; build it with keras.Input((H, W, C))."
        ) from err
    if len(shape) != 4:
        raise ValueError(
            f"Model {model.name!r} takes inputs of shape {shape}; the feature tools need an image "
            "input (N, H, W, C)."
        )
    return shape[1], shape[2], int(shape[3])


def as_batch(model: keras.Model, images, name: str = "images",
             check_size: bool = True) -> np.ndarray:
    """Validate pixel-space images against the model input and return a float32 batch.

    ``check_size=False`` accepts any height and width (for a method that resizes itself).
    File names, non-numeric arrays and NaN or infinite pixels are refused with a message.
    """
    if isinstance(images, (str, os.PathLike)):
        raise TypeError(
            f"{name} must be pixels, an array (H, W, C), not the file name {str(images)!r}. "
            "Load the photo first, e.g. keras.utils.img_to_array(keras.utils.load_img(path)) "
            f"(pixels in [0, 255]; this model takes [0, {info(model).pixel_max:g}])."
        )
    arr = np.asarray(images)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be a numeric array of pixels, got dtype {arr.dtype}.")
    arr = arr.astype("float32")
    h, w, c = input_shape(model)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim == 2 and c == 1:
        arr = arr[None, ..., None]
    if arr.ndim != 4 or arr.shape[-1] != c:
        raise ValueError(
            f"{name} must be one image (H, W, {c}) or a batch (N, H, W, {c}) in pixel space; "
            f"got shape {np.shape(images)}."
        )
    if check_size and ((h is not None and arr.shape[1] != h)
                       or (w is not None and arr.shape[2] != w)):
        raise ValueError(
            f"Model {model.name!r} takes {h}x{w} images; got {arr.shape[1]}x{arr.shape[2]}. "
            "Resize the images first."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch.")
    bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise ValueError(f"{name}: {bad} NaN or infinite value(s); clean the input first.")
    return arr


@dataclass(frozen=True)
class InputMap:
    """Pixel space ``[0, pixel_max]`` -> model input: ``x @ matrix + offset`` when affine.

    ``keras.applications`` preprocessors (caffe: RGB->BGR and mean subtraction; tf: [-1, 1];
    torch: mean/std) are all affine per pixel; the map is estimated once by probing
    ``info(model).preprocess`` and applied inside compiled functions as two constants. A
    preprocessor that is not affine is called directly on the tensor instead.
    """

    pixel_max: float
    matrix: np.ndarray | None
    offset: np.ndarray | None
    fn: Callable | None = None

    def __call__(self, pixels):
        """Map a pixel-space tensor (in ``[0, pixel_max]``) to the model's input space."""
        if self.matrix is None:
            return tf.convert_to_tensor(self.fn(pixels), dtype=tf.float32)
        return tf.tensordot(pixels, self.matrix, axes=[[-1], [0]]) + self.offset


_INPUT_MAPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def input_map(model: keras.Model) -> InputMap:
    """The model's preprocessing as an :class:`InputMap` (cached per model)."""
    cached = _INPUT_MAPS.get(model)
    if cached is not None:
        return cached
    meta = info(model)
    c = input_shape(model)[2]
    pmax = float(meta.pixel_max)
    probe = np.zeros((c + 2, 2, 2, c), "float32")
    for i in range(c):
        probe[i + 1, ..., i] = pmax
    rng = np.random.default_rng(0)
    probe[-1] = rng.uniform(0, pmax, size=(2, 2, c))
    out = np.asarray(meta.preprocess(probe.copy()), dtype="float64")
    affine = out.shape == probe.shape
    result = None
    if affine:
        offset = out[0, 0, 0]
        matrix = np.stack([out[i + 1, 0, 0] - offset for i in range(c)]) / pmax
        pred = probe[-1].astype("float64") @ matrix + offset
        scale = max(np.abs(out).max(), 1e-6)
        if np.allclose(pred, out[-1], atol=1e-4 * scale):
            result = InputMap(pmax, matrix.astype("float32"), offset.astype("float32"))
    if result is None:
        result = InputMap(pmax, None, None, meta.preprocess)
    _INPUT_MAPS[model] = result
    return result


def fixed_hw(model: keras.Model) -> tuple[int, int] | None:
    """The model's fixed input height and width, or ``None`` when it takes any size."""
    h, w, _ = input_shape(model)
    if h is None or w is None:
        return None
    return int(h), int(w)
