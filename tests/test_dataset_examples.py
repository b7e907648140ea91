"""features.top_patches against constructed ground truth.

The model's channels are known detectors (fixed kernels): channel 0 sums a 3x3 window (it
fires on a bright 3x3 square, most at its centre), channel 1 is a vertical-line detector (a
bright 1-pixel line scores 6 x its brightness, a uniform square 0). The dataset is faint noise
(<= 0.2) with squares and lines planted at known places, in known images, with known
brightness, so the order of the top patches, their positions, values and pixels are known
without running the code under test.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_utils import surgery
from course_utils.engine import kernels
from course_utils.features import top_patches
from course_utils.models.registry import ModelInfo, register

SIZE = 20
N = 40
#: (image, centre row, centre column, brightness) of the planted 3x3 squares, brightest first
SQUARES = [(17, 9, 4, 1.0), (3, 15, 15, 0.9), (30, 4, 12, 0.8), (8, 10, 10, 0.7),
           (25, 6, 7, 0.6), (12, 13, 3, 0.5)]
#: (image, centre row, column, brightness) of planted vertical lines (3 px long)
LINES = [(5, 10, 6, 0.9), (33, 3, 16, 0.8), (21, 16, 9, 0.7)]


def _detector() -> keras.Model:
    inp = keras.Input((SIZE, SIZE, 1))
    conv = keras.layers.Conv2D(3, 3, padding="same", use_bias=False, name="detect")
    x = conv(inp)
    kernel = np.zeros((3, 3, 1, 3), "float32")
    kernel[..., 0, 0] = 1.0  # box filter
    kernel[..., 0, 1] = np.array([-1.0, 2.0, -1.0])[None, :]  # vertical line
    kernel[..., 0, 2] = np.random.default_rng(5).normal(size=(3, 3))
    conv.set_weights([kernel])
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(2, 3, name="deeper")(x)
    out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    return register(keras.Model(inp, out, name="detector"), ModelInfo(name="detector"))


def _dataset(seed=0):
    images = np.random.default_rng(seed).uniform(0.0, 0.2, (N, SIZE, SIZE, 1)).astype("float32")
    for i, y, x, b in SQUARES:
        images[i, y - 1:y + 2, x - 1:x + 2] = b
    for i, y, x, b in LINES:
        images[i, y - 1:y + 2, x] = b
    return images


@pytest.fixture(scope="module")
def setup():
    return _detector(), _dataset()


def _same(a, b):
    for name in ("values", "images", "positions", "boxes", "patches"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.channels == b.channels and a.n_images == b.n_images


def test_planted_squares_and_lines_found_in_order(setup):
    model, images = setup
    r = top_patches(model, "detect", images, [0, 1], k=6, progress=False)
    assert r.channels == [0, 1] and r.n_images == N and r.k == 6
    # channel 0: the squares, brightest first, at their centres, value 9 x brightness
    assert r.images[0].tolist() == [s[0] for s in SQUARES]
    assert r.positions[0].tolist() == [[s[1], s[2]] for s in SQUARES]
    np.testing.assert_allclose(r.values[0], [9 * s[3] for s in SQUARES], rtol=1e-6)
    # the patch of a 3x3 same-padded conv unit is its 3x3 window: the square itself
    for j, (_, y, x, b) in enumerate(SQUARES):
        np.testing.assert_allclose(r.patches[0, j], np.full((3, 3, 1), b))
        assert r.boxes[0, j].tolist() == [y - 1, x - 1, y + 2, x + 2]
    # channel 1: the three lines first, brightest first, at their centres
    assert r.images[1, :3].tolist() == [line[0] for line in LINES]
    assert r.positions[1, :3].tolist() == [[line[1], line[2]] for line in LINES]
    # value: 2 x the line (6 x brightness) minus the noise in the columns beside it
    windows = [images[i, y - 1:y + 2, x - 1:x + 2, 0] for i, y, x, _ in LINES]
    expected = [2 * w[:, 1].sum() - w[:, 0].sum() - w[:, 2].sum() for w in windows]
    np.testing.assert_allclose(r.values[1, :3], expected, rtol=1e-5)
    assert np.all(r.values[1, 3:] < r.values[1, 2])
    assert np.all(np.diff(r.values, axis=1) <= 0)


def test_deeper_layer_patch_is_the_pooled_field(setup):
    """After a 2x2 max pooling a unit sees 4x4 pixels, starting one row and column before
    twice its position (the conv's padding): the planted square lies inside it."""
    model, images = setup
    r = top_patches(model, "pool", images, 0, k=3, progress=False)
    assert r.patches.shape == (1, 3, 4, 4, 1)
    for j, (i, y, x, b) in enumerate(SQUARES[:3]):
        assert r.images[0, j] == i
        py, px = y // 2, x // 2
        assert r.positions[0, j].tolist() == [py, px]
        top, left = 2 * py - 1, 2 * px - 1
        np.testing.assert_array_equal(r.patches[0, j], images[i, top:top + 4, left:left + 4])
        assert (r.patches[0, j] == b).sum() == 9  # the whole square is in the patch


def test_border_patch_is_filled_outside_the_image():
    model = _detector()
    images = _dataset(1)
    images[0, 0:3, 0:3] = 2.0  # a square in the corner, brighter than any other
    r = top_patches(model, "pool", images, 0, k=1, progress=False)
    assert r.images[0, 0] == 0 and r.positions[0, 0].tolist() == [0, 0]
    assert r.boxes[0, 0].tolist() == [0, 0, 3, 3]  # field (-1, -1, 3, 3) clipped
    patch = r.patches[0, 0, ..., 0]
    assert np.all(patch[0] == 0.0) and np.all(patch[:, 0] == 0.0)  # default fill: black
    np.testing.assert_array_equal(patch[1:, 1:], 2.0)
    grey = top_patches(model, "pool", images, 0, k=1, fill=0.5, progress=False)
    assert np.all(grey.patches[0, 0, 0] == 0.5)


def test_whole_field_skips_units_at_the_border():
    model = _detector()
    images = _dataset(1)
    images[0, 0:3, 0:3] = 2.0  # the brightest square, in the corner: its pool unit is (0, 0)
    images[5, 8:11, 8:11] = 1.5  # the next, inside: pool unit (4, 4), field rows 7-10
    every = top_patches(model, "pool", images, 0, k=2, progress=False)
    assert every.images[0].tolist() == [0, 5]
    inside = top_patches(model, "pool", images, 0, k=2, whole_field=True, progress=False)
    assert inside.images[0, 0] == 5 and inside.positions[0, 0].tolist() == [4, 4]
    assert inside.boxes[:, :, :2].min() >= 0 and inside.boxes[:, :, 2:].max() <= SIZE
    assert np.all(inside.positions >= 1) and np.all(inside.positions <= 8)  # field in 0..19
    tiny = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Conv2D(1, 3, padding="same",
                                                                          name="c")])
    with pytest.raises(ValueError, match="No unit of 'c' has its whole receptive field"):
        top_patches(tiny, "c", np.ones((1, 2, 2, 1)), 0, whole_field=True, progress=False)


