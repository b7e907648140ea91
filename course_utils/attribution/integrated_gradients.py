"""Integrated Gradients (Sundararajan, Taly & Yan 2017)."""

from __future__ import annotations

import warnings

import keras
import numpy as np

from course_utils.attribution import checks, core


def path_alphas(sample: np.ndarray, steps: int) -> np.ndarray:
    """Midpoint-rule positions ``(k + 0.5) / steps`` of samples ``k`` on the straight path
    (error O(1/m^2)); computed per chunk of samples, never for all ``steps`` at once."""
    return ((np.asarray(sample, "float64") + 0.5) / steps).astype("float32")


def completeness(maps: np.ndarray, f_x: np.ndarray, f_baseline: np.ndarray) -> dict:
    """Compare ``sum(attributions)`` with ``f(x) - f(baseline)`` per image.

    Returns a dict with ``sum``, ``delta`` (f(x) - f(x')), ``error`` (absolute difference) and
    ``relative_error`` (error / max(|delta|, 1e-6)).
    """
    total = maps.reshape(len(maps), -1).sum(axis=1)
    delta = f_x - f_baseline
    err = np.abs(total - delta)
    return {
        "sum": total, "delta": delta, "error": err,
        "relative_error": err / np.maximum(np.abs(delta), 1e-6),
    }


def integrated_gradients(
    model: keras.Model,
    images,
    targets=None,
    *,
    baseline="black",
    steps: int = 64,
    reduce: str = "sum",
    batch_size: int | None = None,
    return_info: bool = False,
    tolerance: float = 0.05,
):
    """``(x - x') * mean_k grad f(x' + alpha_k (x - x'))``, summed over channels.

    The baseline ``x'`` is defined in **pixel space** (``"black"`` by default, or ``"white"``,
    ``"grey"``, ``"mean"``, a number/colour in pixel units, or an image-shaped pixel array; give
    ``("model", array)`` for a value already in model space) and mapped through the model's
    preprocessing: a zero in preprocessed space is not a black image. ``f`` is the target's
    pre-softmax score (gradients of a saturated softmax vanish along most of the path).

    Completeness (the sum of attributions equals ``f(x) - f(x')``) is checked for every call;
    when the relative error exceeds ``tolerance`` a warning suggests more steps. Channels are
    summed (``reduce="sum"``) so that completeness holds for the returned map.

    Parameters
    ----------
    baseline
        Pixel-space baseline, see above.
    steps
        Gradient evaluations on the path (midpoint rule); the paper suggests 50-300.
    return_info
        Also return the completeness report of :func:`completeness`.

    Returns
    -------
    float32 ``(N, H, W)``, or ``(maps, info)`` with ``return_info=True``.

    Examples
    --------
    >>> import keras, numpy as np
    >>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2)])
    >>> maps, info = integrated_gradients(m, np.ones((4, 4, 1)), targets=0, return_info=True)
    >>> bool(info["relative_error"][0] < 1e-3)
    True
    """
    core.check_reduce(reduce)
    steps = checks.integer(steps, "steps", example="gradient evaluations on the path, e.g. 64")
    tolerance = checks.number(tolerance, "tolerance", positive=True,
                              example="a relative completeness error, e.g. 0.05")
    job = core.prepare(model, images, targets, batch_size)
    batch_size = job.batch_size
    base = core.model_space_constant(model, baseline, job.x, "baseline")
    fn = core.gradient_rows_fn(model, reduce, with_delta=True)

    def make(img, sample):
        a = path_alphas(sample, steps)[:, None, None, None]
        delta = job.x[img] - base[img]
        return base[img] + a * delta, delta, job.weights[img], job.offset[img]

    maps = core.mean_rows(job.n, steps, batch_size, make, fn, model, "Integrated Gradients")
    f = core.row_scores(model, np.concatenate([job.x, base]), np.concatenate([job.weights] * 2),
               np.concatenate([job.offset] * 2), batch_size)
    info = completeness(maps, f[: job.n], f[job.n:])
    if reduce == "sum":
        bad = (info["relative_error"] > tolerance) & (np.abs(info["delta"]) > 1e-3)
        if np.any(bad):
            warnings.warn(
                f"Integrated Gradients completeness error up to "
                f"{100 * info['relative_error'][bad].max():.1f}% (sum of attributions vs "
                f"f(x) - f(baseline)); raise steps (now {steps}).",
                UserWarning,
                stacklevel=2,
            )
    return (maps, info) if return_info else maps

