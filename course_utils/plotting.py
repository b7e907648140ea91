"""Show attribution maps: overlays on the image and a grid of methods side by side.

Computing and showing are separate: ``course_utils.attribution`` returns raw, unnormalized maps;
this module normalizes them for display only (percentile clipping, then a sequential colormap
for non-negative maps and a diverging one, centred on zero, for signed maps). Images are shown
in pixel space: pass ``display_images``, or pass ``model`` and the model's preprocessing is
undone (``course_utils.models.info(model)``). A figure made from a random-weight stand-in model
carries the model's label on screen.

Examples
--------
>>> import numpy as np
>>> fig = show_maps(np.random.rand(2, 8, 8, 3), {"saliency": np.random.rand(2, 8, 8)})
>>> len(fig.axes)
4
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np

SEQUENTIAL_CMAP = "inferno"
DIVERGING_CMAP = "RdBu_r"


def display_scale(maps: np.ndarray, clip_percentile: float = 1.0, signed: bool = False,
                  axis=None) -> np.ndarray:
    """The value that maps to full colour: the ``100 - clip_percentile`` percentile of the map
    (of ``|map|`` for signed maps), over ``axis`` (``None``: the whole array).

    Clipping the top 1-2 % keeps a few extreme pixels from washing out the rest.
    """
    values = np.abs(maps) if signed else np.clip(maps, 0, None)
    scale = np.percentile(values, 100.0 - clip_percentile, axis=axis, keepdims=axis is not None)
    return np.maximum(scale, 1e-12)


def normalize(attribution_map, clip_percentile: float = 1.0, signed: bool | None = None,
              scale: float | None = None) -> tuple[np.ndarray, bool]:
    """Scale one map for display: to ``[0, 1]`` (unsigned) or ``[-1, 1]`` (signed).

    ``signed=None`` decides from the data (any negative value). ``scale`` overrides the
    percentile (to share one scale across maps). Returns ``(map, signed)``.

    Examples
    --------
    >>> m, signed = normalize(np.array([[0.0, 1.0], [2.0, 100.0]]), clip_percentile=30)
    >>> signed, float(m.max()) <= 1.0
    (False, True)
    """
    m = np.asarray(attribution_map, dtype="float32")
    if signed is None:
        signed = bool(np.any(m < 0))
    s = display_scale(m, clip_percentile, signed) if scale is None else max(float(scale), 1e-12)
    lo = -1.0 if signed else 0.0
    return np.clip(m / s, lo, 1.0), signed


def to_display(images, model=None, display_images=None) -> np.ndarray:
    """Images as floats in ``[0, 1]`` for ``imshow``, batch axis kept: ``(N, H, W, C)``.

    Priority: ``display_images`` (pixel space, scaled by their own range: uint8 or > 1 means
    0..255); else, with ``model``, the model's preprocessing undone; else the images min-max
    scaled if they leave ``[0, 1]``.
    """
    if display_images is not None:
        arr = np.asarray(display_images, dtype="float32")
        if np.asarray(display_images).dtype == np.uint8 or arr.max() > 1.0:
            arr = arr / 255.0
    elif model is not None:
        from course_utils.engine.spaces import to_pixels
        from course_utils.models import registry

        arr = to_pixels(model, np.asarray(images, "float32")) / float(
            registry.info(model).pixel_max)
    else:
        arr = np.asarray(images, dtype="float32")
        if arr.min() < 0 or arr.max() > 1:
            axes = tuple(range(arr.ndim - 3, arr.ndim))
            lo, hi = arr.min(axis=axes, keepdims=True), arr.max(axis=axes, keepdims=True)
            arr = (arr - lo) / np.maximum(hi - lo, 1e-12)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise ValueError(f"Expected an image (H, W[, C]) or a batch (N, H, W, C), got {arr.shape}.")
    return np.clip(arr, 0.0, 1.0)


def _imshow_image(ax, img: np.ndarray) -> None:
    if img.shape[-1] == 1:
        ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(img)
    ax.set_xticks([])
    ax.set_yticks([])


def _label_standin(fig, model) -> None:
    if model is None:
        return
    from course_utils.models import registry

    label = registry.info(model).label
    if label and not any(t.get_text() == label for t in fig.texts):
        fig.text(0.5, 0.005, label, ha="center", va="bottom", color="crimson",
                 fontsize=9, fontweight="bold")


def overlay(
    image,
    attribution_map,
    ax=None,
    *,
    cmap: str | None = None,
    alpha: float = 0.5,
    clip_percentile: float = 1.0,
    signed: bool | None = None,
    scale: float | None = None,
    title: str | None = None,
    model=None,
    display_image=None,
    colorbar: bool = False,
):
    """Draw ``attribution_map`` ``(H, W)`` over ``image`` ``(H, W, C)`` on ``ax``.

    Parameters
    ----------
    image
        The image as given to the model (un-preprocessed with ``model``) or in pixel space.
    cmap
        Default: ``"inferno"`` for non-negative maps, ``"RdBu_r"`` (centred on 0) for signed.
    alpha
        Opacity of the map (0 shows only the image; 1 only the map).
    clip_percentile
        Percent of the largest values clipped to full colour.
    signed
        Force signed/unsigned display; ``None`` decides from the data.
    scale
        A shared display scale instead of this map's percentile.
    model
        Used to undo the preprocessing and, for a stand-in, to label the figure.

    Returns
    -------
    The matplotlib ``Axes``.

    Examples
    --------
    >>> ax = overlay(np.random.rand(8, 8, 3), np.random.rand(8, 8))
    >>> len(ax.images)
    2
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    img = to_display(image, model, display_image)[0]
    m = np.asarray(attribution_map, dtype="float32")
    m = m[0] if m.ndim == 3 and m.shape[0] == 1 else m
    if m.ndim != 2:
        raise ValueError(f"Expected one map (H, W), got shape {m.shape}.")
    if m.shape != img.shape[:2]:
        raise ValueError(f"Map of shape {m.shape} does not match the image's {img.shape[:2]}.")
    norm, is_signed = normalize(m, clip_percentile, signed, scale)
    _imshow_image(ax, img)
    cmap = cmap or (DIVERGING_CMAP if is_signed else SEQUENTIAL_CMAP)
    shown = ax.imshow(norm, cmap=cmap, alpha=alpha, vmin=-1.0 if is_signed else 0.0, vmax=1.0)
    if colorbar:
        ax.figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    if title:
        ax.set_title(title, fontsize=9)
    _label_standin(ax.figure, model)
    return ax


