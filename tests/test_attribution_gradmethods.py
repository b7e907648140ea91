"""Gradient x Input, the noise tunnel (SmoothGrad, SmoothGrad², VarGrad), Guided Backprop and
Guided Grad-CAM, each against an analytic case or a computation made here independently."""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import conv_gap_model, images

from course_utils.attribution import (
    gradcam,
    gradient_x_input,
    guided_backprop,
    guided_gradcam,
    integrated_gradients,
    noise_tunnel,
    saliency,
    smoothgrad,
)
from course_utils.attribution.template import method


def _linear(channels: int, activation):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((5, 5, channels)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation=activation, name="dense")])
    dense = model.get_layer("dense")
    dense.bias.assign(np.array([0.7, -1.3, 0.4], "float32"))  # a bias the map must leave out
    return model


@pytest.mark.parametrize("activation", ["softmax", None])
@pytest.mark.parametrize("channels", [1, 3])
def test_gradient_x_input_on_a_linear_model_is_w_times_x_and_complete(activation, channels):
    model = _linear(channels, activation)
    w = model.get_layer("dense").kernel.numpy()
    b = model.get_layer("dense").bias.numpy()
    x = images(3, size=5, channels=channels) * 2.0 - 0.5
    targets = np.array([0, 2, 1])
    maps = gradient_x_input(model, x, targets)
    for i, t in enumerate(targets):
        per_pixel = (w[:, t].reshape(5, 5, channels) * x[i]).sum(-1)
        np.testing.assert_allclose(maps[i], per_pixel, rtol=1e-5, atol=1e-6)
        logit = x[i].ravel() @ w[:, t] + b[t]  # the pre-softmax score, by hand
        np.testing.assert_allclose(maps[i].sum(), logit - b[t], rtol=1e-5, atol=1e-5)
    assert np.any(maps < 0) and np.any(maps > 0)  # signed


def test_gradient_x_input_on_a_relu_net_is_the_tape_computation():
    model = conv_gap_model(size=10, head="softmax")
    head = model.get_layer("head")
    features = keras.Model(model.inputs, model.get_layer("gap").output)
    x = images(2, size=10)
    targets = [2, 0]
    want = []
    for i, t in enumerate(targets):
        xi = tf.constant(x[i:i + 1])
        with tf.GradientTape() as tape:
            tape.watch(xi)
            logit = features(xi, training=False) @ head.kernel[:, t:t + 1] + head.bias[t]
        want.append((tape.gradient(logit, xi).numpy()[0] * x[i]).sum(-1))
    got = gradient_x_input(model, x, targets, batch_size=1)
    np.testing.assert_allclose(got, np.array(want), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gradient_x_input(model, x, targets), got, rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------------ the noise tunnel


def _noisy_copies(x: np.ndarray, n_samples: int, noise_level: float, seed: int) -> np.ndarray:
    """``(N, n_samples, H, W, C)``: x + sigma * n_k, from the definition (sigma = level x the
    image's range; sample k's noise from the generator seeded (seed, 0, k), the same for every
    image), not from the package's helpers."""
    sigma = noise_level * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))
    noise = np.stack([np.random.default_rng((seed, 0, k)).standard_normal(x.shape[1:], "float32")
                      for k in range(n_samples)])
    return x[:, None] + sigma[:, None, None, None, None].astype("float32") * noise[None]


def _per_sample(fn, model, x, targets, n_samples, noise_level, seed, **options):
    """``(N, n_samples, H, W)``: the public method on each image's noisy copies."""
    copies = _noisy_copies(x, n_samples, noise_level, seed)
    return np.stack([fn(model, c, targets[i], **options).astype("float64")
                     for i, c in enumerate(copies)])


@pytest.fixture(scope="module")
def relu_net():
    return conv_gap_model(size=10, head="softmax")


def test_smoothgrad_is_the_mean_of_saliency_of_noisy_copies_for_every_batch_size(relu_net):
    x = images(3, size=10)
    targets = [0, 2, 1]
    want = _per_sample(saliency, relu_net, x, targets, 5, 0.2, 3).mean(axis=1)
    scale = np.abs(want).max()
    for batch_size in (None, 1, 4, 15):
        got = smoothgrad(relu_net, x, targets, n_samples=5, noise_level=0.2, seed=3,
                         batch_size=batch_size)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * scale)
    other_seed = smoothgrad(relu_net, x, targets, n_samples=5, noise_level=0.2, seed=4)
    assert np.abs(other_seed - want).max() > 1e-3 * scale  # the seed matters


