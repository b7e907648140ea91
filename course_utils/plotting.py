"""The display layer: show attribution maps (overlays, a grid of methods, free-form panels)
and the three pieces every figure of the course shares.

- :func:`model_label`: the one way a figure shows ``info(model).label`` (the stand-in warning,
  or which network stands for which);
- :func:`show_image` (with :func:`image_kwargs`): the one way an image, grey or RGB, is drawn;
- :func:`outline`: a region (an object mask, a watermark) drawn as a contour.

Computing and showing are separate: ``course_utils.attribution`` returns raw, unnormalized maps;
this module normalizes them for display only (percentile clipping, then a sequential colormap
for non-negative maps and a diverging one, centred on zero, for signed maps). Images are shown
in pixel space: pass ``display_images``, or pass ``model`` and the model's preprocessing is
undone (``course_utils.models.info(model)``). Figures of the metrics are in
``course_utils.metrics.plots``, of the feature lessons in ``course_utils.features.plotting``;
the explorers redraw one persistent ``course_utils.widgets._draw.Canvas``.

Examples
--------
>>> import numpy as np
>>> fig = show_maps(np.random.rand(2, 8, 8, 3), {"saliency": np.random.rand(2, 8, 8)})
>>> len(fig.axes)
4
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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


def display_image(pixels: np.ndarray, pixel_max: float) -> np.ndarray:
    """Pixel-space image ``(H, W, C)`` -> float RGB in ``[0, 1]`` for ``imshow``.

    Examples
    --------
    >>> display_image(np.full((2, 2, 1), 127.5), 255.0).shape
    (2, 2, 3)
    """
    img = np.clip(np.asarray(pixels, "float32") / float(pixel_max), 0.0, 1.0)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    return img


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


LABEL_STYLE = {"ha": "center", "va": "bottom", "color": "crimson", "fontsize": 9,
               "fontweight": "bold"}


def model_label(fig, model=None):
    """Write the model's label (``info(model).label``: the stand-in warning, or which network
    stands for which) under ``fig``, once; every figure of the course calls this one function.

    Parameters
    ----------
    fig
        A matplotlib ``Figure``.
    model
        A model (its registry label is shown), the label itself as a string, or ``None``.

    Returns
    -------
    The matplotlib ``Text`` shown (also when it was already there), or ``None`` when the model
    has no label.

    Examples
    --------
    >>> from course_utils.models import STANDIN_LABEL
    >>> fig = plt.figure()
    >>> model_label(fig, STANDIN_LABEL).get_text() == STANDIN_LABEL
    True
    >>> model_label(fig, STANDIN_LABEL) is model_label(fig, STANDIN_LABEL), len(fig.texts)
    (True, 1)
    >>> model_label(fig, "") is None
    True
    """
    if model is None:
        return None
    if isinstance(model, str):
        label = model
    else:
        from course_utils.models import registry

        label = registry.info(model).label
    if not label:
        return None
    for text in fig.texts:
        if text.get_text() == label:
            return text
    return fig.text(0.5, 0.005, label, **LABEL_STYLE)


def image_kwargs(img: np.ndarray) -> tuple[np.ndarray, dict]:
    """An image ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` in ``[0, 1]`` as ``imshow`` wants it:
    the data (one channel squeezed) and the keyword arguments (grey colormap for one channel).

    Examples
    --------
    >>> data, kwargs = image_kwargs(np.zeros((4, 4, 1)))
    >>> data.shape, kwargs["cmap"]
    ((4, 4), 'gray')
    """
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        return img, {"cmap": "gray", "vmin": 0, "vmax": 1}
    return img, {"vmin": 0, "vmax": 1}


def show_image(ax, img, *, mask=None, mask_color: str = "yellow", title: str | None = None):
    """Show one display image (float in ``[0, 1]``; grey or RGB) on ``ax`` without ticks, with
    the outline of an optional boolean ``mask`` (e.g. the object's pixels).

    Returns
    -------
    The ``AxesImage``.

    Examples
    --------
    >>> _, ax = plt.subplots()
    >>> mask = np.zeros((8, 8), bool); mask[2:5, 2:5] = True
    >>> show_image(ax, np.random.rand(8, 8, 1), mask=mask).get_cmap().name
    'gray'
    """
    data, kwargs = image_kwargs(img)
    shown = ax.imshow(data, **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    if mask is not None:
        outline(ax, mask, mask_color)
    if title is not None:
        ax.set_title(title, fontsize=9)
    return shown


def outline(ax, mask, color: str = "yellow", linewidth: float = 1.0) -> None:
    """Draw the outline of a boolean ``mask`` ``(H, W)`` on ``ax`` (over what it shows); an
    empty or full mask has no outline and draws nothing.

    Examples
    --------
    >>> _, ax = plt.subplots()
    >>> mask = np.zeros((8, 8), bool); mask[2:5, 2:5] = True
    >>> outline(ax, mask, "red"); len(ax.collections)
    1
    """
    m = np.asarray(mask, dtype="float32")
    if m.ndim != 2:
        raise ValueError(f"Expected one mask (H, W), got shape {m.shape}.")
    if m.min() < m.max():
        ax.contour(m, levels=[0.5], colors=color, linewidths=linewidth)


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
    mask=None,
    mask_color: str = "yellow",
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
    mask, mask_color
        A boolean ``(H, W)`` region (e.g. the object) outlined over the map.

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
    show_image(ax, img)
    cmap = cmap or (DIVERGING_CMAP if is_signed else SEQUENTIAL_CMAP)
    shown = ax.imshow(norm, cmap=cmap, alpha=alpha, vmin=-1.0 if is_signed else 0.0, vmax=1.0)
    if colorbar:
        ax.figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    if mask is not None:
        outline(ax, mask, mask_color, linewidth=0.8)
    if title:
        ax.set_title(title, fontsize=9)
    model_label(ax.figure, model)
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
    masks=None,
    mask_color: str = "yellow",
    captions: Mapping[str, Sequence[str]] | None = None,
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
    alpha
        Opacity of the maps; ``1.0`` shows each map alone (the image only in the first column).
    masks, mask_color
        One boolean ``(H, W)`` region per image (e.g. the object mask), outlined on the image
        and on every map of its row.
    captions
        ``{method: one text per image}`` written under the map (e.g. a score).

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
    outlines = [None] * n
    if masks is not None:
        mk = np.asarray(masks)
        mk = mk[None] if mk.ndim == 2 else mk
        if mk.ndim != 3 or len(mk) != n:
            raise ValueError(f"Expected one (H, W) mask per image ({n}), got masks of shape "
                             f"{mk.shape}.")
        outlines = list(mk)
    for name, texts in (captions or {}).items():
        if len(texts) != n:
            raise ValueError(f"captions[{name!r}] has {len(texts)} texts for {n} image(s).")
    cols = 1 + len(prepared)
    fig, axes = plt.subplots(n, cols, figsize=(size * cols, size * n + 0.3), squeeze=False)
    for i in range(n):
        show_image(axes[i, 0], shown[i], mask=outlines[i], mask_color=mask_color)
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
                    title=name if i == 0 else None, mask=outlines[i], mask_color=mask_color)
            if captions and name in captions:
                axes[i, j].set_xlabel(str(captions[name][i]), fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    model_label(fig, model)
    return fig


def show_panels(
    images,
    maps,
    titles=None,
    *,
    model=None,
    signed=None,
    pixel_max: float | None = None,
    ncols: int | None = None,
    size: float = 2.4,
    suptitle: str = "",
    masks=None,
    mask_color: str = "yellow",
    show: bool = True,
):
    """A free-form grid of panels, each an image with an optional map drawn over it.

    :func:`show_maps` lays out one row per image and one column per method; lessons also need
    other layouts (one image, several classes or layers; a few images and a plain picture
    first). Every map panel is drawn by :func:`overlay` (same percentile clipping, colormaps
    and stand-in label).

    Parameters
    ----------
    images
        Pixel-space images ``(N, H, W, C)``, or one ``(H, W, C)`` image shared by every panel.
    maps
        One ``(H, W)`` map per panel, or ``None`` to show the image alone.
    titles
        One title per panel.
    model
        Supplies ``pixel_max`` and, for a stand-in, the on-screen label.
    signed
        ``None`` (decide from the data), a bool, or one per panel.
    masks, mask_color
        One boolean ``(H, W)`` region per panel (or one for all), outlined on the panel.
    show
        ``True``: draw the figure now and return ``None`` (returning it as well would make
        Jupyter show it a second time as the cell's result); ``False``: return it undrawn.

    Returns
    -------
    matplotlib.figure.Figure, or None when ``show=True``

    Examples
    --------
    >>> fig = show_panels(np.zeros((8, 8, 3)), [None, np.random.rand(8, 8)], show=False)
    >>> len(fig.axes)
    2
    """
    from course_utils.models import registry

    maps = list(maps)
    n = len(maps)
    if pixel_max is None:
        pixel_max = registry.info(model).pixel_max if model is not None else 1.0
    imgs = np.asarray(images, "float32")
    if imgs.ndim == 3:
        imgs = np.broadcast_to(imgs, (n,) + imgs.shape)
    if len(imgs) != n:
        raise ValueError(f"Got {len(imgs)} images for {n} panels; give one image per panel or "
                         "one image for all.")
    outlines = [None] * n
    if masks is not None:
        mk = np.asarray(masks)
        outlines = list(np.broadcast_to(mk, (n,) + mk.shape) if mk.ndim == 2 else mk)
        if len(outlines) != n:
            raise ValueError(f"Got {len(outlines)} masks for {n} panels; give one mask per "
                             "panel or one for all.")
    flags = signed if isinstance(signed, (list, tuple)) else [signed] * n
    titles = list(titles) if titles is not None else [""] * n
    ncols = ncols or min(n, 6)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.4),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, img, heat, flag, title, mask in zip(axes.flat, imgs, maps, flags, titles, outlines):
        rgb = display_image(img, pixel_max)
        if heat is None:
            show_image(ax, rgb, mask=mask, mask_color=mask_color, title=title)
        else:
            overlay(rgb, heat, ax, signed=flag, title=title, model=model, display_image=rgb,
                    mask=mask, mask_color=mask_color)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    model_label(fig, model)
    if show:
        plt.show()
        return None
    return fig
