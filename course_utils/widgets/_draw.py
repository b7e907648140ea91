"""Fast redrawing for explorers: one persistent matplotlib figure whose images are updated in
place and rendered to PNG bytes (no new figure per slider move, no pyplot state).

Display conventions are ``course_utils.plotting``'s (percentile clipping, its diverging and
sequential colormaps, the grey-or-RGB image helper and the model label). The static figures
of the notebooks (:func:`show_panels`) live in ``course_utils.plotting`` too.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from course_utils import plotting
from course_utils.plotting import display_image, show_panels

__all__ = ["Canvas", "clip_limit", "display_image", "show_panels"]


def clip_limit(heat: np.ndarray, signed: bool, percentile: float = 99.0) -> float:
    """The colour-scale limit of a map, as ``course_utils.plotting`` computes it.

    Examples
    --------
    >>> clip_limit(np.arange(101.0), signed=False, percentile=90)
    90.0
    """
    return float(plotting.display_scale(heat, 100.0 - percentile, signed))


class Canvas:
    """A row of panels in one persistent figure, updated in place and rendered to PNG.

    Each panel holds a picture (an RGB or grey image, or a scalar map with a colormap) and,
    optionally, a heat map drawn over it with the display conventions of
    ``course_utils.plotting``. Moving a slider only replaces the data of these images.

    Parameters
    ----------
    n_panels
        How many panels.
    image, overlay
        Optional: draw ``image`` (float RGB in ``[0, 1]``, see :func:`display_image`) in every
        panel now; a panel whose ``overlay`` flag is ``True`` shows it in grey, to carry a heat
        map.
    label
        The model's label (the stand-in warning), written by ``plotting.model_label``.
    figsize, dpi
        Figure size; kept small so that rendering stays fast.
    alpha
        Opacity of the heat maps.

    Examples
    --------
    >>> fig = Canvas(2, image=np.zeros((8, 8, 3)), overlay=[False, True])
    >>> fig.heat(1, np.random.rand(8, 8), signed=False, title="map")
    >>> fig.picture(0, np.random.rand(4, 4), cmap="viridis", frame="red")
    >>> fig.png()[:4] == b"\\x89PNG"
    True
    """

    def __init__(self, n_panels: int, *, image: np.ndarray | None = None, overlay=None,
                 label: str = "", figsize=(8.0, 3.2), dpi: int = 80, alpha: float = 0.55,
                 bottom: float = 0.08, wspace: float = 0.04):
        self.figure = Figure(figsize=figsize, dpi=dpi)
        self.canvas = FigureCanvasAgg(self.figure)
        self.axes = list(self.figure.subplots(1, n_panels, squeeze=False)[0])
        self.pictures: list = [None] * n_panels
        self.heats: list = [None] * n_panels
        self.alpha = alpha
        for ax in self.axes:
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
        plotting.model_label(self.figure, label)
        self.figure.subplots_adjust(left=0.01, right=0.99, top=0.86, bottom=bottom,
                                    wspace=wspace)
        if image is not None:
            flags = [False] * n_panels if overlay is None else list(overlay)
            if len(flags) != n_panels:
                raise ValueError(f"Give one overlay flag per panel ({n_panels}), got "
                                 f"{len(flags)}.")
            grey = np.asarray(image).mean(axis=-1)
            for panel, over in enumerate(flags):
                self.picture(panel, grey if over else image)

    def picture(self, panel: int, data: np.ndarray, *, title: str | None = None,
                cmap: str | None = None, vmin: float = 0.0, vmax: float = 1.0,
                frame: str | None = None) -> None:
        """Show ``data`` as panel ``panel``'s picture: an image in ``[0, 1]`` (grey or RGB), or
        a scalar map with ``cmap`` between ``vmin`` and ``vmax``; ``frame`` colours a border."""
        ax, im = self.axes[panel], self.pictures[panel]
        data, kwargs = plotting.image_kwargs(data)
        if cmap is not None:
            kwargs["cmap"] = cmap
        kwargs.update(vmin=vmin, vmax=vmax)
        if im is None or im.get_array().shape != data.shape:
            if im is not None:
                im.remove()
            self.pictures[panel] = ax.imshow(data, interpolation="nearest", zorder=0, **kwargs)
        else:
            im.set_data(data)
            im.set_clim(vmin, vmax)
            if "cmap" in kwargs:
                im.set_cmap(kwargs["cmap"])
        for side in ax.spines.values():
            side.set_visible(frame is not None)
            if frame is not None:
                side.set_color(frame)
                side.set_linewidth(3)
        if title is not None:
            ax.set_title(title, fontsize=9)

    def heat(self, panel: int, heat: np.ndarray, *, signed: bool = False,
             percentile: float = 99.0, title: str | None = None) -> None:
        """Draw ``heat`` over panel ``panel``'s picture, clipped at ``percentile``: diverging
        colours centred on zero when ``signed``, sequential otherwise."""
        if self.pictures[panel] is None:
            raise ValueError(f"Panel {panel} has no picture to draw the map over; show one "
                             "first with .picture() or give image= when making the canvas.")
        heat = np.asarray(heat)
        lim = clip_limit(heat, signed, percentile)
        cmap = plotting.DIVERGING_CMAP if signed else plotting.SEQUENTIAL_CMAP
        clim = (-lim, lim) if signed else (0.0, lim)
        layer = self.heats[panel]
        if layer is None or layer.get_array().shape != heat.shape:
            if layer is not None:
                layer.remove()
            self.heats[panel] = self.axes[panel].imshow(
                heat, cmap=cmap, alpha=self.alpha, vmin=clim[0], vmax=clim[1],
                interpolation="nearest", zorder=1)
        else:
            layer.set_data(heat)
            layer.set_cmap(cmap)
            layer.set_clim(*clim)
        if title is not None:
            self.axes[panel].set_title(title, fontsize=9)

    def png(self) -> bytes:
        """The figure rendered as PNG bytes."""
        buf = io.BytesIO()
        self.canvas.print_png(buf)
        return buf.getvalue()

    def image(self):
        """The figure as an ``IPython.display.Image`` (what the explorer displays)."""
        from IPython.display import Image

        return Image(data=self.png(), format="png")
