"""Explorers for the feature lessons (notebooks 02-03): browse channels with a slider.

- :func:`channel_explorer`: a layer menu and a channel slider over the activations of one image.
  Every chosen layer is computed in **one** forward pass when the explorer is built
  (:class:`~course_utils.features.CachedActivations`); moving a control afterwards only indexes
  an array and redraws one persistent figure.
- :func:`visualization_explorer`: browse the pictures of a
  :class:`~course_utils.features.ChannelAtlas` (precompute them first with
  ``atlas.precompute(...)``; a channel that is not there yet is computed a page at a time).

Both return an :class:`~course_utils.widgets._base.Explorer`: display it as the last expression
of a cell, drive it headlessly with ``explorer.set(layer=..., channel=...)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as widgets
import keras
import numpy as np

from course_utils.features import CachedActivations, ChannelAtlas, dead_channels
from course_utils.models import registry
from course_utils.widgets._base import Explorer
from course_utils.widgets._draw import Canvas, display_image

_SLIDER = {"continuous_update": False, "style": {"description_width": "initial"}}


def _resize_nearest(m: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour upsampling (display only: no interpolation hides the grid)."""
    rows = (np.arange(hw[0]) * m.shape[0] // hw[0]).clip(0, m.shape[0] - 1)
    cols = (np.arange(hw[1]) * m.shape[1] // hw[1]).clip(0, m.shape[1] - 1)
    return m[rows][:, cols]


def channel_explorer(
    model: keras.Model,
    image,
    layers: Sequence[str] | None = None,
    *,
    layer: str | None = None,
) -> Explorer:
    """Browse every channel of the chosen layers for one image: a layer menu, a channel slider.

    The activations of all ``layers`` are computed once, in one forward pass, when the explorer
    is built; a slider move only picks a channel and redraws. Panels: the input, the channel's
    map (its own min-max colour scale, red frame when the channel is dead, i.e. zero
    everywhere), and the map laid over the input.

    Parameters
    ----------
    model
        A Keras model with one image input (nested models are fine).
    image
        One pixel-space image ``(H, W, C)`` in ``[0, info(model).pixel_max]``.
    layers
        Layers offered in the menu (default: every layer with a spatial output).
    layer
        The layer shown first (default: the first of ``layers``).

    Examples
    --------
    Outside a notebook an explorer draws by printing, so the example silences stdout:

    >>> import contextlib, io, keras, numpy as np
    >>> keras.utils.set_random_seed(0)
    >>> m = keras.Sequential([keras.Input((12, 12, 3)),
    ...                       keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
    ...                       keras.layers.Conv2D(6, 3, activation="relu", name="c2")])
    >>> x = np.random.default_rng(0).random((12, 12, 3), dtype="float32")
    >>> with contextlib.redirect_stdout(io.StringIO()):
    ...     ex = channel_explorer(m, x, ["c1", "c2"])
    ...     update = ex.set(layer="c2", channel=5)
    >>> update.result["channel"], update.result["map"].shape, ex.controls["channel"].max
    (5, (8, 8), 5)
    >>> np.allclose(update.result["map"], m(x[None])[0, ..., 5], atol=1e-6)
    True
    """
    x = np.asarray(image, dtype="float32")
    if x.ndim == 4:
        if len(x) != 1:
            raise ValueError(f"channel_explorer shows one image; got a batch of {len(x)}. "
                             "Pass images[i].")
        x = x[0]
    cache = CachedActivations(model, x, layers)
    acts = cache.all  # the one forward pass
    spatial = [name for name, a in acts.items() if a.ndim == 4]
    if not spatial:
        raise ValueError(f"None of the layers {list(acts)} has a spatial output (N, H, W, C); "
                         "choose convolution / pooling layers.")
    first = layer if layer is not None else spatial[0]
    if first not in spatial:
        raise ValueError(f"layer {first!r} is not among the explorer's layers {spatial}.")
    meta = registry.info(model)
    shown = display_image(cache.images[0], meta.pixel_max)
    grey = shown.mean(axis=-1)
    hw = grey.shape
    n_channels = {name: acts[name].shape[-1] for name in spatial}
    dead = {name: dead_channels(acts[name][0]) for name in spatial}

    def compute(layer, channel):
        c = int(min(max(channel, 0), n_channels[layer] - 1))
        m = acts[layer][0, ..., c]
        lo, hi = float(m.min()), float(m.max())
        scaled = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
        return {"layer": layer, "channel": c, "map": m, "scaled": scaled, "min": lo,
                "max": hi, "dead": bool(dead[layer][c]), "zeros": float(np.mean(m == 0)),
                "big": _resize_nearest(scaled, hw)}

    fig = Canvas(3, label=meta.label, figsize=(8.0, 3.0), bottom=0.1, wspace=0.06)
    fig.picture(0, shown, title="input")

    def render(r, layer, channel):
        h, w = r["map"].shape
        tag = " - DEAD" if r["dead"] else ""
        fig.picture(1, r["scaled"], cmap="viridis",
                 title=f"{r['layer']} ch {r['channel']} ({h}x{w}){tag}",
                 frame="red" if r["dead"] else None)
        fig.picture(2, 0.4 * grey + 0.6 * r["big"], cmap="inferno",
                 title="over the input")
        return fig.image()

    def status(r, layer, channel):
        d = dead[r["layer"]]
        return (f"{r['layer']}: {n_channels[r['layer']]} channels, {int(d.sum())} dead · "
                f"channel {r['channel']}: min {r['min']:.3g}, max {r['max']:.3g}, "
                f"{100 * r['zeros']:.0f}% zeros")

    slider = widgets.IntSlider(value=0, min=0, max=n_channels[first] - 1, description="channel",
                               **_SLIDER)
    menu = widgets.Dropdown(options=spatial, value=first, description="layer")
    explorer = Explorer({"layer": menu, "channel": slider}, compute, render, status=status,
                        canonical=lambda v: {"layer": v["layer"], "channel": int(
                            min(v["channel"], n_channels[v["layer"]] - 1))},
                        title="Every channel of a layer, for one image")

    def on_layer(change):
        with explorer.paused():
            slider.max = n_channels[change["new"]] - 1

    menu.observe(on_layer, names="value")
    explorer.activations = cache
    explorer.figure = fig
    return explorer


def visualization_explorer(
    atlas_or_model: ChannelAtlas | keras.Model,
    layer: str | Sequence[str],
    channels: Sequence[int] | None = None,
    **settings,
) -> Explorer:
    """Browse channel pictures (feature visualizations) with a slider.

    Parameters
    ----------
    atlas_or_model
        A :class:`~course_utils.features.ChannelAtlas` (its pictures are reused; precompute
        them first so every slider position is instant), or a model (an atlas is made with
        ``settings``).
    layer
        One layer, or several (a menu is added).
    channels
        The channels offered by the slider (default: every channel of the first layer).
    **settings
        For a model: passed to ``ChannelAtlas`` (``steps``, ``size``, ``method``, ...).

    Examples
    --------
    Outside a notebook an explorer draws by printing, so the example silences stdout:

    >>> import contextlib, io, keras, numpy as np
    >>> keras.utils.set_random_seed(0)
    >>> m = keras.Sequential([keras.Input((None, None, 3)),
    ...                       keras.layers.Conv2D(6, 3, activation="relu", name="c")])
    >>> atlas = ChannelAtlas(m, steps=4, size=16, progress=False)
    >>> atlas.precompute("c")  # all 6 pictures in one batched optimization
    >>> with contextlib.redirect_stdout(io.StringIO()):
    ...     ex = visualization_explorer(atlas, "c", range(3))
    ...     update = ex.set(channel=2)
    >>> update.result["picture"].shape, ex.controls["channel"].options
    ((16, 16, 3), (0, 1, 2))
    >>> np.array_equal(update.result["picture"], atlas.get("c", 2))  # the atlas's picture
    True
    """
    if isinstance(atlas_or_model, ChannelAtlas):
        if settings:
            raise TypeError("Settings are the atlas's own; pass a model to use new settings.")
        atlas = atlas_or_model
    elif isinstance(atlas_or_model, keras.Model):
        atlas = ChannelAtlas(atlas_or_model, **settings)
    else:
        raise TypeError(f"Expected a ChannelAtlas or a keras.Model, got "
                        f"{type(atlas_or_model).__name__}.")
    layer_list = [layer] if isinstance(layer, str) else list(layer)
    if not layer_list:
        raise ValueError("Give at least one layer.")
    n = min(atlas.n_channels(name) for name in layer_list)
    chans = list(range(n)) if channels is None else [int(c) for c in channels]
    if not chans:
        raise ValueError("Give at least one channel.")
    bad = [c for c in chans if not 0 <= c < n]
    if bad:
        raise ValueError(f"Channels {bad} are out of range: the layer(s) have {n} channels "
                         f"(0..{n - 1}).")
    meta = registry.info(atlas.model)

    def compute(layer, channel):
        return {"picture": np.asarray(atlas.get(layer, channel)),
                "score": atlas.score(layer, channel)}

    fig = Canvas(1, label=meta.label, figsize=(3.6, 3.8), dpi=80, bottom=0.1, wspace=0.06)

    def render(r, layer, channel):
        fig.picture(0, r["picture"], title=f"{layer}, channel {channel}")
        return fig.image()

    def status(r, layer, channel):
        return f"objective (mean activation of the channel) on its picture: {r['score']:.3g}"

    controls = {}
    if len(layer_list) > 1:
        controls["layer"] = widgets.Dropdown(options=layer_list, value=layer_list[0],
                                             description="layer")
    else:
        controls["layer"] = widgets.Dropdown(options=layer_list, value=layer_list[0],
                                             description="layer", disabled=True)
    controls["channel"] = widgets.SelectionSlider(options=chans, value=chans[0],
                                                  description="channel", **_SLIDER)
    explorer = Explorer(controls, compute, render, status=status, width="360px",
                        height="380px", title="What each channel wants to see")
    explorer.atlas = atlas
    explorer.figure = fig
    return explorer