@pytest.mark.parametrize("kind", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_the_three_kinds_of_gradient_x_input_against_numpy(relu_net, kind):
    x = images(2, size=10, seed=1)
    targets = [1, 2]
    maps = _per_sample(gradient_x_input, relu_net, x, targets, 6, 0.15, 0)
    want = {"smoothgrad": maps.mean(1), "smoothgrad_sq": (maps ** 2).mean(1),
            "vargrad": maps.var(1)}[kind]
    tunnelled = noise_tunnel(gradient_x_input, kind, n_samples=6)
    scale = np.abs(want).max()
    for batch_size in (None, 5):
        got = tunnelled(relu_net, x, targets, batch_size=batch_size)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * scale)
    if kind != "smoothgrad":
        assert got.min() >= 0.0


@pytest.mark.filterwarnings("ignore:Integrated Gradients completeness")
def test_the_tunnel_passes_options_and_keeps_the_signature(relu_net):
    x = images(1, size=10, seed=2)
    vargrad_ig = noise_tunnel(integrated_gradients, "vargrad", n_samples=3, noise_level=0.1,
                              seed=5)
    assert (list(inspect.signature(vargrad_ig).parameters)
            == list(inspect.signature(integrated_gradients).parameters))
    assert vargrad_ig.__name__ == "integrated_gradients_vargrad"
    maps = _per_sample(integrated_gradients, relu_net, x, [2], 3, 0.1, 5, steps=4,
                       baseline="grey")
    got = vargrad_ig(relu_net, x, 2, steps=4, baseline="grey")
    np.testing.assert_allclose(got, maps.var(1), rtol=1e-5, atol=1e-6 * maps.var(1).max())
    gb = noise_tunnel(guided_backprop, "smoothgrad_sq", n_samples=2)
    want = (_per_sample(guided_backprop, relu_net, x, [0], 2, 0.15, 0, reduce="sum") ** 2)
    np.testing.assert_allclose(gb(relu_net, x, 0, reduce="sum"), want.mean(1), rtol=1e-5,
                               atol=1e-9)
    assert not np.allclose(gb(relu_net, x, 0, reduce="sum"), gb(relu_net, x, 0))


