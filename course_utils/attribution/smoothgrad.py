"""SmoothGrad (Smilkov, Thorat, Kim, Viegas & Wattenberg 2017)."""

from __future__ import annotations

import keras
import numpy as np

from course_utils.attribution.noise_tunnel import check_tunnel, noise_rows, noise_sigma, tunnel
from course_utils.attribution.saliency import saliency
from course_utils.attribution.template import method
from course_utils.engine import gradients

#: ``noise_sigma`` and ``noise_rows`` live in the noise tunnel and keep their names here.
__all__ = ["noise_rows", "noise_sigma", "smoothgrad"]


def _check(n_samples, noise_level, reduce, seed) -> dict:
    gradients.check_reduce(reduce)
    settings = check_tunnel("smoothgrad", n_samples, noise_level, seed)
    del settings["kind"]
    return settings


@method(check=_check)
def smoothgrad(
    model: keras.Model,
    job,
    *,
    n_samples: int = 25,
    noise_level: float = 0.15,
    reduce: str = "max_abs",
    seed: int = 0,
) -> np.ndarray:
    """Average of the saliency maps of ``n_samples`` noisy copies of each image.

    ``M(x) = mean_k saliency(x + N(0, sigma^2))`` with ``sigma = noise_level * (max(x) -
    min(x))`` computed per image in the model's input space, as in Smilkov et al. (2017), who
    recommend 10-20 % noise and about 50 samples. Gradients are of the pre-softmax score (see
    :func:`course_utils.attribution.saliency`). All ``N * n_samples`` noisy copies are evaluated
    in compiled batches of ``batch_size`` rows.

    Parameters
    ----------
    n_samples
        Noisy copies per image.
    noise_level
        Noise standard deviation as a fraction of each image's value range; 0 gives saliency.
    reduce
        Channel reduction of each sample's gradient (see ``saliency``), applied before averaging.
    seed
        Noise seed; sample ``k`` has the same noise (scaled per image) for every image, so a
        map depends neither on ``batch_size`` nor on the image's position in the batch.

    Returns
    -------
    float32 ``(N, H, W)``.

    Examples
    --------
    >>> import keras, numpy as np
    >>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2)])
    >>> smoothgrad(m, np.random.rand(4, 4, 1), n_samples=4).shape
    (1, 4, 4)
    """
    return tunnel(model, job, saliency.math, {"reduce": reduce}, kind="smoothgrad",
                  n_samples=n_samples, noise_level=noise_level, seed=seed, progress="SmoothGrad")
