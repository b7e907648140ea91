"""Is a feature visualization any good? Two measurements on the model itself.

``natural_ratio``
    each picture's activation of its own channel divided by that channel's mean activation over
    a batch of real images: a good picture drives its channel far beyond what photos do;
``response_matrix`` / ``diagonal_dominance``
    the mean activation of channel ``c`` (rows) on the picture of channel ``p`` (columns): a
    channel's picture must excite that channel more than the other channels' pictures do, so
    the diagonal of the matrix dominates its row.
"""

from __future__ import annotations

import keras
import numpy as np

from course_utils import surgery
from course_utils.features import _graph
from course_utils.features.activations import activations
from course_utils.features.objectives import channel_means
from course_utils.features.visualize import Visualization


def _channel_means(model, layer, images) -> np.ndarray:
    path = _graph.resolve(model, layer)[0]
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
