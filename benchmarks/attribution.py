"""Time every attribution method against its peers and its lower bound, on one model and input.

    python -m benchmarks.attribution [--repeats 5] [--quick] [--only METHOD ...]
                                     [--model {mobilenet_v2,efficientnet_lite0}] [--out FILE]

Model: ``keras.applications.MobileNetV2(weights=None)`` at 224 px by default (random weights:
timing does not need trained weights; nothing is downloaded); ``--model efficientnet_lite0``
times the course's EfficientNet-Lite0 with its real ImageNet weights, also at 224 px. Grad-CAM
and the peers' CAMs read the model's last spatial feature map (``out_relu``, ``top_activation``).
The lower bound of a method is the number of
forward (F) or forward+backward (FB) passes it needs times the best per-image pass time (the
median of ``--repeats`` at the best of several batch sizes), measured in the same run with a
compiled function. Peers:
tf-keras-vis (Saliency, SmoothGrad, Gradcam, Gradcam++, Scorecam), lime's ``explain_instance``
with its defaults (classifier ``model.predict``), shap's ``GradientExplainer``, tf-explain when
it imports. Every implementation gets one untimed warm-up call (tracing); then ours and the
peers are called in alternation, ``--repeats`` rounds, and the table shows medians (of times,
and of the peer / ours ratio within a round). Output: stdout and
``benchmarks/results/attribution.txt`` (``attribution_<model>.txt`` for another ``--model``,
or ``--out``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from benchmarks._models import MODELS, BenchModel, choose
from course_utils import attribution, config, surgery
from course_utils.engine import batching

DEFAULT_MODEL = "mobilenet_v2"
RESULTS = MODELS[DEFAULT_MODEL].results("attribution", DEFAULT_MODEL)


@dataclass
class Case:
    """One method on one input: ours, the peers, and how many passes it needs."""

    method: str
    images: int
    passes: int
    kind: str  # "F" (forward) or "FB" (forward + backward)
    ours: Callable[[], object]
    # name -> (call, passes, "F"/"FB"[, images when not the case's])
    peers: dict[str, tuple] = field(default_factory=dict)
    warmup: Callable[[], object] | None = None
    note: str = ""


def timed(fn: Callable[[], object], repeats: int, warmup: Callable[[], object] | None) -> list:
    """Durations of ``repeats`` calls after one untimed warm-up call."""
    (warmup or fn)()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def pass_fns(model: keras.Model) -> dict[str, Callable]:
    """Compiled forward (F) and forward+backward (FB, input gradient of one logit) passes of the
    model as it is, and the same with its batch norms folded into the convolutions (F*, FB*:
    the graph course_utils runs, see course_utils.folding)."""

    def make(call):
        @tf.function(reduce_retracing=True, autograph=False)
        def forward(x):
            return call(x)

        @tf.function(reduce_retracing=True, autograph=False)
        def forward_backward(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                s = tf.reduce_sum(call(x)[:, 0])
            return tape.gradient(s, x)

        return forward, forward_backward

    f, fb = make(lambda x: model(x, training=False))
    ff, ffb = make(lambda x: surgery.forward(model, x))
    return {"F": f, "FB": fb, "F*": ff, "FB*": ffb}


def pass_times(fns, shape, repeats: int, sizes=(1, 2, 4, 8, 16, 32)) -> tuple[dict, dict]:
    """Best per-image time of each kind of pass over ``sizes`` batch sizes, as
    ``(from the median of the repeats, from the fastest repeat)``."""
    med = dict.fromkeys(fns, np.inf)
    low = dict.fromkeys(fns, np.inf)
    rng = np.random.default_rng(0)
    for bs in sizes:
        x = tf.constant(rng.uniform(-1, 1, (bs,) + tuple(shape)), "float32")
        for kind, fn in fns.items():
            t = timed(lambda fn=fn, x=x: fn(x).numpy(), repeats, None)
            med[kind] = min(med[kind], statistics.median(t) / bs)
            low[kind] = min(low[kind], min(t) / bs)
    return med, low


def build_cases(model, x, pixels, quick: bool, preprocess: Callable) -> list[Case]:
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.scorecam import Scorecam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    n_many = 4 if quick else 8
    xm = x[:n_many]
    targets = np.zeros(len(x), "int64") + 3
    score = CategoricalScore(list(targets[:n_many]))
    score2 = CategoricalScore(list(targets[:2]))
    score1 = CategoricalScore([int(targets[0])])
    linear = ReplaceToLinear()
    tkv_sal = Saliency(model, model_modifier=linear, clone=True)
    tkv_cam = Gradcam(model, model_modifier=linear, clone=True)
    tkv_pp = GradcamPlusPlus(model, model_modifier=linear, clone=True)
    tkv_score = Scorecam(model, model_modifier=linear, clone=True)
    layer = surgery.last_spatial_layer(model).name  # what our Grad-CAM reads by default
    # tf-keras-vis would otherwise swap the activation for the raw Conv2D before batch norm.
    tkv_layer = {"penultimate_layer": layer, "seek_penultimate_conv_layer": False}
    sg, ig, lime_n, shap_n, scorecam_n, rise_n = (
        (10, 16, 200, 50, 32, 100) if quick else (25, 64, 1000, 200, 128, 1000))
    A = attribution
    cases = [
        Case("saliency", 1, 1, "FB", lambda: A.saliency(model, x[:1], targets[:1]),
             {"tf-keras-vis Saliency": (lambda: tkv_sal(score1, x[:1]), 1, "FB")}),
        Case("saliency", n_many, n_many, "FB", lambda: A.saliency(model, xm, targets[:n_many]),
             {"tf-keras-vis Saliency": (lambda: tkv_sal(score, xm), n_many, "FB")}),
        Case("smoothgrad", 2, 2 * sg, "FB",
             lambda: A.smoothgrad(model, x[:2], targets[:2], n_samples=sg),
             {"tf-keras-vis SmoothGrad": (
                 lambda: tkv_sal(score2, x[:2], smooth_samples=sg, smooth_noise=0.15),
                 2 * sg, "FB")},
             warmup=lambda: A.smoothgrad(model, x[:2], targets[:2], n_samples=4)),
        Case("integrated_gradients", 1, ig + 2, "FB",
             lambda: A.integrated_gradients(model, x[:1], targets[:1], steps=ig),
             warmup=lambda: A.integrated_gradients(model, x[:1], targets[:1], steps=4),
             note="+2 F for the completeness check, counted as FB"),
        Case("occlusion", 1, 15 * 15 + 1, "F",
             lambda: A.occlusion(model, x[:1], targets[:1]),
             note="window 28, stride 14: 225 patches + 1"),
        Case("cam", n_many, n_many, "F", lambda: A.cam(model, xm, targets[:n_many])),
        Case("gradcam", 1, 1, "FB", lambda: A.gradcam(model, x[:1], targets[:1]),
             {"tf-keras-vis Gradcam": (lambda: tkv_cam(score1, x[:1], **tkv_layer), 1, "FB")}),
        Case("gradcam", n_many, n_many, "FB", lambda: A.gradcam(model, xm, targets[:n_many]),
             {"tf-keras-vis Gradcam": (
                 lambda: tkv_cam(score, xm, **tkv_layer),
                 n_many, "FB")}),
        Case("gradcam_plus_plus", n_many, n_many, "FB",
             lambda: A.gradcam_plus_plus(model, xm, targets[:n_many]),
             {"tf-keras-vis Gradcam++": (
                 lambda: tkv_pp(score, xm, **tkv_layer),
                 n_many, "FB")}),
        Case("scorecam", 1, scorecam_n + 1, "F",
             lambda: A.scorecam(model, x[:1], targets[:1], max_channels=scorecam_n),
             {f"tf-keras-vis Scorecam (max_N={scorecam_n})": (
                 lambda: tkv_score(score1, x[:1], max_N=scorecam_n, **tkv_layer),
                 scorecam_n + 1, "F")},
             note=f"{scorecam_n} masked inputs + 1 pass for the feature map"),
        Case("rise", 1, rise_n, "F",
             lambda: A.rise(model, x[:1], targets[:1], n_masks=rise_n),
             note=f"{rise_n} masked inputs, 7 x 7 grid"),
        Case("gradient_x_input", n_many, n_many, "FB",
             lambda: A.gradient_x_input(model, xm, targets[:n_many])),
        Case("guided_backprop", n_many, n_many, "FB",
             lambda: A.guided_backprop(model, xm, targets[:n_many])),
        Case("guided_gradcam", n_many, 2 * n_many, "FB",
             lambda: A.guided_gradcam(model, xm, targets[:n_many]),
             note="Guided Backprop (FB) + Grad-CAM (F + backward to the feature layer), "
                  "counted as 2 FB"),
        *(Case(kind, 2, 2 * sg, "FB",
               lambda kind=kind: A.noise_tunnel(A.saliency, kind, n_samples=sg)(
                   model, x[:2], targets[:2]),
               warmup=lambda kind=kind: A.noise_tunnel(A.saliency, kind, n_samples=4)(
                   model, x[:2], targets[:2]),
               note=f"noise_tunnel(saliency, {kind!r}, n_samples={sg})")
          for kind in ("smoothgrad_sq", "vargrad")),
        Case("lime", 1, lime_n, "F",
             lambda: A.lime(model, x[:1], targets[:1], n_samples=lime_n),
             {"lime explain_instance (defaults)": (
                 lambda: _lime_peer(model, pixels[0], lime_n, preprocess), lime_n, "F")},
             warmup=lambda: A.lime(model, x[:1], targets[:1], n_samples=64),
             note="quickshift superpixels (lime's defaults)"),
        Case("shap_gradients", 1, shap_n, "FB",
             lambda: A.shap_gradients(model, x[:1], targets[:1], background=x[2:6],
                                      n_samples=shap_n),
             {"shap GradientExplainer": (
                 lambda: _shap_peer(model, x[:1], x[2:6], shap_n), shap_n, "FB")},
             warmup=lambda: A.shap_gradients(model, x[:1], targets[:1], background=x[2:6],
                                             n_samples=8)),
    ]
    _add_tf_explain(cases, model, x, targets, layer)
    return cases


def _lime_peer(model, pixel_image, n, preprocess):
    from lime import lime_image

    explainer = lime_image.LimeImageExplainer(random_state=0)
    return explainer.explain_instance(
        pixel_image.astype("float64") / 255.0,
        lambda b: model.predict(preprocess(b * 255.0), verbose=0), num_samples=n,
        random_seed=0)


_SHAP: dict = {}


def _shap_peer(model, x, background, n):
    import shap

    if "e" not in _SHAP:
        _SHAP["e"] = shap.GradientExplainer(model, background)
    return _SHAP["e"].shap_values(x, nsamples=n, ranked_outputs=1, rseed=0)


def _add_tf_explain(cases, model, x, targets, layer):
    try:
        from tf_explain.core.grad_cam import GradCAM
        from tf_explain.core.smoothgrad import SmoothGrad
        from tf_explain.core.vanilla_gradients import VanillaGradients
    except Exception as err:  # noqa: BLE001 - report any import failure
        cases[0].note = f"tf-explain not available ({type(err).__name__})"
        return
    t = int(targets[0])
    for case in cases:
        n = case.images
        if case.method == "saliency":
            case.peers["tf-explain VanillaGradients"] = (
                lambda n=n: VanillaGradients().explain((x[:n], None), model, class_index=t),
                n, "FB")
        elif case.method == "smoothgrad":
            case.peers["tf-explain SmoothGrad"] = (
                lambda n=n, s=case.passes // n: SmoothGrad().explain(
                    (x[:n], None), model, class_index=t, num_samples=s, noise=0.15),
                case.passes, "FB")
        elif case.method == "gradcam":
            case.peers["tf-explain GradCAM"] = (
                lambda n=n: GradCAM().explain((x[:n], None), model, class_index=t,
                                              layer_name=layer),
                n, "FB")


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--only", nargs="*", help="methods to run")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default: results/attribution[_<model>].txt)")
    parser.add_argument("--model", **choose(("mobilenet_v2", "efficientnet_lite0"),
                                            DEFAULT_MODEL))
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    keras.utils.set_random_seed(0)
    spec = MODELS[args.model]
    model = spec.build()
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 255, (8, 224, 224, 3)).astype("float32")
    # Smooth random images: superpixels and gradients behave more like photos than white noise.
    pixels = tf.image.resize(tf.image.resize(pixels, (14, 14)), (224, 224)).numpy()
    x = spec.preprocess(pixels.copy())

    t_start = time.perf_counter()
    fns = pass_fns(model)
    shape = tuple(model.inputs[0].shape[1:])
    best, low = pass_times(fns, shape, args.repeats)
    single, _ = pass_times(fns, shape, args.repeats, sizes=(1,))
    cases = build_cases(model, x, pixels, args.quick, spec.preprocess)
    if args.only:
        cases = [c for c in cases if c.method in args.only]
    rows = []
    for case in cases:
        rows += run_case(case, args.repeats, fns, shape, low)
    text = _table(rows, best, low, single, args, time.perf_counter() - t_start, spec, shape)
    print(text)
    results = args.out or spec.results("attribution", DEFAULT_MODEL)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(text)
    return text


@dataclass
class Row:
    case: Case
    impl: str
    passes: int
    kind: str
    images: int
    times: list = field(default_factory=list)
    adjacent: list = field(default_factory=list)  # the model's per-image pass right after
    # rows of one image: one image's own pass (batch of 1) right after each call
    alone: list = field(default_factory=list)
    failed: str = ""


def run_case(case: Case, repeats: int, fns, shape, low) -> list[Row]:
    """Ours and the peers in alternation: one untimed warm-up call each, then ``repeats``
    rounds in which every implementation is called once, each call followed by one pass of
    the model (``adjacent``), so that slow load drift hits all of them alike; a call on one
    image is also followed by three passes of one image (``alone``, their median)."""
    impls = [(Row(case, "course_utils", case.passes, case.kind, case.images),
              case.ours, case.warmup)]
    for name, (fn, passes, kind, *n_images) in case.peers.items():
        impls.append((Row(case, name, passes, kind, n_images[0] if n_images else case.images),
                      fn, None))
    for row, fn, warmup in impls:
        try:
            (warmup or fn)()
        except Exception as err:  # noqa: BLE001 - a failing peer is reported, not fatal
            row.failed = type(err).__name__
            print(f"  {row.impl}: failed: {row.failed}: {err}", flush=True)
    live = [(row, fn) for row, fn, _ in impls if not row.failed]
    for _ in range(repeats):
        for row, fn in live:
            t0 = time.perf_counter()
            fn()
            row.times.append(time.perf_counter() - t0)
            near_med, near_low = pass_times({row.kind: fns[row.kind]}, shape, 1, sizes=(4, 8))
            row.adjacent.append(near_med[row.kind])
            low[row.kind] = min(low[row.kind], near_low[row.kind])
            if row.images == 1:
                one, _ = pass_times({row.kind: fns[row.kind]}, shape, 3, sizes=(1,))
                row.alone.append(one[row.kind])
    for row, _ in live:
        print(f"  {case.method} ({case.images}) {row.impl}: "
              f"{statistics.median(row.times):.2f} s", flush=True)
    return [row for row, _, _ in impls]


def _per_pass(times: list, passes: int, pass_after: list) -> float:
    """Median over calls of a call's time / (passes x the pass measured right after it)."""
    return statistics.median(t / (passes * a) for t, a in zip(times, pass_after, strict=True))


