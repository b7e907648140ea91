"""Score-CAM against tf-keras-vis' ``Scorecam`` on the same model, layer and input.

The model is a small random CNN whose classifier weights are scaled by 10 so that the masked
inputs' class probabilities spread over (0, 1): with near-uniform probabilities every channel
gets the same weight and any weighting would agree with the peer. The control in each test
(equal weights) shows that here the weights matter.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import images
from scipy import ndimage
from test_attribution_peers import corr

from course_utils.attribution.cam_family import weighted_map
from course_utils.attribution.scorecam import channel_weights, scorecam, top_channels
from course_utils.engine import inputs, taps

TARGETS = [0, 2, 1]


@pytest.fixture(scope="module")
def decisive():
    """24 px input, 16 channels at 12 x 12 after ReLU ("act"), a softmax head scaled by 10."""
    keras.utils.set_random_seed(4)
    inp = z = keras.Input((24, 24, 3))
    for layer in (keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
                  keras.layers.MaxPooling2D(2), keras.layers.Conv2D(16, 3, padding="same"),
                  keras.layers.ReLU(name="act"), keras.layers.GlobalAveragePooling2D()):
        z = layer(z)  # functional: tf-keras-vis needs a model with output_names
    head = keras.layers.Dense(3, activation="softmax")
    model = keras.Model(inp, head(z), name="decisive")
    head.kernel.assign(head.kernel * 10.0)
    return model


def _theirs(model, x, **kw):
    from tf_keras_vis.scorecam import Scorecam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    # The logits model (tf-keras-vis applies the softmax itself); the named ReLU, not the
    # convolution before it (seek_penultimate_conv_layer=False); raw values. One image per
    # call: with max_N, tf-keras-vis keeps the union of every image's top channels.
    cam = Scorecam(model, model_modifier=ReplaceToLinear(), clone=True)
    return np.concatenate([np.asarray(cam(
        CategoricalScore([t]), x[i:i + 1], penultimate_layer="act",
        seek_penultimate_conv_layer=False, normalize_cam=False, **kw)).reshape(
            (1, *np.shape(x)[1:3]) if kw.get("expand_cam", True) else (1, 12, 12))
        for i, t in enumerate(TARGETS)])


@pytest.mark.parametrize("max_channels", [None, 6])
def test_scorecam_agrees_with_tf_keras_vis(decisive, max_channels):
    """At the feature map's resolution (the weights are the only computed difference; the
    masks are upsampled with TF's half-pixel bilinear resize here, scipy's corner-aligned zoom
    there) and at the input's resolution with each library's own upsampling."""
    x = images(3, size=24)
    small = _theirs(decisive, x, max_N=max_channels, expand_cam=False)
    job = inputs.prepare(decisive, x, TARGETS)
    a, w = channel_weights(decisive, job, taps.feature_path(decisive, "act"), max_channels)
    assert a.shape[-1] == (16 if max_channels is None else max_channels)
    ours_small = weighted_map(w[:, None, None, :], a).numpy()
    assert min(corr(ours_small, small)) > 0.99  # measured 0.9946-1.000
    flat = weighted_map(np.ones_like(w)[:, None, None, :], a).numpy()
    assert min(corr(flat, small)) < 0.9  # equal weights do not fit (measured -0.25 and 0.82)

    ours = scorecam(decisive, x, TARGETS, layer="act", max_channels=max_channels)
    full = _theirs(decisive, x, max_N=max_channels)
    assert min(corr(ours, full)) > 0.95  # measured 0.960-0.975: upsampling conventions differ
    # With scipy's zoom on half-pixel centres, tf-keras-vis' feature map upsampled is ours.
    half = np.stack([ndimage.zoom(m, 2, order=1, grid_mode=True, mode="nearest")
                     for m in small])
    assert min(corr(ours, half)) > 0.99


def test_fewer_channels_keep_the_most_varying_ones():
    a = np.zeros((2, 3, 3, 4), "float32")
    a[0, 0, 0] = [0.0, 9.0, 1.0, 3.0]
    a[1, 1, 1] = [2.0, 0.0, 7.0, 0.0]
    assert top_channels(a, 2).tolist() == [[1, 3], [2, 0]]
    assert top_channels(a, 9).shape == (2, 4)


def test_a_single_sigmoid_weighs_channels_by_the_probability_of_each_class():
    """For one sigmoid unit, class 1's weights are 1 - class 0's (p and 1 - p)."""
    keras.utils.set_random_seed(1)
    inp = keras.Input((8, 8, 1))
    z = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="act")(inp)
    model = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(
        keras.layers.GlobalAveragePooling2D()(z)))
    x = images(1, size=8, channels=1)
    path = taps.feature_path(model, "act")
    _, w0 = channel_weights(model, inputs.prepare(model, x, 0), path, None)
    _, w1 = channel_weights(model, inputs.prepare(model, x, 1), path, None)
    np.testing.assert_allclose(w0 + w1, 1.0, atol=1e-6)
    assert np.ptp(w0) > 1e-4  # the channels' masks give different probabilities


@pytest.mark.parametrize("bad, error", [(0, ValueError), (2.5, ValueError), ("all", TypeError)])
def test_max_channels_is_checked_before_any_work(decisive, bad, error):
    with pytest.raises(error, match="max_channels must be an integer"):
        scorecam(decisive, images(1, size=24), max_channels=bad)
