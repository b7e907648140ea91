"""Class Activation Mapping (Zhou, Khosla, Lapedriza, Oliva & Torralba 2016)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from course_utils import surgery
from course_utils.attribution.cam_family import run_cam
from course_utils.attribution.template import method
from course_utils.engine import taps

# Layers that may sit between the GAP and the classifier, or after it, without changing CAM's
# algebra on the pre-softmax score.
_PASS_THROUGH = (keras.layers.Dropout, keras.layers.Flatten, keras.layers.Activation,
                 keras.layers.Softmax, keras.layers.InputLayer)


def _gap_head(model: keras.Model, path: tuple) -> keras.layers.Dense:
    """Check that ``path``'s layer is followed only by GAP, one Dense classifier and
    pass-through layers (dropout, activation, softmax, a softmax/sigmoid ``Lambda``); return
    the Dense."""
    entries = list(surgery.iter_layers(model))
    idx = next(i for i, (p, _) in enumerate(entries) if p[-1] is path[-1])
    after = [la for _, la in entries[idx + 1:] if not isinstance(la, keras.Model)]
    gaps = [la for la in after if isinstance(la, keras.layers.GlobalAveragePooling2D)]
    dense = [la for la in after if isinstance(la, keras.layers.Dense)]
    others = [la for la in after
              if not isinstance(la, (keras.layers.GlobalAveragePooling2D, keras.layers.Dense,
                                     *_PASS_THROUGH)) and surgery.probability_op(la) is None]
    if len(gaps) != 1 or len(dense) != 1 or others:
        raise ValueError(
            f"CAM needs a model whose layer {path[-1].name!r} is followed by "
            "GlobalAveragePooling2D and one Dense classifier only; found "
            f"{[la.name for la in after]}. Use gradcam() for other architectures."
        )
    return dense[0]


def cam_map(a, class_weights):
    """``sum_k w_k^c A_k`` per image (a TF op): ``a`` ``(N, h, w, K)``, weights ``(N, K)``."""
    return tf.einsum("nhwk,nk->nhw", a, class_weights)


@method()
def cam(model: keras.Model, job, *, layer=None, relu: bool = False) -> np.ndarray:
    """CAM for GAP-headed models: the classifier's weights times the last feature maps.

    ``M_c(i, j) = sum_k w_k^c A_k(i, j)`` (Zhou et al. 2016), bilinearly upsampled to the input
    size; unnormalized and signed (``relu=True`` keeps the positive part). The weights are the
    final Dense layer's kernel column of the target, i.e. CAM explains the pre-softmax score
    (without its bias). For a single sigmoid unit, target 1 uses the negated column.

    Parameters
    ----------
    layer
        The feature layer; default the last spatial layer, which must be followed only by
        ``GlobalAveragePooling2D`` (and dropout) and the final ``Dense``.

    Returns
    -------
    float32 ``(N, H, W)``.

    Examples
    --------
    >>> import keras, numpy as np
    >>> inp = keras.Input((8, 8, 3))
    >>> x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    >>> out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    >>> cam(keras.Model(inp, out), np.random.rand(8, 8, 3)).shape
    (1, 8, 8)
    """
    path = taps.feature_path(model, layer)
    dense = _gap_head(model, path)

    def to_map(a, _, weights):
        # (N, K) class weights, read from the variable in the graph. A NumPy product here
        # would leave BLAS threads spinning on the cores the next chunk's convolutions need.
        cw = tf.matmul(weights, tf.convert_to_tensor(dense.kernel), transpose_b=True)
        m = cam_map(a, cw)
        return tf.nn.relu(m) if relu else m

    return run_cam(model, job, "cam", path, to_map, with_gradients=False, options=(relu,))
