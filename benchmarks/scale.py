"""Time explain_dataset / evaluate_dataset on one device and under MirroredStrategy.

    python -m benchmarks.scale [--repeats 3] [--quick]

The CPU is split into two logical devices (``tf.config.set_logical_device_configuration``,
before TensorFlow starts its devices: if it has started already, e.g. under ``python -m
benchmarks``, this module runs itself in a subprocess). Each case runs
``attribution.explain_dataset`` (or ``metrics.evaluate_dataset``) into a fresh folder, files
included, once with ``strategy=None`` (the default device) and once with
``MirroredStrategy(["/cpu:0", "/cpu:1"])``, alternating, after one untimed warm-up each; the
table shows the median time per image and the largest difference between the two runs'
results. Two logical devices share the same cores: this measures the overhead of the
distributed path and checks its results, it cannot show a speed-up (that needs devices with
their own compute: several GPUs, several machines). Output: stdout and
``benchmarks/results/scale.txt``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "scale.txt"


def split_cpu() -> bool:
    """Two logical CPU devices; False when TensorFlow has started its devices already."""
    import tensorflow as tf

    import course_utils  # noqa: F401 - picks the CPU kernels before TensorFlow starts

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    except RuntimeError:
        return False
    return True


def cases(quick: bool):
    """``(label, build model, images dataset factory, runs)``: each run is
    ``(name, call(model, dataset, out, strategy) -> result, key)``."""
    import keras
    import tensorflow as tf

    from course_utils import attribution, data, metrics, models

    n_shapes, n_mobile = (32, 8) if quick else (128, 32)
    x, y, masks = data.shapes(n_shapes, seed=7)
    shapes_ds = tf.data.Dataset.from_tensor_slices((x, y, masks))

    def explain(method, **opts):
        def run(model, ds, out, strategy):
            return attribution.explain_dataset(model, ds, method, out=out, strategy=strategy,
                                               shard_size=32, progress=False, **opts)
        return run

    def evaluate(model, ds, out, strategy):
        maps = attribution.explain_dataset(model, ds, "gradcam", out=out / "maps",
                                           shard_size=32, progress=False)
        return metrics.evaluate_dataset(
            model, ds, maps, out=out / "scores", strategy=strategy, progress=False,
            metrics=("deletion", "insertion", "pointing_game"))

    rng = np.random.default_rng(0)
    photos = rng.uniform(-1, 1, (n_mobile, 224, 224, 3)).astype("float32")

    def mobilenet():
        keras.utils.set_random_seed(0)
        return keras.applications.MobileNetV2(weights=None)

    return [
        (f"shapes_cnn 64 px, {n_shapes} images (trained)", models.shapes_cnn, shapes_ds, [
            ("saliency", explain("saliency"), "maps"),
            ("gradcam", explain("gradcam"), "maps"),
            ("smoothgrad n_samples=10", explain("smoothgrad", n_samples=10), "maps"),
            ("deletion+insertion+pointing", evaluate, "deletion_auc"),
        ]),
        (f"MobileNetV2 224 px, {n_mobile} images (random weights)", mobilenet,
         tf.data.Dataset.from_tensor_slices(photos), [
             ("saliency", explain("saliency"), "maps"),
             ("gradcam", explain("gradcam"), "maps"),
         ]),
    ]


def timed_pair(run, model, ds, strategy, repeats: int, key: str):
    """Median seconds of ``run`` without and with ``strategy`` (alternating), and the largest
    difference between their results."""
    root = Path(tempfile.mkdtemp(prefix="scale-"))
    try:
        outs = {}
        times: dict[str, list[float]] = {"one": [], "two": []}
        for round_ in range(repeats + 1):  # round 0: untimed warm-up (tracing)
            for label, strat in (("one", None), ("two", strategy)):
                out = root / f"{label}-{round_}"
                t0 = time.perf_counter()
                result = run(model, ds, out, strat)
                if round_:
                    times[label].append(time.perf_counter() - t0)
                outs[label] = result.load(key)
        diff = float(np.abs(outs["one"] - outs["two"]).max())
        scale = float(np.abs(outs["one"]).max())
        return statistics.median(times["one"]), statistics.median(times["two"]), diff, scale
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer images, for a smoke run")
    parser.add_argument("--only", nargs="*", help="runs to time (names as in the table)")
    args = parser.parse_args(argv)
    if not split_cpu():  # TensorFlow started already (python -m benchmarks): a fresh process
        subprocess.run([sys.executable, "-m", "benchmarks.scale", *(argv or [])], check=True,
                       cwd=Path(__file__).parents[1])
        return
    import tensorflow as tf

    from course_utils import config
    from course_utils.attribution.at_scale import model_identity

    started = time.time()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    lines = []
    for label, build, ds, runs in cases(args.quick):
        with strategy.scope():  # mirrored weights; the same model serves both runs
            model = build()
        n = int(ds.cardinality())
        weights = model_identity(model)["weights_sha256"]
        lines.append(f"\n{label}, weights sha256 {weights}")
        lines.append(f"{'run':30s} {'1 device ms/img':>16s} {'2 logical ms/img':>17s} "
                     f"{'2 / 1':>6s} {'max |diff|':>11s} {'of max':>9s}")
        for name, run, key in runs:
            if args.only and name not in args.only:
                continue
            one, two, diff, scale = timed_pair(run, model, ds, strategy, args.repeats, key)
            lines.append(f"{name:30s} {1000 * one / n:16.2f} {1000 * two / n:17.2f} "
                         f"{two / one:6.2f} {diff:11.2e} {scale:9.2e}")
            print(lines[-1], flush=True)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    header = [
        "Scale benchmark: explain_dataset / evaluate_dataset, default device vs "
        "MirroredStrategy over 2 logical CPU devices",
        f"command: python -m benchmarks.scale{' ' + ' '.join(argv) if argv else ''}",
        f"{platform.node()} | {os.cpu_count()} CPU cores shared with other jobs (load average "
        f"at the end: {load}) | TF {tf.__version__} (oneDNN kernels: "
        f"{config.onednn_enabled()}) | repeats {args.repeats} (median; one untimed warm-up "
        f"each) | {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} | run "
        f"{(time.time() - started) / 60:.1f} min",
        "Time per image includes reading the dataset and writing the shards (shard_size 32). "
        "The two logical devices share the same 2 cores: no compute is added, so 2 / 1 "
        "measures the overhead of the per-replica path, not a speed-up. max |diff|: largest "
        "difference between the two runs' maps (or deletion AUCs); of max: their largest "
        "absolute value.",
    ]
    text = "\n".join(header + lines) + "\n"
    print(text)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main(sys.argv[1:])
