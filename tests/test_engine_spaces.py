"""engine.spaces: the one affine probe of a preprocessing and the one blur.

The probe is checked against the preprocessing itself and against the float32 probe that
``engine.spaces`` used before ``features/_graph.py`` was folded in (copied here as the
reference): every attribution result that goes through it agrees to 1e-6. The blur is checked
against a Gaussian written out by hand, and shown to be the same in every place that blurs.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import importlib

import numpy as np
import pytest
from conftest import conv_gap_model, images

from course_utils import attribution, metrics
from course_utils.engine import spaces
from course_utils.models.registry import ModelInfo, register

deletion_mod = importlib.import_module("course_utils.metrics.deletion")  # not the function
CAFFE_MEAN = np.array([103.9, 116.8, 123.7], "float32")
PREPROCESS = {  # pixel space [0, 255] -> model space, as keras.applications does
    "caffe": lambda p: np.asarray(p, "float32")[..., ::-1] - CAFFE_MEAN,
    "tf": lambda p: np.asarray(p, "float32") / 127.5 - 1.0,
    "torch": lambda p: (np.asarray(p, "float32") / 255.0 - [0.485, 0.456, 0.406])
    / [0.229, 0.224, 0.225],
}


def _float32_probe(model, channels):
    """The probe engine.spaces had before (1 x 1 pixels, float32 arithmetic, rtol/atol 1e-4)."""
    info = spaces.registry.info(model)
    pmax = float(info.pixel_max)
    probe = np.zeros((channels + 2, 1, 1, channels), "float32")
    for c in range(channels):
        probe[c + 1, 0, 0, c] = pmax
    probe[-1, 0, 0, :] = np.random.default_rng(0).uniform(0, pmax, channels)
    out = spaces.to_model_space(model, probe)[:, 0, 0, :]
    b = out[0]
    a = (out[1:-1] - b) / pmax
    if not np.allclose(probe[-1, 0, 0] @ a + b, out[-1], rtol=1e-4, atol=1e-4):
        return None
    return a, b


def _model(kind):
    model = conv_gap_model(head="linear", seed=1)
    return register(model, ModelInfo(name=kind, preprocess=PREPROCESS[kind], pixel_max=255.0))


@pytest.mark.parametrize("kind", sorted(PREPROCESS))
def test_the_probe_finds_the_preprocessing_and_inverts_it(kind):
    model = _model(kind)
    a, b = spaces.affine_of_preprocess(model, 3)
    pixels = np.random.default_rng(2).uniform(0, 255, (5, 3)).astype("float32")
    # the affine map reproduces the preprocessing on pixels it was not fitted on
    np.testing.assert_allclose(pixels @ a + b, PREPROCESS[kind](pixels), rtol=1e-5, atol=1e-5)
    x = spaces.to_model_space(model, images(2) * 255.0)
    np.testing.assert_allclose(spaces.to_pixels(model, x), images(2) * 255.0, atol=2e-3)
    assert spaces.affine_of_preprocess(model, 3) is spaces.affine_of_preprocess(model, 3)


def test_a_preprocessing_that_is_not_affine_is_not_taken_for_one():
    model = register(conv_gap_model(head="linear"),
                     ModelInfo(preprocess=lambda p: np.sqrt(p), pixel_max=1.0))
    assert spaces.affine_of_preprocess(model, 3) is None
    with pytest.warns(UserWarning, match="min-max"):
        spaces.to_pixels(model, images(1))


@pytest.mark.parametrize("kind", sorted(PREPROCESS))
def test_results_through_the_probe_are_those_of_the_float32_probe(kind, monkeypatch):
    model = _model(kind)
    x = spaces.to_model_space(model, images(2) * 255.0)
    maps = np.random.default_rng(3).uniform(size=(2, 16, 16))

    def results():
        return {
            "pixels": spaces.to_pixels(model, x) / 255.0,  # in units of the pixel range
            "ig_mean": attribution.integrated_gradients(model, x, 0, baseline="mean", steps=4),
            "occlusion_blur": attribution.occlusion(model, x, 0, fill="blur", window=4,
                                                    stride=4),
            "deletion_blur": metrics.deletion(model, x, maps, 0, steps=4).scores,
        }

    new = results()
    monkeypatch.setattr(spaces, "affine_of_preprocess", _float32_probe)
    old = results()
    for key in new:  # measured: at most 1.2e-7 (pixels), 6e-8 (occlusion: 1 ulp of a score)
        np.testing.assert_allclose(new[key], old[key], rtol=1e-6, atol=1e-6, err_msg=key)
    # and the float64 probe is the more exact: its pixels are at least as close to the truth
    truth = images(2)
    assert np.abs(new["pixels"] - truth).max() <= np.abs(old["pixels"] - truth).max()


def _gaussian_by_hand(size, centre, sigma):
    """An impulse blurred by a Gaussian of ``sigma`` px, from the formula (far from edges)."""
    yy, xx = np.mgrid[:size, :size]
    g = np.exp(-((yy - centre) ** 2 + (xx - centre) ** 2) / (2 * sigma**2))
    return g / g.sum()


def test_blur_is_a_gaussian_of_one_sixteenth_of_the_size():
    img = np.zeros((1, 64, 64, 1), "float32")
    img[0, 32, 32, 0] = 1.0
    out = spaces.blur(img)[0, ..., 0]  # sigma = 64 / 16 = 4 px
    np.testing.assert_allclose(out, _gaussian_by_hand(64, 32, 4.0), atol=2e-5)
    assert not np.allclose(out, _gaussian_by_hand(64, 32, 64 / 20), atol=2e-5)  # not 1/20
    flat = np.full((1, 8, 8, 3), 0.3, "float32")  # edges extended: a flat image stays flat
    np.testing.assert_allclose(spaces.blur(flat), flat, atol=1e-6)


def test_one_blur_for_baselines_fills_and_deletion():
    model = _model("caffe")
    x = spaces.to_model_space(model, images(2) * 255.0)
    expected = spaces.to_model_space(model, spaces.blur(spaces.to_pixels(model, x)))
    np.testing.assert_allclose(spaces.model_space_constant(model, "blur", x), expected,
                               atol=1e-4)
    np.testing.assert_allclose(deletion_mod.removed_images(model, x, "blur"), expected,
                               atol=1e-4)
