"""course_utils.attribution against peer libraries on the same model, layer and input:
tf-keras-vis (Saliency, Gradcam, Guided Backprop), shap's GradientExplainer, lime's
LimeImageExplainer."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import conv_gap_model, images

from course_utils.attribution import gradcam, lime, saliency, shap_gradients, smoothgrad
from course_utils.attribution.lime import segment


def normalize(a):
    """tf-keras-vis' per-image min-max normalization."""
    lo = a.min(axis=(1, 2), keepdims=True)
    hi = a.max(axis=(1, 2), keepdims=True)
    return (a - lo) / (hi - lo + 1e-7)


def corr(a, b):
    return [np.corrcoef(x.ravel(), y.ravel())[0, 1] for x, y in zip(a, b, strict=True)]


@pytest.fixture(scope="module")
def pooled():
    """A CNN whose feature map is smaller than the input, so that upsampling matters."""
    keras.utils.set_random_seed(4)
    inp = keras.Input((24, 24, 3))
    z = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    z = keras.layers.MaxPooling2D(2)(z)
    z = keras.layers.Conv2D(8, 3, padding="same", name="conv")(z)
    z = keras.layers.ReLU(name="act")(z)
    z = keras.layers.GlobalAveragePooling2D()(z)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(z), name="pooled")


def test_saliency_agrees_with_tf_keras_vis(pooled):
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    x = images(3, size=24)
    targets = [0, 2, 1]
    theirs = Saliency(pooled, model_modifier=ReplaceToLinear(), clone=True)(
        CategoricalScore(targets), x)
    ours = normalize(saliency(pooled, x, targets))
    assert min(corr(ours, theirs)) > 0.99


def test_smoothgrad_close_to_tf_keras_vis_with_many_samples(pooled):
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    x = images(2, size=24)
    np.random.seed(0)
    theirs = Saliency(pooled, model_modifier=ReplaceToLinear(), clone=True)(
        CategoricalScore([1, 1]), x, smooth_samples=64, smooth_noise=0.2)
    ours = normalize(smoothgrad(pooled, x, 1, n_samples=64, noise_level=0.2))
    assert min(corr(ours, theirs)) > 0.9  # independent noise draws


def _tkv_gradcam(model, x, targets, **kw):
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    # seek_penultimate_conv_layer=False: by default tf-keras-vis replaces a non-Conv layer
    # (our ReLU "after the activation") by the nearest Conv2D before it, i.e. the raw
    # convolution before batch norm and ReLU -- the pitfall our default layer avoids.
    return Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)(
        CategoricalScore(list(targets)), x, seek_penultimate_conv_layer=False, **kw)


def corr_nonzero(a, b):
    """Correlation per image, skipping images where both maps are all zero (ReLU'd away)."""
    keep = [i for i in range(len(a)) if a[i].any() or b[i].any()]
    assert keep
    return corr(a[keep], b[keep])


def test_gradcam_agrees_with_tf_keras_vis(tiny):
    """Same model, layer and input; the feature map has the input's size (no resampling)."""
    x = images(4)
    targets = [0, 2, 1, 0]
    theirs = _tkv_gradcam(tiny, x, targets, penultimate_layer="relu2")
    ours = gradcam(tiny, x, targets, layer="relu2")
    assert min(corr_nonzero(normalize(ours), theirs)) > 0.99


def test_gradcam_agrees_with_tf_keras_vis_at_feature_resolution(pooled):
    from course_utils.attribution.gradcam import gradcam
    from course_utils.engine import gradients, inputs, taps

    x = images(3, size=24)
    targets = [0, 2, 1]
    theirs = _tkv_gradcam(pooled, x, targets, penultimate_layer="act", expand_cam=False,
                          normalize_cam=False)
    job = inputs.prepare(pooled, x, targets)
    a, g = gradients.feature_gradients(pooled, taps.feature_path(pooled, "act"), job.x,
                                   job.weights, job.offset)
    np.testing.assert_allclose(gradcam.cam_map(a, g).numpy(), theirs, rtol=1e-4, atol=1e-6)
    # Upsampled: tf-keras-vis uses scipy.ndimage.zoom (corner-aligned grid), we TF's bilinear
    # resize with half-pixel centres (each feature cell covers its own block of pixels); on
    # these sparse 12 -> 24 px maps the two conventions still correlate, but not at 0.99.
    ours = normalize(gradcam(pooled, x, targets, layer="act"))
    up = _tkv_gradcam(pooled, x, targets, penultimate_layer="act")
    assert min(corr_nonzero(ours, up)) > 0.85
    # The convention is the only difference: tf-keras-vis' own feature map, upsampled by
    # scipy with half-pixel centres (grid_mode=True, edges repeated), equals ours. (With
    # scipy's default, corner-aligned grid, the correlation here is 0.95-0.97.)
    from scipy import ndimage

    half_pixel = np.stack([ndimage.zoom(m, 2, order=1, grid_mode=True, mode="nearest")
                           for m in theirs])
    assert min(corr_nonzero(ours, normalize(half_pixel))) > 0.99
    np.testing.assert_allclose(ours, normalize(half_pixel), atol=1e-5)


