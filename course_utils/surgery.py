"""Model surgery shared by every method: find layers (also inside nested models) and tap them.

The ordinary transfer-learning model is a ``keras.applications`` base *inside* a ``Sequential``;
many Grad-CAM implementations break on it ("Graph disconnected") because the base's layers are
not layers of the outer model. Here every layer is addressed by a *path* (outer model to layer)
and the forward pass is re-run through the graphs with *taps*: callbacks that see (and may
replace) the output of chosen layers. No new ``keras.Model`` is built per layer, and the same
code works for Functional, Sequential and nested models, eagerly or inside ``tf.function``.

Examples
--------
>>> import keras
>>> inp = keras.Input((8, 8, 3))
>>> x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
>>> out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
>>> model = keras.Model(inp, out)
>>> find_layer(model, "conv").name
'conv'
>>> last_spatial_layer(model).name
'conv'
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from keras.src.ops.nn import Sigmoid as _SigmoidOp
from keras.src.ops.nn import Softmax as _SoftmaxOp

from course_utils import folding

LayerRef = str | int | keras.layers.Layer


class LayerNotFoundError(ValueError):
    """Raised for a layer name or index that the model does not have."""


def _is_model(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.Model)


def iter_layers(
    model: keras.Model, prefix: tuple = ()
) -> Iterator[tuple[tuple, keras.layers.Layer]]:
    """Yield ``(path, layer)`` for every layer of ``model``, depth first, nested models included.

    ``path`` is the tuple of layers from the outermost model's child down to the layer itself.
    Input layers are skipped.
    """
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        path = prefix + (layer,)
        yield path, layer
        if _is_model(layer):
            yield from iter_layers(layer, path)


def path_name(path: tuple) -> str:
    """The ``"outer/inner"`` name of a layer path (see :func:`iter_layers`)."""
    return "/".join(p.name for p in path)


def layer_names(model: keras.Model) -> list[str]:
    """Names of all layers, nested ones as ``"outer/inner"``, in forward order."""
    return [path_name(path) for path, _ in iter_layers(model)]


def _output_rank(layer: keras.layers.Layer) -> int | None:
    try:
        out = layer.output
    except (AttributeError, ValueError):
        return None
    if isinstance(out, (list, tuple)):
        return None
    return len(out.shape)


def output_shape(layer: keras.layers.Layer) -> tuple:
    """The symbolic output shape of a built layer (Keras 3 dropped ``layer.output_shape``)."""
    return tuple(layer.output.shape)


def find_path(model: keras.Model, ref: LayerRef) -> tuple:
    """Resolve a layer reference to its path of layers (see :func:`iter_layers`).

    Parameters
    ----------
    model
        A built Keras model.
    ref
        A layer name (nested names may be written ``"outer/inner"`` or just ``"inner"``), an
        integer index into :func:`layer_names` (negative indices count from the end), or the
        layer object itself.

    Raises
    ------
    LayerNotFoundError
        With the list of valid names, when nothing matches.
    """
    entries = list(iter_layers(model))
    if isinstance(ref, keras.layers.Layer):
        for path, layer in entries:
            if layer is ref:
                return path
        raise LayerNotFoundError(f"Layer object {ref.name!r} is not part of model {model.name!r}.")
    if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
        n = len(entries)
        if not -n <= int(ref) < n:
            raise LayerNotFoundError(
                f"Layer index {ref} is out of range: model {model.name!r} has {n} layers "
                f"(valid indices {-n}..{n - 1})."
            )
        return entries[int(ref)][0]
    if isinstance(ref, str):
        for path, _ in entries:
            full = path_name(path)
            if ref in (full, path[-1].name):
                return path
        names = ", ".join(layer_names(model))
        raise LayerNotFoundError(
            f"Model {model.name!r} has no layer named {ref!r}. Valid layer names: {names}"
        )
    raise TypeError(f"A layer is given by name (str), index (int) or object, not {type(ref)!r}.")


def find_layer(model: keras.Model, ref: LayerRef) -> keras.layers.Layer:
    """Resolve ``ref`` (name, index or layer) to the layer object; see :func:`find_path`."""
    return find_path(model, ref)[-1]


def spatial_layers(model: keras.Model) -> list[tuple]:
    """Paths of all layers whose output is a 4-D feature map ``(N, H, W, C)``, in forward order.

    Nested models themselves are skipped (their last layer is listed instead). Cached on the
    model (every CAM-style call asks), keyed by its layer list so that ``Sequential.add``
    invalidates it.
    """
    cache = model_cache(model, "_course_utils_layers")
    key = tuple(id(la) for la in model.layers)
    if cache.get("spatial_key") != key:
        cache["spatial"] = tuple(
            path for path, layer in iter_layers(model)
            if not _is_model(layer) and _output_rank(layer) == 4
        )
        cache["spatial_key"] = key
    return list(cache["spatial"])


def last_spatial_layer(model: keras.Model) -> keras.layers.Layer:
    """The last layer that outputs a spatial feature map, after its activation.

    This is the layer Grad-CAM and CAM should use by default: on ResNet/Xception-style networks
    the last ``Conv2D`` is followed by batch norm and an activation, and the useful map is the
    activation's output, not the raw convolution.
    """
    paths = spatial_layers(model)
    if not paths:
        raise LayerNotFoundError(
            f"Model {model.name!r} has no layer with a spatial (N, H, W, C) output; "
            "CAM-style methods need a convolutional feature map."
        )
    return paths[-1][-1]


def require_spatial(model: keras.Model, ref: LayerRef) -> tuple:
    """Resolve ``ref`` and check its output is a 4-D feature map; return its path.

    A nested model (e.g. the convolutional base of a transfer-learning model) stands for its
    output layer.
    """
    path = find_path(model, ref)
    if _is_model(path[-1]):
        inner = output_layer(path[-1])
        path = next((p for p, la in iter_layers(path[-1], path) if la is inner), path)
    layer = path[-1]
    if _output_rank(layer) != 4:
        valid = ", ".join(path_name(q) for q in spatial_layers(model))
        try:
            got = f"its output has shape {output_shape(layer)}"
        except (AttributeError, ValueError):  # a layer used several times has no one output
            got = "it has no single output"
        raise ValueError(
            f"Layer {layer.name!r} has no spatial (N, H, W, C) output ({got}); pick a "
            f"convolutional layer. Layers with spatial output: {valid}"
        )
    return path


# --------------------------------------------------------------------------------------------
# Forward pass with taps
# --------------------------------------------------------------------------------------------

Tap = Callable[[Any], Any]


def model_cache(model: keras.Model, name: str) -> dict:
    """A dict stored on the model itself (bypassing Keras' attribute tracking), so that what is
    cached there (compiled functions, plans), which references the model, is collected with it."""
    cache = model.__dict__.get(name)
    if cache is None:
        cache = {}
        object.__setattr__(model, name, cache)
    return cache


def output_layer(model: keras.Model) -> keras.layers.Layer:
    """The layer (or operation, e.g. a ``keras.ops.softmax``) that produces the model's
    (single) output, descending into nested models."""
    return output_path(model)[-1]


def output_path(model: keras.Model) -> tuple:
    """The nested models leading to the output layer (or operation), then that layer."""
    layer: keras.layers.Layer | None = None
    if isinstance(model, keras.Sequential):
        layers = [la for la in model.layers if not isinstance(la, keras.layers.InputLayer)]
        layer = layers[-1] if layers else None
    else:
        try:
            layer = model.outputs[0]._keras_history.operation  # noqa: SLF001
        except (AttributeError, IndexError, ValueError):
            layer = model.layers[-1] if model.layers else None
    if layer is None:
        raise ValueError(f"Model {model.name!r} has no layers to explain.")
    if _is_model(layer):
        return (layer, *output_path(layer))
    return (layer,)


def activation_name(layer: keras.layers.Layer) -> str:
    """The name of ``layer``'s activation: its fused ``activation``'s ``__name__``,
    ``"softmax"`` for a ``Softmax`` layer, ``"linear"`` when it has none.

    Examples
    --------
    >>> import keras
    >>> activation_name(keras.layers.Dense(2, activation="sigmoid")), activation_name(
    ...     keras.layers.Softmax()), activation_name(keras.layers.Flatten())
    ('sigmoid', 'softmax', 'linear')
    """
    act = getattr(layer, "activation", None)
    if act is None:
        return probability_op(layer) or "linear"
    return getattr(act, "__name__", type(act).__name__)


#: Functions that a ``Lambda`` head may be, recognised by identity (TensorFlow's cannot be
#: traced symbolically by :func:`probability_op`).
_PROBABILITY_FUNCTIONS = {
    tf.nn.softmax: "softmax", tf.math.softmax: "softmax", tf.nn.sigmoid: "sigmoid",
    tf.math.sigmoid: "sigmoid", tf.sigmoid: "sigmoid",
}


def probability_op(layer) -> str | None:
    """``"softmax"`` or ``"sigmoid"`` when ``layer`` is nothing but that activation of its one
    input over the last axis: a ``Softmax`` layer, a ``keras.ops.softmax``/``sigmoid`` (or
    ``keras.activations``) operation in a functional graph, or a ``Lambda`` layer computing
    only that (found by calling its function on a symbolic tensor); else None.

    Examples
    --------
    >>> import keras
    >>> probability_op(keras.layers.Lambda(lambda t: keras.ops.softmax(t)))
    'softmax'
    >>> probability_op(keras.layers.Lambda(lambda t: 2 * t)) is None
    True
    """
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    if isinstance(layer, keras.layers.Lambda):
        known = _PROBABILITY_FUNCTIONS.get(layer.function)
        if known is not None or layer.arguments:
            return known
        probe = keras.KerasTensor((None, 2))
        try:
            out = layer.function(probe)
            op = out._keras_history.operation  # noqa: SLF001
            inputs = op._inbound_nodes[-1].input_tensors  # noqa: SLF001
        except Exception:  # noqa: BLE001 - any failure: not a recognisable activation
            return None
        return probability_op(op) if len(inputs) == 1 and inputs[0] is probe else None
    if isinstance(layer, _SoftmaxOp):
        return "softmax" if layer.axis in (-1, 1) else None
    if isinstance(layer, _SigmoidOp):
        return "sigmoid"
    return None


def pre_activation_call(layer: keras.layers.Layer) -> Callable | None:
    """``f(x)``: ``layer`` without its activation, computed from its variables without touching
    the layer, or None when that cannot be done from the outside (then see
    :func:`activation_off_call`).

    Handles a plain ``Dense`` (``x @ kernel + bias``), a standard ``Conv2D``,
    ``DepthwiseConv2D`` or ``SeparableConv2D`` (convolution + bias; see
    :func:`course_utils.folding.plain_conv`), and a separate ``Softmax`` or ``Activation``
    layer, softmax/sigmoid operation or ``Lambda`` (the identity; see :func:`probability_op`).

    Examples
    --------
    >>> import keras, numpy as np
    >>> conv = keras.layers.Conv2D(2, 3, activation="relu")
    >>> x = np.random.default_rng(0).normal(size=(1, 5, 5, 1)).astype("float32")
    >>> y = conv(x)
    >>> bool((np.asarray(pre_activation_call(conv)(x)) < 0).any()), bool((y >= 0).numpy().all())
    (True, True)
    """
    if type(layer) is keras.layers.Activation or probability_op(layer) is not None:
        return _identity
    if (type(layer) is keras.layers.Dense and not getattr(layer, "lora_enabled", False)
            and getattr(layer, "quantization_mode", None) is None):
        def call(x, *args, **kwargs):
            y = ops.matmul(x, layer.kernel)
            return y + layer.bias if layer.use_bias else y

        return call
    if folding.plain_conv(layer):
        def conv_call(x, *args, **kwargs):
            y = folding.convolve(layer, x)
            return y + layer.bias if layer.use_bias else y

        return conv_call
    return None


def activation_off_call(layer: keras.layers.Layer) -> Callable | None:
    """``f(x)``: a built-in Keras layer whose fused activation :func:`pre_activation_call`
    cannot leave out (an ``EinsumDense``, a ``Conv1D``...), computed without it by the layer's
    own ``call`` on a *view*: a new object sharing the layer's variables and settings whose
    activation is the identity. The layer itself is never modified, so other callers (other
    threads, plain ``model(x)``) always see the model as it is. None for layers without an
    activation and for layers from outside Keras (whose ``call`` may use the activation
    anywhere).

    Examples
    --------
    >>> import keras, numpy as np
    >>> layer = keras.layers.EinsumDense("ab,bc->ac", output_shape=2, activation="softmax")
    >>> x = np.ones((1, 3), "float32")
    >>> y = layer(x)
    >>> logits = activation_off_call(layer)(x)
    >>> bool(np.allclose(keras.ops.softmax(logits), y)), layer.activation.__name__
    (True, 'softmax')
    """
    if (getattr(layer, "activation", None) is None
            or not type(layer).__module__.startswith("keras.")):
        return None
    view = object.__new__(type(layer))
    view.__dict__.update(layer.__dict__)
    object.__setattr__(view, "activation", keras.activations.linear)

    def call(x, *args, **kwargs):
        return type(layer).call(view, x, *args, **kwargs)

    return call


def _identity(x, *args, **kwargs):
    return x


@dataclass
class _Pass:
    """What one forward pass changes: taps, folded pairs, replaced operations."""

    taps: dict[int, Tap]
    replace: dict[int, Callable]  # op id -> call used instead of the op
    inside: set[int]  # ids of nested models whose graph must be re-run


def _call_op(op, p: _Pass, *args, **kwargs):
    """Call one operation of a graph in inference mode (or its replacement), recursing into
    nested models that hold a tap or a replacement, then apply the op's tap (which may replace
    its output)."""
    if id(op) in p.inside:
        out = _run_model(op, args[0], p)
    elif id(op) in p.replace:
        out = p.replace[id(op)](*args, **kwargs)
    else:
        if "training" in getattr(op, "_call_context_args", ()):
            kwargs["training"] = False
        out = op(*args, **kwargs)
    tap = p.taps.get(id(op))
    if tap is not None:
        replaced = tap(out)
        if replaced is not None:
            out = replaced
    return out


def _run_model(model: keras.Model, inputs, p: _Pass):
    if isinstance(model, keras.Sequential):
        x = inputs
        for layer in model.layers:
            if not isinstance(layer, keras.layers.InputLayer):
                x = _call_op(layer, p, x)
        return x
    # Functional: re-run its own graph, wrapping every operation (Keras 3's graph walker).
    outputs = model._run_through_graph(  # noqa: SLF001
        model._standardize_inputs(inputs),  # noqa: SLF001
        operation_fn=lambda op: (lambda *a, **k: _call_op(op, p, *a, **k)),
    )
    return outputs[0] if isinstance(outputs, (list, tuple)) and len(outputs) == 1 else outputs


def _fold_replacements(model: keras.Model, skip: set[int]) -> dict[int, Callable]:
    """Replacements that fold every foldable ``conv -> batch norm`` pair (cached per model),
    except pairs whose convolution is in ``skip``."""
    cache = model_cache(model, "_course_utils_folds")
    if "pairs" not in cache:
        cache["pairs"] = [(conv, bn, folding.folded_call(conv, bn))
                          for conv, bn in folding.fold_pairs(model)]
    out: dict[int, Callable] = {}
    for conv, bn, call in cache["pairs"]:
        if id(conv) not in skip:
            out[id(conv)] = call
            out[id(bn)] = _identity
    return out


def forward(model: keras.Model, inputs, taps: dict[LayerRef, Tap] | None = None, *,
            logits: bool = False, fold: bool = True, linear: Sequence[LayerRef] = ()):
    """Run ``model`` on ``inputs`` in inference mode, calling ``taps[layer](output)`` on the way.

    A tap receives the layer's output tensor; if it returns a tensor, that replaces the output
    for the rest of the forward pass (``None`` keeps it). Use a tap to record activations, to
    ``tape.watch`` them for gradients (Grad-CAM), or to substitute them.

    Parameters
    ----------
    model
        A Keras model (Functional, Sequential, or nested).
    inputs
        A tensor batch of the model's input shape.
    taps
        ``{layer_ref: callback}``; layer references as in :func:`find_path`.
    logits
        Compute the output layer without its softmax/sigmoid: from its variables where
        :func:`pre_activation_call` can (a plain ``Dense``, a ``Softmax`` layer), else on a view
        of a built-in layer (:func:`activation_off_call`); otherwise the output is unchanged.
        The model is never modified.
    fold
        Fold ``conv -> batch norm`` pairs into one convolution (:mod:`course_utils.folding`):
        the same function, computed faster. Pairs whose convolution is tapped stay unfolded.
    linear
        Layers computed without their fused activation (:func:`pre_activation_call`), e.g. a
        convolution's pre-ReLU output or a softmax layer's logits; the model is not changed, so
        this is safe inside ``tf.function`` and from several threads.

    Returns
    -------
    The model's output tensor.

    Examples
    --------
    >>> import keras, numpy as np
    >>> inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d")])
    >>> outer = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(1)])
    >>> seen = {}
    >>> y = forward(outer, np.ones((2, 4), "float32"), {"d": lambda a: seen.setdefault("d", a)})
    >>> tuple(seen["d"].shape), tuple(y.shape)
    ((2, 3), (2, 1))
    """
    x = tf.convert_to_tensor(inputs)
    resolved: dict[int, Tap] = {}
    for ref, callback in (taps or {}).items():
        layer = find_layer(model, ref)
        if id(layer) in resolved:
            raise ValueError(f"Layer {layer.name!r} is tapped twice; give one callback per layer.")
        resolved[id(layer)] = callback
    linearized = {}
    for ref in linear:
        layer = find_layer(model, ref)
        call = pre_activation_call(layer)
        if call is None:
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) cannot be computed without its "
                "activation: that is possible for Dense, Conv2D, DepthwiseConv2D, "
                "SeparableConv2D (channels last), Softmax and Activation layers."
            )
        linearized[id(layer)] = call
    fold = fold and not getattr(_UNFOLDED, "on", False)
    replace = _fold_replacements(model, set(resolved) | set(linearized)) if fold else {}
    replace.update(linearized)
    inside: set[int] = set()
    if logits:
        head_path = output_path(model)
        call = pre_activation_call(head_path[-1]) or activation_off_call(head_path[-1])
        if call is not None:
            replace[id(head_path[-1])] = call
            inside |= {id(q) for q in head_path[:-1]}  # the head may be an op, not a layer
    if not resolved and not replace:
        return model(x, training=False)
    touched = set(resolved) | set(replace)
    inside |= {id(q) for path, layer in iter_layers(model) if id(layer) in touched
               for q in path[:-1]}
    return _run_model(model, x, _Pass(taps=resolved, replace=replace, inside=inside))


_UNFOLDED = threading.local()


@contextlib.contextmanager
def unfolded() -> Iterator[None]:
    """Within the block (in this thread), :func:`forward` does not fold batch norms; used while
    tracing graphs for one image, where folding can cost more than it saves.

    With TensorFlow's oneDNN kernels a folded convolution's kernel is a computed tensor, which
    oneDNN reorders on every call: for one image under AVX2 that costs more than folding saves
    (``python -m benchmarks.folding``; README, "Speed, measured": batch norms folded).
    """
    before = getattr(_UNFOLDED, "on", False)
    _UNFOLDED.on = True
    try:
        yield
    finally:
        _UNFOLDED.on = before


def forward_with(model: keras.Model, inputs, layers: Sequence[LayerRef]):
    """Return ``(outputs, [activation of each layer])`` from one forward pass.

    Examples
    --------
    >>> import keras, numpy as np
    >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="h"),
    ...                       keras.layers.Dense(2)])
    >>> y, (h,) = forward_with(m, np.ones((1, 4), "float32"), ["h"])
    >>> tuple(h.shape)
    (1, 3)
    """
    acts: dict[int, Any] = {}

    def make(i):
        def tap(t):
            acts[i] = t

        return tap

    out = forward(model, inputs, {ref: make(i) for i, ref in enumerate(layers)})
    return out, [acts[i] for i in range(len(layers))]
