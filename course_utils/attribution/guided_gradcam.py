"""Guided Grad-CAM (Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra 2017)."""

from __future__ import annotations

import keras
import numpy as np

from course_utils.attribution.gradcam import gradcam
from course_utils.attribution.guided_backprop import guided_backprop
from course_utils.attribution.template import method
from course_utils.engine import gradients


@method(check=lambda layer, reduce: {"reduce": gradients.check_reduce(reduce)})
def guided_gradcam(model: keras.Model, job, *, layer=None, reduce: str = "max_abs") -> np.ndarray:
    """Guided Backprop's map times the upsampled Grad-CAM map, pixel by pixel.

    Selvaraju et al. (2017) combine the two because each lacks what the other has: Guided
    Backprop is sharp but hardly depends on the class, Grad-CAM depends on the class but is as
    coarse as its layer. Both are computed by their own compiled kernels
    (:func:`~course_utils.attribution.guided_backprop`, whose ReLU rule is swapped inside the
    traced graph, the model untouched, and :func:`~course_utils.attribution.gradcam`). Grad-CAM
    is non-negative, so reducing the channels before or after the product gives the same map.

    Parameters
    ----------
    layer
        Grad-CAM's layer (name or index of a spatial layer); default: the last spatial feature
        map after its activation.
    reduce
        How Guided Backprop's channels become one value per pixel (see ``saliency``).

    Returns
    -------
    float32 ``(N, H, W)``: non-negative, unless ``reduce="sum"``.

    Examples
    --------
    >>> import keras, numpy as np
    >>> m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
    ...                       keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    >>> maps = guided_gradcam(m, np.random.rand(2, 8, 8, 3), targets=1)
    >>> maps.shape, bool(maps.min() >= 0)
    ((2, 8, 8), True)
    """
    return guided_backprop.math(model, job, reduce=reduce) * gradcam.math(model, job, layer=layer)
