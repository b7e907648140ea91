"""Do two explanations agree? Spearman rank correlation between maps, per image.

Two methods that explain the same prediction should rank the pixels in a similar order; the rank
correlation ignores the scale of the maps (a logit gradient and a probability difference are not
comparable numbers) and only compares orderings. The sanity checks use the same measure to ask
whether a map changes when the model is randomized.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import stats

from course_utils.metrics._checks import check_maps, check_pairs


def rank_correlation(a, b, *, absolute: bool = False) -> np.ndarray:
    """Spearman rank correlation between ``a[i]`` and ``b[i]`` for every map pair.

    Ties get their average rank (as in ``scipy.stats.spearmanr``). The correlation of a
    constant map with anything is undefined: it is ``NaN`` (an all-zero Grad-CAM map has no
    ordering to compare).

    Parameters
    ----------
    a, b
        Maps ``(N, H, W)`` (or one ``(H, W)`` each) of the same shape.
    absolute
        Compare ``|a|`` with ``|b|`` (importance regardless of sign), as Adebayo et al. (2018)
        do besides the signed comparison.

    Returns
    -------
    float64 ``(N,)`` in ``[-1, 1]`` (``NaN`` for a constant map).

    Examples
    --------
    >>> a = np.arange(9.0).reshape(1, 3, 3)
    >>> rank_correlation(a, a ** 3).tolist(), rank_correlation(a, -a).tolist()
    ([1.0], [-1.0])
    """
    a = check_maps(a, what="first maps")
    b = check_maps(b, what="second maps")
    check_pairs(a, b)
    if absolute:
        a, b = np.abs(a), np.abs(b)
    ra = stats.rankdata(a.reshape(len(a), -1), axis=1)
    rb = stats.rankdata(b.reshape(len(b), -1), axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    num = (ra * rb).sum(axis=1)
    den = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return np.clip(out, -1.0, 1.0)


def agreement_matrix(
    maps: Mapping[str, np.ndarray], *, absolute: bool = True
) -> tuple[list[str], np.ndarray]:
    """Mean (over images) rank correlation between the maps of every pair of methods.

    Parameters
    ----------
    maps
        ``{method name: maps (N, H, W)}``, all for the same images and targets.
    absolute
        Compare absolute values (default): signed methods (IG, occlusion, LIME) and unsigned
        ones (saliency, Grad-CAM) are then compared on importance.

    Returns
    -------
    names, matrix
        The method names and a symmetric ``(M, M)`` matrix with ones on the diagonal; images
        where a map is constant are left out of that pair's mean (``NaN`` if all are).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> m = rng.random((2, 4, 4))
    >>> names, mat = agreement_matrix({"a": m, "b": 2 * m, "c": -m}, absolute=False)
    >>> names, mat[0].round(2).tolist()
    (['a', 'b', 'c'], [1.0, 1.0, -1.0])
    """
    if not isinstance(maps, Mapping) or len(maps) < 1:
        raise TypeError("maps must be a dict {method name: maps (N, H, W)} with one entry or more.")
    names = list(maps)
    checked = {k: check_maps(v, what=f"maps of {k!r}") for k, v in maps.items()}
    mat = np.eye(len(names))
    for i, p in enumerate(names):
        for j in range(i + 1, len(names)):
            q = names[j]
            check_pairs(checked[p], checked[q], what=f"maps of {p!r} and {q!r}")
            r = rank_correlation(checked[p], checked[q], absolute=absolute)
            mat[i, j] = mat[j, i] = np.nan if np.all(np.isnan(r)) else np.nanmean(r)
    return names, mat
