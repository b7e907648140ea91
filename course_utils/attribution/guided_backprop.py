"""Guided Backprop (Springenberg, Dosovitskiy, Brox & Riedmiller 2015)."""

from __future__ import annotations

import keras
import numpy as np

from course_utils.attribution.template import method
from course_utils.engine import batching, gradients


@method(check=lambda reduce: {"reduce": gradients.check_reduce(reduce)})
def guided_backprop(model: keras.Model, job, *, reduce: str = "max_abs") -> np.ndarray:
    """Saliency through "guided" ReLUs: the gradient of the target's pre-softmax score with
    respect to the input, where every ReLU passes back only positive gradients at positive
    inputs (``grad * (grad > 0) * (input > 0)``), the rule swapped in by
    :func:`course_utils.engine.kernels.relu_taps` (the model is not modified).

    ``reduce``: how the channels become one value per pixel, as for
    :func:`course_utils.attribution.saliency`.

    Returns
    -------
    float32 ``(N, H, W)``.

    Examples
    --------
    >>> import keras, numpy as np
    >>> inp = keras.Input((6, 6, 3))
    >>> hidden = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    >>> logits = keras.layers.Dense(2)(keras.layers.GlobalMaxPooling2D()(hidden))
    >>> guided_backprop(keras.Model(inp, logits), np.random.rand(2, 6, 6, 3)).shape
    (2, 6, 6)
    """
    fn = gradients.gradient_rows_fn(model, reduce, with_delta=False, relu="guided")
    return batching.run_rows(job.n, job.batch_size, job.rows, fn)
