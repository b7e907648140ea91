"""Feature visualization by activation maximization, many units in one batched optimization.

Start from noise and ascend the gradient of a unit's activation with respect to the input
picture. Two recipes:

``method="naive"``
    plain gradient ascent on the pixels, as in the classic Keras example ("Visualizing what
    convnets learn"): start from grey plus a little noise, 30 steps of size 0.016 (in ``[0, 1]``
    pixel units, RMS per pixel) along the L2-normalized gradient, no transforms, then Keras'
    display normalization (standardize to std 0.15 around grey, clip). The result is mostly
    high-frequency noise that nonetheless excites the unit: an adversarial pattern.
``method="lucid"``
    Lucid's recipe (Olah et al., "Feature Visualization", Distill 2017): a Fourier-space
    parameterization with ``1/f`` frequency scaling and decorrelated colours
    (:mod:`~course_utils.features.param`), random pad/jitter/scale/rotation at every step
    (:mod:`~course_utils.features.transforms`), Adam with learning rate 0.05, 512 steps.
    Optional total-variation and blur penalties (``tv``, ``blur``).

Image ``i`` of a batch serves unit ``i`` only (the objective is the sum of per-image scores,
the model runs in inference mode, Adam is per element), and every unit draws its initial noise
and its transforms from its own generator seeded by ``(seed, unit)``: visualizing 64 channels in
one batch gives the same pictures as 64 separate runs, up to floating-point rounding.

One optimization step is one compiled function, traced once per model, layer and static
options and called from a Python loop (a chunk of steps moves the progress bar and records the
history).
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from course_utils.engine import checks, kernels, scoring, spaces, taps
from course_utils.engine.images import fixed_hw, image_input_shape
from course_utils.features import objectives
from course_utils.features import transforms as tfm
from course_utils.features.param import LUCID, NAIVE, Param
from course_utils.models.registry import info

#: The optimization methods (parametrizations) and their default steps and learning rate.
DEFAULTS = {
    "lucid": {"steps": 512, "lr": 0.05},
    "naive": {"steps": 30, "lr": 0.016},
}
_CHUNK = 32  # steps per progress-bar update and history entry


@dataclass
class Visualization:
    """Pictures made by :func:`visualize`.

    Attributes
    ----------
    images
        ``(N, H, W, C)`` in ``[0, 1]`` (multiply by ``pixel_max`` for the model's pixel space).
    units
        The unit (channel / class) each picture maximizes.
    scores
        The objective of each returned picture, evaluated on the picture itself (no transforms).
    history
        ``(n_chunks, N)`` objective during the optimization (under the random transforms).
    """

    images: np.ndarray
    layer: str
    units: list[int]
    objective: str
    method: str
    scores: np.ndarray
    history: np.ndarray
    pixel_max: float = 1.0
    label: str = ""
    settings: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    def image(self, unit: int) -> np.ndarray:
        """The picture of ``unit`` (a channel or class index, not a position)."""
        if unit not in self.units:
            raise ValueError(f"Unit {unit} was not visualized; visualized units: {self.units}")
        return self.images[self.units.index(unit)]

    def pixels(self) -> np.ndarray:
        """The pictures in the model's pixel space ``[0, pixel_max]``."""
        return self.images * self.pixel_max

    def plot(self, **kwargs):
        """Show the pictures in a grid (:func:`~course_utils.features.plotting.plot_pictures`)."""
        from course_utils.features.plotting import plot_pictures

        return plot_pictures(self, **kwargs)


def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}.")
    if value < low or (high is not None and value > high):
        rng = f">= {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"{name} must be {rng}, got {value}.")
    return int(value)


def _total_variation(x: tf.Tensor) -> tf.Tensor:
    dy = tf.abs(x[:, 1:] - x[:, :-1])
    dx = tf.abs(x[:, :, 1:] - x[:, :, :-1])
    return tf.reduce_mean(dy, axis=[1, 2, 3]) + tf.reduce_mean(dx, axis=[1, 2, 3])


def _blur_penalty(x: tf.Tensor) -> tf.Tensor:
    blurred = tf.stop_gradient(tf.nn.avg_pool2d(x, 3, 1, "SAME"))
    return 0.5 * tf.reduce_mean(tf.square(x - blurred), axis=[1, 2, 3])


