"""Headless tests of the attribution explorers: set a control, the output changes; a second
visit of the same value is served from the cache; explorers agree with course_utils.attribution.
"""

from __future__ import annotations

import ipywidgets
import keras
import numpy as np
import pytest
from conftest import conv_gap_model, images, square_dataset

from course_utils import attribution, widgets
from course_utils.widgets import Explorer, LRUCache, control_values


@pytest.fixture(scope="module")
def model():
    return conv_gap_model(size=24, classes=3)


@pytest.fixture(scope="module")
def image():
    """Noise with a bright square: structure for superpixels, random texture for gradients."""
    x, _, _ = square_dataset(1, size=24, square=8, seed=3)
    return x[0]


def png(update) -> bytes:
    return update.shown.data


# ------------------------------------------------------------------ the shared plumbing


def test_explorers_are_keyed_by_the_method_names_of_attribution():
    assert set(widgets.ATTRIBUTION_EXPLORERS) <= set(attribution.METHODS)


def test_lru_cache_evicts_the_least_recently_used():
    c = LRUCache(maxsize=2)
    c.get_or_compute("a", lambda: 1)
    c.get_or_compute("b", lambda: 2)
    c.get_or_compute("a", lambda: 0)  # hit: "a" becomes the most recent
    c.get_or_compute("c", lambda: 3)  # evicts "b"
    assert "a" in c and "c" in c and "b" not in c
    assert (c.hits, c.misses) == (1, 3)


def test_explorer_caches_by_the_compute_keys_only():
    calls = []

    def compute(a):
        calls.append(a)
        return a * 10

    ex = Explorer(
        {"a": ipywidgets.IntSlider(value=1, min=1, max=3),
         "b": ipywidgets.IntSlider(value=0, min=0, max=2)},
        compute, lambda r, a, b: f"{r}+{b}", compute_keys=["a"])
    assert calls == [1] and ex.last.shown == "10+0"
    u = ex.set(b=2)  # b only re-renders
    assert u.cached and u.shown == "10+2" and calls == [1]
    u = ex.set(a=3, b=1)  # several controls at once: one update
    assert not u.cached and u.result == 30 and calls == [1, 3]
    assert ex.set(a=1).cached and calls == [1, 3]
    drawn = ex.drawn.hits
    assert ex.set(a=3, b=1).shown == "30+1" and ex.drawn.hits == drawn + 1  # not redrawn
    assert ex.warm() == 1 and calls == [1, 3, 2]
    assert all(v["a"] in (1, 2, 3) for v in ex.grid())


def test_a_slider_move_by_the_user_triggers_one_update():
    slider = ipywidgets.IntSlider(value=1, min=1, max=5)
    ex = Explorer({"n": slider}, lambda n: n, lambda r, n: str(r))
    before = len(ex.history)
    slider.value = 4  # what the browser does
    assert len(ex.history) == before + 1 and ex.last.result == 4


def test_explorer_reports_errors_in_place_of_the_picture():
    def compute(n):
        if n == 2:
            raise ValueError("two is not allowed")
        return n

    ex = Explorer({"n": ipywidgets.IntSlider(value=1, min=1, max=3)}, compute,
                  lambda r, n: str(r))
    ex.set(n=2)
    assert isinstance(ex.last.shown, ValueError)
    assert "two is not allowed" in ex.status_html.value
    assert ex.set(n=3).result == 3


def test_explorer_rejects_unknown_controls():
    ex = Explorer({"n": ipywidgets.IntSlider()}, lambda n: n, lambda r, n: str(r))
    with pytest.raises(ValueError, match="Unknown control"):
        ex.set(m=1)
    with pytest.raises(ValueError, match="compute_keys"):
        Explorer({"n": ipywidgets.IntSlider()}, lambda n: n, lambda r, n: "", compute_keys=["x"])


def test_control_values_cover_sliders_and_menus():
    assert control_values(ipywidgets.FloatSlider(min=0, max=0.2, step=0.1)) == [0.0, 0.1, 0.2]
    assert control_values(ipywidgets.Dropdown(options=[("a", 1), ("b", 2)])) == [1, 2]
    assert control_values(ipywidgets.SelectionSlider(options=(4, 8))) == [4, 8]


