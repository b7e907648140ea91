"""How many samples, steps and patches does a lesson's picture need? The measurement behind the
full settings (``COURSE_QUICK=0``) of lessons 03 and 09.

Run on demand: ``.venv/bin/python -m benchmarks.settings [--images N]``.

1. **Sampling methods on the shapes model** (lesson 09): each method's map at several settings,
   compared (mean Spearman rank correlation over the images) with a reference at twice the
   largest setting, beside the **seed floor**: the correlation of two maps at the same setting
   with different seeds. Where a setting's correlation with the reference already equals what
   a new seed gives, more samples only redraw the noise: the picture does not need them.
   Deterministic settings (Integrated Gradients' steps, occlusion's stride) have no seed floor;
   their maps are compared with the reference only. Also the lesson's scores on those maps
   (pointing game within 4 px, energy in the mask), and the time per image.
2. **Feature visualization** (lesson 03): the objective's curve over steps, as the share of
   its final value reached at each step (median over channels), for the Fashion CNN's
   ``conv3_relu`` (512 steps) and EfficientNet-Lite0's middle layer (256 steps).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from course_utils import attribution, data, features, metrics, models

SEEDED = {"smoothgrad", "lime", "shap_gradients"}


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.nanmean(metrics.rank_correlation(a, b, absolute=False)))


def _scores(maps: np.ndarray, masks: np.ndarray) -> str:
    return (f"{metrics.pointing_game(maps, masks).mean():.3f} | "
            f"{metrics.pointing_game(maps, masks, tolerance=4).mean():.3f} | "
            f"{metrics.energy_in_mask(maps, masks).mean():.3f}")


def sampling(n_images: int, only: list[str] | None = None) -> list[str]:
    model = models.shapes_cnn()
    images, labels, masks = data.shapes(3 * n_images, seed=2024)
    ok = model.predict(images, verbose=0).argmax(1) == labels
    x, y, m = images[ok][:n_images], labels[ok][:n_images], masks[ok][:n_images]
    background = data.shapes(16, seed=99)[0]
    lime_base = {"segmentation": "slic", "segmentation_options": {"n_segments": 50}}
    grid = {  # method: (option, settings, fixed options)
        "smoothgrad": ("n_samples", [12, 25, 50], {}),
        "integrated_gradients": ("steps", [16, 32, 64, 128], {}),
        "shap_gradients": ("n_samples", [32, 64, 100, 200], {"background": background}),
        "lime": ("n_samples", [150, 300, 600], lime_base),
        "occlusion": ("stride", [4, 3, 2], {"window": 12}),
    }
    rows = [f"{len(x)} correctly classified shapes images (seed 2024)", "",
            "| method | setting | rank corr. with reference | seed floor | pointing (strict) | "
            "pointing (4 px) | energy in mask | s per image |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, (option, settings, fixed) in grid.items():
        if only and name not in only:
            continue
        fn = attribution.METHODS[name]
        ref_setting = 1 if option == "stride" else 2 * max(settings)
        reference = fn(model, x, y, **fixed, **{option: ref_setting})
        for s in settings:
            start = time.perf_counter()
            maps = fn(model, x, y, **fixed, **{option: s})
            per_image = (time.perf_counter() - start) / len(x)
            floor = "-"
            if name in SEEDED:
                other = fn(model, x, y, **fixed, **{option: s}, seed=1)
                floor = f"{_corr(maps, other):.3f}"
            rows.append(f"| {name} | {option}={s} | {_corr(maps, reference):.3f} | {floor} | "
                        f"{_scores(maps, m)} | {per_image:.3f} |")
            print(rows[-1], flush=True)
        rows.append(f"| {name} | reference {option}={ref_setting} | 1 | - | "
                    f"{_scores(reference, m)} | - |")
    return rows


def reached(history: np.ndarray, checkpoints: list[int]) -> list[float]:
    """Median over channels of the objective at each checkpoint (a row of ``history``, one
    row per compiled chunk of steps: ``(chunks, channels)``) as a share of its final value."""
    final = history[-1]
    live = final > 0
    return [float(np.median(history[c - 1, live] / final[live])) for c in checkpoints]


def feature_steps() -> list[str]:
    rows = ["", "| network, layer | steps | share of the final objective reached at step: "
            "1/8, 1/4, 1/2, 3/4 of the steps | seconds |", "| --- | ---: | --- | ---: |"]
    fashion = models.trained.fashion_cnn()
    net = models.load("efficientnet_lite0")
    cases = [("Fashion CNN, conv3_relu", fashion, "conv3_relu", list(range(16)), 512),
             ("EfficientNet-Lite0, block4a_expand_activation", net,
              "block4a_expand_activation", list(range(8)), 256)]
    for label, model, layer, units, steps in cases:
        start = time.perf_counter()
        vis = features.visualize(model, layer, units, steps=steps, progress=False)
        seconds = time.perf_counter() - start
        history = np.asarray(vis.history)  # (chunks of 32 steps, channels)
        chunks = len(history)
        marks = [chunks // 8, chunks // 4, chunks // 2, 3 * chunks // 4]
        shares = ", ".join(f"{v:.2f}" for v in reached(history, marks))
        rows.append(f"| {label} | {steps} | {shares} | {seconds:.0f} |")
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.settings")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--only", choices=("sampling", "features"), default=None)
    parser.add_argument("--methods", nargs="*", help="only these methods (sampling)")
    args = parser.parse_args(argv)
    rows = []
    if args.only in (None, "sampling"):
        rows += sampling(args.images, args.methods)
    if args.only in (None, "features"):
        rows += feature_steps()
    print("\n".join(rows))


if __name__ == "__main__":
    main()
