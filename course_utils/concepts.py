"""Concepts, not pixels: concept activation vectors and TCAV (Kim et al. 2018).

A *concept* ("striped", "a watermark in the corner") is given by example images. At an inner
layer ``l`` the network maps each image to an activation ``f_l(x)``; a linear classifier that
separates the concept's activations from those of random images has a normal vector ``v``, the
**concept activation vector** (CAV). How much a class score ``h_k`` depends on the concept at an
image is the directional derivative

    S_{C,k,l}(x) = grad h_k(f_l(x)) . v_C

and the **TCAV score** of class ``k`` is the fraction of the class's images where it is
positive. A CAV learned from any two image sets separates them somewhat, so a score alone means
nothing: the test learns the concept against many random sets and compares those scores with
the scores of CAVs learned between random sets only (a two-sided t-test); only a concept whose
scores differ significantly from the random ones is related to the class.

Examples
--------
>>> import keras, numpy as np
>>> inp = keras.Input((8, 8, 1))
>>> h = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
>>> out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h))
>>> model = keras.Model(inp, out)
>>> rng = np.random.default_rng(0)
>>> bright, dark = rng.uniform(0.5, 1, (20, 8, 8, 1)), rng.uniform(0, 0.5, (20, 8, 8, 1))
>>> v = learn_cav(model, "conv", bright, dark, concept="bright")
>>> v.vector.shape, round(float(np.linalg.norm(v.vector)), 3)
((144,), 1.0)
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from scipy import stats
from sklearn.linear_model import SGDClassifier
from tqdm.auto import tqdm

from course_utils import surgery
from course_utils.engine import batching, gradients, inputs, kernels, scoring


@dataclass(frozen=True)
class CAV:
    """A concept activation vector: the unit normal of the boundary between a concept's
    activations and random ones at ``layer``, pointing toward the concept.

    ``accuracy`` is the linear classifier's accuracy on a held-out third of the examples: a CAV
    near 0.5 separates nothing and its direction is noise.
    """

    concept: str
    layer: str
    vector: np.ndarray
    accuracy: float


@dataclass(frozen=True)
class TCAVResult:
    """The outcome of :func:`tcav` for one concept, class and layer.

    ``scores``: the TCAV score of each concept-vs-random CAV; ``random_scores``: the same for
    random-vs-random CAVs (the null distribution); ``p_value``: two-sided t-test between the
    two; ``significant``: ``p_value < alpha``; ``accuracies``: held-out accuracy of each
    concept CAV.
    """

    concept: str
    target: int
    layer: str
    scores: np.ndarray
    random_scores: np.ndarray
    p_value: float
    alpha: float
    accuracies: np.ndarray

    @property
    def score(self) -> float:
        """Mean TCAV score over the concept's CAVs."""
        return float(np.mean(self.scores))

    @property
    def significant(self) -> bool:
        """Whether the concept's scores differ from the random ones at level ``alpha``."""
        return bool(self.p_value < self.alpha)

    def __str__(self) -> str:
        verdict = "significant" if self.significant else "not significant"
        return (f"TCAV({self.concept!r} -> class {self.target}, {self.layer}) = "
                f"{self.score:.2f} +- {np.std(self.scores):.2f}; random CAVs "
                f"{np.mean(self.random_scores):.2f} +- {np.std(self.random_scores):.2f}; "
                f"p = {self.p_value:.2g} ({verdict} at {self.alpha})")


def _layer_path(model: keras.Model, layer) -> tuple:
    path = surgery.find_path(model, layer)
    if len(surgery.output_shape(path[-1])) < 2:
        raise ValueError(f"Layer {path[-1].name!r} has no activations to learn a concept in.")
    return path


def _batched(fn, arrays: Sequence[np.ndarray], batch_size: int) -> np.ndarray:
    n = len(arrays[0])
    return np.concatenate([
        fn(*(tf.constant(a[i : i + batch_size]) for a in arrays)).numpy()
        for i in range(0, n, batch_size)
    ])


