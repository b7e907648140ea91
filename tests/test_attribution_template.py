"""The method template (attribution.template.method, attribution.cam_family.cam_variant) and
the one compiled-function cache (engine.kernels.compiled)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import tensorflow as tf
from conftest import FAST, conv_gap_model, images

from course_utils import surgery
from course_utils.attribution import METHODS, gradcam, gradcam_plus_plus
from course_utils.attribution.cam_family import cam_variant
from course_utils.engine import kernels


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_has_the_one_signature(name):
    params = inspect.signature(METHODS[name]).parameters
    assert list(params)[:3] == ["model", "images", "targets"]
    assert params["targets"].default is None
    assert params["batch_size"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["batch_size"].default is None
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(params.values())[3:])
    assert METHODS[name].__doc__ and ">>> " in METHODS[name].__doc__


def test_options_are_checked_before_the_images(tiny):
    """A wrong option is reported even when the images are wrong too: options come first."""
    with pytest.raises(ValueError, match="n_samples must be an integer"):
        METHODS["smoothgrad"](tiny, np.zeros((2, 2)), n_samples=0)
    with pytest.raises(TypeError, match="unexpected option"):
        METHODS["saliency"](tiny, images(1), steps=3)


def test_a_cam_variant_is_its_weights(tiny):
    """Grad-CAM rebuilt from its weights by the family gives Grad-CAM; the family's map is
    ReLU(sum_k w_k A_k) of those weights."""

    @cam_variant
    def again(a, g):
        """Grad-CAM's weights, once more."""
        return tf.reduce_mean(g, axis=(1, 2), keepdims=True)

    x = images(2)
    np.testing.assert_array_equal(again(tiny, x, [0, 1]), gradcam(tiny, x, [0, 1]))
    a = tf.constant(np.random.default_rng(0).normal(size=(1, 3, 3, 2)), tf.float32)
    g = tf.constant(np.random.default_rng(1).normal(size=(1, 3, 3, 2)), tf.float32)
    w = gradcam_plus_plus.channel_weights(a, g)
    assert tuple(w.shape) == (1, 1, 1, 2)
    np.testing.assert_allclose(gradcam_plus_plus.cam_map(a, g).numpy(),
                               np.maximum((w.numpy() * a.numpy()).sum(-1), 0), rtol=1e-6)


def test_one_cache_one_key_scheme():
    model = conv_gap_model(seed=3)
    gradcam(model, images(2), batch_size=8)
    gradcam(model, images(3), batch_size=8)  # another batch: same graph
    gradcam(model, images(2, size=24)[:, :16, :16], batch_size=8)  # same shape again
    cache = surgery.model_cache(model, kernels.CACHE_NAME)
    keys = [k for k in cache if k.method == "gradcam"]
    assert len(keys) == 1 and keys[0].shape == (16, 16, 3)
    assert all(isinstance(k, kernels.CacheKey) for k in cache)
    fn = cache[keys[0]]
    assert fn is kernels.compiled(model, "gradcam", lambda: None, options=keys[0].options,
                                  shape=(16, 16, 3))


@pytest.mark.parametrize("name", ["saliency", "smoothgrad", "occlusion"])
def test_results_do_not_depend_on_the_template_chunking(tiny, name):
    x = images(3)
    a = METHODS[name](tiny, x, batch_size=1, **FAST.get(name, {}))
    b = METHODS[name](tiny, x, batch_size=64, **FAST.get(name, {}))
    assert a.dtype == np.float32 and a.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
