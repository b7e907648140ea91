"""What the course knows about a model: its preprocessing, pixel range, classes, and whether it
is a random-weight stand-in or a network shown in place of another.

Every model that ``course_utils`` hands out is registered here, so that attribution methods can
map pixel-space baselines (a black image, a grey patch) through the model's own preprocessing,
and plotting can label a stand-in (or a network shown in place of another) on screen. Models
built by hand get a neutral default: inputs already in pixel space ``[0, 1]``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

STANDIN_LABEL = "RANDOM-WEIGHT STAND-IN (not trained): pictures show the method, not the model"


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are neither cached nor downloadable.

    Raised by every loader of ``course_utils.models`` (the seeds' networks of
    :mod:`~course_utils.models.imagenet`, EfficientNet-Lite0 of
    :mod:`~course_utils.models.efficientnet_lite`), so it lives here, below both; import it as
    ``course_utils.models.WeightsUnavailableError``.
    """


def _identity(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype="float32")


@dataclass
class ModelInfo:
    """Facts about a model that the methods and plots need.

    Attributes
    ----------
    name
        Short name (``"vgg16"``, ``"fashion_cnn"``, ...).
    preprocess
        Maps images in pixel space (``[0, pixel_max]``) to the model's input space.
    pixel_max
        The top of the pixel range the model's images come in (255 for ImageNet photos, 1 for the
        course's own models).
    class_names
        One name per output unit (empty when unknown).
    standin
        True when the weights are random: every figure made from it must say so.
    note
        What a figure should say about a trained model shown in place of another (a
        ``fallback=`` in :func:`course_utils.models.load`), "" otherwise.
    stands_for
        The name of the model that was asked for when this one is shown instead, "" otherwise.
    """

    name: str = "model"
    preprocess: Callable[[np.ndarray], np.ndarray] = _identity
    pixel_max: float = 1.0
    class_names: Sequence[str] = field(default_factory=list)
    standin: bool = False
    note: str = ""
    stands_for: str = ""

    @property
    def label(self) -> str:
        """What a figure should show about the model: the stand-in warning, the note of a
        network shown in place of another, or "" for a trained model shown as itself."""
        return STANDIN_LABEL if self.standin else self.note


_REGISTRY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def register(model, info: ModelInfo):
    """Attach ``info`` to ``model`` and return the model."""
    _REGISTRY[model] = info
    return model


def info(model) -> ModelInfo:
    """Return what the course knows about ``model`` (a neutral default for unknown models).

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> info(m).pixel_max, info(m).standin
    (1.0, False)
    """
    try:
        return _REGISTRY[model]
    except (KeyError, TypeError):
        return ModelInfo(name=getattr(model, "name", "model"))


def is_standin(model) -> bool:
    """True when ``model`` is a random-weight stand-in."""
    return info(model).standin
