"""Headless tests of the feature explorers: a slider move changes the picture, a revisit is served
from the cache without a new forward pass / optimization, and the shown data are the library's.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import conv_gap_model, images, nested_model

from course_utils import features
from course_utils.widgets.features import channel_explorer, visualization_explorer

# the package re-exports functions named like their modules: reach the modules themselves
act_module = sys.modules["course_utils.features.activations"]
atlas_module = sys.modules["course_utils.features.atlas"]


@pytest.fixture(scope="module")
def model():
    return conv_gap_model(size=16, classes=3)


@pytest.fixture(scope="module")
def image():
    return images(1, size=16, seed=4)[0]


def png(update) -> bytes:
    return update.shown.data


def counting(monkeypatch, module, name):
    calls = []
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def test_channel_explorer_one_forward_pass_and_slider_changes_picture(model, image, monkeypatch):
    calls = counting(monkeypatch, act_module, "activations")
    ex = channel_explorer(model, image, ["conv1", "relu2"])
    assert len(calls) == 1  # both layers from one pass, at construction
    first = ex.last
    assert first.result["layer"] == "conv1" and first.result["channel"] == 0
    u = ex.set(channel=3)
    assert not u.cached and png(u) != png(first)
    # the shown map is the library's activation of that channel
    ref = features.activations(model, image, ["conv1"])["conv1"][0, ..., 3]
    np.testing.assert_allclose(u.result["map"], ref, rtol=1e-5, atol=1e-6)
    v = ex.set(layer="relu2", channel=5)
    assert v.result["layer"] == "relu2" and png(v) != png(u)
    back = ex.set(layer="conv1", channel=3)  # a revisit: from the cache, same picture
    assert back.cached and png(back) == png(u)
    assert len(calls) == 1  # still no new forward pass
    assert ex.cache.hits >= 1


def test_channel_explorer_clamps_the_slider_to_the_layer(image):
    keras_model = nested_model(size=16)
    ex = channel_explorer(keras_model, image, ["base/b_conv1", "base/b_relu"])
    ex.set(channel=7)
    u = ex.set(layer="base/b_relu", channel=7)
    assert u.result["channel"] == 7 and u.result["map"].shape == (16, 16)
    assert ex.controls["channel"].max == 7


def test_channel_explorer_marks_dead_channels(model, image):
    ex = channel_explorer(model, image, ["relu2"])
    acts = features.activations(model, image, ["relu2"])["relu2"][0]
    dead = features.dead_channels(acts)
    for c in range(acts.shape[-1]):
        assert ex.set(channel=c).result["dead"] == bool(dead[c])


def test_channel_explorer_rejects_bad_input(model, image):
    with pytest.raises(ValueError, match="one image"):
        channel_explorer(model, np.stack([image, image]))
    with pytest.raises(ValueError, match="spatial"):
        channel_explorer(model, image, ["head"])
    with pytest.raises(ValueError, match="not among"):
        channel_explorer(model, image, ["conv1"], layer="relu2")


def test_visualization_explorer_serves_atlas_pages(monkeypatch):
    m = conv_gap_model(size=16, classes=3)
    calls = counting(monkeypatch, atlas_module, "visualize")
    atlas = features.ChannelAtlas(m, page_size=4, steps=4, size=16, progress=False)
    ex = visualization_explorer(atlas, "conv1", range(8))
    assert len(calls) == 1  # the first page (channels 0-3), drawn at construction
    first = ex.last
    u = ex.set(channel=2)  # same page: no new optimization
    assert len(calls) == 1 and png(u) != png(first)
    np.testing.assert_array_equal(u.result["picture"], atlas.get("conv1", 2))
    w = ex.set(channel=6)  # second page: one optimization for channels 4-7
    assert len(calls) == 2 and png(w) != png(u)
    back = ex.set(channel=2)
    assert back.cached and png(back) == png(u) and len(calls) == 2


def test_visualization_explorer_layer_menu_and_errors():
    m = conv_gap_model(size=16, classes=3)
    ex = visualization_explorer(m, ["conv1", "conv2"], [0, 1], page_size=2, steps=2, size=16,
                                progress=False)
    a = ex.set(layer="conv2", channel=1)
    assert np.array_equal(a.result["picture"], ex.atlas.get("conv2", 1))
    with pytest.raises(ValueError, match="out of range"):
        visualization_explorer(ex.atlas, "conv1", [0, 99])
    with pytest.raises(TypeError, match="ChannelAtlas or a keras.Model"):
        visualization_explorer("conv1", "conv1")
