"""From how many rows per call does batch-norm folding pay? The measurement behind
``FOLD_MIN_ROWS`` (``course_utils/engine/kernels.py``).

    python -m benchmarks.folding [--repeats 15] [--models mobilenet_v2 efficientnet_lite0]
                                 [--sizes 1 2 4 8] [--out FILE]

For each model and batch size, the gradient kernel every gradient method runs
(:func:`course_utils.engine.gradients.input_gradients`, one class's logit, channels reduced by
``max_abs``) is traced twice with the same open-batch signature as the methods use: once folded
(batch norms folded into their convolutions, :mod:`course_utils.folding`) and once inside
:func:`course_utils.surgery.unfolded`. The two are called in alternation, ``--repeats`` rounds;
the table shows the median time per image of each and their ratio. Which one wins depends on the
kernels (``TF_ENABLE_ONEDNN_OPTS``) and on the instruction set oneDNN uses
(``ONEDNN_MAX_CPU_ISA``): run it under each. Output: stdout and
``benchmarks/results/folding.txt`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from benchmarks._models import MODELS, RESULTS
from course_utils import config, surgery
from course_utils.engine import gradients, kernels

MODEL_NAMES = ("mobilenet_v2", "efficientnet_lite0")


def kernel_calls(model: keras.Model, sizes, size: int = 224) -> dict:
    """``{(batch, "folded" | "unfolded"): call}``: each call runs the compiled gradient kernel
    on a fixed random batch and returns a NumPy array; every graph is traced here."""
    specs = [tf.TensorSpec([None, size, size, 3]), tf.TensorSpec([None, None]),
             tf.TensorSpec([None])]

    def kernel(z, w, o):
        return gradients.reduce_channels(gradients.input_gradients(model, z, w, o), "max_abs")

    rng = np.random.default_rng(0)
    calls = {}
    for bs in sizes:
        x = tf.constant(rng.uniform(-1, 1, (bs, size, size, 3)), "float32")
        w = np.zeros((bs, model.outputs[0].shape[-1]), "float32")
        w[:, 0] = 1.0
        args = (x, tf.constant(w), tf.zeros(bs))
        for mode in ("folded", "unfolded"):
            fn = tf.function(kernel, input_signature=specs, autograph=False)
            if mode == "unfolded":
                with surgery.unfolded():
                    fn(*args)
            else:
                fn(*args)
            calls[(bs, mode)] = lambda fn=fn, args=args: fn(*args).numpy()
    return calls


def measure(calls: dict, repeats: int) -> dict:
    """Median seconds per call of each entry, the entries called in alternation per round."""
    for call in calls.values():
        call()
    times = {key: [] for key in calls}
    for _ in range(repeats):
        for key, call in calls.items():
            t0 = time.perf_counter()
            call()
            times[key].append(time.perf_counter() - t0)
    return {key: statistics.median(t) for key, t in times.items()}


def table(results: dict[str, dict], sizes) -> list[str]:
    """Rows ``model | rows | folded ms/img | unfolded ms/img | folded / unfolded``."""
    lines = [f"{'model':20s} {'rows':>4s} {'folded ms/img':>14s} {'unfolded ms/img':>16s} "
             f"{'folded/unfolded':>16s}", "-" * 75]
    for name, med in results.items():
        for bs in sizes:
            f, u = med[(bs, "folded")] / bs, med[(bs, "unfolded")] / bs
            lines.append(f"{name:20s} {bs:4d} {1000 * f:14.1f} {1000 * u:16.1f} {f / u:16.2f}")
    return lines


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--out", type=Path, default=RESULTS / "folding.txt")
    args = parser.parse_args(argv)
    start = time.time()
    results = {}
    for name in args.models:
        model = MODELS[name].build()
        results[name] = measure(kernel_calls(model, args.sizes), args.repeats)
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "the CPU's best")
    text = "\n".join([
        "Batch-norm folding by rows per call: python -m benchmarks.folding",
        f"vm | {os.cpu_count()} CPU cores | {platform.processor() or platform.machine()} | "
        f"TF {tf.__version__} (oneDNN kernels: {config.onednn_enabled()}, "
        f"ONEDNN_MAX_CPU_ISA: {isa}) | repeats {args.repeats} | "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} | "
        f"run {(time.time() - start) / 60:.1f} min",
        "input gradient of one logit, channels reduced (the gradient methods' kernel), 224 px; "
        "median per image over rounds in which all graphs alternate; below 1 folding pays",
        f"FOLD_MIN_ROWS now: {kernels.FOLD_MIN_ROWS}",
        "",
        *table(results, args.sizes),
    ]) + "\n"
    print(text)
    args.out.write_text(text)
    return text


if __name__ == "__main__":
    main()
