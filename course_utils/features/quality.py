"""Is a feature visualization any good? Two measurements on the model itself.

``natural_ratio``
    each picture's activation of its own channel divided by that channel's mean activation over
    a batch of real images: a good picture drives its channel far beyond what photos do;
``response_matrix`` / ``diagonal_dominance``
    the mean activation of channel ``c`` (rows) on the picture of channel ``p`` (columns): a
    channel's picture must excite that channel more than the other channels' pictures do, so
    the diagonal of the matrix dominates its row;
``shift_robustness`` / ``high_frequency_share``
    what makes a picture *readable* (Olah et al., Distill 2017): a picture that only works pixel
    for pixel (an adversarial pattern) loses its channel's response when moved by two pixels,
    and puts its energy in the highest spatial frequencies; a readable one keeps the response
    and its energy is in coarser structure.
"""

from __future__ import annotations

import keras
import numpy as np

from course_utils import surgery
from course_utils.engine import taps
from course_utils.features.activations import activations
from course_utils.features.objectives import channel_means
from course_utils.features.visualize import Visualization


def _channel_means(model, layer, images) -> np.ndarray:
    path = taps.resolve(model, layer)[0]
    act = next(iter(activations(model, images, [path[-1]]).values()))
    if act.ndim != 4:
        raise ValueError(f"Layer {surgery.path_name(path)!r} has no spatial output {act.shape}.")
    return channel_means(act)


def response_matrix(model: keras.Model, vis: Visualization) -> np.ndarray:
    """``M[i, j]``: mean activation of channel ``vis.units[i]`` on picture ``j``.

    Examples
    --------
    >>> import keras
    >>> from course_utils.features.visualize import visualize
    >>> m = keras.Sequential([keras.Input((None, None, 3)),
    ...                       keras.layers.Conv2D(3, 3, activation="relu", name="c")])
    >>> vis = visualize(m, "c", steps=4, size=16, progress=False)
    >>> response_matrix(m, vis).shape
    (3, 3)
    """
    if vis.objective not in ("channel", "neuron"):
        raise ValueError("response_matrix needs channel (or neuron) pictures of one layer.")
    means = _channel_means(model, vis.layer, vis.pixels())  # (pictures, channels)
    return means[:, vis.units].T


def diagonal_dominance(matrix: np.ndarray) -> np.ndarray:
    """Per row ``i``: ``M[i, i] - max_{j != i} M[i, j]`` (positive when the diagonal wins).

    Examples
    --------
    >>> diagonal_dominance(np.array([[3.0, 1.0], [2.0, 1.0]])).tolist()
    [2.0, -1.0]
    """
    m = np.asarray(matrix, dtype="float64")
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2:
        raise ValueError(f"Expected a square matrix of at least 2 x 2, got shape {m.shape}.")
    off = m.copy()
    np.fill_diagonal(off, -np.inf)
    return np.diag(m) - off.max(axis=1)


def natural_ratio(model: keras.Model, vis: Visualization, natural_images) -> np.ndarray:
    """Activation of each picture's own channel / that channel's mean over ``natural_images``.

    Parameters
    ----------
    model
        The model the pictures were made for.
    vis
        Channel pictures from :func:`~course_utils.features.visualize.visualize`.
    natural_images
        A batch of real images in pixel space ``[0, pixel_max]``.

    Returns
    -------
    One ratio per picture (``inf`` when the channel is silent on every natural image).
    """
    if vis.objective != "channel":
        raise ValueError("natural_ratio compares channel pictures (objective='channel').")
    nat = _channel_means(model, vis.layer, natural_images).mean(axis=0)[vis.units]
    own = np.diag(response_matrix(model, vis))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(nat > 0, own / np.maximum(nat, 1e-12), np.inf)


def shift_robustness(model: keras.Model, vis: Visualization, shift: int = 2) -> np.ndarray:
    """Share of each picture's own-channel response kept when it is moved by ``shift`` pixels.

    The picture is rolled by ``shift`` pixels in each of the four directions; the result is the
    mean response over the four moved copies divided by the response of the original (1 =
    fully robust; near 0 or negative = the picture only works at its exact position).

    Examples
    --------
    >>> import keras
    >>> from course_utils.features.visualize import visualize
    >>> m = keras.Sequential([keras.Input((None, None, 3)),
    ...                       keras.layers.Conv2D(2, 3, activation="relu", name="c")])
    >>> vis = visualize(m, "c", steps=4, size=16, progress=False)
    >>> shift_robustness(m, vis).shape
    (2,)
    """
    if vis.objective != "channel":
        raise ValueError("shift_robustness compares channel pictures (objective='channel').")
    if not isinstance(shift, (int, np.integer)) or shift < 1:
        raise ValueError(f"shift must be a positive number of pixels, got {shift!r}.")
    pics = vis.pixels()
    n = len(pics)
    moved = np.concatenate([np.roll(pics, s, axis=a) for a in (1, 2) for s in (shift, -shift)])
    means = _channel_means(model, vis.layer, np.concatenate([pics, moved]))
    own = means[np.arange(n), vis.units]
    after = means[n:].reshape(4, n, -1)[:, np.arange(n), vis.units].mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(own > 0, after / np.maximum(own, 1e-12), np.nan)


def high_frequency_share(pictures, cutoff: float = 0.5) -> np.ndarray:
    """Share of each picture's spectral energy (mean removed) above ``cutoff`` x Nyquist.

    ``pictures``: ``(N, H, W, C)``. White noise puts about 80% of its energy above half the
    Nyquist frequency; natural photos put only a few percent there.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> noise = rng.normal(size=(1, 32, 32, 1))
    >>> smooth = np.cumsum(np.cumsum(noise, axis=1), axis=2)
    >>> bool(high_frequency_share(noise)[0] > 0.6 > high_frequency_share(smooth)[0])
    True
    """
    p = np.asarray(pictures, dtype="float64")
    if p.ndim != 4:
        raise ValueError(f"Expected pictures (N, H, W, C), got shape {p.shape}.")
    if not 0.0 < cutoff < 1.0:
        raise ValueError(f"cutoff is a fraction of the Nyquist frequency in (0, 1), got {cutoff}.")
    p = p - p.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(p, axes=(1, 2))) ** 2
    fy = np.abs(np.fft.fftfreq(p.shape[1]))[:, None] / 0.5
    fx = np.abs(np.fft.fftfreq(p.shape[2]))[None, :] / 0.5
    high = (np.maximum(fy, fx) > cutoff)[None, :, :, None]
    total = power.sum(axis=(1, 2, 3))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, (power * high).sum(axis=(1, 2, 3)) / total, np.nan)
