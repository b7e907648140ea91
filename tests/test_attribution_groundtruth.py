"""Every method localizes the object on models trained on constructed ground truth: a tiny
squares model built here, and the course's own shapes CNN.

The dataset (``conftest.square_dataset``): grey noise with one coloured square whose colour is
the class, so the evidence for the class is exactly the square. Pointing game (Zhang et al.
2018): a hit when the map's maximum lies on the square or within 1 px of it (a 15 px tolerance
on 224 px images, scaled). Chance is the area of the grown square, about 11 % of the image.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from course_utils.attribution import METHODS

OPTIONS = {
    # Plain |gradient| is the known failure: the logit of this GAP model depends on the
    # brightness of every background pixel (a class-independent direction), so max-|grad|
    # saliency points anywhere. The signed gradient (positive evidence) points at the square.
    "saliency": {"reduce": "sum"},
    "smoothgrad": {"reduce": "sum", "n_samples": 16},
    "integrated_gradients": {"steps": 32},
    "occlusion": {"window": 4, "stride": 2},
    "lime": {"n_samples": 300, "segmentation": "slic",
             "segmentation_options": {"n_segments": 30, "compactness": 100}},
    "shap_gradients": {"n_samples": 64},
    "rise": {"n_masks": 500},
}


def pointing_game(maps, masks, tolerance=1):
    hits = [binary_dilation(m, iterations=tolerance).ravel()[np.argmax(a)]
            for a, m in zip(maps, masks, strict=True)]
    chance = np.mean([binary_dilation(m, iterations=tolerance).mean() for m in masks])
    return float(np.mean(hits)), float(chance)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_pointing_game_beats_chance(name, squares):
    model, x, y, masks, accuracy = squares
    assert accuracy > 0.9
    maps = METHODS[name](model, x, y, **OPTIONS.get(name, {}))
    hit, chance = pointing_game(maps, masks)
    assert hit >= max(0.4, 3 * chance), f"{name}: {hit:.2f} hits, chance {chance:.2f}"


def test_max_abs_saliency_is_the_documented_failure(squares):
    """Guard the claim made above: if it stops being true, the comment must change."""
    model, x, y, masks, _ = squares
    hit, chance = pointing_game(METHODS["saliency"](model, x, y), masks)
    signed, _ = pointing_game(METHODS["saliency"](model, x, y, reduce="sum"), masks)
    assert signed > hit


# ------------------------------------------------------------------ the course's shapes model

SHAPES_OPTIONS = {
    "smoothgrad": {"n_samples": 16},
    "integrated_gradients": {"steps": 32},
    "occlusion": {"window": 12, "stride": 2},
    "lime": {"n_samples": 200, "segmentation": "slic"},
    "shap_gradients": {"n_samples": 32},
    "rise": {"n_masks": 250},
}


@pytest.fixture(scope="module")
def shapes_truth():
    """24 correctly classified images of the course's shapes CNN (seed apart from its training
    and test splits), with their object masks."""
    from course_utils import data, models

    model = models.shapes_cnn()
    d = data.shapes(40, seed=2024)
    ok = model.predict(d.images, verbose=0).argmax(axis=1) == d.labels
    assert ok.mean() > 0.9
    idx = np.flatnonzero(ok)[:24]
    background = data.shapes(16, seed=99).images
    return model, d.images[idx], d.labels[idx], d.masks[idx], background


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_points_at_the_object_on_the_shapes_cnn(name, shapes_truth):
    """Strict pointing game (course_utils.metrics: the maximum on the object itself) at least
    three times chance (the object's area, about 7% of the image) for every method."""
    from course_utils import metrics

    model, x, y, masks, background = shapes_truth
    options = dict(SHAPES_OPTIONS.get(name, {}))
    if name == "shap_gradients":
        options["background"] = background
    maps = METHODS[name](model, x, y, **options)
    hit = metrics.pointing_game(maps, masks).mean()
    chance = metrics.chance_level(masks).mean()
    assert hit >= 3 * chance, f"{name}: {hit:.2f} hits, chance {chance:.2f}"
