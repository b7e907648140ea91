"""Explorers for the attribution lessons (notebooks 04-07): move a slider, see the map change.

Each function returns an :class:`~course_utils.widgets._base.Explorer`; display it as the last
expression of a cell. Maps come from ``course_utils.attribution`` (the same functions the
notebooks call) and are cached by the slider values, so going back to a setting is instant;
``explorer.warm()`` fills the cache in advance.

- :func:`smoothgrad_explorer`: noise level, number of samples, the noise tunnel's kind
  (SmoothGrad, SmoothGrad², VarGrad) and the base method. The per-sample maps of a noise level
  are computed once; every sample count and kind is then a running statistic.
- :func:`integrated_gradients_explorer`: steps and baseline, with the live completeness error.
- :func:`occlusion_explorer`: patch size, stride and fill.
- :func:`lime_explorer`: samples and segmentation.
- :func:`gradcam_explorer`: layer, class, and Guided Grad-CAM on or off.
- :func:`scorecam_explorer`: layer and the number of channels used as masks.
- :func:`rise_explorer`: number of random masks, grid and keep probability.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass

import ipywidgets as widgets
import keras
import numpy as np

from course_utils import attribution, surgery
from course_utils.attribution.lime import segment
from course_utils.attribution.noise_tunnel import noise_rows, noise_sigma, reduce_kind
from course_utils.engine import inputs, scoring, spaces
from course_utils.models import registry
from course_utils.widgets._base import Explorer, options
from course_utils.widgets._draw import Canvas, display_image

_SLIDER = {"continuous_update": False, "style": {"description_width": "initial"}}


@dataclass
class Subject:
    """One image to explain, in the model's space and for display, and the explained class."""

    model: keras.Model
    x: np.ndarray  # (1, H, W, C) model space
    pixels: np.ndarray  # (H, W, C) pixel space
    shown: np.ndarray  # (H, W, 3) display RGB in [0, 1]
    target: int
    class_names: list
    label: str  # the stand-in warning or ""

    def name(self, cls: int) -> str:
        return str(self.class_names[cls]) if cls < len(self.class_names) else f"class {cls}"


def subject(model: keras.Model, image, target=None) -> Subject:
    """Validate one image (model space, as for ``course_utils.attribution``) and its target.

    Examples
    --------
    >>> import keras, numpy as np
    >>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2)])
    >>> subject(m, np.zeros((4, 4, 1)), target=1).target
    1
    """
    x = inputs.as_batch(model, image)
    if len(x) != 1:
        raise ValueError(f"An explorer explains one image; got a batch of {len(x)}. "
                         "Pass images[i].")
    t = int(inputs.resolve_targets(model, x, target, 1)[0])
    info = registry.info(model)
    pixels = spaces.to_pixels(model, x)[0]
    return Subject(model, x, pixels, display_image(pixels, info.pixel_max), t,
                   list(info.class_names), info.label)


def _explorer(fig: Canvas, *args, **kwargs) -> Explorer:
    """An :class:`Explorer` that keeps its :class:`~course_utils.widgets._draw.Canvas` as
    ``.figure``."""
    explorer = Explorer(*args, **kwargs)
    explorer.figure = fig
    return explorer


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


# ------------------------------------------------------------------------------------------
# SmoothGrad
# ------------------------------------------------------------------------------------------


#: Base methods the SmoothGrad explorer offers (maps of one image, options ``reduce`` if any).
NOISY_METHODS = ("saliency", "gradient_x_input", "guided_backprop")
#: What each kind of the noise tunnel shows, for the explorer's titles.
KIND_LABELS = {"smoothgrad": "SmoothGrad (mean)", "smoothgrad_sq": "SmoothGrad² (mean square)",
               "vargrad": "VarGrad (variance)"}


