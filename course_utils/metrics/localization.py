"""Localization against ground truth: does the map point at the object the label is about?

On the synthetic shapes dataset the object that decides the label is known pixel for pixel
(``course_utils.data.shapes`` returns its mask), and so is the watermark of the spurious variant.
Two classic scores compare a map with such a region:

- the **pointing game** (Zhang et al. 2018): is the map's maximum inside the region?
- the **energy in the region** (the "energy-based pointing game" of Score-CAM, Wang et al.
  2020): which share of the map's positive mass falls inside it?

Both work for any region mask: the object (a good explanation scores high) or a watermark (a
clever-Hans model's explanations score high there).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from course_utils.metrics._checks import check_maps, check_masks

PARTS = ("positive", "absolute")


def _dilate(masks: np.ndarray, tolerance: int) -> np.ndarray:
    if tolerance <= 0:
        return masks
    r = int(tolerance)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = (yy**2 + xx**2) <= r * r
    return np.stack([ndimage.binary_dilation(m, structure=disk) for m in masks])


def pointing_game(maps, masks, *, tolerance: int = 0) -> np.ndarray:
    """Hit (1) or miss (0) of each map's maximum in its region mask.

    When several pixels share the maximum (a flat map, an all-zero Grad-CAM), the score is the
    share of those pixels that lie inside the region: the expected hit of a random tie-break,
    so a constant map scores the region's area fraction (chance), not a free hit.

    Parameters
    ----------
    maps
        Attribution maps ``(N, H, W)``; larger = more important (pass ``np.abs(maps)`` to point
        with the magnitude of a signed map).
    masks
        Boolean regions ``(N, H, W)`` (or one ``(H, W)`` for all images).
    tolerance
        Count a maximum within this many pixels of the region as a hit (Zhang et al. use 15 px
        on 224 px images); 0 by default for the course's 64 px images.

    Returns
    -------
    float64 ``(N,)`` in ``[0, 1]``; the mean is the pointing-game accuracy.

    Examples
    --------
    >>> m = np.zeros((2, 4, 4)); m[0, 1, 1] = 1; m[1, 3, 3] = 1
    >>> mask = np.zeros((4, 4), bool); mask[:2, :2] = True
    >>> pointing_game(m, mask).tolist()
    [1.0, 0.0]
    """
    maps = check_maps(maps)
    masks = check_masks(masks, maps.shape)
    if isinstance(tolerance, bool) or int(tolerance) != tolerance or tolerance < 0:
        raise ValueError(f"tolerance must be a non-negative integer (pixels), got {tolerance!r}.")
    region = _dilate(masks, int(tolerance))
    top = maps == maps.max(axis=(1, 2), keepdims=True)
    return (top & region).sum(axis=(1, 2)) / top.sum(axis=(1, 2))


def energy_in_mask(maps, masks, *, part: str = "positive") -> np.ndarray:
    """Share of each map's mass that lies inside its region mask.

    ``E = sum_{p in region} m(p) / sum_p m(p)`` with ``m = max(map, 0)`` (``part="positive"``,
    the evidence *for* the class, as in Score-CAM's energy-based pointing game) or
    ``m = |map|`` (``part="absolute"``). A map without mass (all zero, or all negative with
    ``"positive"``) carries no localization: it scores the region's area fraction, the value of
    a uniform map (chance).

    Compare with the chance level ``masks.mean(axis=(1, 2))``: a map that spreads evenly over the
    image scores exactly the region's area fraction.

    Parameters
    ----------
    maps
        Attribution maps ``(N, H, W)``.
    masks
        Boolean regions ``(N, H, W)`` (or one ``(H, W)`` for all images): the object, or e.g. the
        watermark of the spurious shapes data.
    part
        ``"positive"`` (default) or ``"absolute"``.

    Returns
    -------
    float64 ``(N,)`` in ``[0, 1]``.

    Examples
    --------
    >>> m = np.array([[[3.0, 1.0], [0.0, -5.0]]])
    >>> mask = np.array([[True, False], [False, False]])
    >>> energy_in_mask(m, mask).tolist(), energy_in_mask(m, mask, part="absolute").tolist()
    ([0.75], [0.3333333333333333])
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}.")
    maps = check_maps(maps).astype("float64")
    masks = check_masks(masks, maps.shape)
    mass = np.maximum(maps, 0.0) if part == "positive" else np.abs(maps)
    total = mass.sum(axis=(1, 2))
    inside = (mass * masks).sum(axis=(1, 2))
    chance = masks.mean(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = inside / np.where(total > 0, total, 1.0)
    return np.where(total > 0, share, chance)


def chance_level(masks) -> np.ndarray:
    """The score of a uniform (uninformative) map: each region's area fraction.

    Examples
    --------
    >>> chance_level(np.eye(4, dtype=bool)[None]).tolist()
    [0.25]
    """
    arr = np.asarray(masks)
    if arr.ndim == 2:
        arr = arr[None]
    arr = check_masks(arr, arr.shape)
    return arr.mean(axis=(1, 2))
