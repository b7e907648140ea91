"""Figures for the two feature lessons: channel grids, the depth summary, picture grids,
dataset examples.

Plotting takes data and computes nothing: activations come from
:func:`course_utils.features.activations` (``plot_channels(acts[layer][0], layer=layer,
label=info(model).label)``), pictures from :class:`~course_utils.features.Visualization` (any
object with the same fields will do; this module does not import ``visualize``). Every figure
carries the model's label through ``course_utils.plotting.model_label``, and every image is
drawn by ``course_utils.plotting.show_image``. Channel maps are min-max scaled per channel for
display only; the raw values stay in the arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import matplotlib.pyplot as plt
import numpy as np

from course_utils.features.activations import DepthSummary, dead_channels
from course_utils.models.registry import info
from course_utils.plotting import model_label, show_image


class Pictures(Protocol):
    """What the picture grids read (the fields of a ``features.Visualization``)."""

    images: np.ndarray
    units: list
    scores: np.ndarray
    method: str
    objective: str
    layer: str
    label: str


def _grid(n: int, ncols: int, cell: float = 1.4):
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols, cell * nrows + 0.6),
                             squeeze=False)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    return fig, axes.ravel()


def plot_channels(
    activation: np.ndarray,
    *,
    layer: str = "",
    label: str = "",
    ncols: int = 8,
    max_channels: int | None = 64,
    threshold: float = 0.0,
    cmap: str = "viridis",
):
    """A grid of every channel of one feature map, dead channels marked.

    Parameters
    ----------
    activation
        ``(H, W, C)`` feature map of one image (or ``(1, H, W, C)``).
    layer
        Layer name for the title.
    label
        Text shown under the figure (a stand-in's label).
    ncols, max_channels
        Grid width; show at most this many channels (``None``: all).
    threshold
        A channel whose values never exceed it is marked dead (red frame, "dead").

    Returns
    -------
    The matplotlib figure.

    Examples
    --------
    >>> fig = plot_channels(np.random.default_rng(0).uniform(size=(6, 6, 4)), layer="c")
    >>> len(fig.axes)
    4
    """
    a = np.asarray(activation)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 3:
        raise ValueError(
            f"plot_channels takes one feature map (H, W, C); got shape {a.shape}. "
            "A dense layer has no channel maps."
        )
    dead = dead_channels(a, threshold)
    n = a.shape[-1] if max_channels is None else min(a.shape[-1], max_channels)
    fig, axes = _grid(n, ncols)
    for c in range(n):
        ax = axes[c]
        m = a[..., c]
        lo, hi = float(m.min()), float(m.max())
        ax.imshow((m - lo) / (hi - lo) if hi > lo else np.zeros_like(m), cmap=cmap,
                  vmin=0, vmax=1)
        ax.set_title(str(c), fontsize=7, pad=1)
        if dead[c]:
            for side in ax.spines.values():
                side.set_color("red")
                side.set_linewidth(2)
            ax.text(0.5, 0.5, "dead", color="red", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
    shown = f"first {n} of {a.shape[-1]}" if n < a.shape[-1] else f"all {n}"
    fig.suptitle(
        f"{layer}: {a.shape[0]}x{a.shape[1]}, {shown} channels; "
        f"{int(dead.sum())} dead (red: zero everywhere on this image)",
        fontsize=10,
    )
    model_label(fig, label)
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    return fig


def plot_depth_summary(summary: DepthSummary):
    """Zero fraction, dead channels and input correlation per layer, from input to output.

    Examples
    --------
    >>> s = DepthSummary(["a", "b"], [(4, 4, 2), (2, 2, 2)], np.array([0.2, 0.6]),
    ...                  np.array([0.0, 0.5]), np.array([0.9, 0.3]))
    >>> len(plot_depth_summary(s).axes)
    1
    """
    x = np.arange(len(summary.layers))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(x) + 2), 3.8))
    ax.plot(x, summary.zero_fraction, "o-", label="fraction of zero activations")
    ax.plot(x, summary.dead_channels, "s--", label="fraction of dead channels")
    ax.plot(x, summary.input_corr, "^-", label="input still shows (|corr| with luminance)")
    ax.set_xticks(x)
    ax.set_xticklabels(summary.layers, rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("layer (input side -> output side)")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    model_label(fig, summary.label)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def plot_pictures(vis: Pictures, *, ncols: int = 8, scores: bool = True, title: str = ""):
    """A grid of the pictures of a :class:`~course_utils.features.Visualization` (one per unit).
    """
    n = len(vis.images)
    fig, axes = _grid(n, ncols, cell=1.6)
    for i in range(n):
        show_image(axes[i], vis.images[i])
        text = f"{vis.units[i]}" + (f"\n{vis.scores[i]:.3g}" if scores else "")
        axes[i].set_title(text, fontsize=7, pad=1)
    fig.suptitle(title or f"{vis.method}: {vis.objective} of {vis.layer}", fontsize=10)
    model_label(fig, vis.label)
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    return fig


def plot_comparison(visualizations: Sequence[Pictures], titles: Sequence[str] | None = None):
    """Rows of pictures of the same units made different ways (e.g. naive vs. lucid)."""
    if not visualizations:
        raise ValueError("Give at least one Visualization.")
    units = visualizations[0].units
    if any(v.units != units for v in visualizations):
        raise ValueError("All visualizations must show the same units.")
    titles = titles or [v.method for v in visualizations]
    rows, cols = len(visualizations), len(units)
    fig, axes = plt.subplots(rows, cols, figsize=(1.8 * cols + 1, 1.8 * rows + 0.6),
                             squeeze=False)
    for r, v in enumerate(visualizations):
        for k in range(cols):
            ax = axes[r, k]
            show_image(ax, v.images[k])
            if r == 0:
                ax.set_title(f"unit {units[k]}", fontsize=8)
            if k == 0:
                ax.set_ylabel(titles[r], fontsize=9)
    fig.suptitle(f"{visualizations[0].objective} of {visualizations[0].layer}", fontsize=10)
    model_label(fig, visualizations[0].label)
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    return fig


def plot_deepdream(original: np.ndarray, dreamed: np.ndarray, model=None,
                   title: str = "DeepDream"):
    """The photo and its dream side by side (pixel space of ``model``)."""
    pmax = float(info(model).pixel_max) if model is not None else float(max(np.max(original),
                                                                              1.0))
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.3))
    for ax, img, name in zip(axes, (original, dreamed), ("photo", title)):
        show_image(ax, np.clip(np.asarray(img, "float32") / pmax, 0, 1))
        ax.set_title(name, fontsize=10)
        ax.axis("off")
    model_label(fig, model)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


class Patches(Protocol):
    """What :func:`plot_top_patches` reads (the fields of a ``features.TopPatches``)."""

    layer: str
    channels: list
    values: np.ndarray
    patches: np.ndarray
    n_images: int
    pixel_max: float
    label: str

    def inside(self, row: int, j: int) -> np.ndarray: ...


def _mosaic(tiles: np.ndarray, gap: int) -> np.ndarray:
    """``(rows, cols, h, w, C)`` tiles as one image, ``gap`` white pixels between tiles."""
    rows, cols, h, w, c = tiles.shape
    out = np.ones((rows * (h + gap) - gap, cols * (w + gap) - gap, c), "float32")
    for r in range(rows):
        for j in range(cols):
            out[r * (h + gap):r * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = tiles[r, j]
    return out


def plot_top_patches(result: Patches, pictures: np.ndarray | None = None, *,
                     pictures_title: str = "visualization", values: bool = True,
                     title: str = "", cell: float = 1.0):
    """Dataset examples: one row per channel, its top patches (strongest first), optionally
    after the channel's feature visualization.

    The patches are drawn as one mosaic (and the pictures as another), so a figure of
    16 channels x 9 patches is two images, not 160 axes, and draws in well under a second.

    Parameters
    ----------
    result
        A :class:`~course_utils.features.TopPatches` (:func:`~course_utils.features.
        top_patches`).
    pictures
        ``(channels, H, W, C)`` display images in ``[0, 1]``, one per channel of ``result`` in
        its order (e.g. ``np.stack([vis.image(c) for c in result.channels])``); shown first.
    pictures_title
        The title of the pictures' column.
    values
        Write each patch's activation in its corner.
    title
        The figure's title (default: layer, patches per channel, images searched).
    cell
        Inches per row.

    Returns
    -------
    The matplotlib figure. Where a patch's receptive field reaches outside the image it is
    filled, and the image part is framed in yellow.

    Examples
    --------
    >>> import keras
    >>> from course_utils.features import top_patches
    >>> m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="c")])
    >>> r = top_patches(m, "c", np.random.default_rng(0).uniform(size=(6, 8, 8, 1)), [0, 1],
    ...                 k=3, progress=False)
    >>> len(plot_top_patches(r, np.zeros((2, 8, 8, 1))).axes)  # pictures, patches
    2
    """
    from matplotlib.patches import Rectangle

    n, k, h, w, _ = np.shape(result.patches)
    if pictures is not None and len(pictures) != n:
        raise ValueError(f"Give one picture per channel of the result ({n}: "
                         f"{list(result.channels)}); got {len(pictures)}.")
    gap = max(1, h // 8)
    ratios = [k * (w + gap) / (h + gap)]
    if pictures is not None:
        ph, pw = np.shape(pictures)[1:3]
        pgap = max(1, round(gap * ph / h))
        ratios.insert(0, pw / ph)
    fig, axes = plt.subplots(1, len(ratios), figsize=(cell * (sum(ratios) + 0.4) + 0.6,
                                                      cell * n + 0.8),
                             gridspec_kw={"width_ratios": ratios}, squeeze=False)
    axes = axes[0]
    if pictures is not None:
        show_image(axes[0], _mosaic(np.asarray(pictures, "float32")[:, None], pgap))
        axes[0].set_title(pictures_title, fontsize=8)
    ax = axes[-1]
    shown = np.clip(np.asarray(result.patches, "float32") / result.pixel_max, 0.0, 1.0)
    show_image(ax, _mosaic(shown, gap))
    for row in range(n):
        for j in range(k):
            y0, x0 = row * (h + gap), j * (w + gap)
            mask = result.inside(row, j)
            if not mask.all():
                ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
                ax.add_patch(Rectangle((x0 + xs[0] - 0.5, y0 + ys[0] - 0.5), len(xs), len(ys),
                                       fill=False, edgecolor="yellow", linewidth=0.8))
            if values:
                ax.text(x0 + 0.5, y0 + 0.5, f"{result.values[row, j]:.3g}", fontsize=6,
                        color="white", va="top", ha="left",
                        bbox={"facecolor": "black", "alpha": 0.5, "pad": 0.5, "linewidth": 0})
    axes[0].set_yticks([(row + 0.5) * ((pgap + ph) if pictures is not None else (gap + h))
                        for row in range(n)])
    axes[0].set_yticklabels([f"ch {c}" for c in result.channels], fontsize=8)
    ax.set_title(f"top {k}, strongest first (patch: {h} x {w} px)", fontsize=8)
    fig.suptitle(title or f"{result.layer}: top {k} of {result.n_images} images per channel",
                 fontsize=10)
    model_label(fig, result.label)
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    return fig


def plot_response_matrix(matrix: np.ndarray, units: Sequence[int], label: str = ""):
    """The channel-by-picture activation matrix (diagonal = own channel)."""
    m = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(0.35 * len(units) + 2.5, 0.35 * len(units) + 2))
    im = ax.imshow(m, cmap="magma")
    ax.set_xlabel("picture of channel")
    ax.set_ylabel("activation of channel")
    ticks = np.arange(len(units))
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xticklabels(units, fontsize=7)
    ax.set_yticklabels(units, fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8)
    model_label(fig, label)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig
