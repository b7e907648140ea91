"""Vanilla gradient saliency (Simonyan, Vedaldi & Zisserman 2013)."""

from __future__ import annotations

import keras
import numpy as np

from course_utils.attribution import core


def saliency(
    model: keras.Model,
    images,
    targets=None,
    *,
    reduce: str = "max_abs",
    batch_size: int | None = None,
) -> np.ndarray:
    """Gradient of the target's pre-softmax score with respect to the input pixels.

    The score is the logit, not the softmax probability: a confident prediction saturates the
    softmax and flattens its gradient, and the probability's gradient mixes in every other
    class (Simonyan et al. 2013 differentiate the unnormalized class score).

    Parameters
    ----------
    model
        A Keras model with one image input and one ``(N, classes)`` output.
    images
        One image ``(H, W, C)`` or a batch ``(N, H, W, C)``, preprocessed for the model.
    targets
        ``None`` (predicted class), one class index, or one per image. For a single sigmoid
        unit, 0 is the class it scores and 1 the other one.
    reduce
        How the gradient's channels become one value per pixel: ``"max_abs"`` (default, the
        paper's max over channels of the absolute value), ``"sum"`` (signed), ``"l2"``,
        ``"mean_abs"``.
    batch_size
        Rows (images, or perturbed copies for the sampling methods) per compiled call; every
        method takes it and results do not depend on it. ``None`` chooses from the image size
        (:func:`course_utils.attribution.core.auto_batch_size`).

    Returns
    -------
    float32 ``(N, H, W)``.

    Examples
    --------
    >>> import keras, numpy as np
    >>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2)])
    >>> saliency(m, np.zeros((4, 4, 1), "float32"), targets=1).shape
    (1, 4, 4)
    """
    core.check_reduce(reduce)
    job = core.prepare(model, images, targets, batch_size)
    batch_size = job.batch_size
    fn = core.gradient_rows_fn(model, reduce, with_delta=False)
    maps = core.run_rows(
        job.n, batch_size, lambda sl: (job.x[sl], job.weights[sl], job.offset[sl]), fn
    )
    return core.as_float32(maps)
