"""Cutting work into compiled calls: how many rows per call, the chunks, and the two loops
every method runs (:func:`run_rows` concatenates, :func:`mean_rows` averages samples per
image), each chunk run through :func:`course_utils.engine.replicas.call`;
:func:`sample_moments` is the loop of :func:`mean_rows` that also gives mean squares.

Examples
--------
>>> list(chunks(5, 2))
[slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
>>> run_rows(5, 2, lambda sl: (np.arange(5.0)[sl],), lambda t: 2 * t).tolist()
[0.0, 2.0, 4.0, 6.0, 8.0]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from course_utils import config
from course_utils.engine import checks, replicas

#: Images of 224 x 224 px per compiled call when ``batch_size=None`` (more for smaller
#: images), without and with TensorFlow's oneDNN kernels: the fastest per image in the
#: measurements of README ("Speed, measured", time per image by batch size).
IMAGES_PER_CHUNK = {False: 4, True: 8}


# --------------------------------------------------------------------------------------------
# Rows per compiled call
# --------------------------------------------------------------------------------------------


def auto_batch_size(shape: tuple) -> int:
    """Rows per compiled call for images of ``shape = (H, W, C)``; see :data:`IMAGES_PER_CHUNK`.

    Examples
    --------
    >>> auto_batch_size((16, 16, 3)) == 256  # small images: the cap
    True
    """
    budget = IMAGES_PER_CHUNK[bool(config.onednn_enabled())] * 224 * 224
    return int(np.clip(budget // max(1, shape[0] * shape[1]), 1, 256))


def check_batch_size(batch_size) -> int:
    """``batch_size``: rows per compiled call, a positive integer.

    Examples
    --------
    >>> check_batch_size(8.0)
    8
    """
    return checks.integer(batch_size, "batch_size", example="rows per compiled call, e.g. 32")


# --------------------------------------------------------------------------------------------
# Chunks and the loops over them
# --------------------------------------------------------------------------------------------


def chunks(n: int, batch_size: int) -> Iterator[slice]:
    """Slices ``[0:b], [b:2b], ...`` covering ``range(n)``."""
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


def _chunks_shown(n: int, batch_size: int, progress: str | None) -> Iterator[slice]:
    """:func:`chunks`, with a progress bar titled ``progress`` for more than four chunks
    (generated lazily: a million chunks are not held as a list)."""
    slices = chunks(n, batch_size)
    n_chunks = -(-n // batch_size)
    if progress and n_chunks > 4:
        from tqdm.auto import tqdm

        return tqdm(slices, total=n_chunks, desc=progress, leave=False)
    return slices


def run_rows(
    n_rows: int,
    batch_size: int,
    make_args: Callable[[slice], Sequence],
    fn: Callable,
    progress: str | None = None,
) -> np.ndarray:
    """Evaluate ``fn(*make_args(rows))`` over ``n_rows`` rows in chunks; concatenate results."""
    outs = []
    for sl in _chunks_shown(n_rows, batch_size, progress):
        outs.append(replicas.call(fn, make_args(sl)))
    return np.concatenate(outs)


def mean_rows(
    n_images: int,
    per_image: int,
    batch_size: int,
    make_args: Callable[[np.ndarray, np.ndarray], Sequence],
    fn: Callable,
    progress: str | None = None,
) -> np.ndarray:
    """Average ``fn`` over ``per_image`` rows per image without holding all rows in memory.

    Row ``r`` belongs to image ``r // per_image`` and is sample ``r % per_image``;
    ``make_args(image_idx, sample_idx)`` builds the chunk's arguments. Memory is bounded by
    ``batch_size`` rows plus one accumulator per image.

    Examples
    --------
    >>> mean_rows(2, 3, 4, lambda img, k: (10.0 * img + k,), lambda t: t).tolist()
    [1.0, 11.0]
    """
    (mean,) = sample_moments(n_images, per_image, batch_size,
                             lambda img, sample: replicas.call(fn, make_args(img, sample)),
                             (1,), progress)
    return as_float32(mean)


def sample_moments(
    n_images: int,
    per_image: int,
    batch_size: int,
    evaluate: Callable[[np.ndarray, np.ndarray], np.ndarray],
    orders: Sequence[int] = (1,),
    progress: str | None = None,
) -> list[np.ndarray]:
    """Per image, the mean over its ``per_image`` rows of ``evaluate(...) ** order`` for each
    of ``orders`` (float64), in chunks of ``batch_size`` rows.

    Row ``r`` belongs to image ``r // per_image`` and is sample ``r % per_image``;
    ``evaluate(image_idx, sample_idx)`` returns the chunk's results, one per row (it runs a
    compiled function on the whole chunk). Memory is bounded by ``batch_size`` rows plus one
    accumulator per image and order. :func:`mean_rows` is its first moment.

    Examples
    --------
    >>> first, second = sample_moments(1, 4, 3, lambda img, k: k.astype(float), (1, 2))
    >>> first.tolist(), second.tolist()  # mean and mean square of 0, 1, 2, 3
    ([1.5], [3.5])
    """
    totals = None
    for sl in _chunks_shown(n_images * per_image, batch_size, progress):
        rows = np.arange(sl.start, sl.stop)
        img, sample = rows // per_image, rows % per_image
        out = np.asarray(evaluate(img, sample), "float64")
        if totals is None:
            totals = [np.zeros((n_images,) + out.shape[1:], "float64") for _ in orders]
        for total, order in zip(totals, orders, strict=True):
            powered = out if order == 1 else out ** order
            for i in np.unique(img):
                total[i] += powered[img == i].sum(axis=0)
    return [total / per_image for total in totals]


def as_float32(maps) -> np.ndarray:
    """Maps as a contiguous float32 NumPy array (what every method returns)."""
    return np.ascontiguousarray(np.asarray(maps, dtype="float32"))