def _engine(model, tgt: objectives.Target, param: Param, size, c, out_hw, identity, naive,
            penalties):
    key = (tgt.kind, id(tgt.layer), param, size, out_hw, identity, naive, penalties)
    pshape = param.shape(size[0], size[1], c)
    imap = spaces.input_map(model)
    use_tv, use_blur = penalties  # static: a zero-weight penalty is not computed at all

    # Optimize logits, not probabilities. A channel/neuron behind a ReLU is read before the
    # ReLU: for the first `warmup` steps its pre-activation is maximized (a dead ReLU has no
    # gradient; this is what Lucid's redirected ReLU amounts to for a mean objective), after
    # that relu(pre-activation), which is exactly the layer's output.
    opt_path, names, has_relu = tgt.path, scoring.PROBABILITY_ACTIVATIONS, False
    if tgt.kind in ("channel", "neuron"):
        pre, fused = taps.pre_relu(model, tgt.path)
        if pre is not None:
            opt_path, has_relu = pre, True
            names = names + (("relu",) if fused else ())
    linear = scoring.read_linear(opt_path, names)

    def build():
        def scores_of(p, draws, units, warm):
            img = param.to_image(p, size[0], size[1], c)
            x = img if identity else tfm.apply(img, draws, out_hw)
            (act,) = taps.forward_until(model, imap(x * imap.pixel_max), [opt_path], linear)
            # pre-activation while warming up, else relu: the unit's max(value, floor)
            floor = tf.where(warm, tf.float32.min, 0.0) if has_relu else None
            return objectives.score(tgt.kind, act, units, floor), img

        # One optimization step per call, driven by a Python loop: on EfficientNet-Lite0 the same
        # body in a tf.while_loop took 1.5-1.9x the wall time (block4a 8 ch, stem 16 ch, 8 steps,
        # identical pictures); on the Fashion CNN (16 ch, 512 steps) the two are even.
        # autograph=False: the body (and the model's forward pass) has no tensor-dependent
        # Python control flow, and converting it costs more than tracing it: the first
        # naive call on the shapes CNN in a fresh process took 9.7 s with autograph and 1.0 s
        # without, Lite0's block6b 8.0 s and 5.5 s (machine shared, load ~10); the pictures
        # are bit-identical.
        @kernels.graph(
            [
                tf.TensorSpec((None, *pshape), tf.float32),  # parameters
                tf.TensorSpec((None, *pshape), tf.float32),  # Adam first moment
                tf.TensorSpec((None, *pshape), tf.float32),  # Adam second moment
                tf.TensorSpec((), tf.int32),  # steps done so far
                tf.TensorSpec((None, 4), tf.float32),  # this step's transform draws (B, 4)
                tf.TensorSpec((None,), tf.int32),  # unit of each image
                # learning rate, total-variation weight, blur weight, pre-ReLU warm-up steps:
                # one tensor, as every argument adds to the cost of a call
                tf.TensorSpec((4,), tf.float32),
            ]
        )
        def step(p, m, v, i, draws, units, hyper):
            lr, tv_w, blur_w, warmup = tf.unstack(hyper)
            with tf.GradientTape() as tape:
                tape.watch(p)
                s, img = scores_of(p, draws, units, tf.cast(i, tf.float32) < warmup)
                total = tf.reduce_sum(s)
                if use_tv:
                    total -= tv_w * tf.reduce_sum(_total_variation(img))
                if use_blur:
                    total -= blur_w * tf.reduce_sum(_blur_penalty(img))
            g = tape.gradient(total, p)
            if naive:  # normalized gradient ascent: RMS step of `lr` per element
                axes = list(range(1, len(pshape) + 1))
                rms = tf.sqrt(tf.reduce_mean(tf.square(g), axis=axes, keepdims=True))
                return p + lr * g / (rms + 1e-8), m, v, s
            # Adam (ascent): p + lr mhat / (sqrt(vhat) + eps) with the bias corrections of
            # mhat = m / (1 - 0.9^t) and vhat = v / (1 - 0.999^t) moved into two scalars (the
            # same update, two passes over the parameters fewer)
            t = tf.cast(i + 1, tf.float32)
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * tf.square(g)
            root = tf.sqrt(1.0 - tf.pow(0.999, t))
            step_size = lr * root / (1.0 - tf.pow(0.9, t))
            return p + step_size * m / (tf.sqrt(v) + 1e-8 * root), m, v, s

        return step

    return kernels.compiled(model, "features.visualize", build, options=key)


def _final(model, tgt: objectives.Target, c: int):
    """Compiled: objective of finished pictures ``[0, 1]`` on the layer's real output."""
    imap = spaces.input_map(model)
    linear = scoring.read_linear(tgt.path)

    def build():
        @kernels.graph(
            [
                tf.TensorSpec((None, None, None, c), tf.float32),
                tf.TensorSpec((None,), tf.int32),
            ]
        )
        def final(images, units):
            (act,) = taps.forward_until(model, imap(images * imap.pixel_max), [tgt.path],
                                        linear)
            return objectives.score(tgt.kind, act, units)

        return final

    return kernels.compiled(model, "features.final", build, options=(tgt.kind, id(tgt.layer)))


_RENDER: dict = {}