def show_maps(
    images,
    maps: Mapping[str, np.ndarray],
    *,
    model=None,
    display_images=None,
    titles=None,
    signed: Mapping[str, bool] | None = None,
    cmap: str | None = None,
    alpha: float = 0.5,
    clip_percentile: float = 1.0,
    shared_scale: bool = False,
    size: float = 2.2,
):
    """A grid: one row per image, the image then one overlay per method.

    Parameters
    ----------
    images
        One image or a batch, as given to the methods.
    maps
        ``{method name: maps (N, H, W) or (H, W)}``.
    titles
        Optional row labels (e.g. class names), one per image.
    signed
        ``{method: bool}``; by default the methods of ``attribution.SIGNED`` and any map with
        negative values are shown signed.
    shared_scale
        Use one display scale per method across the images (compare magnitudes between rows,
        e.g. the same image explained for different classes) instead of one per map.

    Returns
    -------
    The matplotlib ``Figure``.

    Examples
    --------
    >>> fig = show_maps(np.random.rand(8, 8, 3), {"a": np.random.rand(8, 8),
    ...                                          "b": np.random.randn(8, 8)})
    >>> len(fig.axes)
    3
    """
    from course_utils.attribution import SIGNED

    shown = to_display(images, model, display_images)
    n = len(shown)
    prepared = {}
    for name, value in maps.items():
        arr = np.asarray(value, dtype="float32")
        if arr.ndim == 2:
            arr = arr[None]
        if arr.shape[0] != n:
            raise ValueError(f"Method {name!r} has {arr.shape[0]} maps for {n} image(s).")
        prepared[name] = arr
    cols = 1 + len(prepared)
    fig, axes = plt.subplots(n, cols, figsize=(size * cols, size * n + 0.3), squeeze=False)
    for i in range(n):
        _imshow_image(axes[i, 0], shown[i])
        if titles is not None:
            axes[i, 0].set_ylabel(str(titles[i]), fontsize=9)
        if i == 0:
            axes[0, 0].set_title("image", fontsize=9)
        for j, (name, arr) in enumerate(prepared.items(), start=1):
            is_signed = (signed or {}).get(name)
            if is_signed is None:
                is_signed = name in SIGNED or bool(np.any(arr < 0))
            scale = (float(display_scale(arr, clip_percentile, is_signed))
                     if shared_scale else None)
            overlay(shown[i], arr[i], axes[i, j], cmap=cmap, alpha=alpha,
                    clip_percentile=clip_percentile, signed=is_signed, scale=scale,
                    title=name if i == 0 else None)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    _label_standin(fig, model)
    return fig
