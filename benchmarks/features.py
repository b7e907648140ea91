"""Time batched feature visualization against tf-keras-vis' ActivationMaximization.

    python -m benchmarks.features [--steps 32] [--repeats 3] [--size 128] [--quick]
                                  [--model {vgg16,efficientnet_lite0}] [--pieces]
                                  [--deepdream] [--layers [LAYER ...]]

Model: ``keras.applications.VGG16(weights=None, include_top=False)`` by default (RANDOM weights:
timing does not need trained weights; nothing is downloaded), layers ``block1_conv2``,
``block3_conv1``, ``block5_conv1`` at 128 px; ``--model efficientnet_lite0`` times the course's
EfficientNet-Lite0 with its real ImageNet weights at 224 px, on the shallow / middle / deep
layers lesson 03 shows (``stem_activation``, ``block4a_expand_activation``,
``block6b_expand_activation``). For each layer and for 1 and 16 channels, both
implementations optimize the same channels for the same number of steps from a ``size`` px
picture:

* ``course_utils`` -- :func:`course_utils.features.visualize` with its Lucid defaults (FFT +
  decorrelated colour, pad 12 / jitter / scale / rotate, Adam), all channels in one batch;
* ``tf-keras-vis`` -- ``ActivationMaximization`` with ``ExtractIntermediateLayer`` and
  ``CategoricalScore(channels)`` (its defaults: Jitter + Rotate2D, TV + norm regularizers,
  RMSprop), one picture per channel in one batch, as its documentation shows.

Each implementation gets one untimed warm-up call (tracing / model surgery are one-off costs,
reported separately), then ``--repeats`` rounds: one timed call of each implementation, then
three of the bound (and of each piece), so that a slow spell of a shared machine hits all of
them. The table shows medians and the time per channel-step (the whole call divided by channels
x steps: a call's fixed work, about one forward pass, is included). ``bound`` is one compiled
forward+backward pass to the layer per picture at the size our transformed pictures have, batch
1 or 16: the floor for the network's part of any step. It runs at the size :func:`visualize`
really feeds the network: ``size`` + 12 px (Lucid's pad 12 minus jitter), except for a
fixed-size model at its own size (Lite0 at 224 px), whose transformed pictures are cropped back
to that size. ``--pieces`` adds where a step's time goes: each piece of the step compiled on its
own at the same batch and sizes (render = Fourier parameterization + colour decorrelation +
sigmoid, forward and backward; transform = one ImageProjectiveTransformV3 forward and backward;
Adam update; and, for comparison only, render_autodiff: the same picture with the backward
pass that autodiff builds for the plain composition instead of the written-out one of
:func:`course_utils.features.param.spectrum_to_image`; and ``call``, a compiled function that
only hands its input back: what calling any compiled function costs, which a step pays once
and each separately timed piece pays again), timed interleaved with the bound, and the column
``x pieces``: our time per channel-step over the bound plus each piece less one ``call``, the
compiled floor of the step as a whole. ``--deepdream`` adds DeepDream as lesson 03 runs it (3
octaves of 20 steps, the lesson's two layers, a 224 px photo) against its bound: the same number
of compiled forward+backward passes to those layers at each octave's size, timed in the same
rounds. Output: stdout and ``benchmarks/results/features.txt`` (``features_<model>.txt`` for
another ``--model``; ``deepdream[_<model>].txt`` when ``--layers`` names none: DeepDream alone).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from benchmarks._models import MODELS, choose
from course_utils import config
from course_utils.engine import spaces, taps
from course_utils.engine.images import fixed_hw
from course_utils.features import Transforms, deepdream, visualize
from course_utils.features import transforms as tfm
from course_utils.features.param import COLOR_CORRELATION_NORMALIZED, LUCID, rfft2d_freqs

DEFAULT_MODEL = "vgg16"
#: The layers lesson 03 dreams with, per network.
DREAM_LAYERS = {"vgg16": ("block3_conv3", "block4_conv3"),
                "efficientnet_lite0": ("block4c_expand_activation", "block5c_expand_activation")}
RESULTS = MODELS[DEFAULT_MODEL].results("features", DEFAULT_MODEL)
#: Pieces timed for comparison only, not part of a step (left out of ``x pieces``).
REFERENCES = ("render_autodiff", "call")


def _tkv(model, layer):
    """tf-keras-vis' ActivationMaximization on ``layer`` (None when it does not import)."""
    try:
        from tf_keras_vis.activation_maximization import ActivationMaximization
        from tf_keras_vis.utils.model_modifiers import ExtractIntermediateLayer
        from tf_keras_vis.utils.scores import CategoricalScore
    except Exception as err:  # noqa: BLE001 - report any import failure in the table
        return None, f"tf-keras-vis unavailable: {err!r}"
    am = ActivationMaximization(model, model_modifier=[ExtractIntermediateLayer(layer)],
                                clone=False)

    def run(channels, steps, size, seed=0):
        rng = np.random.default_rng(seed)
        seed_input = tf.constant(rng.uniform(0, 1, (len(channels), size, size, 3)), tf.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return am(CategoricalScore(list(channels)), seed_input=seed_input,
                      input_range=(0.0, 1.0), steps=steps)

    return run, ""


def _run(fn) -> None:
    tf.nest.map_structure(lambda t: t.numpy(), fn())


def _bound(model, layer, batch, hw, size=None) -> dict:
    """Compiled, warmed-up functions: one forward+backward pass to ``layer`` of ``batch``
    pictures (``"bound"``); with ``size``, also the pieces of a Lucid step at that picture size
    (render, transform, Adam).
    """
    path = taps.resolve(model, layer)[0]

    @tf.function
    def fb(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            (a,) = taps.forward_until(model, x, [path])
            s = tf.reduce_sum(tf.reduce_mean(a, axis=[1, 2]))
        return tape.gradient(s, x)

    x = tf.random.uniform((batch, hw, hw, 3))
    fns = {"bound": lambda: fb(x)}
    if size is not None:
        p = tf.constant(LUCID.init(list(range(batch)), size, size, 3))
        img = LUCID.to_image(p, size, size, 3)
        draws = tf.constant(Transforms.lucid().sample(np.random.default_rng(0), batch))

        @tf.function
        def render(p):
            with tf.GradientTape() as tape:
                tape.watch(p)
                s = tf.reduce_sum(LUCID.to_image(p, size, size, 3) * img)
            return tape.gradient(s, p)

        @tf.function
        def transform(im):
            with tf.GradientTape() as tape:
                tape.watch(im)
                s = tf.reduce_sum(tfm.apply(im, draws, (hw, hw)) * x)
            return tape.gradient(s, im)

        @tf.function
        def adam(p, m, v):
            m = 0.9 * m + 0.1 * p
            v = 0.999 * v + 0.001 * tf.square(p)
            return p + 0.05 * (m / 0.1) / (tf.sqrt(v / 0.001) + 1e-8), m, v

        @tf.function
        def render_autodiff(p):
            with tf.GradientTape() as tape:
                tape.watch(p)
                s = tf.reduce_sum(_plain_render(p, size) * img)
            return tape.gradient(s, p)

        @tf.function
        def call(p):
            return tf.identity(p)

        fns.update(render=lambda: render(p), transform=lambda: transform(img),
                   adam=lambda: adam(p, p, p), render_autodiff=lambda: render_autodiff(p),
                   call=lambda: call(p))
    for fn in fns.values():
        _run(fn)
    return fns


def _floor(parts: dict) -> float:
    """The bound plus each piece of a step less the cost of one call (``parts["call"]``): a step
    is one call, the pieces timed on their own are one call each."""
    return parts["bound"] + sum(v - parts["call"] for k, v in parts.items()
                                if k != "bound" and k not in REFERENCES)


def _plain_render(p, size: int):
    """LUCID's picture as autodiff differentiates the plain composition (``tf.complex`` of
    the scaled parts, ``irfft2d``): the reference for the written-out backward pass of
    :func:`course_utils.features.param.spectrum_to_image` (piece ``render_autodiff``)."""
    freqs = rfft2d_freqs(size, size)
    scale = (np.sqrt(size * size) / 4.0 / np.maximum(freqs, 1.0 / size)).astype("float32")
    spectrum = tf.complex(p[..., 0] * scale, p[..., 1] * scale)
    x = tf.transpose(tf.signal.irfft2d(spectrum, fft_length=[size, size]), (0, 2, 3, 1))
    return tf.sigmoid(tf.tensordot(x, tf.constant(COLOR_CORRELATION_NORMALIZED.T), axes=1))


def _dream(model, layers, size, steps, repeats, octaves=3, octave_scale=1.4) -> tuple:
    """DeepDream's median seconds on a ``size`` px photo against its bound: ``steps`` compiled
    forward+backward passes to ``layers`` (loss as in :func:`deepdream`) at each octave's size,
    timed in the same rounds."""
    paths = taps.resolve(model, list(layers))
    pmax = float(spaces.input_map(model).pixel_max)
    photo = np.random.default_rng(0).uniform(0, pmax, (size, size, 3)).astype("float32")
    shapes = [max(int(round(size / octave_scale**i)), 8) for i in reversed(range(octaves))]

    @tf.function
    def fb(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            acts = taps.forward_until(model, x, paths)
            loss = tf.add_n([tf.reduce_mean(tf.square(a)) for a in acts])
        return tape.gradient(loss, x)

    xs = [tf.random.uniform((1, n, n, 3)) * pmax for n in shapes]
    dream = lambda: deepdream(model, photo, list(layers), octaves=octaves,  # noqa: E731
                              octave_scale=octave_scale, steps=steps, progress=False)
    dream()
    for x in xs:
        _run(lambda x=x: fb(x))
    t_dream, t_bound = [], []
    for _ in range(repeats):
        _time(dream, t_dream)
        t0 = time.perf_counter()
        for x in xs:
            for _ in range(steps):
                _run(lambda x=x: fb(x))
        t_bound.append(time.perf_counter() - t0)
    return statistics.median(t_dream), statistics.median(t_bound), shapes


def _time(fn, repeats_out: list):
    t0 = time.perf_counter()
    fn()
    repeats_out.append(time.perf_counter() - t0)


def main(argv=None) -> str:
    """Run the benchmark, print and save the table; return it."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.features", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=32,
                    help="optimization steps per run (a call's fixed work, its parameters and "
                         "its finished pictures' score, one forward pass, is shared by them; the "
                         "lessons run 64-512)")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per implementation")
    ap.add_argument("--size", type=int, help="picture size in pixels (default: 128 for vgg16, "
                    "224 for efficientnet_lite0)")
    ap.add_argument("--channels", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--layers", nargs="*", help="default: the model's shallow, middle and deep "
                    "layers (vgg16: block1_conv2 block3_conv1 block5_conv1); none named: no "
                    "activation maximization (with --deepdream, DeepDream alone)")
    ap.add_argument("--model", **choose(("vgg16", "efficientnet_lite0"), DEFAULT_MODEL))
    ap.add_argument("--pieces", action="store_true",
                    help="also time the pieces of a step (render, transform, Adam)")
    ap.add_argument("--deepdream", action="store_true",
                    help="also time DeepDream (3 octaves, lesson 03's layers) against its bound")
    ap.add_argument("--quick", action="store_true",
                    help="one layer (the middle one), 4 steps, 1 repeat")
    args = ap.parse_args(argv)
    spec = MODELS[args.model]
    args.size = args.size or spec.feature_size
    args.layers = list(spec.feature_layers) if args.layers is None else args.layers
    if args.quick:
        args.steps, args.repeats, args.layers = 4, 1, [spec.feature_layers[1]]
    started = time.time()
    keras.utils.set_random_seed(0)
    model = spec.build()
    fixed = fixed_hw(model)  # as visualize does: a fixed-size model sees its own size
    out_hw = (fixed[0] if fixed == (args.size, args.size)
              else Transforms.lucid().out_size(args.size, args.size)[0])
    rows, notes, pieces = [], [], []
    for layer in args.layers:
        tkv, why = _tkv(model, layer)
        if tkv is None:
            notes.append(why)
        for n in args.channels:
            channels = list(range(n))
            ours = lambda ch=channels, la=layer: visualize(  # noqa: E731
                model, la, ch, steps=args.steps, size=args.size, batch_size=len(ch),
                progress=False)
            t0 = time.perf_counter()
            visualize(model, layer, channels, steps=1, size=args.size, batch_size=n,
                      progress=False)
            first_ours = time.perf_counter() - t0
            first_tkv = float("nan")
            if tkv is not None:
                t0 = time.perf_counter()
                tkv(channels, 1, args.size)
                first_tkv = time.perf_counter() - t0
            fns = _bound(model, layer, n, out_hw, args.size if args.pieces else None)
            t_ours, t_tkv, t_parts = [], [], {k: [] for k in fns}
            for _ in range(args.repeats):  # a round: ours, the peer, then the bound and pieces
                _time(ours, t_ours)
                if tkv is not None:
                    _time(lambda ch=channels, f=tkv: f(ch, args.steps, args.size), t_tkv)
                for k, fn in fns.items():
                    for _ in range(3):
                        _time(lambda f=fn: _run(f), t_parts[k])
            parts = {k: statistics.median(v) / n for k, v in t_parts.items()}
            bound = parts["bound"]
            if args.pieces:
                pieces.append((layer, n, parts))
            cs = n * args.steps
            med_ours = statistics.median(t_ours)
            rows.append((layer, n, "course_utils (lucid)", med_ours, min(t_ours),
                         med_ours / cs, bound, first_ours, None,
                         _floor(parts) if args.pieces else None))
            if t_tkv:
                med_tkv = statistics.median(t_tkv)
                rows.append((layer, n, "tf-keras-vis ActivationMaximization", med_tkv,
                             min(t_tkv), med_tkv / cs, bound, first_tkv, med_tkv / med_ours,
                             None))
            print(f"  {layer} x{n}: ours {med_ours:.2f}s"
                  + (f", tf-keras-vis {statistics.median(t_tkv):.2f}s" if t_tkv else ""),
                  flush=True)
    w = max([14, *(len(la) + 1 for la in args.layers)])
    head = (f"{'layer':<{w}}{'ch':>4}  {'implementation':<36}{'median s':>9}{'min s':>8}"
            f"{'ms/ch-step':>11}{'bound ms':>9}{'x bound':>8}{'1st call s':>11}"
            f"{'tkv/ours':>9}" + (f"{'x pieces':>9}" if args.pieces else ""))
    dream = None
    if args.deepdream:
        dream_size = spec.feature_size if args.model != "vgg16" else 224
        dream_steps = 20  # lesson 03's full setting, per octave
        dream = _dream(model, DREAM_LAYERS[args.model], dream_size, dream_steps, args.repeats)
    lines = [
        f"Feature-visualization benchmark: {spec.title}, {args.size}x{args.size}, "
        f"{spec.weights}",
        f"{platform.node() or 'host'} | {os.cpu_count()} CPU cores (shared) | "
        f"TF {tf.__version__} (oneDNN kernels: {config.onednn_enabled()}) | "
        f"Keras {keras.__version__} | steps {args.steps} | "
        f"repeats {args.repeats} | {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} | "
        f"run {(time.time() - started) / 60:.1f} min"
        + (" | QUICK" if args.quick else ""),
    ]
    if rows:
        lines += [
            f"ms/ch-step = median / (channels x steps); bound = compiled forward+backward to the "
            f"layer per picture at {out_hw} px (our transformed size), same batch; "
            "tkv/ours = tf-keras-vis median / our median (same channels, same steps)"
            + ("; x pieces = ms/ch-step / (bound + render + transform + Adam, each piece less "
               "`call`, the cost of calling a compiled function, which a step pays once): "
               "the step's own compiled parts, what no composition of them can beat"
               if args.pieces else ""),
            "each round: one call of ours, one of the peer, then 3 of the bound (and of each "
            "piece); medians over the rounds",
            "", head, "-" * len(head),
        ]
    for layer, n, impl, med, mn, per, bound, first, ratio, pieces_sum in rows:
        lines.append(
            f"{layer:<{w}}{n:>4}  {impl:<36}{med:9.2f}{mn:8.2f}{per * 1e3:11.1f}"
            f"{bound * 1e3:9.1f}{per / bound:8.2f}{first:11.2f}"
            + (f"{ratio:8.1f}x" if ratio is not None else " " * 9)
            + (f"{per / pieces_sum:9.2f}" if pieces_sum else "")
        )
    if pieces:
        lines += ["", "Pieces of one step, each compiled on its own, ms per picture (x bound):"]
        for layer, n, parts in pieces:
            lines.append(f"  {layer:<{w}}{n:>4}  " + "  ".join(
                f"{k} {v * 1e3:.1f} ({v / parts['bound']:.2f})" for k, v in parts.items()))
    if dream is not None:
        med, bound, shapes = dream
        dream_layers = " + ".join(DREAM_LAYERS[args.model])
        octave_px = " / ".join(f"{n} px" for n in shapes)
        lines += ["", f"DeepDream on a {dream_size} px photo, layers {dream_layers}, 3 octaves "
                  f"({octave_px}), {dream_steps} steps each: median {med:.2f} s, bound "
                  f"{bound:.2f} s (the same number of compiled forward+backward passes at each "
                  f"octave's size, same rounds), x bound {med / bound:.2f}"]
    if rows:
        lines += ["", "notes:"] + [f"  {n}" for n in notes] + [
            f"  ours feeds the network {out_hw}-px transformed pictures, tf-keras-vis "
            f"{args.size}-px ones: ours does ~{((out_hw / args.size) ** 2 - 1) * 100:.0f}% more "
            "pixels per step.",
            "  1st call = first call with 1 step (tracing for ours; model surgery + eager "
            "warm-up for tf-keras-vis), not included in the medians.",
        ]
    table = "\n".join(lines)
    print(table)
    results = spec.results("features" if args.layers else "deepdream", DEFAULT_MODEL)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(table + "\n")
    return table


if __name__ == "__main__":
    main()
