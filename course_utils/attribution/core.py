"""Shared plumbing of every attribution method, in one place.

- :func:`prepare` validates images, model and targets and returns a :class:`Job`: the batch as
  float32 ``(N, H, W, C)``, one target per image and the per-image score weights.
- :func:`score` is the scalar each method explains: the **pre-softmax** score of the target
  class. Gradients of a softmax probability saturate (a confident prediction has a near-zero
  gradient everywhere) and mix in every other class through the normalization; the logit is the
  quantity the papers differentiate (Simonyan et al. 2013, Selvaraju et al. 2017). The final
  layer is computed without its softmax/sigmoid in the traced graph
  (``surgery.forward(logits=True)``); the model itself is never modified, so other callers
  (other threads, plain ``model(x)``) always see it as it is. Where the activation cannot be
  left out a warning says so.
- :func:`compiled` caches ``tf.function`` objects per model and static options.
- :func:`chunks` cuts an expanded axis (images x samples) into ``batch_size`` rows.
- :func:`to_model_space` and :func:`to_pixels` map between pixel space and the model's input
  space through ``registry.info(model)``: baselines, fills and hidden colours are pixel-space
  notions (a black image), not zeros of the preprocessed tensor.
"""

from __future__ import annotations

import dataclasses
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from course_utils import config, surgery
from course_utils.attribution import checks, replicas
from course_utils.models import registry
from course_utils.surgery import compiled  # noqa: F401 - the methods call core.compiled

#: Images of 224 x 224 px per compiled call when ``batch_size=None`` (more for smaller
#: images), without and with TensorFlow's oneDNN kernels. MobileNetV2 at 224 px on 2 cores,
#: median ms per image for batches of 1/2/4/8/16. Default kernels: forward 24/16/15/18/21,
#: forward+backward 53/42/38/46/50. oneDNN, two runs: forward 53/15/11.5/9.8/9.5 and
#: 53/13/10.8/9.3/9.2, forward+backward 76/33/26/22/22 and 65/27/22/19/17.
IMAGES_PER_CHUNK = {False: 4, True: 8}
_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")


# --------------------------------------------------------------------------------------------
# Model head: where the pre-softmax score is
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    """What the last layer of a model is and how to get its pre-activation score."""

    layer: keras.layers.Layer | None
    n_outputs: int
    activation: str  # "softmax", "sigmoid", "linear" or another name
    swappable: bool  # True when the activation can be left out to read logits
    # True when surgery.pre_activation_call computes the logit from the layer's variables;
    # otherwise the layer's own call runs on a view of it (surgery.activation_off_call)
    in_graph: bool = False
    # True when nothing in the graph says what the output is (a Lambda, an operation, a layer
    # without an activation): :func:`probe_head` looks at the first images' outputs
    opaque: bool = False

    @property
    def binary(self) -> bool:
        """A single output unit: a sigmoid (or a raw logit) scoring one class against the other."""
        return self.n_outputs == 1

    @property
    def logits(self) -> bool:
        """True when :func:`score` reads a pre-activation value."""
        return self.swappable or self.activation not in _PROBABILITY_ACTIVATIONS


def head(model: keras.Model) -> Head:
    """Describe the model's output layer (cached).

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    >>> h = head(m)
    >>> (h.n_outputs, h.activation, h.logits)
    (3, 'softmax', True)
    """
    cache = surgery.model_cache(model, "_course_utils_head")
    if "head" in cache:
        return cache["head"]
    layer = surgery.output_layer(model)
    name = surgery.activation_name(layer)
    n_out = int(model.outputs[0].shape[-1])
    in_graph = surgery.pre_activation_call(layer) is not None
    swappable = in_graph or surgery.activation_off_call(layer) is not None
    result = Head(layer=layer, n_outputs=n_out, activation=name, swappable=swappable,
                  in_graph=in_graph, opaque=name == "linear" and not hasattr(layer, "activation"))
    cache["head"] = result
    return result


