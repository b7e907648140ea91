"""Figures of concept tests (:mod:`course_utils.concepts`): they take numbers and compute nothing.

- :func:`tcav_matrix`: TCAV scores of several concepts for several classes, the significant ones
  marked;
- :func:`projections`: where concept and random examples fall along a concept activation vector.

Examples
--------
>>> import numpy as np
>>> ax = tcav_matrix([[0.9, 0.1], [0.2, 0.95]], [[0.001, 0.3], [0.4, 0.002]],
...                  rows=["circle", "square"], cols=["mark A", "mark B"])
>>> [t.get_text() for t in ax.texts]
['0.90*', '0.10', '0.20', '0.95*']
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from course_utils.plotting import model_label


def tcav_matrix(scores, p_values, *, rows: Sequence[str], cols: Sequence[str],
                alpha: float = 0.05, ax=None, title: str = "", label: str = ""):
    """Draw TCAV scores as a matrix: one row per class, one column per concept; a score whose
    test against random concept vectors has ``p < alpha`` is marked with a star.

    Parameters
    ----------
    scores, p_values
        ``(len(rows), len(cols))`` arrays (:class:`course_utils.concepts.TCAVResult` ``.score``
        and ``.p_value``).
    rows, cols
        Names of the classes and of the concepts.
    label
        The model's label (``info(model).label``), written under the figure.

    Returns
    -------
    The matplotlib ``Axes``.
    """
    s = np.asarray(scores, dtype="float64")
    p = np.asarray(p_values, dtype="float64")
    shape = (len(rows), len(cols))
    for name, arr in (("scores", s), ("p_values", p)):
        if arr.shape != shape:
            raise ValueError(f"{name} has shape {arr.shape}; expected {shape}: one value per "
                             "class (row) and concept (column).")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 * len(cols) + 2, 0.8 * len(rows) + 1.2))
    ax.imshow(s, cmap="RdBu_r", vmin=0, vmax=1)
    for i in range(shape[0]):
        for j in range(shape[1]):
            star = "*" if p[i, j] < alpha else ""
            ax.text(j, i, f"{s[i, j]:.2f}{star}", ha="center", va="center", fontsize=10)
    ax.set_xticks(range(shape[1]), cols)
    ax.set_yticks(range(shape[0]), rows)
    ax.set_xlabel("concept")
    ax.set_ylabel("class")
    ax.set_title(title or f"TCAV score (* p < {alpha})")
    ax.figure.tight_layout(rect=(0, 0.05, 1, 1))
    model_label(ax.figure, label)
    return ax


def projections(concept, random, *, concept_name: str = "concept", ax=None, label: str = ""):
    """Histogram of the concept's and the random examples' activations projected on a CAV
    (``activations @ cav.vector``): a good CAV separates the two.

    Examples
    --------
    >>> ax = projections(np.array([2.0, 3.0]), np.array([0.0, 1.0]))
    >>> [p.get_label() for p in ax.patches[:1]] + [ax.get_legend().texts[0].get_text()]
    ['concept', 'concept']
    """
    c = np.asarray(concept, dtype="float64").ravel()
    r = np.asarray(random, dtype="float64").ravel()
    if c.size == 0 or r.size == 0:
        raise ValueError("Give at least one projection of each set.")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 2.6))
    bins = np.linspace(min(c.min(), r.min()), max(c.max(), r.max()), 25)
    ax.hist(c, bins=bins, alpha=0.6, label=concept_name)
    ax.hist(r, bins=bins, alpha=0.6, label="random")
    ax.set_xlabel("activation along the CAV")
    ax.set_ylabel("images")
    ax.legend()
    ax.figure.tight_layout(rect=(0, 0.05, 1, 1))
    model_label(ax.figure, label)
    return ax
