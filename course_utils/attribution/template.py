"""The method template: what every attribution method shares, applied once.

A method module holds only its math, decorated with :func:`method`::

    @method(check=lambda reduce="max_abs": {"reduce": check_reduce(reduce)})
    def saliency(model, job, *, reduce="max_abs"):
        fn = gradients.gradient_rows_fn(model, reduce, with_delta=False)
        return batching.run_rows(job.n, job.batch_size, job.rows, fn)

and becomes the public ``saliency(model, images, targets=None, *, reduce="max_abs",
batch_size=None)``: the options are checked first (``check``), then the images, targets and
``batch_size`` are validated once (:func:`course_utils.engine.inputs.prepare`), then the
math runs on the :class:`~course_utils.engine.inputs.Job`, and maps come back as float32.

The CAM family (:mod:`~course_utils.attribution.cam_family`) and the gradient kernels
(:mod:`course_utils.engine.gradients`) are built on it; ``docs/adding_a_method.md`` is the
recipe.

Examples
--------
>>> import keras, numpy as np
>>> @method()
... def mean_input(model, job):
...     '''The input averaged over channels (a toy method).'''
...     return job.x.mean(axis=-1)
>>> m = keras.Sequential([keras.Input((2, 2, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
>>> mean_input(m, np.ones((2, 2, 3))).shape
(1, 2, 2)
>>> list(inspect.signature(mean_input).parameters)
['model', 'images', 'targets', 'batch_size']
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import keras

from course_utils.engine import batching, inputs

_PUBLIC_HEAD = (
    inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                      annotation=keras.Model),
    inspect.Parameter("images", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    inspect.Parameter("targets", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
)
_BATCH_SIZE = inspect.Parameter("batch_size", inspect.Parameter.KEYWORD_ONLY, default=None,
                                annotation=int | None)


def method(check: Callable[..., dict] | None = None) -> Callable[[Callable], Callable]:
    """Decorator: ``math(model, job, **options) -> maps`` becomes the public method
    ``name(model, images, targets=None, **options, batch_size=None)``.

    ``check(**options) -> dict`` (optional) validates the options before any work is done and
    returns the checked values of those it normalizes (e.g. ``{"seed": 0}``); it receives
    every option, with the defaults of ``math``'s signature. The public method keeps both as
    ``.math`` and ``.check`` (what :func:`~course_utils.attribution.noise_tunnel.noise_tunnel`
    wraps). The math then receives a
    :class:`~course_utils.engine.inputs.Job` (validated images, targets, score weights,
    ``batch_size``). An array result is returned as contiguous float32; a tuple (maps plus a
    report) is returned as it is.
    """

    def decorate(math: Callable) -> Callable:
        sig = inspect.signature(math)
        options = [p for name, p in sig.parameters.items() if name not in ("model", "job")]

        @functools.wraps(math)
        def public(model, images, targets=None, *, batch_size=None, **given):
            unknown = sorted(set(given) - {p.name for p in options})
            if unknown:
                raise TypeError(f"{math.__name__}() got unexpected option(s) {unknown}; its "
                                f"options are {[p.name for p in options] + ['batch_size']}.")
            chosen = {p.name: given.get(p.name, p.default) for p in options}
            if check is not None:
                chosen |= check(**chosen)
            job = inputs.prepare(model, images, targets, batch_size)
            out = math(model, job, **chosen)
            return out if isinstance(out, tuple) else batching.as_float32(out)

        public.__signature__ = sig.replace(
            parameters=[*_PUBLIC_HEAD, *options, _BATCH_SIZE])
        public.math = math
        public.check = check
        return public

    return decorate
