"""Headless tests of the Score-CAM and RISE explorers: a control changes the map, a second
visit is served from the cache, and the maps are those of course_utils.attribution."""

from __future__ import annotations

import numpy as np
import test_widgets_attribution as shared

from course_utils import attribution, widgets

# The same 24 px model and image (noise with a bright square) as the other explorers' tests.
model, image, png = shared.model, shared.image, shared.png


def test_scorecam_explorer_channels_and_layer_change_the_map(model, image):
    ex = widgets.scorecam_explorer(model, image, target=1, layers=["conv1", "relu2"],
                                   channels=(2, 4))
    every = ex.last  # the first view: the deepest layer, every channel
    assert every.values == {"layer": "relu2", "max_channels": "all"}
    assert every.result["channels"] == 8
    np.testing.assert_allclose(every.result["map"],
                               attribution.scorecam(model, image, 1, layer="relu2")[0],
                               rtol=1e-5, atol=1e-7)
    few = ex.set(max_channels=2)
    assert not few.cached and few.result["channels"] == 2 and png(few) != png(every)
    assert not np.allclose(few.result["map"], every.result["map"])
    np.testing.assert_allclose(
        few.result["map"], attribution.scorecam(model, image, 1, layer="relu2",
                                                max_channels=2)[0], rtol=1e-5, atol=1e-7)
    shallow = ex.set(layer="conv1")
    assert not shallow.cached and not np.allclose(shallow.result["map"], few.result["map"])
    assert "masked forward passes" in ex.status_html.value
    assert ex.set(layer="relu2", max_channels="all").cached


def test_rise_explorer_masks_grid_and_p_keep_change_the_map(model, image):
    ex = widgets.rise_explorer(model, image, target=2, masks=(50, 200), grids=(2, 4),
                               p_keeps=(0.25, 0.5))
    first = ex.last
    assert first.values == {"n_masks": 200, "grid": 4, "p_keep": 0.5}
    np.testing.assert_allclose(
        first.result["map"],
        attribution.rise(model, image, 2, n_masks=200, grid=4, p_keep=0.5)[0],
        rtol=1e-5, atol=1e-6)
    coarse = ex.set(grid=2)
    assert not coarse.cached and png(coarse) != png(first)
    assert not np.allclose(coarse.result["map"], first.result["map"])
    # the shown mask keeps about p of the image
    sparse = ex.set(p_keep=0.25)
    assert sparse.result["mask"].mean() < coarse.result["mask"].mean() + 0.25
    assert not np.allclose(sparse.result["map"], coarse.result["map"])
    assert ex.set(grid=4, p_keep=0.5).cached
