"""course_utils.features.visualize: batched = separate, determinism, objectives, geometry."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_utils.engine import spaces, taps
from course_utils.features import Param, Transforms, class_visualization, visualize
from course_utils.features import transforms as tfm
from course_utils.features.param import rfft2d_freqs, spectrum_to_image
from course_utils.models.registry import ModelInfo, register

FAST = {"steps": 6, "size": 16, "progress": False}


def _convnet(name="net", hw=(None, None)):
    keras.utils.set_random_seed(2)
    inp = keras.Input((*hw, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(6, 3, padding="same", name="c2")(x)
    x = keras.layers.ReLU(name="c2_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(3, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name=name)


@pytest.fixture(scope="module")
def net():
    return _convnet()


@pytest.mark.parametrize("method", ["lucid", "naive"])
def test_batched_equals_separate_runs(net, method):
    both = visualize(net, "c2_relu", [1, 4, 5], method=method, batch_size=3, **FAST)
    for unit in [4, 1]:
        alone = visualize(net, "c2_relu", [unit], method=method, **FAST)
        idx = [1, 4, 5].index(unit)
        np.testing.assert_allclose(alone.images[0], both.images[idx], atol=2e-4)
        assert alone.scores[0] == pytest.approx(both.scores[idx], rel=1e-3, abs=1e-5)
    # a small batch_size chunks the units but changes nothing
    chunked = visualize(net, "c2_relu", [1, 4, 5], method=method, batch_size=2, **FAST)
    np.testing.assert_allclose(chunked.images, both.images, atol=2e-4)


def test_deterministic_given_seed(net):
    a = visualize(net, "c1", [0, 2], seed=3, **FAST)
    b = visualize(net, "c1", [0, 2], seed=3, **FAST)
    c = visualize(net, "c1", [0, 2], seed=4, **FAST)
    np.testing.assert_array_equal(a.images, b.images)
    assert np.abs(a.images - c.images).max() > 1e-3


def test_optimization_raises_the_objective(net):
    vis = visualize(net, "c2_relu", steps=48, size=16, progress=False)
    start = visualize(net, "c2_relu", steps=1, size=16, progress=False, lr=1e-6)
    assert vis.images.shape == (6, 16, 16, 3)
    assert 0.0 <= vis.images.min() and vis.images.max() <= 1.0
    assert np.all(vis.scores > start.scores + 1e-3)
    assert vis.history.shape == (2, 6)


def test_adam_steps_on_a_linear_objective_are_the_analytic_ones():
    """A linear objective has a constant gradient g: Adam's bias-corrected step is then
    lr * g / (|g| + eps) = lr * sign(g) from the first step on (without the corrections the
    first step would be 3.2 lr), so n steps move every pixel by n * lr * sign(g)."""
    inp = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(2, 1, use_bias=False, name="lin")
    model = keras.Model(inp, conv(inp))
    conv.set_weights([np.array([[[[0.5, 1.0], [-2.0, 1.0], [1.0, 1.0]]]], "float32")])
    raw = Param("raw", decorrelate=False)
    steps, lr = 5, 0.01
    vis = visualize(model, "lin", [0], steps=steps, size=8, lr=lr, param=raw,
                    transforms=Transforms.none(), progress=False)
    start = raw.init([(0, 0)], 8, 8, 3)[0]
    moved = vis.images[0] - start
    np.testing.assert_allclose(moved, np.broadcast_to(steps * lr * np.sign([0.5, -2.0, 1.0]),
                                                      moved.shape), atol=1e-5)


def test_dead_relu_channel_still_gets_a_gradient():
    keras.utils.set_random_seed(0)
    inp = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(2, 3, activation="relu", name="c")
    model = keras.Model(inp, conv(inp))
    ones = np.full((3, 3, 3, 1), 0.1)
    conv.set_weights([np.concatenate([ones, -ones], axis=-1), np.array([-2.0, 1.0])])
    vis = visualize(model, "c", steps=64, size=16, progress=False, lr=0.2)
    # at grey both channels are dead (pre-activations 1.35 - 2 and -1.35 + 1); white and black
    # would wake them, and the pre-ReLU warm-up finds them
    grey = taps.forward_until(model, np.full((1, 16, 16, 3), 0.5, "float32"),
                              taps.resolve(model, "c"))[0]
    assert float(tf.reduce_max(grey)) == 0.0
    assert np.all(vis.scores > 0)


def test_nested_model_gives_the_same_pictures():
    base = _convnet("inner", hw=(16, 16))
    trunk = keras.Model(base.input, base.get_layer("c2_relu").output, name="trunk")
    outer = keras.Sequential([keras.Input((16, 16, 3)), trunk,
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    a = visualize(outer, "trunk/c2_relu", [0, 3], **FAST)
    b = visualize(trunk, "c2_relu", [0, 3], **FAST)
    np.testing.assert_allclose(a.images, b.images, atol=1e-5)


def test_class_objective_uses_logits_and_leaves_model_unchanged(net):
    x = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype("float32")
    before = net.predict(x, verbose=0)
    vis = class_visualization(net, [0, 2], **FAST)
    after = net.predict(x, verbose=0)
    np.testing.assert_allclose(before, after, rtol=1e-6)
    assert net.get_layer("probs").activation.__name__ == "softmax"
    # the score is the logit: features @ kernel + bias, computed independently
    feats = keras.Model(net.input, net.get_layer("gap").output).predict(vis.images, verbose=0)
    kernel, bias = net.get_layer("probs").get_weights()
    logits = feats @ kernel + bias
    np.testing.assert_allclose(vis.scores, logits[[0, 1], [0, 2]], rtol=1e-4, atol=1e-5)


def test_logits_and_warm_up_never_modify_the_model(monkeypatch):
    """The pre-ReLU warm-up (a conv with a fused relu) and class logits (a Dense softmax) are
    computed from the layers' variables: no activation is switched, even while tracing, so two
    threads can visualize one model."""
    original = keras.layers.Layer.__setattr__

    def guard(self, name, value):
        if name == "activation" and getattr(self, "built", False):
            raise AssertionError(f"{self.name}.activation was set")
        original(self, name, value)

    model = _convnet("guarded")
    for cls in (keras.layers.Conv2D, keras.layers.Dense):
        monkeypatch.setattr(cls, "__setattr__", guard)
    with pytest.raises(AssertionError, match="activation was set"):  # the guard works
        model.get_layer("c1").activation = keras.activations.linear
    vis = visualize(model, "c1", [0], warmup=3, **FAST)
    cls_vis = class_visualization(model, [1], **FAST)
    assert np.isfinite(vis.scores).all() and np.isfinite(cls_vis.scores).all()


def test_neuron_and_layer_objectives(net):
    neuron = visualize(net, "c1", [1], objective="neuron", **FAST)
    layer = visualize(net, "c1", objective="layer", **FAST)
    assert neuron.images.shape == (1, 16, 16, 3) and layer.units == [0]
    act = taps.forward_until(net, tf.constant(layer.images), taps.resolve(net, "c1"))[0]
    assert layer.scores[0] == pytest.approx(float(tf.reduce_mean(tf.square(act))), rel=1e-4)


@pytest.mark.parametrize("floor", [0.0, 0.3, float(np.finfo("float32").min)])
def test_score_floor_reads_only_the_units_values(floor):
    from course_utils.features import objectives

    rng = np.random.default_rng(5)
    act = rng.normal(size=(3, 5, 4, 6)).astype("float32")
    units = np.array([4, 0, 4], "int32")
    a, u, f = tf.constant(act), tf.constant(units), tf.constant(floor)
    own = np.maximum(act[np.arange(3), :, :, units], floor)  # (3, 5, 4): each image's channel
    np.testing.assert_allclose(objectives.score("channel", a, u, f), own.mean(axis=(1, 2)),
                               rtol=1e-5)
    centre = np.maximum(act[np.arange(3), 2, 2, units], floor)
    np.testing.assert_allclose(objectives.score("neuron", a, u, f), centre, rtol=1e-6)
    # the gradient is the one of the max over the whole map (what the step computed before)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(a)
        picked = tf.reduce_sum(objectives.score("channel", a, u, f))
        whole = tf.reduce_sum(objectives.score("channel", tf.maximum(a, f), u))
    np.testing.assert_allclose(tape.gradient(picked, a), tape.gradient(whole, a), atol=1e-7)
    with pytest.raises(ValueError, match="channel and neuron"):
        objectives.score("layer", a, u, f)


def test_preprocessing_maps_pixel_space(net):
    twin = _convnet("twin")
    register(twin, ModelInfo(name="twin", preprocess=lambda x: x / 127.5 - 1.0,
                             pixel_max=255.0))
    imap = spaces.input_map(twin)
    x = np.random.default_rng(0).uniform(0, 255, size=(2, 4, 4, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(imap(tf.constant(x))), x / 127.5 - 1.0, atol=1e-5)
    vis = visualize(twin, "c1", [0], **FAST)
    assert vis.pixel_max == 255.0 and vis.images.max() <= 1.0


def test_caffe_preprocessing_is_estimated_exactly():
    model = _convnet("caffe")
    fn = keras.applications.vgg16.preprocess_input
    register(model, ModelInfo(name="caffe", preprocess=fn, pixel_max=255.0))
    imap = spaces.input_map(model)
    x = np.random.default_rng(1).uniform(0, 255, size=(1, 3, 3, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(imap(tf.constant(x))), fn(x.copy()), atol=1e-3)


def test_transform_geometry():
    img = np.random.default_rng(0).uniform(size=(1, 8, 8, 1)).astype("float32")
    ident = tfm.apply(tf.constant(img), tf.constant([[0, 0, 1, 0]], tf.float32), (8, 8))
    np.testing.assert_allclose(np.asarray(ident), img, atol=1e-5)
    shifted = tfm.apply(tf.constant(img), tf.constant([[0, 1, 1, 0]], tf.float32), (8, 8))
    np.testing.assert_allclose(np.asarray(shifted)[0, :, :-1], img[0, :, 1:], atol=1e-5)
    assert np.allclose(np.asarray(shifted)[0, :, -1], 0.5)  # grey padding
    turned = tfm.apply(tf.constant(img), tf.constant([[0, 0, 1, 90]], tf.float32), (8, 8))
    np.testing.assert_allclose(np.asarray(turned)[0, ..., 0], np.rot90(img[0, ..., 0], -1),
                               atol=1e-4)
    t = Transforms.lucid()
    assert t.for_size(256, 256) is t and Transforms.none().is_identity
    draws = t.sample(np.random.default_rng(0), 100)
    assert np.abs(draws[:, :2]).max() <= 6 and np.abs(draws[:, 3]).max() <= 10
    assert np.all(np.min(np.abs(draws[:, 2:3] - np.array(t.scales)[None]), axis=1) < 1e-6)


def test_fft_param_spectrum():
    freqs = rfft2d_freqs(6, 6)
    np.testing.assert_allclose(freqs[0, :4], [0, 1 / 6, 2 / 6, 3 / 6])
    p = Param("fft", decorrelate=False)
    spec = np.zeros((1, *p.shape(8, 8, 1)), "float32")
    img = p.to_image(tf.constant(spec), 8, 8, 1)
    np.testing.assert_allclose(np.asarray(img), 0.5)  # zero spectrum: sigmoid(0)
    with pytest.raises(ValueError, match="fft"):
        Param("wavelet")


@pytest.mark.parametrize("h, w", [(8, 8), (7, 9), (6, 5)])
def test_spectrum_to_image_and_its_gradient_match_autodiff(h, w):
    """The hand-written backward pass of the FFT parameterization against TensorFlow's autodiff
    of the plain composition (tf.complex of the scaled parts, irfft2d), odd and even sizes."""
    rng = np.random.default_rng(0)
    wf = w // 2 + 1
    q = tf.constant(rng.normal(size=(2, 3, h, wf, 2)), tf.float32)
    scale = rng.uniform(0.5, 2.0, (h, wf)).astype("float32")
    probe = tf.constant(rng.normal(size=(2, 3, h, w)), tf.float32)

    def plain(q):
        spectrum = tf.complex(q[..., 0] * scale, q[..., 1] * scale)
        return tf.signal.irfft2d(spectrum, fft_length=[h, w])

    outs, grads = [], []
    for fn in (plain, lambda q: spectrum_to_image(q, scale, h, w)):
        with tf.GradientTape() as tape:
            tape.watch(q)
            out = fn(q)
            s = tf.reduce_sum(tf.sin(out) * probe)
        outs.append(out.numpy())
        grads.append(tape.gradient(s, q).numpy())
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-4, atol=1e-6)
    assert np.abs(grads[0]).max() > 0.1  # a gradient that could have been wrong


def test_fft_init_is_the_same_spectrum_as_before_the_layout_change():
    """Real and imaginary parts moved last; a seed still draws the same starting spectrum."""
    p = Param("fft")
    init = p.init([(0, 3)], 8, 8, 3)[0]
    before = np.random.default_rng((0, 3)).normal(0.0, p.sd, size=(2, 3, 8, 5))
    assert init.shape == p.shape(8, 8, 3) == (3, 8, 5, 2)
    np.testing.assert_allclose(init[..., 0], before[0], rtol=1e-6)
    np.testing.assert_allclose(init[..., 1], before[1], rtol=1e-6)


def test_bad_input(net):
    with pytest.raises(ValueError, match="no layer named 'zzz'"):
        visualize(net, "zzz", [0], **FAST)
    with pytest.raises(ValueError, match="index 6 is out of range.*valid indices are 0..5"):
        visualize(net, "c2_relu", [6], **FAST)
    with pytest.raises(ValueError, match="no spatial"):
        visualize(net, "gap", [0], **FAST)
    with pytest.raises(ValueError, match="steps must be in 1..100000"):
        visualize(net, "c1", [0], steps=0, size=16, progress=False)
    with pytest.raises(ValueError, match="size must be in 8..2048"):
        visualize(net, "c1", [0], steps=2, size=4, progress=False)
    with pytest.raises(TypeError, match="steps must be an integer"):
        visualize(net, "c1", [0], steps=2.5, size=16, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        visualize(net, "c1", [0], batch_size=0, **FAST)
    with pytest.raises(ValueError, match="method 'magic'; choose one of 'lucid', 'naive'"):
        visualize(net, "c1", [0], method="magic", **FAST)
    with pytest.raises(ValueError, match="choose one of 'lucid', 'naive'"):
        visualize(net, "c1", [0], method=["lucid"], **FAST)
    with pytest.raises(ValueError, match="objective"):
        visualize(net, "c1", [0], objective="entropy", **FAST)
    with pytest.raises(ValueError, match="class indices"):
        class_visualization(net, None, **FAST)
    with pytest.raises(ValueError, match="Class index 3 is out of range.*3 classes"):
        class_visualization(net, [3], **FAST)
    with pytest.raises(ValueError, match="lr"):
        visualize(net, "c1", [0], lr=-1.0, **FAST)
    fixed = _convnet("fixed", hw=(16, 16))
    with pytest.raises(ValueError, match="takes 16x16 images only"):
        class_visualization(fixed, [0], steps=2, size=32, progress=False)


def test_fixed_size_model_conv_layers_take_any_size():
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c")(inp)
    x = keras.layers.Dense(3, name="d")(keras.layers.Flatten()(x))
    model = keras.Model(inp, x)
    assert visualize(model, "c", [0], steps=2, size=32, progress=False).images.shape == (
        1, 32, 32, 3)
    with pytest.raises(ValueError, match="cannot work on 32x32 pictures.*use size=16"):
        visualize(model, "d", [0], objective="neuron", steps=2, size=32, progress=False)
    assert visualize(model, "d", [0], objective="neuron", steps=2, progress=False).images.shape \
        == (1, 16, 16, 3)


def test_step_is_traced_once_and_history_has_one_entry_per_chunk():
    """The compiled step is traced once for calls with different batch sizes and step counts;
    the history records the last step of each 32-step chunk (33 steps: 2 entries)."""
    import importlib

    vmod = importlib.import_module("course_utils.features.visualize")
    model = _convnet("traced_once")
    size, out_hw = 16, Transforms.lucid().for_size(16, 16).out_size(16, 16)
    vis = visualize(model, "c2", [1, 4], steps=33, size=size, progress=False)
    visualize(model, "c2", [0, 2, 3], steps=2, size=size, progress=False)
    assert vis.history.shape == (2, 2)
    assert np.all(np.isfinite(vis.history)) and np.any(vis.history[1] != vis.history[0])
    tgt = vmod.objectives.target(model, "channel", "c2", [1, 4])
    step = vmod._engine(model, tgt, Param(), (size, size), 3, out_hw, False, False,
                        (False, False))
    assert step.experimental_get_tracing_count() == 1


def test_zero_penalty_weights_are_skipped_without_changing_pictures(net):
    """tv=blur=0 takes a path without the penalties; a negligible nonzero weight computes them
    and must give the same pictures."""
    skipped = visualize(net, "c2_relu", [0, 3], seed=1, **FAST)
    computed = visualize(net, "c2_relu", [0, 3], seed=1, tv=1e-12, blur=1e-12, **FAST)
    np.testing.assert_allclose(skipped.images, computed.images, atol=1e-5)
    different = visualize(net, "c2_relu", [0, 3], seed=1, tv=5.0, **FAST)
    assert np.abs(different.images - skipped.images).max() > 1e-3


def test_compiled_functions_skip_autograph(net):
    """The step, final and render functions trace plain Python (autograph only cost time)."""
    from course_utils import surgery
    from course_utils.engine import kernels
    from course_utils.features.visualize import _RENDER

    visualize(net, "c2", [0], **FAST)
    visualize(net, "c2", [0], method="naive", **FAST)
    fns = {k.method: f for k, f in surgery.model_cache(net, kernels.CACHE_NAME).items()
           if k.method.startswith("features.")}
    assert {"features.visualize", "features.final"} <= set(fns)
    assert all(f._autograph is False for f in [*fns.values(), *_RENDER.values()])
