"""LIME for images (Ribeiro, Singh & Guestrin 2016), wrapping the ``lime`` package.

The ``lime`` package's ``LimeImageExplainer`` draws the on/off samples, weighs them with its
kernel and fits its ridge regression; only its ``data_labels`` step is replaced: instead of
building every perturbed image with a Python loop and calling the classifier 10 images at a
time, the masks are applied inside one compiled function (``gather`` of the on/off vector by
superpixel) on ``batch_size`` samples at a time.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from lime import lime_image

from course_utils.attribution.template import method
from course_utils.engine import batching, checks, kernels, scoring, spaces


def segment(pixels: np.ndarray, pixel_max: float, method: str = "quickshift", **options):
    """Superpixels of a pixel-space image ``(H, W, C)`` -> int labels ``0..n-1`` ``(H, W)``.

    ``"quickshift"`` uses lime's defaults (``kernel_size=4, max_dist=200, ratio=0.2``);
    ``"slic"`` defaults to ``n_segments=100, compactness=10``. Grayscale images are segmented as
    grey RGB.
    """
    from skimage.segmentation import quickshift, slic

    img = np.clip(pixels / pixel_max, 0.0, 1.0).astype("float64")
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    if method == "quickshift":
        opts = {"kernel_size": 4, "max_dist": 200, "ratio": 0.2, "rng": 0} | options
        seg = quickshift(img, **opts)
    elif method == "slic":
        opts = {"n_segments": 100, "compactness": 10, "start_label": 0} | options
        seg = slic(img, **opts)
    else:
        raise ValueError(f"Unknown segmentation {method!r}; use 'quickshift' or 'slic'.")
    _, seg = np.unique(seg, return_inverse=True)
    return seg.reshape(img.shape[:2]).astype("int32")


def probabilities(model: keras.Model, out):
    """Class probabilities from the output read in logits mode (a TF op, ``(B, classes)``);
    a single sigmoid unit gives ``[p, 1 - p]`` (target 0 = the class it scores)."""
    h = scoring.head(model)
    if h.swappable and h.activation == "softmax":
        out = tf.nn.softmax(out)
    elif h.swappable and h.activation == "sigmoid":
        out = tf.sigmoid(out)
    if h.binary:
        out = tf.concat([out, 1.0 - out], axis=-1)
    return out


def _masked_probabilities_fn(model: keras.Model):
    def build():
        def fn(z, x, fudged, seg):
            on = tf.gather(z, seg, axis=1)[..., None]  # (B, H, W, 1)
            imgs = fudged[None] + on * (x - fudged)[None]
            return probabilities(model, scoring.forward_scores(model, imgs))

        return kernels.tf_function(fn)

    return kernels.compiled(model, "lime", build)


class _BatchedLimeImageExplainer(lime_image.LimeImageExplainer):
    """lime's explainer with a vectorized, compiled ``data_labels``."""

    def __init__(self, model, x_model, batch_size, **kwargs):
        super().__init__(**kwargs)
        self._model = model
        self._x = x_model
        self._batch_size = batch_size

    def data_labels(self, image, fudged_image, segments, classifier_fn, num_samples,
                    batch_size=10, progress_bar=True):
        n_features = np.unique(segments).shape[0]
        data = self.random_state.randint(0, 2, num_samples * n_features).reshape(
            (num_samples, n_features))
        data[0, :] = 1
        fudged_image = fudged_image[..., : self._x.shape[-1]]  # grayscale went in as grey RGB
        fudged = spaces.to_model_space(self._model, fudged_image[None])[0]
        fn = _masked_probabilities_fn(self._model)
        z = data.astype("float32")
        seg = segments.astype("int32")
        shared = (tf.constant(self._x), tf.constant(fudged), tf.constant(seg))  # not rows
        labels = batching.run_rows(num_samples, self._batch_size, lambda sl: (z[sl], *shared), fn)
        return data, labels


def _same_image_rows(x: np.ndarray) -> list[list[int]]:
    """Row indices of ``x`` grouped by identical image, in order of first appearance: LIME's
    samples depend only on the image, its superpixels and the seed, so one set of perturbed
    images serves every target asked for the same image."""
    groups: dict[bytes, list[int]] = {}
    for r in range(len(x)):
        groups.setdefault(np.ascontiguousarray(x[r]).tobytes(), []).append(r)
    return list(groups.values())


