"""Occlusion (Zeiler & Fergus 2014): slide a patch, record the drop of the class score."""

from __future__ import annotations

import keras
import numpy as np

from course_utils.attribution.template import method
from course_utils.engine import batching, checks, kernels, scoring, spaces


def window_starts(size: int, window: int, stride: int) -> np.ndarray:
    """Top-left positions along one axis, every ``stride`` pixels, plus one window flush with
    the far edge (with ``stride > window`` the windows leave gaps; :func:`spread` fills them)."""
    if window >= size:
        return np.array([0])
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return np.array(starts)


def windows(shape: tuple, window: tuple, stride: tuple) -> np.ndarray:
    """``(P, 4)`` windows ``(top, left, height, width)`` covering an image of ``shape = (H, W)``."""
    tops = window_starts(shape[0], window[0], stride[0])
    lefts = window_starts(shape[1], window[1], stride[1])
    wh = (min(window[0], shape[0]), min(window[1], shape[1]))
    return np.array([(t, left, *wh) for t in tops for left in lefts])


def window_masks(shape: tuple, wins: np.ndarray) -> np.ndarray:
    """float32 ``(P, H, W)``: 1 inside each window (made per chunk of windows: all of them at
    once could take gigabytes)."""
    masks = np.zeros((len(wins),) + tuple(shape), "float32")
    for p, (t, left, h, w) in enumerate(wins):
        masks[p, t:t + h, left:left + w] = 1.0
    return masks


def spread(drops: np.ndarray, wins: np.ndarray, shape: tuple,
           stride: tuple | None = None) -> np.ndarray:
    """Average each pixel's score drops over the windows that covered it.

    ``drops``: ``(N, P)``; ``wins``: the ``(P, 4)`` grid of :func:`windows` for an image of
    ``shape = (H, W)`` -> ``(N, H, W)``. Dividing by the coverage count matters when
    ``stride < window``: otherwise pixels in the middle, covered by more windows, get larger
    values than the border for no reason. When the ``stride`` (``(sy, sx)``) exceeds the
    window, the windows sample the image sparsely: each window's drop is spread over its
    stride cell (the window grown to the stride, centred), so every pixel takes the drop of
    its nearest window(s) instead of a meaningless 0.

    The windows form a grid (rows of tops x columns of lefts, one size), so the sum over the
    windows covering a pixel is separable: ``rows @ drops @ cols.T`` with ``rows[y, i] = 1``
    when window row ``i`` covers ``y``. Memory ``O(N P + H W)``, never ``P x H x W``.
    """
    tops, lefts = np.unique(wins[:, 0]), np.unique(wins[:, 1])
    h, w = shape
    sy, sx = (1, 1) if stride is None else stride
    rows = _covers(h, tops, int(wins[0, 2]), sy)
    cols = _covers(w, lefts, int(wins[0, 3]), sx)
    grid = np.asarray(drops, "float64").reshape(len(drops), len(tops), len(lefts))
    total = np.einsum("yi,nij,xj->nyx", rows, grid, cols)
    count = rows.sum(axis=1)[:, None] * cols.sum(axis=1)[None, :]
    return (total / np.maximum(count, 1)).astype("float32")


def _covers(size: int, starts: np.ndarray, length: int, stride: int) -> np.ndarray:
    """``(size, len(starts))``: 1 where the window starting at ``starts[i]``, grown to
    ``stride`` if that is larger (centred), covers the pixel."""
    grow = max(stride - length, 0)
    lo = starts[None] - grow // 2
    hi = starts[None] + length + (grow - grow // 2)
    pos = np.arange(size)[:, None]
    return ((pos >= lo) & (pos < hi)).astype("float64")


def _occluded_fn(model: keras.Model):
    def build():
        def fn(x, fill, mask, weights, offset):
            m = mask[..., None]
            return scoring.score(model, x * (1.0 - m) + fill * m, weights, offset)

        return kernels.tf_function(fn)

    return kernels.compiled(model, "occlusion", build)


@method()
def occlusion(
    model: keras.Model,
    job,
    *,
    window=None,
    stride=None,
    fill="grey",
) -> np.ndarray:
    """Score drop when a window is covered, averaged over the windows covering each pixel.

    ``map[i, y, x] = mean over windows w covering (y, x) of (s(x_i) - s(x_i with w filled))``
    where ``s`` is the target's pre-softmax score (unsaturated, comparable across windows).
    Positive: covering the pixel lowers the score. All ``N * P`` occluded copies are evaluated
    in compiled batches of ``batch_size``; the windows' masks are made per batch, so memory
    is bounded by ``batch_size`` whatever the window and stride.

    Parameters
    ----------
    window
        Patch size ``int`` or ``(h, w)``; default ``max(1, H // 8)`` (28 px at 224 px, within the
        15-32 px usually used on ImageNet).
    stride
        Step between windows; default ``window // 2``. Windows are added at the far edges so
        every pixel is covered; with a stride larger than the window the windows only sample
        the image, and each pixel shows the drop of its nearest window (see :func:`spread`).
    fill
        The occluder in **pixel space** (``"grey"`` default, ``"black"``, ``"white"``, ``"mean"``
        colour of the image, ``"blur"`` (a blurred copy), a number/colour in pixel units, or
        image-shaped arrays), mapped through the model's preprocessing. ``("model", value)``
        gives it in model space.

    Returns
    -------
    float32 ``(N, H, W)``.

    Examples
    --------
    >>> import keras, numpy as np
    >>> m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2)])
    >>> occlusion(m, np.ones((8, 8, 1)), window=4, stride=2).shape
    (1, 8, 8)
    """
    batch_size = job.batch_size
    h, w = job.x.shape[1:3]
    win = checks.pair(window if window is not None else max(1, h // 8), "window",
                      "pixels, e.g. 8")
    if stride is None:
        stride = (max(1, win[0] // 2), max(1, win[1] // 2))
    st = checks.pair(stride, "stride", "pixels, e.g. 4")
    wins = windows((h, w), win, st)
    fills = spaces.model_space_constant(model, fill, job.x, "fill")
    n_p = len(wins)
    fn = _occluded_fn(model)

    def make(sl):
        rows = np.arange(sl.start, sl.stop)
        img, p = rows // n_p, rows % n_p
        masks = window_masks((h, w), wins[p])
        return job.x[img], fills[img], masks, job.weights[img], job.offset[img]

    occluded = batching.run_rows(job.n * n_p, batch_size, make, fn, "Occlusion")
    base = scoring.row_scores(model, job.x, job.weights, job.offset, batch_size)
    drops = base[:, None] - occluded.reshape(job.n, n_p)
    return spread(drops, wins, (h, w), st)
