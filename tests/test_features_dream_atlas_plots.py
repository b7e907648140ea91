"""course_utils.features: DeepDream, the channel atlas (explorer cache), and the figures."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib

matplotlib.use("Agg")

import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_utils.features import (  # noqa: E402
    ChannelAtlas,
    activations,
    atlas,
    deepdream,
    depth_summary,
    plotting,
    visualize,
)
from course_utils.models.registry import STANDIN_LABEL, ModelInfo, info, register  # noqa: E402

SETTINGS = {"steps": 5, "size": 16, "progress": False}


def _net(name, hw=(None, None)):
    keras.utils.set_random_seed(3)
    inp = keras.Input((*hw, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(5, 3, activation="relu", name="c2")(x)
    return keras.Model(inp, x, name=name)


@pytest.fixture(scope="module")
def net():
    return _net("dreamer")


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :40]
    img = 0.5 + 0.3 * np.sin(xx / 4.0)[..., None] * np.array([1.0, 0.5, 0.2])
    return np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1).astype("float32")


def _layer_loss(model, image, layer):
    a = activations(model, image, [layer])[layer]
    return float(np.mean(a**2))


def test_deepdream_amplifies_the_layer(net, photo):
    dream = deepdream(net, photo, "c2", octaves=3, steps=8, progress=False)
    assert dream.shape == photo.shape and dream.dtype == np.float32
    assert 0.0 <= dream.min() and dream.max() <= 1.0
    assert _layer_loss(net, dream, "c2") > 1.2 * _layer_loss(net, photo, "c2")
    again = deepdream(net, photo, "c2", octaves=3, steps=8, progress=False)
    np.testing.assert_array_equal(dream, again)  # deterministic given the seed
    other = deepdream(net, photo, "c2", octaves=3, steps=8, progress=False, seed=1)
    assert np.abs(other - dream).max() > 1e-4


def test_deepdream_weights_pixel_space_and_fixed_models(photo):
    model = _net("dream255")
    register(model, ModelInfo(name="dream255", preprocess=lambda x: x / 255.0, pixel_max=255.0))
    dream = deepdream(model, photo * 255, {"c1": 1.0, "c2": 0.5}, octaves=2, steps=3,
                      progress=False)
    assert dream.max() > 2.0 and dream.max() <= 255.0
    fixed = _net("fixed", hw=(16, 16))
    assert deepdream(fixed, photo, "c1", octaves=2, steps=2, progress=False).shape == photo.shape


def test_deepdream_bad_input(net, photo):
    with pytest.raises(ValueError, match="octave_scale must be > 1"):
        deepdream(net, photo, "c1", octave_scale=1.0, progress=False)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        deepdream(net, photo, "c1", steps=0, progress=False)
    with pytest.raises(ValueError, match="one photo"):
        deepdream(net, np.stack([photo, photo]), "c1", progress=False)
    with pytest.raises(ValueError, match="no layer named"):
        deepdream(net, photo, "nope", progress=False)


@pytest.fixture
def counted(monkeypatch):
    """The channels of every ``visualize`` run the atlas makes, and the real ``visualize``."""
    calls = []
    real = atlas.visualize

    def counting(*args, **kwargs):
        calls.append(list(args[2]))
        return real(*args, **kwargs)

    monkeypatch.setattr(atlas, "visualize", counting)
    return calls, real


def test_atlas_serves_pages_from_one_batched_run(net, counted):
    calls, real = counted
    book = ChannelAtlas(net, page_size=3, **SETTINGS)
    pic = book.get("c2", 1)
    assert calls == [[0, 1, 2]]
    book.get("c2", 2)
    book.get("c2", 0)
    assert len(calls) == 1  # served from memory
    assert book.computed("c2") == [0, 1, 2]
    book.get("c2", 4)
    assert calls[-1] == [3, 4]
    # same pictures as a direct run (each unit has its own seed)
    direct = real(net, "c2", [1], **SETTINGS)
    np.testing.assert_allclose(pic, direct.images[0], atol=2e-4)
    assert book.layer("c2").shape == (5, 16, 16, 3)
    with pytest.raises(ValueError, match="valid indices are 0..4"):
        book.get("c2", 5)


def test_atlas_keeps_the_pictures_of_its_visualize_run(net, counted):
    calls, real = counted
    book = ChannelAtlas(net, page_size=4, **SETTINGS)
    vis = book.visualize("c2", [0, 2])
    assert calls == [[0, 2]] and vis.units == [0, 2] and book.computed("c2") == [0, 2]
    np.testing.assert_array_equal(book.get("c2", 2), vis.images[1])  # a lookup, no new run
    assert len(calls) == 1
    book.get("c2", 3)  # the rest of the page: only the channels not yet kept
    assert calls[-1] == [1, 3] and book.computed("c2") == [0, 1, 2, 3]
    direct = real(net, "c2", [0, 1, 2, 3], **SETTINGS)  # one run of the whole page
    np.testing.assert_allclose(book.layer("c2", range(4)), direct.images, atol=2e-4)


def test_atlas_on_disk(net, tmp_path, monkeypatch):
    first = ChannelAtlas(net, cache="disk", folder=tmp_path, page_size=4, **SETTINGS)
    pic = first.get("c1", 2)
    assert len(list(tmp_path.glob("*.npz"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("should have been read from disk")

    monkeypatch.setattr(atlas, "visualize", fail)
    second = ChannelAtlas(net, cache="disk", folder=tmp_path, page_size=4, **SETTINGS)
    np.testing.assert_array_equal(second.get("c1", 2), pic)
    with pytest.raises(ValueError, match="cache must be"):
        ChannelAtlas(net, cache="cloud")


def _texts(fig):
    return [t.get_text() for t in fig.texts] + [
        t.get_text() for ax in fig.axes for t in ax.texts
    ]


def test_figures_mark_dead_channels_and_show_the_standin_label(photo):
    model = _net("standin")
    register(model, ModelInfo(name="standin", standin=True))
    conv = model.get_layer("c1")
    kernel, bias = conv.get_weights()
    bias[1] = -100.0  # channel 1 can never fire
    conv.set_weights([kernel, bias])
    act = activations(model, photo, ["c1"])["c1"][0]  # computing, then plotting the data
    fig = plotting.plot_channels(act, layer="c1", label=info(model).label)
    texts = _texts(fig)
    sub = keras.Model(model.input, model.get_layer("c1").output)
    silent = sub.predict(photo[None], verbose=0)[0].max(axis=(0, 1)) <= 0
    assert silent[1] and texts.count("dead") == int(silent.sum())
    assert STANDIN_LABEL in texts
    fig2 = plotting.plot_depth_summary(depth_summary(model, photo))
    vis = visualize(model, "c2", [0, 1], **SETTINGS)
    fig3 = vis.plot()
    naive = visualize(model, "c2", [0, 1], method="naive", **SETTINGS)
    fig4 = plotting.plot_comparison([naive, vis])
    fig5 = plotting.plot_deepdream(photo, photo, model)
    for f in (fig2, fig3, fig4, fig5):
        assert STANDIN_LABEL in _texts(f)
    with pytest.raises(ValueError, match="one feature map"):
        plotting.plot_channels(np.zeros((2, 4, 4, 3)))
    plt.close("all")
