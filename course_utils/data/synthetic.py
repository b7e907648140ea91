"""A synthetic dataset with ground truth: shapes on textured backgrounds.

Each image holds one *target* object whose shape decides the label (circle, square, triangle)
and one *distractor* (a plus sign, which belongs to no class) on a textured background. The
target's mask is returned with the image, so an explanation can be checked against the truth.

The *spurious* variant adds a small black-and-white watermark along the top edge whose position
and pattern encode the label (checkerboard on the left for circles, horizontal stripes in the
middle for squares, vertical stripes on the right for triangles), like a photographer's logo
that happens to correlate with the class. A model can reach high accuracy by reading the
watermark alone: "accurate while looking at junk".

- ``spurious=False``: no watermark.
- ``spurious=True`` (or ``"correlated"``): the watermark of the label's class.
- ``spurious="shuffled"``: the watermark of a random class, independent of the label (the
  "watermark moved" test set).

``shape_agreement < 1`` makes the object a noisier cue than the watermark: only that fraction
of objects has the label's shape (the rest another class's), while the watermark always
matches. That is the situation of the husky-vs-wolf photos (snow is a more reliable cue in the
training data than the animal): the spurious model is trained on it, so that it provably
prefers the junk.
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = ("circle", "square", "triangle")
SIZE = 64
WATERMARK = 6
# Top-left corners (row, col) of the watermark for classes 0, 1, 2.
WATERMARK_POSITIONS = ((2, 6), (2, 29), (2, 52))


class ShapesData(tuple):
    """``(images, labels, masks)``, with ``.watermark_masks`` and ``.class_names`` attached.

    ``images``: float32 ``(n, 64, 64, 3)`` in ``[0, 1]``; ``labels``: int ``(n,)``;
    ``masks``: bool ``(n, 64, 64)``, the target object; ``watermark_masks``: bool
    ``(n, 64, 64)``, the watermark (all False without one).
    """

    def __new__(cls, images, labels, masks, watermark_masks):
        obj = super().__new__(cls, (images, labels, masks))
        obj.watermark_masks = watermark_masks
        obj.class_names = CLASS_NAMES
        return obj

    images = property(lambda self: self[0])
    labels = property(lambda self: self[1])
    masks = property(lambda self: self[2])


def _shape_mask(kind: int, cy: float, cx: float, r: float, yy, xx) -> np.ndarray:
    dy, dx = yy - cy, xx - cx
    if kind == 0:  # circle
        return dy**2 + dx**2 <= r**2
    if kind == 1:  # square
        return (np.abs(dy) <= r * 0.85) & (np.abs(dx) <= r * 0.85)
    if kind == 2:  # upward triangle
        return (dy <= r * 0.8) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)
    # distractor: plus sign
    bar = r * 0.3
    return ((np.abs(dy) <= bar) & (np.abs(dx) <= r)) | ((np.abs(dx) <= bar) & (np.abs(dy) <= r))


def _background(rng: np.random.Generator, yy, xx) -> np.ndarray:
    # low-frequency colour blobs plus oriented stripes: texture a model has to ignore
    base = rng.uniform(0.25, 0.55, size=3)
    theta = rng.uniform(0, np.pi)
    freq = rng.uniform(0.25, 0.6)
    stripes = 0.08 * np.sin(freq * (np.cos(theta) * xx + np.sin(theta) * yy) + rng.uniform(0, 6))
    coarse = rng.normal(0, 0.06, size=(5, 5, 3))
    up = np.kron(coarse, np.ones((SIZE // 4, SIZE // 4, 1)))[:SIZE, :SIZE]
    grain = rng.normal(0, 0.03, size=(SIZE, SIZE, 3))
    return base + stripes[..., None] + up[: SIZE, : SIZE] + grain


def _place(rng, r_range, occupied: np.ndarray | None, yy, xx, kind):
    for _ in range(50):
        r = rng.uniform(*r_range)
        cy = rng.uniform(12 + r, SIZE - 2 - r)  # keep clear of the watermark strip at the top
        cx = rng.uniform(2 + r, SIZE - 2 - r)
        mask = _shape_mask(kind, cy, cx, r, yy, xx)
        if occupied is None or not (mask & occupied).any():
            return mask
    return mask


def _watermark(position: int) -> tuple[np.ndarray, np.ndarray]:
    """Mask and full-size black/white pattern of class ``position``'s watermark."""
    mask = np.zeros((SIZE, SIZE), bool)
    r, c = WATERMARK_POSITIONS[position]
    mask[r : r + WATERMARK, c : c + WATERMARK] = True
    rows, cols = np.indices((SIZE, SIZE))
    pattern = (rows + cols, rows, cols)[position] % 2
    return mask, pattern.astype("float32")


