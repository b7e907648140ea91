"""features.receptive_field against an independent measurement: the support of the input
gradient of one unit.

On a network whose activations are all linear (random weights, no ReLU, so no position is
dead), the gradient of unit (y, x, c) of a layer with respect to the input is nonzero exactly
on the pixels the unit can see; its bounding box must be the computed field clipped to the
image. Max pooling routes the gradient to one pixel per window, so the support is the union
over a batch of random images. Each architecture below exercises one part of the rules
(TensorFlow's asymmetric SAME on even and odd sizes, even kernels, dilation, pooling, explicit
padding and cropping, residual merges, a nested base), and the real EfficientNet-Lite0 is
checked on one middle layer.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_utils import models
from course_utils.features import ReceptiveField, receptive_field

L = keras.layers


def _support_box(fn, shape, y, x, n=24, seed=0):
    """Bounding box (top, left, bottom, right) of where d out[:, y, x, :] / d input != 0,
    united over ``n`` random images (max pooling sends the gradient to one pixel a window)."""
    rng = np.random.default_rng(seed)
    img = tf.constant(rng.normal(size=(n, *shape)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(img)
        out = fn(img)
        unit = tf.reduce_sum(out[:, y, x, :] * rng.normal(size=out.shape[-1]).astype("float32"))
    grad = np.abs(tape.gradient(unit, img).numpy()).sum(axis=(0, 3))
    rows, cols = np.flatnonzero(grad.any(axis=1)), np.flatnonzero(grad.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _units(map_size):
    h, w = map_size
    return sorted({(0, 0), (h // 2, w // 2), (h - 1, w - 1), (0, w - 1), (h - 1, 1 % w)})


def _stride2_even():
    inp = keras.Input((16, 16, 2))
    x = L.Conv2D(3, 3, strides=2, padding="same", name="s2")(inp)  # SAME, even: pad after only
    x = L.Conv2D(3, 3, padding="valid", name="v")(x)
    return keras.Model(inp, x), "v"


def _odd_even_kernel_pool_dilation():
    inp = keras.Input((15, 17, 1))  # odd sizes: SAME with stride 2 pads both sides
    x = L.Conv2D(3, 4, strides=2, padding="same", name="even_k")(inp)
    x = L.AveragePooling2D(2, name="avg")(x)
    x = L.Conv2D(3, 3, dilation_rate=2, padding="same", name="dil")(x)
    return keras.Model(inp, x), "dil"


def _maxpool_same_depthwise_separable():
    inp = keras.Input((19, 14, 2))
    x = L.MaxPooling2D(3, strides=2, padding="same", name="maxp")(inp)
    x = L.DepthwiseConv2D(3, strides=2, padding="same", name="dw")(x)
    x = L.SeparableConv2D(2, 2, padding="valid", name="sep")(x)
    return keras.Model(inp, x), "sep"


def _padding_cropping_residual():
    inp = keras.Input((12, 13, 1))
    x = L.ZeroPadding2D(((2, 0), (1, 3)), name="zp")(inp)
    x = L.Conv2D(4, 3, strides=2, name="c")(x)
    wide = L.Conv2D(4, 5, padding="same", name="wide")(x)
    narrow = L.Conv2D(4, 1, name="narrow")(x)
    x = L.Add(name="add")([narrow, L.BatchNormalization(name="bn")(wide)])
    x = L.Cropping2D(((1, 0), (0, 1)), name="crop")(x)
    return keras.Model(inp, x), "crop"


ARCHITECTURES = {
    "stride 2, SAME on an even size": _stride2_even,
    "odd size, even kernel, avg pooling, dilation": _odd_even_kernel_pool_dilation,
    "max pooling SAME, depthwise stride 2, separable": _maxpool_same_depthwise_separable,
    "zero padding, cropping, residual add": _padding_cropping_residual,
}


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_field_is_the_support_of_the_input_gradient(name):
    keras.utils.set_random_seed(0)
    model, layer = ARCHITECTURES[name]()
    rf = receptive_field(model, layer)
    assert rf.map_size == tuple(model.get_layer(layer).output.shape[1:3])
    shape = tuple(model.inputs[0].shape[1:])
    for y, x in _units(rf.map_size):
        seen = _support_box(model, shape, y, x)
        assert seen == rf.visible_box(y, x), (name, y, x, rf)
        top, left, bottom, right = rf.clipped_box(y, x)  # the field, clipped, contains it
        assert top <= seen[0] and left <= seen[1] and seen[2] <= bottom and seen[3] <= right


def test_a_unit_whose_field_is_inside_the_image_sees_all_of_it():
    """Away from the borders the support box is the whole, unclipped field."""
    keras.utils.set_random_seed(1)
    inp = keras.Input((40, 40, 1))
    x = L.Conv2D(2, 5, strides=2, padding="same", name="a")(inp)
    x = L.MaxPooling2D(name="p")(x)
    x = L.Conv2D(2, 3, dilation_rate=2, name="b")(x)
    model = keras.Model(inp, x)
    rf = receptive_field(model, "b")
    assert rf.size == (5 + 2 + 16, 5 + 2 + 16)  # kernel 5; pool 2 at jump 2; dilated 3 at 4
    y = x_ = rf.map_size[0] // 2
    assert rf.box(y, x_)[0] >= 0 and rf.box(y, x_)[2] <= 40
    assert _support_box(model, (40, 40, 1), y, x_) == rf.box(y, x_) == rf.visible_box(y, x_)


def test_nested_base_and_layers_after_it():
    """A functional base inside a Sequential (the transfer-learning model): the field of a
    base layer is the base's own; the head after it (global pooling, Dense) is never asked."""
    keras.utils.set_random_seed(2)
    base, layer = _padding_cropping_residual()
    base = keras.Model(base.inputs, base.output, name="base")
    outer = keras.Sequential([keras.Input((12, 13, 1)), base, L.GlobalAveragePooling2D(),
                              L.Dense(3)])
    inner = receptive_field(base, layer)
    for ref in (f"base/{layer}", layer, "base"):
        rf = receptive_field(outer, ref)
        assert (rf.size, rf.jump, rf.start) == (inner.size, inner.jump, inner.start)
    assert receptive_field(outer, "base").layer == "base/crop"
    y, x = 2, 3
    assert _support_box(base, (12, 13, 1), y, x) == rf.visible_box(y, x)


