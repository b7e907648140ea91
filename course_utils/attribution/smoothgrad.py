"""SmoothGrad (Smilkov, Thorat, Kim, Viegas & Wattenberg 2017)."""

from __future__ import annotations

import keras
import numpy as np

from course_utils.attribution.template import method
from course_utils.engine import batching, checks, gradients


def noise_sigma(x: np.ndarray, noise_level: float) -> np.ndarray:
    """Per-image noise standard deviation: ``noise_level * (max(x) - min(x))`` (Smilkov et al.).

    Relative to each input's own value range, so 0.15 means the same on ``[0, 255]``, ``[0, 1]``
    and ``[-1, 1]`` inputs.
    """
    return (noise_level * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))).astype("float32")


def noise_rows(shape: tuple, keys: np.ndarray, sample_idx: np.ndarray, seed) -> np.ndarray:
    """Standard normal noise for rows ``(key, sample)``, the same whatever the chunking
    (each row has its own generator seeded by ``(seed, key, sample)``).

    The methods give every image the key 0: sample ``k`` of a call has the same noise for
    every image, so that a map depends on its image, the seed and the options, never on the
    image's position in the batch (the noise is scaled per image by :func:`noise_sigma`).
    """
    base = tuple(np.atleast_1d(seed).tolist())
    out = np.empty((len(keys),) + tuple(shape), "float32")
    for r, (i, k) in enumerate(zip(keys, sample_idx, strict=True)):
        out[r] = np.random.default_rng((*base, int(i), int(k))).standard_normal(shape, "float32")
    return out


def _check(n_samples, noise_level, reduce, seed) -> dict:
    gradients.check_reduce(reduce)
    return {
        "n_samples": checks.integer(n_samples, "n_samples",
                                    example="noisy copies per image, e.g. 25"),
        "noise_level": checks.number(noise_level, "noise_level", minimum=0.0,
                                     example="a fraction of the input range, e.g. 0.15"),
        "seed": checks.seed(seed),
    }


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
    sigma = noise_sigma(job.x, noise_level)
    fn = gradients.gradient_rows_fn(model, reduce, with_delta=False)

    def make(img, sample):
        noise = noise_rows(job.x.shape[1:], np.zeros_like(img), sample, seed)
        z = job.x[img] + sigma[img, None, None, None] * noise
        return z, job.weights[img], job.offset[img]

    return batching.mean_rows(job.n, n_samples, job.batch_size, make, fn, "SmoothGrad")