def with_watermark(images, position: int) -> np.ndarray:
    """Copies of ``images`` with the watermark of class ``position`` pasted on, whatever their
    label: examples of the *concept* "this watermark" for :mod:`course_utils.concepts`.

    Examples
    --------
    >>> plain = shapes(2, seed=3).images
    >>> marked = with_watermark(plain, 0)
    >>> int((marked != plain).any(axis=-1).sum(axis=(1, 2)).max()) <= WATERMARK**2
    True
    """
    if isinstance(position, bool) or position not in range(len(CLASS_NAMES)):
        raise ValueError(f"position must be a class index 0..{len(CLASS_NAMES) - 1} "
                         f"({', '.join(CLASS_NAMES)}), got {position!r}.")
    arr = np.asarray(images, dtype="float32")
    if arr.ndim != 4 or arr.shape[1:] != (SIZE, SIZE, 3):
        raise ValueError(f"Expected shapes images (N, {SIZE}, {SIZE}, 3), got {arr.shape}.")
    mask, pattern = _watermark(int(position))
    out = arr.copy()
    out[:, mask] = pattern[mask][:, None]
    return out


def shapes(
    n: int, seed: int = 0, spurious: bool | str = False, shape_agreement: float = 1.0
) -> ShapesData:
    """Generate ``n`` images of the shapes dataset, deterministically from ``seed``.

    Parameters
    ----------
    n
        Number of images.
    seed
        Seed of the generator: the same ``(n, seed, spurious)`` gives the same data.
    spurious
        ``False``, ``True``/``"correlated"`` or ``"shuffled"``; see the module docstring.
    shape_agreement
        Fraction of images whose object has the label's shape (default 1: all of them).

    Returns
    -------
    ShapesData
        Unpacks as ``images, labels, masks``.

    Examples
    --------
    >>> images, labels, masks = shapes(4, seed=1)
    >>> images.shape, labels.shape, masks.shape
    ((4, 64, 64, 3), (4,), (4, 64, 64))
    >>> bool(masks.any(axis=(1, 2)).all())
    True
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    modes = {False: "none", True: "correlated", "correlated": "correlated", "shuffled": "shuffled"}
    if spurious not in modes:
        raise ValueError(
            f"spurious must be False, True, 'correlated' or 'shuffled'; got {spurious!r}."
        )
    mode = modes[spurious]
    if not 0 <= shape_agreement <= 1:
        raise ValueError(f"shape_agreement must be in [0, 1], got {shape_agreement!r}.")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype("float32")
    images = np.empty((n, SIZE, SIZE, 3), "float32")
    masks = np.zeros((n, SIZE, SIZE), bool)
    wmasks = np.zeros((n, SIZE, SIZE), bool)
    labels = rng.integers(0, len(CLASS_NAMES), size=n)
    kinds = labels.copy()
    if shape_agreement < 1:
        disagree = rng.uniform(size=n) >= shape_agreement
        kinds[disagree] = (labels[disagree] + rng.integers(1, 3, size=disagree.sum())) % 3
    for i in range(n):
        img = _background(rng, yy, xx)
        target = _place(rng, (8.0, 13.0), None, yy, xx, kinds[i])
        distractor = _place(rng, (6.0, 9.0), target, yy, xx, 3)
        for mask in (distractor, target):
            colour = rng.uniform(0, 1, size=3)
            colour[rng.integers(3)] = rng.uniform(0.85, 1.0)  # saturated, visible on the ground
            img[mask] = colour
        if mode != "none":
            pos = labels[i] if mode == "correlated" else rng.integers(len(CLASS_NAMES))
            wmask, pattern = _watermark(int(pos))
            img[wmask] = pattern[wmask][:, None]
            wmasks[i] = wmask
        images[i] = np.clip(img, 0, 1)
        masks[i] = target
    return ShapesData(images, labels.astype("int64"), masks, wmasks)
