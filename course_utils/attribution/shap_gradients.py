"""Expected gradients, the method of ``shap.GradientExplainer`` (Lundberg & Lee 2017;
Erion et al. 2019), on the input or on an inner layer."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from course_utils.attribution.smoothgrad import noise_rows
from course_utils.attribution.template import method
from course_utils.engine import batching, checks, gradients, inputs, kernels, scoring, spaces, taps


def expected_gradient_draws(
    n_images: int, n_samples: int, n_background: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Background index and path position ``t ~ U(0, 1)`` for every (image, sample), as
    :func:`shap_gradients` draws them: int ``(n_images, n_samples)`` and float32 likewise.

    Every image has the same draws (see :func:`sample_draws`), so a map does not depend on
    the image's position in the batch.

    Examples
    --------
    >>> idx, t = expected_gradient_draws(2, 3, n_background=5, seed=0)
    >>> idx.shape, bool((idx[0] == idx[1]).all())
    ((2, 3), True)
    """
    idx, t = sample_draws(np.arange(n_samples), n_background, seed)
    return np.tile(idx, (n_images, 1)), np.tile(t, (n_images, 1))


def sample_draws(
    sample_idx: np.ndarray, n_background: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Background index and path position ``t ~ U(0, 1)`` of samples ``sample_idx`` (a chunk).

    Sample ``k`` is drawn from ``(seed, k)``: the same for every image of a call and whatever
    the chunking, so a map depends neither on ``batch_size`` nor on the image's position in
    the batch, and only a chunk's draws are ever held.
    """
    idx = np.empty(len(sample_idx), "int64")
    t = np.empty(len(sample_idx), "float32")
    for r, k in enumerate(sample_idx):
        rng = np.random.default_rng((seed, int(k)))
        idx[r] = rng.integers(0, n_background)
        t[r] = rng.uniform(0.0, 1.0)
    return idx, t


def _path_rows(values, background, img, sample, local_smoothing: float, stream: tuple):
    """Rows ``(z, delta)`` of samples ``sample`` of images ``img``: ``z = t v + (1 - t) b`` on
    the path from a background row ``b`` to the image's ``v`` (input or layer values, with
    ``local_smoothing`` noise drawn from ``stream = (seed, k)``), ``delta = v - b``; the
    background index and ``t`` as :func:`sample_draws`."""
    v = values[img]
    if local_smoothing > 0:
        v = v + local_smoothing * noise_rows(v.shape[1:], np.zeros_like(img), sample, stream)
    idx, t = sample_draws(sample, len(background), stream[0])
    b = background[idx]
    tt = t[:, None, None, None]
    return tt * v + (1 - tt) * b, v - b


def _layer_gradient_fn(model: keras.Model, path: tuple):
    """Compiled ``f(x, z, delta, w, o)``: replace the layer's output by ``z`` (watched), return
    ``sum_c grad(z) * delta`` per row."""

    def build():
        def fn(x, z, delta, weights, offset):
            with tf.GradientTape() as tape:
                tape.watch(z)
                s = scoring.score(model, x, weights, offset,
                                  taps=taps.LayerTap(path[-1], replace=z).taps)
            return tf.reduce_sum(tape.gradient(s, z) * delta, axis=-1)

        return kernels.tf_function(fn)

    return kernels.compiled(model, "layer_expected_gradients", build, options=(id(path[-1]),))


def _check(background, n_samples, layer, local_smoothing, seed) -> dict:
    """The options of :func:`shap_gradients`, checked before any work is done."""
    return {
        "n_samples": checks.integer(n_samples, "n_samples",
                                    example="samples per image, e.g. 200"),
        "local_smoothing": checks.number(
            local_smoothing, "local_smoothing", minimum=0.0,
            example="a noise standard deviation in input units, e.g. 0.1"),
        "seed": checks.seed(seed),
    }


@method(check=_check)
def shap_gradients(
    model: keras.Model,
    job,
    *,
    background=None,
    n_samples: int = 200,
    layer=None,
    local_smoothing: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Expected gradients: ``E[(x - x') * grad f(x' + t (x - x'))]`` over background images
    ``x'`` and ``t ~ U(0, 1)``, summed over channels.

    This is what ``shap.GradientExplainer`` computes (same sampling: one background image and
    one ``t`` per sample, ``nsamples=200`` by default, optional ``local_smoothing`` noise on
    ``x``), but all samples run in compiled batches. ``f`` is the target's pre-softmax score
    (saturated softmax gradients vanish). The attributions sum, in expectation, to
    ``f(x) - mean f(background)``.

    Parameters
    ----------
    background
        Background images in the **same (preprocessed) space as** ``images``, shape
        ``(M, H, W, C)``, e.g. a hundred training images. Default: one black image in pixel
        space mapped through the model's preprocessing (then this is Integrated Gradients with
        random path positions). A pixel-space spec (``"black"``, ``"grey"``...) is also accepted.
    n_samples
        Samples per image (``nsamples`` in shap).
    layer
        Explain an inner layer's output instead of the input, as in shap's lecture that explains
        VGG16 at its 7th and 14th layers (there ``model.layers[7].input``, i.e. the output of
        ``block2_pool``: pass ``layer="block2_pool"``). The layer's output is replaced by points
        on the path between the background's and the image's activations; the layer
        attributions are summed over channels and bilinearly upsampled to the input size.
        The layer must have a spatial output.
    local_smoothing
        Standard deviation of Gaussian noise added to ``x`` per sample (shap's option).
    seed
        Seed of the draws; sample ``k`` is the same for every image, so a map does not depend
        on the image's position in the batch.

    Returns
    -------
    float32 ``(N, H, W)``, signed.

    Examples
    --------
    >>> import keras, numpy as np
    >>> m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2)])
    >>> shap_gradients(m, np.ones((4, 4, 1)), background=np.zeros((3, 4, 4, 1)),
    ...                n_samples=8).shape
    (1, 4, 4)
    """
    batch_size = job.batch_size
    if background is None or isinstance(background, str):
        bg = spaces.model_space_constant(model, background or "black", job.x[:1], "background")
    else:
        bg = inputs.as_batch(model, background)
    size = job.x.shape[1:3]

    if layer is None:
        fn = gradients.gradient_rows_fn(model, "sum", with_delta=True)

        def make(img, sample):
            z, delta = _path_rows(job.x, bg, img, sample, local_smoothing, (seed, 1))
            return z, delta, job.weights[img], job.offset[img]

        return batching.mean_rows(job.n, n_samples, batch_size, make, fn, "SHAP")

    path = taps.feature_path(model, layer)
    acts = taps.activations_fn(model, path)
    a_x = batching.run_rows(job.n, batch_size, lambda sl: (job.x[sl],), acts)
    a_bg = batching.run_rows(len(bg), batch_size, lambda sl: (bg[sl],), acts)
    fn = _layer_gradient_fn(model, path)

    def make_layer(img, sample):
        z, delta = _path_rows(a_x, a_bg, img, sample, local_smoothing, (seed, 2))
        return job.x[img], z, delta, job.weights[img], job.offset[img]

    small = batching.mean_rows(job.n, n_samples, batch_size, make_layer, fn, "SHAP (layer)")
    return batching.as_float32(spaces.upsample(tf.constant(small), size).numpy())