def _render(param: Param, size, c: int):
    """Compiled: parameters -> pictures (shared by all models)."""
    key = (param, size, c)
    if key not in _RENDER:
        spec = tf.TensorSpec((None, *param.shape(size[0], size[1], c)), tf.float32)
        _RENDER[key] = kernels.graph([spec])(lambda p: param.to_image(p, size[0], size[1], c))
    return _RENDER[key]


def _last_line(err: Exception) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return lines[-1] if lines else type(err).__name__


@contextlib.contextmanager
def _size_errors(model, tgt, size):
    """Turn a shape error (while tracing or on the first call) into a message about the
    picture size."""
    try:
        yield
    except (ValueError, TypeError, tf.errors.InvalidArgumentError) as err:
        fixed = fixed_hw(model)
        if fixed is None or tuple(size) == fixed:
            raise
        raise ValueError(
            f"Layer {tgt.layer_name!r} of model {model.name!r} cannot work on {size[0]}x{size[1]} "
            f"pictures (the model was built for {fixed[0]}x{fixed[1]}): use size={fixed[0]}. "
            f"Original error: {_last_line(err)}"
        ) from err


def _keras_display(x: np.ndarray) -> np.ndarray:
    """The classic Keras example's display normalization: std 0.15 around grey, clipped."""
    axes = tuple(range(1, x.ndim))
    x = x - x.mean(axis=axes, keepdims=True)
    x = x / (x.std(axis=axes, keepdims=True) + 1e-5) * 0.15
    return np.clip(x + 0.5, 0.0, 1.0)


