"""How the engine compiles: the ``tf.function`` policy, the one compiled-function cache, and the
override point for ReLU's backward pass.

- :func:`tf_function` is ``tf.function`` as every method uses it (open batch axis, at most two
  graphs per input shape).
- :func:`compiled` is the one cache of compiled functions (attribution, features, metrics),
  with one key scheme: ``(method, options, shape)`` on the model itself.
- :func:`relu_taps` swaps the gradient of every ReLU of a model inside a traced forward pass
  (e.g. Guided Backprop's rule, :data:`RELU_BACKWARD`), without touching the model.

Examples
--------
>>> import keras, numpy as np
>>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
>>> fn = compiled(m, "double", lambda: tf_function(lambda x: 2.0 * x))
>>> fn(np.ones((3, 2), "float32")).numpy().tolist()
[[2.0, 2.0], [2.0, 2.0], [2.0, 2.0]]
>>> compiled(m, "double", lambda: None) is fn  # built once per (model, method, options, shape)
True
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import keras
import tensorflow as tf

from course_utils import surgery

# --------------------------------------------------------------------------------------------
# The compiled-function cache
# --------------------------------------------------------------------------------------------

#: Where the cache lives on a model (:func:`course_utils.surgery.model_cache`).
CACHE_NAME = "_course_utils_compiled"


class CacheKey(NamedTuple):
    """The key of one compiled function of a model: the method's name, its static options
    (layer ids, reduction, flags: hashable values that change the graph) and the input shape
    ``(H, W, C)`` when the graph depends on it (``None``: the function traces one graph per
    shape itself, see :func:`tf_function`)."""

    method: str
    options: tuple = ()
    shape: tuple | None = None


def compiled(model: keras.Model, method: str, build: Callable[[], Callable], *,
             options: tuple = (), shape: tuple | None = None) -> Callable:
    """Return the compiled function cached for ``model`` under :class:`CacheKey`
    ``(method, options, shape)``, building it once with ``build()``.

    The cache lives on the model (:func:`course_utils.surgery.model_cache`), so it goes away
    with the model. Numbers that vary between calls (steps, sigma, targets) must be passed to
    the function as tensors, not put in ``options``, so that it does not retrace.
    """
    per_model = surgery.model_cache(model, CACHE_NAME)
    key = CacheKey(method, tuple(options), None if shape is None else tuple(shape))
    fn = per_model.get(key)
    if fn is None:
        fn = build()
        per_model[key] = fn
    return fn


# --------------------------------------------------------------------------------------------
# The compile policy
# --------------------------------------------------------------------------------------------

#: Chunks with fewer rows than this (one image) run a graph traced without batch-norm folding
#: (:func:`course_utils.surgery.unfolded`): folding pays from two rows on, with and without
#: oneDNN kernels; for one row it depends on the instruction set (``python -m
#: benchmarks.folding``; README, "Speed, measured").
FOLD_MIN_ROWS = 2


def relaxed_spec(value) -> tf.TensorSpec:
    """The signature of one argument with its batch axis (and, for rank <= 2, every axis)
    left open, so that chunk sizes and superpixel counts do not cause retracing.

    Examples
    --------
    >>> import numpy as np
    >>> relaxed_spec(np.zeros((4, 8, 8, 3), "float32")).shape.as_list()
    [None, 8, 8, 3]
    """
    t = tf.convert_to_tensor(value)
    shape = [None] * t.shape.rank if t.shape.rank <= 2 else [None, *t.shape[1:]]
    return tf.TensorSpec(shape, t.dtype)


def graph(input_signature: list | None = None) -> Callable[[Callable], Callable]:
    """Decorator: ``tf.function(fn, input_signature, autograph=False)`` on a
    ``functools.partial`` of ``fn``, the way every compiled function of the package is made
    (without a signature: ``reduce_retracing=True``, shapes relaxed from the second one on).

    TensorFlow's retracing detector counts traces per Python code object. One method's inner
    function (one code object) traced once for each of several models, as the sanity checks
    and the lessons do, would read as a function that retraces on every call and print its
    warning; a partial is counted on its own. The code has no tensor-dependent Python control
    flow, and converting it with autograph costs more than tracing it.

    Examples
    --------
    >>> @graph([tf.TensorSpec((None,), tf.float32)])
    ... def double(x):
    ...     return 2.0 * x
    >>> double(tf.constant([1.0, 2.0])).numpy().tolist()
    [2.0, 4.0]
    """
    def wrap(fn: Callable) -> Callable:
        return tf.function(functools.partial(fn), input_signature=input_signature,
                           reduce_retracing=input_signature is None, autograph=False)

    return wrap


def tf_function(fn: Callable) -> Callable:
    """``tf.function`` as every method uses it: traced on the first call, with a signature
    whose batch axis is open (:func:`relaxed_spec`), so that the last, smaller chunk or a
    different number of samples does not retrace the model. At most two graphs per input
    shape: one for chunks of :data:`FOLD_MIN_ROWS` rows or more (batch norms folded), one for
    smaller ones (not folded); each made by :func:`graph`."""
    traced: dict = {}

    def call(*args):
        specs = tuple(relaxed_spec(a) for a in args)
        small = args[0].shape[0] < FOLD_MIN_ROWS
        key = (tuple((tuple(sp.shape.as_list()), sp.dtype) for sp in specs), small)
        if key not in traced:  # a new image size (models that accept any size)
            traced[key] = graph(list(specs))(fn)
        if small:
            with surgery.unfolded():  # applies while the graph is traced (first call)
                return traced[key](*args)
        return traced[key](*args)

    return call


# --------------------------------------------------------------------------------------------
# ReLU's backward pass: the override point
# --------------------------------------------------------------------------------------------


@tf.custom_gradient
def _guided(y):
    """Identity on a ReLU's output whose gradient passes only positive upstream gradients.

    Behind the ReLU's own gradient (which passes where the input was positive) this gives
    Guided Backprop's rule (Springenberg et al. 2015): ``grad * (grad > 0) * (input > 0)``.
    """

    def grad(upstream):
        return upstream * tf.cast(upstream > 0.0, upstream.dtype)

    return tf.identity(y), grad


#: Backward rules for ReLU by name: a function applied to each ReLU's output inside the traced
#: forward pass, the identity forward, with its own gradient. Add a rule here to add one.
RELU_BACKWARD: dict[str, Callable] = {"guided": _guided}
#: Activations :func:`relu_taps` treats as ReLU (their gradient is ``input > 0``, cut at 6).
RELU_NAMES = ("relu", "relu6", "ReLU")


def relu_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers of ``model`` (also inside nested models) whose output ends in a ReLU:
    ``activation="relu"``, ``Activation("relu")``, ``keras.layers.ReLU`` without a negative
    slope.

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="relu",
    ...                       name="h"), keras.layers.Dense(1)])
    >>> [la.name for la in relu_layers(m)]
    ['h']
    """
    found = []
    for _, layer in surgery.iter_layers(model):
        if isinstance(layer, keras.layers.ReLU):
            if not float(getattr(layer, "negative_slope", 0.0)):
                found.append(layer)
        elif surgery.activation_name(layer) in RELU_NAMES:
            found.append(layer)
    return found


def relu_taps(model: keras.Model, rule: str | None) -> dict:
    """Taps (for :func:`course_utils.surgery.forward`) that give every ReLU of ``model`` the
    backward rule ``rule`` (a key of :data:`RELU_BACKWARD`; ``None``: no taps, the ordinary
    gradient). The forward values are unchanged and the model is not modified: the rule is an
    identity with a custom gradient applied to each ReLU's output in the traced graph.

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="relu"),
    ...                       keras.layers.Dense(1)])
    >>> len(relu_taps(m, "guided")), relu_taps(m, None)
    (1, {})
    """
    if rule is None:
        return {}
    if rule not in RELU_BACKWARD:
        raise ValueError(f"Unknown ReLU backward rule {rule!r}; use one of "
                         f"{sorted(RELU_BACKWARD)} or None.")
    fn = RELU_BACKWARD[rule]
    return {layer: fn for layer in relu_layers(model)}