def test_default_fill_is_what_preprocessing_maps_to_zero():
    """For a model whose preprocessing is (x - 127) / 128, padding stands for pixel 127."""
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((8, 8, 3)),
                          keras.layers.Conv2D(2, 5, padding="same", name="c")])
    register(m, ModelInfo(name="centred", pixel_max=255.0,
                          preprocess=lambda x: (x - 127.0) / 128.0))
    images = np.random.default_rng(0).uniform(0, 255, (4, 8, 8, 3)).astype("float32")
    r = top_patches(m, "c", images, [0, 1], k=2, progress=False)
    np.testing.assert_allclose(r.fill, [127.0] * 3, atol=1e-3)
    assert r.pixel_max == 255.0


def test_reduce_all_takes_several_positions_of_one_image():
    model = _detector()
    images = np.zeros((4, SIZE, SIZE, 1), "float32")
    images[2, 3:6, 3:6] = 1.0
    images[2, 12:15, 8:11] = 0.9
    images[1, 8:11, 8:11] = 0.5
    one = top_patches(model, "detect", images, 0, k=2, progress=False)
    assert one.images[0].tolist() == [2, 1]  # one patch per image
    every = top_patches(model, "detect", images, 0, k=2, reduce="all", progress=False)
    assert every.images[0].tolist() == [2, 2]
    assert every.positions[0].tolist() == [[4, 4], [13, 9]]


def test_ties_broken_by_image_then_row_then_column():
    model = _detector()
    images = np.zeros((6, SIZE, SIZE, 1), "float32")
    for i, (y, x) in zip([4, 1, 3], [(5, 5), (9, 9), (2, 12)]):
        images[i, y - 1:y + 2, x - 1:x + 2] = 1.0  # three equal squares
    images[3, 14:17, 1:4] = 1.0  # a second, equal one lower in image 3
    r = top_patches(model, "detect", images, 0, k=4, reduce="all", progress=False)
    assert r.images[0].tolist() == [1, 3, 3, 4]
    assert r.positions[0].tolist() == [[9, 9], [2, 12], [15, 2], [5, 5]]


def test_any_batching_gives_the_same_result(setup):
    model, images = _detector(), setup[1]
    kw = {"k": 5, "reduce": "all", "progress": False, "batch_size": 8}
    ref = top_patches(model, "pool", images, [0, 1, 2], **kw)
    for step in (1, 7, N):
        batches = (images[i:i + step] for i in range(0, N, step))  # a generator
        _same(top_patches(model, "pool", batches, [0, 1, 2], **kw), ref)
    labels = np.arange(N)
    batched = tf.data.Dataset.from_tensor_slices((images, labels)).batch(6)
    _same(top_patches(model, "pool", batched, [0, 1, 2], **kw), ref)
    single = tf.data.Dataset.from_tensor_slices(images)  # unbatched: one image per element
    _same(top_patches(model, "pool", single, [0, 1, 2], **kw), ref)
    _same(top_patches(model, "pool", list(images), [0, 1, 2], **kw), ref)
    # another batch_size: the same patches; values equal up to float32 round-off
    other = top_patches(model, "pool", images, [0, 1, 2], k=5, reduce="all", batch_size=3,
                        progress=False)
    np.testing.assert_array_equal(other.images, ref.images)
    np.testing.assert_allclose(other.values, ref.values, rtol=1e-5)
    # compiled once for the model, layer and input shape, whatever the channels and batching
    cache = surgery.model_cache(model, kernels.CACHE_NAME)
    assert [key.shape for key in cache if key.method == "top_patches"] == [(SIZE, SIZE, 1)]


