"""Score-CAM (Wang, Wang, Du, Yang, Zhang, Ding, Mardziel & Hu 2020): a CAM without gradients."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from course_utils.attribution.cam_family import weighted_map
from course_utils.attribution.template import method
from course_utils.engine import batching, checks, kernels, scoring, spaces, taps

#: Added to (max - min) when a channel is min-max normalized (tf-keras-vis' ``K.epsilon()``).
EPSILON = 1e-7


def _probability(model: keras.Model, out, weights, offset):
    """The target's **probability** per row (a TF op) from :func:`~course_utils.engine.scoring.
    forward_scores`' output: softmax over the classes of the logits (a sigmoid of the signed
    logit for a single unit), or the output itself when the model's probabilities could not be
    read past."""
    if not scoring.head(model).logits:
        return tf.reduce_sum(out * weights, axis=-1) + offset
    if scoring.head(model).binary:
        return tf.sigmoid(tf.reduce_sum(out * weights, axis=-1))
    return tf.reduce_sum(tf.nn.softmax(out, axis=-1) * weights, axis=-1)


def _masks_from_channels(a, size):
    """Each channel map ``a`` ``(n, h, w)`` upsampled bilinearly to ``size`` and min-max
    normalized to [0, 1] (a TF op, ``(n, H, W)``); a constant channel gives a zero mask."""
    up = spaces.upsample(a, size)
    lo = tf.reduce_min(up, axis=(1, 2), keepdims=True)
    hi = tf.reduce_max(up, axis=(1, 2), keepdims=True)
    return (up - lo) / (hi - lo + EPSILON)


def _masked_fn(model: keras.Model, shape: tuple):
    size = shape[:2]

    def build():
        def fn(x, channel, weights, offset):
            z = x * _masks_from_channels(channel, size)[..., None]
            return _probability(model, scoring.forward_scores(model, z), weights, offset)
        return kernels.tf_function(fn)

    return kernels.compiled(model, "scorecam_masked", build, shape=shape)


def top_channels(a: np.ndarray, max_channels: int | None) -> np.ndarray:
    """``(N, K')`` channel indices per image: all of them, or the ``max_channels`` whose maps
    vary most (largest spatial standard deviation, as tf-keras-vis' ``max_N`` and Faster
    Score-CAM), in decreasing order.

    Examples
    --------
    >>> a = np.zeros((1, 2, 2, 3)); a[0, 0, 0] = [1.0, 5.0, 0.0]
    >>> top_channels(a, 2).tolist(), top_channels(a, None).shape
    ([[1, 0]], (1, 3))
    """
    k = a.shape[-1]
    if max_channels is None or max_channels >= k:
        return np.broadcast_to(np.arange(k), (len(a), k))
    std = a.reshape(len(a), -1, k).std(axis=1)
    return np.argsort(-std, axis=1, kind="stable")[:, :max_channels]


def channel_weights(model: keras.Model, job, path: tuple,
                    max_channels: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The feature maps Score-CAM weighs and their weights: ``(A, w)`` with ``A``
    ``(N, h, w, K')`` (the selected channels of the layer of ``path``) and ``w`` ``(N, K')``,
    the target's probability on the input masked by each channel. All ``N * K'`` masked
    inputs run in compiled chunks of ``job.batch_size``, with a progress bar.
    :func:`weighted_upsampled` makes the map from them.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from course_utils.engine import inputs
    >>> keras.utils.set_random_seed(0)
    >>> m = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(3, 3, name="c"),
    ...                       keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    >>> job = inputs.prepare(m, np.random.rand(1, 6, 6, 1), targets=0)
    >>> a, w = channel_weights(m, job, taps.feature_path(m, "c"), None)
    >>> a.shape, w.shape, bool(((w > 0) & (w < 1)).all())  # probabilities, one per channel
    ((1, 4, 4, 3), (1, 3), True)
    >>> weighted_upsampled(a, w, (6, 6)).shape
    (1, 6, 6)
    """
    a = batching.run_rows(job.n, job.batch_size, lambda sl: (job.x[sl],),
                          taps.activations_fn(model, path))
    sel = top_channels(a, max_channels)
    a = np.take_along_axis(a, sel[:, None, None, :], axis=-1)
    k = a.shape[-1]
    fn = _masked_fn(model, job.shape)

    def make(sl):
        rows = np.arange(sl.start, sl.stop)
        img, ch = rows // k, rows % k
        return (job.x[img], np.ascontiguousarray(a[img, :, :, ch]), job.weights[img],
                job.offset[img])

    w = batching.run_rows(job.n * k, job.batch_size, make, fn, "Score-CAM")
    return a, w.reshape(job.n, k)


def _check(layer=None, max_channels=None) -> dict:
    if max_channels is None:
        return {}
    return {"max_channels": checks.integer(max_channels, "max_channels",
                                           example="channels kept, e.g. 32, or None for all")}


@method(check=_check)
def scorecam(model: keras.Model, job, *, layer=None, max_channels: int | None = None
             ) -> np.ndarray:
    """Score-CAM: each channel of a layer, used as a mask on the input, is weighted by the
    target's probability on the masked input; no gradient.

    For each channel ``A_k`` of the layer: upsample it bilinearly to the input size, min-max
    normalize it to ``[0, 1]`` (``M_k``), multiply the input by it **in the model's input
    space** (``x * M_k``, the Hadamard product of the paper and of tf-keras-vis' ``Scorecam``:
    where ``M_k = 0`` the input becomes 0 of the preprocessed tensor, which for a model fed
    ``[0, 1]`` pixels is black and for mean-subtracted inputs the mean colour), and score it:
    ``w_k = softmax(f(x * M_k))_c``, the **softmax probability** of the target class ``c`` over
    the classes (a sigmoid for a single output unit). The map is
    ``upsample(ReLU(sum_k w_k A_k))``, unnormalized.

    Which score: this follows the authors' code and tf-keras-vis (the probability of the masked
    input, no baseline subtracted, no softmax across channels), not the pre-softmax score the
    other methods explain: the probability is bounded in [0, 1], so one channel whose mask
    happens to produce a huge logit cannot dominate the sum. The paper's Algorithm 1 instead
    subtracts the score of a baseline and takes a softmax over the channels of the logits;
    neither the authors' code nor tf-keras-vis computes that, and it is not offered.

    Parameters
    ----------
    layer
        Name or index of a layer with a spatial output; default the last spatial feature map
        after its activation (the CAM family's default), also inside a nested base model.
    max_channels
        ``None`` (default): every channel, one forward pass each. An integer: only the
        ``max_channels`` channels whose maps vary most over the image (largest spatial
        standard deviation), as tf-keras-vis' ``max_N`` (Faster Score-CAM); the others get
        weight 0.

    Returns
    -------
    float32 ``(N, H, W)``, non-negative.

    Examples
    --------
    Four channels, of which the two that vary most mask the input (two forward passes):

    >>> import keras, numpy as np
    >>> keras.utils.set_random_seed(0)
    >>> m = keras.Sequential([keras.Input((10, 10, 1)), keras.layers.Conv2D(4, 3),
    ...                       keras.layers.ReLU(), keras.layers.MaxPooling2D(2),
    ...                       keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    >>> maps = scorecam(m, np.random.rand(2, 10, 10, 1), max_channels=2)
    >>> maps.shape, bool(maps.min() >= 0)
    ((2, 10, 10), True)
    """
    a, w = channel_weights(model, job, taps.feature_path(model, layer), max_channels)
    return weighted_upsampled(a, w, job.shape[:2])


def weighted_upsampled(a: np.ndarray, w: np.ndarray, size: tuple) -> np.ndarray:
    """``upsample(ReLU(sum_k w_k A_k))`` to ``size``: the map from :func:`channel_weights`'
    ``(A, w)`` (example there)."""
    cam = weighted_map(tf.constant(w[:, None, None, :]), tf.constant(a))
    return spaces.upsample(cam, size).numpy()