def smoothgrad_explorer(
    model: keras.Model,
    image,
    target=None,
    *,
    max_samples: int = 50,
    max_noise: float = 0.5,
    noise_step: float = 0.05,
    reduce: str = "max_abs",
    seed: int = 0,
    methods=NOISY_METHODS,
    method: str | None = None,
    batch_size: int | None = None,
) -> Explorer:
    """The noise tunnel with sliders for the noise level and the number of noisy samples, and
    menus for the kind (``smoothgrad``: the mean of the noisy maps, ``smoothgrad_sq``: their
    mean square, ``vargrad``: their variance) and the base method (``methods``, names of
    ``attribution.METHODS``: saliency, gradient x input, guided backprop).

    For a noise level and a method, the maps of ``max_samples`` noisy copies are computed once
    (the same noise as ``attribution.smoothgrad(..., seed=seed)`` and
    ``attribution.noise_tunnel``); ``n`` samples show the running statistic of the kind, so
    neither the sample slider nor the kind menu recomputes a gradient. Noise level 0 is the
    method itself (and a variance of 0). ``reduce`` is passed to the methods that take it;
    ``method`` is the one shown first (default: the first of ``methods``).

    Examples
    --------
    Outside a notebook an explorer draws by printing, so the example silences stdout:

    >>> import contextlib, io, keras, numpy as np
    >>> keras.utils.set_random_seed(0)
    >>> m = keras.Sequential([keras.Input((12, 12, 1)),
    ...                       keras.layers.Conv2D(4, 3, activation="relu"),
    ...                       keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    >>> x = np.random.default_rng(0).random((12, 12, 1), dtype="float32")
    >>> with contextlib.redirect_stdout(io.StringIO()):
    ...     ex = smoothgrad_explorer(m, x, target=2, max_samples=20)
    ...     update = ex.set(n_samples=5)
    >>> update.result.shape  # the running means of 1..20 samples at this noise level
    (20, 12, 12)
    >>> update.cached  # a new sample count is not a new computation
    True
    """
    s = subject(model, image, target)
    max_samples = int(max_samples)
    if max_samples < 1:
        raise ValueError(f"max_samples must be at least 1, got {max_samples}.")
    methods = options("methods", methods)
    unknown = [m for m in methods if m not in NOISY_METHODS]
    if unknown:
        raise ValueError(f"methods {unknown} are not offered; choose among {NOISY_METHODS}.")
    first = methods[0] if method is None else method
    if first not in methods:
        raise ValueError(f"method {first!r} is not among methods {methods}.")
    per_sample: dict = {}

    def maps_of(name, z):
        fn = attribution.METHODS[name]
        opts = {"reduce": reduce} if "reduce" in inspect.signature(fn).parameters else {}
        return fn(model, z, s.target, batch_size=batch_size, **opts)

    def samples(noise_level, method):
        """The method's maps of the ``max_samples`` noisy copies (float64), computed once."""
        key = (round(noise_level, 10), method)
        if key not in per_sample:
            sigma = noise_sigma(s.x, noise_level)[0]
            noise = noise_rows(s.x.shape[1:], np.zeros(max_samples, int),
                               np.arange(max_samples), seed)
            per_sample[key] = maps_of(method, s.x + sigma * noise).astype("float64")
        return per_sample[key]

    def compute(noise_level, kind, method):
        maps = samples(noise_level, method)
        counts = np.arange(1, max_samples + 1, dtype="float64")[:, None, None]
        mean = np.cumsum(maps, axis=0) / counts
        mean_square = None if kind == "smoothgrad" else np.cumsum(maps ** 2, axis=0) / counts
        return reduce_kind(kind, mean, mean_square).astype("float32")

    fig = Canvas(3, image=s.shown, overlay=[False, True, True], label=s.label)
    fig.picture(0, s.shown, title=f"explaining: {s.name(s.target)}")
    plain: dict = {}

    def render(running, noise_level, n_samples, kind, method):
        if method not in plain:
            plain[method] = maps_of(method, s.x)[0]
        signed = method == "gradient_x_input"
        fig.heat(1, plain[method], signed=signed, title=f"{method} (no noise)")
        fig.heat(2, running[n_samples - 1], signed=signed and kind == "smoothgrad",
                 title=f"{KIND_LABELS[kind]}: {n_samples} samples, noise {noise_level:.2f}")
        return fig.image()

    def status(_, noise_level, n_samples, kind, method):
        sigma = float(noise_sigma(s.x, noise_level)[0])
        return f"noise sigma = {noise_level:.2f} x input range = {sigma:.3g} input units"

    controls = {
        "noise_level": widgets.FloatSlider(value=min(0.15, max_noise), min=0.0, max=max_noise,
                                           step=noise_step, description="noise level",
                                           readout_format=".2f", **_SLIDER),
        "n_samples": widgets.IntSlider(value=min(20, max_samples), min=1, max=max_samples,
                                       description="samples", **_SLIDER),
        "kind": widgets.Dropdown(options=[(label, k) for k, label in KIND_LABELS.items()],
                                 value="smoothgrad", description="kind"),
        "method": widgets.Dropdown(options=list(methods), value=first,
                                   description="method"),
    }
    return _explorer(fig, controls, compute, render, status=status,
                     compute_keys=["noise_level", "kind", "method"],
                     warm_current=["kind", "method"],
                     title="SmoothGrad: average the gradients of noisy copies")


