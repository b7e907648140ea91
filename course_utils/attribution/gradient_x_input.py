"""Gradient x Input (Shrikumar, Greenside, Shcherbina & Kundaje 2016; Ancona et al. 2018)."""

from __future__ import annotations

import keras
import numpy as np

from course_utils.attribution.template import method
from course_utils.engine import batching, gradients


@method()
def gradient_x_input(model: keras.Model, job) -> np.ndarray:
    """The input gradient of the target's pre-softmax score times the input, summed over
    channels: ``M(x)_ij = sum_c x_ijc * dS/dx_ijc`` (signed), in the model's input space.

    On a linear model ``S = w . x + b`` the map is ``w * x`` per pixel and its sum is
    ``S - b`` exactly (Ancona et al. 2018: for a piecewise-linear network without biases it
    equals Integrated Gradients from a zero baseline). The input is the **preprocessed**
    tensor: a pixel whose preprocessed value is 0 gets 0, whatever its colour.

    ``model``, ``images``, ``targets`` and ``batch_size`` are those of every method (see
    :func:`course_utils.attribution.saliency`); there are no other options.

    Returns
    -------
    float32 ``(N, H, W)``: signed, positive where the pixel's value raises the score.

    Examples
    --------
    >>> import keras, numpy as np
    >>> m = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2)])
    >>> x = np.arange(4, dtype="float32").reshape(2, 2, 1)
    >>> w = m.layers[-1].kernel.numpy()[:, 1].reshape(2, 2)
    >>> bool(np.allclose(gradient_x_input(m, x, targets=1)[0], w * x[..., 0]))
    True
    """
    fn = gradients.gradient_rows_fn(model, "sum", with_delta=True)
    return batching.run_rows(
        job.n, job.batch_size, lambda sl: (job.x[sl], job.x[sl], job.weights[sl],
                                           job.offset[sl]), fn)