def probe_head(model: keras.Model, x: np.ndarray) -> Head:
    """:func:`head`, after checking an opaque head's output on (up to 8 of) the images ``x``.

    A head written as a ``Lambda`` or an operation that :func:`course_utils.surgery.
    probability_op` does not recognise (``tf.nn.softmax(2 * t)``, a custom layer) cannot be
    read past. If its outputs look like probabilities (rows >= 0 that sum to 1; a single unit
    within [0, 1]) they are treated as such (targets, deletion) and a warning says that
    probabilities, not logits, are explained; otherwise they are taken as scores. Done once
    per model.
    """
    h = head(model)
    if not h.opaque:
        return h
    out = np.asarray(model(tf.constant(x[:8]), training=False), "float64")
    in_unit = bool(np.all((out >= 0.0) & (out <= 1.0)))
    kind = None
    if in_unit and h.binary:
        kind, why = "sigmoid", "its single output is within [0, 1]"
    elif in_unit and np.allclose(out.sum(axis=-1), 1.0, atol=1e-3):
        kind, why = "softmax", "its outputs are >= 0 and sum to 1"
    h = dataclasses.replace(h, opaque=False, activation=kind or h.activation)
    surgery.model_cache(model, "_course_utils_head")["head"] = h
    if kind is not None:
        _WARNED.add(model)
        warnings.warn(
            f"Model {model.name!r} ends in a {type(h.layer).__name__} {h.layer.name!r} whose "
            f"output looks like probabilities ({why}), but it is not a {kind} the course can "
            f"leave out: explaining {kind} probabilities, whose gradients saturate, not logits. "
            f"End the model with a Dense layer with activation='{kind}', a Softmax layer or "
            f"keras.ops.{kind} (these are read past), or give a model that outputs logits.",
            UserWarning,
            stacklevel=5,
        )
    return h


# --------------------------------------------------------------------------------------------
# Input validation and targets
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
    """

    x: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    offset: np.ndarray
    batch_size: int = 1

    @property
    def n(self) -> int:
        return len(self.x)


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


def _predict_raw(model: keras.Model, x: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's output (pre-activation where possible) for a batch, compiled and chunked."""
    fn = compiled(model, ("predict",), lambda: tf_function(lambda t: forward_scores(model, t)))
    outs = [replicas.call(fn, (x[sl],)) for sl in chunks(len(x), batch_size)]
    return np.concatenate(outs)


def forward_scores(model: keras.Model, x, taps=None):
    """All output units of ``model`` on ``x``, pre-softmax where the activation can be left out.

    The forward pass folds batch norms into their convolutions (:mod:`course_utils.folding`).
    """
    h = head(model)
    return surgery.forward(model, x, taps, logits=h.activation in _PROBABILITY_ACTIVATIONS)


def resolve_targets(model: keras.Model, x: np.ndarray, targets, batch_size: int) -> np.ndarray:
    """One class index per image: ``None`` -> the predicted class.

    For a single sigmoid unit, class 0 is "the class the sigmoid scores" and 1 "the other one";
    the predicted class is 0 when the logit is positive. An opaque head is checked first
    (:func:`probe_head`).
    """
    h = probe_head(model, x)
    n_classes = 2 if h.binary else h.n_outputs
    n = len(x)
    if targets is None:
        raw = _predict_raw(model, x, batch_size)
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


