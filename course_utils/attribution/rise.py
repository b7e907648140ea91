"""RISE, Randomized Input Sampling for Explanation (Petsiuk, Das & Saenko 2018): occlusion
with random masks."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from course_utils.attribution.template import method
from course_utils.engine import batching, checks, kernels, scoring, spaces


def mask_grids(n_masks: int, grid: int, p_keep: float, size: tuple,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The random part of RISE's masks, drawn once with ``numpy.random.default_rng(seed)``:
    ``grids`` float32 ``(n_masks, grid, grid)``, each cell kept (1) with probability
    ``p_keep``, and ``shifts`` int32 ``(n_masks, 2)``, the crop's offset in pixels, uniform in
    ``[0, cell)`` with ``cell = ceil(size / grid)`` per axis. A few bytes per mask: the
    full-size masks are made from them per chunk (:func:`masks_from_grids`).

    Examples
    --------
    >>> g, s = mask_grids(1000, 4, 0.25, (16, 16), seed=0)
    >>> g.shape, s.shape, round(float(g.mean()), 2), int(s.max())
    ((1000, 4, 4), (1000, 2), 0.25, 3)
    """
    rng = np.random.default_rng(seed)
    grids = (rng.random((n_masks, grid, grid)) < p_keep).astype("float32")
    cells = [-(-side // grid) for side in size]
    shifts = np.stack([rng.integers(0, c, n_masks) for c in cells], axis=1)
    return grids, shifts.astype("int32")


def masks_from_grids(grids: np.ndarray | tf.Tensor, shifts: np.ndarray | tf.Tensor,
                     size: tuple) -> tf.Tensor:
    """Full-size masks ``(n, H, W)`` in [0, 1] (a TF op): each ``grid x grid`` binary grid
    upsampled bilinearly to ``(grid + 1) * cell`` pixels per axis and cropped to ``size`` at
    its shift, so that the cell borders fall anywhere in the image (the paper's recipe).

    Examples
    --------
    >>> g, s = mask_grids(2, 2, 0.5, (6, 6), seed=1)
    >>> m = masks_from_grids(g, s, (6, 6)).numpy()
    >>> m.shape, bool(m.min() >= 0.0 and m.max() <= 1.0)
    ((2, 6, 6), True)
    """
    grid = grids.shape[1]
    cells = [-(-side // grid) for side in size]
    up = spaces.upsample(grids, [(grid + 1) * c for c in cells])
    rows = shifts[:, :1] + tf.range(size[0])[None]
    cols = shifts[:, 1:] + tf.range(size[1])[None]
    up = tf.gather(up, rows, axis=1, batch_dims=1)
    return tf.gather(up, cols, axis=2, batch_dims=1)


def _weighted_masks_fn(model: keras.Model, grid: int, shape: tuple):
    def build():
        def fn(x, base, grids, shifts, weights, offset):
            m = masks_from_grids(grids, shifts, shape[:2])
            s = scoring.score(model, base + m[..., None] * (x - base), weights, offset)
            return s[:, None, None] * m
        return kernels.tf_function(fn)

    return kernels.compiled(model, "rise", build, options=(grid,), shape=shape)


def _check(n_masks=2000, grid=7, p_keep=0.5, seed=0, baseline="black") -> dict:
    return {
        "n_masks": checks.integer(n_masks, "n_masks", example="random masks, e.g. 2000"),
        "grid": checks.integer(grid, "grid", example="cells per side of a mask, e.g. 7"),
        "p_keep": _probability(p_keep),
        "seed": checks.seed(seed),
    }


def _probability(p_keep) -> float:
    p = checks.number(p_keep, "p_keep", positive=True, example="a probability, e.g. 0.5")
    if p > 1.0:
        raise ValueError(f"p_keep must be a probability in (0, 1] (e.g. 0.5); got {p!r}.")
    return p


@method(check=_check)
def rise(
    model: keras.Model,
    job,
    *,
    n_masks: int = 2000,
    grid: int = 7,
    p_keep: float = 0.5,
    seed: int = 0,
    baseline="black",
) -> np.ndarray:
    """RISE: the average of random masks, each weighted by the score of the input it keeps.

    ``map = sum_i S(x_i) M_i / (N p)`` (Petsiuk et al. 2018) over ``N = n_masks`` random masks
    ``M_i``: a ``grid x grid`` grid of cells, each kept with probability ``p = p_keep``,
    upsampled bilinearly to ``(grid + 1) * cell`` pixels (``cell = ceil(H / grid)``) and
    cropped at a random shift; ``x_i = M_i x + (1 - M_i) b`` keeps the image where the mask
    is 1 and shows the baseline ``b`` where it is 0. A pixel's value is the expected score of
    the masked inputs that keep it, divided by ``p``. The masks are drawn from
    ``numpy.random.default_rng(seed)`` (the same seed gives the same map, whatever
    ``batch_size``); only their grids are held, the full-size masks are made in each compiled
    chunk of ``batch_size`` masked inputs, so memory does not grow with ``n_masks``.

    Which score: the target's **pre-softmax** score, as every method of the course explains,
    where the paper weighs the masks by the softmax probability. A map of a logit is then
    exactly linear in the model's output: for a linear model it has a closed form (the test
    checks it), and it explains the quantity the deletion and insertion curves measure. The
    price: a large average logit adds a large, nearly uniform term ``E[S]`` to the map and its
    sampling noise; the ranking of the pixels, what the map is read for, does not change.

    Parameters
    ----------
    n_masks
        Number of random masks (forward passes per image); the paper uses 4000-8000 on
        ImageNet, 2000 (default) gives a readable map on small images.
    grid
        Cells per side of a mask (7 by default, the paper's); smaller cells show finer
        detail and need more masks.
    p_keep
        Probability that a cell is kept (0.5, the paper's).
    seed
        Seed of the masks.
    baseline
        What a masked pixel shows, in **pixel space**: ``"black"`` (default: 0 in pixel
        space, the paper's ``M * I`` on the image), ``"grey"``, ``"mean"``, ``"blur"``, a
        number or colour in pixel units, or ``("model", value)`` in the model's input space
        (``("model", 0.0)`` is the authors' code, which multiplies the preprocessed tensor).

    Returns
    -------
    float32 ``(N, H, W)``.

    Examples
    --------
    A score that counts the bright pixels of the left half: RISE finds that half.

    >>> import keras, numpy as np
    >>> left = keras.Sequential([keras.Input((8, 8, 1)),
    ...                          keras.layers.Lambda(lambda t: t[:, :, :4, 0]),
    ...                          keras.layers.Flatten(), keras.layers.Dense(1)])
    >>> left.layers[-1].set_weights([np.ones((32, 1)), np.zeros(1)])
    >>> m = rise(left, np.ones((8, 8, 1)), n_masks=500, grid=2)[0]
    >>> bool(m[:, :4].mean() > m[:, 4:].mean())
    True
    """
    h, w = job.shape[:2]
    base = spaces.model_space_constant(model, baseline, job.x, "baseline")
    grids, shifts = mask_grids(n_masks, grid, p_keep, (h, w), seed)
    fn = _weighted_masks_fn(model, grid, job.shape)

    def make(img, sample):
        return (job.x[img], base[img], grids[sample], shifts[sample], job.weights[img],
                job.offset[img])

    mean = batching.mean_rows(job.n, n_masks, job.batch_size, make, fn, "RISE")
    return mean / p_keep