def activations(model: keras.Model, images, layer, *, batch_size: int = 64) -> np.ndarray:
    """Activations of ``layer`` for ``images``, one flattened row per image.

    Parameters
    ----------
    model
        A Keras model; ``layer`` a name, index or layer (nested models are searched).
    images
        ``(N, H, W, C)`` (or one image), preprocessed for the model.

    Returns
    -------
    float32 ``(N, D)``, ``D`` the number of values of the layer's output per image.

    Examples
    --------
    >>> import keras, numpy as np
    >>> inp = keras.Input((6, 6, 1))
    >>> h = keras.layers.Conv2D(2, 3, name="c")(inp)
    >>> m = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(h)))
    >>> activations(m, np.zeros((3, 6, 6, 1)), "c").shape
    (3, 32)
    """
    path = _layer_path(model, layer)
    x = inputs.as_batch(model, images)
    batch_size = batching.check_batch_size(batch_size)

    def build():
        @kernels.graph()
        def fn(x):
            _, (a,) = surgery.forward_with(model, x, [path[-1]])
            return tf.reshape(a, (tf.shape(a)[0], -1))

        return fn

    fn = kernels.compiled(model, "concepts.activations", build, options=(id(path[-1]),))
    return _batched(fn, [x], batch_size)


def learn_cav(model: keras.Model, layer, concept_images, random_images, *,
              concept: str = "concept", seed: int = 0, batch_size: int = 64) -> CAV:
    """Learn the concept activation vector of ``concept_images`` against ``random_images``.

    A linear classifier on the layer's activations (a linear SVM trained by SGD, as in the
    paper's code; two thirds of each set, chosen by ``seed``); the CAV is its weight vector
    scaled to unit length, and its accuracy is measured
    on the held-out third.

    Examples
    --------
    >>> import keras, numpy as np
    >>> inp = keras.Input((6, 6, 1))
    >>> h = keras.layers.Conv2D(2, 3, name="c")(inp)
    >>> model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(h)))
    >>> rng = np.random.default_rng(0)
    >>> v = learn_cav(model, "c", rng.uniform(0.5, 1, (30, 6, 6, 1)),
    ...               rng.uniform(0, 0.5, (30, 6, 6, 1)))
    >>> v.accuracy > 0.9
    True
    """
    pos = activations(model, concept_images, layer, batch_size=batch_size)
    neg = activations(model, random_images, layer, batch_size=batch_size)
    for name, arr in (("concept_images", pos), ("random_images", neg)):
        if len(arr) < 3:
            raise ValueError(f"{name} needs at least 3 images to learn and test a CAV, got "
                             f"{len(arr)}; give a few dozen examples of each.")
    return _fit_cav(pos, neg, concept, surgery.find_path(model, layer)[-1].name, seed)


#: Fitted linear classifiers by the digest of their data and seed: :func:`tcav` asks for the
#: same random-vs-random CAVs for every concept and class, and for a concept's CAVs for every
#: class, so each is fitted once (a fit is deterministic in its data and seed).
_FITS: OrderedDict[bytes, tuple[np.ndarray, float]] = OrderedDict()
_MAX_FITS = 512


def _digest(*arrays: np.ndarray, seed: int) -> bytes:
    h = hashlib.blake2b(str(seed).encode(), digest_size=20)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.data)
    return h.digest()