def score_weights(model: keras.Model, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image weights over the output units and offsets; see :class:`Job`."""
    h = head(model)
    n = len(targets)
    if h.binary:
        sign = np.where(targets == 0, 1.0, -1.0).astype("float32")[:, None]
        offset = np.where((targets == 1) & (not h.logits), 1.0, 0.0).astype("float32")
        return sign, offset
    weights = np.zeros((n, h.n_outputs), "float32")
    weights[np.arange(n), targets] = 1.0
    return weights, np.zeros(n, "float32")


_WARNED: weakref.WeakSet = weakref.WeakSet()


def auto_batch_size(shape: tuple) -> int:
    """Rows per compiled call for images of ``shape = (H, W, C)``; see :data:`IMAGES_PER_CHUNK`."""
    budget = IMAGES_PER_CHUNK[bool(config.onednn_enabled())] * 224 * 224
    return int(np.clip(budget // max(1, shape[0] * shape[1]), 1, 256))


def prepare(model: keras.Model, images, targets=None, batch_size: int | None = None) -> Job:
    """Validate the call and return a :class:`Job` (``batch_size=None``: automatic, see
    :func:`auto_batch_size`).

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
    batch_size = (auto_batch_size(x.shape[1:]) if batch_size is None
                  else check_batch_size(batch_size))
    t = resolve_targets(model, x, targets, batch_size)
    h = head(model)
    if not h.logits and model not in _WARNED:
        _WARNED.add(model)
        warnings.warn(
            f"Model {model.name!r} ends in a {type(h.layer).__name__} layer whose "
            f"{h.activation} cannot be switched off: explaining probabilities, whose gradients "
            "saturate. Give the last Dense layer the activation and explain logits instead.",
            UserWarning,
            stacklevel=3,
        )
    weights, offset = score_weights(model, t)
    return Job(x=x, targets=t, weights=weights, offset=offset, batch_size=batch_size)


def check_batch_size(batch_size) -> int:
    """``batch_size``: rows per compiled call, a positive integer."""
    return checks.integer(batch_size, "batch_size", example="rows per compiled call, e.g. 32")


def score(model: keras.Model, x, weights, offset, taps=None):
    """The explained score per row: ``sum(weights * output, -1) + offset`` (a TF op)."""
    out = forward_scores(model, x, taps)
    return tf.reduce_sum(out * weights, axis=-1) + offset


# --------------------------------------------------------------------------------------------
# Compiled-function cache and chunking
# --------------------------------------------------------------------------------------------

def chunks(n: int, batch_size: int) -> Iterator[slice]:
    """Slices ``[0:b], [b:2b], ...`` covering ``range(n)``."""
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


def _chunks_shown(n: int, batch_size: int, progress: str | None) -> Iterator[slice]:
    """:func:`chunks`, with a progress bar titled ``progress`` for more than four chunks
    (generated lazily: a million chunks are not held as a list)."""
    slices = chunks(n, batch_size)
    n_chunks = -(-n // batch_size)
    if progress and n_chunks > 4:
        from tqdm.auto import tqdm

        return tqdm(slices, total=n_chunks, desc=progress, leave=False)
    return slices


def run_rows(
    n_rows: int,
    batch_size: int,
    make_args: Callable[[slice], Sequence],
    fn: Callable,
    progress: str | None = None,
) -> np.ndarray:
    """Evaluate ``fn(*make_args(rows))`` over ``n_rows`` rows in chunks; concatenate results."""
    outs = []
    for sl in _chunks_shown(n_rows, batch_size, progress):
        outs.append(replicas.call(fn, make_args(sl)))
    return np.concatenate(outs)


# --------------------------------------------------------------------------------------------
# Pixel space <-> model space
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
    shape. ``name`` (the option: ``"fill"``...) is used in error messages; NaN and infinite
    values are refused.
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


#: What a pixel-space fill, baseline or hidden colour may be (for messages).
PIXEL_VALUES = ("'black', 'white', 'grey', 'mean', 'blur', a number, a colour per channel, or an "
                "image-shaped array (pixel units)")


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
# Small pure helpers shared by several methods
# --------------------------------------------------------------------------------------------


def reduce_channels(grads, how: str):
    """Reduce ``(..., C)`` attributions to one value per pixel (a TF op).

    ``"max_abs"``: max over channels of the absolute value (Simonyan et al. 2013);
    ``"sum"``: signed sum (keeps completeness for IG/SHAP); ``"l2"``: Euclidean norm;
    ``"mean_abs"``: mean absolute value.
    """
    if how == "max_abs":
        return tf.reduce_max(tf.abs(grads), axis=-1)
    if how == "sum":
        return tf.reduce_sum(grads, axis=-1)
    if how == "l2":
        return tf.norm(grads, axis=-1)
    if how == "mean_abs":
        return tf.reduce_mean(tf.abs(grads), axis=-1)
    raise ValueError(f"Unknown channel reduction {how!r}; use 'max_abs', 'sum', 'l2', 'mean_abs'.")


REDUCTIONS = ("max_abs", "sum", "l2", "mean_abs")


def check_reduce(how: str) -> str:
    """``reduce``: one of :data:`REDUCTIONS`."""
    return checks.choice(how, "reduce", REDUCTIONS)


def upsample(maps, size):
    """Bilinear upsampling of ``(N, h, w)`` maps to ``size = (H, W)`` (a TF op)."""
    return tf.image.resize(maps[..., None], size, method="bilinear")[..., 0]


def feature_path(model: keras.Model, layer) -> tuple:
    """The spatial layer a CAM-style method reads: ``layer`` or the last spatial feature map
    (after its activation), found also inside nested models."""
    if layer is None:
        layer = surgery.last_spatial_layer(model)
    return surgery.require_spatial(model, layer)


def as_float32(maps) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(maps, dtype="float32"))


def relaxed_spec(value) -> tf.TensorSpec:
    """The signature of one argument with its batch axis (and, for rank <= 2, every axis)
    left open, so that chunk sizes and superpixel counts do not cause retracing."""
    t = tf.convert_to_tensor(value)
    shape = [None] * t.shape.rank if t.shape.rank <= 2 else [None, *t.shape[1:]]
    return tf.TensorSpec(shape, t.dtype)


#: Chunks with fewer rows than this run a graph traced without batch-norm folding
#: (:func:`course_utils.surgery.unfolded`), without and with oneDNN kernels. MobileNetV2 at
#: 224 px, forward+backward, median ms per image folded / unfolded for 1, 2 and 4 images:
#: default kernels 70 / 64, 51 / 56, 46 / 53; oneDNN 71 / 42 for 1 image, 20 / 25 for 8.
FOLD_MIN_ROWS = {False: 2, True: 4}


def tf_function(fn: Callable) -> Callable:
    """``tf.function`` as every method uses it: traced on the first call, with a signature
    whose batch axis is open (:func:`relaxed_spec`), so that the last, smaller chunk or a
    different number of samples does not retrace the model. At most two graphs per input
    shape: one for chunks of :data:`FOLD_MIN_ROWS` rows or more (batch norms folded), one for
    smaller ones (not folded)."""
    min_rows = FOLD_MIN_ROWS[bool(config.onednn_enabled())]
    traced: dict = {}

    def call(*args):
        specs = tuple(relaxed_spec(a) for a in args)
        small = args[0].shape[0] < min_rows
        key = (tuple((tuple(sp.shape.as_list()), sp.dtype) for sp in specs), small)
        if key not in traced:  # a new image size (models that accept any size)
            traced[key] = tf.function(fn, input_signature=list(specs), autograph=False)
        if small:
            with surgery.unfolded():  # applies while the graph is traced (first call)
                return traced[key](*args)
        return traced[key](*args)

    return call


def input_gradients(model: keras.Model, z, weights, offset):
    """Gradient of the explained score w.r.t. the input rows ``z`` (a TF op)."""
    with tf.GradientTape() as tape:
        tape.watch(z)
        s = score(model, z, weights, offset)
    return tape.gradient(s, z)


def gradient_rows_fn(model: keras.Model, reduce: str, with_delta: bool) -> Callable:
    """Compiled ``f(z, [delta,] weights, offset) -> reduce(grad(z) [* delta])``, ``(B, H, W)``.

    The one gradient kernel behind saliency (``z = x``), SmoothGrad (``z = x + noise``),
    Integrated Gradients (``z`` on the path, ``delta = x - x'``) and expected gradients.
    """

    def build():
        if with_delta:
            def fn(z, delta, weights, offset):
                return reduce_channels(input_gradients(model, z, weights, offset) * delta, reduce)
        else:
            def fn(z, weights, offset):
                return reduce_channels(input_gradients(model, z, weights, offset), reduce)
        return tf_function(fn)

    return compiled(model, ("gradient_rows", reduce, with_delta), build)


def feature_gradients(model: keras.Model, path: tuple, x, weights, offset):
    """``(A, dS/dA)``: a layer's activations and the score's gradient w.r.t. them (a TF op).

    The layer is tapped during the forward pass (works inside nested models) and watched.
    """
    seen = {}

    def tap(a):
        tape.watch(a)
        seen["a"] = a

    with tf.GradientTape() as tape:
        s = score(model, x, weights, offset, taps={path[-1]: tap})
    return seen["a"], tape.gradient(s, seen["a"])


def mean_rows(
    n_images: int,
    per_image: int,
    batch_size: int,
    make_args: Callable[[np.ndarray, np.ndarray], Sequence],
    fn: Callable,
    progress: str | None = None,
) -> np.ndarray:
    """Average ``fn`` over ``per_image`` rows per image without holding all rows in memory.

    Row ``r`` belongs to image ``r // per_image`` and is sample ``r % per_image``;
    ``make_args(image_idx, sample_idx)`` builds the chunk's arguments. Memory is bounded by
    ``batch_size`` rows plus one accumulator per image.
    """
    total = None
    for sl in _chunks_shown(n_images * per_image, batch_size, progress):
        rows = np.arange(sl.start, sl.stop)
        img, sample = rows // per_image, rows % per_image
        out = replicas.call(fn, make_args(img, sample)).astype("float64")
        if total is None:
            total = np.zeros((n_images,) + out.shape[1:], "float64")
        for i in np.unique(img):
            total[i] += out[img == i].sum(axis=0)
    return as_float32(total / per_image)


def scores_fn(model: keras.Model) -> Callable:
    """Compiled ``f(z, weights, offset) -> score per row`` (forward passes only)."""
    return compiled(
        model, ("score",),
        lambda: tf_function(lambda z, w, o: score(model, z, w, o)),
    )


def row_scores(model: keras.Model, x, weights, offset, batch_size: int) -> np.ndarray:
    """The explained score of each row of ``x`` (compiled, chunked)."""
    return run_rows(
        len(x), batch_size, lambda sl: (x[sl], weights[sl], offset[sl]), scores_fn(model)
    )