def _table(rows: list[Row], best, low, single, args, elapsed, spec: BenchModel,
           shape: tuple) -> str:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    lines = [
        f"Attribution benchmark: {spec.title} {shape[0]}x{shape[1]}, {spec.weights}",
        f"{platform.node()} | {os.cpu_count()} CPU cores shared with other jobs (load average "
        f"at the end: {load}) | TF {tf.__version__} (oneDNN kernels: "
        f"{config.onednn_enabled()}) | Keras {keras.__version__} | repeats "
        f"{args.repeats}{' | QUICK sizes' if args.quick else ''} | "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} | run {elapsed / 60:.1f} min",
        f"best per-image pass (compiled, batches of 1/2/4/8/16/32; median of {args.repeats} "
        f"at the best batch size): forward {best['F'] * 1000:.1f} ms, forward+backward "
        f"{best['FB'] * 1000:.1f} ms; with batch norms folded (the graph course_utils runs): "
        f"{best['F*'] * 1000:.1f} ms and {best['FB*'] * 1000:.1f} ms. Fastest single pass "
        f"seen: {low['F'] * 1000:.1f} ms and {low['FB'] * 1000:.1f} ms. One image alone (no "
        f"batch to share the cost; the rows with 1 image and 1 pass cannot go below it): "
        f"{single['F'] * 1000:.1f} ms and {single['FB'] * 1000:.1f} ms. Our methods use their "
        f"default batch_size (None: {batching.auto_batch_size(shape)} "
        f"images at {shape[0]} px)",
        "bound = passes x best per-image pass of the model as given; ratio = median / bound; "
        "low = fastest call / (passes x fastest pass seen); fold = median / (passes x best "
        "folded pass), our overhead over the graph we run; adj = median over repeats of time / "
        "(passes x the model's pass measured right after that call), which cancels slow load "
        "drift; alone (rows of 1 image) = median over repeats of time / (passes x one image's "
        "own pass, median of 3 measured right after that call), the bound one image can reach; "
        "vs ours = median over rounds of peer time / our time in the same round "
        "(implementations alternate within each round)",
        "",
        f"{'method':<22}{'implementation':<38}{'imgs':>5}{'passes':>10}{'median s':>10}"
        f"{'bound s':>9}{'ratio':>7}{'low':>6}{'fold':>6}{'adj':>6}{'alone':>6}{'vs ours':>9}",
    ]
    ours: list[float] = []
    for row in rows:
        bound = row.passes * best[row.kind]
        head = f"{row.case.method:<22}{row.impl:<38}{row.images:>5}{row.passes:>7} {row.kind:<2}"
        if row.impl == "course_utils":
            ours = row.times
        if row.failed:
            lines.append(f"{head[:22]}{row.impl + ' [FAILED: ' + row.failed + ']':<38}"
                         f"{head[60:]}{'-':>10}{bound:>9.2f}" + f"{'-':>6}" * 5 + f"{'-':>9}")
            continue
        med = statistics.median(row.times)
        adj = _per_pass(row.times, row.passes, row.adjacent)
        alone = f"{_per_pass(row.times, row.passes, row.alone):.2f}" if row.alone else "-"
        paired = statistics.median(t / o for t, o in zip(row.times, ours, strict=True))
        vs = "" if row.impl == "course_utils" else f"{paired:.1f}x"
        lines.append(f"{head}{med:>10.2f}{bound:>9.2f}{med / bound:>7.2f}"
                     f"{min(row.times) / (row.passes * low[row.kind]):>6.2f}"
                     f"{med / (row.passes * best[row.kind + '*']):>6.2f}{adj:>6.2f}"
                     f"{alone:>6}{vs:>9}")
    # Every case's note once (a method's cases may carry different ones).
    notes = list(dict.fromkeys(f"  {r.case.method}: {r.case.note}" for r in rows if r.case.note))
    notes.append("  Grad-CAM/CAM backpropagate only to the feature layer, so they can beat an "
                 "input-gradient FB bound.")
    lines += ["", "notes:"] + notes
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