def visualize(
    model: keras.Model,
    layer=None,
    channels=None,
    *,
    objective: str = "channel",
    method: str = "lucid",
    steps: int | None = None,
    size: int | tuple[int, int] | None = None,
    seed: int = 0,
    batch_size: int = 16,
    lr: float | None = None,
    param: Param | None = None,
    transforms: tfm.Transforms | None = None,
    tv: float = 0.0,
    blur: float = 0.0,
    warmup: int = 16,
    progress: bool = True,
) -> Visualization:
    """Pictures that maximize units of ``layer``, all units in one batched optimization.

    Parameters
    ----------
    model
        A Keras model with one image input (nested models are fine). Its
        ``info(model).preprocess`` maps the optimized pixel-space picture to the model input.
    layer
        Layer name, index or object (ignored for ``objective="class"``).
    channels
        Unit indices: channels for ``"channel"``/``"neuron"`` (default: all channels), class
        indices for ``"class"``; ignored for ``"layer"`` (one picture).
    objective
        ``"channel"``, ``"neuron"``, ``"layer"`` (DeepDream's) or ``"class"``; see
        :mod:`~course_utils.features.objectives`.
    method
        ``"lucid"`` (readable pictures) or ``"naive"`` (plain gradient ascent).
    steps
        Optimization steps (default 512 for lucid, 30 for naive).
    size
        Picture size in pixels (default: the model's input size, or 128 when it takes any size).
        The convolutional layers of a fixed-size model (VGG16 with its top) take any size, so
        channel pictures of ``block5_conv1`` can be 128 px; class pictures need the model's size.
    seed
        Seed; unit ``u``'s noise and transforms come from ``(seed, u)``.
    batch_size
        Pictures optimized together (bounds memory; the units are split into chunks of this).
    lr
        Learning rate (default 0.05 for Adam; 0.016 RMS pixel step for naive).
    param, transforms
        Override the parameterization / transforms of the method (default for lucid:
        ``Transforms.lucid().for_size(*size)``, Lucid's amounts shrunk below 128 px).
    tv, blur
        Weights of a total-variation and a blur penalty (in units of the objective).
    warmup
        Steps that maximize a channel's pre-ReLU value before its post-ReLU value (Lucid's
        redirected ReLU: a channel that starts dead still gets a gradient).
    progress
        Show a progress bar.

    Returns
    -------
    :class:`Visualization` with ``images`` in ``[0, 1]``.

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((None, None, 3)),
    ...                       keras.layers.Conv2D(4, 3, activation="relu", name="c")])
    >>> vis = visualize(m, "c", [0, 2], steps=4, size=16, progress=False)
    >>> vis.images.shape, vis.units
    ((2, 16, 16, 3), [0, 2])
    """
    if not isinstance(method, str) or method not in DEFAULTS:
        raise ValueError(
            f"Unknown method {method!r}; choose one of {', '.join(map(repr, DEFAULTS))}."
        )
    if objective not in objectives.KINDS:
        raise ValueError(
            f"Unknown objective {objective!r}; choose one of {', '.join(objectives.KINDS)}."
        )
    tgt = objectives.target(model, objective, layer, channels)
    naive = method == "naive"
    steps = _check_int("steps", DEFAULTS[method]["steps"] if steps is None else steps, 1, 100_000)
    batch_size = _check_int("batch_size", batch_size, 1)
    seed = _check_int("seed", seed, 0)
    warmup = _check_int("warmup", warmup, 0)
    lr = checks.at_least(DEFAULTS[method]["lr"] if lr is None else lr, "lr", 0.0, strict=True)
    tv = checks.at_least(tv, "tv", 0.0)
    blur = checks.at_least(blur, "blur", 0.0)
    param = param if param is not None else (NAIVE if naive else LUCID)

    fixed = fixed_hw(model)
    _, _, c = image_input_shape(model)
    if size is None:
        size = fixed if fixed is not None else (128, 128)
    size = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(size) != 2:
        raise ValueError(f"size must be an int or (height, width), got {size!r}.")
    size = tuple(_check_int("size", s, 8, 2048) for s in size)
    if fixed is not None and objective == "class" and size != fixed:
        raise ValueError(
            f"Model {model.name!r} takes {fixed[0]}x{fixed[1]} images only and a class score "
            f"needs the whole model; use size={fixed[0]} (or leave size unset)."
        )
    if transforms is None:
        transforms = tfm.Transforms.none() if naive else tfm.Transforms.lucid().for_size(*size)
    # at its own size a fixed-size model sees transformed pictures cropped back to that size;
    # its convolutional part takes other sizes too (the class score does not)
    out_hw = fixed if (fixed is not None and size == fixed) else transforms.out_size(*size)
    identity = transforms.is_identity and out_hw == size

    # the step's one concrete function, called directly: a call of the tf.function itself
    # binds its arguments to the signature first (with 10 arguments 0.8-1.1 ms a step, with 7
    # called this way ~0.3 ms, on a 2-core VM; Lite0's stem with one picture: 13-14 -> 9-10 ms
    # a step, README "Speed, measured")
    with _size_errors(model, tgt, size):  # tracing meets a layer that cannot take `size`
        run = _engine(model, tgt, param, size, c, out_hw, identity, naive,
                      (tv > 0, blur > 0)).get_concrete_function()
    hyper = tf.constant([lr, tv, blur, warmup], tf.float32)  # in the order of the step's spec
    counters = tf.unstack(tf.range(steps))  # the step index of each call, shared by the chunks
    final = _final(model, tgt, c)
    render = _render(param, size, c)
    units = list(tgt.units)
    chunks = [units[i : i + batch_size] for i in range(0, len(units), batch_size)]
    images, scores, history = [], [], []
    bar = tqdm(
        total=steps * len(units), disable=not progress, unit="unit-step",
        desc=f"{method} {objective} {tgt.layer_name}",
    )
    try:
        for chunk in chunks:
            seeds = [(seed, u) for u in chunk]
            p = tf.constant(param.init(seeds, size[0], size[1], c))
            m = tf.zeros_like(p)
            v = tf.zeros_like(p)
            draws = np.stack(
                [transforms.sample(np.random.default_rng((seed, u, 1)), steps) for u in chunk],
                axis=1,
            )
            u_t = tf.constant(chunk, tf.int32)
            draws = tf.unstack(tf.constant(draws))  # one (B, 4) tensor per step
            hist = []
            for i in range(steps):
                args = (p, m, v, counters[i], draws[i], u_t, hyper)
                with _size_errors(model, tgt, size) if i == 0 else contextlib.nullcontext():
                    p, m, v, s = run(*args)
                if (i + 1) % _CHUNK == 0 or i + 1 == steps:
                    hist.append(s.numpy())
                    bar.update(((i % _CHUNK) + 1) * len(chunk))
            img = np.asarray(render(p))
            img = _keras_display(img) if naive else img
            images.append(img)
            scores.append(np.asarray(final(tf.constant(img), u_t)))
            history.append(np.stack(hist))
    finally:
        bar.close()
    meta = info(model)
    return Visualization(
        images=np.concatenate(images).astype("float32"),
        layer=tgt.layer_name,
        units=units,
        objective=objective,
        method=method,
        scores=np.concatenate(scores),
        history=np.concatenate(history, axis=1),
        pixel_max=float(meta.pixel_max),
        label=meta.label,
        settings={
            "steps": steps, "size": size, "seed": seed, "lr": lr, "tv": tv, "blur": blur,
            "warmup": warmup,
            "batch_size": batch_size, "param": asdict(param), "transforms": asdict(transforms),
        },
    )


def class_visualization(model: keras.Model, classes, **kwargs) -> Visualization:
    """Pictures that maximize class logits (Simonyan et al. 2013); see :func:`visualize`.

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(3, activation="softmax")])
    >>> class_visualization(m, [1], steps=2, progress=False).images.shape
    (1, 16, 16, 3)
    """
    return visualize(model, None, classes, objective="class", **kwargs)
