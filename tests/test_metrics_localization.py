"""Pointing game and energy in a region on constructed maps with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import metrics


def square_mask(n=1, size=8, top=2, left=2, side=3):
    m = np.zeros((n, size, size), bool)
    m[:, top:top + side, left:left + side] = True
    return m


def test_pointing_game_hits_and_misses():
    mask = square_mask(3)
    maps = np.zeros((3, 8, 8))
    maps[0, 3, 3] = 5.0  # inside
    maps[1, 7, 7] = 5.0  # outside
    maps[2, 5, 5] = 5.0  # just outside (diagonal neighbour of the corner (4, 4))
    np.testing.assert_array_equal(metrics.pointing_game(maps, mask), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(metrics.pointing_game(maps, mask, tolerance=2), [1, 0, 1])


def test_pointing_game_ties_score_the_share_of_maxima_inside():
    mask = square_mask(2)
    maps = np.zeros((2, 8, 8))
    maps[0, 3, 3] = maps[0, 7, 7] = 1.0  # two equal maxima, one inside
    scores = metrics.pointing_game(maps, mask)
    assert scores[0] == pytest.approx(0.5)
    assert scores[1] == pytest.approx(9 / 64)  # a flat map scores the mask's area (chance)
    assert metrics.chance_level(mask)[0] == pytest.approx(9 / 64)


def test_energy_in_mask_analytic():
    mask = square_mask(1)
    maps = np.ones((1, 8, 8))
    maps[0, 2:5, 2:5] = 3.0  # 9 pixels of 3 inside, 55 pixels of 1 outside
    assert metrics.energy_in_mask(maps, mask)[0] == pytest.approx(27 / (27 + 55))
    maps[0, 0, 0] = -100.0  # negative evidence does not count as positive energy
    assert metrics.energy_in_mask(maps, mask)[0] == pytest.approx(27 / (27 + 54))
    assert metrics.energy_in_mask(maps, mask, part="absolute")[0] == pytest.approx(
        27 / (27 + 54 + 100))
    # a uniform map and an all-zero map both score the area fraction
    assert metrics.energy_in_mask(np.ones((1, 8, 8)), mask)[0] == pytest.approx(9 / 64)
    assert metrics.energy_in_mask(np.zeros((1, 8, 8)), mask)[0] == pytest.approx(9 / 64)


def test_one_mask_for_all_maps():
    mask = square_mask(1)[0]
    maps = np.zeros((4, 8, 8))
    maps[:, 3, 3] = 1.0
    np.testing.assert_array_equal(metrics.pointing_game(maps, mask), np.ones(4))


@pytest.mark.parametrize("maps, masks, message", [
    (np.zeros((2, 8, 8)), square_mask(3), "shape"),
    (np.zeros((2, 8, 7)), square_mask(2), "shape"),
    (np.full((1, 8, 8), np.nan), square_mask(1), "NaN"),
    (np.zeros((1, 8, 8)), np.zeros((1, 8, 8), bool), "empty"),
    (np.zeros((1, 8, 8)), np.full((1, 8, 8), 0.5), "boolean"),
])
def test_bad_input(maps, masks, message):
    with pytest.raises(ValueError, match=message):
        metrics.pointing_game(maps, masks)
    with pytest.raises(ValueError, match=message):
        metrics.energy_in_mask(maps, masks)


def test_bad_options():
    with pytest.raises(ValueError, match="tolerance"):
        metrics.pointing_game(np.zeros((1, 8, 8)), square_mask(1), tolerance=-1)
    with pytest.raises(ValueError, match="part"):
        metrics.energy_in_mask(np.zeros((1, 8, 8)), square_mask(1), part="negative")