def test_fewer_candidates_than_k(setup):
    model, images = setup
    r = top_patches(model, "detect", images[:3], 0, k=9, progress=False)
    assert r.k == 3 and sorted(r.images[0].tolist()) == [0, 1, 2]


def test_progress_bar(setup, capsys):
    model, images = setup
    top_patches(model, "detect", images, 0, k=1, batch_size=10, progress=True)
    assert "top patches of detect" in capsys.readouterr().err


def test_bad_input(setup):
    model, images = setup
    with pytest.raises(ValueError, match="no layer named 'nope'.*detect"):
        top_patches(model, "nope", images, 0)
    with pytest.raises(ValueError, match="no spatial"):
        top_patches(model, -1, images, 0)
    with pytest.raises(ValueError, match=r"Channel index 3 is out of range.*0\.\.2"):
        top_patches(model, "detect", images, [0, 3])
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        top_patches(model, "detect", images, 0, k=0)
    with pytest.raises(ValueError, match="reduce must be one of 'max', 'all'"):
        top_patches(model, "detect", images, 0, reduce="mean")
    for empty in (images[:0], iter([]), tf.data.Dataset.from_tensor_slices(images[:0])):
        with pytest.raises(ValueError, match="held no image"):
            top_patches(model, "detect", empty, 0, progress=False)
    with pytest.raises(ValueError, match="takes 20x20 images; got 8x8"):
        top_patches(model, "detect", np.zeros((2, 8, 8, 1)), 0, progress=False)
    bad = images[:2].copy()
    bad[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        top_patches(model, "detect", bad, 0, progress=False)
    with pytest.raises(TypeError, match="iterable of such batches"):
        top_patches(model, "detect", 3.0, 0, progress=False)
    with pytest.raises(ValueError, match="fill contains"):
        top_patches(model, "detect", images, 0, fill=np.nan, progress=False)


def test_plot_top_patches_shows_the_patches_and_outlines_the_image_part():
    import matplotlib.pyplot as plt

    from course_utils.features.plotting import plot_top_patches

    model = _detector()
    images = _dataset(1)
    images[0, 0:3, 0:3] = 2.0  # the corner square of test_border_patch_...
    r = top_patches(model, "pool", images, [0, 1], k=3, progress=False)
    mask = r.inside(0, 0)
    assert not mask[0].any() and not mask[:, 0].any() and mask[1:, 1:].all()
    assert r.inside(0, 1).all()  # the next square's field lies inside its image
    pictures = np.random.default_rng(0).uniform(size=(2, 6, 6, 1))
    fig = plot_top_patches(r, pictures)
    left, right = fig.axes
    assert [t.get_text() for t in left.get_yticklabels()] == ["ch 0", "ch 1"]
    shown_pictures = np.asarray(left.images[0].get_array())
    np.testing.assert_allclose(shown_pictures[:6, :, 0] if shown_pictures.ndim == 3
                               else shown_pictures[:6], pictures[0, ..., 0])
    mosaic = np.asarray(right.images[0].get_array())
    mosaic = mosaic[..., 0] if mosaic.ndim == 3 else mosaic
    for row in range(2):  # 4 px patches, 1 px apart
        for j in range(3):
            tile = mosaic[row * 5:row * 5 + 4, j * 5:j * 5 + 4]
            np.testing.assert_allclose(tile, np.clip(r.patches[row, j, ..., 0], 0, 1))
    texts = [t.get_text() for t in right.texts]
    assert texts == [f"{v:.3g}" for v in r.values.ravel()]
    frames = right.patches  # yellow frames around the image part of the filled patches
    assert len(frames) == sum(not r.inside(i, j).all() for i in range(2) for j in range(3))
    assert frames[0].get_xy() == (0.5, 0.5)  # the corner patch: filled row 0 and column 0
    assert (frames[0].get_width(), frames[0].get_height()) == (3, 3)
    plt.close(fig)
    with pytest.raises(ValueError, match="one picture per channel"):
        plot_top_patches(r, pictures[:1])


def test_nested_model_gives_the_same_patches(setup):
    """The detector as the base of a transfer-learning model: its layer is found inside."""
    model, images = setup
    base = keras.Model(model.inputs, model.get_layer("pool").output, name="base")
    outer = keras.Sequential([keras.Input((SIZE, SIZE, 1)), base,
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    kw = {"k": 4, "progress": False}
    _same(top_patches(outer, "base/pool", images, [0, 1], **kw),
          top_patches(model, "pool", images, [0, 1], **kw))