def test_open_input_size():
    keras.utils.set_random_seed(3)
    inp = keras.Input((None, None, 1))
    a = L.Conv2D(2, 3, padding="same", name="s1")(inp)
    b = L.Conv2D(2, 3, strides=2, padding="same", name="s2")(a)
    model = keras.Model(inp, b)
    # stride 1 SAME pads (k - 1) / 2 on each side whatever the size
    assert receptive_field(model, "s1").start == (-1, -1)
    with pytest.raises(ValueError, match=r"'s2' pads 'same' with stride 2.*input_size=\(H, W\)"):
        receptive_field(model, "s2")
    for size in ((10, 11), (9, 8)):
        rf = receptive_field(model, "s2", input_size=size)
        assert rf.input_size == size
        for y, x in _units(rf.map_size):
            assert _support_box(model, (*size, 1), y, x) == rf.visible_box(y, x)


def test_unsupported_layers_are_named():
    inp = keras.Input((8, 8, 1))
    x = L.Conv2D(2, 3, padding="same", name="c1")(inp)
    up = L.UpSampling2D(name="up")(x)
    y = L.Conv2D(2, 3, name="after_up")(up)
    lam = L.Lambda(lambda t: t[:, ::2, ::2, :], name="subsample")(x)
    z = L.Conv2D(2, 1, name="after_lambda")(lam)
    model = keras.Model(inp, [y, z])
    assert receptive_field(model, "c1").size == (3, 3)
    with pytest.raises(ValueError, match=r"'after_up'.*behind layer 'up'.*UpSampling2D"):
        receptive_field(model, "after_up")
    with pytest.raises(ValueError, match=r"behind layer 'subsample'.*Lambda"):
        receptive_field(model, "after_lambda")
    dense = keras.Sequential([keras.Input((8, 8, 1)), L.Flatten(), L.Dense(2, name="d")])
    with pytest.raises(ValueError, match="no spatial"):
        receptive_field(dense, "d")
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        receptive_field(model, "nope")


def test_box_helpers():
    rf = ReceptiveField("l", (5, 3), (2, 4), (-2, -1), (4, 4), (8, 12))
    assert rf.box(1, 2) == (0, 7, 5, 10)
    assert rf.clipped_box(0, 0) == (0, 0, 3, 2)
    assert rf.clipped_box(3, 3, image_size=(7, 12)) == (4, 11, 7, 12)
    open_rf = ReceptiveField("l", (3, 3), (1, 1), (-1, -1), (None, None), (None, None))
    with pytest.raises(ValueError, match="image_size"):
        open_rf.clipped_box(0, 0)


def _linear_clone(model: keras.Model) -> keras.Model:
    """The same network and weights with every Activation layer linear (no dead zones)."""

    def clone(layer):
        if isinstance(layer, L.Activation):
            return L.Activation("linear", name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    out = keras.models.clone_model(model, clone_function=clone)
    out.set_weights(model.get_weights())
    return out


def test_efficientnet_lite0_middle_layer():
    """The real network: TF SAME with stride 2 on even sizes (the stem starts at row 0),
    5x5 depthwise kernels, residual adds; one middle layer, units at the corners and centre."""
    net = models.load("efficientnet_lite0")
    layer = "block4a_expand_activation"
    rf = receptive_field(net, layer)
    assert rf.map_size == (28, 28) and rf.jump == (8, 8)
    sub = _linear_clone(keras.Model(net.inputs, net.get_layer(layer).output))
    for y, x in [(0, 0), (14, 13), (27, 27)]:
        seen = _support_box(sub, (224, 224, 3), y, x, n=1)
        assert seen == rf.visible_box(y, x) == rf.clipped_box(y, x), (y, x, rf)


def test_published_and_hand_computed_fields():
    """VGG16's conv5_3 and pool5 see 196 and 212 pixels (Araujo, Norris & Sim, "Computing
    receptive fields of convolutional neural networks", Distill 2019); the course's Fashion
    CNN by hand: conv1 3, pool1 +1 (jump 2), conv2 and conv3 +2 x 2 each, pool2 +2 (jump 4),
    conv4 +2 x 4."""
    from course_utils.models.trained import fashion_architecture

    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))
    assert receptive_field(vgg, "block5_conv3").size == (196, 196)
    assert receptive_field(vgg, "block5_pool").size == (212, 212)
    assert receptive_field(vgg, "block5_pool").jump == (32, 32)
    fashion = fashion_architecture()
    sizes = {name: receptive_field(fashion, name).size[0]
             for name in ("conv1_relu", "pool1", "conv2_relu", "conv3_relu", "pool2", "conv4")}
    assert sizes == {"conv1_relu": 3, "pool1": 4, "conv2_relu": 8, "conv3_relu": 12,
                     "pool2": 14, "conv4": 22}
