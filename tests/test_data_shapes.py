import numpy as np
import pytest

from course_utils import data
from course_utils.data import synthetic as shapes_mod


def test_same_seed_same_data_other_seed_other_data():
    a = data.shapes(16, seed=3)
    b = data.shapes(16, seed=3)
    c = data.shapes(16, seed=4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.images, c.images)


def test_mask_covers_exactly_one_uniformly_coloured_object():
    images, labels, masks = data.shapes(32, seed=0)
    assert images.dtype == np.float32 and 0 <= images.min() and images.max() <= 1
    for img, mask in zip(images, masks):
        inside = img[mask]
        assert 20 < mask.sum() < 64 * 64 / 8
        assert np.ptp(inside, axis=0).max() == 0  # one flat colour: the object, nothing else


def test_mask_shape_matches_the_label():
    """Circles fill about pi/4 of their box, squares all of it, triangles about half."""
    images, labels, masks = data.shapes(90, seed=1)
    fill = []
    for mask in masks:
        rows, cols = np.nonzero(mask)
        box = (np.ptp(rows) + 1) * (np.ptp(cols) + 1)
        fill.append(mask.sum() / box)
    fill = np.asarray(fill)
    assert fill[labels == 1].min() > 0.95
    assert 0.7 < fill[labels == 0].mean() < 0.85
    assert 0.4 < fill[labels == 2].mean() < 0.65


def test_labels_are_balanced():
    _, labels, _ = data.shapes(600, seed=2)
    assert np.bincount(labels).min() > 150


def test_correlated_watermark_encodes_the_label_and_shuffled_does_not():
    corr = data.shapes(300, seed=0, spurious=True)
    shuf = data.shapes(300, seed=0, spurious="shuffled")
    none = data.shapes(10, seed=0)
    assert not none.watermark_masks.any()

    def position(wmask):
        col = np.nonzero(wmask.any(axis=0))[0][0]
        return [c for _, c in shapes_mod.WATERMARK_POSITIONS].index(col)

    pos_corr = np.array([position(w) for w in corr.watermark_masks])
    pos_shuf = np.array([position(w) for w in shuf.watermark_masks])
    assert (pos_corr == corr.labels).all()
    assert 0.2 < (pos_shuf == shuf.labels).mean() < 0.47
    # the watermark never overlaps the object
    assert not (corr.watermark_masks & corr.masks).any()


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="positive integer"):
        data.shapes(0)
    with pytest.raises(ValueError, match="'shuffled'"):
        data.shapes(4, spurious="yes")


def test_shape_agreement_controls_how_often_the_object_matches_the_label():
    d = data.shapes(300, seed=5, spurious=True, shape_agreement=0.7)
    fill = np.array([m.sum() / ((np.ptp(np.nonzero(m)[0]) + 1) * (np.ptp(np.nonzero(m)[1]) + 1))
                     for m in d.masks])
    is_square = fill > 0.95
    agree_square = (is_square == (d.labels == 1)).mean()
    assert 0.75 < agree_square < 0.95  # squares are found where labels say, mostly not always
    full = data.shapes(300, seed=5, spurious=True)
    fill_full = np.array([m.sum() / ((np.ptp(np.nonzero(m)[0]) + 1) *
                                     (np.ptp(np.nonzero(m)[1]) + 1)) for m in full.masks])
    assert ((fill_full > 0.95) == (full.labels == 1)).all()
    with pytest.raises(ValueError, match="shape_agreement"):
        data.shapes(4, shape_agreement=1.5)
