"""What a method is asked: the images, the targets and the batch size, validated once.

:func:`prepare` validates images (:func:`course_utils.engine.images.as_batch`), model and
targets and returns a :class:`Job`: the batch as float32 ``(N, H, W, C)``, one target per image
and the per-image score weights (:func:`course_utils.engine.scoring.score_weights`). Bad input
raises ``ValueError`` or ``TypeError`` with a message that says what was expected.

Examples
--------
>>> import keras, numpy as np
>>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
...                       keras.layers.Dense(3, activation="softmax")])
>>> prepare(m, np.zeros((2, 4, 4, 1)), targets=[0, 2]).targets.tolist()
[0, 2]
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from course_utils.engine import batching, scoring
from course_utils.engine.images import as_batch

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