def test_output_has_a_fixed_size(model, image):
    ex = widgets.occlusion_explorer(model, image)
    assert ex.output.layout.height and ex.output.layout.width
    assert isinstance(ex.widget, ipywidgets.VBox)


# ------------------------------------------------------------------ each explorer


def test_smoothgrad_explorer_matches_smoothgrad_and_the_sample_slider_is_free(model, image):
    ex = widgets.smoothgrad_explorer(model, image, target=1, max_samples=12)
    first = png(ex.set(noise_level=0.2, n_samples=12))
    expected = attribution.smoothgrad(model, image, 1, n_samples=12, noise_level=0.2)[0]
    np.testing.assert_allclose(ex.last.result[11], expected, rtol=1e-4, atol=1e-6)
    # n = 1 at noise 0.2 is one noisy gradient; every sample count is served from the cache
    u = ex.set(n_samples=3)
    assert u.cached and png(u) != first
    expected3 = attribution.smoothgrad(model, image, 1, n_samples=3, noise_level=0.2)[0]
    np.testing.assert_allclose(u.result[2], expected3, rtol=1e-4, atol=1e-6)
    # noise 0 is plain saliency
    u = ex.set(noise_level=0.0, n_samples=5)
    assert not u.cached
    np.testing.assert_allclose(u.result[4], attribution.saliency(model, image, 1)[0],
                               rtol=1e-4, atol=1e-7)
    assert ex.set(noise_level=0.2).cached


def test_integrated_gradients_explorer_shows_the_completeness_error_falling_with_steps(image):
    # A smooth (tanh) model: along the path from the baseline a small ReLU net can be exactly
    # linear, and then every step count is complete and nothing falls.
    keras.utils.set_random_seed(0)
    inp = keras.Input((24, 24, 3))
    z = keras.layers.Conv2D(8, 3, activation="tanh")(inp)
    z = keras.layers.Conv2D(8, 3, activation="tanh")(z)
    z = keras.layers.GlobalAveragePooling2D()(z)
    smooth = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(z))
    ex = widgets.integrated_gradients_explorer(smooth, image, steps=(1, 64))
    assert ex.last.values["steps"] == 64  # the first view
    coarse = ex.set(steps=1)
    fine = ex.set(steps=64)
    assert not coarse.cached and fine.cached and png(fine) != png(coarse)
    assert fine.result["relative_error"] < 0.001 < 0.005 < coarse.result["relative_error"]
    assert "completeness error" in ex.status_html.value
    np.testing.assert_allclose(fine.result["map"].sum(), fine.result["delta"], rtol=0.02,
                               atol=1e-5)
    assert ex.set(steps=1).cached
    grey = ex.set(baseline="grey")
    assert not grey.cached and not np.allclose(grey.result["map"], coarse.result["map"])


def test_occlusion_explorer_patch_and_stride_change_the_map(model, image):
    ex = widgets.occlusion_explorer(model, image, windows=(4, 8), strides=(2, 4))
    b = ex.last  # the first view: the middle of each slider
    assert (b.values["window"], b.values["stride"]) == (8, 4)
    a = ex.set(window=4, stride=2)
    assert not a.cached and not np.allclose(a.result, b.result) and png(a) != png(b)
    np.testing.assert_allclose(
        b.result, attribution.occlusion(model, image, window=8, stride=4)[0], rtol=1e-5)
    assert ex.set(window=4, stride=2).cached
    blur = ex.set(fill="blur")
    assert not blur.cached and not np.allclose(blur.result, a.result)


def test_lime_explorer_segmentation_and_samples(model, image):
    ex = widgets.lime_explorer(model, image, samples=(50, 200), n_segments=(4, 16),
                               kernel_sizes=(2, 4))
    a = ex.set(segmentation="slic", n_segments=4, n_samples=50)
    b = ex.set(n_segments=16)
    assert not b.cached and b.result["segments"].max() > a.result["segments"].max()
    assert png(a) != png(b)
    # the quickshift slider is ignored under SLIC: a cache hit
    assert ex.set(kernel_size=2).cached
    q = ex.set(segmentation="quickshift")
    assert not q.cached and "superpixels" in ex.status_html.value
    assert ex.set(segmentation="slic").cached