def test_shap_gradients_agrees_with_shap_in_expectation():
    import shap

    model = conv_gap_model(size=8, head="linear", bn=False, seed=2)
    x = images(2, size=8, seed=3)
    bg = images(5, size=8, seed=4)
    explainer = shap.GradientExplainer(model, bg)
    theirs = np.asarray(explainer.shap_values(x, nsamples=1500, rseed=0))
    # shap >= 0.45 returns (N, H, W, C, outputs)
    theirs = theirs[..., 1].sum(axis=-1)
    ours = shap_gradients(model, x, targets=1, background=bg, n_samples=1500)
    assert min(corr(ours, theirs)) > 0.97
    assert np.abs(ours - theirs).mean() < 0.2 * np.abs(theirs).mean()


def test_lime_equals_lime_packages_own_loop():
    from lime import lime_image

    model = conv_gap_model(size=16, seed=5)
    x = images(1, size=16, seed=6)
    seg = segment(x[0], 1.0, "slic", n_segments=12, compactness=100)
    ours, (exp_ours,) = lime(model, x, targets=2, n_samples=120, segmentation="slic",
                             segmentation_options={"n_segments": 12, "compactness": 100},
                             seed=0, return_explanations=True)
    explainer = lime_image.LimeImageExplainer(kernel_width=0.25, random_state=0)
    theirs = explainer.explain_instance(
        x[0].astype("float64"), lambda b: model.predict(b, verbose=0), labels=(2,),
        top_labels=None, num_samples=120, segmentation_fn=lambda _: seg, random_seed=0,
        batch_size=10)
    coef = dict(theirs.local_exp[2])
    expected = np.vectorize(lambda s: coef.get(s, 0.0))(seg)
    np.testing.assert_allclose(ours[0], expected, rtol=1e-3, atol=1e-6)
    assert exp_ours.segments.max() == seg.max()


def test_guided_backprop_agrees_with_tf_keras_vis():
    """tf-keras-vis' GuidedBackpropagation modifier swaps the gradient of every layer whose
    activation is ReLU (on a clone); ours swaps it inside the traced graph."""
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.model_modifiers import GuidedBackpropagation, ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    from course_utils.attribution import guided_backprop

    keras.utils.set_random_seed(5)
    inp = keras.Input((16, 16, 3))
    z = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    z = keras.layers.MaxPooling2D(2)(z)
    z = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(z)
    z = keras.layers.GlobalAveragePooling2D()(z)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(z))
    x = images(3, size=16)
    targets = [0, 2, 1]
    theirs = Saliency(model, model_modifier=[ReplaceToLinear(), GuidedBackpropagation()],
                      clone=True)(CategoricalScore(targets), x)
    ours = normalize(guided_backprop(model, x, targets))
    np.testing.assert_allclose(ours, theirs, atol=1e-5)  # measured: identical
    plain = normalize(saliency(model, x, targets))
    assert max(corr(plain, theirs)) < 0.9  # measured 0.22-0.81: the rule makes them agree


def test_lime_scores_a_repeated_image_once_with_the_maps_of_separate_calls(monkeypatch):
    """One picture asked for two classes: one set of perturbed samples, and each map equal to
    the map of a call for that class alone (lime's own sampling with the same seed)."""
    import importlib

    lime_module = importlib.import_module("course_utils.attribution.lime")

    model = conv_gap_model(size=16, seed=5)
    x = images(2, size=16, seed=6)
    opts = {"segmentation": "slic", "n_samples": 120,
            "segmentation_options": {"n_segments": 12, "compactness": 100}}
    alone = [lime(model, x[i], targets=c, **opts)[0] for i, c in ((0, 2), (0, 1), (1, 2))]
    calls = []
    scored = lime_module._BatchedLimeImageExplainer.data_labels
    monkeypatch.setattr(lime_module._BatchedLimeImageExplainer, "data_labels",
                        lambda self, *a, **k: calls.append(1) or scored(self, *a, **k))
    together = lime(model, np.stack([x[0], x[0], x[1]]), targets=[2, 1, 2], **opts)
    assert len(calls) == 2  # the repeated image is sampled and scored once
    np.testing.assert_allclose(together, np.stack(alone), rtol=1e-5, atol=1e-7)
    assert not np.allclose(together[0], together[1])  # two classes, two different maps
