"""Batch-norm folding: run a model's inference graph with each ``Conv -> BatchNormalization``
pair computed as one convolution.

In inference mode a batch norm is an affine map per channel,
``y = (x - mean) * gamma / sqrt(var + eps) + beta``, so it can be folded into the convolution
before it: multiply the kernel's output channels by ``s = gamma / sqrt(var + eps)`` and add
``beta - mean * s`` (plus ``bias * s``) as the bias. The result is the same function with one
pass over each activation tensor fewer, forward and backward (the time it saves is measured
by ``benchmarks/attribution.py``; the numbers are in README, "Speed, measured").

The folded weights are computed *inside* the traced graph from the layers' variables, so a
compiled function stays correct when the weights change (the sanity checks randomize them).
:func:`course_utils.surgery.forward` applies the plan; a pair is left unfolded when its
convolution is tapped (the tap must see the raw convolution).

Examples
--------
>>> import keras, numpy as np
>>> inp = keras.Input((8, 8, 3))
>>> z = keras.layers.Conv2D(4, 3, use_bias=False, name="conv")(inp)
>>> z = keras.layers.BatchNormalization(name="bn")(z)
>>> m = keras.Model(inp, keras.layers.ReLU()(z))
>>> {conv.name: bn.name for conv, bn in fold_pairs(m)}
{'conv': 'bn'}
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import ops
from keras.src.models.functional import Functional

_CONVS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)


def plain_conv(layer) -> bool:
    """Whether ``layer`` is a standard 2-D convolution whose computation :func:`convolve`
    reproduces (channels-last, no groups, not quantized or LoRA-adapted)."""
    return (
        type(layer) in _CONVS
        and layer.data_format == "channels_last"
        and getattr(layer, "groups", 1) == 1
        and getattr(layer, "quantization_mode", None) is None
        and not getattr(layer, "lora_enabled", False)
    )


def _foldable_conv(layer) -> bool:
    return plain_conv(layer) and layer.activation in (None, keras.activations.linear)


def _foldable_bn(layer) -> bool:
    """A batch norm over the channel axis (any other layer type is not one, whatever its
    attributes)."""
    return type(layer) is keras.layers.BatchNormalization and layer.axis in (-1, 3)


def _sequential_pairs(model: keras.Sequential) -> list[tuple]:
    layers = [la for la in model.layers if not isinstance(la, keras.layers.InputLayer)]
    return [(a, b) for a, b in zip(layers, layers[1:]) if _foldable_conv(a) and _foldable_bn(b)]


def _functional_pairs(model: keras.Model) -> list[tuple]:
    """Pairs whose convolution output feeds only the batch norm (and is not a model output)."""
    consumers: dict[int, list] = {}
    for nodes in model._nodes_by_depth.values():  # noqa: SLF001 - Keras 3's graph
        for node in nodes:
            if node.operation is None or node.is_input:
                continue
            for t in node.input_tensors:
                producer = t._keras_history.operation  # noqa: SLF001
                consumers.setdefault(id(producer), []).append(node.operation)
    for t in model.outputs:
        consumers.setdefault(id(t._keras_history.operation), []).append(None)  # noqa: SLF001
    pairs = []
    for layer in model.layers:
        users = consumers.get(id(layer), [])
        if (_foldable_conv(layer) and len(users) == 1 and users[0] is not None
                and _foldable_bn(users[0]) and len(users[0]._inbound_nodes) == 1):  # noqa: SLF001
            pairs.append((layer, users[0]))
    return pairs


def fold_pairs(model: keras.Model) -> list[tuple]:
    """``(conv, batch_norm)`` pairs of ``model`` and its nested models that can be folded.

    Supported: ``Conv2D``, ``DepthwiseConv2D`` and ``SeparableConv2D`` (channels last, linear
    activation) directly followed by a ``BatchNormalization`` over the channel axis, the
    convolution's output used by nothing else.
    """
    if isinstance(model, keras.Sequential):
        pairs = _sequential_pairs(model)
    elif isinstance(model, Functional):
        pairs = _functional_pairs(model)
    else:  # a subclassed model: no graph to read
        pairs = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            pairs += fold_pairs(layer)
    return pairs


def folded_call(conv, bn) -> Callable:
    """``f(x)`` computing ``bn(conv(x))`` in inference mode as one convolution plus a bias."""

    def call(x, *args, **kwargs):
        scale = ops.rsqrt(bn.moving_variance + bn.epsilon)
        if bn.gamma is not None:
            scale = scale * bn.gamma
        shift = -bn.moving_mean * scale
        if bn.beta is not None:
            shift = shift + bn.beta
        if conv.use_bias:
            shift = shift + conv.bias * scale
        return convolve(conv, x, scale) + shift

    return call


def convolve(conv, x, scale=None):
    """``conv``'s convolution of ``x`` alone (no bias, no activation), its kernel multiplied by
    ``scale`` (one factor per output channel) if given; ``conv`` passes :func:`plain_conv`."""
    common = dict(strides=conv.strides, padding=conv.padding,
                  data_format=conv.data_format, dilation_rate=conv.dilation_rate)
    if isinstance(conv, keras.layers.DepthwiseConv2D):
        k = conv.kernel
        if scale is not None:
            k = k * ops.reshape(scale, (1, 1, -1, conv.depth_multiplier))
        return ops.depthwise_conv(x, k, **common)
    if isinstance(conv, keras.layers.SeparableConv2D):
        pk = conv.pointwise_kernel if scale is None else conv.pointwise_kernel * scale
        return ops.separable_conv(x, conv.depthwise_kernel, pk, **common)
    return ops.conv(x, conv.kernel if scale is None else conv.kernel * scale, **common)
