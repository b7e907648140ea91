"""Rank correlation against scipy.stats.spearmanr; the agreement matrix."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from course_utils import metrics


def test_rank_correlation_equals_scipy_spearmanr_with_ties(rng):
    a = np.round(rng.normal(size=(4, 6, 6)), 1)  # rounding creates ties
    b = np.round(a + rng.normal(scale=0.8, size=a.shape), 1)
    ours = metrics.rank_correlation(a, b)
    ref = [stats.spearmanr(a[i].ravel(), b[i].ravel()).statistic for i in range(4)]
    np.testing.assert_allclose(ours, ref, rtol=1e-10)
    ours_abs = metrics.rank_correlation(a, b, absolute=True)
    ref_abs = [stats.spearmanr(np.abs(a[i]).ravel(), np.abs(b[i]).ravel()).statistic
               for i in range(4)]
    np.testing.assert_allclose(ours_abs, ref_abs, rtol=1e-10)


def test_rank_correlation_is_invariant_to_monotone_maps_and_nan_for_constants(rng):
    a = rng.random((2, 5, 5))
    np.testing.assert_allclose(metrics.rank_correlation(a, np.exp(3 * a)), 1.0)
    np.testing.assert_allclose(metrics.rank_correlation(a, -a), -1.0)
    r = metrics.rank_correlation(a, np.concatenate([a[:1], np.zeros((1, 5, 5))]))
    assert r[0] == pytest.approx(1.0) and np.isnan(r[1])


def test_agreement_matrix(rng):
    a = rng.random((3, 6, 6))
    b = a + 0.1 * rng.random(a.shape)
    c = rng.random(a.shape)
    names, mat = metrics.agreement_matrix({"a": a, "b": b, "c": c})
    assert names == ["a", "b", "c"]
    np.testing.assert_allclose(mat, mat.T)
    np.testing.assert_allclose(np.diag(mat), 1.0)
    assert mat[0, 1] == pytest.approx(metrics.rank_correlation(a, b, absolute=True).mean())
    assert mat[0, 1] > 0.8 and abs(mat[0, 2]) < 0.3


def test_bad_input():
    with pytest.raises(ValueError, match="shapes"):
        metrics.rank_correlation(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="NaN"):
        metrics.rank_correlation(np.full((1, 4, 4), np.nan), np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="shapes"):
        metrics.agreement_matrix({"a": np.zeros((2, 4, 4)), "b": np.zeros((3, 4, 4))})
    with pytest.raises(TypeError):
        metrics.agreement_matrix([np.zeros((2, 4, 4))])