# ------------------------------------------------------------------------------------------
# Integrated Gradients
# ------------------------------------------------------------------------------------------

IG_STEPS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
BASELINES = ("black", "grey", "white", "mean")


def integrated_gradients_explorer(
    model: keras.Model,
    image,
    target=None,
    *,
    steps=IG_STEPS,
    baselines=BASELINES,
    batch_size: int | None = None,
) -> Explorer:
    """Integrated Gradients with a steps slider and a baseline menu; the status line shows the
    completeness check live: sum of the attributions against ``f(x) - f(baseline)``.

    Examples
    --------
    Outside a notebook an explorer draws by printing, so the example silences stdout:

    >>> import contextlib, io, keras, numpy as np
    >>> keras.utils.set_random_seed(0)
    >>> m = keras.Sequential([keras.Input((12, 12, 1)),
    ...                       keras.layers.Conv2D(4, 3, activation="tanh"),
    ...                       keras.layers.GlobalAveragePooling2D(),
    ...                       keras.layers.Dense(3, activation="tanh")])
    >>> x = np.random.default_rng(0).random((12, 12, 1), dtype="float32")
    >>> with contextlib.redirect_stdout(io.StringIO()):
    ...     ex = integrated_gradients_explorer(m, x, target=0, steps=(1, 4, 64))
    ...     errors = [ex.set(steps=n).result["relative_error"] for n in (1, 4, 64)]
    >>> errors[0] > errors[1] > errors[2]  # completeness: the error falls with the steps
    True
    >>> errors[2] < 1e-4
    True
    """
    s = subject(model, image, target)
    pmax = float(registry.info(model).pixel_max)

    def compute(steps, baseline):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the error is shown, not warned
            maps, info = attribution.integrated_gradients(
                model, s.x, s.target, baseline=baseline, steps=steps, batch_size=batch_size,
                return_info=True)
        return {"map": maps[0], "sum": float(info["sum"][0]), "delta": float(info["delta"][0]),
                "relative_error": float(info["relative_error"][0])}

    fig = Canvas(3, image=s.shown, overlay=[False, False, True], label=s.label)
    fig.picture(0, s.shown, title=f"explaining: {s.name(s.target)}")

    def render(r, steps, baseline):
        base = spaces.pixel_constant(model, baseline, s.pixels)
        fig.picture(1, display_image(base, pmax), title=f"baseline x' = {baseline}")
        fig.heat(2, r["map"], signed=True, title=f"IG, {steps} steps (red +, blue -)")
        return fig.image()

    def status(r, steps, baseline):
        err = r["relative_error"]
        colour = "#070" if err < 0.02 else ("#a60" if err < 0.1 else "#b00")
        return (f"sum of attributions = {r['sum']:.4g}, f(x) - f(x') = {r['delta']:.4g}: "
                f"<b style='color:{colour}'>completeness error {_pct(err)}</b>")

    steps, baselines = options("steps", steps, int), options("baselines", baselines)
    controls = {
        "steps": widgets.SelectionSlider(options=steps, value=steps[len(steps) // 2],
                                         description="steps", **_SLIDER),
        "baseline": widgets.Dropdown(options=list(baselines), value=baselines[0],
                                     description="baseline"),
    }
    return _explorer(fig, controls, compute, render, status=status,
                    title="Integrated Gradients: walk from a baseline to the image")


# ------------------------------------------------------------------------------------------
# Occlusion
# ------------------------------------------------------------------------------------------

FILLS = ("grey", "black", "mean", "blur")


def occlusion_explorer(
    model: keras.Model,
    image,
    target=None,
    *,
    windows=None,
    strides=None,
    fills=FILLS,
    batch_size: int | None = None,
) -> Explorer:
    """Occlusion with sliders for the patch size and the stride and a menu for the fill
    (``"grey"``, ``"black"``, the image's ``"mean"`` colour, or a ``"blur"``-red copy).

    The left panel shows the image with one patch (centred) filled, so the learner sees what
    "hidden" means for the model.

    Parameters
    ----------
    windows, strides
        The patch sizes and strides offered (pixels); default about 1/16 to 1/2 of the image
        side, and 1/32 to 1/4.
    """
    s = subject(model, image, target)
    h, w = s.x.shape[1:3]
    side = min(h, w)
    pmax = float(registry.info(model).pixel_max)
    if windows is None:
        step = max(1, side // 16)
        windows = tuple(range(step, side // 2 + 1, step))
    if strides is None:
        step = max(1, side // 32)
        strides = tuple(range(step, side // 4 + 1, step))
    windows, strides = options("windows", windows, int), options("strides", strides, int)
    fills = options("fills", fills)

    def compute(window, stride, fill):
        return attribution.occlusion(model, s.x, s.target, window=window, stride=stride,
                                     fill=fill, batch_size=batch_size)[0]

    fig = Canvas(2, image=s.shown, overlay=[False, True], label=s.label)

    def render(m, window, stride, fill):
        demo = s.pixels.copy()
        top, left = (h - window) // 2, (w - window) // 2
        patch = spaces.pixel_constant(model, fill, s.pixels)
        demo[top:top + window, left:left + window] = patch[top:top + window, left:left + window]
        fig.picture(0, display_image(demo, pmax), title=f"a {window} px patch, fill: {fill}")
        fig.heat(1, m, signed=True, title=f"score drop for {s.name(s.target)} (red: drop)")
        return fig.image()

    def status(m, window, stride, fill):
        from course_utils.attribution.occlusion import windows as occlusion_windows

        n = len(occlusion_windows((h, w), (window, window), (stride, stride)))
        return f"{n} patch positions = {n} forward passes; largest drop {float(m.max()):.3g}"

    controls = {
        "window": widgets.SelectionSlider(options=windows, value=windows[len(windows) // 2],
                                          description="patch (px)", **_SLIDER),
        "stride": widgets.SelectionSlider(options=strides, value=strides[len(strides) // 2],
                                          description="stride (px)", **_SLIDER),
        "fill": widgets.Dropdown(options=list(fills), value=fills[0], description="fill"),
    }
    return _explorer(fig, controls, compute, render, status=status,
                    title="Occlusion: hide a patch, watch the class score")


# ------------------------------------------------------------------------------------------
# LIME
# ------------------------------------------------------------------------------------------

LIME_SAMPLES = (50, 100, 200, 500, 1000, 2000)


def lime_explorer(
    model: keras.Model,
    image,
    target=None,
    *,
    samples=LIME_SAMPLES,
    n_segments=(10, 20, 40, 80, 160),
    kernel_sizes=(1, 2, 3, 4, 6, 8),
    seed: int = 0,
    batch_size: int | None = None,
) -> Explorer:
    """LIME with a samples slider and the segmentation: SLIC (``n_segments``) or quickshift
    (``kernel_size``); the slider of the other method is ignored (and does not recompute).

    The status line gives the number of superpixels, the samples per superpixel (about 10 is
    the usual advice) and the R^2 of the local linear model.
    """
    s = subject(model, image, target)
    pmax = float(registry.info(model).pixel_max)

    def canonical(v):
        return v | ({"kernel_size": None} if v["segmentation"] == "slic" else {"n_segments": None})

    def segmentation_options(segmentation, n_segments, kernel_size):
        if segmentation == "slic":
            return {"n_segments": int(n_segments)}
        return {"kernel_size": float(kernel_size)}

    def compute(n_samples, segmentation, n_segments, kernel_size):
        opts = segmentation_options(segmentation, n_segments, kernel_size)
        seg = segment(s.pixels, pmax, segmentation, **opts)
        maps, exps = attribution.lime(
            model, s.x, s.target, n_samples=n_samples, segmentation=segmentation,
            segmentation_options=opts, seed=seed, batch_size=batch_size,
            return_explanations=True)
        return {"map": maps[0], "segments": seg, "score": float(exps[0].score)}

    fig = Canvas(2, image=s.shown, overlay=[False, True], label=s.label)

    def render(r, n_samples, segmentation, n_segments, kernel_size):
        from skimage.segmentation import mark_boundaries

        fig.picture(0, mark_boundaries(s.shown, r["segments"], color=(1, 1, 0)),
                    title=f"{r['segments'].max() + 1} superpixels ({segmentation})")
        fig.heat(1, r["map"], signed=True,
                  title=f"LIME weights for {s.name(s.target)}, {n_samples} samples")
        return fig.image()

    def status(r, n_samples, segmentation, n_segments, kernel_size):
        k = int(r["segments"].max()) + 1
        return (f"{k} superpixels, {n_samples / k:.1f} samples per superpixel; "
                f"R<sup>2</sup> of the local linear model = {r['score']:.2f}")

    samples = options("samples", samples, int)
    n_segments, kernel_sizes = options("n_segments", n_segments), options("kernel_sizes",
                                                                          kernel_sizes)
    controls = {
        "n_samples": widgets.SelectionSlider(options=samples, value=samples[len(samples) // 2],
                                             description="samples", **_SLIDER),
        "segmentation": widgets.Dropdown(options=["slic", "quickshift"], value="slic",
                                         description="superpixels"),
        "n_segments": widgets.SelectionSlider(options=n_segments,
                                              value=n_segments[len(n_segments) // 2],
                                              description="SLIC segments", **_SLIDER),
        "kernel_size": widgets.SelectionSlider(options=kernel_sizes,
                                               value=kernel_sizes[len(kernel_sizes) // 2],
                                               description="quickshift kernel", **_SLIDER),
    }
    return _explorer(fig, controls, compute, render, status=status, canonical=canonical,
                    title="LIME: superpixels on and off, a local linear model")


# ------------------------------------------------------------------------------------------
# Grad-CAM
# ------------------------------------------------------------------------------------------


def _gradcam_layer_menu(model: keras.Model, limit: int = 8) -> list[str]:
    """Spatial layers after their activation (``relu``/``act`` in the name, else all spatial
    layers), at most ``limit`` of them, spread from shallow to deep."""
    names = [p[-1].name for p in surgery.spatial_layers(model)]
    acts = [n for n in names if "relu" in n or n.endswith("_act")] or names
    if len(acts) > limit:
        idx = np.unique(np.linspace(0, len(acts) - 1, limit).round().astype(int))
        acts = [acts[i] for i in idx]
    return acts


def gradcam_explorer(
    model: keras.Model,
    image,
    *,
    layers=None,
    classes=None,
    top: int = 5,
    guided: bool = False,
    batch_size: int | None = None,
) -> Explorer:
    """Grad-CAM with a layer menu, a class menu and a "guided" toggle (Guided Grad-CAM:
    Guided Backprop's map times the upsampled Grad-CAM, ``attribution.guided_gradcam``).

    Parameters
    ----------
    layers
        Layer names offered (default: up to 8 activation layers from shallow to deep).
    classes
        Class indices offered; default the ``top`` predicted classes. A model with a single
        sigmoid (or logit) output has two classes, as in ``course_utils.attribution``: 0, the
        class the unit scores, and 1, the other one, explained through the negated logit.

    The status line gives the raw maximum of the map: maps are drawn each with its own colour
    scale, so compare these numbers to see which class really has the stronger evidence.
    """
    s = subject(model, image, None)
    layers = list(options("layers", _gradcam_layer_menu(model) if layers is None else layers))
    for name in layers:
        surgery.require_spatial(model, name)
    scores = np.asarray(model(s.x, training=False))[0]  # one forward pass, not a hot loop
    head = scoring.head(model)
    if head.binary:  # class 1, the other class: 1 - p of a sigmoid, minus a bare logit
        other = 1.0 - scores[0] if head.activation == "sigmoid" else -scores[0]
        scores = np.array([scores[0], other])
    if classes is None:
        classes = np.argsort(scores)[::-1][:top]
    classes = list(options("classes", classes, int))
    bad = [c for c in classes if not 0 <= c < len(scores)]
    if bad:
        hint = " (a single sigmoid output: 0 = the scored class, 1 = the other)" * head.binary
        raise ValueError(
            f"Class {bad[0]} is outside the model's classes 0..{len(scores) - 1}{hint}.")

    def label(c: int) -> str:
        how = ", negated logit" if head.binary and c == 1 else ""
        return f"{s.name(c)} ({scores[c]:.2f}{how})"

    class_options = [(label(c), c) for c in classes]

    def compute(layer, target, guided):
        method = attribution.guided_gradcam if guided else attribution.gradcam
        return method(model, s.x, target, layer=layer, batch_size=batch_size)[0]

    fig = Canvas(2, image=s.shown, overlay=[False, True], label=s.label)
    fig.picture(0, s.shown, title=f"predicted: {s.name(int(np.argmax(scores)))}")

    def render(m, layer, target, guided):
        name = "Guided Grad-CAM" if guided else "Grad-CAM"
        fig.heat(1, m, title=f"{name} for {s.name(target)} at {layer}")
        return fig.image()

    def status(m, layer, target, guided):
        return f"raw maximum of the map {float(m.max()):.3g} (before display scaling)"

    controls = {
        "layer": widgets.Dropdown(options=layers, value=layers[-1], description="layer"),
        "target": widgets.Dropdown(options=class_options, value=classes[0],
                                   description="class"),
        "guided": widgets.Checkbox(value=bool(guided), description="guided (x Guided Backprop)"),
    }
    return _explorer(fig, controls, compute, render, status=status, warm_current=["guided"],
                    title="Grad-CAM: which regions raise this class, seen from this layer")


# ------------------------------------------------------------------------------------------
# Score-CAM
# ------------------------------------------------------------------------------------------

SCORECAM_CHANNELS = (4, 8, 16, 32, 64)


def scorecam_explorer(
    model: keras.Model,
    image,
    target=None,
    *,
    layers=None,
    channels=SCORECAM_CHANNELS,
    batch_size: int | None = None,
) -> Explorer:
    """Score-CAM with a layer menu and a slider for the channels used as masks
    (``max_channels``: the channels whose maps vary most; the last stop, ``"all"``, is every
    channel of the layer, one forward pass each).

    The status line gives the number of masked forward passes and the weights' range: each
    weight is the target's probability on the input masked by one channel.

    Examples
    --------
    Outside a notebook an explorer draws by printing, so the example silences stdout:

    >>> import contextlib, io, keras, numpy as np
    >>> keras.utils.set_random_seed(0)
    >>> m = keras.Sequential([keras.Input((12, 12, 1)),
    ...                       keras.layers.Conv2D(8, 3, activation="relu", name="act"),
    ...                       keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    >>> x = np.random.default_rng(0).random((12, 12, 1), dtype="float32")
    >>> with contextlib.redirect_stdout(io.StringIO()):
    ...     ex = scorecam_explorer(m, x, target=0, channels=(2, 4))
    ...     few, every = ex.set(max_channels=2), ex.set(max_channels="all")
    >>> few.result["channels"], every.result["channels"]
    (2, 8)
    """
    from course_utils.attribution.scorecam import channel_weights, weighted_upsampled
    from course_utils.engine import taps

    s = subject(model, image, target)
    layers = list(options("layers", _gradcam_layer_menu(model) if layers is None else layers))
    for name in layers:
        surgery.require_spatial(model, name)
    stops = (*options("channels", channels, int), "all")

    def compute(layer, max_channels):
        job = inputs.prepare(model, s.x, s.target, batch_size)
        kept = None if max_channels == "all" else max_channels
        a, w = channel_weights(model, job, taps.feature_path(model, layer), kept)
        return {"map": weighted_upsampled(a, w, s.x.shape[1:3])[0], "channels": a.shape[-1],
                "weights": w[0]}

    fig = Canvas(2, image=s.shown, overlay=[False, True], label=s.label)
    fig.picture(0, s.shown, title=f"explaining: {s.name(s.target)}")

    def render(r, layer, max_channels):
        fig.heat(1, r["map"], title=f"Score-CAM at {layer}, {r['channels']} channels")
        return fig.image()

    def status(r, layer, max_channels):
        w = r["weights"]
        return (f"{r['channels']} masked forward passes; channel weights (probability of "
                f"{s.name(s.target)} on each masked input) from {w.min():.3g} to {w.max():.3g}")

    controls = {
        "layer": widgets.Dropdown(options=layers, value=layers[-1], description="layer"),
        "max_channels": widgets.SelectionSlider(options=stops, value=stops[-1],
                                                description="channels", **_SLIDER),
    }
    return _explorer(fig, controls, compute, render, status=status,
                     title="Score-CAM: each channel masks the image, the class score weighs it")


# ------------------------------------------------------------------------------------------
# RISE
# ------------------------------------------------------------------------------------------

RISE_MASKS = (100, 250, 500, 1000, 2000)


def rise_explorer(
    model: keras.Model,
    image,
    target=None,
    *,
    masks=RISE_MASKS,
    grids=(2, 4, 7, 10),
    p_keeps=(0.1, 0.25, 0.5, 0.75),
    seed: int = 0,
    batch_size: int | None = None,
) -> Explorer:
    """RISE with sliders for the number of random masks, the grid (cells per side) and the
    probability that a cell is kept. The left panel shows one of the masked inputs.

    Examples
    --------
    Outside a notebook an explorer draws by printing, so the example silences stdout:

    >>> import contextlib, io, keras, numpy as np
    >>> m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2)])
    >>> with contextlib.redirect_stdout(io.StringIO()):
    ...     ex = rise_explorer(m, np.ones((8, 8, 1)), target=0, masks=(50, 100), grids=(2,))
    ...     update = ex.set(n_masks=50)
    >>> update.result["map"].shape
    (8, 8)
    """
    from course_utils.attribution.rise import mask_grids, masks_from_grids

    s = subject(model, image, target)
    h, w = s.x.shape[1:3]
    pmax = float(registry.info(model).pixel_max)
    masks, grids = options("masks", masks, int), options("grids", grids, int)
    p_keeps = options("p_keeps", p_keeps, float)

    def compute(n_masks, grid, p_keep):
        m = attribution.rise(model, s.x, s.target, n_masks=n_masks, grid=grid, p_keep=p_keep,
                             seed=seed, batch_size=batch_size)[0]
        g, sh = mask_grids(1, grid, p_keep, (h, w), seed)
        return {"map": m, "mask": masks_from_grids(g, sh, (h, w)).numpy()[0]}

    fig = Canvas(2, image=s.shown, overlay=[False, True], label=s.label)

    def render(r, n_masks, grid, p_keep):
        demo = r["mask"][..., None] * s.pixels  # black where the mask is 0
        fig.picture(0, display_image(demo, pmax), title=f"one mask: {grid}x{grid} cells, "
                    f"p = {p_keep:g}")
        fig.heat(1, r["map"], title=f"RISE for {s.name(s.target)}, {n_masks} masks")
        return fig.image()

    def status(r, n_masks, grid, p_keep):
        return (f"{n_masks} masked forward passes; map from {float(r['map'].min()):.3g} to "
                f"{float(r['map'].max()):.3g} (expected score of the inputs that keep a pixel)")

    controls = {
        "n_masks": widgets.SelectionSlider(options=masks, value=masks[len(masks) // 2],
                                           description="masks", **_SLIDER),
        "grid": widgets.SelectionSlider(options=grids, value=grids[len(grids) // 2],
                                        description="grid", **_SLIDER),
        "p_keep": widgets.SelectionSlider(options=p_keeps, value=p_keeps[len(p_keeps) // 2],
                                          description="p keep", **_SLIDER),
    }
    return _explorer(fig, controls, compute, render, status=status,
                     title="RISE: random masks weighted by the score of what they keep")
