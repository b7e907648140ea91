"""Cutting work into compiled calls: how many rows per call, the chunks, and the two loops
every method runs (:func:`run_rows` concatenates, :func:`mean_rows` averages samples per
image), each chunk run through :func:`course_utils.engine.replicas.call`.

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
    total = None
    for sl in _chunks_shown(n_images * per_image, batch_size, progress):
        rows = np.arange(sl.start, sl.stop)
        img, sample = rows // per_image, rows % per_image
        out = replicas.call(fn, make_args(img, sample)).astype("float64")
        if total is None:
            total = np.zeros((n_images,) + out.shape[1:], "float64")
        for i in np.unique(img):
            total[i] += out[img == i].sum(axis=0)
    return as_float32(total / per_image)


def as_float32(maps) -> np.ndarray:
    """Maps as a contiguous float32 NumPy array (what every method returns)."""
    return np.ascontiguousarray(np.asarray(maps, dtype="float32"))