def test_the_tunnel_calls_the_method_once_per_chunk_not_per_sample():
    calls = []

    @method()
    def mean_input(model, job):
        """A toy method: the input averaged over channels, recording its chunks."""
        calls.append(job.n)
        return job.x.mean(axis=-1)

    m = keras.Sequential([keras.Input((3, 3, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    x = images(3, size=3, channels=1)
    got = noise_tunnel(mean_input, n_samples=7, noise_level=0.5)(m, x, 0, batch_size=8)
    assert calls == [8, 8, 5]  # 21 noisy rows in chunks of batch_size
    np.testing.assert_allclose(got, _noisy_copies(x, 7, 0.5, 0)[..., 0].mean(1), rtol=1e-5)


def test_the_tunnel_shows_a_progress_bar_for_long_runs(relu_net, capsys):
    x = images(1, size=10)
    noise_tunnel(saliency, "vargrad", n_samples=6)(relu_net, x, 0, batch_size=1)
    assert "vargrad of saliency" in capsys.readouterr().err  # 6 chunks: a bar
    noise_tunnel(saliency, "vargrad", n_samples=3)(relu_net, x, 0, batch_size=1)
    assert "vargrad of saliency" not in capsys.readouterr().err  # 3 chunks: none


def test_the_tunnel_refuses_bad_settings_before_any_work(relu_net):
    with pytest.raises(ValueError, match="kind must be one of 'smoothgrad', 'smoothgrad_sq', "
                                         "'vargrad'; got 'var'"):
        noise_tunnel(saliency, "var")
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1"):
        noise_tunnel(saliency, n_samples=0)
    with pytest.raises(ValueError, match="noise_level must be a finite number >= 0"):
        noise_tunnel(saliency, noise_level=-0.1)
    with pytest.raises(TypeError, match="noise_tunnel wraps a method of course_utils"):
        noise_tunnel(lambda model, images: images)
    x = images(1, size=10)
    with pytest.raises(ValueError, match="return_info=True makes integrated_gradients"):
        noise_tunnel(integrated_gradients)(relu_net, x, return_info=True)
    with pytest.raises(ValueError, match="reduce must be one of"):
        noise_tunnel(saliency)(relu_net, x, reduce="mean")


# ------------------------------------------------ Guided Backprop and Guided Grad-CAM


def _conv_relu(style: str) -> keras.Model:
    """Conv(4, relu) -> Conv(3, relu) -> GAP -> Dense(2) on 6 x 6 x 2 inputs, with the ReLUs
    inside the Conv2D layers (``activation="relu"``) or as ``keras.layers.ReLU`` layers; the
    same weights either way."""
    keras.utils.set_random_seed(7)
    inp = keras.Input((6, 6, 2))
    c1 = keras.layers.Conv2D(4, 3, padding="same", name="c1",
                             activation="relu" if style == "fused" else None)
    c2 = keras.layers.Conv2D(3, 3, padding="same", name="c2",
                             activation="relu" if style == "fused" else None)
    z = c1(inp)
    z = z if style == "fused" else keras.layers.ReLU()(z)
    z = c2(z)
    z = z if style == "fused" else keras.layers.ReLU(name="c2_relu")(z)
    head = keras.layers.Dense(2, name="head")
    model = keras.Model(inp, head(keras.layers.GlobalAveragePooling2D()(z)))
    rng = np.random.default_rng(3)
    for layer in (c1, c2, head):
        layer.set_weights([rng.normal(0, 0.7, w.shape).astype("float32")
                           for w in layer.get_weights()])
    return model


@tf.custom_gradient
def _guided_relu(z):
    """ReLU whose gradient passes where the input and the incoming gradient are positive."""
    def grad(g):
        return g * tf.cast(z > 0, g.dtype) * tf.cast(g > 0, g.dtype)
    return tf.nn.relu(z), grad


def _guided_by_hand(model: keras.Model, x: np.ndarray, target: int) -> np.ndarray:
    """The guided input gradient with the network written out in tf ops from its weights."""
    (k1, b1), (k2, b2), (w, b) = (model.get_layer(n).get_weights() for n in ("c1", "c2", "head"))
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        z = _guided_relu(tf.nn.conv2d(xt, k1, 1, "SAME") + b1)
        z = _guided_relu(tf.nn.conv2d(z, k2, 1, "SAME") + b2)
        s = tf.reduce_mean(z, axis=(1, 2)) @ w[:, target:target + 1] + b[target]
    return tape.gradient(s, xt).numpy()


@pytest.mark.parametrize("style", ["fused", "layers"])
def test_guided_backprop_of_both_relu_styles_is_the_hand_computation(style):
    model = _conv_relu(style)
    x = np.random.default_rng(0).normal(0, 1, (3, 6, 6, 2)).astype("float32")
    want = _guided_by_hand(model, x, 1).sum(-1)
    got = guided_backprop(model, x, 1, reduce="sum")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    plain = saliency(model, x, 1, reduce="sum")
    assert np.abs(got - plain).max() > 0.1 * np.abs(want).max()  # the rule did change


def test_guided_methods_leave_the_model_unchanged():
    model = _conv_relu("layers")
    x = np.random.default_rng(1).normal(0, 1, (2, 6, 6, 2)).astype("float32")

    def outputs_and_gradients():
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            out = model(xt, training=False)
            s = tf.reduce_sum(out[:, 0])
        return out.numpy(), tape.gradient(s, xt).numpy()

    before = outputs_and_gradients()
    activations = [type(la).__name__ + str(getattr(la, "activation", "")) for la in model.layers]
    guided_backprop(model, x, 0)
    guided_gradcam(model, x, 0)
    after = outputs_and_gradients()
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
    assert activations == [type(la).__name__ + str(getattr(la, "activation", ""))
                           for la in model.layers]
    np.testing.assert_allclose(saliency(model, x, 0, reduce="sum"), before[1].sum(-1),
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("reduce", ["max_abs", "sum"])
@pytest.mark.parametrize("layer", [None, "c1"])
def test_guided_gradcam_is_guided_backprop_times_gradcam(reduce, layer):
    model = _conv_relu("fused")
    x = np.random.default_rng(2).normal(0, 1, (2, 6, 6, 2)).astype("float32")
    want = (guided_backprop(model, x, [0, 1], reduce=reduce)
            * gradcam(model, x, [0, 1], layer=layer))
    got = guided_gradcam(model, x, [0, 1], layer=layer, reduce=reduce)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    assert np.any(got != 0)


def test_guided_gradcam_upsamples_a_coarse_gradcam_map():
    """Grad-CAM at a layer pooled to half size, computed here from the layer's activations and
    their gradient (tape), then upsampled bilinearly, times Guided Backprop."""
    keras.utils.set_random_seed(4)
    inp = keras.Input((8, 8, 3))
    z = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    pooled = keras.layers.MaxPooling2D(name="pool")(z)
    head = keras.layers.Dense(2)
    model = keras.Model(inp, head(keras.layers.GlobalAveragePooling2D()(pooled)))
    x = images(2, size=8)
    upper = keras.Model(inp, pooled)
    a = tf.constant(upper(x, training=False))
    with tf.GradientTape() as tape:
        tape.watch(a)
        s = tf.reduce_sum(tf.reduce_mean(a, axis=(1, 2)) @ head.kernel[:, 1:2])
    g = tape.gradient(s, a)
    cam = tf.nn.relu(tf.reduce_sum(tf.reduce_mean(g, axis=(1, 2), keepdims=True) * a, -1))
    big = tf.image.resize(cam[..., None], (8, 8), method="bilinear")[..., 0].numpy()
    got = guided_gradcam(model, x, 1, layer="pool")
    np.testing.assert_allclose(got, guided_backprop(model, x, 1) * big, rtol=1e-5, atol=1e-9)
    assert np.any(got != 0)
    with pytest.raises(ValueError, match="reduce must be one of"):
        guided_gradcam(model, x, reduce="max")
