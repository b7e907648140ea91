"""How long does a slider move take? Median update time of every attribution explorer.

    python -m benchmarks.widgets [--repeats 5] [--quick]

For each explorer the benchmark drives the widget headlessly, as the browser would, through
``Explorer.set``: an *uncached* update (a setting never computed: compute + draw), a *redraw*
(the result is cached, as after ``warm()``, but the view is drawn anew) and a *cached view*
(shown before: both caches hit). The target for cached results is 0.3 s on a CPU.
Models: the course's shapes CNN (64 px, what the notebooks explore) and a
MobileNetV2 at 224 px with random weights (the size of an ImageNet photo; timing needs no
trained weights, nothing is downloaded). Output goes to stdout and
``benchmarks/results/widgets.txt``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import keras

from course_utils import data, models, widgets
from course_utils.models import registry

RESULTS = Path(__file__).parent / "results" / "widgets.txt"
TARGET_SECONDS = 0.3


def _cases(quick: bool):
    """``(model label, explorer name, make explorer, [settings to visit])``."""
    shapes = models.shapes_cnn()
    x, y, _ = data.shapes(2, seed=5)
    img, cls = x[0], int(y[0])
    cases = [
        ("shapes 64px", "smoothgrad",
         lambda: widgets.smoothgrad_explorer(shapes, img, cls, max_samples=50),
         [{"noise_level": v, "n_samples": n} for v, n in
          ((0.05, 10), (0.1, 20), (0.2, 30), (0.25, 40), (0.3, 50))]),
        ("shapes 64px", "integrated_gradients",
         lambda: widgets.integrated_gradients_explorer(shapes, img, cls),
         [{"steps": s, "baseline": b} for s, b in
          ((8, "black"), (16, "grey"), (32, "white"), (64, "mean"), (128, "black"))]),
        ("shapes 64px", "occlusion",
         lambda: widgets.occlusion_explorer(shapes, img, cls),
         [{"window": w, "stride": s} for w, s in ((4, 2), (8, 4), (12, 6), (16, 8), (24, 8))]),
        ("shapes 64px", "lime",
         lambda: widgets.lime_explorer(shapes, img, cls, samples=(100, 200, 500)),
         [{"n_samples": n, "n_segments": k} for n, k in
          ((100, 20), (200, 40), (500, 80), (100, 160), (200, 10))]),
        ("shapes 64px", "gradcam",
         lambda: widgets.gradcam_explorer(shapes, img, layers=["conv1", "conv2", "conv3",
                                                               "conv4"], classes=[0, 1, 2]),
         [{"layer": la, "target": c} for la, c in
          (("conv1", 1), ("conv2", 2), ("conv3", 0), ("conv4", 1), ("conv1", 2))]),
    ]
    keras.utils.set_random_seed(0)
    net = keras.applications.MobileNetV2(weights=None)
    registry.register(net, registry.ModelInfo(
        name="mobilenet_v2", preprocess=lambda a: models.preprocess("mobilenet_v2", a),
        pixel_max=255.0, standin=True))
    photo = models.preprocess("mobilenet_v2", data.sample_image("chelsea", size=224))
    layers = ["block_1_expand_relu", "block_6_expand_relu", "block_13_expand_relu", "out_relu"]
    cases += [
        ("MobileNetV2 224px", "smoothgrad",
         lambda: widgets.smoothgrad_explorer(net, photo, max_samples=8 if quick else 16),
         [{"noise_level": v} for v in (0.05, 0.1, 0.2)]),
        ("MobileNetV2 224px", "gradcam",
         lambda: widgets.gradcam_explorer(net, photo, layers=layers, top=3),
         [{"layer": la} for la in layers[:3]]),
        ("MobileNetV2 224px", "occlusion",
         lambda: widgets.occlusion_explorer(net, photo, windows=(56, 112), strides=(28, 56)),
         [{"window": 112, "stride": 56}, {"window": 56, "stride": 56}]),
    ]
    return cases


def _time_case(make, settings, repeats: int) -> tuple[float, float, float, float]:
    """``(first view, median uncached, median redraw, median cached view)`` in seconds.

    *uncached*: a setting never computed (compute + draw); *redraw*: its result is cached but
    the view is drawn again (what a warmed explorer costs on a first visit); *cached view*: a
    view shown before (both caches hit).
    """
    t0 = time.perf_counter()
    ex = make()
    created = time.perf_counter() - t0
    uncached = [u.seconds for u in (ex.set(**v) for v in settings) if not u.cached]
    redraw = []
    for _ in range(repeats):
        ex.drawn.clear()
        for values in settings:
            u = ex.set(**values)
            assert u.cached, f"{values} should have been served from the cache"
            redraw.append(u.seconds)
    cached = []
    for _ in range(repeats):
        for values in settings:
            cached.append(ex.set(**values).seconds)
    med = statistics.median
    return created, med(uncached) if uncached else float("nan"), med(redraw), med(cached)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="visits of each cached setting")
    parser.add_argument("--quick", action="store_true", help="fewer settings on the big model")
    args = parser.parse_args(argv)
    rows = []
    for label, name, make, settings in _cases(args.quick):
        created, unc, red, cac = _time_case(make, settings, args.repeats)
        rows.append((label, name, created, unc, red, cac))
        print(f"{label:>18} {name:>20}: first view {created:6.2f} s, uncached {unc:6.3f} s, "
              f"redraw {red:6.3f} s, cached view {cac:6.3f} s", flush=True)
    lines = [
        "Explorer update times (median seconds per slider move, driven through Explorer.set)",
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        f"(shared; load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}); "
        f"TF {__import__('tensorflow').__version__}, Keras {keras.__version__}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"target for cached views: {TARGET_SECONDS} s. uncached = compute + draw; redraw = "
        "result cached (e.g. after warm()), view drawn anew; cached view = shown before",
        "",
        f"{'model':>18} {'explorer':>20} {'first view':>10} {'uncached':>9} {'redraw':>8} "
        f"{'cached view':>11} {'redraw < target':>15}",
    ]
    for label, name, created, unc, red, cac in rows:
        ok = "ok" if red < TARGET_SECONDS else "MISSED"
        lines.append(f"{label:>18} {name:>20} {created:10.2f} {unc:9.3f} {red:8.3f} "
                     f"{cac:11.4f} {ok:>15}")
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
