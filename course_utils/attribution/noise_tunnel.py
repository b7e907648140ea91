"""The noise tunnel: SmoothGrad, SmoothGrad² and VarGrad of any attribution method.

As Captum's ``NoiseTunnel``: a method's maps of ``n_samples`` noisy copies of each image,
``x + sigma * n_k`` with ``sigma = noise_level * (max(x) - min(x))`` per image
(:func:`noise_sigma`) and ``n_k`` standard normal noise (:func:`noise_rows`: sample ``k`` has
the same noise for every image, whatever ``batch_size``), reduced per pixel to

- ``"smoothgrad"``: their mean (Smilkov et al. 2017),
- ``"smoothgrad_sq"``: the mean of their squares (SmoothGrad², Hooker et al. 2019),
- ``"vargrad"``: their variance (VarGrad, Adebayo et al. 2018).

:func:`noise_tunnel` wraps a method and returns one with the same public signature;
:func:`~course_utils.attribution.smoothgrad` is the tunnel of ``saliency`` with ``"smoothgrad"``.
The noisy copies are evaluated in chunks of ``batch_size`` rows, each chunk in one call of
the wrapped method's math (its compiled kernel), with a progress bar for long runs.

Examples
--------
>>> import keras, numpy as np
>>> from course_utils.attribution import saliency
>>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
...                       keras.layers.Dense(2)])
>>> vargrad = noise_tunnel(saliency, "vargrad", n_samples=4)
>>> vargrad.__name__, list(inspect.signature(vargrad).parameters)
('saliency_vargrad', ['model', 'images', 'targets', 'reduce', 'batch_size'])
>>> float(vargrad(m, np.random.rand(4, 4, 1), targets=0).max())  # linear: no variance
0.0
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import keras
import numpy as np

from course_utils.attribution.template import method
from course_utils.engine import batching, checks, inputs

#: The reductions of the noisy maps: their mean, mean square, variance.
KINDS = ("smoothgrad", "smoothgrad_sq", "vargrad")
_ORDERS = {"smoothgrad": (1,), "smoothgrad_sq": (2,), "vargrad": (1, 2)}
#: What each kind computes (for the docstring of a wrapped method).
KIND_TITLES = {"smoothgrad": "the mean of the noisy maps",
               "smoothgrad_sq": "the mean of their squares",
               "vargrad": "their variance"}


def noise_sigma(x: np.ndarray, noise_level: float) -> np.ndarray:
    """Per-image noise standard deviation: ``noise_level * (max(x) - min(x))`` (Smilkov et al.).

    Relative to each input's own value range, so 0.15 means the same on ``[0, 255]``, ``[0, 1]``
    and ``[-1, 1]`` inputs.

    Examples
    --------
    >>> x = np.stack([np.linspace(0, 1, 4), np.linspace(0, 255, 4)]).reshape(2, 2, 2, 1)
    >>> [round(float(v), 2) for v in noise_sigma(x, 0.1)]  # 10 % of each image's own range
    [0.1, 25.5]
    """
    return (noise_level * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))).astype("float32")


def noise_rows(shape: tuple, keys: np.ndarray, sample_idx: np.ndarray, seed) -> np.ndarray:
    """Standard normal noise for rows ``(key, sample)``, the same whatever the chunking
    (each row has its own generator seeded by ``(seed, key, sample)``).

    The methods give every image the key 0: sample ``k`` of a call has the same noise for
    every image, so that a map depends on its image, the seed and the options, never on the
    image's position in the batch (the noise is scaled per image by :func:`noise_sigma`).

    Examples
    --------
    >>> a = noise_rows((2, 2, 1), np.zeros(3, int), np.array([0, 1, 0]), seed=0)
    >>> bool(np.array_equal(a[0], a[2])), bool(np.array_equal(a[0], a[1]))
    (True, False)
    """
    base = tuple(np.atleast_1d(seed).tolist())
    out = np.empty((len(keys),) + tuple(shape), "float32")
    for r, (i, k) in enumerate(zip(keys, sample_idx, strict=True)):
        out[r] = np.random.default_rng((*base, int(i), int(k))).standard_normal(shape, "float32")
    return out


def check_tunnel(kind: str, n_samples, noise_level, seed) -> dict:
    """The tunnel's settings, checked: ``kind`` one of :data:`KINDS`, ``n_samples`` a count,
    ``noise_level`` a fraction ``>= 0`` of the input range, ``seed`` an integer ``>= 0``.

    Examples
    --------
    >>> check_tunnel("vargrad", 8.0, 0.2, 1)
    {'kind': 'vargrad', 'n_samples': 8, 'noise_level': 0.2, 'seed': 1}
    """
    return {
        "kind": checks.choice(kind, "kind", KINDS),
        "n_samples": checks.integer(n_samples, "n_samples",
                                    example="noisy copies per image, e.g. 25"),
        "noise_level": checks.number(noise_level, "noise_level", minimum=0.0,
                                     example="a fraction of the input range, e.g. 0.15"),
        "seed": checks.seed(seed),
    }


def tunnel(model: keras.Model, job: inputs.Job, math: Callable, options: dict, *, kind: str,
           n_samples: int, noise_level: float, seed: int, progress: str) -> np.ndarray:
    """The tunnel's loop (settings already checked): ``math(model, rows, **options)`` on chunks
    of ``job.batch_size`` noisy copies (a :class:`~course_utils.engine.inputs.Job` whose rows
    keep their image's target), reduced per image to the mean, mean square or variance.

    Examples
    --------
    >>> import keras
    >>> from course_utils.attribution import saliency
    >>> m = keras.Sequential([keras.Input((3, 3, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2)])
    >>> job = inputs.prepare(m, np.random.rand(3, 3, 1), targets=0)
    >>> maps = tunnel(m, job, saliency.math, {"reduce": "sum"}, kind="smoothgrad", n_samples=4,
    ...               noise_level=0.1, seed=0, progress="")
    >>> w = m.layers[-1].kernel.numpy()[:, 0].reshape(3, 3)
    >>> bool(np.allclose(maps[0], w))  # a linear model's gradient is its weights, noise or not
    True
    """
    sigma = noise_sigma(job.x, noise_level)

    def evaluate(img: np.ndarray, sample: np.ndarray) -> np.ndarray:
        noise = noise_rows(job.shape, np.zeros_like(img), sample, seed)
        rows = inputs.Job(x=job.x[img] + sigma[img, None, None, None] * noise,
                          targets=job.targets[img], weights=job.weights[img],
                          offset=job.offset[img], batch_size=job.batch_size)
        return math(model, rows, **options)

    by_order = dict(zip(_ORDERS[kind], batching.sample_moments(
        job.n, n_samples, job.batch_size, evaluate, _ORDERS[kind], progress), strict=True))
    return reduce_kind(kind, by_order.get(1), by_order.get(2))


def reduce_kind(kind: str, mean: np.ndarray | None, mean_square: np.ndarray | None) -> np.ndarray:
    """The map of ``kind`` from the mean and the mean square of the noisy maps (only those it
    needs): the mean, the mean square, or the variance ``mean_square - mean ** 2`` (>= 0).

    Examples
    --------
    >>> maps = np.array([1.0, 3.0])
    >>> [float(reduce_kind(k, maps.mean(), (maps ** 2).mean())) for k in KINDS]
    [2.0, 5.0, 1.0]
    """
    if kind == "smoothgrad":
        return mean
    if kind == "smoothgrad_sq":
        return mean_square
    return np.maximum(mean_square - mean ** 2, 0.0)


def noise_tunnel(
    wrapped: Callable,
    kind: str = "smoothgrad",
    *,
    n_samples: int = 25,
    noise_level: float = 0.15,
    seed: int = 0,
) -> Callable:
    """Wrap an attribution method: its maps of noisy copies of each image, reduced per pixel.

    Parameters
    ----------
    wrapped
        A method of ``course_utils.attribution`` (``saliency``, ``gradient_x_input``,
        ``integrated_gradients``, ``guided_backprop``, ``gradcam``, ...).
    kind
        ``"smoothgrad"`` (the mean of the maps), ``"smoothgrad_sq"`` (the mean of their
        squares) or ``"vargrad"`` (their variance).
    n_samples
        Noisy copies per image.
    noise_level
        Noise standard deviation as a fraction of each image's value range
        (:func:`noise_sigma`); 0 gives the method itself (``"smoothgrad"``).
    seed
        Noise seed; sample ``k`` has the same noise (scaled per image) for every image.

    Returns
    -------
    A method with the public signature of ``wrapped`` (its options are passed through),
    named ``<method>_<kind>``, returning float32 ``(N, H, W)`` maps.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from course_utils.attribution import gradient_x_input
    >>> m = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2)])
    >>> sq = noise_tunnel(gradient_x_input, "smoothgrad_sq", n_samples=3)
    >>> maps = sq(m, np.random.rand(2, 4, 4, 3), targets=1)
    >>> maps.shape, bool(maps.min() >= 0)
    ((2, 4, 4), True)
    """
    math = getattr(wrapped, "math", None)
    if math is None or not callable(wrapped):
        raise TypeError(f"noise_tunnel wraps a method of course_utils.attribution (e.g. "
                        f"attribution.saliency); got {wrapped!r}.")
    settings = check_tunnel(kind, n_samples, noise_level, seed)
    name = f"{wrapped.__name__}_{kind}"
    check_wrapped = wrapped.check

    def check(**options) -> dict:
        for option, value in options.items():
            if option.startswith("return_") and value:
                raise ValueError(f"The noise tunnel reduces maps; {option}=True makes "
                                 f"{wrapped.__name__} return more than maps. Leave it False.")
        return {} if check_wrapped is None else check_wrapped(**options)

    def tunnelled(model, job, **options):
        return tunnel(model, job, math, options, progress=f"{kind} of {wrapped.__name__}",
                      **settings)

    tunnelled.__signature__ = inspect.signature(math)
    tunnelled.__name__ = tunnelled.__qualname__ = name
    tunnelled.__doc__ = (
        f"{kind} ({KIND_TITLES[kind]}) of ``{wrapped.__name__}`` over "
        f"{settings['n_samples']} noisy copies per image (noise level "
        f"{settings['noise_level']:g}, seed {settings['seed']}); made by "
        f":func:`course_utils.attribution.noise_tunnel.noise_tunnel`.\n\n"
        f"{inspect.getdoc(wrapped) or ''}")
    return method(check=check)(tunnelled)
