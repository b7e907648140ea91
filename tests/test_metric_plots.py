"""course_utils.metrics.plots: the figures draw exactly the numbers they are given, take a
model's label, and refuse inputs that do not fit together."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_utils.metrics import Curves, plots  # noqa: E402
from course_utils.models.registry import STANDIN_LABEL  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _curves(mode: str, scores: np.ndarray) -> Curves:
    fractions = np.linspace(0.0, 1.0, scores.shape[1])
    return Curves(mode, fractions, scores, np.zeros(len(scores), int))


def test_deletion_and_insertion_lines_are_the_mean_curves():
    rng = np.random.default_rng(0)
    deletion = {"gradcam": _curves("deletion", rng.random((5, 6))),
                "random": _curves("deletion", rng.random((5, 6)))}
    insertion = {"gradcam": _curves("insertion", rng.random((5, 6))),
                 "random": _curves("insertion", rng.random((5, 6)))}
    fig = plots.deletion_insertion(deletion, insertion, label=STANDIN_LABEL)
    for ax, results in zip(fig.axes, (deletion, insertion)):
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert set(lines) == {"gradcam", "random"}
        for name, curve in results.items():
            # the mean over images, taken here by hand, not by Curves.mean_curve
            expected = [np.mean([row[s] for row in curve.scores]) for s in range(6)]
            np.testing.assert_allclose(lines[name].get_ydata(), expected)
            np.testing.assert_allclose(lines[name].get_xdata(), np.linspace(0, 1, 6))
        assert lines["random"].get_linestyle() == "--" and lines["gradcam"].get_linestyle() == "-"
    assert [t.get_text() for t in fig.texts] == [STANDIN_LABEL]


def test_curves_refuse_a_curve_of_another_length():
    with pytest.raises(ValueError, match="has 3 values but there are 4 fractions"):
        plots.curves(np.linspace(0, 1, 4), {"saliency": [1.0, 0.5, 0.0]})
    a = (np.linspace(0, 1, 4), np.zeros(4))
    b = (np.linspace(0, 1, 5), np.zeros(5))
    with pytest.raises(ValueError, match="other fractions"):
        plots.deletion_insertion({"a": a, "b": b})
    with pytest.raises(TypeError, match="metrics.Curves"):
        plots.deletion_insertion({"a": np.zeros(4)})


def test_pointing_bars_have_the_given_heights_and_the_chance_line():
    hits = np.array([1.0, 0.0, 1.0, 1.0])  # per-image hits: the bar is their share, 0.75
    ax = plots.pointing_bars({"strict": {"gradcam": 0.5, "saliency": hits},
                              "tolerant": {"gradcam": 0.9, "saliency": 1.0}}, chance=0.12)
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, [0.5, 0.75, 0.9, 1.0])
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["gradcam", "saliency"]
    chance = [line for line in ax.get_lines() if line.get_label() == "chance"]
    assert len(chance) == 1 and chance[0].get_ydata()[0] == pytest.approx(0.12)
    assert not ax.figure.texts  # no label given: a trained model shows none
    with pytest.raises(ValueError, match="same methods"):
        plots.pointing_bars({"strict": {"a": 1.0}, "tolerant": {"b": 1.0}})


def test_sanity_curves_draw_each_method_and_the_threshold():
    corr = {"saliency": [1.0, 0.5, 0.1], "gradcam_plus_plus": [1.0, 0.8, 0.7]}
    ax = plots.sanity_curves(corr, ["original", "+logits", "+conv2"], threshold=0.3,
                             label=STANDIN_LABEL)
    lines = {line.get_label(): line for line in ax.get_lines()}
    for name, values in corr.items():
        np.testing.assert_allclose(lines[name].get_ydata(), values)
    threshold = [line for name, line in lines.items() if name not in corr]
    assert len(threshold) == 1 and threshold[0].get_ydata()[0] == pytest.approx(0.3)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["original", "+logits", "+conv2"]
    assert STANDIN_LABEL in [t.get_text() for t in ax.figure.texts]
    with pytest.raises(ValueError, match="has 2 values but there are 3 stages"):
        plots.sanity_curves({"saliency": [1.0, 0.5]}, ["original", "+a", "+b"])


def _medians(ax) -> dict[float, float]:
    """{row: median} of the boxes of ``ax`` (median lines are drawn in colour C1)."""
    from matplotlib.colors import same_color

    return {float(np.mean(line.get_ydata())): float(line.get_xdata()[0])
            for line in ax.get_lines() if same_color(line.get_color(), "C1")}


def test_score_spread_boxes_leave_out_nans_and_draw_the_lines():
    energy = {"a": np.array([0.1, 0.2, 0.9]), "b": np.array([0.4, np.nan, 0.6, 0.8])}
    fig = plots.score_spread({"energy": energy, "rho": {"b": np.array([0.2, 0.6])}},
                             lines={"rho": 0.3})
    first, second = fig.axes
    assert _medians(first) == {1.0: 0.2, 2.0: pytest.approx(0.6)}  # finite values only
    assert _medians(second) == {2.0: pytest.approx(0.4)}  # "b" keeps its row
    assert [t.get_text() for t in first.get_yticklabels()] == ["a", "b"]
    assert any(tuple(line.get_xdata()) == (0.3, 0.3) for line in second.get_lines())
    assert not any(tuple(line.get_xdata()) == (0.3, 0.3) for line in first.get_lines())
    with pytest.raises(ValueError, match="not among"):
        plots.score_spread({"energy": energy}, lines={"rho": 0.3})


def test_agreement_matrix_shows_each_value_and_refuses_a_wrong_shape():
    m = np.array([[1.0, 0.25, -0.5], [0.25, 1.0, 0.0], [-0.5, 0.0, 1.0]])
    ax = plots.agreement(["a", "b", "c"], m)
    np.testing.assert_allclose(ax.images[0].get_array(), m)
    assert [t.get_text() for t in ax.texts][:3] == ["1.0", "0.2", "-0.5"]
    with pytest.raises(ValueError, match="one row per method"):
        plots.agreement(["a", "b"], m)
