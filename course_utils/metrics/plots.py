"""Figures of the metrics: they take numbers, never a model, and compute nothing.

- :func:`curves` and :func:`deletion_insertion`: deletion and insertion curves (probability of
  the class against the fraction of pixels removed or inserted), a reference ranking dashed;
- :func:`pointing_bars`: pointing-game accuracy per method, one bar per scoring, chance drawn;
- :func:`sanity_curves`: rank correlation with the original map against the randomization
  stage, one curve per method, the sanity threshold drawn;
- :func:`score_spread`: the spread of per-image scores, one box per method, one panel per score;
- :func:`agreement`: the method-by-method agreement matrix.

Every figure takes ``label=``: the label of the model the numbers come from,
``info(model).label`` (a stand-in's warning, or which network stands for which), shown under
the figure by ``course_utils.plotting.model_label``.

Examples
--------
>>> import numpy as np
>>> f = np.linspace(0, 1, 5)
>>> ax = curves(f, {"gradcam": 1 - f, "random": 1 - f / 2})
>>> [line.get_label() for line in ax.get_lines()]
['gradcam', 'random']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from course_utils.metrics.sanity import THRESHOLD
from course_utils.plotting import model_label

REFERENCE_STYLE = {"color": "black", "lw": 3, "ls": "--"}


def _vector(name: str, values, length: int | None = None, what: str = "") -> np.ndarray:
    v = np.asarray(values, dtype="float64")
    if v.ndim != 1:
        raise ValueError(f"{name}: expected one value per {what or 'point'} (a 1-D array), got "
                         f"shape {v.shape}.")
    if length is not None and len(v) != length:
        raise ValueError(f"{name} has {len(v)} values but there are {length} {what}; give "
                         "one value per point.")
    return v


def _fig_of(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _finish(fig, label: str):
    """Lay ``fig`` out, leaving room for the model's label under it, and write the label."""
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    model_label(fig, label)
    return fig


def curves(
    fractions,
    values: Mapping[str, np.ndarray],
    *,
    ax=None,
    reference: str | None = "random",
    xlabel: str = "fraction of pixels",
    ylabel: str = "p(class)",
    title: str = "",
    legend: bool = True,
):
    """One curve per method over ``fractions`` (e.g. a mean deletion curve).

    Parameters
    ----------
    fractions
        The x values, ``(S,)``.
    values
        ``{method: curve (S,)}``.
    ax
        Where to draw (default: a new figure).
    reference
        The name drawn as the yardstick (thick, black, dashed), if present.

    Returns
    -------
    The ``Axes`` with one line per method.

    Examples
    --------
    >>> f = np.linspace(0, 1, 3)
    >>> curves(f, {"saliency": [1.0, 0.5, 0.1]}).get_lines()[0].get_ydata().tolist()
    [1.0, 0.5, 0.1]
    """
    x = _vector("fractions", fractions)
    if not values:
        raise ValueError("Give at least one curve: {method: values}.")
    data = {name: _vector(f"curve {name!r}", v, len(x), "fractions") for name, v in
            values.items()}
    ax = _fig_of(ax, (6, 4))
    for name, y in data.items():
        style = REFERENCE_STYLE if name == reference else {"lw": 1.5}
        ax.plot(x, y, label=name, **style)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if legend:
        ax.legend(fontsize=7, loc="best")
    return ax


def _mean_curve(name: str, result) -> tuple[np.ndarray, np.ndarray]:
    """``(fractions, mean curve)`` of a ``metrics.Curves`` or of a ``(fractions, curve)`` pair."""
    if hasattr(result, "fractions") and hasattr(result, "mean_curve"):
        return np.asarray(result.fractions), np.asarray(result.mean_curve)
    if isinstance(result, (tuple, list)) and len(result) == 2:
        return np.asarray(result[0]), np.asarray(result[1])
    raise TypeError(f"{name!r}: expected a metrics.Curves (from metrics.deletion/insertion) or "
                    f"a (fractions, curve) pair, got {type(result).__name__}.")