def test_gradcam_explorer_class_menu_changes_the_map(model, image):
    ex = widgets.gradcam_explorer(model, image, layers=["conv1", "relu2"], classes=[0, 2])
    a = ex.set(layer="relu2", target=0)
    b = ex.set(target=2)
    assert not b.cached and not np.allclose(a.result, b.result) and png(a) != png(b)
    np.testing.assert_allclose(b.result, attribution.gradcam(model, image, 2, layer="relu2")[0],
                               rtol=1e-5, atol=1e-7)
    assert ex.set(target=0).cached
    assert ex.warm() == 2 and len(ex.cache) == 4  # the guided toggle stays as it is
    assert ex.warm(guided=[False, True]) == 4 and len(ex.cache) == 8


def test_gradcam_explorer_guided_toggle_is_guided_gradcam(model, image):
    ex = widgets.gradcam_explorer(model, image, layers=["conv1", "relu2"], classes=[0, 2])
    plain = ex.set(layer="relu2", target=2, guided=False)
    guided = ex.set(guided=True)
    assert not guided.cached and png(guided) != png(plain)
    np.testing.assert_allclose(
        guided.result, attribution.guided_gradcam(model, image, 2, layer="relu2")[0],
        rtol=1e-5, atol=1e-9)
    assert not np.allclose(guided.result, plain.result)
    opened = widgets.ATTRIBUTION_EXPLORERS["guided_gradcam"](model, image)
    assert opened.values()["guided"] is True


@pytest.mark.parametrize("method", ["saliency", "gradient_x_input", "guided_backprop"])
def test_smoothgrad_explorer_kinds_and_methods_are_the_noise_tunnel(model, image, method):
    ex = widgets.smoothgrad_explorer(model, image, target=1, max_samples=6, method=method)
    shown = {}
    for kind in ("smoothgrad", "smoothgrad_sq", "vargrad"):
        u = ex.set(noise_level=0.2, n_samples=6, kind=kind)
        shown[kind] = png(u)
        tunnel = attribution.noise_tunnel(getattr(attribution, method), kind, n_samples=6,
                                          noise_level=0.2)
        want = tunnel(model, image, 1)[0]
        np.testing.assert_allclose(u.result[5], want, rtol=1e-4, atol=1e-6 * np.abs(want).max())
    assert len(set(shown.values())) == 3  # the picture changes with the kind
    assert len(ex.grid()) == len(control_values(ex.controls["noise_level"]))  # kind, method kept
    other = "saliency" if method != "saliency" else "guided_backprop"
    moved = ex.set(kind="smoothgrad", method=other)
    assert not moved.cached and png(moved) != shown["smoothgrad"]
    assert ex.set(method=method).cached


def test_explorers_label_a_standin(model, image):
    from course_utils.models import registry

    registry.register(model, registry.ModelInfo(name="tiny", standin=True))
    try:
        for make in widgets.ATTRIBUTION_EXPLORERS.values():
            ex = make(model, image)
            texts = [t.get_text() for t in ex.figure.figure.texts]
            assert any("STAND-IN" in t for t in texts), make.__name__
    finally:
        registry.register(model, registry.ModelInfo(name="tiny"))


def test_explorer_refuses_a_batch(model):
    with pytest.raises(ValueError, match="one image"):
        widgets.integrated_gradients_explorer(model, images(2, size=24))


def test_display_bundle_carries_a_still_of_the_current_view(model, image):
    """Static HTML (nbconvert without widget state) falls back to the bundle's PNG: it must be
    the picture currently shown, and follow the sliders."""
    import base64

    ex = widgets.occlusion_explorer(model, image, windows=(4, 8), strides=(2, 4))
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"]) == png(ex.last)
    moved = ex.set(window=4, stride=2)
    still = base64.b64decode(ex._repr_mimebundle_()["image/png"])
    assert still == png(moved) and still != base64.b64decode(bundle["image/png"])