def _check(n_samples, segmentation, segmentation_options, hide_color, kernel_width, seed,
           return_explanations) -> dict:
    """The options of :func:`lime`, checked before any work is done."""
    return {
        "n_samples": checks.integer(n_samples, "n_samples", minimum=2,
                                    example="perturbed samples per image, e.g. 1000"),
        "kernel_width": checks.number(kernel_width, "kernel_width", positive=True,
                                      example="lime's kernel width, e.g. 0.25"),
        "seed": checks.seed(seed),
    }


@method(check=_check)
def lime(
    model: keras.Model,
    job,
    *,
    n_samples: int = 1000,
    segmentation: str = "quickshift",
    segmentation_options: dict | None = None,
    hide_color=None,
    kernel_width: float = 0.25,
    seed: int = 0,
    return_explanations: bool = False,
):
    """LIME: turn superpixels on and off, fit a locally weighted linear model of the class
    probability, paint each superpixel with its coefficient.

    Superpixels are computed on the **pixel-space** image (the model input with its
    preprocessing undone), not on the mean-subtracted tensor. Sampling, kernel (cosine
    distance, ``kernel_width=0.25``) and the ridge regression are the ``lime`` package's;
    the perturbed images are built and scored in compiled batches. The regression target is
    the class probability (softmax or sigmoid of the logits), as in LIME; a model without a
    final softmax/sigmoid has its raw scores regressed.

    Rows holding the same image (e.g. one picture asked for two classes) share one set of
    perturbed samples, scored once: their maps are those of separate calls, at the cost of
    one; their explanation object is shared and holds every class asked for.

    Parameters
    ----------
    n_samples
        Perturbed samples per image (lime's ``num_samples``; about 10 per superpixel).
    segmentation, segmentation_options
        ``"quickshift"`` (lime's default and its settings) or ``"slic"``; see :func:`segment`.
    hide_color
        Colour of hidden superpixels in **pixel space**, as occlusion's ``fill`` and
        Integrated Gradients' ``baseline``: ``"grey"``, ``"black"``, ``"white"``, ``"mean"``
        (the image's mean colour), ``"blur"``, a number, a colour per channel, or an
        image-shaped pixel array; mapped through the model's preprocessing. ``None`` (lime's
        default) uses each superpixel's mean colour.
    seed
        Seed of lime's samples, the same for every image, so a map does not depend on the
        image's position in the batch.
    return_explanations
        Also return lime's ``ImageExplanation`` objects.

    Returns
    -------
    float32 ``(N, H, W)``: each pixel holds its superpixel's signed coefficient
    (``(maps, explanations)`` with ``return_explanations=True``).

    Examples
    --------
    >>> import keras, numpy as np
    >>> m = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(),
    ...                       keras.layers.Dense(2, activation="softmax")])
    >>> lime(m, np.random.rand(16, 16, 3), n_samples=50, segmentation="slic",
    ...      segmentation_options={"n_segments": 8}).shape
    (1, 16, 16)
    """
    from course_utils.models import registry

    batch_size = job.batch_size
    if job.x.shape[-1] not in (1, 3):
        raise ValueError(f"LIME explains RGB or grayscale images, not {job.x.shape[-1]} channels.")
    pixels = spaces.to_pixels(model, job.x)
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    pmax = float(registry.info(model).pixel_max)
    opts = segmentation_options or {}
    maps = np.zeros(job.x.shape[:3], "float32")
    explanations = [None] * job.n
    for rows in _same_image_rows(job.x):
        i = rows[0]
        seg = segment(pixels[i], pmax, segmentation, **opts)
        hidden = (None if hide_color is None
                  else spaces.pixel_constant(model, hide_color, pixels[i], "hide_color"))
        explainer = _BatchedLimeImageExplainer(
            model, job.x[i], batch_size, kernel_width=kernel_width, random_state=seed)
        targets = tuple(dict.fromkeys(int(job.targets[r]) for r in rows))
        exp = explainer.explain_instance(
            pixels[i].astype("float64"), classifier_fn=None, labels=targets,
            hide_color=hidden, top_labels=None, num_features=100000,
            num_samples=n_samples, segmentation_fn=lambda _img, s=seg: s, random_seed=seed,
        )
        for r in rows:
            coef = np.zeros(seg.max() + 1, "float32")
            for feature, weight in exp.local_exp[int(job.targets[r])]:
                coef[feature] = weight
            maps[r] = coef[seg]
            explanations[r] = exp
    return (maps, explanations) if return_explanations else maps