def deletion_insertion(
    deletion: Mapping[str, object],
    insertion: Mapping[str, object] | None = None,
    *,
    reference: str | None = "random",
    label: str = "",
):
    """Deletion curves (lower = better) and, beside them, insertion curves (higher = better).

    Parameters
    ----------
    deletion, insertion
        ``{method: metrics.Curves}`` as returned by ``metrics.deletion`` and
        ``metrics.insertion`` (their mean curve is drawn), or ``{method: (fractions, curve)}``.
    reference
        The yardstick ranking (drawn thick and dashed), e.g. ``"random"``.

    Returns
    -------
    The ``Figure``: deletion on the left, insertion on the right.

    Examples
    --------
    >>> f = np.linspace(0, 1, 4)
    >>> fig = deletion_insertion({"a": (f, 1 - f)}, {"a": (f, f)})
    >>> [ax.get_title() for ax in fig.axes]
    ['deletion (lower = better)', 'insertion (higher = better)']
    """
    panels = [("deletion", deletion, "removed", "lower")]
    if insertion is not None:
        panels.append(("insertion", insertion, "inserted", "higher"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (kind, results, verb, better) in zip(axes[0], panels):
        pairs = {name: _mean_curve(name, r) for name, r in results.items()}
        if not pairs:
            raise ValueError(f"Give at least one {kind} curve: {{method: curves}}.")
        fractions = next(iter(pairs.values()))[0]
        for name, (f, _) in pairs.items():
            if f.shape != fractions.shape or not np.allclose(f, fractions):
                raise ValueError(f"{kind} curve {name!r} has other fractions than the first "
                                 "curve; compute every method with the same steps.")
        curves(fractions, {name: c for name, (_, c) in pairs.items()}, ax=ax,
               reference=reference, xlabel=f"fraction of pixels {verb}",
               title=f"{kind} ({better} = better)", legend=False)
    axes[0, -1].legend(fontsize=7, loc="lower right" if insertion is not None else "best")
    return _finish(fig, label)


def _mean(values) -> float:
    v = np.asarray(values, dtype="float64")
    return float(np.nanmean(v)) if v.ndim else float(v)


def pointing_bars(
    scores: Mapping[str, Mapping[str, object]],
    *,
    chance: float | None = None,
    ax=None,
    title: str = "pointing game",
    ylabel: str = "share of hits",
    label: str = "",
):
    """Pointing-game accuracy per method: one group of bars per method, one bar per scoring.

    Parameters
    ----------
    scores
        ``{scoring: {method: score}}``, e.g. ``{"strict": ..., "4 px tolerance": ...}``; a
        score is a number or the per-image hits (their mean is the bar). Every scoring must
        name the same methods.
    chance
        The chance level, drawn as a dashed line.

    Returns
    -------
    The ``Axes`` of the bars.

    Examples
    --------
    >>> ax = pointing_bars({"strict": {"gradcam": 0.8, "saliency": 0.5}}, chance=0.1)
    >>> [float(b.get_height()) for b in ax.patches]
    [0.8, 0.5]
    """
    if not scores:
        raise ValueError("Give at least one scoring: {scoring: {method: score}}.")
    methods = list(next(iter(scores.values())))
    for scoring, per_method in scores.items():
        if list(per_method) != methods:
            raise ValueError(f"Scoring {scoring!r} has methods {list(per_method)}; every scoring "
                             f"must give the same methods, in the same order: {methods}.")
    ax = _fig_of(ax, (max(6.0, 0.9 * len(methods) + 2), 3.8))
    x = np.arange(len(methods))
    width = 0.8 / len(scores)
    for k, (scoring, per_method) in enumerate(scores.items()):
        heights = [_mean(per_method[m]) for m in methods]
        ax.bar(x - 0.4 + (k + 0.5) * width, heights, width, label=scoring)
    if chance is not None:
        ax.axhline(float(chance), color="black", ls="--", lw=1, label="chance")
    ax.set_xticks(x, methods, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel=ylabel, title=title, ylim=(0, 1.05))
    ax.legend(fontsize=7, loc="lower right")
    _finish(ax.figure, label)
    return ax


def sanity_curves(
    correlations: Mapping[str, np.ndarray],
    stages: Sequence[str],
    *,
    threshold: float | None = THRESHOLD,
    ax=None,
    title: str = "cascading randomization",
    ylabel: str = "rank correlation with the original |map|",
    label: str = "",
):
    """Cascading randomization: each method's similarity to its original map, stage by stage.

    Parameters
    ----------
    correlations
        ``{method: mean rank correlation per stage (S,)}``, e.g.
        ``SanityResult.mean_correlation(method)``; stage 0 is the original model.
    stages
        ``S`` tick labels (the original model, then the layers randomized so far).
    threshold
        A method above it once every layer is random fails the check (dashed line).

    Returns
    -------
    The ``Axes`` with one curve per method.

    Examples
    --------
    >>> ax = sanity_curves({"saliency": [1.0, 0.4, 0.1]}, ["original", "+logits", "+conv"])
    >>> ax.get_lines()[0].get_ydata().tolist(), ax.get_xticklabels()[1].get_text()
    ([1.0, 0.4, 0.1], '+logits')
    """
    stages = [str(s) for s in stages]
    if not correlations:
        raise ValueError("Give at least one method: {method: correlation per stage}.")
    data = {name: _vector(f"correlations[{name!r}]", v, len(stages), "stages")
            for name, v in correlations.items()}
    ax = _fig_of(ax, (9, 4))
    depth = np.arange(len(stages))
    for name, y in data.items():
        ax.plot(depth, y, "o-", label=name)
    if threshold is not None:
        ax.axhline(threshold, color="black", ls="--", lw=1)
    ax.set_xticks(depth, stages, rotation=30)
    ax.set(ylabel=ylabel, ylim=(-0.2, 1.05), title=title)
    ax.legend(fontsize=7, ncol=2 if len(data) > 5 else 1)
    _finish(ax.figure, label)
    return ax


def score_spread(
    panels: Mapping[str, Mapping[str, np.ndarray]],
    *,
    order: Sequence[str] | None = None,
    lines: Mapping[str, float] | None = None,
    label: str = "",
):
    """The spread over images of several scores: one panel per score, one box per method.

    Parameters
    ----------
    panels
        ``{panel title: {method: per-image scores}}``; NaNs are left out.
    order
        The methods, top to bottom (default: in order of first appearance); every panel keeps
        a method's row, empty where the panel has no scores for it.
    lines
        ``{panel title: x}``: a dashed vertical line (e.g. the sanity threshold).

    Returns
    -------
    The ``Figure``, one panel per score.

    Examples
    --------
    >>> scores = {"energy": {"a": [0.2, 0.4], "b": [0.5, np.nan]}}
    >>> fig = score_spread(scores, lines={"energy": 0.3})
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['a', 'b']
    """
    if not panels:
        raise ValueError("Give at least one panel: {title: {method: scores}}.")
    unknown = set(lines or {}) - set(panels)
    if unknown:
        raise ValueError(f"lines name panels {sorted(unknown)} that are not among "
                         f"{list(panels)}.")
    if order is None:
        order = list(dict.fromkeys(name for values in panels.values() for name in values))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.75 * len(panels), 4), sharey=True,
                             squeeze=False)
    row = {name: i + 1 for i, name in enumerate(order)}  # one row per method in every panel
    for ax, (title, values) in zip(axes[0], panels.items()):
        keys = [k for k in order if k in values]
        data = [_vector(f"{title}: {k}", values[k]) for k in keys]
        ax.boxplot([d[np.isfinite(d)] for d in data], orientation="horizontal",
                   positions=[row[k] for k in keys])
        ax.set_title(title, fontsize=9)
        if lines and title in lines:
            ax.axvline(lines[title], color="black", ls="--", lw=1)
    axes[0, 0].set_yticks(list(row.values()), list(row))
    axes[0, 0].set_ylim(len(row) + 0.5, 0.5)  # the first method on top
    return _finish(fig, label)


def agreement(names: Sequence[str], matrix, *, ax=None, label: str = ""):
    """The agreement matrix of ``metrics.agreement_matrix``: colour and value in every cell.

    Parameters
    ----------
    names
        The methods, in the order of the matrix's rows.
    matrix
        ``(M, M)`` mean rank correlations in ``[-1, 1]``.

    Returns
    -------
    The ``Axes`` of the matrix.

    Examples
    --------
    >>> ax = agreement(["a", "b"], [[1.0, 0.3], [0.3, 1.0]])
    >>> ax.images[0].get_array().shape, ax.texts[1].get_text()
    ((2, 2), '0.3')
    """
    m = np.asarray(matrix, dtype="float64")
    names = list(names)
    if m.shape != (len(names), len(names)):
        raise ValueError(f"Expected a square matrix with one row per method ({len(names)}), "
                         f"got shape {m.shape}.")
    ax = _fig_of(ax, (6.5, 5.5))
    im = ax.imshow(m, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{m[i, j]:.1f}", ha="center", va="center", fontsize=7)
    ax.figure.colorbar(im, ax=ax, label="mean rank correlation")
    _finish(ax.figure, label)
    return ax