def _fit_linear(pos: np.ndarray, neg: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """The weight vector and held-out accuracy of a linear classifier of ``pos`` (label 1)
    against ``neg`` (label 0); see learn_cav. Memoized in ``_FITS``."""
    key = _digest(pos, neg, seed=seed)
    if key in _FITS:
        _FITS.move_to_end(key)
        return _FITS[key]
    rng = np.random.default_rng(seed)
    x = np.concatenate([pos, neg]).astype("float64")
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    test = np.zeros(len(y), bool)
    for label in (0, 1):  # a stratified held-out third
        idx = np.flatnonzero(y == label)
        test[rng.choice(idx, size=max(1, len(idx) // 3), replace=False)] = True
    # A linear SVM trained by SGD on the raw activations, the setting of the paper's code
    # (tensorflow/tcav: alpha 0.01). Standardizing the activations first would blow up the
    # weight of near-constant units (a dead ReLU) once the vector is mapped back.
    clf = SGDClassifier(alpha=0.01, max_iter=1000, tol=1e-3, random_state=seed)
    clf.fit(x[~test], y[~test])
    fitted = clf.coef_[0].copy(), float(clf.score(x[test], y[test]))
    _FITS[key] = fitted
    if len(_FITS) > _MAX_FITS:
        _FITS.popitem(last=False)
    return fitted


def _fit_cav(pos: np.ndarray, neg: np.ndarray, concept: str, layer: str, seed: int) -> CAV:
    """The CAV of ``pos`` against ``neg``: the classifier's unit normal (see learn_cav)."""
    vector, accuracy = _fit_linear(pos, neg, seed)
    norm = np.linalg.norm(vector)
    if not np.isfinite(norm) or norm == 0:
        raise ValueError(f"The CAV of {concept!r} at {layer!r} is zero: the layer's "
                         "activations do not tell the two sets apart at all.")
    return CAV(concept, layer, (vector / norm).astype("float32"), accuracy)


def directional_derivatives(model: keras.Model, images, target: int, layer, vectors, *,
                            batch_size: int = 64) -> np.ndarray:
    """``grad h_target(f_layer(x)) . v`` for every image ``x`` and every vector ``v``.

    ``h_target`` is the target class's **pre-softmax** score; the gradient is computed once per
    image and dotted with all the vectors.

    Returns
    -------
    float32 ``(len(vectors), N)``.

    Examples
    --------
    >>> import keras, numpy as np
    >>> inp = keras.Input((2, 2, 1))
    >>> h = keras.layers.Dense(3, name="h")(keras.layers.Flatten()(inp))
    >>> out = keras.layers.Dense(2, use_bias=False, name="out")(h)
    >>> m = keras.Model(inp, out)
    >>> w = m.get_layer("out").kernel.numpy()[:, 1]   # d logit_1 / d h: a linear head
    >>> d = directional_derivatives(m, np.ones((2, 2, 2, 1)), 1, "h", [np.eye(3)[0]])
    >>> bool(np.allclose(d, w[0]))
    True
    """
    path = _layer_path(model, layer)
    x = inputs.as_batch(model, images)
    batch_size = batching.check_batch_size(batch_size)
    hd = scoring.head(model)
    target = _check_target(model, target, max(hd.n_outputs, 2))
    # The score every method explains (a single sigmoid unit: class 1 is its negation).
    weights, offset = scoring.score_weights(model, np.full(len(x), target))
    v = np.atleast_2d(np.asarray(vectors, dtype="float32"))

    def build():
        def fn(x, weights, offset):
            _, g = gradients.feature_gradients(model, path, x, weights, offset)
            return tf.reshape(g, (tf.shape(g)[0], -1))

        return kernels.tf_function(fn)

    fn = kernels.compiled(model, "concepts.gradients", build, options=(id(path[-1]),))
    grads = _batched(fn, [x, weights, offset], batch_size)
    if v.shape[1] != grads.shape[1]:
        raise ValueError(f"The vectors have {v.shape[1]} values, layer {path[-1].name!r} has "
                         f"{grads.shape[1]} per image: learn the CAV at the same layer.")
    return (v @ grads.T).astype("float32")


def _check_target(model: keras.Model, target, out: int) -> int:
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
        raise TypeError(f"target must be one class index (an int), got {target!r}.")
    if not 0 <= int(target) < out:
        raise ValueError(f"target {int(target)} is out of range: model {model.name!r} has "
                         f"{out} output(s), valid targets are 0..{out - 1}.")
    return int(target)


def tcav_score(derivatives) -> np.ndarray:
    """Fraction of positive directional derivatives along the last axis (the TCAV score).

    Examples
    --------
    >>> tcav_score(np.array([[0.3, -0.1, 0.2, 0.0]]))
    array([0.5])
    """
    return np.mean(np.asarray(derivatives) > 0, axis=-1)


def tcav(model: keras.Model, class_images, target: int, *, layer, concept_images,
         random_images: Sequence, concept: str = "concept", alpha: float = 0.05,
         seed: int = 0, batch_size: int = 64, progress: bool = True) -> TCAVResult:
    """Test whether ``concept`` matters to class ``target`` at ``layer`` (TCAV with its
    statistical test, Kim et al. 2018).

    One CAV is learned for the concept against each random set, and one between each pair of
    neighbouring random sets (``random_images[i]`` against ``random_images[i + 1]``, cyclically):
    the random CAVs give the scores a concept with no meaning gets. The TCAV scores of both
    kinds are compared by a two-sided t-test.

    Parameters
    ----------
    class_images
        Images of the class ``target`` (preprocessed), where the derivatives are taken.
    concept_images
        Examples of the concept.
    random_images
        At least 3 sets of random images (the paper uses tens), each a batch.
    alpha
        Significance level of the test.

    Returns
    -------
    TCAVResult

    Examples
    --------
    >>> import keras, numpy as np
    >>> inp = keras.Input((6, 6, 1))
    >>> h = keras.layers.Conv2D(2, 3, activation="relu", name="c")(inp)
    >>> m = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(h)))
    >>> rng = np.random.default_rng(0)
    >>> sets = [rng.uniform(0, 1, (12, 6, 6, 1)) for _ in range(3)]
    >>> r = tcav(m, sets[0], 0, layer="c", concept_images=rng.uniform(0.8, 1, (12, 6, 6, 1)),
    ...          random_images=sets, progress=False)
    >>> r.scores.shape, r.random_scores.shape, 0 <= r.p_value <= 1
    ((3,), (3,), True)
    """
    if isinstance(random_images, np.ndarray) and random_images.ndim == 4:
        raise ValueError("random_images must be a list of several random sets (batches), not "
                         "one batch: split it, e.g. np.array_split(images, 10).")
    if len(random_images) < 3:
        raise ValueError(f"Give at least 3 random sets (the paper uses tens), got "
                         f"{len(random_images)}.")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}.")
    name = surgery.find_path(model, layer)[-1].name
    pos = activations(model, concept_images, layer, batch_size=batch_size)
    rand = [activations(model, r, layer, batch_size=batch_size)
            for r in tqdm(random_images, desc="random sets", disable=not progress)]
    k = len(rand)
    cavs, random_cavs = [], []
    for i in tqdm(range(k), desc=f"CAVs of {concept!r}", disable=not progress):
        cavs.append(_fit_cav(pos, rand[i], concept, name, seed + i))
        random_cavs.append(_fit_cav(rand[i], rand[(i + 1) % k], f"random{i}", name, seed + i))
    d = directional_derivatives(model, class_images, target, layer,
                                [c.vector for c in cavs + random_cavs], batch_size=batch_size)
    scores = tcav_score(d)
    ours, null = scores[:k], scores[k:]
    if np.ptp(np.r_[ours, null]) == 0:
        p = 1.0  # identical scores: nothing to tell apart
    else:
        with warnings.catch_warnings():  # one group may be constant (every score 1.0)
            warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
            p = float(stats.ttest_ind(ours, null).pvalue)
    return TCAVResult(concept, int(target), name, ours, null, p, alpha,
                      np.array([c.accuracy for c in cavs]))
