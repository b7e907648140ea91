"""Vanilla gradient saliency (Simonyan, Vedaldi & Zisserman 2013)."""

from __future__ import annotations

import keras
import numpy as np

from course_utils.attribution.template import method
from course_utils.engine import batching, gradients


@method(check=lambda reduce: {"reduce": gradients.check_reduce(reduce)})
def saliency(model: keras.Model, job, *, reduce: str = "max_abs") -> np.ndarray:
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
        (:func:`course_utils.engine.batching.auto_batch_size`).

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
    fn = gradients.gradient_rows_fn(model, reduce, with_delta=False)
    return batching.run_rows(job.n, job.batch_size, job.rows, fn)
