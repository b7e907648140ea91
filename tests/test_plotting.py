"""course_utils.plotting: overlays, grids, signed maps, pixel-space display, stand-in label."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import conv_gap_model  # noqa: E402

from course_utils import plotting  # noqa: E402
from course_utils.models import registry  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_percentile_clipping_keeps_outliers_from_washing_out_the_map():
    m = np.zeros((10, 10), "float32")
    m[:5] = 1.0
    m[0, 0] = 1000.0
    norm, signed = plotting.normalize(m, clip_percentile=2)
    assert not signed
    assert norm[0, 0] == 1.0 and norm[1, 1] == 1.0  # the outlier does not dim the rest
    norm_no_clip, _ = plotting.normalize(m, clip_percentile=0)
    assert norm_no_clip[1, 1] == pytest.approx(0.001)


def test_signed_map_uses_a_diverging_colormap_centred_on_zero():
    m = np.linspace(-1, 3, 64, dtype="float32").reshape(8, 8)
    ax = plotting.overlay(np.random.rand(8, 8, 3), m)
    shown = ax.images[-1]
    assert shown.get_cmap().name == plotting.DIVERGING_CMAP
    assert shown.get_clim() == (-1.0, 1.0)
    assert shown.get_array().min() < 0
    ax2 = plotting.overlay(np.random.rand(8, 8, 3), np.abs(m))
    assert ax2.images[-1].get_cmap().name == plotting.SEQUENTIAL_CMAP


def test_overlay_alpha_and_cmap_and_grayscale():
    ax = plotting.overlay(np.random.rand(8, 8, 1), np.random.rand(8, 8), cmap="viridis",
                          alpha=0.3)
    assert ax.images[0].get_cmap().name == "gray"
    assert ax.images[-1].get_cmap().name == "viridis" and ax.images[-1].get_alpha() == 0.3


def test_overlay_rejects_a_map_of_the_wrong_size():
    with pytest.raises(ValueError, match="does not match"):
        plotting.overlay(np.random.rand(8, 8, 3), np.random.rand(4, 4))


def test_grid_for_many_images_and_methods():
    x = np.random.rand(3, 8, 8, 3)
    fig = plotting.show_maps(x, {"gradcam": np.random.rand(3, 8, 8),
                                 "integrated_gradients": np.random.randn(3, 8, 8)},
                             titles=["a", "b", "c"])
    assert len(fig.axes) == 9
    assert fig.axes[1].get_title() == "gradcam"
    assert fig.axes[2].images[-1].get_cmap().name == plotting.DIVERGING_CMAP
    with pytest.raises(ValueError, match="2 maps for 3"):
        plotting.show_maps(x, {"m": np.random.rand(2, 8, 8)})


def test_shared_scale_shows_a_weaker_class_as_weaker():
    x = np.random.rand(2, 8, 8, 3)
    maps = np.stack([np.ones((8, 8)), 0.1 * np.ones((8, 8))]).astype("float32")
    fig = plotting.show_maps(x, {"gradcam": maps}, shared_scale=True)
    strong, weak = fig.axes[1].images[-1].get_array(), fig.axes[3].images[-1].get_array()
    assert weak.max() == pytest.approx(0.1 * strong.max())
    fig = plotting.show_maps(x, {"gradcam": maps})
    assert fig.axes[3].images[-1].get_array().max() == pytest.approx(1.0)


def test_images_are_shown_in_pixel_space_and_standin_is_labelled():
    model = registry.register(conv_gap_model(size=8), registry.ModelInfo(
        preprocess=lambda p: p / 127.5 - 1.0, pixel_max=255.0, standin=True))
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    x = pixels / 127.5 - 1.0
    fig = plotting.show_maps(x, {"saliency": np.random.rand(2, 8, 8)}, model=model)
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), pixels[0] / 255.0, atol=1e-5)
    assert registry.STANDIN_LABEL in [t.get_text() for t in fig.texts]
    ax = plotting.overlay(x[0], np.random.rand(8, 8), model=model)
    assert registry.STANDIN_LABEL in [t.get_text() for t in ax.figure.texts]


def test_display_images_take_priority():
    shown = plotting.to_display(np.zeros((8, 8, 3)), display_images=np.full((8, 8, 3), 255,
                                                                             np.uint8))
    np.testing.assert_allclose(shown, 1.0)


def test_show_panels_is_shown_once_in_a_notebook():
    """With show=True the figure is drawn and not returned: a returned Figure would be displayed
    a second time as the cell's result (every figure twice in the executed notebooks)."""
    from course_utils.widgets import show_panels

    maps = [None, np.random.default_rng(0).random((8, 8))]
    assert show_panels(np.zeros((8, 8, 3)), maps, ["image", "map"]) is None
    fig = show_panels(np.zeros((8, 8, 3)), maps, ["image", "map"], show=False)
    assert [ax.get_title() for ax in fig.axes] == ["image", "map"]
    assert len(fig.axes[1].images) == 2 and len(fig.axes[0].images) == 1  # overlay vs plain
