"""Run the methods' compiled calls per replica of a ``tf.distribute.Strategy``.

Every attribution method (and the deletion/insertion metric) evaluates its compiled function
on chunks of rows through one call, :func:`call`. By default that is ``fn(*args)`` on the
default device. Inside :func:`distributed` each chunk is cut into one contiguous slice per
replica (``strategy.experimental_distribute_values_from_function``), the function runs on
every replica with ``strategy.run`` inside a ``tf.function``, and the replicas' rows are
gathered back in order (``strategy.gather``). The maps do not depend on the number of
replicas: each row's result is computed by the same graph, only on another device.

Host-side work stays on the host: LIME's segmentation and linear fits, occlusion's window
bookkeeping, the targets and baselines each method prepares. Only the compiled model calls are
distributed (:func:`course_utils.attribution.at_scale.explain_dataset` says so in a log line).

Under ``MultiWorkerMirroredStrategy`` every worker runs the same loop over the same rows; each
computes its replicas' slices and the gather is an all-gather, so every worker ends with every
row (the chief writes the files).

Examples
--------
>>> import numpy as np, tensorflow as tf
>>> fn = tf.function(lambda x: 2 * x)
>>> with distributed(tf.distribute.get_strategy()):  # the default strategy: one replica
...     call(fn, (np.arange(3, dtype="float32"),)).tolist()
[0.0, 2.0, 4.0]
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import tensorflow as tf

_STRATEGY: contextvars.ContextVar = contextvars.ContextVar("course_utils_strategy", default=None)
#: Chunks run per replica since the process started (what the tests check was distributed).
stats = {"distributed_calls": 0}


@contextlib.contextmanager
def distributed(strategy: tf.distribute.Strategy | None) -> Iterator[None]:
    """Within this block, :func:`call` runs compiled functions per replica of ``strategy``
    (``None`` or a one-replica strategy: on the default device, as outside the block)."""
    if strategy is not None and not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(
            f"strategy must be a tf.distribute.Strategy (e.g. tf.distribute.MirroredStrategy()) "
            f"or None, got {type(strategy).__name__}."
        )
    token = _STRATEGY.set(strategy)
    try:
        yield
    finally:
        _STRATEGY.reset(token)


def current() -> tf.distribute.Strategy | None:
    """The strategy of the enclosing :func:`distributed` block, or None.

    Examples
    --------
    >>> current() is None
    True
    """
    return _STRATEGY.get()


def n_replicas() -> int:
    """Replicas that :func:`call` spreads a chunk over (1 outside :func:`distributed`).

    Examples
    --------
    >>> with distributed(None):
    ...     n_replicas()
    1
    """
    strategy = current()
    return 1 if strategy is None else int(strategy.num_replicas_in_sync)


def align_copies(model, strategy: tf.distribute.Strategy | None) -> list[str]:
    """Give every replica's copy of the model's variables the value of the first replica's
    (the value a run without the strategy reads); return the names of those that differed.

    A model trained under a strategy can end with different copies per replica: Keras updates
    batch-norm moving statistics on each replica from its own part of the batch, without
    synchronizing them. Explaining with such copies would make a map depend on the replica
    that computed it.

    Examples
    --------
    >>> import keras
    >>> align_copies(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), None)
    []
    """
    if strategy is None or strategy.num_replicas_in_sync == 1:
        return []
    fixed = []
    for var in model.variables:
        inner = getattr(var, "value", var)
        if not isinstance(inner, tf.distribute.DistributedValues):
            continue
        copies = strategy.experimental_local_results(inner)
        first = np.asarray(copies[0])
        if all(np.array_equal(first, np.asarray(c)) for c in copies[1:]):
            continue
        with strategy.scope():
            inner.assign(first)
        fixed.append(var.path if hasattr(var, "path") else var.name)
    return fixed


def _run_and_gather(strategy: tf.distribute.Strategy, fn: Callable, values):
    return strategy.gather(strategy.run(fn, args=values), axis=0)


def _step(strategy: tf.distribute.Strategy, fn: Callable) -> Callable:
    """The compiled per-replica step of ``fn`` under ``strategy``, kept on ``fn`` itself (so
    it goes away with the model whose compiled-function cache holds ``fn``). A
    ``functools.partial``, not a closure: TensorFlow counts retracings per Python code object,
    and one closure per method would add up to a false "excessive retracing" warning."""
    steps = fn.__dict__.setdefault("_course_utils_steps", {})
    entry = steps.get(id(strategy))
    if entry is None or entry[0] is not strategy:
        step = functools.partial(_run_and_gather, strategy, fn)
        entry = steps[id(strategy)] = (strategy, tf.function(step, autograph=False))
    return entry[1]


def call(fn: Callable, args: Sequence) -> np.ndarray:
    """``fn(*args)`` as a NumPy array, the rows spread over the replicas of the current strategy.

    ``args``: NumPy arrays whose first axis is the chunk's rows (cut between the replicas) and
    tensors passed whole to every replica (e.g. the one image LIME perturbs). The first
    argument must be a NumPy array of rows. A chunk with fewer rows than replicas runs on the
    default device.
    """
    strategy = current()
    n_rows = int(np.shape(args[0])[0])
    replicas = n_replicas()
    if replicas == 1 or n_rows < replicas:
        tensors = [tf.constant(a) if isinstance(a, np.ndarray) else a for a in args]
        return fn(*tensors).numpy()
    def values(ctx: tf.distribute.InputContext):
        i = ctx.replica_id_in_sync_group
        lo, hi = n_rows * i // replicas, n_rows * (i + 1) // replicas
        return tuple(tf.constant(a[lo:hi]) if isinstance(a, np.ndarray) else tf.identity(a)
                     for a in args)

    dist = strategy.experimental_distribute_values_from_function(values)
    stats["distributed_calls"] += 1
    return _step(strategy, fn)(dist).numpy()
