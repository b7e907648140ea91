"""Fast redrawing for explorers: one persistent matplotlib figure whose images are updated in
place and rendered to PNG bytes (no new figure per slider move, no pyplot state).

Display conventions follow the course: maps are clipped at a percentile before colour-mapping,
signed maps use a diverging colormap centred on zero, unsigned ones a sequential one, and a
random-weight stand-in is labelled on the figure itself.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def display_image(pixels: np.ndarray, pixel_max: float) -> np.ndarray:
    """Pixel-space image ``(H, W, C)`` -> float RGB in ``[0, 1]`` for ``imshow``."""
    img = np.clip(np.asarray(pixels, "float32") / float(pixel_max), 0.0, 1.0)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    return img


def clip_limit(heat: np.ndarray, signed: bool, percentile: float = 99.0) -> float:
    """The colour-scale limit of a map: the ``percentile`` of ``|map|`` (signed) or of the map."""
    vals = np.abs(heat) if signed else heat
    lim = float(np.percentile(vals, percentile)) if vals.size else 0.0
    return lim if lim > 0 else float(np.max(np.abs(heat))) or 1.0


class PanelFigure:
    """A row of panels: each shows the image, optionally with a heat map drawn over it.

    Parameters
    ----------
    image
        The image in display form, float RGB in ``[0, 1]`` (see :func:`display_image`).
    n_panels
        How many panels.
    overlay
        One flag per panel: draw a heat map over the image (``True``) or the image alone.
    label
        Text shown under the panels (the stand-in warning); ``""`` for none.
    figsize, dpi
        Figure size; kept small so that rendering stays fast.

    Examples
    --------
    >>> fig = PanelFigure(np.zeros((8, 8, 3)), 2, overlay=[False, True])
    >>> fig.show(1, np.random.rand(8, 8), signed=False, title="map")
    >>> fig.png()[:4] == b"\\x89PNG"
    True
    """

    def __init__(self, image: np.ndarray, n_panels: int, *, overlay=None, label: str = "",
                 figsize=(8.0, 3.2), dpi: int = 80, alpha: float = 0.55):
        self.figure = Figure(figsize=figsize, dpi=dpi)
        self.canvas = FigureCanvasAgg(self.figure)
        overlay = [True] * n_panels if overlay is None else list(overlay)
        axes = self.figure.subplots(1, n_panels, squeeze=False)[0]
        self.axes = list(axes)
        self.base, self.heat = [], []
        grey = image.mean(axis=-1)
        for ax, over in zip(self.axes, overlay, strict=True):
            ax.set_axis_off()
            if over:
                self.base.append(ax.imshow(grey, cmap="gray", vmin=0, vmax=1))
                self.heat.append(ax.imshow(np.zeros(image.shape[:2]), cmap="inferno",
                                           alpha=alpha, vmin=0, vmax=1))
            else:
                self.base.append(ax.imshow(image, vmin=0, vmax=1))
                self.heat.append(None)
        if label:
            self.figure.text(0.5, 0.01, label, ha="center", va="bottom", fontsize=8,
                             color="#b00000", weight="bold")
        self.figure.subplots_adjust(left=0.01, right=0.99, top=0.86, bottom=0.08, wspace=0.04)

    def show(self, panel: int, heat: np.ndarray | None, *, signed: bool = False,
             title: str = "", percentile: float = 99.0, image: np.ndarray | None = None) -> None:
        """Draw ``heat`` over panel ``panel`` (clipped at ``percentile``) and set its title;
        ``image`` replaces the panel's background (e.g. an occluded copy)."""
        ax, layer = self.axes[panel], self.heat[panel]
        if image is not None:
            self.base[panel].set_data(image.mean(axis=-1) if layer is not None else image)
        if heat is not None:
            if layer is None:
                raise ValueError(f"Panel {panel} shows the image only; it has no overlay.")
            lim = clip_limit(heat, signed, percentile)
            layer.set_data(heat)
            if signed:
                layer.set_cmap("bwr")
                layer.set_clim(-lim, lim)
            else:
                layer.set_cmap("inferno")
                layer.set_clim(min(0.0, float(np.min(heat))), lim)
        ax.set_title(title, fontsize=9)

    def png(self) -> bytes:
        """The figure rendered as PNG bytes."""
        buf = io.BytesIO()
        self.canvas.print_png(buf)
        return buf.getvalue()

    def image(self):
        """The figure as an ``IPython.display.Image`` (what the explorer displays)."""
        from IPython.display import Image

        return Image(data=self.png(), format="png")


def show_maps(
    images,
    maps,
    titles=None,
    *,
    model=None,
    signed=False,
    pixel_max: float | None = None,
    ncols: int | None = None,
    size: float = 2.4,
    percentile: float = 99.0,
    suptitle: str = "",
    show: bool = True,
):
    """A grid of heat maps drawn over their images (a static figure for the notebooks).

    Parameters
    ----------
    images
        Pixel-space images ``(N, H, W, C)``, or one ``(H, W, C)`` image shared by every map.
    maps
        A sequence of ``(H, W)`` maps (or an ``(N, H, W)`` array); ``None`` shows the image
        alone.
    titles
        One title per panel.
    model
        When given, its ``info(model)`` supplies ``pixel_max`` and the stand-in label, which is
        written on the figure.
    signed
        ``True`` (diverging colormap centred on 0) or one flag per map.
    percentile
        Each map is clipped at this percentile of its (absolute) values for display only.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = show_maps(np.zeros((8, 8, 3)), [None, np.random.rand(8, 8)], show=False)
    >>> len(fig.axes)
    2
    """
    import matplotlib.pyplot as plt

    from course_utils.models import registry

    maps = list(maps)
    n = len(maps)
    label = ""
    if model is not None:
        info = registry.info(model)
        label = info.label
        pixel_max = info.pixel_max if pixel_max is None else pixel_max
    pixel_max = 1.0 if pixel_max is None else pixel_max
    imgs = np.asarray(images, "float32")
    if imgs.ndim == 3:
        imgs = np.broadcast_to(imgs, (n,) + imgs.shape)
    if len(imgs) != n:
        raise ValueError(f"Got {len(imgs)} images for {n} maps; give one image per map or one "
                         "image for all.")
    flags = [signed] * n if isinstance(signed, bool) else list(signed)
    titles = list(titles) if titles is not None else [""] * n
    ncols = ncols or min(n, 6)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.4),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, img, heat, flag, title in zip(axes.flat, imgs, maps, flags, titles):
        rgb = display_image(img, pixel_max)
        if heat is None:
            ax.imshow(rgb)
        else:
            heat = np.asarray(heat, "float32")
            lim = clip_limit(heat, flag, percentile)
            ax.imshow(rgb.mean(axis=-1), cmap="gray", vmin=0, vmax=1)
            if flag:
                ax.imshow(heat, cmap="bwr", vmin=-lim, vmax=lim, alpha=0.6)
            else:
                ax.imshow(heat, cmap="inferno", vmin=min(0.0, float(heat.min())), vmax=lim,
                          alpha=0.6)
        ax.set_title(title, fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    if label:
        fig.text(0.5, 0.005, label, ha="center", va="bottom", fontsize=9, color="#b00000",
                 weight="bold")
    fig.tight_layout(rect=(0, 0.04 if label else 0, 1, 1))
    if show:
        plt.show()
    return fig
