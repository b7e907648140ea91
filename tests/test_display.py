"""The one display layer: the model label, the image helper, mask outlines and the persistent
canvas of the explorers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_utils import plotting  # noqa: E402
from course_utils.models import registry  # noqa: E402
from course_utils.widgets._draw import Canvas  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _tiny(name: str) -> keras.Model:
    return keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(2)], name=name)


def test_model_label_warns_for_a_random_weight_model_once_and_is_silent_for_a_trained_one():
    standin, trained = _tiny("standin"), _tiny("trained")
    registry.register(standin, registry.ModelInfo(name="standin", standin=True))
    fig = plt.figure()
    first = plotting.model_label(fig, standin)
    assert "STAND-IN" in first.get_text() and first.get_text() == registry.STANDIN_LABEL
    assert plotting.model_label(fig, standin) is first and len(fig.texts) == 1
    assert plotting.model_label(plt.figure(), trained) is None
    note = "VGG16 shown as EfficientNet-Lite0"
    registry.register(trained, registry.ModelInfo(name="trained", note=note))
    assert plotting.model_label(plt.figure(), trained).get_text() == note


def test_show_image_draws_grey_and_rgb_and_outlines_the_mask():
    _, (a, b) = plt.subplots(1, 2)
    grey = np.random.default_rng(0).random((8, 8, 1))
    shown = plotting.show_image(a, grey)
    assert shown.get_cmap().name == "gray" and shown.get_array().shape == (8, 8)
    np.testing.assert_allclose(shown.get_array(), grey[..., 0])
    mask = np.zeros((8, 8), bool)
    mask[2:6, 2:6] = True
    rgb = np.random.default_rng(1).random((8, 8, 3))
    np.testing.assert_allclose(plotting.show_image(b, rgb, mask=mask).get_array(), rgb)
    assert len(b.collections) == 1 and not a.collections  # the outline is a contour
    with pytest.raises(ValueError, match="one mask"):
        plotting.outline(b, np.zeros((2, 8, 8)))


def test_show_maps_outlines_every_panel_of_a_row_and_writes_captions():
    x = np.random.default_rng(0).random((2, 8, 8, 3))
    masks = np.zeros((2, 8, 8), bool)
    masks[0, 1:4, 1:4] = True  # image 1 has an empty mask: nothing to outline
    maps = {"saliency": np.random.default_rng(1).random((2, 8, 8))}
    fig = plotting.show_maps(x, maps, masks=masks, captions={"saliency": ["", "rho = 0.12"]},
                             alpha=1.0)
    row0, row1 = fig.axes[:2], fig.axes[2:]
    assert all(len(ax.collections) == 1 for ax in row0)
    assert not any(ax.collections for ax in row1)
    assert row1[1].get_xlabel() == "rho = 0.12" and row0[1].get_xlabel() == ""
    with pytest.raises(ValueError, match="one .* mask per image"):
        plotting.show_maps(x, maps, masks=masks[:1])
    with pytest.raises(ValueError, match="captions"):
        plotting.show_maps(x, maps, captions={"saliency": ["only one"]})


def test_show_panels_outlines_one_mask_for_every_panel():
    mask = np.zeros((8, 8), bool)
    mask[:4] = True
    fig = plotting.show_panels(np.zeros((8, 8, 3)), [None, np.ones((8, 8))], masks=mask,
                               show=False)
    assert [len(ax.collections) for ax in fig.axes] == [1, 1]
    with pytest.raises(ValueError, match="3 masks for 2 panels"):
        plotting.show_panels(np.zeros((8, 8, 3)), [None, None], masks=np.zeros((3, 8, 8)),
                             show=False)


def test_canvas_updates_in_place_with_the_plotting_conventions():
    image = np.random.default_rng(0).random((8, 8, 3))
    canvas = Canvas(2, image=image, overlay=[False, True], label=registry.STANDIN_LABEL)
    np.testing.assert_allclose(canvas.pictures[0].get_array(), image)
    np.testing.assert_allclose(canvas.pictures[1].get_array(), image.mean(axis=-1))
    heat = np.linspace(-1, 3, 64).reshape(8, 8)
    canvas.heat(1, heat, signed=True, title="signed")
    layer = canvas.heats[1]
    lim = np.percentile(np.abs(heat), 99)  # the 99th percentile of |map|, computed here
    assert layer.get_clim() == pytest.approx((-lim, lim))
    assert layer.get_cmap().name == plotting.DIVERGING_CMAP
    canvas.heat(1, np.abs(heat))
    assert canvas.heats[1] is layer and layer.get_cmap().name == plotting.SEQUENTIAL_CMAP
    assert layer.get_clim()[0] == 0.0 and canvas.axes[1].get_title() == "signed"
    canvas.picture(0, np.zeros((4, 4)), cmap="viridis", frame="red")  # another shape
    assert canvas.pictures[0].get_array().shape == (4, 4) and len(canvas.axes[0].images) == 1
    assert canvas.axes[0].spines["top"].get_visible()
    assert [t.get_text() for t in canvas.figure.texts] == [registry.STANDIN_LABEL]
    assert canvas.png()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="no picture"):
        Canvas(1).heat(0, heat)
    with pytest.raises(ValueError, match="one overlay flag per panel"):
        Canvas(2, image=image, overlay=[True])
