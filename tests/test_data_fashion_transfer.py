"""The helpers that turn Fashion-MNIST into a few-label task for an ImageNet network."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.data.fashion import as_photos, few_per_class


def test_few_per_class_draws_a_balanced_subset_without_repeats():
    labels = np.repeat(np.arange(10), 50)
    images = np.arange(500)  # image i is its own index: repeats and labels can be checked
    x, y = few_per_class(images, labels, 7, seed=3)
    assert np.bincount(y, minlength=10).tolist() == [7] * 10
    assert len(np.unique(x)) == 70 and np.array_equal(labels[x], y)
    x2, _ = few_per_class(images, labels, 7, seed=3)
    x3, _ = few_per_class(images, labels, 7, seed=4)
    assert np.array_equal(x, x2) and not np.array_equal(np.sort(x), np.sort(x3))


@pytest.mark.parametrize("bad, match", [(0, "whole number >= 1"), (2.5, "whole number"),
                                        (60, "fewer than per_class=60")])
def test_few_per_class_refuses_what_it_cannot_draw(bad, match):
    with pytest.raises(ValueError, match=match):
        few_per_class(np.arange(100), np.repeat(np.arange(2), 50), bad)


def test_as_photos_resizes_and_copies_the_grey_level_into_three_channels():
    img = np.zeros((1, 28, 28), np.uint8)
    img[0, :14] = 255  # top half white
    out = as_photos(img, 56)
    assert out.shape == (1, 56, 56, 3) and out.dtype == np.float32
    assert np.array_equal(out[..., 0], out[..., 2])
    assert out[0, :26].min() == 255 and out[0, 30:].max() == 0  # the edge stays in the middle
    assert 0 < out[0, 28, 0, 0] < 255  # bilinear: a grey row at the edge


@pytest.mark.parametrize("bad, match", [(np.zeros((2, 32, 32), np.uint8), r"\(N, 28, 28\)"),
                                        (np.zeros((2, 28, 28), np.float32), "uint8 pixels")])
def test_as_photos_says_what_it_expects(bad, match):
    with pytest.raises(ValueError, match=match):
        as_photos(bad, 64)
