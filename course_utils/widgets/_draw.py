"""Fast redrawing for explorers: one persistent matplotlib figure whose images are updated in
place and rendered to PNG bytes (no new figure per slider move, no pyplot state).

Display conventions are ``course_utils.plotting``'s (percentile clipping, its diverging and
sequential colormaps); a random-weight stand-in is labelled on the figure itself.
:func:`show_panels` is a free-form grid of ``plotting.overlay`` panels for the notebooks.
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
    """The colour-scale limit of a map, as ``course_utils.plotting`` computes it."""
    from course_utils import plotting

    return float(plotting.display_scale(heat, 100.0 - percentile, signed))


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
                self.base.append(ax.imshow(grey, cmap="gray", vmin=0, vmax=1,
                                           interpolation="nearest"))
                self.heat.append(ax.imshow(np.zeros(image.shape[:2]), cmap="inferno",
                                           alpha=alpha, vmin=0, vmax=1, interpolation="nearest"))
            else:
                self.base.append(ax.imshow(image, vmin=0, vmax=1, interpolation="nearest"))
                self.heat.append(None)
        if label:
            self.figure.text(0.5, 0.01, label, ha="center", va="bottom", fontsize=8,
                             color="#b00000", weight="bold")
        self.figure.subplots_adjust(left=0.01, right=0.99, top=0.86, bottom=0.08, wspace=0.04)

    def show(self, panel: int, heat: np.ndarray | None, *, signed: bool = False,
             title: str = "", percentile: float = 99.0, image: np.ndarray | None = None) -> None:
        """Draw ``heat`` over panel ``panel`` (clipped at ``percentile``) and set its title;
        ``image`` replaces the panel's background (e.g. an occluded copy)."""
        from course_utils import plotting

        ax, layer = self.axes[panel], self.heat[panel]
        if image is not None:
            self.base[panel].set_data(image.mean(axis=-1) if layer is not None else image)
        if heat is not None:
            if layer is None:
                raise ValueError(f"Panel {panel} shows the image only; it has no overlay.")
            lim = clip_limit(heat, signed, percentile)
            layer.set_data(heat)
            if signed:
                layer.set_cmap(plotting.DIVERGING_CMAP)
                layer.set_clim(-lim, lim)
            else:
                layer.set_cmap(plotting.SEQUENTIAL_CMAP)
                layer.set_clim(0.0, lim)
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
    show: bool = True,
):
    """A free-form grid of panels, each an image with an optional map drawn over it.

    ``course_utils.plotting.show_maps`` lays out one row per image and one column per method;
    lessons also need other layouts (one image, several classes or layers; a few images and a
    plain picture first). Every panel is drawn by ``course_utils.plotting.overlay`` (same
    percentile clipping, colormaps and stand-in label).

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
    import matplotlib.pyplot as plt

    from course_utils import plotting
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
    flags = signed if isinstance(signed, (list, tuple)) else [signed] * n
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
            ax.set_title(title, fontsize=9)
        else:
            plotting.overlay(rgb, heat, ax, signed=flag, title=title, model=model,
                             display_image=rgb)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    if show:
        plt.show()
        return None
    return fig
