"""Integrated Gradients (Sundararajan, Taly & Yan 2017)."""

from __future__ import annotations

import warnings

import keras
import numpy as np

from course_utils.attribution.template import method
from course_utils.engine import batching, checks, gradients, scoring, spaces


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


#: Steps of the first pass with ``steps="auto"`` (doubled until completeness holds).
AUTO_START_STEPS = 16
#: Completeness tolerances: the warning threshold with a fixed number of steps, and the
#: convergence criterion of ``steps="auto"``.
TOLERANCE = {"fixed": 0.05, "auto": 0.01}


def incomplete(info: dict, tolerance: float) -> np.ndarray:
    """Images whose relative completeness error exceeds ``tolerance`` (bool ``(N,)``); a score
    difference below 1e-3 counts as complete (its relative error means nothing)."""
    return (info["relative_error"] > tolerance) & (np.abs(info["delta"]) > 1e-3)


def _check(baseline, steps, reduce, return_info, tolerance, max_steps) -> dict:
    """The options of :func:`integrated_gradients`, checked before any work is done."""
    gradients.check_reduce(reduce)
    auto = isinstance(steps, str) and steps == "auto"
    max_steps = checks.integer(max_steps, "max_steps", example="a cap for steps='auto', e.g. 1024")
    if auto:
        if reduce != "sum":
            raise ValueError(
                f"steps='auto' checks completeness, which holds for reduce='sum' only; got "
                f"reduce={reduce!r}. Use reduce='sum' or a fixed number of steps."
            )
    else:
        steps = checks.integer(steps, "steps",
                               example="gradient evaluations on the path, e.g. 64; or 'auto'")
    tolerance = checks.number(
        TOLERANCE["auto" if auto else "fixed"] if tolerance is None else tolerance,
        "tolerance", positive=True, example="a relative completeness error, e.g. 0.01")
    return {"steps": steps, "max_steps": max_steps, "tolerance": tolerance}


@method(check=_check)
def integrated_gradients(
    model: keras.Model,
    job,
    *,
    baseline="black",
    steps: int | str = 64,
    reduce: str = "sum",
    return_info: bool = False,
    tolerance: float | None = None,
    max_steps: int = 1024,
):
    """``(x - x') * mean_k grad f(x' + alpha_k (x - x'))``, summed over channels.

    The baseline ``x'`` is defined in **pixel space** (``"black"`` by default, or ``"white"``,
    ``"grey"``, ``"mean"``, a number/colour in pixel units, or an image-shaped pixel array; give
    ``("model", array)`` for a value already in model space) and mapped through the model's
    preprocessing: a zero in preprocessed space is not a black image. ``f`` is the target's
    pre-softmax score (gradients of a saturated softmax vanish along most of the path).

    Completeness (the sum of attributions equals ``f(x) - f(x')``) is checked for every call.
    With a fixed number of ``steps`` a warning suggests more steps when the relative error
    exceeds ``tolerance`` (default 5%). With ``steps="auto"`` completeness is the convergence
    criterion, as Sundararajan et al. (2017) advise: starting at
    :data:`AUTO_START_STEPS` (16) steps, the steps of every image whose relative error exceeds
    ``tolerance`` (default 1%) are doubled (the path is recomputed: midpoints do not nest)
    until it is met or ``max_steps`` is reached (then a warning). Channels are summed
    (``reduce="sum"``) so that completeness holds for the returned map.

    Parameters
    ----------
    baseline
        Pixel-space baseline, see above.
    steps
        Gradient evaluations on the path (midpoint rule); the paper suggests 50-300. ``"auto"``:
        as many as completeness needs, per image (requires ``reduce="sum"``).
    tolerance
        Relative completeness error: the warning threshold (default 0.05), or with
        ``steps="auto"`` the target (default 0.01).
    max_steps
        Cap on the steps of ``steps="auto"``.
    return_info
        Also return the completeness report of :func:`completeness`, plus ``"steps"``: int
        ``(N,)``, the steps used for each image.

    Returns
    -------
    float32 ``(N, H, W)``, or ``(maps, info)`` with ``return_info=True``; ``info`` has
    ``sum``, ``delta``, ``error``, ``relative_error`` and ``steps``, one value per image.

    Examples
    --------
    >>> import keras, numpy as np
    >>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2)])
    >>> maps, info = integrated_gradients(m, np.ones((4, 4, 1)), targets=0, return_info=True)
    >>> bool(info["relative_error"][0] < 1e-3)
    True
    >>> integrated_gradients(m, np.ones((4, 4, 1)), targets=0, steps="auto",
    ...                      return_info=True)[1]["steps"].tolist()  # linear: exact at once
    [16]
    """
    auto = isinstance(steps, str) and steps == "auto"
    batch_size = job.batch_size
    base = spaces.model_space_constant(model, baseline, job.x, "baseline")
    fn = gradients.gradient_rows_fn(model, reduce, with_delta=True)
    f = scoring.row_scores(model, np.concatenate([job.x, base]), np.concatenate([job.weights] * 2),
                        np.concatenate([job.offset] * 2), batch_size)

    def path_integral(which: np.ndarray, m: int) -> np.ndarray:
        def make(img, sample):
            i = which[img]
            a = path_alphas(sample, m)[:, None, None, None]
            delta = job.x[i] - base[i]
            return base[i] + a * delta, delta, job.weights[i], job.offset[i]

        return batching.mean_rows(len(which), m, batch_size, make, fn, "Integrated Gradients")

    todo = np.arange(job.n)
    m = min(AUTO_START_STEPS, max_steps) if auto else steps
    used = np.zeros(job.n, "int64")
    maps = np.zeros(job.x.shape[:3], "float32")
    while True:
        maps[todo] = path_integral(todo, m)
        used[todo] = m
        info = completeness(maps, f[: job.n], f[job.n:])
        todo = todo[incomplete(info, tolerance)[todo]]
        if not auto or len(todo) == 0 or m >= max_steps:
            break
        m = min(2 * m, max_steps)
    info["steps"] = used
    bad = incomplete(info, tolerance)
    if reduce == "sum" and np.any(bad):
        advice = (f"raise max_steps (now {max_steps})" if auto
                  else f"raise steps (now {steps}) or use steps='auto'")
        warnings.warn(
            f"Integrated Gradients completeness error up to "
            f"{100 * info['relative_error'][bad].max():.1f}% (sum of attributions vs "
            f"f(x) - f(baseline)), above the tolerance of {100 * tolerance:g}%; {advice}.",
            UserWarning,
            stacklevel=3,
        )
    return (maps, info) if return_info else maps
