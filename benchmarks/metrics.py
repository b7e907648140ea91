"""Deletion/insertion: batched compiled curves vs the naive loop (one ``predict`` per step).

Run on demand: ``.venv/bin/python -m benchmarks.metrics``. Prints the median of a few repeats
and the ratio to the naive loop; checks that both give the same curves.
"""

from __future__ import annotations

import statistics
import time

import keras
import numpy as np

from course_utils import metrics
from course_utils.metrics.deletion import ranks, removed_images


def small_cnn(size=64):
    keras.utils.set_random_seed(0)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inp)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))


def naive_deletion(model, x, maps, targets, steps):
    """The loop found in tutorials: one ``model.predict`` per image and step."""
    base = removed_images(model, x, "blur")
    r = ranks(maps)
    n, h, w = maps.shape
    counts = np.round(np.arange(steps + 1) * h * w / steps)
    out = np.zeros((n, steps + 1))
    for i in range(n):
        for k, c in enumerate(counts):
            z = np.where((r[i] < c)[..., None], base[i], x[i])
            out[i, k] = model.predict(z[None], verbose=0)[0, targets[i]]
    return out


def median_time(fn, repeats=3):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(n=16, steps=32):
    model = small_cnn()
    rng = np.random.default_rng(0)
    x = rng.random((n, 64, 64, 3)).astype("float32")
    maps = rng.random((n, 64, 64)).astype("float32")
    targets = model.predict(x, verbose=0).argmax(-1)
    ours = metrics.deletion(model, x, maps, targets, steps=steps)
    ref = naive_deletion(model, x, maps, targets, steps)
    np.testing.assert_allclose(ours.scores, ref, atol=1e-4)
    t_ours = median_time(lambda: metrics.deletion(model, x, maps, targets, steps=steps))
    t_naive = median_time(lambda: naive_deletion(model, x, maps, targets, steps), repeats=1)
    print(f"deletion, {n} images x {steps + 1} steps, 64 px")
    print(f"{'implementation':28s} {'median s':>9s} {'ratio':>7s}")
    print(f"{'metrics.deletion (batched)':28s} {t_ours:9.3f} {1.0:7.2f}")
    print(f"{'predict per step (naive)':28s} {t_naive:9.3f} {t_naive / t_ours:7.2f}")


if __name__ == "__main__":
    main()
